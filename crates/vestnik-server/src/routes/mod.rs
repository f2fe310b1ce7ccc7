//! The route table of the management API and the lookups every handler shares (an `{app_id}`,
//! `{endpoint_id}` or `{msg_id}` path segment is the id or the object's uid/eventId).

mod apps;
mod endpoints;
mod event_types;
mod inbound;
mod messages;
mod sources;

pub use inbound::receive;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::Router;
use axum::routing::{delete, get, post};
use vestnik_store::{Application, Endpoint, Message};

pub fn api(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/app", get(apps::list).post(apps::create))
        .route(
            "/app/{app_id}",
            get(apps::get)
                .put(apps::put)
                .patch(apps::patch)
                .delete(apps::remove),
        )
        .route(
            "/event-type",
            get(event_types::list).post(event_types::create),
        )
        .route(
            "/event-type/{name}",
            get(event_types::get)
                .put(event_types::put)
                .patch(event_types::patch)
                .delete(event_types::remove),
        )
        .route(
            "/app/{app_id}/endpoint",
            get(endpoints::list).post(endpoints::create),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}",
            get(endpoints::get)
                .put(endpoints::put)
                .patch(endpoints::patch)
                .delete(endpoints::remove),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/headers",
            get(endpoints::get_headers)
                .put(endpoints::put_headers)
                .patch(endpoints::patch_headers),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/secret",
            get(endpoints::get_secret),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
            post(endpoints::rotate_secret),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/recover",
            post(endpoints::recover),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/stats",
            get(endpoints::stats),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/send-example",
            post(messages::send_example),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/msg",
            get(messages::list_for_endpoint),
        )
        .route(
            "/app/{app_id}/msg",
            get(messages::list).post(messages::create),
        )
        .route("/app/{app_id}/msg/{msg_id}", get(messages::get))
        .route(
            "/app/{app_id}/msg/{msg_id}/content",
            delete(messages::expunge),
        )
        .route(
            "/app/{app_id}/msg/{msg_id}/endpoint",
            get(messages::list_destinations),
        )
        .route(
            "/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend",
            post(messages::resend),
        )
        .route(
            "/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}",
            get(messages::get_attempt),
        )
        .route(
            "/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content",
            delete(messages::expunge_attempt),
        )
        .route(
            "/app/{app_id}/attempt/msg/{msg_id}",
            get(messages::attempts_by_message),
        )
        .route(
            "/app/{app_id}/attempt/endpoint/{endpoint_id}",
            get(messages::attempts_by_endpoint),
        )
        .route("/source", get(sources::list).post(sources::create))
        .route(
            "/source/{source_id}",
            get(sources::get).put(sources::put).delete(sources::remove),
        )
        .route("/source/{source_id}/secret", get(sources::get_secret))
        .route(
            "/source/{source_id}/secret/rotate",
            post(sources::rotate_secret),
        )
        .route("/source/{source_id}/request", get(sources::list_requests))
        .route(
            "/source/{source_id}/request/{request_id}",
            get(sources::get_request),
        )
        .route(
            "/source/{source_id}/request/{request_id}/replay",
            post(sources::replay_request),
        )
        .route("/source/{source_id}/replay", post(sources::replay_range))
        .route("/auth/app-portal-access/{app_id}", post(app_portal_access))
        .route("/auth/logout", post(logout))
        // Layers run last-added first: the token is checked before any idempotency lookup.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::idempotent,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::extract::require_token,
        ))
}

async fn app_portal_access() -> ApiError {
    ApiError::NotImplemented("the application portal is not available yet; use the API directly")
}

async fn logout() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

pub async fn find_app(state: &AppState, key: &str) -> ApiResult<Application> {
    state
        .store
        .get_app(key)
        .await?
        .ok_or(ApiError::NotFound("application"))
}

pub async fn find_endpoint(
    state: &AppState,
    app_key: &str,
    key: &str,
) -> ApiResult<(Application, Endpoint)> {
    let app = find_app(state, app_key).await?;
    let endpoint = state
        .store
        .get_endpoint(&app.id, key)
        .await?
        .ok_or(ApiError::NotFound("endpoint"))?;
    Ok((app, endpoint))
}

pub async fn find_message(
    state: &AppState,
    app_key: &str,
    key: &str,
) -> ApiResult<(Application, Message)> {
    let app = find_app(state, app_key).await?;
    let message = state
        .store
        .get_message(&app.id, key)
        .await?
        .ok_or(ApiError::NotFound("message"))?;
    Ok((app, message))
}
