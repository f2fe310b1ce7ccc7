//! Each strategy run over the workload, claim by claim in submission order, in virtual time:
//! which requests reach the insurer and when, when the clinic learns each decision, and what the
//! people who open claims see.

use crate::rng::SplitMix;
use crate::workload::{CLOSES, Claim, DAY, Days, HOUR, OPENS, Params, SECOND};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Poll,
    PollOnce,
    LongPoll,
    OnView,
    Webhook,
    #[serde(rename = "webhook+on-view")]
    WebhookOnView,
}

impl Strategy {
    pub const ALL: [Self; 6] = [
        Self::Poll,
        Self::PollOnce,
        Self::LongPoll,
        Self::OnView,
        Self::Webhook,
        Self::WebhookOnView,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::PollOnce => "poll-once",
            Self::LongPoll => "long-poll",
            Self::OnView => "on-view",
            Self::Webhook => "webhook",
            Self::WebhookOnView => "webhook+on-view",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Why a request reached (or, for webhooks, left) the insurer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Poll,
    LongPoll,
    Sweep,
    View,
    Timer,
    WebhookPost,
}

impl Kind {
    pub const ALL: [Self; 6] = [
        Self::Poll,
        Self::LongPoll,
        Self::Sweep,
        Self::View,
        Self::Timer,
        Self::WebhookPost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::LongPoll => "long_poll",
            Self::Sweep => "sweep",
            Self::View => "view",
            Self::Timer => "timer",
            Self::WebhookPost => "webhook_post",
        }
    }
}

const POLL_EVERY: i64 = 2 * SECOND;
const POLL_FOR: i64 = 30 * SECOND;
const LONG_POLL: i64 = 30 * SECOND;
const SWEEP_AT: i64 = 3 * HOUR;
const TIMER_AT: i64 = 4 * HOUR;
const FIRST_TIMER: i64 = 28 * DAY;
const SECOND_TIMER: i64 = 40 * DAY;
/// Salt that separates a claim's outage stream from its view stream.
const OUTAGES: u64 = 0x6f75_7461_6765_7321;

/// The first `at` o'clock strictly after `t`.
pub fn next_daily(t: i64, at: i64) -> i64 {
    let today = t.div_euclid(DAY) * DAY + at;
    if today > t { today } else { today + DAY }
}

/// The load one strategy puts on the insurer, and what the clinic learned.
#[derive(Debug, Clone)]
pub struct Tally {
    pub strategy: Strategy,
    pub claims: u64,
    pub counts: [u64; 6],
    pub long_poll_held_ms: i64,
    pub per_second: Vec<u32>,
    pub per_hour: Vec<u32>,
    /// Decision → clinic knows, for every decision learned by the horizon (ms).
    pub staleness: Vec<i64>,
    pub decided: u64,
    pub never_learned: u64,
    pub views: u64,
    pub stale_views: u64,
}

impl Tally {
    fn new(strategy: Strategy, horizon: i64) -> Self {
        Self {
            strategy,
            claims: 0,
            counts: [0; 6],
            long_poll_held_ms: 0,
            per_second: vec![0; (horizon / SECOND) as usize + 1],
            per_hour: vec![0; (horizon / HOUR) as usize + 1],
            staleness: Vec::new(),
            decided: 0,
            never_learned: 0,
            views: 0,
            stale_views: 0,
        }
    }

    fn request(&mut self, t: i64, kind: Kind) {
        self.counts[kind as usize] += 1;
        if let Some(second) = self.per_second.get_mut((t / SECOND) as usize) {
            *second += 1;
        }
        if let Some(hour) = self.per_hour.get_mut((t / HOUR) as usize) {
            *hour += 1;
        }
    }

    pub fn count(&self, kind: Kind) -> u64 {
        self.counts[kind as usize]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// State of one claim as one strategy plays it out.
struct Run<'a> {
    claim: Claim,
    params: &'a Params,
    horizon: i64,
    learned: Option<i64>,
    /// Last time the clinic heard about the claim (a request or a webhook).
    last_contact: i64,
    timer_checks: u32,
}

impl Run<'_> {
    /// A status request at `t`: the clinic learns the decision if it is made by then.
    fn ask(&mut self, tally: &mut Tally, t: i64, kind: Kind) {
        tally.request(t, kind);
        self.last_contact = t;
        if kind == Kind::Timer {
            self.timer_checks += 1;
        }
        if self.learned.is_none() && self.claim.decided <= t {
            self.learned = Some(t);
        }
    }

    fn knows_at(&self, t: i64) -> bool {
        self.learned.is_some_and(|l| l <= t)
    }

    /// The daily timer's next check, if it will make one.
    fn next_timer(&self) -> Option<i64> {
        match self.timer_checks {
            0 => Some(next_daily(self.last_contact + FIRST_TIMER - 1, TIMER_AT)),
            1 => Some(next_daily(
                self.claim.submitted + SECOND_TIMER - 1,
                TIMER_AT,
            )),
            _ => None,
        }
        .filter(|t| *t < self.horizon)
    }

    /// The daily timer's check due at `at` (04:00), paced like the sweep: the day's checks go
    /// out one after another at the sweep rate.
    fn timer_check(&mut self, tally: &mut Tally, timer_counts: &mut [u32], at: i64) {
        let slot = &mut timer_counts[(at / DAY) as usize];
        let t = at + (f64::from(*slot) / self.params.sweep_rate * 1_000.0) as i64;
        *slot += 1;
        self.ask(tally, t, Kind::Timer);
    }

    /// The nightly sweep of `night` (03:00) asking about this claim, in its place in the queue.
    fn sweep(&mut self, tally: &mut Tally, sweep_counts: &mut [u32], night: i64) {
        let slot = &mut sweep_counts[(night / DAY) as usize];
        let t = night + (f64::from(*slot) / self.params.sweep_rate * 1_000.0) as i64;
        *slot += 1;
        self.ask(tally, t, Kind::Sweep);
    }

    /// One webhook delivery from `from`: attempts on the schedule until one succeeds; the time
    /// the clinic has it, or None if every attempt failed.
    fn deliver(&self, tally: &mut Tally, outages: &mut SplitMix, from: i64) -> Option<i64> {
        let mut t = from;
        let mut delays = self.params.retry_schedule_ms.iter();
        loop {
            if t >= self.horizon {
                return None;
            }
            tally.request(t, Kind::WebhookPost);
            let down = self
                .params
                .outages
                .iter()
                .any(|(a, b)| (*a..*b).contains(&t));
            if !down && outages.unit() >= self.params.outage_probability {
                return Some(t + self.params.webhook_latency_ms);
            }
            t += *delays.next()?;
        }
    }
}

/// The views of one claim: a Poisson process in working time (clinic hours of business days),
/// the same stream in every strategy.
struct Views<'a> {
    rng: SplitMix,
    days: &'a Days,
    mean_gap: f64,
    working: f64,
}

impl Iterator for Views<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        if self.mean_gap.is_infinite() {
            return None;
        }
        self.working += self.rng.exponential(self.mean_gap);
        self.days.clock_at(self.working as i64)
    }
}

/// Plays `strategy` over every claim.
pub fn run(strategy: Strategy, params: &Params, claims: &[Claim], days: &Days) -> Tally {
    run_with_progress(strategy, params, claims, days, &|_| {})
}

/// Claims between two progress reports.
const PROGRESS_EVERY: u64 = 8_192;

/// [`run`], telling `progress` every few thousand claims how many more were played.
pub fn run_with_progress(
    strategy: Strategy,
    params: &Params,
    claims: &[Claim],
    days: &Days,
    progress: &(dyn Fn(u64) + Sync),
) -> Tally {
    let horizon = params.horizon_ms();
    let mut tally = Tally::new(strategy, horizon);
    let mut sweep_counts = vec![0u32; days.len() + 2];
    let mut timer_counts = vec![0u32; days.len() + 2];
    let per_day = params.views_per_business_day;
    let mean_gap = if per_day > 0.0 {
        (CLOSES - OPENS) as f64 / per_day
    } else {
        f64::INFINITY
    };
    for claim in claims {
        tally.claims += 1;
        if tally.claims.is_multiple_of(PROGRESS_EVERY) {
            progress(PROGRESS_EVERY);
        }
        let mut run = Run {
            claim: *claim,
            params,
            horizon,
            learned: None,
            last_contact: claim.submitted,
            timer_checks: 0,
        };
        let mut outages = SplitMix::new(claim.stream ^ OUTAGES);
        let views = || Views {
            rng: SplitMix::new(claim.stream),
            days,
            mean_gap,
            working: days.working_at(claim.submitted) as f64,
        };
        let s = claim.submitted;
        match strategy {
            Strategy::Poll | Strategy::PollOnce => {
                let window = if strategy == Strategy::Poll {
                    POLL_FOR
                } else {
                    0
                };
                // Polls and sweeps in time order: the sweep asks about every pending claim,
                // one still inside its polling window too.
                let mut poll = s;
                let mut night = next_daily(s, SWEEP_AT);
                while run.learned.is_none() {
                    if poll <= s + window && poll <= night {
                        run.ask(&mut tally, poll, Kind::Poll);
                        poll += POLL_EVERY;
                    } else if night < horizon {
                        run.sweep(&mut tally, &mut sweep_counts, night);
                        night += DAY;
                    } else {
                        break;
                    }
                }
            }
            Strategy::LongPoll => {
                let answered = claim.decided.min(s + LONG_POLL);
                tally.long_poll_held_ms += answered - s;
                tally.request(s, Kind::LongPoll);
                run.last_contact = s;
                if claim.decided <= s + LONG_POLL {
                    run.learned = Some(claim.decided);
                }
                // Sweeps ask about the claim until the clinic knows (a sweep may come while the
                // long-poll is still held).
                let mut night = next_daily(s, SWEEP_AT);
                while night < horizon && !run.knows_at(night) {
                    run.sweep(&mut tally, &mut sweep_counts, night);
                    night += DAY;
                }
            }
            Strategy::OnView | Strategy::Webhook | Strategy::WebhookOnView => {
                let webhooks = strategy != Strategy::OnView;
                if webhooks {
                    // The first status change (in review) at submission, then the decision.
                    if let Some(at) = run.deliver(&mut tally, &mut outages, s) {
                        run.last_contact = at;
                    }
                    if claim.decided < horizon
                        && let Some(at) = run.deliver(&mut tally, &mut outages, claim.decided)
                    {
                        run.learned = Some(at);
                    }
                }
                let check_on_view = |run: &Run<'_>, v: i64| match strategy {
                    Strategy::OnView => true,
                    Strategy::WebhookOnView => v - run.last_contact > params.stale_after_ms,
                    _ => false,
                };
                // Views and timer checks in time order, until the clinic knows.
                let mut views = views().take_while(|v| *v < horizon).peekable();
                loop {
                    let next_view = views.peek().copied();
                    let timer = if run.learned.is_none() {
                        run.next_timer()
                    } else {
                        None
                    };
                    match (next_view, timer) {
                        (Some(v), Some(t)) if t < v => {
                            run.timer_check(&mut tally, &mut timer_counts, t)
                        }
                        (None, Some(t)) => run.timer_check(&mut tally, &mut timer_counts, t),
                        (Some(v), _) => {
                            views.next();
                            if !run.knows_at(v) && check_on_view(&run, v) {
                                run.ask(&mut tally, v, Kind::View);
                            }
                            tally.views += 1;
                            if claim.decided <= v && !run.knows_at(v) {
                                tally.stale_views += 1;
                            }
                        }
                        (None, None) => break,
                    }
                }
            }
        }
        if !matches!(
            strategy,
            Strategy::OnView | Strategy::Webhook | Strategy::WebhookOnView
        ) {
            // Views change nothing for these strategies; count what people saw.
            for v in views().take_while(|v| *v < horizon) {
                tally.views += 1;
                if claim.decided <= v && !run.knows_at(v) {
                    tally.stale_views += 1;
                }
            }
        }
        if claim.decided < horizon {
            tally.decided += 1;
            match run.learned {
                Some(learned) if learned < horizon => tally.staleness.push(learned - claim.decided),
                _ => tally.never_learned += 1,
            }
        }
    }
    progress(tally.claims % PROGRESS_EVERY);
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Days, MINUTE};
    use jiff::civil::Date;

    fn days() -> Days {
        Days::new(Date::new(2026, 3, 2).unwrap(), 120)
    }

    fn params() -> Params {
        Params {
            views_per_business_day: 0.0,
            ..Params::default()
        }
    }

    fn auto(submitted: i64, after: i64) -> Claim {
        Claim {
            submitted,
            decided: submitted + after,
            manual: false,
            stream: submitted as u64,
        }
    }

    #[test]
    fn poll_sends_ceil_t_over_two_plus_one_requests_and_learns_within_two_seconds() {
        let days = days();
        for decided_after in [100, 1_999, 2_000, 2_001, 4_999, 13_500, 29_999] {
            let claim = auto(10 * HOUR, decided_after);
            let tally = run(Strategy::Poll, &params(), &[claim], &days);
            let t = decided_after as f64 / 1000.0;
            assert_eq!(
                tally.count(Kind::Poll),
                (t / 2.0).ceil() as u64 + 1,
                "t = {t}"
            );
            assert_eq!(tally.count(Kind::Sweep), 0);
            assert!(tally.staleness[0] < 2 * SECOND, "t = {t}");
        }
    }

    #[test]
    fn the_nightly_sweep_learns_a_day_decision_between_nine_and_eighteen_hours_later() {
        let days = days();
        let mut claims = Vec::new();
        for n in 0..200 {
            // Submitted Monday 10:00, decided by hand on Wednesday during working hours.
            let submitted = 10 * HOUR + n;
            let decided = 2 * DAY + OPENS + (n * 97 * MINUTE / 200) % (CLOSES - OPENS);
            claims.push(Claim {
                submitted,
                decided,
                manual: true,
                stream: n as u64,
            });
        }
        for strategy in [Strategy::Poll, Strategy::LongPoll, Strategy::PollOnce] {
            let tally = run(strategy, &params(), &claims, &days);
            for stale in &tally.staleness {
                // From a decision at 09:00–18:00 to the next 03:00 (plus the sweep's queue).
                assert!(
                    (9 * HOUR..=18 * HOUR + 10 * SECOND).contains(stale),
                    "{strategy:?}: {stale}"
                );
            }
            assert_eq!(tally.never_learned, 0);
        }
    }

    #[test]
    fn webhooks_without_outages_post_once_per_status_change_and_lag_by_the_delivery_latency() {
        let days = days();
        let (claims, _) = crate::workload::generate(&params());
        let tally = run(Strategy::Webhook, &params(), &claims, &days);
        let decided = claims
            .iter()
            .filter(|c| c.decided < params().horizon_ms())
            .count() as u64;
        assert_eq!(
            tally.count(Kind::WebhookPost),
            claims.len() as u64 + decided
        );
        assert!(
            tally
                .staleness
                .iter()
                .all(|s| *s == params().webhook_latency_ms)
        );
        assert_eq!(
            tally.count(Kind::Timer) + tally.count(Kind::View) + tally.count(Kind::Poll),
            0
        );
    }

    #[test]
    fn on_view_never_checks_a_claim_nobody_views_before_day_twenty_eight() {
        let days = days();
        let claim = Claim {
            submitted: 10 * HOUR,
            decided: 20 * DAY,
            manual: true,
            stream: 1,
        };
        let tally = run(Strategy::OnView, &params(), &[claim], &days);
        assert_eq!(tally.count(Kind::View), 0);
        assert_eq!(tally.count(Kind::Timer), 1, "the 28-day timer");
        assert_eq!(
            tally.staleness,
            [next_daily(10 * HOUR + 28 * DAY - 1, TIMER_AT) - 20 * DAY]
        );
    }

    #[test]
    fn outages_cost_retries_and_the_timer_catches_what_retries_miss() {
        let days = days();
        let (claims, _) = crate::workload::generate(&params());
        let flaky = Params {
            outage_probability: 0.5,
            ..params()
        };
        let tally = run(Strategy::Webhook, &flaky, &claims, &days);
        let decided = claims
            .iter()
            .filter(|c| c.decided < flaky.horizon_ms())
            .count() as u64;
        assert!(
            tally.count(Kind::WebhookPost) > claims.len() as u64 + decided,
            "retries"
        );
        assert_eq!(
            tally.never_learned, 0,
            "retries, then the timer, learn every decision"
        );
        let down = Params {
            retry_schedule_ms: vec![],
            outage_probability: 1.0,
            ..params()
        };
        let tally = run(Strategy::Webhook, &down, &claims, &days);
        assert!(tally.count(Kind::Timer) > 0);
        assert_eq!(
            tally.never_learned, 0,
            "the 28/40-day timer is the safety net"
        );
    }
}
