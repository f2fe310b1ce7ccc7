//! The one API error type: every failure renders as Svix's `{"code", "detail"}` (or its 422
//! validation shape); 5xx details stay in the logs, never in the response.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vestnik_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("authentication failed")]
    Unauthorized,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Svix's validation error: each entry is (location path, message, type).
    #[error("validation failed")]
    Validation(Vec<(Vec<String>, String, &'static str)>),
    #[error("{0}")]
    NotImplemented(&'static str),
    /// An inbound request that failed verification (400 malformed, 401 not authentic).
    #[error("{detail}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        detail: String,
    },
    /// The database is unreachable: nothing was stored, and a retry may succeed.
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A single-field validation failure located in the JSON body.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![(
            vec!["body".into(), field.into()],
            message.into(),
            "value_error",
        )])
    }

    /// A single-parameter validation failure located in the query string.
    pub fn query(param: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![(
            vec!["query".into(), param.into()],
            message.into(),
            "value_error",
        )])
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(detail) => Self::Conflict(detail),
            other if other.is_unavailable() => Self::Unavailable(other),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, detail) = match &self {
            Self::BadRequest { code, detail } => (StatusCode::BAD_REQUEST, *code, detail.clone()),
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "authentication_failed",
                "a valid `Authorization: Bearer <token>` header is required".to_owned(),
            ),
            Self::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            Self::Conflict(detail) => (StatusCode::CONFLICT, "conflict", detail.clone()),
            Self::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                self.to_string(),
            ),
            Self::Validation(items) => {
                let detail: Vec<_> = items
                    .iter()
                    .map(|(loc, msg, kind)| json!({"loc": loc, "msg": msg, "type": kind}))
                    .collect();
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "detail": detail })),
                )
                    .into_response();
            }
            Self::Refused {
                status,
                code,
                detail,
            } => (*status, *code, detail.clone()),
            Self::NotImplemented(detail) => (
                StatusCode::NOT_IMPLEMENTED,
                "not_implemented",
                (*detail).to_owned(),
            ),
            Self::Unavailable(source) => {
                tracing::warn!(error = %source, "request refused: storage unavailable");
                let body = json!({
                    "code": "storage_unavailable",
                    "detail": "the database is unavailable; nothing was stored — retry shortly",
                });
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, "2")],
                    Json(body),
                )
                    .into_response();
            }
            Self::Internal(source) => {
                tracing::error!(error = %source, cause = ?source.source(), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the server could not complete the request; see its logs".to_owned(),
                )
            }
        };
        (status, Json(json!({ "code": code, "detail": detail }))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_503_with_retry_after_and_other_failures_500() {
        let down = ApiError::from(StoreError::Pool(
            "timed out waiting for a connection".into(),
        ))
        .into_response();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.headers()[axum::http::header::RETRY_AFTER], "2");
        let corrupt = ApiError::from(StoreError::Corrupt("bad row".into())).into_response();
        assert_eq!(corrupt.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
