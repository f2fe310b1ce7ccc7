//! `POST /in/{source_id}`: where senders deliver. The request is verified, stored durably
//! (accepted, duplicate or rejected) and only then answered; accepted ones are queued to the
//! source's destinations.

use super::sources::{find_source, parse_config};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::json;
use std::net::SocketAddr;
use vestnik_delivery::now_ms;
use vestnik_inbound::{Receipt, Received, Rejection};

pub async fn receive(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(source_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let received_at = now_ms();
    let source = find_source(&state, &source_id).await?;
    let config = parse_config(&source)?;
    let limit = config.max_body_bytes;
    let (bytes, declared_size) = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => (bytes, None),
        Err(_) => {
            let declared = headers
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(limit + 1);
            (axum::body::Bytes::new(), Some(declared))
        }
    };
    let received = Received {
        remote: vestnik_inbound::extract::client_address(
            peer.ip(),
            headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
            &state.trusted_proxies,
        ),
        method: method.as_str(),
        path: uri.path(),
        headers: &headers,
        body: &bytes,
        declared_size,
        received_at,
    };
    let receipt = if declared_size.is_some() {
        let rejection = Rejection {
            status: 413,
            code: "payload_too_large",
            detail: format!("the body is larger than this source's limit of {limit} bytes"),
        };
        vestnik_inbound::record_rejection(
            &*state.store,
            &source,
            &config,
            &received,
            rejection,
            &state.inbound,
        )
        .await?
    } else {
        let lease = state.dispatcher.lease_for_new_tasks(received_at);
        vestnik_inbound::receive(
            &*state.store,
            &source,
            &config,
            &received,
            lease,
            &state.inbound,
        )
        .await?
    };
    let source_label = source.id.to_string();
    match receipt {
        Receipt::Accepted { request, tasks } => {
            metrics::counter!("vestnik_inbound_requests_total", "source" => source_label, "result" => "accepted").increment(1);
            tracing::debug!(source_id = %source.id, request_id = %request, destinations = tasks.len(), "inbound request accepted");
            if tasks.is_empty() {
                state.dispatcher.wake();
            } else {
                state.dispatcher.submit(tasks);
            }
            Ok((
                StatusCode::OK,
                Json(json!({ "id": request.as_str(), "status": "accepted" })),
            ))
        }
        Receipt::Duplicate { request, original } => {
            metrics::counter!("vestnik_inbound_requests_total", "source" => source_label, "result" => "duplicate").increment(1);
            tracing::debug!(source_id = %source.id, request_id = %request, duplicate_of = %original, "inbound request is a duplicate");
            Ok((
                StatusCode::OK,
                Json(
                    json!({ "id": request.as_str(), "status": "duplicate", "duplicateOf": original.as_str() }),
                ),
            ))
        }
        Receipt::Rejected { request, rejection } => {
            metrics::counter!("vestnik_inbound_requests_total", "source" => source_label, "result" => "rejected").increment(1);
            tracing::info!(source_id = %source.id, request_id = %request, code = rejection.code, remote = %peer.ip(), "inbound request rejected");
            state
                .alerts
                .rejected(&source, rejection.code, received_at)
                .await;
            Err(ApiError::Refused {
                status: StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::UNAUTHORIZED),
                code: rejection.code,
                detail: rejection.detail,
            })
        }
    }
}
