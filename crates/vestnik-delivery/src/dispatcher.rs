//! The dispatcher: holds leased tasks in one lane per endpoint, starts attempts round-robin within
//! a global and a per-endpoint concurrency cap and the endpoint's `throttleRate`, records results
//! in batches, and keeps the lease pool topped up from storage.

use crate::handler::{HandedEvent, handler_name};
use crate::operational::OperationalEvents;
use crate::outbound::{AttemptReport, OutboundClient};
use crate::request::attempt_headers;
use crate::{DeliverySettings, Feed, now_ms};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vestnik_core::delivery::next_step;
use vestnik_core::{AttemptId, DeliveryStatus, EndpointId, MessageId, NextStep, OutcomeCode};
use vestnik_signature::Secret;
use vestnik_store::{
    Attempt, AttemptOutcome, Endpoint, EndpointTransition, LeasedTask, Store, TaskNext, UnixMs,
};

/// A delivery task's identity: the message and the endpoint it goes to.
pub type TaskKey = (MessageId, EndpointId);

/// How often lane configurations are reloaded, so edits made elsewhere take effect.
const CONFIG_REFRESH: Duration = Duration::from_secs(5);
/// The longest the lease poller sleeps when nothing is due.
const MAX_POLL_SLEEP: Duration = Duration::from_secs(1);
/// Tasks leased per storage round trip.
const LEASE_BATCH: usize = 2_000;
/// Attempts recorded per storage transaction at most.
const RECORD_BATCH: usize = 2_000;

/// The cheap, cloneable face the API uses to hand over work.
#[derive(Clone)]
pub struct DispatcherHandle {
    commands: mpsc::UnboundedSender<Command>,
    held: Arc<AtomicUsize>,
    wake_poller: Arc<Notify>,
    max_buffered: usize,
    lease: Duration,
}

impl DispatcherHandle {
    /// A handle with no dispatcher behind it (a node that only serves the API): new tasks are
    /// born due and [`Self::wake`] signals [`Self::wake_signal`] (the relay, if one runs).
    pub fn detached() -> Self {
        let (commands, _) = mpsc::unbounded_channel();
        Self {
            commands,
            held: Arc::new(AtomicUsize::new(0)),
            wake_poller: Arc::new(Notify::new()),
            max_buffered: 0,
            lease: Duration::ZERO,
        }
    }

    /// What [`Self::wake`] notifies: the poller, or whatever moves due tasks on (the relay).
    pub fn wake_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.wake_poller)
    }

    /// The lease to give tasks created now if the dispatcher has room for them in memory.
    pub fn lease_for_new_tasks(&self, now: UnixMs) -> Option<UnixMs> {
        (self.held.load(Ordering::Relaxed) < self.max_buffered)
            .then(|| now + duration_ms(self.lease))
    }

    /// Hands over tasks created with [`Self::lease_for_new_tasks`].
    pub fn submit(&self, tasks: Vec<LeasedTask>) {
        if !tasks.is_empty() {
            let _ = self.commands.send(Command::Submit(tasks));
        }
    }

    /// Asks the poller to look for due tasks now (after a resend, a recover, a catch-up).
    pub fn wake(&self) {
        self.wake_poller.notify_one();
    }

    /// An endpoint's settings changed: reload them before its next attempt.
    pub fn endpoint_changed(&self, endpoint: EndpointId) {
        let _ = self.commands.send(Command::Reload(endpoint));
    }

    /// Tasks held in memory (queued or in flight).
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

enum Command {
    Submit(Vec<LeasedTask>),
    Finished(EndpointId),
    Forget(Vec<TaskKey>),
    Loaded(EndpointId, Option<Arc<LaneConfig>>),
    Reload(EndpointId),
}

/// What an attempt needs from its endpoint, parsed once per load.
struct LaneConfig {
    endpoint: Endpoint,
    url: Option<url::Url>,
    secrets: Vec<(Secret, Option<UnixMs>)>,
    headers: Vec<(String, String)>,
}

impl LaneConfig {
    fn new(endpoint: Endpoint) -> Self {
        let url = url::Url::parse(&endpoint.url).ok();
        let mut secrets: Vec<(Secret, Option<UnixMs>)> = Secret::parse(&endpoint.secrets.current)
            .ok()
            .map(|s| (s, None))
            .into_iter()
            .collect();
        for (text, until) in &endpoint.secrets.previous {
            if let Ok(secret) = Secret::parse(text) {
                secrets.push((secret, Some(*until)));
            }
        }
        let headers = serde_json::from_str::<HashMap<String, String>>(&endpoint.headers)
            .map(|map| map.into_iter().collect())
            .unwrap_or_default();
        Self {
            endpoint,
            url,
            secrets,
            headers,
        }
    }

    fn signing_secrets(&self, now: UnixMs) -> Vec<Secret> {
        self.secrets
            .iter()
            .filter(|(_, until)| until.is_none_or(|until| until > now))
            .map(|(secret, _)| secret.clone())
            .collect()
    }
}

struct Lane {
    queue: VecDeque<LeasedTask>,
    in_flight: usize,
    /// `None` until loaded; `Some(None)` when the endpoint no longer exists.
    config: Option<Option<Arc<LaneConfig>>>,
    next_slot: Instant,
    idle_since: Instant,
}

/// A finished attempt on its way to storage, with what events need to know of it.
struct Finished {
    outcome: AttemptOutcome,
    task: LeasedTask,
}

struct Shared {
    store: Arc<dyn Store>,
    client: OutboundClient,
    settings: DeliverySettings,
    ops: OperationalEvents,
    commands: mpsc::UnboundedSender<Command>,
    records: mpsc::UnboundedSender<Finished>,
}

pub struct Dispatcher {
    shared: Arc<Shared>,
    handle: DispatcherHandle,
    commands: mpsc::UnboundedReceiver<Command>,
    records: mpsc::UnboundedReceiver<Finished>,
    settled: Option<mpsc::UnboundedSender<Vec<TaskKey>>>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        settings: DeliverySettings,
        ops: OperationalEvents,
    ) -> Result<Self, reqwest::Error> {
        let client = OutboundClient::new(
            settings.timeout,
            settings.allow_targets.clone(),
            settings.response_body_cap,
            settings.max_in_flight,
        )?;
        let (command_tx, commands) = mpsc::unbounded_channel();
        let (record_tx, records) = mpsc::unbounded_channel();
        let handle = DispatcherHandle {
            commands: command_tx.clone(),
            held: Arc::new(AtomicUsize::new(0)),
            wake_poller: Arc::new(Notify::new()),
            // Fed by a queue, the dispatcher never leases new tasks itself: the relay queues them.
            max_buffered: match settings.feed {
                Feed::Storage => settings.max_buffered,
                Feed::Queue => 0,
            },
            lease: settings.lease,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                client,
                settings,
                ops,
                commands: command_tx,
                records: record_tx,
            }),
            handle,
            commands,
            records,
            settled: None,
        })
    }

    pub fn handle(&self) -> DispatcherHandle {
        self.handle.clone()
    }

    /// Reports the keys of tasks that have left the dispatcher with their outcome stored (an
    /// attempt recorded, or the task failed without one): what a queue consumer acknowledges.
    pub fn settled(&mut self) -> mpsc::UnboundedReceiver<Vec<TaskKey>> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.settled = Some(sender);
        receiver
    }

    /// Runs until `shutdown` fires, then lets attempts in flight finish, hands queued tasks back
    /// to storage and records every result before returning.
    pub async fn run(self, shutdown: CancellationToken) {
        let Self {
            shared,
            handle,
            commands,
            records,
            settled,
        } = self;
        let poller = match shared.settings.feed {
            Feed::Storage => Some(tokio::spawn(poll(
                Arc::clone(&shared),
                handle.clone(),
                shutdown.clone(),
            ))),
            Feed::Queue => None,
        };
        let recorder = tokio::spawn(record(Arc::clone(&shared), records, handle.clone()));
        let lanes = Lanes {
            shared: Arc::clone(&shared),
            handle,
            lanes: HashMap::new(),
            active: VecDeque::new(),
            held: HashSet::new(),
            in_flight: 0,
            settled,
        };
        lanes.run(commands, shutdown).await;
        if let Some(poller) = poller {
            let _ = poller.await;
        }
        // The lanes loop has ended: the last `Finished` was sent, so closing our sender lets the
        // recorder drain and stop.
        drop(shared);
        let _ = recorder.await;
    }
}

struct Lanes {
    shared: Arc<Shared>,
    handle: DispatcherHandle,
    lanes: HashMap<EndpointId, Lane>,
    /// Lanes with queued tasks, in round-robin order.
    active: VecDeque<EndpointId>,
    held: HashSet<TaskKey>,
    in_flight: usize,
    settled: Option<mpsc::UnboundedSender<Vec<TaskKey>>>,
}

impl Lanes {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) {
        let mut refresh = tokio::time::interval(CONFIG_REFRESH);
        let mut draining = false;
        loop {
            let wake_at = self.pump(draining);
            if draining && self.in_flight == 0 {
                break;
            }
            let throttle_wait = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(command) = commands.recv() => self.apply(command),
                () = throttle_wait => {}
                _ = refresh.tick() => self.refresh_configs(),
                () = shutdown.cancelled(), if !draining => {
                    draining = true;
                    self.hand_back_queued().await;
                }
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Submit(tasks) => {
                for task in tasks {
                    let key = (task.msg_id.clone(), task.endpoint_id.clone());
                    if !self.held.insert(key) {
                        continue; // a lease renewed under us; the copy in memory goes on
                    }
                    let endpoint = task.endpoint_id.clone();
                    let lane = self.lane(&endpoint);
                    lane.queue.push_back(task);
                    if lane.queue.len() == 1 {
                        self.active.push_back(endpoint);
                    }
                }
                self.handle.held.store(self.held.len(), Ordering::Relaxed);
            }
            Command::Finished(endpoint) => {
                self.in_flight -= 1;
                if let Some(lane) = self.lanes.get_mut(&endpoint) {
                    lane.in_flight -= 1;
                    if !lane.queue.is_empty() && !self.active.contains(&endpoint) {
                        self.active.push_back(endpoint);
                    }
                }
            }
            Command::Forget(keys) => {
                for key in &keys {
                    self.held.remove(key);
                }
                self.handle.held.store(self.held.len(), Ordering::Relaxed);
                if let Some(settled) = &self.settled {
                    let _ = settled.send(keys);
                }
            }
            Command::Loaded(endpoint, config) => {
                if let Some(lane) = self.lanes.get_mut(&endpoint) {
                    lane.config = Some(config);
                    if !lane.queue.is_empty() && !self.active.contains(&endpoint) {
                        self.active.push_back(endpoint);
                    }
                }
            }
            Command::Reload(endpoint) => {
                if self.lanes.contains_key(&endpoint) {
                    self.load(endpoint);
                }
            }
        }
    }

    fn lane(&mut self, endpoint: &EndpointId) -> &mut Lane {
        if !self.lanes.contains_key(endpoint) {
            self.lanes.insert(
                endpoint.clone(),
                Lane {
                    queue: VecDeque::new(),
                    in_flight: 0,
                    config: None,
                    next_slot: Instant::now(),
                    idle_since: Instant::now(),
                },
            );
            self.load(endpoint.clone());
        }
        self.lanes.get_mut(endpoint).expect("inserted above")
    }

    fn load(&self, endpoint: EndpointId) {
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let config = match shared.store.get_endpoint_by_id(&endpoint).await {
                Ok(found) => found.map(|ep| Arc::new(LaneConfig::new(ep))),
                Err(err) => {
                    tracing::warn!(error = %err, %endpoint, "cannot load endpoint; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let _ = shared.commands.send(Command::Reload(endpoint));
                    return;
                }
            };
            let _ = shared.commands.send(Command::Loaded(endpoint, config));
        });
    }

    fn refresh_configs(&mut self) {
        let now = Instant::now();
        self.lanes.retain(|_, lane| {
            !(lane.queue.is_empty()
                && lane.in_flight == 0
                && now.duration_since(lane.idle_since) > CONFIG_REFRESH * 6)
        });
        let ids: Vec<EndpointId> = self.lanes.keys().cloned().collect();
        for id in ids {
            self.load(id);
        }
    }

    /// Starts every attempt the caps allow, one per lane per round; returns when to look again
    /// for lanes waiting on their throttle.
    fn pump(&mut self, draining: bool) -> Option<Instant> {
        if draining {
            return None;
        }
        let now = Instant::now();
        let mut wake_at: Option<Instant> = None;
        let mut stalled = 0;
        while stalled < self.active.len() && self.in_flight < self.shared.settings.max_in_flight {
            let endpoint = self
                .active
                .pop_front()
                .expect("loop guard keeps it non-empty");
            let cap = self.shared.settings.endpoint_concurrency;
            let lane = self.lanes.get_mut(&endpoint).expect("active lanes exist");
            let Some(config) = lane.config.clone() else {
                // Not loaded yet: `Loaded` puts it back.
                stalled = 0;
                continue;
            };
            let config = match config {
                Some(config) if !config.endpoint.disabled => config,
                _ => {
                    let dropped: Vec<TaskKey> = lane
                        .queue
                        .drain(..)
                        .map(|t| (t.msg_id, t.endpoint_id))
                        .collect();
                    self.settle_without_attempt(dropped);
                    stalled = 0;
                    continue;
                }
            };
            if lane.in_flight >= cap {
                stalled = 0;
                continue; // `Finished` puts it back
            }
            if lane.next_slot > now {
                wake_at = Some(wake_at.map_or(lane.next_slot, |at| at.min(lane.next_slot)));
                self.active.push_back(endpoint);
                stalled += 1;
                continue;
            }
            let task = lane.queue.pop_front().expect("active lanes have tasks");
            if let Some(rate) = config.endpoint.throttle_rate.filter(|rate| *rate > 0) {
                let spacing = Duration::from_secs(1) / rate;
                lane.next_slot = lane.next_slot.max(now - spacing) + spacing;
            }
            lane.in_flight += 1;
            lane.idle_since = now;
            self.in_flight += 1;
            if !lane.queue.is_empty() {
                self.active.push_back(endpoint);
            }
            stalled = 0;
            tokio::spawn(attempt(Arc::clone(&self.shared), task, config));
        }
        wake_at
    }

    fn settle_without_attempt(&mut self, tasks: Vec<TaskKey>) {
        if tasks.is_empty() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            if let Err(err) = shared.store.fail_without_attempt(tasks.clone()).await {
                tracing::error!(error = %err, "cannot settle tasks of a disabled endpoint; their lease will expire");
            }
            let _ = shared.commands.send(Command::Forget(tasks));
        });
    }

    async fn hand_back_queued(&mut self) {
        let queued: Vec<TaskKey> = self
            .lanes
            .values_mut()
            .flat_map(|lane| lane.queue.drain(..))
            .map(|task| (task.msg_id, task.endpoint_id))
            .collect();
        self.active.clear();
        if queued.is_empty() {
            return;
        }
        let count = queued.len();
        match self.shared.store.release(queued, now_ms()).await {
            Ok(()) => tracing::info!(tasks = count, "handed queued tasks back to storage"),
            Err(err) => {
                tracing::error!(error = %err, "cannot hand tasks back; their lease will expire")
            }
        }
    }
}

/// Makes one attempt and reports it; never fails, whatever the endpoint does.
async fn attempt(shared: Arc<Shared>, task: LeasedTask, config: Arc<LaneConfig>) {
    let started_ms = now_ms();
    let handler = config.url.as_ref().and_then(handler_name);
    let report = match (&config.url, handler) {
        (_, Some(name)) => {
            let event = HandedEvent {
                id: task.msg_id.to_string(),
                event_type: task.event_type.clone(),
                event_id: task.event_id.clone(),
                headers: task.headers.clone(),
                body: task.payload.clone(),
                attempt: task.attempts + 1,
            };
            let settings = &shared.settings;
            settings
                .handlers
                .deliver(name, event, settings.timeout)
                .await
        }
        (Some(url), None) => {
            let headers = attempt_headers(
                task.msg_id.as_str(),
                started_ms / 1000,
                &task.payload,
                &config.signing_secrets(started_ms),
                shared.settings.svix_headers,
                &task.headers,
                &config.headers,
            );
            shared
                .client
                .post(url, &headers, task.payload.clone())
                .await
        }
        (None, _) => AttemptReport {
            result: vestnik_core::AttemptResult::failed(OutcomeCode::Connection),
            response: "the endpoint URL cannot be parsed".into(),
            duration: Duration::ZERO,
        },
    };
    let attempts_made = task.attempts + 1;
    let jitter = rand::random_range(-1.0..=1.0);
    let next = match next_step(
        &report.result,
        attempts_made,
        &shared.settings.schedule,
        jitter,
    ) {
        NextStep::Delivered => TaskNext::Delivered,
        NextStep::RetryIn(delay) => TaskNext::RetryAt(started_ms + duration_ms(delay)),
        NextStep::Exhausted => TaskNext::Exhausted,
        NextStep::DisableEndpoint => TaskNext::DisableEndpoint,
    };
    let outcome = report.result.outcome;
    metrics::counter!("vestnik_attempts_total", "outcome" => outcome.as_str()).increment(1);
    if outcome == OutcomeCode::Success {
        let latency = (now_ms() - task.msg_created_at).max(0) as f64 / 1000.0;
        metrics::histogram!("vestnik_delivery_latency_seconds").record(latency);
    } else {
        metrics::counter!("vestnik_endpoint_failures_total", "endpoint_id" => task.endpoint_id.to_string())
            .increment(1);
    }
    tracing::debug!(
        msg_id = %task.msg_id, endpoint_id = %task.endpoint_id, app_id = %task.app_id,
        attempt = attempts_made, outcome = outcome.as_str(), status = ?report.result.status_code,
        "attempt finished"
    );
    let status = if outcome == OutcomeCode::Success {
        DeliveryStatus::Success
    } else {
        DeliveryStatus::Fail
    };
    let record = AttemptOutcome {
        attempt: Attempt {
            id: AttemptId::generate(u64::try_from(started_ms).unwrap_or_default()),
            msg_id: task.msg_id.clone(),
            endpoint_id: task.endpoint_id.clone(),
            app_id: task.app_id.clone(),
            url: config.endpoint.url.clone(),
            status,
            outcome,
            response_status_code: report.result.status_code.map_or(0, i32::from),
            response: report.response,
            response_duration_ms: i64::try_from(report.duration.as_millis()).unwrap_or(i64::MAX),
            manual: task.manual,
            created_at: started_ms,
        },
        next,
        disable_if_failing_since_before: started_ms - duration_ms(shared.settings.disable_after),
    };
    let endpoint = task.endpoint_id.clone();
    let _ = shared.records.send(Finished {
        outcome: record,
        task,
    });
    let _ = shared.commands.send(Command::Finished(endpoint));
}

/// Keeps the in-memory pool topped up with due tasks from storage.
async fn poll(shared: Arc<Shared>, handle: DispatcherHandle, shutdown: CancellationToken) {
    loop {
        let room = shared.settings.max_buffered.saturating_sub(handle.held());
        let mut leased = 0;
        if room > 0 {
            let now = now_ms();
            let limit = room.min(LEASE_BATCH);
            match shared
                .store
                .lease_due(now, now + duration_ms(shared.settings.lease), limit)
                .await
            {
                Ok(tasks) => {
                    leased = tasks.len();
                    handle.submit(tasks);
                    if leased == limit {
                        continue;
                    }
                }
                Err(err) => tracing::error!(error = %err, "cannot lease due tasks"),
            }
        }
        let sleep = if room == 0 {
            MAX_POLL_SLEEP / 10
        } else {
            match shared.store.next_due_at().await {
                Ok(Some(due)) => {
                    let wait = u64::try_from(due - now_ms()).unwrap_or(0);
                    Duration::from_millis(wait.max(5)).min(MAX_POLL_SLEEP)
                }
                _ => MAX_POLL_SLEEP,
            }
        };
        let _ = leased;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = handle.wake_poller.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Writes finished attempts in batches, then raises the events they imply.
async fn record(
    shared: Arc<Shared>,
    mut records: mpsc::UnboundedReceiver<Finished>,
    handle: DispatcherHandle,
) {
    // Our own `shared` holds a sender; drop it so the channel closes when the lanes are done.
    let store = Arc::clone(&shared.store);
    let ops = shared.ops.clone();
    let failing_after = shared.settings.failing_after_attempts;
    drop(shared);
    let mut batch = Vec::new();
    while records.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let outcomes: Vec<AttemptOutcome> = batch.iter().map(|f| f.outcome.clone()).collect();
        let transitions = loop {
            match store.record_attempts(outcomes.clone()).await {
                Ok(transitions) => break transitions,
                Err(err) => {
                    tracing::error!(error = %err, attempts = outcomes.len(), "cannot record attempts; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        let keys = batch
            .iter()
            .map(|f| (f.task.msg_id.clone(), f.task.endpoint_id.clone()))
            .collect();
        let _ = handle.commands.send(Command::Forget(keys));
        for finished in batch.drain(..) {
            attempt_events(&ops, &finished, failing_after).await;
        }
        for transition in transitions {
            endpoint_transition(&*store, &ops, &handle, transition).await;
        }
    }
}

async fn attempt_events(ops: &OperationalEvents, finished: &Finished, failing_after: u32) {
    let task = &finished.task;
    if ops.app() == Some(&task.app_id) {
        return; // the operator's own endpoint failing must not feed on itself
    }
    let attempt = &finished.outcome.attempt;
    let attempts_made = task.attempts + 1;
    let event = match finished.outcome.next {
        TaskNext::Delivered if attempts_made > failing_after => "recovered",
        TaskNext::RetryAt(_) if attempts_made == failing_after => "failing",
        TaskNext::Exhausted | TaskNext::DisableEndpoint => "exhausted",
        _ => return,
    };
    // The hand-on of an inbound request is reported as such, with its source.
    let source = ops.inbound_source(&task.app_id).await;
    let event = match (&source, event) {
        (None, "recovered") => "message.attempt.recovered",
        (None, "failing") => "message.attempt.failing",
        (None, _) => "message.attempt.exhausted",
        (Some(_), "recovered") => "inbound.delivery.recovered",
        (Some(_), "failing") => "inbound.delivery.failing",
        (Some(_), _) => "inbound.delivery.exhausted",
    };
    let mut data = serde_json::json!({
        "appId": task.app_id.as_str(),
        "endpointId": task.endpoint_id.as_str(),
        "msgId": task.msg_id.as_str(),
        "msgEventId": task.event_id,
        "lastAttempt": {
            "id": attempt.id.as_str(),
            "responseStatusCode": attempt.response_status_code,
            "timestamp": crate::operational::rfc3339(attempt.created_at),
        },
    });
    if let Some(source) = source {
        data["sourceId"] = serde_json::Value::String(source);
    }
    ops.emit(event, data, now_ms()).await;
}

async fn endpoint_transition(
    store: &dyn Store,
    ops: &OperationalEvents,
    handle: &DispatcherHandle,
    transition: EndpointTransition,
) {
    match transition {
        EndpointTransition::Recovered { endpoint } => {
            // Recovery catch-up: its waiting retries go now, paced by the lane's caps.
            match store.bring_forward(&endpoint, now_ms()).await {
                Ok(0) => {}
                Ok(moved) => {
                    tracing::info!(%endpoint, retries = moved, "endpoint recovered; retries brought forward");
                    handle.wake();
                }
                Err(err) => {
                    tracing::error!(error = %err, %endpoint, "cannot bring retries forward")
                }
            }
        }
        EndpointTransition::Disabled {
            endpoint,
            failing_since,
        } => {
            tracing::warn!(%endpoint, "endpoint disabled");
            handle.endpoint_changed(endpoint.clone());
            let Ok(Some(ep)) = store.get_endpoint_by_id(&endpoint).await else {
                return;
            };
            if ops.app() == Some(&ep.app_id) {
                return;
            }
            let app_uid = store
                .get_app(ep.app_id.as_str())
                .await
                .ok()
                .flatten()
                .and_then(|a| a.uid);
            let data = serde_json::json!({
                "appId": ep.app_id.as_str(),
                "appUid": app_uid,
                "endpointId": endpoint.as_str(),
                "endpointUid": ep.uid,
                "failSince": crate::operational::rfc3339(failing_since),
            });
            ops.emit("endpoint.disabled", data, now_ms()).await;
        }
    }
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
