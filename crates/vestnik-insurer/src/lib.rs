//! The reference integration's insurer: a claims API (submit, read, long-poll, list), seeded
//! adjudication on a scaled clock, a reviewer page for the manual path, and every status change
//! published through Vestnik as `claim.status_changed`. Claims live in memory: the demo's
//! insurer starts fresh each run.

mod pages;
pub mod publish;
pub mod routes;
pub mod state;

use axum::Router;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use jiff::Timestamp;
use publish::{Outgoing, PublishSettings};
use state::{ClaimError, Claims, Submitted};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;
use vestnik_claims::clock::ScaledClock;
use vestnik_claims::model::{ClaimSubmission, Decision};
use vestnik_claims::payload::ClaimRecord;

#[derive(Debug, Clone)]
pub struct InsurerSettings {
    pub seed: u64,
    pub clock: ScaledClock,
    /// Where status changes go; `None` keeps them to the API (polling clinics only).
    pub publish: Option<PublishSettings>,
    /// This service's URL as clinics reach it, for links.
    pub public_url: String,
}

/// Requests served, by kind: what each clinic strategy costs the insurer.
#[derive(Debug, Default)]
pub struct Counters {
    pub submit: AtomicU64,
    pub status: AtomicU64,
    pub long_poll: AtomicU64,
    pub list: AtomicU64,
}

pub struct Insurer {
    pub claims: Claims,
    pub counters: Counters,
    pub public_url: String,
    outbox: Option<mpsc::UnboundedSender<Outgoing>>,
    shutdown: CancellationToken,
    me: std::sync::Weak<Insurer>,
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

impl Insurer {
    pub fn simulated_now(&self) -> Timestamp {
        self.claims.clock().simulated(now_ms())
    }

    fn publish(&self, record: &ClaimRecord, at: Timestamp) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(Outgoing {
                record: record.clone(),
                at,
            });
        }
    }

    /// Receives a claim, publishes its first status and schedules its decision.
    pub fn submit(&self, submission: ClaimSubmission) -> Result<Submitted, ClaimError> {
        let now = self.simulated_now();
        let submitted = self.claims.submit(submission, now)?;
        if let Submitted::New(record, decide_at) = &submitted {
            metrics::counter!("insurer_claims_received_total", "review" => match record.review_mode {
                vestnik_claims::model::ReviewMode::Auto => "auto",
                vestnik_claims::model::ReviewMode::Manual => "manual",
            })
            .increment(1);
            self.publish(record, now);
            self.schedule(record.id.clone(), *decide_at);
        }
        Ok(submitted)
    }

    pub fn decide_by_hand(&self, id: &str, decision: Decision) -> Result<ClaimRecord, ClaimError> {
        let now = self.simulated_now();
        let record = self.claims.decide_by_hand(id, decision, now)?;
        self.publish(&record, now);
        Ok(record)
    }

    /// Decides the claim when the simulated clock reaches `at`.
    fn schedule(&self, id: String, at: Timestamp) {
        let Some(me) = self.me.upgrade() else { return };
        let real_at = self.claims.clock().real_ms_at(at);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let wait = u64::try_from(real_at - now_ms()).unwrap_or(0);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            }
            // Decided when the status really changes (a timer can fire a little late), so
            // `decided_at` is what a status request could first have seen.
            let now = me.simulated_now().max(at);
            if let Some(record) = me.claims.decide_scheduled(&id, now) {
                me.publish(&record, now);
            }
        });
    }
}

pub struct RunningInsurer {
    pub address: std::net::SocketAddr,
    pub insurer: Arc<Insurer>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningInsurer {
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

pub async fn start(
    settings: InsurerSettings,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<RunningInsurer> {
    let address = listener.local_addr()?;
    let (outbox, queue) = mpsc::unbounded_channel();
    let insurer = Arc::new_cyclic(|me| Insurer {
        claims: Claims::new(settings.seed, settings.clock),
        counters: Counters::default(),
        public_url: settings.public_url.clone(),
        outbox: settings.publish.is_some().then_some(outbox),
        shutdown: shutdown.clone(),
        me: me.clone(),
    });
    let router = router(Arc::clone(&insurer));
    let serve_shutdown = shutdown.clone();
    let publish = settings.publish.clone();
    let task = tokio::spawn(async move {
        let publisher =
            publish.map(|p| tokio::spawn(publish::run(p, queue, serve_shutdown.clone())));
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(serve_shutdown.clone().cancelled_owned());
        if let Err(err) = served.await {
            tracing::error!(error = %err, "the insurer's HTTP server stopped");
        }
        serve_shutdown.cancel();
        if let Some(publisher) = publisher {
            let _ = publisher.await;
        }
    });
    Ok(RunningInsurer {
        address,
        insurer,
        shutdown,
        task,
    })
}

pub fn router(insurer: Arc<Insurer>) -> Router {
    Router::new()
        .route("/claims", post(routes::submit).get(routes::list))
        .route("/claims/{id}", get(routes::get))
        .route("/claims/{id}/decision", post(routes::decide))
        .route("/fhir/ClaimResponse/{id}", get(routes::fhir_claim_response))
        .route("/stats", get(routes::stats))
        .route("/review", get(pages::review))
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/review") }),
        )
        .route("/events", get(events))
        .with_state(insurer)
}

/// One event per change, for pages to refresh on.
async fn events(
    axum::extract::State(insurer): axum::extract::State<Arc<Insurer>>,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let changes = tokio_stream::wrappers::WatchStream::new(insurer.claims.subscribe())
        .map(|n| Ok(Event::default().data(n.to_string())));
    Sse::new(changes).keep_alive(KeepAlive::default())
}
