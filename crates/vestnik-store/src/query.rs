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

/// An endpoint's health as attempts change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointHealth {
    pub failing_since: Option<UnixMs>,
    pub disabled: bool,
}

impl EndpointHealth {
    /// Applies one endpoint's attempts, oldest first: a success clears the failing streak (a
    /// recovery if there was one); a failure starts or extends it and disables the endpoint on a
    /// 410 or once it has failed for too long. Returns what changed, in order.
    pub fn apply<'a>(
        &mut self,
        endpoint: &EndpointId,
        outcomes: impl IntoIterator<Item = &'a AttemptOutcome>,
    ) -> Vec<EndpointTransition> {
        let mut transitions = Vec::new();
        for outcome in outcomes {
            if outcome.next == TaskNext::Delivered {
                if self.failing_since.take().is_some() {
                    transitions.push(EndpointTransition::Recovered {
                        endpoint: endpoint.clone(),
                    });
                }
                continue;
            }
            let failing_since = *self.failing_since.get_or_insert(outcome.attempt.created_at);
            let too_long = failing_since < outcome.disable_if_failing_since_before;
            if !self.disabled && (outcome.next == TaskNext::DisableEndpoint || too_long) {
                self.disabled = true;
                transitions.push(EndpointTransition::Disabled {
                    endpoint: endpoint.clone(),
                    failing_since,
                });
            }
        }
        transitions
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Attempt;
    use vestnik_core::{AppId, AttemptId, DeliveryStatus, MessageId, OutcomeCode};

    fn outcome(at: UnixMs, next: TaskNext, disable_before: UnixMs) -> AttemptOutcome {
        AttemptOutcome {
            attempt: Attempt {
                id: AttemptId::generate(at as u64),
                msg_id: MessageId::generate(at as u64),
                endpoint_id: EndpointId::generate(0),
                app_id: AppId::generate(0),
                url: String::new(),
                status: DeliveryStatus::Fail,
                outcome: OutcomeCode::Connection,
                response_status_code: 0,
                response: String::new(),
                response_duration_ms: 0,
                manual: false,
                created_at: at,
            },
            next,
            disable_if_failing_since_before: disable_before,
        }
    }

    #[test]
    fn failures_start_a_streak_that_a_success_ends_and_time_or_410_disables() {
        let ep = EndpointId::generate(0);
        let mut health = EndpointHealth {
            failing_since: None,
            disabled: false,
        };
        let streak = [
            outcome(100, TaskNext::RetryAt(200), 0),
            outcome(150, TaskNext::RetryAt(300), 0),
            outcome(160, TaskNext::Delivered, 0),
        ];
        assert_eq!(
            health.apply(&ep, &streak),
            [EndpointTransition::Recovered {
                endpoint: ep.clone()
            }]
        );
        assert_eq!(health.failing_since, None);

        let long = [
            outcome(1_000, TaskNext::RetryAt(2_000), 500),
            outcome(5_000, TaskNext::RetryAt(6_000), 4_000),
            outcome(5_001, TaskNext::Exhausted, 4_000),
        ];
        assert_eq!(
            health.apply(&ep, &long),
            [EndpointTransition::Disabled {
                endpoint: ep.clone(),
                failing_since: 1_000
            }],
            "failing since 1,000 is before 4,000: disabled once"
        );
        let mut fresh = EndpointHealth {
            failing_since: None,
            disabled: false,
        };
        let gone = [outcome(10, TaskNext::DisableEndpoint, 0)];
        assert_eq!(fresh.apply(&ep, &gone).len(), 1, "410 disables at once");
        assert!(fresh.disabled);
    }
}
