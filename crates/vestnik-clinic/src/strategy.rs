//! How the clinic learns decisions, exactly as the brief words each strategy, as pure schedule
//! rules over the simulated clock:
//!
//! - `poll`: a status request every 2 s for the first 30 s after submission (16 requests, at
//!   0, 2, …, 30 s), then the nightly 03:00 sweep of every pending claim;
//! - `long-poll`: one request the insurer holds up to 30 s, then the nightly sweep;
//! - `on-view`: a request each time someone opens a pending claim, plus the daily timer;
//! - `webhook`: the insurer's webhooks, with the daily timer kept as a safety net.
//!
//! The daily timer (04:00) checks a pending claim once 28 calendar days have passed since it was
//! last checked (20 business days are at least 28 calendar days), and once more when 40 days have
//! passed since submission (20 business days across the New Year break); by then every manual
//! review has ended.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use vestnik_claims::adjudication::moscow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Webhook,
    Poll,
    LongPoll,
    OnView,
}

impl Strategy {
    pub const ALL: [Self; 4] = [Self::Webhook, Self::Poll, Self::LongPoll, Self::OnView];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Poll => "poll",
            Self::LongPoll => "long-poll",
            Self::OnView => "on-view",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the nightly 03:00 sweep runs.
    pub fn sweeps(self) -> bool {
        matches!(self, Self::Poll | Self::LongPoll)
    }

    /// Whether the daily 28/40-day timer runs.
    pub fn has_timer(self) -> bool {
        matches!(self, Self::Webhook | Self::OnView)
    }

    /// Whether opening a pending claim asks the insurer.
    pub fn checks_on_view(self) -> bool {
        self == Self::OnView
    }
}

/// Offsets after submission at which `poll` asks: 0, 2, …, 30 s.
pub fn poll_offsets() -> impl Iterator<Item = SignedDuration> {
    (0..=15).map(|n| SignedDuration::from_secs(2 * n))
}

/// How long the insurer may hold a long-poll, in simulated seconds.
pub const LONG_POLL_SECONDS: u64 = 30;

/// The first `hour`:00 Moscow time strictly after `after`.
pub fn next_daily(after: Timestamp, hour: i8) -> Timestamp {
    let local = after.to_zoned_datetime(moscow()).datetime();
    let today = local.date().at(hour, 0, 0, 0);
    let next = if today > local {
        today
    } else {
        today.date().tomorrow().expect("a date").at(hour, 0, 0, 0)
    };
    next.to_zoned_datetime(moscow())
        .expect("Moscow has no gaps")
        .timestamp()
}

pub const SWEEP_HOUR: i8 = 3;
pub const TIMER_HOUR: i8 = 4;
const DAY: SignedDuration = SignedDuration::from_hours(24);

/// Whether the daily timer asks about a pending claim now, given when it was submitted, last
/// checked, and how many timer checks it has had.
pub fn timer_due(
    now: Timestamp,
    submitted: Timestamp,
    last_checked: Timestamp,
    timer_checks: u32,
) -> bool {
    match timer_checks {
        0 => now.duration_since(last_checked) >= DAY * 28,
        1 => now.duration_since(submitted) >= DAY * 40,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn poll_asks_sixteen_times_in_thirty_seconds() {
        let offsets: Vec<i64> = poll_offsets().map(|d| d.as_secs()).collect();
        assert_eq!(offsets.len(), 16);
        assert_eq!((offsets[0], offsets[15]), (0, 30));
    }

    #[test]
    fn the_nightly_sweep_is_the_next_three_oclock_moscow_time() {
        // 10:00 Moscow → 03:00 the next day.
        assert_eq!(
            next_daily(t("2026-03-02T07:00:00Z"), 3),
            t("2026-03-03T00:00:00Z")
        );
        // 02:00 Moscow → 03:00 the same day; exactly 03:00 → the next day.
        assert_eq!(
            next_daily(t("2026-03-01T23:00:00Z"), 3),
            t("2026-03-02T00:00:00Z")
        );
        assert_eq!(
            next_daily(t("2026-03-02T00:00:00Z"), 3),
            t("2026-03-03T00:00:00Z")
        );
    }

    #[test]
    fn the_timer_checks_at_twenty_eight_and_forty_days() {
        let submitted = t("2026-03-02T07:00:00Z");
        let day = |n: i64| submitted + SignedDuration::from_hours(24 * n);
        assert!(!timer_due(day(27), submitted, submitted, 0));
        assert!(timer_due(day(28), submitted, submitted, 0));
        // A view on day 10 resets the 28-day wait.
        assert!(!timer_due(day(30), submitted, day(10), 0));
        assert!(!timer_due(day(39), submitted, day(28), 1));
        assert!(timer_due(day(40), submitted, day(28), 1));
        assert!(
            !timer_due(day(90), submitted, day(40), 2),
            "two timer checks at most"
        );
        assert_eq!(Strategy::parse("long-poll"), Some(Strategy::LongPoll));
        assert!(Strategy::Webhook.has_timer() && !Strategy::Poll.has_timer());
    }
}
