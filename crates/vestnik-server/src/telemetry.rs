//! Prometheus metrics: one process-wide recorder, rendered at `/metrics`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use vestnik_store::QueueDepths;

#[derive(Clone)]
pub struct Metrics(PrometheusHandle);

impl Metrics {
    pub fn render(&self) -> String {
        self.0.render()
    }
}

/// Installs the recorder once per process (tests start many servers) and returns its handle.
pub fn install() -> Metrics {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    let handle = HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("vestnik_delivery_latency_seconds".into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    60.0, 600.0, 3600.0,
                ],
            )
            .expect("static bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        describe();
        handle
    });
    Metrics(handle.clone())
}

fn describe() {
    metrics::describe_counter!(
        "vestnik_messages_accepted_total",
        "Messages accepted by the API."
    );
    metrics::describe_counter!(
        "vestnik_attempts_total",
        "Delivery attempts by outcome code."
    );
    metrics::describe_counter!(
        "vestnik_endpoint_failures_total",
        "Failed attempts per endpoint."
    );
    metrics::describe_histogram!(
        "vestnik_delivery_latency_seconds",
        "Time from a message's creation to its successful delivery."
    );
    metrics::describe_counter!(
        "vestnik_inbound_requests_total",
        "Requests received at /in/{source}, by source and result (accepted, duplicate, rejected)."
    );
    metrics::describe_counter!(
        "vestnik_alerts_total",
        "Alerts raised (source.verification_failing, queue.backlog)."
    );
    metrics::describe_gauge!(
        "vestnik_tasks",
        "Delivery tasks by state: due, leased, waiting (retry later), held in memory."
    );
    metrics::describe_gauge!(
        "vestnik_broker_connected",
        "1 while this node's relay or consumer is connected to RabbitMQ, else 0."
    );
    metrics::describe_gauge!(
        "vestnik_broker_queue_ready",
        "Messages ready on the dispatch queue, as the relay last saw it."
    );
    metrics::describe_counter!(
        "vestnik_relay_published_total",
        "Tasks the relay published to the dispatch queue (confirmed by the broker)."
    );
    metrics::describe_counter!(
        "vestnik_queue_stale_messages_total",
        "Queue messages dropped because their task was claimed, finished or re-queued since."
    );
}

pub fn record_depths(depths: QueueDepths, held: usize) {
    metrics::gauge!("vestnik_tasks", "state" => "due").set(depths.due as f64);
    metrics::gauge!("vestnik_tasks", "state" => "leased").set(depths.leased as f64);
    metrics::gauge!("vestnik_tasks", "state" => "waiting").set(depths.waiting as f64);
    metrics::gauge!("vestnik_tasks", "state" => "held").set(held as f64);
}
