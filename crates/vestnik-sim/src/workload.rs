//! The workload every strategy is run against: claims arriving during the clinic's working hours
//! on business days, each automatic (decided 0.1–5 s later) or manual (decided on one of the next
//! 1–20 business days, during the insurer's working hours), on the production calendar. Time is
//! milliseconds since midnight (Moscow) of the first day.

use crate::rng::SplitMix;
use jiff::civil::Date;
use vestnik_claims::calendar::BusinessCalendar;

pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;
/// Working hours of the clinic and the insurer: 09:00–18:00.
pub const OPENS: i64 = 9 * HOUR;
pub const CLOSES: i64 = 18 * HOUR;

/// Every knob of a run; [`Params::default`] is the brief's story.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub start: Date,
    /// Days during which claims arrive.
    pub days: u32,
    /// Days after the period that the simulation keeps running, so late decisions and the
    /// 28/40-day timers play out.
    pub tail_days: u32,
    /// Claims per hour during the clinic's working hours on business days.
    pub claims_per_hour: f64,
    pub auto_probability: f64,
    /// Times a person opens a claim per business day (during working hours), pending or not.
    pub views_per_business_day: f64,
    /// Chance that one webhook delivery attempt fails (the receiver is down or errs).
    pub outage_probability: f64,
    /// Windows `[from, to)` (ms) during which the clinic's webhook receiver is down.
    pub outages: Vec<(i64, i64)>,
    pub webhook_latency_ms: i64,
    /// Delays between webhook delivery attempts (Vestnik's default: 5 s … 10 h).
    pub retry_schedule_ms: Vec<i64>,
    /// Requests per second the nightly sweep sends.
    pub sweep_rate: f64,
    /// `webhook+on-view`: a view checks when the last webhook is older than this.
    pub stale_after_ms: i64,
    pub seed: u64,
    /// Ends the run earlier than `days + tail_days` (ms), to compare with a short real run.
    pub end_ms: Option<i64>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            start: Date::new(2026, 3, 2).expect("a date"),
            days: 30,
            tail_days: 45,
            claims_per_hour: 40.0,
            auto_probability: 0.6,
            views_per_business_day: 0.5,
            outage_probability: 0.0,
            outages: Vec::new(),
            webhook_latency_ms: 50,
            retry_schedule_ms: [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
                .iter()
                .map(|s| s * SECOND)
                .collect(),
            sweep_rate: 50.0,
            stale_after_ms: 7 * DAY,
            seed: 1,
            end_ms: None,
        }
    }
}

impl Params {
    pub fn horizon_ms(&self) -> i64 {
        let full = i64::from(self.days + self.tail_days) * DAY;
        self.end_ms.map_or(full, |end| end.min(full))
    }
}

/// One claim of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub submitted: i64,
    pub decided: i64,
    pub manual: bool,
    /// Seeds this claim's views and outages, the same in every strategy.
    pub stream: u64,
}

/// The calendar flattened to day indices from the start, with working time mapped for views.
#[derive(Debug, Clone)]
pub struct Days {
    business: Vec<bool>,
    /// Indices of business days, ascending.
    business_days: Vec<u32>,
    /// Working milliseconds before each day (for mapping working time to clock time).
    working_before: Vec<i64>,
}

impl Days {
    pub fn new(start: Date, count: u32) -> Self {
        let calendar = BusinessCalendar::russia();
        let mut business = Vec::with_capacity(count as usize);
        let mut date = start;
        for _ in 0..count {
            business.push(calendar.is_business_day(date));
            date = date.tomorrow().expect("a date");
        }
        let business_days = (0..count).filter(|d| business[*d as usize]).collect();
        let mut working_before = Vec::with_capacity(count as usize + 1);
        let mut sum = 0;
        for is_business in &business {
            working_before.push(sum);
            if *is_business {
                sum += CLOSES - OPENS;
            }
        }
        working_before.push(sum);
        Self {
            business,
            business_days,
            working_before,
        }
    }

    pub fn len(&self) -> usize {
        self.business.len()
    }

    pub fn is_empty(&self) -> bool {
        self.business.is_empty()
    }

    pub fn is_business(&self, day: usize) -> bool {
        self.business.get(day).copied().unwrap_or(false)
    }

    /// The `n`th business day after `day` (n ≥ 1), if within the table.
    pub fn nth_business_after(&self, day: u32, n: u32) -> Option<u32> {
        let first_after = self.business_days.partition_point(|d| *d <= day);
        self.business_days
            .get(first_after + n as usize - 1)
            .copied()
    }

    /// Working milliseconds from the start until `t`.
    pub fn working_at(&self, t: i64) -> i64 {
        let day = (t.div_euclid(DAY)) as usize;
        if day >= self.len() {
            return *self.working_before.last().unwrap_or(&0);
        }
        let within = if self.business[day] {
            (t.rem_euclid(DAY)).clamp(OPENS, CLOSES) - OPENS
        } else {
            0
        };
        self.working_before[day] + within
    }

    /// The clock time at which `working` working milliseconds have passed (None past the table).
    pub fn clock_at(&self, working: i64) -> Option<i64> {
        let day = self
            .working_before
            .partition_point(|w| *w <= working)
            .checked_sub(1)?;
        if day >= self.len() {
            return None;
        }
        Some(day as i64 * DAY + OPENS + (working - self.working_before[day]))
    }
}

/// The claims of a run, in submission order, and the calendar they were drawn on.
pub fn generate(params: &Params) -> (Vec<Claim>, Days) {
    // Manual reviews may end up to 20 business days (≈ 40 calendar days) after the period.
    let days = Days::new(params.start, params.days + params.tail_days.max(45) + 45);
    let mut rng = SplitMix::new(params.seed);
    let mut claims = Vec::new();
    let mean_gap = HOUR as f64 / params.claims_per_hour.max(1e-9);
    for day in 0..params.days {
        if !days.is_business(day as usize) {
            continue;
        }
        let mut t = f64::from(day) * DAY as f64 + OPENS as f64;
        let closes = f64::from(day) * DAY as f64 + CLOSES as f64;
        loop {
            t += rng.exponential(mean_gap);
            if t >= closes {
                break;
            }
            let submitted = t as i64;
            let manual = rng.unit() >= params.auto_probability;
            let decided = if manual {
                let n = rng.range(1, 21) as u32;
                match days.nth_business_after(day, n) {
                    Some(on) => i64::from(on) * DAY + rng.range(OPENS, CLOSES),
                    None => i64::MAX,
                }
            } else {
                submitted + rng.range(100, 5_001)
            };
            claims.push(Claim {
                submitted,
                decided,
                manual,
                stream: rng.next_u64(),
            });
        }
    }
    (claims, days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_arrive_in_working_hours_and_decide_within_their_windows() {
        let params = Params::default();
        let (claims, days) = generate(&params);
        let expected = 40.0 * 9.0 * 21.0; // 21 business days in March 2026
        assert!(
            (claims.len() as f64 - expected).abs() < expected * 0.1,
            "{}",
            claims.len()
        );
        for claim in &claims {
            let day = (claim.submitted / DAY) as usize;
            assert!(days.is_business(day));
            assert!((OPENS..CLOSES).contains(&(claim.submitted % DAY)));
            if claim.manual {
                let decided_day = (claim.decided / DAY) as usize;
                assert!(days.is_business(decided_day) && decided_day > day);
                assert!(decided_day - day <= 28 + 12, "within 20 business days");
            } else {
                assert!((100..=5_000).contains(&(claim.decided - claim.submitted)));
            }
        }
        let auto = claims.iter().filter(|c| !c.manual).count() as f64 / claims.len() as f64;
        assert!((auto - 0.6).abs() < 0.05);
        assert_eq!(generate(&params).0, claims, "same seed, same workload");
    }

    #[test]
    fn working_time_maps_back_to_clock_time() {
        let days = Days::new(Date::new(2026, 3, 2).unwrap(), 14);
        // Monday 10:00 → one working hour; Saturday counts nothing.
        assert_eq!(days.working_at(10 * HOUR), HOUR);
        assert_eq!(days.working_at(5 * DAY + 12 * HOUR), 5 * 9 * HOUR);
        assert_eq!(days.clock_at(HOUR), Some(10 * HOUR));
        // The 46th working hour falls on Tuesday 10 Mar (8 Mar is a Sunday, so 9 Mar is off).
        assert_eq!(
            days.clock_at(45 * HOUR + 30 * MINUTE),
            Some(8 * DAY + OPENS + 30 * MINUTE)
        );
        assert_eq!(
            days.nth_business_after(0, 5),
            Some(8),
            "Mon 2 Mar + 5 business days skips the 9 Mar holiday"
        );
    }
}
