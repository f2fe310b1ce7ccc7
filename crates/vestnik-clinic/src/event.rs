//! Reading a `claim.status_changed` event, in any format the insurer sends (simple JSON, FHIR R4
//! or R5 notification), or the insurer's claim JSON from a status request, into the one status
//! update the clinic applies. Pure.

use crate::db::StatusUpdate;
use serde_json::Value;
use vestnik_claims::money::Money;

fn time(value: &Value) -> Option<jiff::Timestamp> {
    value.as_str().and_then(|t| t.parse().ok())
}

/// The insurer's claim JSON (the `data` of a simple event, or a status response).
pub fn from_claim_json(data: &Value) -> Option<StatusUpdate> {
    Some(StatusUpdate {
        clinic_claim_id: data["clinic_claim_id"].as_str()?.to_owned(),
        insurer_claim_id: data["claim_id"].as_str()?.to_owned(),
        status: data["status"].as_str()?.to_owned(),
        version: u32::try_from(data["version"].as_u64()?).ok()?,
        review_mode: data["review_mode"].as_str().map(str::to_owned),
        decision_due_at: time(&data["decision_due_at"]),
        decided_at: time(&data["decided_at"]),
        amount_approved: data["amount_approved"]
            .as_str()
            .and_then(|m| Money::parse(m).ok()),
    })
}

fn benefit(total: &Value) -> Option<(Money, Money)> {
    let amount = |code: &str| {
        total
            .as_array()?
            .iter()
            .find(|t| t["category"]["coding"][0]["code"] == code)
            .and_then(|t| {
                let value = &t["amount"]["value"];
                let text = value.as_f64().map(|v| format!("{v:.2}"))?;
                Money::parse(&text).ok()
            })
    };
    Some((amount("submitted")?, amount("benefit")?))
}

/// A FHIR R4 (`history`) or R5 (`subscription-notification`) Bundle with a full ClaimResponse.
pub fn from_fhir(bundle: &Value) -> Option<StatusUpdate> {
    let entries = bundle["entry"].as_array()?;
    let status_entry = &entries.first()?["resource"];
    let version: u32 = match status_entry["resourceType"].as_str()? {
        "SubscriptionStatus" => status_entry["eventsSinceSubscriptionStart"]
            .as_str()?
            .parse()
            .ok()?,
        "Parameters" => status_entry["parameter"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "events-since-subscription-start")?["valueString"]
            .as_str()?
            .parse()
            .ok()?,
        _ => return None,
    };
    let response = entries
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "ClaimResponse")?;
    let complete = response["outcome"] == "complete";
    let amounts = benefit(&response["total"]);
    let status = if !complete {
        "in_review".to_owned()
    } else if let Some(code) = response["decision"]["coding"][0]["code"].as_str() {
        code.to_owned() // R5
    } else {
        // R4 has no decision: it follows from the amounts.
        let (submitted, approved) = amounts?;
        if approved == Money::ZERO {
            "denied"
        } else if approved == submitted {
            "approved"
        } else {
            "partial"
        }
        .to_owned()
    };
    Some(StatusUpdate {
        clinic_claim_id: response["request"]["identifier"]["value"]
            .as_str()?
            .to_owned(),
        insurer_claim_id: response["id"].as_str()?.to_owned(),
        status,
        version,
        review_mode: None,
        decision_due_at: None,
        decided_at: if complete {
            time(&response["created"])
        } else {
            None
        },
        amount_approved: if complete {
            amounts.map(|(_, approved)| approved)
        } else {
            None
        },
    })
}

/// Any event body the insurer sends.
pub fn parse_event(body: &[u8]) -> Option<StatusUpdate> {
    let value: Value = serde_json::from_slice(body).ok()?;
    if value["resourceType"] == "Bundle" {
        from_fhir(&value)
    } else if value["type"] == "claim.status_changed" {
        from_claim_json(&value["data"])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vestnik_claims::model::{
        ClaimStatus, ClaimSubmission, Decision, LineDecision, ReviewMode, ServiceLine,
    };
    use vestnik_claims::payload::{ClaimRecord, PayloadFormat, event};

    fn record(approved: [&str; 2]) -> ClaimRecord {
        let price = |p: &str| Money::parse(p).unwrap();
        let decision = Decision {
            lines: vec![
                LineDecision {
                    sequence: 1,
                    submitted: price("2500"),
                    approved: price(approved[0]),
                    reason: Some("ar001".into()),
                },
                LineDecision {
                    sequence: 2,
                    submitted: price("3000"),
                    approved: price(approved[1]),
                    reason: Some("ar001".into()),
                },
            ],
            reason: None,
            decided_by: "auto".into(),
        };
        ClaimRecord {
            id: "clm-000009".into(),
            submission: ClaimSubmission {
                clinic_id: "clinic-7".into(),
                clinic_claim_id: "CL-9".into(),
                patient_ref: "pat-1".into(),
                policy_number: "P".into(),
                lines: vec![
                    ServiceLine {
                        code: "a".into(),
                        description: String::new(),
                        quantity: 1,
                        unit_price: price("2500"),
                    },
                    ServiceLine {
                        code: "b".into(),
                        description: String::new(),
                        quantity: 1,
                        unit_price: price("3000"),
                    },
                ],
                total: price("5500"),
            },
            status: decision.status(),
            review_mode: ReviewMode::Auto,
            version: 2,
            submitted_at: "2026-03-02T07:00:00Z".parse().unwrap(),
            decision_due_at: None,
            decided_at: Some("2026-03-02T07:00:03Z".parse().unwrap()),
            decision: Some(decision),
        }
    }

    #[test]
    fn every_format_reads_back_to_the_same_update() {
        let now = "2026-03-02T07:00:04Z".parse().unwrap();
        for approved in [["2500", "3000"], ["2500", "0"], ["0", "0"]] {
            let record = record(approved);
            let expected_status = record.status.as_str();
            for format in PayloadFormat::ALL {
                let body = event(&record, format, "http://insurer", now).to_string();
                let update =
                    parse_event(body.as_bytes()).unwrap_or_else(|| panic!("{format:?} parses"));
                assert_eq!(update.clinic_claim_id, "CL-9", "{format:?}");
                assert_eq!(update.insurer_claim_id, "clm-000009");
                assert_eq!(update.status, expected_status, "{format:?}");
                assert_eq!(update.version, 2);
                assert_eq!(update.decided_at, record.decided_at, "{format:?}");
                assert_eq!(
                    update.amount_approved,
                    record.decision.as_ref().map(Decision::approved),
                    "{format:?}"
                );
            }
        }
        let mut pending = record(["2500", "3000"]);
        pending.decision = None;
        pending.status = ClaimStatus::InReview;
        pending.version = 1;
        for format in PayloadFormat::ALL {
            let update = parse_event(
                event(&pending, format, "http://insurer", now)
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
            assert_eq!(
                (update.status.as_str(), update.version),
                ("in_review", 1),
                "{format:?}"
            );
        }
        assert_eq!(parse_event(b"{\"type\":\"other\"}"), None);
        assert_eq!(parse_event(b"not json"), None);
    }
}
