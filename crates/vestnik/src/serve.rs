//! `vestnik serve`: parses flags and environment into settings, opens the store and runs the
//! server until SIGTERM or Ctrl-C, then shuts down gracefully.

use anyhow::Context as _;
use clap::Args;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vestnik_core::RetrySchedule;
use vestnik_delivery::DeliverySettings;
use vestnik_queue::{QueueKind, QueueSettings};
use vestnik_server::{Role, ServerSettings};
use vestnik_store::sqlite::SqliteStore;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address the API listens on.
    #[arg(long, env = "VESTNIK_LISTEN", default_value = "127.0.0.1:8071")]
    pub listen: String,
    /// Storage: `sqlite://FILE` (created and migrated on start) or `postgres://…` (shared by
    /// several nodes; migrated on start, safely when nodes start together).
    #[arg(long, env = "VESTNIK_DATABASE", default_value = "sqlite://vestnik.db")]
    pub database: String,
    /// With `postgres://`: connections this node opens at most (PostgreSQL's `max_connections`
    /// must cover every node's).
    #[arg(long, env = "VESTNIK_DATABASE_POOL", default_value_t = vestnik_store::postgres::DEFAULT_POOL_SIZE)]
    pub database_pool: usize,
    /// Networks the SSRF guard lets deliveries reach although they are not public (CIDR); repeatable.
    #[arg(
        long = "allow-target",
        env = "VESTNIK_ALLOW_TARGETS",
        value_delimiter = ','
    )]
    pub allow_targets: Vec<ipnet::IpNet>,
    /// Reverse proxies (CIDR) whose X-Forwarded-For names the sender of an inbound webhook, for
    /// sources' IP allow-lists; repeatable.
    #[arg(
        long = "trusted-proxy",
        env = "VESTNIK_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where operational webhooks (endpoint.disabled, message.attempt.*) are sent.
    #[arg(long, env = "VESTNIK_OPERATIONAL_WEBHOOK_URL")]
    pub operational_webhook_url: Option<String>,
    /// Delays between attempts, e.g. `5s,5m,30m,2h,5h,10h,10h` (the default).
    #[arg(long, env = "VESTNIK_RETRY_SCHEDULE", value_parser = parse_schedule)]
    pub retry_schedule: Option<RetrySchedule>,
    /// Per-attempt timeout in seconds.
    #[arg(long, env = "VESTNIK_TIMEOUT_SECONDS", default_value_t = 15)]
    pub timeout_seconds: u64,
    /// Send only the Standard Webhooks headers, not their `svix-*` twins.
    #[arg(long, env = "VESTNIK_STANDARD_HEADERS_ONLY")]
    pub standard_headers_only: bool,
    /// Largest request body the API accepts, in bytes.
    #[arg(long, env = "VESTNIK_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Attempts in flight at once, across all endpoints.
    #[arg(long, env = "VESTNIK_MAX_IN_FLIGHT", default_value_t = 512)]
    pub max_in_flight: usize,
    /// Attempts in flight at once to a single endpoint.
    #[arg(long, env = "VESTNIK_ENDPOINT_CONCURRENCY", default_value_t = 32)]
    pub endpoint_concurrency: usize,
    /// How long a node holds a task it leased; a node that dies gives its tasks back when their
    /// leases run out (on SQLite, at once on restart).
    #[arg(long, env = "VESTNIK_LEASE_SECONDS", default_value_t = 300)]
    pub lease_seconds: u64,
    /// What this node does: `all` (API, inbound gateway and delivery), `api` (no delivery) or
    /// `worker` (delivery only; serves health, readiness and metrics). `api` and `worker` need a
    /// shared `postgres://` database.
    #[arg(long, env = "VESTNIK_ROLE", default_value = "all")]
    pub role: Role,
    /// Dispatch through RabbitMQ (`amqp://user:password@host:5672/%2f`): every node relays due
    /// tasks to a durable queue, workers consume it. Needs a `postgres://` database.
    #[arg(long, env = "VESTNIK_QUEUE")]
    pub queue: Option<String>,
    /// The queue's name; nodes of one deployment share it.
    #[arg(long, env = "VESTNIK_QUEUE_NAME", default_value = "vestnik.deliveries")]
    pub queue_name: String,
    /// The queue's type when Vestnik declares it: `classic`, or `quorum` on a RabbitMQ cluster.
    #[arg(long, env = "VESTNIK_QUEUE_KIND", default_value = "classic", value_parser = ["classic", "quorum"])]
    pub queue_kind: String,
    /// Queue messages a worker holds unacknowledged at most (RabbitMQ prefetch).
    #[arg(long, env = "VESTNIK_QUEUE_PREFETCH", default_value_t = 1_000)]
    pub queue_prefetch: u16,
    /// Ready messages the relays let the queue hold; beyond, due tasks wait in the database.
    #[arg(long, env = "VESTNIK_QUEUE_MAX_READY", default_value_t = 20_000)]
    pub queue_max_ready: u32,
    /// Log format.
    #[arg(long, env = "VESTNIK_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

fn is_postgres(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// A whole schedule, so that clap keeps it one value (a `Vec` would read as repeated values).
fn parse_schedule(text: &str) -> Result<RetrySchedule, String> {
    let delays = RetrySchedule::parse_delays(text)?;
    if delays.is_empty() {
        return Err("the schedule needs at least one delay".into());
    }
    Ok(RetrySchedule::new(delays, 0.2, Duration::from_secs(3600)))
}

impl ServeArgs {
    /// Refuses combinations that cannot work, before anything starts.
    pub fn check(&self) -> anyhow::Result<()> {
        if !is_postgres(&self.database) {
            anyhow::ensure!(
                self.role == Role::All,
                "--role {} needs a database shared by several nodes (--database postgres://…)",
                self.role.as_str()
            );
            anyhow::ensure!(
                self.queue.is_none(),
                "--queue needs a database shared by several nodes (--database postgres://…)"
            );
        }
        if let Some(queue) = &self.queue {
            anyhow::ensure!(
                !queue.starts_with("amqps://"),
                "--queue amqps:// (TLS) is not built in; reach RabbitMQ over a private network or a TLS tunnel with amqp://"
            );
            anyhow::ensure!(
                queue.starts_with("amqp://"),
                "--queue must be an amqp:// URL (RabbitMQ)"
            );
            anyhow::ensure!(
                self.queue_prefetch > 0,
                "--queue-prefetch must be at least 1"
            );
        }
        Ok(())
    }

    pub fn settings(&self) -> ServerSettings {
        let defaults = DeliverySettings::default();
        let lease = Duration::from_secs(self.lease_seconds.max(1));
        let shared = is_postgres(&self.database);
        let schedule = self.retry_schedule.clone().unwrap_or_default();
        ServerSettings {
            delivery: {
                let delivery = DeliverySettings {
                    schedule,
                    timeout: Duration::from_secs(self.timeout_seconds.max(1)),
                    allow_targets: self.allow_targets.clone(),
                    max_in_flight: self.max_in_flight.max(1),
                    endpoint_concurrency: self.endpoint_concurrency.max(1),
                    svix_headers: !self.standard_headers_only,
                    lease,
                    ..defaults
                };
                if shared { delivery.shared() } else { delivery }
            },
            api_token: std::env::var("VESTNIK_API_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            operational_webhook_url: self.operational_webhook_url.clone(),
            max_body_bytes: self.max_body_bytes,
            trusted_proxies: self.trusted_proxies.clone(),
            role: self.role,
            queue: self.queue.as_ref().map(|url| QueueSettings {
                queue: self.queue_name.clone(),
                kind: if self.queue_kind == "quorum" {
                    QueueKind::Quorum
                } else {
                    QueueKind::Classic
                },
                prefetch: self.queue_prefetch,
                max_queued: self.queue_max_ready,
                lease,
                ..QueueSettings::new(url)
            }),
            ..ServerSettings::default()
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logs(&args.log_format, "info");
    args.check()?;
    let shown = redacted(&args.database);
    let store: Arc<dyn vestnik_store::Store> = if is_postgres(&args.database) {
        Arc::new(
            vestnik_store::postgres::PgStore::connect_with_pool(
                &args.database,
                None,
                args.database_pool,
            )
            .await
            .with_context(|| format!("cannot open {shown}"))?,
        )
    } else {
        Arc::new(
            SqliteStore::open(&args.database, vestnik_delivery::now_ms())
                .with_context(|| format!("cannot open {shown}"))?,
        )
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let shutdown = CancellationToken::new();
    let server = vestnik_server::start(store, args.settings(), listener, shutdown.clone()).await?;
    if server.token_generated {
        // Printed once, on the start that generated it; it is kept in the database.
        println!(
            "Generated admin API token (shown once; set VESTNIK_API_TOKEN to choose your own):\n  {}",
            server.token
        );
    }
    let queue = args.queue.as_deref().map(vestnik_queue::redacted_url);
    tracing::info!(
        address = %server.address, database = %shown, queue = queue.as_deref().unwrap_or("none"),
        role = args.role.as_str(), "vestnik serving"
    );
    println!("vestnik serving on http://{}", server.address);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing attempts in flight");
        shutdown.cancel();
    });
    server.wait().await;
    Ok(())
}

/// The database URL with any password hidden, for logs and errors.
fn redacted(database: &str) -> String {
    match url::Url::parse(database) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => database.to_owned(),
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Logs to stderr; `VESTNIK_LOG` (an env-filter: `warn`, `info,vestnik_queue=debug`) overrides
/// `default_level`.
pub fn init_logs(format: &str, default_level: &str) {
    let chosen = std::env::var("VESTNIK_LOG").unwrap_or_default();
    let mut filter = tracing_subscriber::EnvFilter::try_new(&chosen)
        .ok()
        .filter(|_| !chosen.is_empty())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default_level));
    // The AMQP client logs every broken connection as an error of its own; Vestnik reports the
    // outage once, with what it means. `VESTNIK_LOG=…,lapin=debug` brings them back.
    if !chosen.contains("lapin")
        && let Ok(quiet) = "lapin=off".parse()
    {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn flags_parse_into_settings() {
        let cli = Cli::try_parse_from([
            "vestnik",
            "--retry-schedule",
            "200ms,5s,2m",
            "--allow-target",
            "127.0.0.0/8,10.0.0.0/8",
            "--standard-headers-only",
        ])
        .unwrap();
        let settings = cli.serve.settings();
        let schedule = &settings.delivery.schedule;
        assert_eq!(schedule.max_attempts(), 4);
        assert_eq!(settings.delivery.allow_targets.len(), 2);
        assert!(!settings.delivery.svix_headers);
        assert!(Cli::try_parse_from(["vestnik", "--retry-schedule", "5 parsecs"]).is_err());
        assert_eq!(
            redacted("postgres://vestnik:s3cret@db:5432/v"),
            "postgres://vestnik:***@db:5432/v"
        );
        assert_eq!(redacted("sqlite://vestnik.db"), "sqlite://vestnik.db");
        let defaults = Cli::try_parse_from(["vestnik"]).unwrap().serve.settings();
        assert_eq!(defaults.delivery.schedule.max_attempts(), 8);
        assert!(defaults.queue.is_none());
    }

    #[test]
    fn roles_and_the_queue_need_a_shared_database() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("vestnik").chain(args.iter().copied()))
                .map(|cli| cli.serve)
        };
        let worker = parse(&["--role", "worker"]).unwrap();
        assert!(
            worker
                .check()
                .unwrap_err()
                .to_string()
                .contains("postgres://")
        );
        let queued = parse(&["--queue", "amqp://guest:guest@127.0.0.1:5672/%2f"]).unwrap();
        assert!(queued.check().is_err(), "a queue on SQLite");
        assert!(parse(&["--role", "boss"]).is_err());
        let node = parse(&[
            "--database",
            "postgres://db/v",
            "--role",
            "worker",
            "--queue",
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            "--queue-kind",
            "quorum",
            "--lease-seconds",
            "20",
            "--database-pool",
            "8",
        ])
        .unwrap();
        node.check().unwrap();
        let settings = node.settings();
        assert_eq!(settings.role, Role::Worker);
        let queue = settings.queue.expect("queue settings");
        assert_eq!(queue.kind, QueueKind::Quorum);
        assert_eq!(queue.lease, Duration::from_secs(20));
        assert_eq!(queue.queue, "vestnik.deliveries");
        assert_eq!(node.database_pool, 8);
        assert_eq!(
            settings.delivery.max_buffered, 2_048,
            "a node on a shared database holds a few times its in-flight cap"
        );
        let bad_url = parse(&["--database", "postgres://db/v", "--queue", "redis://x"]).unwrap();
        assert!(bad_url.check().is_err());
        let tls = parse(&["--database", "postgres://db/v", "--queue", "amqps://h/"]).unwrap();
        assert!(tls.check().unwrap_err().to_string().contains("TLS"));
    }
}
