//! The whole story on one machine: Vestnik's gateway (embedded SQLite), the insurer and the
//! clinic on their own listeners, wired the way real deployments would be — the insurer
//! publishes `claim.status_changed` to the clinic's application through Vestnik's API; the
//! application's endpoint is the clinic's inbound source on the same gateway; the source hands
//! each verified event to the clinic's in-process handler — and a generator submitting claims.

use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vestnik_claims::clock::ScaledClock;
use vestnik_claims::payload::{EVENT_TYPE, PayloadFormat};
use vestnik_clinic::strategy::Strategy;
use vestnik_clinic::{ClinicHandler, ClinicSettings, RunningClinic};
use vestnik_insurer::publish::PublishSettings;
use vestnik_insurer::{InsurerSettings, RunningInsurer};
use vestnik_server::{RunningServer, ServerSettings};
use vestnik_store::sqlite::SqliteStore;

/// The clinic's id, its application's uid in Vestnik, and its handler's name.
pub const CLINIC_ID: &str = "clinic-7";
const HANDLER: &str = "clinic-claims";
const TOKEN: &str = "demo-token";

#[derive(Debug, Clone)]
pub struct DemoSettings {
    pub strategy: Strategy,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Claims the generator submits per real minute; 0 turns it off.
    pub claims_per_minute: f64,
    pub seed: u64,
    pub payload_format: PayloadFormat,
    /// Where the gateway's and the clinic's databases live.
    pub data_dir: std::path::PathBuf,
    /// The gateway's retry schedule (the demo's default is shorter than production's).
    pub retry_schedule: vestnik_core::RetrySchedule,
    /// What the simulated clock shows at start (default: now).
    pub clock_start: Option<jiff::Timestamp>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("the gateway did not start: {0}")]
    Gateway(#[from] vestnik_server::StartError),
    #[error("the gateway's store did not open: {0}")]
    Store(#[from] vestnik_store::StoreError),
    #[error("the clinic did not start: {0}")]
    Clinic(#[from] vestnik_clinic::ClinicError),
    #[error("setting up the gateway failed: {0}")]
    Setup(String),
    #[error("the time scale is invalid: {0}")]
    Scale(#[from] vestnik_claims::clock::ScaleError),
}

/// The demo's three listeners.
pub struct Listeners {
    pub gateway: TcpListener,
    pub insurer: TcpListener,
    pub clinic: TcpListener,
}

impl Listeners {
    pub async fn bind(host: &str, ports: [u16; 3]) -> std::io::Result<Self> {
        Ok(Self {
            gateway: TcpListener::bind((host, ports[0])).await?,
            insurer: TcpListener::bind((host, ports[1])).await?,
            clinic: TcpListener::bind((host, ports[2])).await?,
        })
    }
}

pub struct RunningDemo {
    pub gateway_url: String,
    pub insurer_url: String,
    pub clinic_url: String,
    pub token: String,
    pub source_id: String,
    pub clinic: RunningClinic,
    pub insurer: RunningInsurer,
    gateway: RunningServer,
    shutdown: CancellationToken,
    generator: Option<tokio::task::JoinHandle<()>>,
}

impl RunningDemo {
    pub async fn stop(self) {
        self.shutdown.cancel();
        if let Some(generator) = self.generator {
            let _ = generator.await;
        }
        self.insurer.stop().await;
        self.clinic.stop().await;
        self.gateway.stop().await;
    }
}

async fn api(
    client: &reqwest::Client,
    url: String,
    body: serde_json::Value,
) -> Result<serde_json::Value, DemoError> {
    let response = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .map_err(|err| DemoError::Setup(err.to_string()))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if status.is_success() {
        Ok(body)
    } else {
        Err(DemoError::Setup(format!("{url} answered {status}: {body}")))
    }
}

pub async fn start(settings: DemoSettings, listeners: Listeners) -> Result<RunningDemo, DemoError> {
    let shutdown = CancellationToken::new();
    let url = |listener: &TcpListener| listener.local_addr().map(|a| format!("http://{a}"));
    let (gateway_url, insurer_url, clinic_url) = (
        url(&listeners.gateway)?,
        url(&listeners.insurer)?,
        url(&listeners.clinic)?,
    );
    let now = jiff::Timestamp::now();
    let clock = ScaledClock::new(
        settings.clock_start.unwrap_or(now),
        now.as_millisecond(),
        settings.time_scale,
    )?;

    let clinic = vestnik_clinic::start(
        ClinicSettings {
            clinic_id: CLINIC_ID.into(),
            strategy: settings.strategy,
            insurer_url: insurer_url.clone(),
            clock,
            database: settings.data_dir.join("clinic.db"),
            seed: settings.seed,
        },
        listeners.clinic,
        shutdown.clone(),
    )
    .await?;

    let mut server = ServerSettings {
        api_token: Some(TOKEN.into()),
        ..ServerSettings::default()
    };
    server.delivery.allow_targets = vec!["127.0.0.0/8".parse().expect("a CIDR")];
    server.delivery.schedule = settings.retry_schedule.clone();
    server
        .delivery
        .handlers
        .register(HANDLER, ClinicHandler(Arc::clone(&clinic.clinic)));
    let store = SqliteStore::open(
        &format!(
            "sqlite://{}",
            settings.data_dir.join("vestnik.db").display()
        ),
        vestnik_delivery::now_ms(),
    )?;
    let gateway =
        vestnik_server::start(Arc::new(store), server, listeners.gateway, shutdown.clone()).await?;

    // The clinic's side of the gateway: a source whose destination is the clinic's handler.
    let client = reqwest::Client::new();
    let v1 = format!("{gateway_url}/api/v1");
    let source = api(
        &client,
        format!("{v1}/source"),
        serde_json::json!({"name": "Insurer claim decisions", "uid": "insurer",
                           "verification": {"type": "standard-webhooks"},
                           "destinations": [{"handler": HANDLER}]}),
    )
    .await?;
    let source_id = source["id"].as_str().unwrap_or_default().to_owned();
    let secret = client
        .get(format!("{v1}/source/{source_id}/secret"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .map_err(|err| DemoError::Setup(err.to_string()))?
        .json::<serde_json::Value>()
        .await
        .map_err(|err| DemoError::Setup(err.to_string()))?;
    // The insurer's side: the event type, the clinic's application and its endpoint (the
    // clinic's gateway, sharing the source's secret).
    let example = serde_json::json!({"type": EVENT_TYPE, "data": {"claim_id": "clm-000001", "status": "approved", "version": 2}});
    api(
        &client,
        format!("{v1}/event-type"),
        serde_json::json!({"name": EVENT_TYPE, "description": "A claim's status changed",
                           "schemas": {"1": {"type": "object", "examples": [example]}}}),
    )
    .await?;
    api(
        &client,
        format!("{v1}/app"),
        serde_json::json!({"name": "Clinic 7", "uid": CLINIC_ID}),
    )
    .await?;
    // Only a clinic that learns by webhook subscribes; the others ask the insurer.
    if settings.strategy == Strategy::Webhook {
        api(
            &client,
            format!("{v1}/app/{CLINIC_ID}/endpoint"),
            serde_json::json!({"url": format!("{gateway_url}/in/{source_id}"), "uid": "mis",
                               "secret": secret["key"], "channels": [settings.payload_format.as_str()],
                               "eventTypes": [EVENT_TYPE]}),
        )
        .await?;
    }

    let insurer = vestnik_insurer::start(
        InsurerSettings {
            seed: settings.seed,
            clock,
            publish: Some(PublishSettings {
                vestnik_url: gateway_url.clone(),
                token: TOKEN.into(),
                format: settings.payload_format,
                insurer_url: insurer_url.clone(),
            }),
            public_url: insurer_url.clone(),
        },
        listeners.insurer,
        shutdown.clone(),
    )
    .await?;

    let generator = (settings.claims_per_minute > 0.0).then(|| {
        let clinic = Arc::clone(&clinic.clinic);
        let every = Duration::from_secs_f64(60.0 / settings.claims_per_minute);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let (patient, policy, lines) = clinic.random_claim();
                if let Err(err) = clinic.submit(&patient, &policy, lines).await {
                    tracing::warn!(error = %err, "the generator could not submit a claim");
                }
            }
        })
    });
    Ok(RunningDemo {
        gateway_url,
        insurer_url,
        clinic_url,
        token: TOKEN.into(),
        source_id,
        clinic,
        insurer,
        gateway,
        shutdown,
        generator,
    })
}
