//! The reviewer page: claims waiting in manual review, each with its lines and the three
//! decisions a person can make; recent decisions below. Refreshes itself on every change.

use crate::Insurer;
use axum::extract::State;
use axum::response::Html;
use std::sync::Arc;
use vestnik_claims::html::{escape, page};
use vestnik_claims::model::{ClaimStatus, ReviewMode};
use vestnik_claims::payload::ClaimRecord;

fn when(at: Option<jiff::Timestamp>) -> String {
    at.map(|t| {
        format!(
            "{:.0}",
            t.to_zoned_datetime(vestnik_claims::adjudication::moscow())
                .datetime()
        )
    })
    .unwrap_or_default()
}

fn waiting_row(record: &ClaimRecord) -> String {
    let lines: String = record
        .submission
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let net = line.net().unwrap_or_default();
            format!(
                "<div class=\"line\">{code} × {qty} = {net} <input name=\"approved-{i}\" value=\"{net}\" aria-label=\"approved amount of line {n}\"> \
                 <input class=\"reason\" name=\"reason-{i}\" placeholder=\"reason if not in full\"></div>",
                code = escape(&line.code),
                qty = line.quantity,
                n = i + 1,
            )
        })
        .collect();
    format!(
        "<tr data-claim=\"{id}\"><td>{id}<br><small>{clinic} / {ccid}</small></td><td>{submitted}</td><td>{due}</td>\
         <td class=\"num\">{total}</td><td>{lines}</td><td>\
         <button data-decide=\"approved\">Approve</button><button data-decide=\"partial\">Partial</button>\
         <button data-decide=\"denied\">Deny</button></td></tr>",
        id = escape(&record.id),
        clinic = escape(&record.submission.clinic_id),
        ccid = escape(&record.submission.clinic_claim_id),
        submitted = when(Some(record.submitted_at)),
        due = when(record.decision_due_at),
        total = record.submission.total,
    )
}

fn decided_row(record: &ClaimRecord) -> String {
    let decision = record.decision.as_ref();
    format!(
        "<tr><td>{id}</td><td><span class=\"badge {status}\">{status}</span></td><td>{by}</td><td>{at}</td>\
         <td class=\"num\">{approved} / {total}</td></tr>",
        id = escape(&record.id),
        status = record.status.as_str(),
        by = escape(decision.map(|d| d.decided_by.as_str()).unwrap_or("")),
        at = when(record.decided_at),
        approved = decision
            .map(|d| d.approved().to_string())
            .unwrap_or_default(),
        total = record.submission.total,
    )
}

const DECIDE_SCRIPT: &str = "document.addEventListener('click',async e=>{const b=e.target.closest('button[data-decide]');if(!b)return;\
const row=b.closest('tr');const id=row.dataset.claim;const kind=b.dataset.decide;const lines=[];\
row.querySelectorAll('input[name^=approved-]').forEach((input,i)=>{const reason=row.querySelector('input[name=reason-'+i+']').value;\
lines.push({approved:input.value,reason:reason||(kind==='partial'?'Not covered in full':null)});});\
const body={decision:kind,reviewer:'you',reason:kind==='denied'?'Denied on review':null};if(kind==='partial')body.lines=lines;\
const r=await fetch('/claims/'+id+'/decision',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify(body)});\
if(!r.ok){alert((await r.json()).detail);}b.blur();refresh();});";

pub async fn review(State(insurer): State<Arc<Insurer>>) -> Html<String> {
    let all = insurer.claims.list(None, None);
    let waiting: String = all
        .iter()
        .filter(|r| r.review_mode == ReviewMode::Manual && r.status == ClaimStatus::InReview)
        .map(waiting_row)
        .collect();
    let mut decided: Vec<&ClaimRecord> = all.iter().filter(|r| r.status.is_final()).collect();
    decided.sort_by_key(|r| std::cmp::Reverse(r.decided_at));
    let recent: String = decided.iter().take(15).map(|r| decided_row(r)).collect();
    let waiting_count = all
        .iter()
        .filter(|r| r.review_mode == ReviewMode::Manual && r.status == ClaimStatus::InReview)
        .count();
    let live = format!(
        "<div class=\"cards\"><div class=\"card\">simulated time<b id=\"now\">{now}</b></div>\
         <div class=\"card\">in manual review<b id=\"waiting\">{waiting_count}</b></div>\
         <div class=\"card\">claims<b>{total}</b></div></div>\
         <h2>Waiting for a reviewer</h2><table id=\"waiting-claims\"><thead><tr><th>claim</th><th>received</th><th>due (20 business days)</th>\
         <th class=\"num\">total</th><th>lines</th><th>decide</th></tr></thead><tbody>{waiting}</tbody></table>\
         <h2>Recent decisions</h2><table><thead><tr><th>claim</th><th>decision</th><th>by</th><th>decided</th>\
         <th class=\"num\">approved / claimed</th></tr></thead><tbody>{recent}</tbody></table>",
        now = when(Some(insurer.simulated_now())),
        total = all.len(),
    );
    Html(page(
        "Insurer — manual review",
        "Claims routed to a person. Decide one here and the clinic learns it through Vestnik at once; \
         left alone, each is decided by the simulated reviewer within 20 business days.",
        &live,
        DECIDE_SCRIPT,
    ))
}
