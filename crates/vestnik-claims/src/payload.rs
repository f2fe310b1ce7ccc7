//! The insurer's record of a claim and the `claim.status_changed` event built from it, in the
//! three formats a clinic can subscribe to: simple JSON, and FHIR R4 (Subscriptions Backport,
//! `history` Bundle) or R5 (`subscription-notification` Bundle) with a full `ClaimResponse`. In
//! FHIR "approved/partial/denied" is `ClaimResponse.decision` (R5), not `outcome` (which says
//! whether processing finished); R4 has no `decision`, so it is carried by the amounts.

use crate::model::{ClaimStatus, ClaimSubmission, Decision, ReviewMode};
use crate::money::{CURRENCY, Money};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The insurer's record of one claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub id: String,
    pub submission: ClaimSubmission,
    pub status: ClaimStatus,
    pub review_mode: ReviewMode,
    /// 1 on receipt, +1 at every status change.
    pub version: u32,
    pub submitted_at: Timestamp,
    /// For manual review: the end of the 20th business day.
    pub decision_due_at: Option<Timestamp>,
    pub decision: Option<Decision>,
    pub decided_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PayloadFormat {
    #[serde(rename = "json")]
    Json,
    #[serde(rename = "fhir-r4")]
    FhirR4,
    #[serde(rename = "fhir-r5")]
    FhirR5,
}

impl PayloadFormat {
    pub const ALL: [Self; 3] = [Self::Json, Self::FhirR4, Self::FhirR5];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::FhirR4 => "fhir-r4",
            Self::FhirR5 => "fhir-r5",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| format.as_str() == text)
    }
}

pub const EVENT_TYPE: &str = "claim.status_changed";
const TOPIC: &str = "https://vestnik.example/fhir/SubscriptionTopic/claim-decision";

fn rfc3339(at: Timestamp) -> String {
    format!("{at:.3}")
}

/// The event in the chosen format.
pub fn event(
    record: &ClaimRecord,
    format: PayloadFormat,
    insurer_url: &str,
    now: Timestamp,
) -> Value {
    match format {
        PayloadFormat::Json => simple_event(record, insurer_url, now),
        PayloadFormat::FhirR4 | PayloadFormat::FhirR5 => {
            fhir_notification(record, format, insurer_url, now)
        }
    }
}

/// `{type, timestamp, data}` with amounts as decimal strings.
pub fn simple_event(record: &ClaimRecord, insurer_url: &str, now: Timestamp) -> Value {
    let decision = record.decision.as_ref();
    json!({
        "type": EVENT_TYPE,
        "timestamp": rfc3339(now),
        "data": {
            "claim_id": record.id,
            "clinic_id": record.submission.clinic_id,
            "clinic_claim_id": record.submission.clinic_claim_id,
            "status": record.status.as_str(),
            "decision": decision.map(|d| d.status().as_str()),
            "review_mode": record.review_mode,
            "version": record.version,
            "currency": CURRENCY,
            "amount_submitted": record.submission.total,
            "amount_approved": decision.map(Decision::approved),
            "reason": decision.and_then(|d| d.reason.clone()),
            "lines": decision.map(|d| &d.lines),
            "submitted_at": rfc3339(record.submitted_at),
            "decision_due_at": record.decision_due_at.map(rfc3339),
            "decided_at": record.decided_at.map(rfc3339),
            "links": { "claim": format!("{insurer_url}/claims/{}", record.id) },
        }
    })
}

fn coding(system: &str, code: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code }] })
}

fn money(amount: Money) -> Value {
    // FHIR Money.value is a JSON decimal, built from the exact decimal string.
    let value: serde_json::Number = amount
        .to_string()
        .parse()
        .expect("a decimal string is a JSON number");
    json!({ "value": value, "currency": CURRENCY })
}

fn adjudication(category: &str, amount: Money, reason: Option<&str>) -> Value {
    let mut entry = json!({
        "category": coding("http://terminology.hl7.org/CodeSystem/adjudication", category),
        "amount": money(amount),
    });
    if let Some(reason) = reason {
        let code = if reason.starts_with("ar002") {
            "ar002"
        } else {
            "ar001"
        };
        entry["reason"] = json!({ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/adjudication-reason",
            "code": code, "display": reason,
        }]});
    }
    entry
}

/// The `ClaimResponse` for the record's current state.
pub fn claim_response(record: &ClaimRecord, format: PayloadFormat, insurer_url: &str) -> Value {
    let created = rfc3339(record.decided_at.unwrap_or(record.submitted_at));
    let mut response = json!({
        "resourceType": "ClaimResponse",
        "id": record.id,
        "identifier": [{ "system": format!("{insurer_url}/claims"), "value": record.id }],
        "status": "active",
        "type": coding("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
        "use": "claim",
        "patient": { "reference": format!("Patient/{}", record.submission.patient_ref) },
        "created": created,
        "insurer": { "reference": "Organization/insurer" },
        "requestor": { "reference": format!("Organization/{}", record.submission.clinic_id) },
        "request": { "identifier": {
            "system": format!("urn:vestnik:clinic:{}:claim", record.submission.clinic_id),
            "value": record.submission.clinic_claim_id,
        }},
    });
    let submitted = record.submission.total;
    match &record.decision {
        None => {
            response["outcome"] = json!("queued");
            response["disposition"] = json!(match record.decision_due_at {
                Some(due) => format!("In manual review; decision due by {}", rfc3339(due)),
                None => "In automatic review".to_owned(),
            });
            response["total"] = json!([adjudication("submitted", submitted, None)]);
            if format == PayloadFormat::FhirR5 {
                response["decision"] = coding("http://hl7.org/fhir/claim-decision", "pending");
            }
        }
        Some(decision) => {
            response["outcome"] = json!("complete");
            if let Some(reason) = &decision.reason {
                response["disposition"] = json!(reason);
            }
            response["item"] = decision
                .lines
                .iter()
                .map(|line| {
                    json!({
                        "itemSequence": line.sequence,
                        "adjudication": [
                            adjudication("submitted", line.submitted, None),
                            adjudication("benefit", line.approved, line.reason.as_deref()),
                        ],
                    })
                })
                .collect();
            response["total"] = json!([
                adjudication("submitted", decision.submitted(), None),
                adjudication("benefit", decision.approved(), None),
            ]);
            if format == PayloadFormat::FhirR5 {
                response["decision"] = coding(
                    "http://hl7.org/fhir/claim-decision",
                    decision.status().as_str(),
                );
            }
        }
    }
    response
}

/// A subscription notification carrying the `ClaimResponse` in full; the claim's version is the
/// event number, so a clinic detects gaps and stale events the FHIR way.
pub fn fhir_notification(
    record: &ClaimRecord,
    format: PayloadFormat,
    insurer_url: &str,
    now: Timestamp,
) -> Value {
    let response_url = format!("{insurer_url}/fhir/ClaimResponse/{}", record.id);
    let subscription = format!(
        "{insurer_url}/fhir/Subscription/{}",
        record.submission.clinic_id
    );
    let number = record.version.to_string();
    let status_url = format!("urn:uuid:{}", pseudo_uuid(&record.id, record.version));
    let claim_response = json!({
        "fullUrl": response_url,
        "resource": claim_response(record, format, insurer_url),
        "request": { "method": "PUT", "url": format!("ClaimResponse/{}", record.id) },
        "response": { "status": "200" },
    });
    if format == PayloadFormat::FhirR5 {
        json!({
            "resourceType": "Bundle",
            "type": "subscription-notification",
            "timestamp": rfc3339(now),
            "entry": [
                { "fullUrl": status_url, "resource": {
                    "resourceType": "SubscriptionStatus",
                    "status": "active",
                    "type": "event-notification",
                    "eventsSinceSubscriptionStart": number,
                    "notificationEvent": [{
                        "eventNumber": number,
                        "timestamp": rfc3339(now),
                        "focus": { "reference": response_url, "type": "ClaimResponse" },
                    }],
                    "subscription": { "reference": subscription },
                    "topic": TOPIC,
                }},
                claim_response,
            ],
        })
    } else {
        json!({
            "resourceType": "Bundle",
            "type": "history",
            "timestamp": rfc3339(now),
            "meta": { "profile": ["http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4"] },
            "entry": [
                { "fullUrl": status_url,
                  "resource": {
                    "resourceType": "Parameters",
                    "meta": { "profile": ["http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"] },
                    "parameter": [
                        { "name": "subscription", "valueReference": { "reference": subscription } },
                        { "name": "topic", "valueCanonical": TOPIC },
                        { "name": "status", "valueCode": "active" },
                        { "name": "type", "valueCode": "event-notification" },
                        { "name": "events-since-subscription-start", "valueString": number },
                        { "name": "notification-event", "part": [
                            { "name": "event-number", "valueString": number },
                            { "name": "timestamp", "valueInstant": rfc3339(now) },
                            { "name": "focus", "valueReference": { "reference": response_url } },
                        ]},
                    ],
                  },
                  "request": { "method": "GET", "url": format!("{subscription}/$status") },
                  "response": { "status": "200" } },
                claim_response,
            ],
        })
    }
}

/// A stable UUID-shaped id for the status entry of one event (FHIR wants `urn:uuid:` there).
fn pseudo_uuid(claim: &str, version: u32) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in claim.bytes().chain(version.to_le_bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let hex = format!(
        "{hash:016x}{:016x}",
        hash.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15
    );
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LineDecision, ServiceLine};

    pub fn decided_record() -> ClaimRecord {
        let line = |code: &str, price: &str| ServiceLine {
            code: code.into(),
            description: String::new(),
            quantity: 1,
            unit_price: Money::parse(price).unwrap(),
        };
        ClaimRecord {
            id: "clm-1001".into(),
            submission: ClaimSubmission {
                clinic_id: "clinic-7".into(),
                clinic_claim_id: "CL-2025-000123".into(),
                patient_ref: "pat-42".into(),
                policy_number: "DMS-555".into(),
                lines: vec![
                    line("consult-therapist", "2500"),
                    line("xray-chest", "3000"),
                ],
                total: Money::parse("5500").unwrap(),
            },
            status: ClaimStatus::Partial,
            review_mode: ReviewMode::Manual,
            version: 3,
            submitted_at: "2025-10-23T07:15:00Z".parse().unwrap(),
            decision_due_at: Some("2025-11-21T20:59:59Z".parse().unwrap()),
            decision: Some(Decision {
                lines: vec![
                    LineDecision {
                        sequence: 1,
                        submitted: Money::parse("2500").unwrap(),
                        approved: Money::parse("2500").unwrap(),
                        reason: None,
                    },
                    LineDecision {
                        sequence: 2,
                        submitted: Money::parse("3000").unwrap(),
                        approved: Money::ZERO,
                        reason: Some("ar001: not covered".into()),
                    },
                ],
                reason: Some("Item 2 is not covered".into()),
                decided_by: "reviewer:anna".into(),
            }),
            decided_at: Some("2025-11-14T13:02:00Z".parse().unwrap()),
        }
    }

    #[test]
    fn the_simple_event_carries_decimal_strings_and_the_version() {
        let event = simple_event(
            &decided_record(),
            "http://insurer",
            "2025-11-14T13:02:01Z".parse().unwrap(),
        );
        assert_eq!(event["type"], "claim.status_changed");
        let data = &event["data"];
        assert_eq!(data["status"], "partial");
        assert_eq!(data["decision"], "partial");
        assert_eq!(data["version"], 3);
        assert_eq!(data["amount_submitted"], "5500.00");
        assert_eq!(data["amount_approved"], "2500.00");
        assert_eq!(data["decided_at"], "2025-11-14T13:02:00.000Z");
        assert_eq!(data["links"]["claim"], "http://insurer/claims/clm-1001");
    }

    #[test]
    fn fhir_puts_the_decision_in_decision_for_r5_and_only_in_amounts_for_r4() {
        let record = decided_record();
        let now = "2025-11-14T13:02:01Z".parse().unwrap();
        let r5 = fhir_notification(&record, PayloadFormat::FhirR5, "http://insurer", now);
        assert_eq!(r5["type"], "subscription-notification");
        assert_eq!(
            r5["entry"][0]["resource"]["eventsSinceSubscriptionStart"],
            "3"
        );
        let response = &r5["entry"][1]["resource"];
        assert_eq!(response["outcome"], "complete");
        assert_eq!(response["decision"]["coding"][0]["code"], "partial");
        assert_eq!(
            response["total"][1]["amount"]["value"].as_f64(),
            Some(2500.0)
        );
        let r4 = fhir_notification(&record, PayloadFormat::FhirR4, "http://insurer", now);
        assert_eq!(r4["type"], "history");
        assert_eq!(r4["entry"][0]["resource"]["resourceType"], "Parameters");
        assert!(r4["entry"][1]["resource"].get("decision").is_none());
        let mut pending = record.clone();
        pending.decision = None;
        pending.status = ClaimStatus::InReview;
        let r5 = claim_response(&pending, PayloadFormat::FhirR5, "http://insurer");
        assert_eq!(
            (
                r5["outcome"].as_str(),
                r5["decision"]["coding"][0]["code"].as_str()
            ),
            (Some("queued"), Some("pending"))
        );
    }
}
