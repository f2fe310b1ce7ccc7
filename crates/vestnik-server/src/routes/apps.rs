//! `/api/v1/app`: applications, one per subscriber, with uid aliases and get-or-create.

use super::find_app;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams};
use crate::models::{ApplicationIn, ApplicationOut, ApplicationPatch, check_metadata, check_uid};
use crate::paging::paging;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vestnik_core::AppId;
use vestnik_delivery::now_ms;
use vestnik_store::Application;

pub fn new_application(input: ApplicationIn, now: i64) -> Application {
    Application {
        id: AppId::generate(now as u64),
        uid: input.uid,
        name: input.name,
        metadata: serde_json::Value::Object(input.metadata).to_string(),
        throttle_rate: input.throttle_rate.map(u32::from),
        created_at: now,
        updated_at: now,
    }
}

pub async fn list(
    State(state): State<AppState>,
    query: QueryParams,
) -> ApiResult<Json<crate::models::ListResponse<ApplicationOut>>> {
    let paging = paging(&query, true)?;
    let apps = state.store.list_apps(&paging.request).await?;
    Ok(Json(
        paging
            .finish(apps, |app| app.id.to_string())
            .map(ApplicationOut::from),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    query: QueryParams,
    JsonBody(input): JsonBody<ApplicationIn>,
) -> ApiResult<(StatusCode, Json<ApplicationOut>)> {
    input.validate()?;
    if query.bool("get_if_exists", false)?
        && let Some(uid) = &input.uid
        && let Some(existing) = state.store.get_app(uid).await?
    {
        return Ok((StatusCode::OK, Json(existing.into())));
    }
    let app = state
        .store
        .create_app(new_application(input, now_ms()))
        .await?;
    Ok((StatusCode::CREATED, Json(app.into())))
}

pub async fn get(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
) -> ApiResult<Json<ApplicationOut>> {
    Ok(Json(find_app(&state, &app_id).await?.into()))
}

pub async fn put(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    JsonBody(input): JsonBody<ApplicationIn>,
) -> ApiResult<(StatusCode, Json<ApplicationOut>)> {
    input.validate()?;
    let now = now_ms();
    match state.store.get_app(&app_id).await? {
        Some(existing) => {
            let app = Application {
                uid: input.uid.or(existing.uid.clone()),
                name: input.name,
                metadata: serde_json::Value::Object(input.metadata).to_string(),
                throttle_rate: input.throttle_rate.map(u32::from),
                updated_at: now,
                ..existing
            };
            Ok((
                StatusCode::OK,
                Json(state.store.update_app(app).await?.into()),
            ))
        }
        None => {
            check_uid("uid", Some(&app_id))?;
            let mut app = new_application(input, now);
            app.uid = Some(app_id);
            Ok((
                StatusCode::CREATED,
                Json(state.store.create_app(app).await?.into()),
            ))
        }
    }
}

pub async fn patch(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    JsonBody(input): JsonBody<ApplicationPatch>,
) -> ApiResult<Json<ApplicationOut>> {
    let mut app = find_app(&state, &app_id).await?;
    if let Some(name) = input.name {
        if name.is_empty() {
            return Err(ApiError::field("name", "name must not be empty"));
        }
        app.name = name;
    }
    if let Some(uid) = input.uid {
        check_uid("uid", uid.as_deref())?;
        app.uid = uid;
    }
    if let Some(metadata) = input.metadata {
        check_metadata(&metadata)?;
        app.metadata = serde_json::Value::Object(metadata).to_string();
    }
    if let Some(rate) = input.throttle_rate {
        app.throttle_rate = rate.map(u32::from);
    }
    app.updated_at = now_ms();
    Ok(Json(state.store.update_app(app).await?.into()))
}

pub async fn remove(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
) -> ApiResult<StatusCode> {
    let app = find_app(&state, &app_id).await?;
    state.store.delete_app(&app.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
