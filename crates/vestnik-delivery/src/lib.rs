//! Outbound delivery: leases due tasks, paces them per endpoint, signs and POSTs them behind the
//! SSRF guard (or hands them to an in-process [`handler`]), records every attempt and decides
//! what comes next. Only [`outbound`] opens connections to customer endpoints.

pub mod dispatcher;
pub mod guard;
pub mod handler;
pub mod operational;
pub mod outbound;
pub mod request;

pub use dispatcher::{Dispatcher, DispatcherHandle, TaskKey};
pub use handler::{HandedEvent, Handler, HandlerError, Handlers};
pub use operational::OperationalEvents;
pub use outbound::ClientError;

use std::time::Duration;
use vestnik_core::RetrySchedule;

/// Everything the delivery side can be tuned with; built once from the CLI/env.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub schedule: RetrySchedule,
    pub timeout: Duration,
    /// Networks the SSRF guard lets through although they are not public.
    pub allow_targets: Vec<ipnet::IpNet>,
    /// Attempts in flight at once across all endpoints.
    pub max_in_flight: usize,
    /// Attempts in flight at once to one endpoint.
    pub endpoint_concurrency: usize,
    /// Tasks held in memory at most (queued in lanes or in flight).
    pub max_buffered: usize,
    /// How long a lease lasts before another dispatcher may take the task.
    pub lease: Duration,
    /// Also send `svix-id`/`svix-timestamp`/`svix-signature` beside the standard headers.
    pub svix_headers: bool,
    /// Bytes of a response body kept with the attempt.
    pub response_body_cap: usize,
    /// Disable an endpoint after it has failed continuously this long.
    pub disable_after: Duration,
    /// Send `message.attempt.failing` once a delivery has failed this many attempts.
    pub failing_after_attempts: u32,
    /// In-process destinations, by name (`vestnik-handler:<name>` endpoints).
    pub handlers: Handlers,
    /// Where the dispatcher's tasks come from.
    pub feed: Feed,
}

impl DeliverySettings {
    /// Settings for a node that shares its database with other nodes: it holds only what it can
    /// start soon (a few times its in-flight cap), so the backlog is shared among the nodes and
    /// no task waits in one node's memory until its lease runs out.
    pub fn shared(self) -> Self {
        Self {
            max_buffered: (self.max_in_flight * 4).max(1_000),
            ..self
        }
    }
}

/// Where a dispatcher's tasks come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Feed {
    /// It leases due tasks from storage itself, and dispatches tasks the API creates at once.
    #[default]
    Storage,
    /// A dispatch queue's consumer hands tasks over ([`DispatcherHandle::submit`]); tasks the
    /// API creates are born due, for the relay to queue.
    Queue,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            schedule: RetrySchedule::default(),
            timeout: Duration::from_secs(15),
            allow_targets: Vec::new(),
            max_in_flight: 512,
            endpoint_concurrency: 32,
            max_buffered: 100_000,
            lease: Duration::from_secs(300),
            svix_headers: true,
            response_body_cap: 8 * 1024,
            disable_after: Duration::from_secs(5 * 24 * 3600),
            failing_after_attempts: 4,
            handlers: Handlers::default(),
            feed: Feed::Storage,
        }
    }
}

/// Milliseconds since the Unix epoch from the system clock; the one clock reading of this crate.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
