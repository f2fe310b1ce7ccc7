//! `idempotency-key` on the API's POSTs, as Svix and Stripe offer it: the first response to a key
//! (for one path) is kept for 24 hours and replayed to a retry with the same body; the same key
//! with another body is refused; a retry while the first is still running waits its turn with a
//! 409. Server errors are not kept, so a retry after one runs again.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::BodyLimit;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use vestnik_delivery::now_ms;
use vestnik_store::IdempotentResponse;

/// How long a kept response answers retries.
pub const KEPT_FOR_MS: i64 = 24 * 3_600_000;
/// Longest key accepted.
const MAX_KEY: usize = 256;
/// Largest response kept (the API's answers are far smaller).
const MAX_KEPT_BODY: usize = 1024 * 1024;

/// Keys whose first request is still being answered.
#[derive(Debug, Default, Clone)]
pub struct InFlight(Arc<Mutex<HashSet<String>>>);

struct Claimed(InFlight, String);

impl Drop for Claimed {
    fn drop(&mut self) {
        self.0
            .0
            .lock()
            .expect("in-flight keys lock")
            .remove(&self.1);
    }
}

pub async fn idempotent(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if request.method() != Method::POST {
        return Ok(next.run(request).await);
    }
    let Some(key) = request.headers().get("idempotency-key") else {
        return Ok(next.run(request).await);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY)
        .ok_or(ApiError::BadRequest {
            code: "invalid_idempotency_key",
            detail: format!("an idempotency key is 1 to {MAX_KEY} visible ASCII characters"),
        })?;
    let scoped = format!("{} {key}", request.uri().path());
    let limit = request
        .extensions()
        .get::<BodyLimit>()
        .map_or(usize::MAX, |l| l.0);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    let hash = hex::encode(Sha256::digest(&bytes));

    let claimed = {
        let mut keys = state.in_flight.0.lock().expect("in-flight keys lock");
        if !keys.insert(scoped.clone()) {
            return Err(ApiError::Conflict(
                "a request with this idempotency key is still being processed".into(),
            ));
        }
        Claimed(state.in_flight.clone(), scoped.clone())
    };
    if let Some(kept) = state.store.get_idempotent(&scoped).await? {
        drop(claimed);
        if kept.request_hash != hash {
            return Err(ApiError::Conflict(
                "this idempotency key was used with a different request body".into(),
            ));
        }
        let status =
            axum::http::StatusCode::from_u16(kept.status).unwrap_or(axum::http::StatusCode::OK);
        let mut response = (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            kept.body,
        )
            .into_response();
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(response);
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = response.status();
    if status.is_server_error() {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, MAX_KEPT_BODY)
        .await
        .unwrap_or_default();
    state
        .store
        .put_idempotent(
            &scoped,
            IdempotentResponse {
                request_hash: hash,
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
                created_at: now_ms(),
            },
        )
        .await?;
    drop(claimed);
    Ok(Response::from_parts(parts, Body::from(body)))
}
