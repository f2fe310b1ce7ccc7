//! Operational webhooks: events about the pipeline itself (`endpoint.disabled`,
//! `message.attempt.failing|exhausted|recovered`, their `inbound.delivery.*` twins for the
//! hand-on of inbound requests, and the server's alerts) published as ordinary messages of a reserved
//! application, so they are durable, signed and retried like any other message.

use std::sync::Arc;
use vestnik_core::{AppId, MessageId};
use vestnik_store::{Message, Recipients, Store, UnixMs};

/// Where operational events go; a no-op when no operator URL is configured.
#[derive(Clone)]
pub struct OperationalEvents {
    store: Arc<dyn Store>,
    app: Option<AppId>,
}

/// The uid prefix of the application that holds an inbound source's destinations.
pub const INBOUND_APP_UID_PREFIX: &str = "vestnik-source.";

/// Retention of operational event payloads, in days.
const RETENTION_DAYS: i64 = 30;

pub fn rfc3339(ms: UnixMs) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|ts| format!("{ts:.3}"))
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned())
}

impl OperationalEvents {
    pub fn new(store: Arc<dyn Store>, app: Option<AppId>) -> Self {
        Self { store, app }
    }

    /// The reserved application whose deliveries must not raise operational events themselves.
    pub fn app(&self) -> Option<&AppId> {
        self.app.as_ref()
    }

    /// The source whose destinations `app` holds, if it is an inbound source's application
    /// (its uid is `vestnik-source.<source id>`). Only asked when an event is about to be sent.
    pub async fn inbound_source(&self, app: &AppId) -> Option<String> {
        self.app.as_ref()?;
        let app = self.store.get_app(app.as_str()).await.ok()??;
        app.uid?
            .strip_prefix(INBOUND_APP_UID_PREFIX)
            .map(str::to_owned)
    }

    /// Publishes one event; returns whether it was stored (errors are logged, never raised, so a
    /// failing operator endpoint cannot stall customer deliveries).
    pub async fn emit(&self, event_type: &str, data: serde_json::Value, now: UnixMs) -> bool {
        let Some(app) = &self.app else {
            return false;
        };
        let payload = serde_json::json!({
            "type": event_type,
            "timestamp": rfc3339(now),
            "data": data,
        });
        let message = Message {
            id: MessageId::generate(u64::try_from(now).unwrap_or_default()),
            app_id: app.clone(),
            event_id: None,
            event_type: event_type.to_owned(),
            channels: None,
            payload: Some(payload.to_string()),
            payload_expires_at: now + RETENTION_DAYS * 86_400_000,
            created_at: now,
            headers: Vec::new(),
        };
        match self
            .store
            .create_message(message, Recipients::Subscribers, None)
            .await
        {
            Ok(_) => true,
            Err(err) => {
                tracing::error!(error = %err, event_type, "cannot store an operational event");
                false
            }
        }
    }
}
