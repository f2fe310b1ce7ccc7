//! The consumer: takes queued tasks off the shared queue (manual acknowledgements, bounded
//! prefetch), claims them in the database, hands the claimed ones to this node's dispatcher,
//! and acknowledges each message once its attempt is recorded. A message whose lease is gone
//! (a duplicate, or a task finished or re-queued since) is acknowledged and dropped.

use crate::{BrokerStatus, Link, Part, QueueError, QueueSettings, backoff, message, open};
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Acker, Channel, Consumer};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vestnik_delivery::{DispatcherHandle, TaskKey, now_ms};
use vestnik_store::Store;

/// Deliveries claimed in one database round trip at most.
const CLAIM_BATCH: usize = 500;
/// How long the consumer waits before handing messages back when the database fails.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Runs until `shutdown`, reconnecting whenever the link breaks. `settled` is the dispatcher's
/// report of tasks whose outcome is stored ([`vestnik_delivery::Dispatcher::settled`]).
pub async fn run(
    store: Arc<dyn Store>,
    settings: QueueSettings,
    dispatcher: DispatcherHandle,
    mut settled: mpsc::UnboundedReceiver<Vec<TaskKey>>,
    status: BrokerStatus,
    shutdown: CancellationToken,
) {
    let mut failures = 0;
    status.set(Part::Consumer, Link::Connecting);
    loop {
        let outcome = match subscribe(&settings).await {
            Ok((connection, channel, consumer)) => {
                status.connected(Part::Consumer, &mut failures);
                let mut session = Session {
                    store: &*store,
                    settings: &settings,
                    dispatcher: &dispatcher,
                    unacked: HashMap::new(),
                };
                let outcome = session
                    .consume(&channel, consumer, &mut settled, &shutdown)
                    .await;
                let _ = connection.close(200, "bye".into()).await;
                outcome
            }
            Err(err) => Err(err),
        };
        let means = "tasks in flight finish, unacknowledged messages return to the queue";
        if status.ended(Part::Consumer, outcome, &mut failures, means) {
            return;
        }
        // While away, settled reports name messages of a closed channel: nothing to acknowledge.
        let wait = tokio::time::sleep(backoff(failures));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = &mut wait => break,
                Some(_) = settled.recv() => {}
            }
        }
    }
}

async fn subscribe(
    settings: &QueueSettings,
) -> Result<(lapin::Connection, Channel, Consumer), QueueError> {
    let (connection, channel) = open(settings, "worker").await?;
    channel
        .basic_qos(settings.prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            settings.queue.as_str().into(),
            format!("vestnik-{}", std::process::id()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((connection, channel, consumer))
}

/// Acknowledges messages together: their frames go out in one write instead of one each.
async fn ack_all(ackers: impl IntoIterator<Item = Acker>) -> Result<(), QueueError> {
    let acks: Vec<Acker> = ackers.into_iter().collect();
    for acked in futures_util::future::join_all(
        acks.iter()
            .map(|acker| acker.ack(BasicAckOptions::default())),
    )
    .await
    {
        acked?;
    }
    Ok(())
}

/// One connection's worth of consuming.
struct Session<'a> {
    store: &'a dyn Store,
    settings: &'a QueueSettings,
    dispatcher: &'a DispatcherHandle,
    /// Messages of tasks handed to the dispatcher, acknowledged when the task settles.
    unacked: HashMap<TaskKey, Vec<Acker>>,
}

impl Session<'_> {
    async fn consume(
        &mut self,
        channel: &Channel,
        mut consumer: Consumer,
        settled: &mut mpsc::UnboundedReceiver<Vec<TaskKey>>,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        loop {
            tokio::select! {
                biased;
                Some(keys) = settled.recv() => self.acknowledge(keys).await?,
                () = shutdown.cancelled() => return self.drain(channel, consumer.tag(), settled).await,
                delivery = consumer.next() => {
                    let first = match delivery {
                        Some(delivery) => delivery?,
                        None => return Err(QueueError::Cancelled),
                    };
                    let mut batch = vec![first];
                    while batch.len() < CLAIM_BATCH {
                        match consumer.next().now_or_never() {
                            Some(Some(delivery)) => batch.push(delivery?),
                            Some(None) => return Err(QueueError::Cancelled),
                            None => break,
                        }
                    }
                    self.take(batch, shutdown).await?;
                }
            }
        }
    }

    /// Claims a batch of deliveries and hands what is ours to the dispatcher.
    async fn take(
        &mut self,
        batch: Vec<Delivery>,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        let mut tasks = Vec::with_capacity(batch.len());
        let mut ackers: HashMap<TaskKey, Vec<Acker>> = HashMap::new();
        for delivery in batch {
            match message::decode(&delivery.data) {
                Ok(task) => {
                    ackers
                        .entry((task.msg_id.clone(), task.endpoint_id.clone()))
                        .or_default()
                        .push(delivery.acker.clone());
                    tasks.push(task);
                }
                Err(why) => {
                    tracing::warn!(%why, "dropping a message that names no task");
                    delivery.acker.ack(BasicAckOptions::default()).await?;
                }
            }
        }
        let lease_ms = i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX);
        let claimed = loop {
            match self.store.claim(tasks.clone(), now_ms() + lease_ms).await {
                Ok(claimed) => break claimed,
                Err(err) => {
                    // Holding the messages keeps them from other workers that could not claim
                    // them either; retry until the database answers.
                    tracing::error!(error = %err, "cannot claim queued tasks; retrying");
                    tokio::select! {
                        // Unclaimed messages go back to the queue when the channel closes.
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(STORE_RETRY) => {}
                    }
                }
            }
        };
        for task in &claimed {
            let key = (task.msg_id.clone(), task.endpoint_id.clone());
            if let Some(mut copies) = ackers.remove(&key) {
                self.unacked.entry(key).or_default().append(&mut copies);
            }
        }
        // Every message left names a lease that is gone: the task is someone else's or done.
        let stale: usize = ackers.values().map(Vec::len).sum();
        if stale > 0 {
            metrics::counter!("vestnik_queue_stale_messages_total").increment(stale as u64);
        }
        self.dispatcher.submit(claimed);
        ack_all(ackers.into_values().flatten()).await
    }

    async fn acknowledge(&mut self, keys: Vec<TaskKey>) -> Result<(), QueueError> {
        let settled: Vec<Acker> = keys
            .iter()
            .filter_map(|key| self.unacked.remove(key))
            .flatten()
            .collect();
        ack_all(settled).await
    }

    /// Stops taking messages, then acknowledges what settles until the dispatcher has stopped;
    /// messages never acknowledged return to the queue when the channel closes.
    async fn drain(
        &mut self,
        channel: &Channel,
        tag: lapin::types::ShortString,
        settled: &mut mpsc::UnboundedReceiver<Vec<TaskKey>>,
    ) -> Result<(), QueueError> {
        let _ = channel
            .basic_cancel(tag, BasicCancelOptions::default())
            .await;
        let deadline = tokio::time::Instant::now() + self.settings.confirm_timeout;
        while !self.unacked.is_empty() {
            match tokio::time::timeout_at(deadline, settled.recv()).await {
                Ok(Some(keys)) => self.acknowledge(keys).await?,
                _ => break,
            }
        }
        Ok(())
    }
}
