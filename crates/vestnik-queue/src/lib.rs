//! Dispatch through RabbitMQ, for several nodes sharing one database: the [`relay`] moves due
//! tasks from the database to a durable queue (persistent messages, publisher confirms), and
//! the [`consumer`] takes them off it into a node's dispatcher, acknowledging each message only
//! once the attempt is recorded. The database stays the source of truth: a message names a task
//! and the relay lease it was queued under, so a lost, late or duplicated message can delay a
//! delivery but never lose or double-start one.

pub mod consumer;
pub mod message;
pub mod relay;

use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a node talks to the broker; built by the binary from its flags.
#[derive(Clone)]
pub struct QueueSettings {
    /// `amqp://user:password@host:port/vhost`.
    pub url: String,
    /// The durable queue all nodes share.
    pub queue: String,
    /// The queue's kind when Vestnik declares it (a queue that exists is used as it is).
    pub kind: QueueKind,
    /// Unacknowledged messages a consumer holds at most (RabbitMQ's prefetch).
    pub prefetch: u16,
    /// Ready messages the relay lets the queue hold; beyond, due tasks wait in the database.
    pub max_queued: u32,
    /// Tasks leased and published per relay round.
    pub relay_batch: usize,
    /// How long a relay's lease (and a worker's claim) lasts before the task is due again.
    pub lease: Duration,
    /// How long the relay waits for the broker to confirm a batch.
    pub confirm_timeout: Duration,
}

impl std::fmt::Debug for QueueSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueSettings")
            .field("url", &redacted_url(&self.url))
            .field("queue", &self.queue)
            .field("kind", &self.kind)
            .field("prefetch", &self.prefetch)
            .field("max_queued", &self.max_queued)
            .field("relay_batch", &self.relay_batch)
            .field("lease", &self.lease)
            .finish()
    }
}

impl QueueSettings {
    /// Settings for `url` with the defaults `vestnik serve` uses.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            queue: "vestnik.deliveries".into(),
            kind: QueueKind::Classic,
            prefetch: 1_000,
            max_queued: 20_000,
            relay_batch: 1_000,
            lease: Duration::from_secs(300),
            confirm_timeout: Duration::from_secs(30),
        }
    }
}

/// RabbitMQ's queue types Vestnik can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// A durable classic queue: enough for one broker.
    Classic,
    /// A replicated quorum queue, for a RabbitMQ cluster.
    Quorum,
}

/// `url` with its password replaced, for logs.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable URL>".into(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("RabbitMQ: {0}")]
    Broker(#[from] lapin::Error),
    #[error("RabbitMQ refused to take a message (negative confirm)")]
    Refused,
    #[error("RabbitMQ did not confirm the published messages within {0:?}")]
    ConfirmTimeout(Duration),
    #[error("the consumer was cancelled by the broker")]
    Cancelled,
}

/// Whether this node's link to the broker works, for readiness checks and metrics.
#[derive(Debug, Clone, Default)]
pub struct BrokerStatus {
    inner: Arc<Mutex<BrokerState>>,
}

#[derive(Debug, Default)]
struct BrokerState {
    relay: Link,
    consumer: Link,
}

#[derive(Debug, Clone, Default)]
enum Link {
    /// This node does not run this part.
    #[default]
    Unused,
    Connecting,
    Up,
    Down(String),
}

/// One part's state as readiness reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkReport {
    pub part: &'static str,
    pub up: bool,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Part {
    Relay,
    Consumer,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Relay => "relay",
            Part::Consumer => "consumer",
        }
    }
}

impl BrokerStatus {
    /// A part has (re)connected: says so after an outage, and marks it up.
    fn connected(&self, part: Part, failures: &mut u32) {
        if *failures > 0 {
            tracing::info!(part = part.name(), "reconnected to the broker");
        }
        *failures = 0;
        self.set(part, Link::Up);
    }

    /// A part's session with the broker has ended: `true` if for good (shutdown). Otherwise it
    /// is marked down with the cause, which is logged once per outage as what it `means`.
    fn ended(
        &self,
        part: Part,
        outcome: Result<(), QueueError>,
        failures: &mut u32,
        means: &str,
    ) -> bool {
        let Err(err) = outcome else { return true };
        if *failures == 0 {
            tracing::warn!(part = part.name(), error = %err, "lost the broker; {means}");
        }
        self.set(part, Link::Down(err.to_string()));
        *failures += 1;
        false
    }

    fn set(&self, part: Part, link: Link) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let up = matches!(link, Link::Up);
        match part {
            Part::Relay => state.relay = link,
            Part::Consumer => state.consumer = link,
        }
        metrics::gauge!("vestnik_broker_connected", "part" => part.name()).set(if up {
            1.0
        } else {
            0.0
        });
    }

    /// The parts this node runs and whether each is connected.
    pub fn report(&self) -> Vec<LinkReport> {
        let state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        [("relay", &state.relay), ("consumer", &state.consumer)]
            .into_iter()
            .filter_map(|(part, link)| match link {
                Link::Unused => None,
                Link::Connecting => Some(LinkReport {
                    part,
                    up: false,
                    detail: Some("connecting".into()),
                }),
                Link::Up => Some(LinkReport {
                    part,
                    up: true,
                    detail: None,
                }),
                Link::Down(why) => Some(LinkReport {
                    part,
                    up: false,
                    detail: Some(why.clone()),
                }),
            })
            .collect()
    }
}

/// Opens a connection and a channel on which the shared queue exists.
async fn open(settings: &QueueSettings, role: &str) -> Result<(Connection, Channel), QueueError> {
    let name = format!("vestnik {role} pid {}", std::process::id());
    let connection = Connection::connect(
        &settings.url,
        ConnectionProperties::default().with_connection_name(name.into()),
    )
    .await?;
    let channel = connection.create_channel().await?;
    let mut arguments = FieldTable::default();
    if settings.kind == QueueKind::Quorum {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    let declared = channel
        .queue_declare(
            settings.queue.as_str().into(),
            QueueDeclareOptions::durable(),
            arguments,
        )
        .await;
    if let Err(err) = declared {
        // The operator declared it with other arguments (a quorum queue, a dead-letter
        // exchange): use it as it is. The failed declare closed the channel; open another.
        tracing::debug!(error = %err, "the queue exists with other arguments");
        let channel = connection.create_channel().await?;
        channel
            .queue_declare(
                settings.queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        return Ok((connection, channel));
    }
    Ok((connection, channel))
}

/// Opens a channel in confirm mode (the relay's).
async fn open_confirming(settings: &QueueSettings) -> Result<(Connection, Channel), QueueError> {
    let (connection, channel) = open(settings, "relay").await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok((connection, channel))
}

/// Deletes the queue and the messages in it (benchmarks and tests clean up with it).
pub async fn delete_queue(settings: &QueueSettings) -> Result<(), QueueError> {
    let connection = Connection::connect(&settings.url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_delete(
            settings.queue.as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await?;
    let _ = connection.close(200, "bye".into()).await;
    Ok(())
}

/// The wait before reconnecting after `failures` failed attempts in a row.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(250 * 2u64.pow(failures.min(5))).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        let shown = redacted_url("amqp://vestnik:s3cret@rabbit:5672/%2f");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("vestnik:****@rabbit"), "{shown}");
        let debug = format!("{:?}", QueueSettings::new("amqp://u:s3cret@h/"));
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn reconnecting_backs_off_to_five_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(9), Duration::from_secs(5));
    }
}
