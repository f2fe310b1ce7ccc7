//! The reference integration's clinic MIS: patients and claims in its own SQLite database,
//! claims submitted to the insurer, and decisions learned by the chosen strategy — the
//! insurer's webhooks (received through Vestnik's inbound gateway and applied by the in-process
//! handler [`ClinicHandler`]), polling, long-polling or checking on view, with the brief's
//! nightly sweep and 28/40-day timer. Every request to the insurer is counted.

pub mod client;
pub mod db;
pub mod event;
mod pages;
pub mod strategy;

use client::{ClientError, InsurerClient, Reason};
use db::{ClinicClaim, Db, StatusUpdate};
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use strategy::Strategy;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use vestnik_claims::clock::ScaledClock;
use vestnik_claims::model::{ClaimSubmission, ServiceLine};
use vestnik_claims::money::Money;

#[derive(Debug, Clone)]
pub struct ClinicSettings {
    /// The clinic's id at the insurer (and its application uid in Vestnik).
    pub clinic_id: String,
    pub strategy: Strategy,
    pub insurer_url: String,
    pub clock: ScaledClock,
    pub database: std::path::PathBuf,
    /// Seeds the generated patients and claims.
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ClinicError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Insurer(#[from] ClientError),
    #[error("the insurer's answer could not be read")]
    BadAnswer,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The services the demo's claims are made of: code, description, price in roubles.
const SERVICES: [(&str, &str, i64); 8] = [
    ("consult-therapist", "Therapist consultation", 2_500),
    ("consult-cardiologist", "Cardiologist consultation", 3_800),
    ("xray-chest", "Chest X-ray", 3_000),
    ("blood-panel", "Blood panel", 1_900),
    ("ecg", "Electrocardiogram", 1_500),
    ("mri-knee", "Knee MRI", 9_500),
    ("ultrasound-abdomen", "Abdominal ultrasound", 4_200),
    ("physio-session", "Physiotherapy session", 2_200),
];
const PATIENTS: usize = 24;

pub struct Clinic {
    pub id: String,
    pub strategy: Strategy,
    pub db: Db,
    pub insurer: InsurerClient,
    clock: ScaledClock,
    changes: watch::Sender<u64>,
    receiver_up: AtomicBool,
    rng: Mutex<StdRng>,
    issued: AtomicU64,
    shutdown: CancellationToken,
    me: Weak<Clinic>,
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

impl Clinic {
    pub fn simulated_now(&self) -> Timestamp {
        self.clock.simulated(now_ms())
    }

    pub fn clock(&self) -> &ScaledClock {
        &self.clock
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Whether webhooks are being accepted (the demo and tests switch the receiver off to show
    /// that retries and the timer lose nothing).
    pub fn receiver_up(&self) -> bool {
        self.receiver_up.load(Ordering::Relaxed)
    }

    pub fn set_receiver_up(&self, up: bool) {
        self.receiver_up.store(up, Ordering::Relaxed);
        self.changed();
    }

    /// Applies what the clinic heard; stale and duplicate updates change nothing.
    pub fn apply(&self, update: &StatusUpdate, via: &str) -> Result<bool, ClinicError> {
        let applied = self.db.apply(update, via, self.simulated_now())?;
        if applied {
            self.changed();
        }
        Ok(applied)
    }

    /// A claim for a random patient with one to four services.
    pub fn random_claim(&self) -> (String, String, Vec<ServiceLine>) {
        let mut rng = self.rng.lock().expect("rng lock");
        let patient = rng.random_range(0..PATIENTS);
        let lines = (0..rng.random_range(1..=4))
            .map(|_| {
                let (code, description, price) = SERVICES[rng.random_range(0..SERVICES.len())];
                ServiceLine {
                    code: code.into(),
                    description: description.into(),
                    quantity: rng.random_range(1..=2),
                    unit_price: Money::from_kopecks(price * 100),
                }
            })
            .collect();
        (
            format!("pat-{patient:02}"),
            format!("DMS-{:05}", 10_000 + patient * 37),
            lines,
        )
    }

    /// Records a claim, sends it to the insurer and starts learning its outcome by the strategy.
    pub async fn submit(
        &self,
        patient_ref: &str,
        policy_number: &str,
        lines: Vec<ServiceLine>,
    ) -> Result<ClinicClaim, ClinicError> {
        let n = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        let clinic_claim_id = format!("CL-{n:06}");
        let total: Money = lines.iter().map(|l| l.net().unwrap_or_default()).sum();
        let now = self.simulated_now();
        self.db.add_patient(
            patient_ref,
            &format!("Patient {patient_ref}"),
            policy_number,
        )?;
        self.db
            .add_claim(&clinic_claim_id, patient_ref, total, now)?;
        let submission = ClaimSubmission {
            clinic_id: self.id.clone(),
            clinic_claim_id: clinic_claim_id.clone(),
            patient_ref: patient_ref.into(),
            policy_number: policy_number.into(),
            lines,
            total,
        };
        let answer = self.insurer.submit(&submission).await?;
        let update = event::from_claim_json(&answer).ok_or(ClinicError::BadAnswer)?;
        self.apply(&update, Reason::Submit.as_str())?;
        // Polls count from when the insurer received the claim, as the brief's "2 s after
        // submission" means.
        let received = answer["submitted_at"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(now);
        self.follow(clinic_claim_id.clone(), received);
        self.db.get(&clinic_claim_id)?.ok_or(ClinicError::BadAnswer)
    }

    /// Asks the insurer about one claim and applies the answer.
    pub async fn check(&self, claim: &ClinicClaim, reason: Reason) -> Result<(), ClinicError> {
        let Some(insurer_id) = &claim.insurer_claim_id else {
            return Ok(());
        };
        let wait = (reason == Reason::LongPoll).then_some(strategy::LONG_POLL_SECONDS);
        let answer = self.insurer.status(insurer_id, reason, wait).await?;
        self.db.checked(
            &claim.clinic_claim_id,
            self.simulated_now(),
            reason == Reason::Timer,
        )?;
        let update = event::from_claim_json(&answer).ok_or(ClinicError::BadAnswer)?;
        self.apply(&update, reason.as_str())?;
        Ok(())
    }

    /// Someone opened the claim: counted, and under `on-view` a pending one is checked.
    pub async fn view(&self, clinic_claim_id: &str) -> Result<Option<ClinicClaim>, ClinicError> {
        self.db.viewed(clinic_claim_id)?;
        let Some(claim) = self.db.get(clinic_claim_id)? else {
            return Ok(None);
        };
        if self.strategy.checks_on_view() && !is_final(&claim.status) {
            self.check(&claim, Reason::View).await?;
        }
        Ok(self.db.get(clinic_claim_id)?)
    }

    /// The strategy's requests right after submission: 16 polls over 30 s, or one long-poll.
    fn follow(&self, clinic_claim_id: String, submitted: Timestamp) {
        let Some(me) = self.me.upgrade() else { return };
        match self.strategy {
            Strategy::Poll => {
                tokio::spawn(async move {
                    for offset in strategy::poll_offsets() {
                        if !me.sleep_until(submitted + offset).await {
                            return;
                        }
                        let Ok(Some(claim)) = me.db.get(&clinic_claim_id) else {
                            return;
                        };
                        if is_final(&claim.status) {
                            return;
                        }
                        if let Err(err) = me.check(&claim, Reason::Poll).await {
                            tracing::warn!(claim = %clinic_claim_id, error = %err, "poll failed");
                        }
                    }
                });
            }
            Strategy::LongPoll => {
                tokio::spawn(async move {
                    let Ok(Some(claim)) = me.db.get(&clinic_claim_id) else {
                        return;
                    };
                    if !is_final(&claim.status)
                        && let Err(err) = me.check(&claim, Reason::LongPoll).await
                    {
                        tracing::warn!(claim = %clinic_claim_id, error = %err, "long-poll failed");
                    }
                });
            }
            Strategy::Webhook | Strategy::OnView => {}
        }
    }

    /// Sleeps until the simulated clock shows `at`; false if the clinic is stopping.
    async fn sleep_until(&self, at: Timestamp) -> bool {
        let wait = u64::try_from(self.clock.real_ms_at(at) - now_ms()).unwrap_or(0);
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            () = tokio::time::sleep(std::time::Duration::from_millis(wait)) => true,
        }
    }

    /// A daily job at `hour`:00 Moscow time, until shutdown.
    async fn daily(self: Arc<Self>, hour: i8, job: fn(Arc<Clinic>) -> tokio::task::JoinHandle<()>) {
        let mut after = self.simulated_now();
        loop {
            let at = strategy::next_daily(after, hour);
            if !self.sleep_until(at).await {
                return;
            }
            let _ = job(Arc::clone(&self)).await;
            after = at;
        }
    }
}

pub fn is_final(status: &str) -> bool {
    matches!(status, "approved" | "partial" | "denied")
}

/// The nightly sweep: one status request per pending claim.
fn sweep(clinic: Arc<Clinic>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for claim in clinic.db.pending().unwrap_or_default() {
            if let Err(err) = clinic.check(&claim, Reason::Sweep).await {
                tracing::warn!(claim = %claim.clinic_claim_id, error = %err, "sweep check failed");
            }
        }
    })
}

/// The daily timer: pending claims unchecked for 28 days, and again at 40 days.
fn timer(clinic: Arc<Clinic>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let now = clinic.simulated_now();
        for claim in clinic.db.pending().unwrap_or_default() {
            if strategy::timer_due(
                now,
                claim.submitted_at,
                claim.last_checked_at,
                claim.timer_checks,
            ) && let Err(err) = clinic.check(&claim, Reason::Timer).await
            {
                tracing::warn!(claim = %claim.clinic_claim_id, error = %err, "timer check failed");
            }
        }
    })
}

/// People look at their pending claims once a (simulated) day, at 10:00.
fn viewers(clinic: Arc<Clinic>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for claim in clinic.db.pending().unwrap_or_default() {
            if let Err(err) = clinic.view(&claim.clinic_claim_id).await {
                tracing::warn!(claim = %claim.clinic_claim_id, error = %err, "view failed");
            }
        }
    })
}

/// Applies the insurer's webhooks as Vestnik's inbound gateway hands them on.
pub struct ClinicHandler(pub Arc<Clinic>);

#[async_trait::async_trait]
impl vestnik_delivery::Handler for ClinicHandler {
    async fn handle(
        &self,
        event: vestnik_delivery::HandedEvent,
    ) -> Result<(), vestnik_delivery::HandlerError> {
        if !self.0.receiver_up() {
            return Err(vestnik_delivery::HandlerError(
                "the clinic's receiver is down".into(),
            ));
        }
        let update = event::parse_event(&event.body).ok_or_else(|| {
            vestnik_delivery::HandlerError("not a claim.status_changed event".into())
        })?;
        let applied = self
            .0
            .apply(&update, "webhook")
            .map_err(|err| vestnik_delivery::HandlerError(err.to_string()))?;
        tracing::debug!(claim = %update.clinic_claim_id, version = update.version, applied, "webhook applied");
        Ok(())
    }
}

pub struct RunningClinic {
    pub address: std::net::SocketAddr,
    pub clinic: Arc<Clinic>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningClinic {
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

pub async fn start(
    settings: ClinicSettings,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<RunningClinic, ClinicError> {
    let address = listener.local_addr()?;
    let db = Db::open(&settings.database)?;
    let clinic = Arc::new_cyclic(|me| -> Clinic {
        Clinic {
            id: settings.clinic_id.clone(),
            strategy: settings.strategy,
            db,
            insurer: InsurerClient::new(&settings.insurer_url),
            clock: settings.clock,
            changes: watch::channel(0).0,
            receiver_up: AtomicBool::new(true),
            rng: Mutex::new(StdRng::seed_from_u64(settings.seed)),
            issued: AtomicU64::new(0),
            shutdown: shutdown.clone(),
            me: me.clone(),
        }
    });
    let router = pages::router(Arc::clone(&clinic));
    let serve_shutdown = shutdown.clone();
    let jobs = Arc::clone(&clinic);
    let task = tokio::spawn(async move {
        let mut background = Vec::new();
        if jobs.strategy.sweeps() {
            background.push(tokio::spawn(
                Arc::clone(&jobs).daily(strategy::SWEEP_HOUR, sweep),
            ));
        }
        if jobs.strategy.has_timer() {
            background.push(tokio::spawn(
                Arc::clone(&jobs).daily(strategy::TIMER_HOUR, timer),
            ));
        }
        background.push(tokio::spawn(Arc::clone(&jobs).daily(10, viewers)));
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(serve_shutdown.clone().cancelled_owned());
        if let Err(err) = served.await {
            tracing::error!(error = %err, "the clinic's HTTP server stopped");
        }
        serve_shutdown.cancel();
        for job in background {
            let _ = job.await;
        }
    });
    Ok(RunningClinic {
        address,
        clinic,
        shutdown,
        task,
    })
}
