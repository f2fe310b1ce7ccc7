//! The clinic's HTTP face: the live claims page, a claim's page (opening it is a "view"), and
//! JSON for scripts — claims with `decided_at` (at the insurer) and `learned_at` (at the
//! clinic), request counts, submitting a claim, and switching the webhook receiver off and on.

use crate::client::Reason;
use crate::db::ClinicClaim;
use crate::{Clinic, is_final};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_stream::StreamExt as _;
use vestnik_claims::adjudication::moscow;
use vestnik_claims::html::{escape, page};
use vestnik_claims::model::ServiceLine;

pub fn router(clinic: Arc<Clinic>) -> Router {
    Router::new()
        .route("/", get(claims_page))
        .route("/claims/{id}", get(claim_page))
        .route("/api/claims", get(claims_json).post(submit))
        .route("/api/stats", get(stats))
        .route("/api/receiver", post(receiver))
        .route("/events", get(events))
        .with_state(clinic)
}

fn local(at: Option<Timestamp>) -> String {
    at.map(|t| format!("{:.0}", t.to_zoned_datetime(moscow()).datetime()))
        .unwrap_or_default()
}

/// A duration as people read it: `850 ms`, `12 s`, `3 h 5 min`, `2 d 4 h`.
fn human(duration: SignedDuration) -> String {
    let ms = duration.as_millis().max(0);
    match ms {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{} min", ms / 60_000),
        ms if ms < 86_400_000 => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
        ms => format!("{} d {} h", ms / 86_400_000, ms % 86_400_000 / 3_600_000),
    }
}

/// How long after the decision the clinic learned it: on the simulated clock, and in real time.
fn lag(clinic: &Clinic, claim: &ClinicClaim) -> Option<(SignedDuration, SignedDuration)> {
    let simulated = claim.learned_at?.duration_since(claim.decided_at?);
    let real =
        SignedDuration::from_millis((simulated.as_millis() as f64 / clinic.clock().scale()) as i64);
    Some((simulated, real))
}

fn claim_json(clinic: &Clinic, claim: &ClinicClaim) -> Value {
    let mut value = serde_json::to_value(claim).unwrap_or_default();
    if let Some((simulated, real)) = lag(clinic, claim) {
        value["lag_ms"] = json!(simulated.as_millis());
        value["lag_real_ms"] = json!(real.as_millis());
    }
    value
}

fn stats_json(clinic: &Clinic) -> Value {
    let (claims, decided) = clinic.db.counts().unwrap_or_default();
    json!({
        "clinic_id": clinic.id,
        "strategy": clinic.strategy.as_str(),
        "simulated_now": clinic.simulated_now().to_string(),
        "time_scale": clinic.clock().scale(),
        "receiver_up": clinic.receiver_up(),
        "claims": claims,
        "decided": decided,
        "requests": clinic.insurer.counters.to_json(),
    })
}

async fn claims_page(State(clinic): State<Arc<Clinic>>) -> Html<String> {
    let claims = clinic.db.list(60).unwrap_or_default();
    let rows: String = claims
        .iter()
        .map(|c| {
            let (lag_sim, lag_real) = lag(&clinic, c).map_or((String::new(), String::new()), |(s, r)| (human(s), human(r)));
            format!(
                "<tr data-claim=\"{id}\" data-status=\"{status}\"><td><a href=\"/claims/{id}\">{id}</a></td><td>{patient}</td>\
                 <td class=\"num\">{total}</td><td><span class=\"badge {status}\">{status}</span></td><td>{mode}</td>\
                 <td>{decided}</td><td>{learned}</td><td class=\"num\">{lag_sim}</td><td class=\"num\">{lag_real}</td><td>{via}</td></tr>",
                id = escape(&c.clinic_claim_id),
                patient = escape(&c.patient_ref),
                total = c.total,
                status = escape(&c.status),
                mode = escape(c.review_mode.as_deref().unwrap_or("")),
                decided = local(c.decided_at),
                learned = local(c.learned_at),
                via = escape(c.learned_via.as_deref().unwrap_or("")),
            )
        })
        .collect();
    let counters = &clinic.insurer.counters;
    let breakdown: String = Reason::ALL
        .iter()
        .filter(|r| **r != Reason::Submit)
        .map(|r| format!("{} {}", r.as_str(), counters.get(*r)))
        .collect::<Vec<_>>()
        .join(" · ");
    let (total, decided) = clinic.db.counts().unwrap_or_default();
    let live = format!(
        "<div class=\"cards\"><div class=\"card\">strategy<b id=\"strategy\">{strategy}</b></div>\
         <div class=\"card\">simulated time<b>{now}</b></div>\
         <div class=\"card\">claims decided<b id=\"decided\">{decided} / {total}</b></div>\
         <div class=\"card\">status requests to the insurer<b id=\"requests\">{requests}</b><small>{breakdown}</small></div>\
         <div class=\"card\">webhook receiver<b id=\"receiver\">{receiver}</b></div></div>\
         <table id=\"claims\"><thead><tr><th>claim</th><th>patient</th><th class=\"num\">total</th><th>status</th><th>review</th>\
         <th>decided at the insurer</th><th>learned at the clinic</th><th class=\"num\">lag (simulated)</th>\
         <th class=\"num\">lag (wall clock)</th><th>learned by</th></tr></thead><tbody>{rows}</tbody></table>",
        strategy = clinic.strategy.as_str(),
        now = local(Some(clinic.simulated_now())),
        requests = counters.status_requests(),
        receiver = if clinic.receiver_up() { "up" } else { "down" },
    );
    Html(page(
        &format!("Clinic MIS — claims of {}", clinic.id),
        "Each claim goes to the insurer; the table shows when the insurer decided it and when this \
         clinic learned the decision, and how many status requests learning cost.",
        &live,
        "",
    ))
}

async fn claim_page(State(clinic): State<Arc<Clinic>>, Path(id): Path<String>) -> Response {
    let checked_before = clinic.insurer.counters.get(Reason::View);
    let claim = match clinic.view(&id).await {
        Ok(Some(claim)) => claim,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                Html(page("Not found", "", "<p>No such claim.</p>", "")),
            )
                .into_response();
        }
        Err(err) => {
            return (
                StatusCode::BAD_GATEWAY,
                Html(page("Unavailable", "", &escape(&err.to_string()), "")),
            )
                .into_response();
        }
    };
    let asked = clinic.insurer.counters.get(Reason::View) > checked_before;
    let live = format!(
        "<table><tbody><tr><th>status</th><td><span class=\"badge {status}\">{status}</span> (version {version})</td></tr>\
         <tr><th>insurer's claim</th><td>{insurer}</td></tr><tr><th>total</th><td>{total}</td></tr>\
         <tr><th>approved</th><td>{approved}</td></tr><tr><th>review</th><td>{mode}</td></tr>\
         <tr><th>due by</th><td>{due}</td></tr><tr><th>decided</th><td>{decided}</td></tr>\
         <tr><th>learned</th><td>{learned} ({via})</td></tr><tr><th>views</th><td>{views}</td></tr></tbody></table>\
         <p>{note}</p><p><a href=\"/\">All claims</a></p>",
        status = escape(&claim.status),
        version = claim.version,
        insurer = escape(claim.insurer_claim_id.as_deref().unwrap_or("")),
        total = claim.total,
        approved = claim
            .amount_approved
            .map(|m| m.to_string())
            .unwrap_or_default(),
        mode = escape(claim.review_mode.as_deref().unwrap_or("")),
        due = local(claim.decision_due_at),
        decided = local(claim.decided_at),
        learned = local(claim.learned_at),
        via = escape(claim.learned_via.as_deref().unwrap_or("")),
        views = claim.views,
        note = if asked {
            "Opening this pending claim asked the insurer for its status (on-view strategy)."
        } else if is_final(&claim.status) {
            "Final: nothing to ask."
        } else {
            ""
        },
    );
    Html(page(
        &format!("Claim {}", claim.clinic_claim_id),
        "",
        &live,
        "",
    ))
    .into_response()
}

async fn claims_json(State(clinic): State<Arc<Clinic>>) -> Json<Value> {
    let claims = clinic.db.list(100_000).unwrap_or_default();
    Json(json!({ "data": claims.iter().map(|c| claim_json(&clinic, c)).collect::<Vec<_>>() }))
}

async fn stats(State(clinic): State<Arc<Clinic>>) -> Json<Value> {
    Json(stats_json(&clinic))
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SubmitIn {
    #[serde(default)]
    patient_ref: Option<String>,
    #[serde(default)]
    policy_number: Option<String>,
    #[serde(default)]
    lines: Option<Vec<ServiceLine>>,
}

/// Submits a claim; an empty body makes a random one.
async fn submit(State(clinic): State<Arc<Clinic>>, body: axum::body::Bytes) -> Response {
    let input: SubmitIn = if body.iter().all(u8::is_ascii_whitespace) {
        SubmitIn::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(input) => input,
            Err(err) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"code": "bad_request", "detail": err.to_string()})),
                )
                    .into_response();
            }
        }
    };
    let (patient, policy, lines) = clinic.random_claim();
    let patient = input.patient_ref.unwrap_or(patient);
    let policy = input.policy_number.unwrap_or(policy);
    match clinic
        .submit(&patient, &policy, input.lines.unwrap_or(lines))
        .await
    {
        Ok(claim) => (StatusCode::CREATED, Json(claim_json(&clinic, &claim))).into_response(),
        Err(crate::ClinicError::Insurer(crate::client::ClientError::Refused { status, body }))
            if (400..500).contains(&status) =>
        {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"code": "refused_by_insurer", "detail": body})),
            )
                .into_response()
        }
        Err(err) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"code": "insurer_unavailable", "detail": err.to_string()})),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiverIn {
    up: bool,
}

async fn receiver(State(clinic): State<Arc<Clinic>>, Json(input): Json<ReceiverIn>) -> Json<Value> {
    clinic.set_receiver_up(input.up);
    Json(json!({ "receiver_up": clinic.receiver_up() }))
}

async fn events(
    State(clinic): State<Arc<Clinic>>,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let changes = tokio_stream::wrappers::WatchStream::new(clinic.subscribe())
        .map(|n| Ok(Event::default().data(n.to_string())));
    Sse::new(changes).keep_alive(KeepAlive::default())
}
