//! A clock that runs faster than real time, so that a demo shows a 20-business-day review
//! finish in seconds (`--time-scale 86400` = one simulated day per real second). Pure: real time
//! is passed in as unix milliseconds.

use jiff::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaledClock {
    simulated_start: Timestamp,
    real_start_ms: i64,
    scale: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the time scale must be between 1 and 10,000,000, not {0}")]
pub struct ScaleError(pub f64);

impl ScaledClock {
    /// Simulated time equals `simulated_start` at real time `real_start_ms` and runs `scale`
    /// times faster from there.
    pub fn new(
        simulated_start: Timestamp,
        real_start_ms: i64,
        scale: f64,
    ) -> Result<Self, ScaleError> {
        if !(1.0..=10_000_000.0).contains(&scale) {
            return Err(ScaleError(scale));
        }
        Ok(Self {
            simulated_start,
            real_start_ms,
            scale,
        })
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The simulated instant at real time `real_ms`.
    pub fn simulated(&self, real_ms: i64) -> Timestamp {
        let elapsed = (real_ms - self.real_start_ms) as f64 * self.scale;
        let millis = self
            .simulated_start
            .as_millisecond()
            .saturating_add(elapsed as i64);
        Timestamp::from_millisecond(millis).unwrap_or(Timestamp::MAX)
    }

    /// The real time (unix ms) at which the simulated clock shows `at`.
    pub fn real_ms_at(&self, at: Timestamp) -> i64 {
        let simulated = (at.as_millisecond() - self.simulated_start.as_millisecond()) as f64;
        self.real_start_ms + (simulated / self.scale).ceil() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_per_second_and_back() {
        let start: Timestamp = "2026-12-01T06:00:00Z".parse().unwrap();
        let clock = ScaledClock::new(start, 1_000, 86_400.0).unwrap();
        assert_eq!(clock.simulated(1_000), start);
        assert_eq!(clock.simulated(2_000).to_string(), "2026-12-02T06:00:00Z");
        let in_twenty_days: Timestamp = "2026-12-21T06:00:00Z".parse().unwrap();
        assert_eq!(clock.real_ms_at(in_twenty_days), 21_000);
        let real_time = ScaledClock::new(start, 0, 1.0).unwrap();
        assert_eq!(
            real_time.simulated(1_500).as_millisecond(),
            start.as_millisecond() + 1_500
        );
        assert!(ScaledClock::new(start, 0, 0.5).is_err());
    }
}
