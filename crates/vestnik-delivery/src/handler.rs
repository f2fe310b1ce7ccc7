//! In-process destinations: Rust code registered under a name receives events in place of an
//! HTTP POST, through the same durable, retried pipeline. An endpoint whose URL is
//! `vestnik-handler:<name>` is delivered to the handler registered as `<name>`.

use crate::outbound::AttemptReport;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vestnik_core::{AttemptResult, OutcomeCode};

/// The URL scheme that names a registered handler instead of an HTTP endpoint.
pub const HANDLER_SCHEME: &str = "vestnik-handler";

/// `vestnik-handler:<name>`.
pub fn handler_url(name: &str) -> String {
    format!("{HANDLER_SCHEME}:{name}")
}

/// The handler name of a `vestnik-handler:` URL.
pub fn handler_name(url: &url::Url) -> Option<&str> {
    (url.scheme() == HANDLER_SCHEME).then(|| url.path())
}

/// One event as a handler sees it. `id` stays the same across retries and replays of the same
/// event, so handlers can be idempotent on it.
#[derive(Debug, Clone)]
pub struct HandedEvent {
    pub id: String,
    pub event_type: String,
    /// The sender's own event id, when the source's scheme names one.
    pub event_id: Option<String>,
    /// The original request's forwarded headers (lower-case names).
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// Why a handler could not process an event; the text is kept with the attempt.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// `Ok` settles the event; `Err` makes it retry on the schedule like a failed POST.
    async fn handle(&self, event: HandedEvent) -> Result<(), HandlerError>;
}

/// The handlers a process registers before it starts the server.
#[derive(Clone, Default)]
pub struct Handlers {
    by_name: BTreeMap<String, Arc<dyn Handler>>,
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Handlers {
    pub fn register(&mut self, name: impl Into<String>, handler: impl Handler) -> &mut Self {
        self.by_name.insert(name.into(), Arc::new(handler));
        self
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Runs the handler under `timeout`, on its own task so that a panic becomes a failed
    /// attempt instead of taking the dispatcher down.
    pub async fn deliver(
        &self,
        name: &str,
        event: HandedEvent,
        timeout: Duration,
    ) -> AttemptReport {
        let started = Instant::now();
        let Some(handler) = self.by_name.get(name).cloned() else {
            return report(
                AttemptResult::failed(OutcomeCode::HandlerError),
                format!("no handler named {name:?} is registered in this process"),
                started,
            );
        };
        let run = tokio::spawn(async move { handler.handle(event).await });
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(Ok(()))) => report(
                AttemptResult::from_status(200, None),
                String::new(),
                started,
            ),
            Ok(Ok(Err(err))) => report(
                AttemptResult::failed(OutcomeCode::HandlerError),
                err.0,
                started,
            ),
            Ok(Err(join)) => report(
                AttemptResult::failed(OutcomeCode::HandlerError),
                if join.is_panic() {
                    "the handler panicked".into()
                } else {
                    "the handler was cancelled".into()
                },
                started,
            ),
            Err(_) => report(
                AttemptResult::failed(OutcomeCode::Timeout),
                "the handler did not finish in time".into(),
                started,
            ),
        }
    }
}

fn report(result: AttemptResult, response: String, started: Instant) -> AttemptReport {
    AttemptReport {
        result,
        response,
        duration: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scripted(Result<(), &'static str>);

    #[async_trait::async_trait]
    impl Handler for Scripted {
        async fn handle(&self, event: HandedEvent) -> Result<(), HandlerError> {
            if event.body.as_ref() == b"panic" {
                panic!("scripted panic");
            }
            if event.body.as_ref() == b"slow" {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            self.0.map_err(|text| HandlerError(text.into()))
        }
    }

    fn event(body: &'static [u8]) -> HandedEvent {
        HandedEvent {
            id: "msg_1".into(),
            event_type: "x".into(),
            event_id: None,
            headers: Vec::new(),
            body: bytes::Bytes::from_static(body),
            attempt: 1,
        }
    }

    #[tokio::test]
    async fn outcomes_of_a_handler_map_to_attempt_results() {
        let mut handlers = Handlers::default();
        handlers
            .register("ok", Scripted(Ok(())))
            .register("err", Scripted(Err("db down")));
        let second = Duration::from_secs(1);
        let ok = handlers.deliver("ok", event(b"{}"), second).await;
        assert_eq!(ok.result.outcome, OutcomeCode::Success);
        let err = handlers.deliver("err", event(b"{}"), second).await;
        assert_eq!(
            (err.result.outcome, err.response.as_str()),
            (OutcomeCode::HandlerError, "db down")
        );
        let panicked = handlers.deliver("ok", event(b"panic"), second).await;
        assert_eq!(panicked.result.outcome, OutcomeCode::HandlerError);
        assert_eq!(panicked.response, "the handler panicked");
        let slow = handlers
            .deliver("ok", event(b"slow"), Duration::from_millis(20))
            .await;
        assert_eq!(slow.result.outcome, OutcomeCode::Timeout);
        let missing = handlers.deliver("nobody", event(b"{}"), second).await;
        assert_eq!(missing.result.outcome, OutcomeCode::HandlerError);
    }

    #[test]
    fn handler_urls_name_their_handler() {
        let url = url::Url::parse(&handler_url("clinic-claims")).unwrap();
        assert_eq!(handler_name(&url), Some("clinic-claims"));
        let http = url::Url::parse("http://example.com/x").unwrap();
        assert_eq!(handler_name(&http), None);
    }
}
