//! Liveness and readiness: `/api/v1/health` answers while the process runs; `/api/v1/health/ready`
//! says whether this node can do its role's work now, checking the database and the broker.

use crate::Role;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vestnik_queue::BrokerStatus;
use vestnik_store::Store;

/// How long the database may take to answer a readiness check.
const DATABASE_DEADLINE: Duration = Duration::from_secs(2);

/// What readiness looks at.
#[derive(Clone)]
pub struct Health {
    pub store: Arc<dyn Store>,
    pub role: Role,
    /// `None` when the node dispatches without a broker.
    pub broker: Option<BrokerStatus>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// `ready`; `degraded` (the API accepts, but the broker is away so delivery waits);
    /// `unavailable` (answered with 503).
    pub status: &'static str,
    pub role: &'static str,
    pub database: Check,
    /// Absent when the node dispatches without a broker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<Vec<Check>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: &'static str,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Health {
    pub async fn check(&self) -> Readiness {
        let started = Instant::now();
        let database = match tokio::time::timeout(DATABASE_DEADLINE, self.store.ping()).await {
            Ok(Ok(())) => Check {
                name: "database",
                up: true,
                latency_ms: Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
                detail: None,
            },
            Ok(Err(err)) => Check {
                name: "database",
                up: false,
                latency_ms: None,
                detail: Some(err.to_string()),
            },
            Err(_) => Check {
                name: "database",
                up: false,
                latency_ms: None,
                detail: Some(format!("no answer within {DATABASE_DEADLINE:?}")),
            },
        };
        let broker = self.broker.as_ref().map(|broker| {
            broker
                .report()
                .into_iter()
                .map(|link| Check {
                    name: link.part,
                    up: link.up,
                    latency_ms: None,
                    detail: link.detail,
                })
                .collect::<Vec<_>>()
        });
        let broker_up = broker
            .as_ref()
            .is_none_or(|parts| parts.iter().all(|c| c.up));
        let status = match (database.up, broker_up, self.role) {
            (false, _, _) => "unavailable",
            (true, true, _) => "ready",
            // A worker without its broker has nothing to do; an API node still accepts.
            (true, false, Role::Worker) => "unavailable",
            (true, false, _) => "degraded",
        };
        Readiness {
            status,
            role: self.role.as_str(),
            database,
            broker,
        }
    }
}

pub async fn ready(State(state): State<crate::AppState>) -> (StatusCode, Json<Readiness>) {
    answer(&state.health).await
}

async fn answer(health: &Health) -> (StatusCode, Json<Readiness>) {
    let readiness = health.check().await;
    let code = if readiness.status == "unavailable" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(readiness))
}

/// A worker node's listener: health, readiness and metrics, no API.
pub fn worker_router(health: Health, metrics: crate::telemetry::Metrics) -> Router {
    let health = Arc::new(health);
    Router::new()
        .route("/api/v1/health", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/api/v1/health/ready",
            get(move || {
                let health = Arc::clone(&health);
                async move { answer(&health).await }
            }),
        )
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .fallback(|| async { crate::error::ApiError::NotFound("route") })
}
