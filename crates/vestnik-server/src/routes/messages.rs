//! `/api/v1/app/{app_id}/msg` and attempts: accepting messages (durable before the 202),
//! reading them back with their per-endpoint state and attempts, resending, expunging.

use super::{find_app, find_endpoint, find_message};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams};
use crate::models::*;
use crate::paging::paging;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vestnik_core::{AttemptId, DeliveryStatus, MessageId};
use vestnik_delivery::now_ms;
use vestnik_store::{AttemptFilter, Message, MessageFilter, Recipients, StoreError};

const DAY_MS: i64 = 86_400_000;

pub async fn create(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    query: QueryParams,
    JsonBody(input): JsonBody<MessageIn>,
) -> ApiResult<(StatusCode, Json<MessageOut>)> {
    input.validate()?;
    let with_content = query.bool("with_content", true)?;
    let app = match state.store.get_app(&app_id).await? {
        Some(app) => app,
        None => match input.application {
            // Svix creates the application on the fly when the message carries one.
            Some(app_in) => {
                let mut app_in = app_in;
                app_in.uid = app_in.uid.or_else(|| Some(app_id.clone()));
                match state
                    .store
                    .create_app(super::apps::new_application(app_in, now_ms()))
                    .await
                {
                    Ok(app) => app,
                    Err(StoreError::Conflict(_)) => find_app(&state, &app_id).await?,
                    Err(err) => return Err(err.into()),
                }
            }
            None => return Err(ApiError::NotFound("application")),
        },
    };
    let now = now_ms();
    let message = Message {
        id: MessageId::generate(now as u64),
        app_id: app.id,
        event_id: input.event_id,
        event_type: input.event_type,
        channels: input.channels,
        payload: Some(input.payload.get().to_owned()),
        payload_expires_at: now + input.payload_retention_period.unwrap_or(90) * DAY_MS,
        created_at: now,
        headers: Vec::new(),
    };
    let message = accept(&state, message, Recipients::Subscribers).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageOut::new(message, with_content)),
    ))
}

/// Stores the message with its deliveries (durable when this returns) and hands them to the
/// dispatcher.
async fn accept(state: &AppState, message: Message, recipients: Recipients) -> ApiResult<Message> {
    let lease = state.dispatcher.lease_for_new_tasks(message.created_at);
    let (message, tasks) = state
        .store
        .create_message(message, recipients, lease)
        .await?;
    metrics::counter!("vestnik_messages_accepted_total").increment(1);
    tracing::debug!(msg_id = %message.id, app_id = %message.app_id, deliveries = tasks.len(), "message accepted");
    if lease.is_some() {
        state.dispatcher.submit(tasks);
    } else {
        state.dispatcher.wake();
    }
    Ok(message)
}

/// The event type Svix answers without a stored event type: a connectivity check.
const PING_EVENT_TYPE: &str = "svix.ping";

/// `POST …/endpoint/{endpoint_id}/send-example`: a message of the event type, built from the
/// first example of its schema (version "1", as Svix does), sent to this endpoint alone.
pub async fn send_example(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<EventExampleIn>,
) -> ApiResult<(StatusCode, Json<MessageOut>)> {
    check_event_type("eventType", &input.event_type)?;
    let (app, endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    if endpoint.disabled {
        return Err(endpoint_disabled());
    }
    let payload = if input.event_type == PING_EVENT_TYPE {
        r#"{"success":true}"#.to_owned()
    } else {
        let event_type = state
            .store
            .get_event_type(&input.event_type)
            .await?
            .ok_or(ApiError::NotFound("event type"))?;
        schema_example(event_type.schemas.as_deref()).ok_or_else(|| ApiError::BadRequest {
            code: "no_example",
            detail: format!(
                "event type {} has no example: add one under schemas.\"1\".examples",
                input.event_type
            ),
        })?
    };
    let now = now_ms();
    let message = Message {
        id: MessageId::generate(now as u64),
        app_id: app.id,
        event_id: None,
        event_type: input.event_type,
        channels: None,
        payload: Some(payload),
        payload_expires_at: now + 90 * DAY_MS,
        created_at: now,
        headers: Vec::new(),
    };
    let message = accept(&state, message, Recipients::Endpoint(endpoint.id)).await?;
    // 202 as Svix's server and SDKs have it (its OpenAPI document says 200).
    Ok((StatusCode::ACCEPTED, Json(MessageOut::new(message, true))))
}

/// The first entry of `schemas["1"].examples`, if it is a JSON object (a message payload must be).
fn schema_example(schemas: Option<&str>) -> Option<String> {
    let schemas: serde_json::Value = serde_json::from_str(schemas?).ok()?;
    let example = schemas.get("1")?.get("examples")?.get(0)?;
    example.is_object().then(|| example.to_string())
}

fn endpoint_disabled() -> ApiError {
    ApiError::BadRequest {
        code: "endpoint_disabled",
        detail: "the endpoint is disabled; enable it before sending to it".into(),
    }
}

fn message_filter(
    query: &QueryParams,
    page: vestnik_store::PageRequest,
) -> ApiResult<MessageFilter> {
    let channel = query.get("channel").map(str::to_owned);
    if let Some(channel) = &channel {
        vestnik_core::Channel::parse(channel)
            .map_err(|err| ApiError::query("channel", format!("channel {err}")))?;
    }
    let event_types = query.all("event_types");
    for name in &event_types {
        vestnik_core::EventTypeName::parse(name)
            .map_err(|err| ApiError::query("event_types", format!("event type {err}")))?;
    }
    Ok(MessageFilter {
        page,
        channel,
        event_types,
        before: query.time("before")?,
        after: query.time("after")?,
    })
}

fn status_filter(query: &QueryParams) -> ApiResult<Option<DeliveryStatus>> {
    query
        .int("status")?
        .map(|code| {
            DeliveryStatus::from_code(code)
                .ok_or_else(|| ApiError::query("status", "status must be 0, 1, 2 or 3"))
        })
        .transpose()
}

pub async fn list(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    query: QueryParams,
) -> ApiResult<Json<ListResponse<MessageOut>>> {
    let paging = paging(&query, false)?;
    let with_content = query.bool("with_content", true)?;
    let filter = message_filter(&query, paging.request.clone())?;
    let app = find_app(&state, &app_id).await?;
    let messages = state.store.list_messages(&app.id, &filter).await?;
    Ok(Json(
        paging
            .finish(messages, |m| m.id.to_string())
            .map(|m| MessageOut::new(m, with_content)),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Path((app_id, msg_id)): Path<(String, String)>,
    query: QueryParams,
) -> ApiResult<Json<MessageOut>> {
    let with_content = query.bool("with_content", true)?;
    let (_, message) = find_message(&state, &app_id, &msg_id).await?;
    Ok(Json(MessageOut::new(message, with_content)))
}

pub async fn expunge(
    State(state): State<AppState>,
    Path((app_id, msg_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (_, message) = find_message(&state, &app_id, &msg_id).await?;
    state.store.expunge_message_content(&message.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_destinations(
    State(state): State<AppState>,
    Path((app_id, msg_id)): Path<(String, String)>,
    query: QueryParams,
) -> ApiResult<Json<ListResponse<MessageEndpointOut>>> {
    let paging = paging(&query, true)?;
    let (app, message) = find_message(&state, &app_id, &msg_id).await?;
    let deliveries = state
        .store
        .list_deliveries_for_message(&message.id, &paging.request)
        .await?;
    let list = paging.finish(deliveries, |d| d.endpoint_id.to_string());
    let mut data = Vec::with_capacity(list.data.len());
    for delivery in &list.data {
        if let Some(endpoint) = state
            .store
            .get_endpoint(&app.id, delivery.endpoint_id.as_str())
            .await?
        {
            data.push(MessageEndpointOut {
                endpoint: EndpointOut::from(&endpoint),
                status: delivery.status.code(),
                status_text: delivery.status.text(),
                next_attempt: next_attempt(delivery),
            });
        }
    }
    Ok(Json(ListResponse {
        data,
        iterator: list.iterator,
        prev_iterator: list.prev_iterator,
        done: list.done,
    }))
}

pub async fn list_for_endpoint(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    query: QueryParams,
) -> ApiResult<Json<ListResponse<EndpointMessageOut>>> {
    let paging = paging(&query, false)?;
    let with_content = query.bool("with_content", true)?;
    let filter = message_filter(&query, paging.request.clone())?;
    let status = status_filter(&query)?;
    let (_, endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    let rows = state
        .store
        .list_messages_for_endpoint(&endpoint.id, &filter, status)
        .await?;
    Ok(Json(paging.finish(rows, |(m, _)| m.id.to_string()).map(
        |(message, delivery)| EndpointMessageOut {
            status: delivery.status.code(),
            status_text: delivery.status.text(),
            next_attempt: next_attempt(&delivery),
            message: MessageOut::new(message, with_content),
        },
    )))
}

pub async fn resend(
    State(state): State<AppState>,
    Path((app_id, msg_id, endpoint_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let (app, message) = find_message(&state, &app_id, &msg_id).await?;
    let endpoint = state
        .store
        .get_endpoint(&app.id, &endpoint_id)
        .await?
        .ok_or(ApiError::NotFound("endpoint"))?;
    if endpoint.disabled {
        return Err(endpoint_disabled());
    }
    if message.payload.is_none() {
        return Err(ApiError::BadRequest {
            code: "payload_expunged",
            detail: "the message's payload was expunged; it cannot be resent".into(),
        });
    }
    state
        .store
        .resend(&message.id, &endpoint.id, now_ms())
        .await?;
    state.dispatcher.wake();
    Ok(StatusCode::ACCEPTED)
}

fn attempt_filter(
    query: &QueryParams,
    app: vestnik_core::AppId,
    page: vestnik_store::PageRequest,
) -> ApiResult<AttemptFilter> {
    let messages = message_filter(query, page.clone())?;
    let status_code_class = query
        .int("status_code_class")?
        .map(|class| {
            if [0, 100, 200, 300, 400, 500].contains(&class) {
                Ok(class as i32)
            } else {
                Err(ApiError::query(
                    "status_code_class",
                    "status_code_class must be 0, 100, 200, 300, 400 or 500",
                ))
            }
        })
        .transpose()?;
    Ok(AttemptFilter {
        app,
        msg: None,
        endpoint: None,
        status: status_filter(query)?,
        status_code_class,
        channel: messages.channel,
        event_types: messages.event_types,
        before: messages.before,
        after: messages.after,
        page,
    })
}

async fn list_attempts(
    state: &AppState,
    query: &QueryParams,
    paging: crate::paging::Paging,
    filter: AttemptFilter,
) -> ApiResult<Json<ListResponse<MessageAttemptOut>>> {
    let with_content = query.bool("with_content", true)?;
    let attempts = state.store.list_attempts(&filter).await?;
    Ok(Json(
        paging
            .finish(attempts, |a| a.id.to_string())
            .map(|a| MessageAttemptOut::new(a, with_content)),
    ))
}

pub async fn attempts_by_message(
    State(state): State<AppState>,
    Path((app_id, msg_id)): Path<(String, String)>,
    query: QueryParams,
) -> ApiResult<Json<ListResponse<MessageAttemptOut>>> {
    let paging = paging(&query, false)?;
    let (app, message) = find_message(&state, &app_id, &msg_id).await?;
    let mut filter = attempt_filter(&query, app.id.clone(), paging.request.clone())?;
    filter.msg = Some(message.id);
    if let Some(endpoint_key) = query.get("endpoint_id") {
        let endpoint = state
            .store
            .get_endpoint(&app.id, endpoint_key)
            .await?
            .ok_or(ApiError::NotFound("endpoint"))?;
        filter.endpoint = Some(endpoint.id);
    }
    list_attempts(&state, &query, paging, filter).await
}

pub async fn attempts_by_endpoint(
    State(state): State<AppState>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    query: QueryParams,
) -> ApiResult<Json<ListResponse<MessageAttemptOut>>> {
    let paging = paging(&query, false)?;
    let (app, endpoint) = find_endpoint(&state, &app_id, &endpoint_id).await?;
    let mut filter = attempt_filter(&query, app.id, paging.request.clone())?;
    filter.endpoint = Some(endpoint.id);
    list_attempts(&state, &query, paging, filter).await
}

fn parse_attempt_id(text: &str) -> ApiResult<AttemptId> {
    AttemptId::parse(text).ok_or(ApiError::NotFound("attempt"))
}

pub async fn get_attempt(
    State(state): State<AppState>,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<Json<MessageAttemptOut>> {
    let attempt_id = parse_attempt_id(&attempt_id)?;
    let (_, message) = find_message(&state, &app_id, &msg_id).await?;
    let attempt = state
        .store
        .get_attempt(&message.id, &attempt_id)
        .await?
        .ok_or(ApiError::NotFound("attempt"))?;
    Ok(Json(MessageAttemptOut::new(attempt, true)))
}

pub async fn expunge_attempt(
    State(state): State<AppState>,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let attempt_id = parse_attempt_id(&attempt_id)?;
    let (_, message) = find_message(&state, &app_id, &msg_id).await?;
    state
        .store
        .get_attempt(&message.id, &attempt_id)
        .await?
        .ok_or(ApiError::NotFound("attempt"))?;
    state.store.expunge_attempt_content(&attempt_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::schema_example;

    #[test]
    fn the_example_is_the_first_object_of_schema_version_one() {
        let schemas = r#"{"1":{"type":"object","examples":[{"a":1},{"b":2}]}}"#;
        assert_eq!(schema_example(Some(schemas)).as_deref(), Some(r#"{"a":1}"#));
    }

    #[test]
    fn no_schema_no_examples_or_a_non_object_example_give_none() {
        assert_eq!(schema_example(None), None);
        assert_eq!(schema_example(Some(r#"{"1":{"type":"object"}}"#)), None);
        assert_eq!(
            schema_example(Some(r#"{"2":{"examples":[{"a":1}]}}"#)),
            None
        );
        assert_eq!(schema_example(Some(r#"{"1":{"examples":["text"]}}"#)), None);
        assert_eq!(schema_example(Some("not json")), None);
    }
}
