//! Alerts an administrator should hear about, raised as operational webhooks (and visible in
//! metrics): a source whose requests keep failing verification, and a delivery backlog that
//! keeps growing. Each fires once per episode, not once per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use vestnik_delivery::OperationalEvents;
use vestnik_store::{QueueDepths, Source, UnixMs};

#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// `source.verification_failing` after this many rejected requests of one source…
    pub verification_failures: u32,
    /// …within this window.
    pub verification_window: Duration,
    /// `queue.backlog` when this many tasks are due and not yet taken; again only after the
    /// backlog has fallen below half of it.
    pub backlog_due: i64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            verification_failures: 10,
            verification_window: Duration::from_secs(300),
            backlog_due: 10_000,
        }
    }
}

/// Rejections of one source in the current window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Window {
    started_at: UnixMs,
    rejected: u32,
    alerted: bool,
}

impl Window {
    /// Counts one rejection at `now`; true when this one crosses the threshold.
    fn record(&mut self, now: UnixMs, length_ms: i64, threshold: u32) -> bool {
        if now - self.started_at >= length_ms {
            *self = Self {
                started_at: now,
                rejected: 0,
                alerted: false,
            };
        }
        self.rejected += 1;
        if self.rejected >= threshold && !self.alerted {
            self.alerted = true;
            return true;
        }
        false
    }
}

pub struct Alerts {
    ops: OperationalEvents,
    settings: AlertSettings,
    windows: Mutex<HashMap<String, Window>>,
    backlog_alerted: AtomicBool,
}

impl Alerts {
    pub fn new(ops: OperationalEvents, settings: AlertSettings) -> Self {
        Self {
            ops,
            settings,
            windows: Mutex::new(HashMap::new()),
            backlog_alerted: AtomicBool::new(false),
        }
    }

    pub async fn rejected(&self, source: &Source, code: &str, now: UnixMs) {
        let length =
            i64::try_from(self.settings.verification_window.as_millis()).unwrap_or(i64::MAX);
        let (fire, rejected) = {
            let mut windows = self.windows.lock().expect("alert windows lock");
            let window = windows.entry(source.id.to_string()).or_default();
            let fire = window.record(now, length, self.settings.verification_failures);
            (fire, window.rejected)
        };
        if !fire {
            return;
        }
        tracing::warn!(source_id = %source.id, rejected, last_code = code, "a source keeps failing verification");
        metrics::counter!("vestnik_alerts_total", "alert" => "source.verification_failing")
            .increment(1);
        let data = serde_json::json!({
            "sourceId": source.id.as_str(),
            "sourceUid": source.uid,
            "rejected": rejected,
            "windowSeconds": self.settings.verification_window.as_secs(),
            "lastCode": code,
        });
        self.ops
            .emit("source.verification_failing", data, now)
            .await;
    }

    pub async fn queue_depths(&self, depths: QueueDepths, now: UnixMs) {
        let threshold = self.settings.backlog_due;
        if depths.due < threshold / 2 {
            self.backlog_alerted.store(false, Ordering::Relaxed);
            return;
        }
        if depths.due < threshold || self.backlog_alerted.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::warn!(due = depths.due, "the delivery backlog is growing");
        metrics::counter!("vestnik_alerts_total", "alert" => "queue.backlog").increment(1);
        let data = serde_json::json!({
            "due": depths.due,
            "leased": depths.leased,
            "waiting": depths.waiting,
            "threshold": threshold,
        });
        self.ops.emit("queue.backlog", data, now).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn a_window_fires_once_at_the_threshold_and_again_in_a_later_window() {
        let mut window = Window::default();
        let fired: Vec<bool> = (0..12)
            .map(|i| window.record(1_000 + i, 60_000, 10))
            .collect();
        assert_eq!(fired.iter().filter(|f| **f).count(), 1);
        assert!(fired[9], "the tenth rejection crosses the threshold");
        assert!(
            !window.record(30_000, 60_000, 10),
            "same window: no second alert"
        );
        let later: Vec<bool> = (0..10)
            .map(|i| window.record(70_000 + i, 60_000, 10))
            .collect();
        assert_eq!(later.iter().filter(|f| **f).count(), 1);
    }
}
