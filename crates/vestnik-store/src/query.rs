//! Query and command shapes passed to the [`crate::Store`]: pages, filters, attempt outcomes.

use crate::model::{Attempt, UnixMs};
use vestnik_core::{AppId, EndpointId, MessageId};

/// Keyset pagination over time-sortable ids: `cursor` excludes itself and everything before it
/// in the chosen direction. The store returns up to `limit + 1` rows so callers can tell `done`.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
    pub ascending: bool,
}

impl PageRequest {
    pub fn first(limit: usize, ascending: bool) -> Self {
        Self {
            limit,
            cursor: None,
            ascending,
        }
    }

    pub(crate) fn fetch(&self) -> i64 {
        i64::try_from(self.limit).unwrap_or(i64::MAX - 1) + 1
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageFilter {
    pub page: PageRequest,
    pub channel: Option<String>,
    pub event_types: Vec<String>,
    pub before: Option<UnixMs>,
    pub after: Option<UnixMs>,
}

impl MessageFilter {
    pub fn page(page: PageRequest) -> Self {
        Self {
            page,
            channel: None,
            event_types: Vec::new(),
            before: None,
            after: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptFilter {
    pub app: AppId,
    pub msg: Option<MessageId>,
    pub endpoint: Option<EndpointId>,
    pub status: Option<vestnik_core::DeliveryStatus>,
    /// Lower bound of the status-code class (200 means 200–299); 0 means "no response".
    pub status_code_class: Option<i32>,
    pub channel: Option<String>,
    pub event_types: Vec<String>,
    pub before: Option<UnixMs>,
    pub after: Option<UnixMs>,
    pub page: PageRequest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointStats {
    pub success: i64,
    pub pending: i64,
    pub sending: i64,
    pub fail: i64,
}

/// What becomes of a task after its attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskNext {
    Delivered,
    RetryAt(UnixMs),
    Exhausted,
    /// 410 Gone: the task fails and the endpoint is disabled.
    DisableEndpoint,
}

/// One finished attempt to record, with its task's next state.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub attempt: Attempt,
    pub next: TaskNext,
    /// Disable the endpoint if it has been failing continuously since before this time.
    pub disable_if_failing_since_before: UnixMs,
}

/// A change of an endpoint's health noticed while recording attempts.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointTransition {
    /// It had been failing and has now succeeded.
    Recovered { endpoint: EndpointId },
    /// It was disabled (410 Gone, or failing for too long).
    Disabled {
        endpoint: EndpointId,
        failing_since: UnixMs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepths {
    /// Pending and due now, not leased.
    pub due: i64,
    /// Held under lease by a dispatcher.
    pub leased: i64,
    /// Pending with a retry time in the future.
    pub waiting: i64,
}
