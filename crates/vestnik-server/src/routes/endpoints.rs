//! `/api/v1/app/{app_id}/endpoint`: subscriber endpoints, their headers and secrets, recovery
//! and statistics.

use super::{find_app, find_endpoint};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams, parse_time};
use crate::models::*;
use crate::paging::paging;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use vestnik_core::EndpointId;
use vestnik_delivery::now_ms;
use vestnik_delivery::operational::rfc3339;
use vestnik_delivery::request::is_reserved;
use vestnik_signature::Secret;
use vestnik_store::{Endpoint, EndpointSecrets};

/// Most custom headers an endpoint may carry.
pub const MAX_CUSTOM_HEADERS: usize = 20;

fn parse_secret(text: Option<&str>, field: &str) -> ApiResult<Secret> {
    match text {
        None => Ok(Secret::generate()),
        Some(text) => Secret::parse(text).map_err(|err| ApiError::field(field, err.to_string())),
    }
}

fn check_headers(headers: &HashMap<String, String>) -> ApiResult<()> {
    if headers.len() > MAX_CUSTOM_HEADERS {
        return Err(ApiError::field(
            "headers",
            format!("at most {MAX_CUSTOM_HEADERS} headers"),
        ));
    }
    for (name, value) in headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() || HeaderValue::from_str(value).is_err()
        {
            return Err(ApiError::field(
                "headers",
                format!("`{name}` is not a valid HTTP header"),
            ));
        }
        if is_reserved(name) {
            return Err(ApiError::field(
                "headers",
                format!("`{name}` is set by Vestnik and cannot be overridden"),
            ));
        }
    }
    Ok(())
}

fn headers_text(headers: &HashMap<String, String>) -> String {
    serde_json::to_string(headers).expect("a map of strings serialises")
}

fn new_endpoint(
    app: &vestnik_store::Application,
    input: EndpointIn,
    now: i64,
) -> ApiResult<Endpoint> {
    let secret = parse_secret(input.secret.as_deref(), "secret")?;
    let headers = input.headers.unwrap_or_default();
    check_headers(&headers)?;
    Ok(Endpoint {
        id: EndpointId::generate(now as u64),
        app_id: app.id.clone(),
        uid: input.uid,
        url: input.url,
        description: input.description,
        disabled: input.disabled,
        event_types: input.event_types,
        channels: input.channels,
        metadata: serde_json::Value::Object(input.metadata).to_string(),
        throttle_rate: input.throttle_rate.map(u32::from),
        headers: headers_text(&headers),
        secrets: EndpointSecrets {
            current: secret.expose(),
            previous: Vec::new(),
        },
        failing_since: None,
        created_at: now,
        updated_at: now,
    })
}

async fn save(state: &AppState, endpoint: Endpoint) -> ApiResult<Endpoint> {
    let saved = state.store.update_endpoint(endpoint).await?;
    state.dispatcher.endpoint_changed(saved.id.clone());
    Ok(saved)
}

pub async fn list(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    query: QueryParams,
) -> ApiResult<Json<ListResponse<EndpointOut>>> {
    let paging = paging(&query, false)?;
    let app = find_app(&state, &app_id).await?;
    let endpoints = state.store.list_endpoints(&app.id, &paging.request).await?;
    Ok(Json(
        paging
            .finish(endpoints, |ep| ep.id.to_string())
            .map(|ep| EndpointOut::from(&ep)),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    JsonBody(input): JsonBody<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    input.validate()?;
    let app = find_app(&state, &app_id).await?;
    let endpoint = state
        .store
        .create_endpoint(new_endpoint(&app, input, now_ms())?)
        .await?;
    Ok((StatusCode::CREATED, Json(EndpointOut::from(&endpoint))))
}

pub async fn get(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Json<EndpointOut>> {
    let (_, endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    Ok(Json(EndpointOut::from(&endpoint)))
}

pub async fn put(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    input.validate()?;
    let app = find_app(&state, &app_id).await?;
    let now = now_ms();
    match state.store.get_endpoint(&app.id, &endpoint_id).await? {
        Some(existing) => {
            let endpoint = Endpoint {
                uid: input.uid.or(existing.uid.clone()),
                url: input.url,
                description: input.description,
                disabled: input.disabled,
                event_types: input.event_types,
                channels: input.channels,
                metadata: serde_json::Value::Object(input.metadata).to_string(),
                throttle_rate: input.throttle_rate.map(u32::from),
                updated_at: now,
                ..existing
            };
            Ok((
                StatusCode::OK,
                Json(EndpointOut::from(&save(&state, endpoint).await?)),
            ))
        }
        None => {
            check_uid("uid", Some(&endpoint_id))?;
            let mut endpoint = new_endpoint(&app, input, now)?;
            endpoint.uid = Some(endpoint_id);
            let endpoint = state.store.create_endpoint(endpoint).await?;
            Ok((StatusCode::CREATED, Json(EndpointOut::from(&endpoint))))
        }
    }
}

pub async fn patch(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<EndpointPatch>,
) -> ApiResult<Json<EndpointOut>> {
    let (_, mut endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    if let Some(url) = input.url {
        check_url(&url)?;
        endpoint.url = url;
    }
    if let Some(description) = input.description {
        endpoint.description = description;
    }
    if let Some(disabled) = input.disabled {
        endpoint.disabled = disabled;
        if !disabled {
            endpoint.failing_since = None;
        }
    }
    if let Some(types) = input.event_types {
        for name in types.iter().flatten() {
            check_event_type("eventTypes", name)?;
        }
        endpoint.event_types = types;
    }
    if let Some(channels) = input.channels {
        check_channels("channels", channels.as_deref())?;
        endpoint.channels = channels;
    }
    if let Some(uid) = input.uid {
        check_uid("uid", uid.as_deref())?;
        endpoint.uid = uid;
    }
    if let Some(metadata) = input.metadata {
        check_metadata(&metadata)?;
        endpoint.metadata = serde_json::Value::Object(metadata).to_string();
    }
    if let Some(rate) = input.throttle_rate {
        if rate == Some(0) {
            return Err(ApiError::field(
                "throttleRate",
                "throttleRate must be at least 1",
            ));
        }
        endpoint.throttle_rate = rate.map(u32::from);
    }
    endpoint.updated_at = now_ms();
    Ok(Json(EndpointOut::from(&save(&state, endpoint).await?)))
}

pub async fn remove(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (_, endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    state.store.delete_endpoint(&endpoint.id).await?;
    state.dispatcher.endpoint_changed(endpoint.id);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_headers(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let (_, endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    let headers: serde_json::Value =
        serde_json::from_str(&endpoint.headers).unwrap_or_else(|_| json!({}));
    Ok(Json(json!({ "headers": headers, "sensitive": [] })))
}

#[derive(Deserialize)]
pub struct HeadersIn {
    headers: HashMap<String, String>,
}

#[derive(Deserialize)]
pub struct HeadersPatchIn {
    headers: HashMap<String, Option<String>>,
}

pub async fn put_headers(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<HeadersIn>,
) -> ApiResult<StatusCode> {
    check_headers(&input.headers)?;
    let (_, mut endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    endpoint.headers = headers_text(&input.headers);
    endpoint.updated_at = now_ms();
    save(&state, endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn patch_headers(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<HeadersPatchIn>,
) -> ApiResult<StatusCode> {
    let (_, mut endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    let mut headers: HashMap<String, String> =
        serde_json::from_str(&endpoint.headers).unwrap_or_default();
    for (name, value) in input.headers {
        match value {
            Some(value) => headers.insert(name, value),
            None => headers.remove(&name),
        };
    }
    check_headers(&headers)?;
    endpoint.headers = headers_text(&headers);
    endpoint.updated_at = now_ms();
    save(&state, endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_secret(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let (_, endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    Ok(Json(json!({ "key": endpoint.secrets.current })))
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let input = RotateIn::parse(&body)?;
    let grace_ms = input.grace_ms()?;
    let secret = parse_secret(input.key.as_deref(), "key")?;
    let (_, mut endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    let now = now_ms();
    endpoint.secrets = endpoint.secrets.rotated(secret.expose(), now, grace_ms);
    endpoint.updated_at = now;
    save(&state, endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct RecoverIn {
    since: String,
    #[serde(default)]
    until: Option<String>,
}

pub async fn recover(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<RecoverIn>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let since = parse_time(&input.since)
        .ok_or_else(|| ApiError::field("since", "since must be an RFC 3339 date-time"))?;
    let until = input
        .until
        .map(|u| {
            parse_time(&u)
                .ok_or_else(|| ApiError::field("until", "until must be an RFC 3339 date-time"))
        })
        .transpose()?;
    let (_, endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    let now = now_ms();
    let recovered = state.store.recover(&endpoint.id, since, until, now).await?;
    tracing::info!(endpoint_id = %endpoint.id, recovered, "recover requested");
    state.dispatcher.wake();
    let task = format!(
        "qtask_{}",
        &vestnik_core::MessageId::generate(now as u64).as_str()[4..]
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({ "id": task, "status": "running", "task": "endpoint.recover", "updatedAt": rfc3339(now) }),
        ),
    ))
}

pub async fn stats(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    query: QueryParams,
) -> ApiResult<Json<serde_json::Value>> {
    let since = query.time("since")?;
    let until = query.time("until")?;
    let (_, endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    let stats = state
        .store
        .endpoint_stats(&endpoint.id, since, until)
        .await?;
    Ok(Json(json!({
        "success": stats.success,
        "pending": stats.pending,
        "sending": stats.sending,
        "fail": stats.fail,
        "canceled": 0,
    })))
}
