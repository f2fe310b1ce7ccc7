//! The relay: leases due tasks in the database and publishes them to the shared queue, waiting
//! for the broker's confirms. Unconfirmed tasks are handed back to the database at once, so a
//! broker outage only delays delivery; the queue is kept short (retry timing and order live in
//! the database, never in a delay queue).

use crate::{
    BrokerStatus, Link, Part, QueueError, QueueSettings, backoff, message, open_confirming,
};
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use vestnik_delivery::now_ms;
use vestnik_store::{QueuedTask, Store};

/// The longest the relay sleeps when nothing is due (a wake-up comes sooner for new messages).
const MAX_IDLE: Duration = Duration::from_secs(1);
/// How often a full queue is looked at again.
const FULL_QUEUE_WAIT: Duration = Duration::from_millis(50);
/// After a short batch, how long the relay lets due tasks gather before the next: fewer, fuller
/// database and broker round trips for a few milliseconds of latency.
const GATHER: Duration = Duration::from_millis(5);
/// AMQP's "persistent" delivery mode: the broker writes the message to disk before confirming.
const PERSISTENT: u8 = 2;

/// Runs until `shutdown`, reconnecting to the broker whenever the link breaks. `wake` is
/// notified when new tasks are due (the API's dispatcher handle signals it).
pub async fn run(
    store: Arc<dyn Store>,
    settings: QueueSettings,
    wake: Arc<Notify>,
    status: BrokerStatus,
    shutdown: CancellationToken,
) {
    let mut failures = 0;
    status.set(Part::Relay, Link::Connecting);
    loop {
        let outcome = match open_confirming(&settings).await {
            Ok((connection, channel)) => {
                status.connected(Part::Relay, &mut failures);
                let outcome = relay(&*store, &settings, &channel, &wake, &shutdown).await;
                let _ = connection.close(200, "bye".into()).await;
                outcome
            }
            Err(err) => Err(err),
        };
        let means = "due tasks wait in the database";
        if status.ended(Part::Relay, outcome, &mut failures, means) {
            return;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff(failures)) => {}
        }
    }
}

/// Moves due tasks to the queue until `shutdown` (`Ok`) or the broker fails (`Err`).
async fn relay(
    store: &dyn Store,
    settings: &QueueSettings,
    channel: &Channel,
    wake: &Notify,
    shutdown: &CancellationToken,
) -> Result<(), QueueError> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let lease_ms = i64::try_from(settings.lease.as_millis()).unwrap_or(i64::MAX);
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let queued = channel
            .queue_declare(
                settings.queue.as_str().into(),
                passive,
                FieldTable::default(),
            )
            .await?
            .message_count();
        metrics::gauge!("vestnik_broker_queue_ready").set(f64::from(queued));
        let room = settings.max_queued.saturating_sub(queued) as usize;
        if room == 0 {
            pause(FULL_QUEUE_WAIT, wake, shutdown).await;
            continue;
        }
        let now = now_ms();
        let lease_until = now + lease_ms;
        let keys = match store
            .lease_due_keys(now, lease_until, room.min(settings.relay_batch))
            .await
        {
            Ok(keys) => keys,
            Err(err) => {
                tracing::error!(error = %err, "relay cannot lease due tasks");
                pause(MAX_IDLE, wake, shutdown).await;
                continue;
            }
        };
        if keys.is_empty() {
            let idle = match store.next_due_at().await {
                Ok(Some(due)) => Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0))
                    .clamp(Duration::from_millis(5), MAX_IDLE),
                _ => MAX_IDLE,
            };
            pause(idle, wake, shutdown).await;
            continue;
        }
        let tasks: Vec<QueuedTask> = keys
            .into_iter()
            .map(|(msg_id, endpoint_id)| QueuedTask {
                msg_id,
                endpoint_id,
                lease_until,
            })
            .collect();
        if let Err(err) = publish(channel, settings, &tasks).await {
            // Whatever the broker did not confirm goes back to the database, due now; a copy it
            // did keep names a lease that no longer exists, so it is dropped when consumed.
            if let Err(store_err) = store.release_queued(tasks, now_ms()).await {
                tracing::error!(error = %store_err, "cannot hand unconfirmed tasks back; they are due again when their lease ends");
            }
            return Err(err);
        }
        metrics::counter!("vestnik_relay_published_total").increment(tasks.len() as u64);
        if tasks.len() < settings.relay_batch / 4 {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(GATHER) => {}
            }
        }
    }
}

/// Publishes every task persistently and waits until the broker has confirmed them all.
async fn publish(
    channel: &Channel,
    settings: &QueueSettings,
    tasks: &[QueuedTask],
) -> Result<(), QueueError> {
    // All frames are handed to the connection at once (one by one, each publish would wait for
    // its own write), then all confirms are awaited.
    let bodies: Vec<Vec<u8>> = tasks.iter().map(message::encode).collect();
    let published = futures_util::future::join_all(bodies.iter().map(|body| {
        channel.basic_publish(
            "".into(),
            settings.queue.as_str().into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default()
                .with_delivery_mode(PERSISTENT)
                .with_content_type("application/json".into()),
        )
    }))
    .await;
    let confirms = published.into_iter().collect::<Result<Vec<_>, _>>()?;
    let confirmed = async {
        for confirmation in futures_util::future::join_all(confirms).await {
            if !confirmation?.is_ack() {
                return Err(QueueError::Refused);
            }
        }
        Ok(())
    };
    tokio::time::timeout(settings.confirm_timeout, confirmed)
        .await
        .map_err(|_| QueueError::ConfirmTimeout(settings.confirm_timeout))?
}

async fn pause(wait: Duration, wake: &Notify, shutdown: &CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = wake.notified() => {}
        () = tokio::time::sleep(wait) => {}
    }
}
