//! The retry schedule: how long to wait after each failed attempt, with jitter passed in so the
//! maths stays deterministic, and `Retry-After` honoured within bounds.

use std::time::Duration;

/// Delays before each retry; attempt 1 goes out at once, attempt `n + 1` waits `delays[n - 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    /// Fraction of each delay that jitter may add or remove (0.2 = ±20 %).
    jitter: f64,
    /// The longest `Retry-After` we honour; longer requests are cut to this.
    max_retry_after: Duration,
}

impl Default for RetrySchedule {
    /// Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight attempts in all.
    fn default() -> Self {
        let secs = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600];
        Self {
            delays: secs.into_iter().map(Duration::from_secs).collect(),
            jitter: 0.2,
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>, jitter: f64, max_retry_after: Duration) -> Self {
        Self {
            delays,
            jitter: jitter.clamp(0.0, 1.0),
            max_retry_after,
        }
    }

    /// Parses a comma-separated list such as `5s,5m,30m,2h` (units s, m, h; bare numbers are seconds).
    pub fn parse_delays(text: &str) -> Result<Vec<Duration>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (number, unit) = part
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or((part, "s"), |at| part.split_at(at));
                let value: u64 = number
                    .parse()
                    .map_err(|_| format!("`{part}` is not a delay like 5s, 5m or 2h"))?;
                let factor = match unit {
                    "ms" => return Ok(Duration::from_millis(value)),
                    "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    _ => return Err(format!("`{part}` has an unknown unit (use ms, s, m or h)")),
                };
                Ok(Duration::from_secs(value * factor))
            })
            .collect()
    }

    /// Total attempts, the first included.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX - 1) + 1
    }

    /// The wait after failed attempt number `attempts_made` (1-based), or `None` when exhausted.
    /// `jitter_unit` in [-1, 1] scales the ±jitter band; `retry_after` is the receiver's request.
    pub fn delay_after(
        &self,
        attempts_made: u32,
        jitter_unit: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        let base = *self.delays.get(index)?;
        if let Some(requested) = retry_after {
            return Some(requested.min(self.max_retry_after));
        }
        let factor = 1.0 + self.jitter * jitter_unit.clamp(-1.0, 1.0);
        Some(base.mul_f64(factor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_has_eight_attempts() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.max_attempts(), 8);
        assert_eq!(
            schedule.delay_after(1, 0.0, None),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            schedule.delay_after(2, 0.0, None),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            schedule.delay_after(7, 0.0, None),
            Some(Duration::from_secs(36_000))
        );
        assert_eq!(schedule.delay_after(8, 0.0, None), None);
        assert_eq!(schedule.delay_after(0, 0.0, None), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let schedule = RetrySchedule::default();
        assert_eq!(
            schedule.delay_after(3, 1.0, None),
            Some(Duration::from_secs(2160))
        );
        assert_eq!(
            schedule.delay_after(3, -1.0, None),
            Some(Duration::from_secs(1440))
        );
        // Out-of-range jitter is clamped rather than trusted.
        assert_eq!(
            schedule.delay_after(3, 7.0, None),
            Some(Duration::from_secs(2160))
        );
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_bound() {
        let schedule = RetrySchedule::default();
        assert_eq!(
            schedule.delay_after(1, 0.5, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            schedule.delay_after(1, 0.0, Some(Duration::from_secs(86_400))),
            Some(Duration::from_secs(3600))
        );
        // Retry-After never extends the number of attempts.
        assert_eq!(
            schedule.delay_after(8, 0.0, Some(Duration::from_secs(1))),
            None
        );
    }

    #[test]
    fn delays_parse_from_text() {
        assert_eq!(
            RetrySchedule::parse_delays("5s, 5m,2h,250ms,7").unwrap(),
            vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(7200),
                Duration::from_millis(250),
                Duration::from_secs(7)
            ]
        );
        assert!(RetrySchedule::parse_delays("5d").is_err());
        assert!(RetrySchedule::parse_delays("x").is_err());
    }
}
