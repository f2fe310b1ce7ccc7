//! `/api/v1/source` (a Vestnik extension): inbound sources, their secrets and destinations,
//! the request log and replay. A source's destinations are the endpoints of its reserved
//! application, so they are also reachable through the endpoint and attempt APIs.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams, parse_time};
use crate::models::{ListResponse, RotateIn, check_uid, check_url};
use crate::paging::paging;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vestnik_core::{AppId, EndpointId, RequestId, SourceId};
use vestnik_delivery::handler::{HANDLER_SCHEME, handler_url};
use vestnik_delivery::now_ms;
use vestnik_delivery::operational::{INBOUND_APP_UID_PREFIX, rfc3339};
use vestnik_inbound::{EventIdRule, Scheme, SourceConfig};
use vestnik_signature::Secret;
use vestnik_store::{
    Application, Endpoint, EndpointSecrets, Handling, PageRequest, ReplaySelection, RequestFilter,
    RequestFilterStatus, RequestStatus, RequestView, Source,
};

/// Most destinations a source may have.
const MAX_DESTINATIONS: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationIn {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    handler: Option<String>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceIn {
    name: String,
    #[serde(default)]
    uid: Option<String>,
    verification: Scheme,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    tolerance_seconds: Option<i64>,
    #[serde(default)]
    allowed_ips: Vec<ipnet::IpNet>,
    #[serde(default)]
    event_id: Option<EventIdRule>,
    #[serde(default)]
    forward_headers: Vec<String>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    #[serde(default)]
    destinations: Option<Vec<DestinationIn>>,
}

impl SourceIn {
    fn config(&self) -> ApiResult<SourceConfig> {
        let mut config = SourceConfig::new(self.verification.clone());
        if let Some(seconds) = self.tolerance_seconds {
            config.tolerance_seconds = seconds;
        }
        if let Some(bytes) = self.max_body_bytes {
            config.max_body_bytes = bytes;
        }
        config.allowed_ips = self.allowed_ips.clone();
        config.event_id = self.event_id.clone();
        config.forward_headers = self.forward_headers.clone();
        config.validated().map_err(|err| match err {
            vestnik_inbound::ConfigError::Invalid { field, message } => {
                ApiError::field(field, message)
            }
        })
    }

    fn validate(&self) -> ApiResult<()> {
        if self.name.trim().is_empty() || self.name.len() > 256 {
            return Err(ApiError::field("name", "name must be 1 to 256 characters"));
        }
        check_uid("uid", self.uid.as_deref())?;
        if self
            .uid
            .as_deref()
            .is_some_and(|uid| uid.starts_with(SourceId::PREFIX))
        {
            return Err(ApiError::field(
                "uid",
                "a uid may not look like a source id",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationOut {
    endpoint_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    handler: Option<String>,
    event_types: Option<Vec<String>>,
    disabled: bool,
}

impl From<&Endpoint> for DestinationOut {
    fn from(endpoint: &Endpoint) -> Self {
        let handler = endpoint
            .url
            .strip_prefix(HANDLER_SCHEME)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::to_owned);
        Self {
            endpoint_id: endpoint.id.to_string(),
            url: handler.is_none().then(|| endpoint.url.clone()),
            handler,
            event_types: endpoint.event_types.clone(),
            disabled: endpoint.disabled,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceOut {
    id: String,
    uid: Option<String>,
    name: String,
    /// Where the sender posts: `POST {gateway}{ingestPath}`.
    ingest_path: String,
    #[serde(flatten)]
    config: SourceConfig,
    /// The reserved application holding the destinations as endpoints.
    app_id: String,
    destinations: Vec<DestinationOut>,
    created_at: String,
    updated_at: String,
}

fn source_out(source: Source, destinations: &[Endpoint]) -> ApiResult<SourceOut> {
    let config = parse_config(&source)?;
    Ok(SourceOut {
        ingest_path: format!("/in/{}", source.id),
        id: source.id.into_string(),
        uid: source.uid,
        name: source.name,
        config,
        app_id: source.app_id.into_string(),
        destinations: destinations.iter().map(DestinationOut::from).collect(),
        created_at: rfc3339(source.created_at),
        updated_at: rfc3339(source.updated_at),
    })
}

pub fn parse_config(source: &Source) -> ApiResult<SourceConfig> {
    SourceConfig::from_json(&source.config).map_err(|err| ApiError::Internal(Box::new(err)))
}

pub async fn find_source(state: &AppState, key: &str) -> ApiResult<Source> {
    state
        .store
        .get_source(key)
        .await?
        .ok_or(ApiError::NotFound("source"))
}

async fn destinations_of(state: &AppState, app: &AppId) -> ApiResult<Vec<Endpoint>> {
    let page = PageRequest::first(MAX_DESTINATIONS * 2, true);
    Ok(state.store.list_endpoints(app, &page).await?)
}

/// The secret a new source starts with: the one given, or a fresh one where the scheme lets
/// Vestnik choose it (Stripe and Shopify issue theirs, so it must be given).
fn initial_secret(scheme: &Scheme, given: Option<String>) -> ApiResult<String> {
    if let Some(secret) = given {
        return check_secret(scheme, secret, "secret");
    }
    let random =
        || base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Secret::generate().expose());
    match scheme {
        Scheme::StandardWebhooks => Ok(Secret::generate().expose()),
        Scheme::Stripe | Scheme::Shopify => Err(ApiError::field(
            "secret",
            format!(
                "{} issues the signing secret; pass it as secret",
                scheme.name()
            ),
        )),
        Scheme::Basic => Ok(format!("vestnik:{}", random())),
        Scheme::None => Ok(String::new()),
        _ => Ok(random()),
    }
}

fn check_secret(scheme: &Scheme, secret: String, field: &str) -> ApiResult<String> {
    if secret.is_empty() || secret.len() > 1024 {
        return Err(ApiError::field(field, "a secret is 1 to 1024 characters"));
    }
    match scheme {
        Scheme::StandardWebhooks => Secret::parse(&secret)
            .map(|_| secret)
            .map_err(|err| ApiError::field(field, err.to_string())),
        Scheme::Basic if !secret.contains(':') => Err(ApiError::field(
            field,
            "a basic-auth secret is user:password",
        )),
        _ => Ok(secret),
    }
}

fn new_destination(
    state: &AppState,
    app: &AppId,
    input: DestinationIn,
    now: i64,
) -> ApiResult<Endpoint> {
    let url = match (input.url, input.handler) {
        (Some(url), None) => {
            check_url(&url)?;
            url
        }
        (None, Some(handler)) => {
            if !state.handler_names.iter().any(|name| **name == handler) {
                return Err(ApiError::field(
                    "destinations",
                    format!("no handler named {handler:?} is registered in this process"),
                ));
            }
            handler_url(&handler)
        }
        _ => {
            return Err(ApiError::field(
                "destinations",
                "each destination has either a url or a handler",
            ));
        }
    };
    if let Some(types) = &input.event_types {
        for name in types {
            crate::models::check_event_type("destinations", name)?;
        }
    }
    Ok(Endpoint {
        id: EndpointId::generate(now as u64),
        app_id: app.clone(),
        uid: None,
        url,
        description: "a destination of an inbound source".into(),
        disabled: false,
        event_types: input.event_types,
        channels: None,
        metadata: "{}".into(),
        throttle_rate: None,
        headers: "{}".into(),
        secrets: EndpointSecrets {
            current: Secret::generate().expose(),
            previous: Vec::new(),
        },
        failing_since: None,
        created_at: now,
        updated_at: now,
    })
}

fn check_destination_count(destinations: &[DestinationIn]) -> ApiResult<()> {
    if destinations.len() > MAX_DESTINATIONS {
        return Err(ApiError::field(
            "destinations",
            format!("at most {MAX_DESTINATIONS} destinations"),
        ));
    }
    Ok(())
}

pub async fn create(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<SourceIn>,
) -> ApiResult<(StatusCode, Json<SourceOut>)> {
    input.validate()?;
    let config = input.config()?;
    let secret = initial_secret(&config.verification, input.secret.clone())?;
    let destinations_in = input.destinations.unwrap_or_default();
    check_destination_count(&destinations_in)?;
    let now = now_ms();
    let id = SourceId::generate(now as u64);
    let app = Application {
        id: AppId::generate(now as u64),
        uid: Some(format!("{INBOUND_APP_UID_PREFIX}{id}")),
        name: format!("Destinations of source {}", input.name),
        metadata: "{}".into(),
        throttle_rate: None,
        created_at: now,
        updated_at: now,
    };
    let destinations = destinations_in
        .into_iter()
        .map(|d| new_destination(&state, &app.id, d, now))
        .collect::<ApiResult<Vec<_>>>()?;
    let source = Source {
        id,
        uid: input.uid,
        name: input.name,
        app_id: app.id.clone(),
        config: config.to_json(),
        secrets: EndpointSecrets {
            current: secret,
            previous: Vec::new(),
        },
        created_at: now,
        updated_at: now,
    };
    let source = state
        .store
        .create_source(source, app, destinations.clone())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(source_out(source, &destinations)?),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    query: QueryParams,
) -> ApiResult<Json<ListResponse<SourceOut>>> {
    let paging = paging(&query, false)?;
    let sources = state.store.list_sources(&paging.request).await?;
    let page = paging.finish(sources, |s| s.id.to_string());
    let mut data = Vec::with_capacity(page.data.len());
    for source in page.data {
        let destinations = destinations_of(&state, &source.app_id).await?;
        data.push(source_out(source, &destinations)?);
    }
    Ok(Json(ListResponse {
        data,
        iterator: page.iterator,
        prev_iterator: page.prev_iterator,
        done: page.done,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
) -> ApiResult<Json<SourceOut>> {
    let source = find_source(&state, &source_id).await?;
    let destinations = destinations_of(&state, &source.app_id).await?;
    Ok(Json(source_out(source, &destinations)?))
}

/// Replaces the configuration; `destinations`, when given, replaces the destinations (those
/// with an unchanged url or handler keep their endpoint, attempts and secret).
pub async fn put(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    JsonBody(input): JsonBody<SourceIn>,
) -> ApiResult<Json<SourceOut>> {
    input.validate()?;
    let config = input.config()?;
    let mut source = find_source(&state, &source_id).await?;
    let now = now_ms();
    if let Some(secret) = input.secret.clone() {
        source.secrets.current = check_secret(&config.verification, secret, "secret")?;
    } else if parse_config(&source)?.verification.name() != config.verification.name() {
        // Another scheme needs another kind of secret.
        source.secrets = EndpointSecrets {
            current: initial_secret(&config.verification, None)?,
            previous: Vec::new(),
        };
    }
    source.uid = input.uid;
    source.name = input.name;
    source.config = config.to_json();
    source.updated_at = now;
    let source = state.store.update_source(source).await?;
    if let Some(wanted) = input.destinations {
        check_destination_count(&wanted)?;
        let existing = destinations_of(&state, &source.app_id).await?;
        let mut kept = Vec::new();
        for destination in wanted {
            let fresh = new_destination(&state, &source.app_id, destination, now)?;
            match existing.iter().find(|ep| ep.url == fresh.url) {
                Some(current) => {
                    let mut current = current.clone();
                    current.event_types = fresh.event_types;
                    current.updated_at = now;
                    kept.push(state.store.update_endpoint(current).await?.id);
                }
                None => kept.push(state.store.create_endpoint(fresh).await?.id),
            }
        }
        for stale in existing.iter().filter(|ep| !kept.contains(&ep.id)) {
            state.store.delete_endpoint(&stale.id).await?;
            state.dispatcher.endpoint_changed(stale.id.clone());
        }
        for id in kept {
            state.dispatcher.endpoint_changed(id);
        }
    }
    let destinations = destinations_of(&state, &source.app_id).await?;
    Ok(Json(source_out(source, &destinations)?))
}

pub async fn remove(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
) -> ApiResult<StatusCode> {
    let source = find_source(&state, &source_id).await?;
    let destinations = destinations_of(&state, &source.app_id).await?;
    state.store.delete_source(&source.id).await?;
    for destination in destinations {
        state.dispatcher.endpoint_changed(destination.id);
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_secret(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let source = find_source(&state, &source_id).await?;
    Ok(Json(json!({ "key": source.secrets.current })))
}

/// A new secret; the old one keeps verifying for the grace period (default 24 h), so the
/// sender can switch without a window of rejected requests.
pub async fn rotate_secret(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let input = RotateIn::parse(&body)?;
    let grace_ms = input.grace_ms()?;
    let mut source = find_source(&state, &source_id).await?;
    let scheme = parse_config(&source)?.verification;
    let fresh = match input.key {
        Some(key) => check_secret(&scheme, key, "key")?,
        None => initial_secret(&scheme, None)?,
    };
    let now = now_ms();
    source.secrets = source.secrets.rotated(fresh, now, grace_ms);
    source.updated_at = now;
    let source = state.store.update_source(source).await?;
    Ok(Json(json!({ "key": source.secrets.current })))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOut {
    id: String,
    received_at: String,
    remote_addr: String,
    method: String,
    path: String,
    headers: serde_json::Value,
    body_size: i64,
    /// accepted, duplicate or rejected.
    status: &'static str,
    /// For accepted requests: pending, delivered, failing or exhausted.
    handling: Option<&'static str>,
    reason: Option<String>,
    event_id: Option<String>,
    msg_id: Option<String>,
    duplicate_of: Option<String>,
    /// The body as text, when it is UTF-8 (only when reading one request).
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    /// The body in base64, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

impl From<RequestView> for RequestOut {
    fn from(view: RequestView) -> Self {
        let request = view.request;
        let (body, body_base64) = match request.body {
            None => (None, None),
            Some(bytes) => match String::from_utf8(bytes) {
                Ok(text) => (Some(text), None),
                Err(err) => (
                    None,
                    Some(base64::engine::general_purpose::STANDARD.encode(err.as_bytes())),
                ),
            },
        };
        Self {
            id: request.id.into_string(),
            received_at: rfc3339(request.received_at),
            remote_addr: request.remote_addr,
            method: request.method,
            path: request.path,
            headers: serde_json::from_str(&request.headers).unwrap_or_else(|_| json!({})),
            body_size: request.body_size,
            status: request.status.as_str(),
            handling: view.handling.map(Handling::as_str),
            reason: request.reason,
            event_id: request.event_id,
            msg_id: request.msg_id.map(|id| id.into_string()),
            duplicate_of: request.duplicate_of.map(|id| id.into_string()),
            body,
            body_base64,
        }
    }
}

fn status_filter(query: &QueryParams) -> ApiResult<Option<RequestFilterStatus>> {
    let Some(text) = query.get("status") else {
        return Ok(None);
    };
    RequestStatus::ALL
        .into_iter()
        .find(|status| status.as_str() == text)
        .map(RequestFilterStatus::Stored)
        .or_else(|| Handling::parse(text).map(RequestFilterStatus::Handling))
        .map(Some)
        .ok_or_else(|| {
            ApiError::query(
                "status",
                "status is one of accepted, duplicate, rejected, pending, delivered, failing, exhausted",
            )
        })
}

pub async fn list_requests(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    query: QueryParams,
) -> ApiResult<Json<ListResponse<RequestOut>>> {
    let paging = paging(&query, false)?;
    let filter = RequestFilter {
        page: paging.request.clone(),
        status: status_filter(&query)?,
        since: query.time("since")?,
        until: query.time("until")?,
    };
    let source = find_source(&state, &source_id).await?;
    let requests = state.store.list_requests(&source.id, &filter).await?;
    Ok(Json(
        paging
            .finish(requests, |r| r.request.id.to_string())
            .map(RequestOut::from),
    ))
}

fn parse_request_id(text: &str) -> ApiResult<RequestId> {
    RequestId::parse(text).ok_or(ApiError::NotFound("request"))
}

pub async fn get_request(
    State(state): State<AppState>,
    Path((source_id, request_id)): Path<(String, String)>,
) -> ApiResult<Json<RequestOut>> {
    let source = find_source(&state, &source_id).await?;
    let id = parse_request_id(&request_id)?;
    let view = state
        .store
        .get_request(&source.id, &id)
        .await?
        .ok_or(ApiError::NotFound("request"))?;
    Ok(Json(RequestOut::from(view)))
}

pub async fn replay_request(
    State(state): State<AppState>,
    Path((source_id, request_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let source = find_source(&state, &source_id).await?;
    let id = parse_request_id(&request_id)?;
    let replayed = state
        .store
        .replay_requests(&source, ReplaySelection::One(id), now_ms())
        .await?;
    state.dispatcher.wake();
    Ok((StatusCode::ACCEPTED, Json(json!({ "replayed": replayed }))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    since: String,
    #[serde(default)]
    until: Option<String>,
}

/// Hands on again every accepted request received in `[since, until)` (until: now).
pub async fn replay_range(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    JsonBody(input): JsonBody<ReplayIn>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let since = parse_time(&input.since)
        .ok_or_else(|| ApiError::field("since", "must be an RFC 3339 date-time"))?;
    let now = now_ms();
    let until = match input.until.as_deref() {
        None => now + 1,
        Some(text) => parse_time(text)
            .ok_or_else(|| ApiError::field("until", "must be an RFC 3339 date-time"))?,
    };
    if until <= since {
        return Err(ApiError::field("until", "until must be after since"));
    }
    let source = find_source(&state, &source_id).await?;
    let replayed = state
        .store
        .replay_requests(&source, ReplaySelection::Range { since, until }, now)
        .await?;
    state.dispatcher.wake();
    Ok((StatusCode::ACCEPTED, Json(json!({ "replayed": replayed }))))
}
