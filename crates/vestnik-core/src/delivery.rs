//! The delivery state machine: what one attempt's result means for its task (delivered, retry
//! later, exhausted, or disable the endpoint), and the stable outcome codes attempts record.

use crate::retry::RetrySchedule;
use std::time::Duration;

/// Svix's `MessageStatus`: the state of one message at one endpoint, and of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Success = 0,
    Pending = 1,
    Fail = 2,
    Sending = 3,
}

impl DeliveryStatus {
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::Success,
            1 => Self::Pending,
            2 => Self::Fail,
            3 => Self::Sending,
            _ => return None,
        })
    }

    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn text(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Pending => "pending",
            Self::Fail => "fail",
            Self::Sending => "sending",
        }
    }
}

/// Svix's `MessageAttemptTriggerType`: scheduled by the pipeline (0) or a manual resend (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerType {
    Scheduled = 0,
    Manual = 1,
}

impl TriggerType {
    pub fn from_code(code: i64) -> Self {
        if code == 1 {
            Self::Manual
        } else {
            Self::Scheduled
        }
    }
}

/// Why an attempt ended as it did; stable strings recorded with every attempt and used in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeCode {
    Success,
    Timeout,
    Dns,
    Connection,
    Tls,
    HttpStatus,
    BlockedTarget,
    /// An in-process handler returned an error or panicked.
    HandlerError,
}

impl OutcomeCode {
    pub const ALL: [Self; 8] = [
        Self::Success,
        Self::Timeout,
        Self::Dns,
        Self::Connection,
        Self::Tls,
        Self::HttpStatus,
        Self::BlockedTarget,
        Self::HandlerError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Timeout => "timeout",
            Self::Dns => "dns",
            Self::Connection => "connection",
            Self::Tls => "tls",
            Self::HttpStatus => "http_status",
            Self::BlockedTarget => "blocked_target",
            Self::HandlerError => "handler_error",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

/// What one attempt produced, as far as the state machine cares.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    pub outcome: OutcomeCode,
    /// The HTTP status when a response arrived.
    pub status_code: Option<u16>,
    /// `Retry-After` from a 429 or 503 response.
    pub retry_after: Option<Duration>,
}

impl AttemptResult {
    pub fn from_status(status_code: u16, retry_after: Option<Duration>) -> Self {
        let outcome = if (200..300).contains(&status_code) {
            OutcomeCode::Success
        } else {
            OutcomeCode::HttpStatus
        };
        let retry_after = retry_after.filter(|_| matches!(status_code, 429 | 503));
        Self {
            outcome,
            status_code: Some(status_code),
            retry_after,
        }
    }

    pub fn failed(outcome: OutcomeCode) -> Self {
        Self {
            outcome,
            status_code: None,
            retry_after: None,
        }
    }

    pub fn succeeded(&self) -> bool {
        self.outcome == OutcomeCode::Success
    }
}

/// What happens to a task after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum NextStep {
    Delivered,
    RetryIn(Duration),
    Exhausted,
    /// The receiver answered `410 Gone`: stop this task and disable the endpoint.
    DisableEndpoint,
}

/// Decides the next step after attempt number `attempts_made` (1-based) produced `result`.
pub fn next_step(
    result: &AttemptResult,
    attempts_made: u32,
    schedule: &RetrySchedule,
    jitter_unit: f64,
) -> NextStep {
    if result.succeeded() {
        return NextStep::Delivered;
    }
    if result.status_code == Some(410) {
        return NextStep::DisableEndpoint;
    }
    match schedule.delay_after(attempts_made, jitter_unit, result.retry_after) {
        Some(delay) => NextStep::RetryIn(delay),
        None => NextStep::Exhausted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_is_any_2xx_and_redirects_fail() {
        assert!(AttemptResult::from_status(204, None).succeeded());
        assert!(AttemptResult::from_status(299, None).succeeded());
        assert!(!AttemptResult::from_status(301, None).succeeded());
        assert!(!AttemptResult::from_status(500, None).succeeded());
    }

    #[test]
    fn retry_after_only_counts_on_429_and_503() {
        let five = Some(Duration::from_secs(5));
        assert_eq!(AttemptResult::from_status(429, five).retry_after, five);
        assert_eq!(AttemptResult::from_status(503, five).retry_after, five);
        assert_eq!(AttemptResult::from_status(500, five).retry_after, None);
    }

    #[test]
    fn failures_walk_the_schedule_then_exhaust() {
        let schedule = RetrySchedule::default();
        let failure = AttemptResult::failed(OutcomeCode::Connection);
        assert_eq!(
            next_step(&failure, 1, &schedule, 0.0),
            NextStep::RetryIn(Duration::from_secs(5))
        );
        assert_eq!(next_step(&failure, 8, &schedule, 0.0), NextStep::Exhausted);
        assert_eq!(
            next_step(&AttemptResult::from_status(200, None), 8, &schedule, 0.0),
            NextStep::Delivered
        );
        assert_eq!(
            next_step(&AttemptResult::from_status(410, None), 1, &schedule, 0.0),
            NextStep::DisableEndpoint
        );
    }

    #[test]
    fn codes_round_trip() {
        for code in OutcomeCode::ALL {
            assert_eq!(OutcomeCode::parse(code.as_str()), Some(code));
        }
        for status in [0, 1, 2, 3] {
            assert_eq!(DeliveryStatus::from_code(status).unwrap().code(), status);
        }
        assert_eq!(DeliveryStatus::from_code(9), None);
    }
}
