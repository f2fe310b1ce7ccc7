//! `/api/v1/event-type`: the catalogue of event types, with JSON schemas; archived, not deleted,
//! unless `expunge=true`.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams};
use crate::models::{
    EventTypeIn, EventTypeOut, EventTypePatch, EventTypeUpdate, ListResponse, check_event_type,
};
use crate::paging::paging;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vestnik_delivery::now_ms;
use vestnik_store::EventType;

fn schemas_text(schemas: Option<serde_json::Map<String, serde_json::Value>>) -> Option<String> {
    schemas.map(|s| serde_json::Value::Object(s).to_string())
}

fn check_feature_flag(flag: Option<&str>) -> ApiResult<()> {
    match flag {
        Some(flag) => check_event_type("featureFlag", flag),
        None => Ok(()),
    }
}

pub async fn list(
    State(state): State<AppState>,
    query: QueryParams,
) -> ApiResult<Json<ListResponse<EventTypeOut>>> {
    let paging = paging(&query, true)?;
    let include_archived = query.bool("include_archived", false)?;
    let with_content = query.bool("with_content", false)?;
    let types = state
        .store
        .list_event_types(&paging.request, include_archived)
        .await?;
    Ok(Json(
        paging
            .finish(types, |et| et.name.clone())
            .map(|et| EventTypeOut::new(et, with_content)),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<EventTypeIn>,
) -> ApiResult<(StatusCode, Json<EventTypeOut>)> {
    check_event_type("name", &input.name)?;
    check_feature_flag(input.feature_flag.as_deref())?;
    let now = now_ms();
    let et = state
        .store
        .create_event_type(EventType {
            name: input.name,
            description: input.description,
            archived: input.archived,
            deprecated: input.deprecated,
            feature_flag: input.feature_flag,
            schemas: schemas_text(input.schemas),
            created_at: now,
            updated_at: now,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(EventTypeOut::new(et, true))))
}

async fn find(state: &AppState, name: &str) -> ApiResult<EventType> {
    state
        .store
        .get_event_type(name)
        .await?
        .ok_or(ApiError::NotFound("event type"))
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<EventTypeOut>> {
    Ok(Json(EventTypeOut::new(find(&state, &name).await?, true)))
}

pub async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(input): JsonBody<EventTypeUpdate>,
) -> ApiResult<(StatusCode, Json<EventTypeOut>)> {
    check_event_type("name", &name)?;
    check_feature_flag(input.feature_flag.as_deref())?;
    let now = now_ms();
    let existing = state.store.get_event_type(&name).await?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let et = state
        .store
        .update_event_type(EventType {
            name,
            description: input.description,
            archived: input.archived,
            deprecated: input.deprecated,
            feature_flag: input.feature_flag,
            schemas: schemas_text(input.schemas),
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        })
        .await?;
    Ok((status, Json(EventTypeOut::new(et, true))))
}

pub async fn patch(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(input): JsonBody<EventTypePatch>,
) -> ApiResult<Json<EventTypeOut>> {
    let mut et = find(&state, &name).await?;
    if let Some(description) = input.description {
        et.description = description;
    }
    if let Some(archived) = input.archived {
        et.archived = archived;
    }
    if let Some(deprecated) = input.deprecated {
        et.deprecated = deprecated;
    }
    if let Some(flag) = input.feature_flag {
        check_feature_flag(flag.as_deref())?;
        et.feature_flag = flag;
    }
    if let Some(schemas) = input.schemas {
        et.schemas = schemas_text(schemas);
    }
    et.updated_at = now_ms();
    Ok(Json(EventTypeOut::new(
        state.store.update_event_type(et).await?,
        true,
    )))
}

pub async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: QueryParams,
) -> ApiResult<StatusCode> {
    let expunge = query.bool("expunge", false)?;
    state.store.delete_event_type(&name, expunge).await?;
    Ok(StatusCode::NO_CONTENT)
}
