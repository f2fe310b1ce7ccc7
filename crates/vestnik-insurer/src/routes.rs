//! The insurer's HTTP API: submit a claim, read it (optionally long-polling for a change), list
//! claims for sweeps, decide one by hand, FHIR views, request counts and a change stream for
//! pages. Errors are `{"code", "detail"}` with a 4xx status.

use crate::Insurer;
use crate::state::{ClaimError, Submitted};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use vestnik_claims::model::{ClaimStatus, ClaimSubmission, Decision, LineDecision};
use vestnik_claims::money::Money;
use vestnik_claims::payload::{self, ClaimRecord, PayloadFormat};

/// Longest long-poll, seconds.
pub const MAX_WAIT_SECONDS: u64 = 30;

#[derive(Debug)]
pub struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "code": self.1, "detail": self.2 }))).into_response()
    }
}

impl From<ClaimError> for ApiError {
    fn from(err: ClaimError) -> Self {
        match err {
            ClaimError::Invalid(invalid) => Self(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_claim",
                invalid.to_string(),
            ),
            ClaimError::NotFound(_) => Self(StatusCode::NOT_FOUND, "not_found", err.to_string()),
            ClaimError::AlreadyDecided(_) => {
                Self(StatusCode::CONFLICT, "already_decided", err.to_string())
            }
        }
    }
}

fn bad_request(detail: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "bad_request", detail.into())
}

/// JSON bodies with the serde error as the detail (400 for syntax, 422 for shape).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_claim",
            err.to_string(),
        ),
        _ => bad_request(format!("the body is not valid JSON: {err}")),
    })
}

/// A claim as the API shows it: the same fields as the `claim.status_changed` event's `data`.
pub fn claim_json(record: &ClaimRecord, insurer_url: &str) -> Value {
    let event = payload::simple_event(
        record,
        insurer_url,
        record.decided_at.unwrap_or(record.submitted_at),
    );
    let mut data = event["data"].clone();
    data["lines_submitted"] = json!(record.submission.lines);
    data["patient_ref"] = json!(record.submission.patient_ref);
    data
}

pub async fn submit(
    State(insurer): State<Arc<Insurer>>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    insurer.counters.submit.fetch_add(1, Ordering::Relaxed);
    let submission: ClaimSubmission = parse(&body)?;
    match insurer.submit(submission)? {
        Submitted::New(record, _) => Ok((
            StatusCode::CREATED,
            Json(claim_json(&record, &insurer.public_url)),
        )),
        Submitted::Existing(record) => Ok((
            StatusCode::OK,
            Json(claim_json(&record, &insurer.public_url)),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct GetQuery {
    wait: Option<String>,
}

pub async fn get(
    State(insurer): State<Arc<Insurer>>,
    Path(id): Path<String>,
    Query(query): Query<GetQuery>,
) -> Result<Json<Value>, ApiError> {
    // `wait` is in seconds on the insurer's clock, so a scaled demo holds a 30 s long-poll for
    // 30 simulated seconds.
    let wait = match query.wait.as_deref() {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(seconds) if seconds <= MAX_WAIT_SECONDS => Some(Duration::from_secs_f64(
                seconds as f64 / insurer.claims.clock().scale(),
            )),
            _ => {
                return Err(bad_request(format!(
                    "wait is 0 to {MAX_WAIT_SECONDS} seconds"
                )));
            }
        },
    };
    let counter = if wait.is_some() {
        &insurer.counters.long_poll
    } else {
        &insurer.counters.status
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let record = insurer
        .claims
        .get(&id)
        .ok_or_else(|| ClaimError::NotFound(id.clone()))?;
    let Some(wait) = wait else {
        return Ok(Json(claim_json(&record, &insurer.public_url)));
    };
    // Answer as soon as the status changes, or when the wait is over with the status unchanged.
    let mut changes = insurer.claims.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    let mut current = record;
    let initial = current.status;
    while current.status == initial {
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => current = insurer.claims.get(&id).unwrap_or(current),
            _ => break,
        }
    }
    Ok(Json(claim_json(&current, &insurer.public_url)))
}

pub async fn list(
    State(insurer): State<Arc<Insurer>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    insurer.counters.list.fetch_add(1, Ordering::Relaxed);
    let status = match query.get("status") {
        None => None,
        Some(text) => Some(ClaimStatus::parse(text).ok_or_else(|| {
            bad_request("status is received, in_review, approved, partial or denied")
        })?),
    };
    let claims = insurer
        .claims
        .list(status, query.get("clinic_id").map(String::as_str));
    let data: Vec<Value> = claims
        .iter()
        .map(|c| claim_json(c, &insurer.public_url))
        .collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineIn {
    approved: Money,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionIn {
    /// `approved`, `partial` or `denied`.
    decision: String,
    #[serde(default)]
    lines: Option<Vec<LineIn>>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    reviewer: Option<String>,
}

/// A reviewer's decision: `approved` and `denied` apply to every line; `partial` names the
/// approved amount (and a reason) per line.
pub async fn decide(
    State(insurer): State<Arc<Insurer>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: DecisionIn = parse(&body)?;
    let record = insurer
        .claims
        .get(&id)
        .ok_or_else(|| ClaimError::NotFound(id.clone()))?;
    let reviewer = input
        .reviewer
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "reviewer".into());
    let submitted: Vec<Money> = record
        .submission
        .lines
        .iter()
        .map(|l| l.net().unwrap_or(Money::ZERO))
        .collect();
    let reason = input.reason.clone();
    let lines: Vec<LineDecision> = match (input.decision.as_str(), input.lines) {
        ("approved", _) => submitted
            .iter()
            .enumerate()
            .map(|(i, s)| line(i, *s, *s, None))
            .collect(),
        ("denied", _) => {
            let why = reason
                .clone()
                .unwrap_or_else(|| "Denied by the reviewer".into());
            submitted
                .iter()
                .enumerate()
                .map(|(i, s)| line(i, *s, Money::ZERO, Some(why.clone())))
                .collect()
        }
        ("partial", Some(lines)) => submitted
            .iter()
            .zip(lines)
            .enumerate()
            .map(|(i, (s, l))| line(i, *s, l.approved, l.reason))
            .collect(),
        ("partial", None) => {
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_decision",
                "a partial decision names the approved amount of every line".into(),
            ));
        }
        _ => {
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_decision",
                "decision is approved, partial or denied".into(),
            ));
        }
    };
    let decision = Decision {
        lines,
        reason,
        decided_by: format!("reviewer:{reviewer}"),
    };
    let wanted = input.decision.clone();
    let updated = insurer.decide_by_hand(&id, decision)?;
    if updated.status.as_str() != wanted {
        tracing::info!(claim = %id, wanted, got = updated.status.as_str(), "the amounts decided the kind of decision");
    }
    Ok(Json(claim_json(&updated, &insurer.public_url)))
}

fn line(index: usize, submitted: Money, approved: Money, reason: Option<String>) -> LineDecision {
    LineDecision {
        sequence: index as u32 + 1,
        submitted,
        approved,
        reason,
    }
}

pub async fn fhir_claim_response(
    State(insurer): State<Arc<Insurer>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let format = match query.get("fhirVersion").map(String::as_str) {
        None | Some("5.0") => PayloadFormat::FhirR5,
        Some("4.0") => PayloadFormat::FhirR4,
        Some(_) => return Err(bad_request("fhirVersion is 4.0 or 5.0")),
    };
    let record = insurer
        .claims
        .get(&id)
        .ok_or_else(|| ClaimError::NotFound(id.clone()))?;
    let body = payload::claim_response(&record, format, &insurer.public_url);
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/fhir+json")],
        body.to_string(),
    )
        .into_response())
}

pub async fn stats(State(insurer): State<Arc<Insurer>>) -> Json<Value> {
    let c = &insurer.counters;
    let all = insurer.claims.list(None, None);
    let count = |status: ClaimStatus| all.iter().filter(|r| r.status == status).count();
    Json(json!({
        "requests": {
            "submit": c.submit.load(Ordering::Relaxed),
            "status": c.status.load(Ordering::Relaxed),
            "long_poll": c.long_poll.load(Ordering::Relaxed),
            "list": c.list.load(Ordering::Relaxed),
        },
        "claims": {
            "total": all.len(),
            "in_review": count(ClaimStatus::InReview),
            "approved": count(ClaimStatus::Approved),
            "partial": count(ClaimStatus::Partial),
            "denied": count(ClaimStatus::Denied),
        },
        "simulated_now": insurer.simulated_now().to_string(),
    }))
}
