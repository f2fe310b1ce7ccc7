//! `vestnik bench`: an end-to-end load test in one process — the real server on a fresh SQLite
//! file (or, with `--database postgres://…` and optionally `--queue amqp://…`, one API node and
//! `--workers` worker nodes on a fresh schema and queue), 16 (by default) concurrent clients (of
//! the API, or senders to the inbound gateway), and a built-in receiver that measures
//! create→delivered latency from a timestamp the publisher puts into each payload.

use anyhow::Context as _;
use clap::Args;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vestnik_queue::QueueSettings;
use vestnik_server::{Role, ServerSettings};
use vestnik_signature::Secret;
use vestnik_store::sqlite::SqliteStore;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Messages published per scenario.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    /// Concurrent API clients.
    #[arg(long, default_value_t = 16)]
    concurrency: u64,
    /// Scenarios to run: a (1 endpoint), b (10 endpoints), c (no endpoint), d (500 msg/s fixed
    /// rate), e (inbound: signed requests to a Standard Webhooks source, handed on to 1 destination).
    #[arg(long, value_delimiter = ',', default_value = "a,b,c,d,e")]
    scenarios: Vec<String>,
    /// Offered rate for scenario d, messages per second.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Duration of scenario d, seconds.
    #[arg(long, default_value_t = 10)]
    rate_seconds: u64,
    /// Run on PostgreSQL (`postgres://…`, a fresh schema per scenario) instead of a fresh SQLite
    /// file: one API node and `--workers` worker nodes, all in this process.
    #[arg(long)]
    database: Option<String>,
    /// With `--database postgres://…`: dispatch through RabbitMQ (`amqp://…`, a fresh queue per
    /// scenario).
    #[arg(long)]
    queue: Option<String>,
    /// Worker nodes beside the API node (with `--database postgres://…`).
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

/// The nodes a scenario runs on: one node on SQLite, or an API node and workers on PostgreSQL.
struct Deployment {
    api: vestnik_server::RunningServer,
    workers: Vec<vestnik_server::RunningServer>,
    _sqlite: Option<tempfile::TempDir>,
    _schema: Option<vestnik_store::postgres::IsolatedSchema>,
    queue: Option<QueueSettings>,
}

impl Deployment {
    async fn start(args: &BenchArgs) -> anyhow::Result<Self> {
        let mut settings = ServerSettings {
            api_token: Some("bench".into()),
            ..ServerSettings::default()
        };
        settings.delivery.allow_targets = vec!["127.0.0.0/8".parse()?];
        let Some(database) = &args.database else {
            anyhow::ensure!(
                args.queue.is_none(),
                "--queue needs --database postgres://…"
            );
            let dir = tempfile::tempdir()?;
            let store = SqliteStore::open(
                &format!("sqlite://{}", dir.path().join("bench.db").display()),
                vestnik_delivery::now_ms(),
            )?;
            let api = serve(Arc::new(store), settings).await?;
            return Ok(Self {
                api,
                workers: Vec::new(),
                _sqlite: Some(dir),
                _schema: None,
                queue: None,
            });
        };
        anyhow::ensure!(args.workers >= 1, "--workers must be at least 1");
        settings.delivery = settings.delivery.shared();
        let (store, schema) = vestnik_store::postgres::PgStore::connect_isolated(database, "bench")
            .await
            .context("cannot open the PostgreSQL database")?;
        let queue = args.queue.as_ref().map(|url| QueueSettings {
            queue: format!(
                "vestnik.bench.{}.{}",
                std::process::id(),
                vestnik_delivery::now_ms()
            ),
            ..QueueSettings::new(url)
        });
        settings.queue = queue.clone();
        let store: Arc<dyn vestnik_store::Store> = Arc::new(store);
        let api = serve(
            Arc::clone(&store),
            ServerSettings {
                role: Role::Api,
                ..settings.clone()
            },
        )
        .await?;
        let mut workers = Vec::new();
        for _ in 0..args.workers {
            // Each node has its own connection pool, as separate processes would.
            let store =
                vestnik_store::postgres::PgStore::connect(database, Some(schema.name())).await?;
            workers.push(
                serve(
                    Arc::new(store),
                    ServerSettings {
                        role: Role::Worker,
                        ..settings.clone()
                    },
                )
                .await?,
            );
        }
        Ok(Self {
            api,
            workers,
            _sqlite: None,
            _schema: Some(schema),
            queue,
        })
    }

    async fn stop(self) {
        self.api.stop().await;
        for worker in self.workers {
            worker.stop().await;
        }
        if let Some(queue) = &self.queue
            && let Err(err) = vestnik_queue::delete_queue(queue).await
        {
            eprintln!("could not delete the bench queue {}: {err}", queue.queue);
        }
    }

    fn describe(&self, args: &BenchArgs) -> String {
        match (&args.database, &args.queue) {
            (None, _) => "1 node on SQLite".into(),
            (Some(_), None) => format!(
                "1 API node + {} worker node(s) on PostgreSQL",
                self.workers.len()
            ),
            (Some(_), Some(_)) => format!(
                "1 API node + {} worker node(s) on PostgreSQL + RabbitMQ",
                self.workers.len()
            ),
        }
    }
}

async fn serve(
    store: Arc<dyn vestnik_store::Store>,
    settings: ServerSettings,
) -> anyhow::Result<vestnik_server::RunningServer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(vestnik_server::start(store, settings, listener, CancellationToken::new()).await?)
}

struct Receiver {
    url: String,
    received: Arc<AtomicU64>,
    latency_us: Arc<Mutex<Histogram<u64>>>,
}

fn micros_now() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(u64::MAX)
}

async fn start_receiver() -> anyhow::Result<Receiver> {
    let received = Arc::new(AtomicU64::new(0));
    let latency_us = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let (count, hist) = (Arc::clone(&received), Arc::clone(&latency_us));
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let (count, hist) = (Arc::clone(&count), Arc::clone(&hist));
        async move {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body)
                && let Some(sent) = value["t"].as_u64()
            {
                let _ = hist
                    .lock()
                    .expect("histogram lock")
                    .record(micros_now().saturating_sub(sent));
            }
            count.fetch_add(1, Ordering::Relaxed);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Receiver {
        url,
        received,
        latency_us,
    })
}

/// CPU seconds (user + system) this process has used, from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size of this process in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    println!(
        "vestnik bench: {} messages per scenario, {} API clients; server, clients and receiver share this process",
        args.messages, args.concurrency
    );
    for scenario in &args.scenarios {
        let (name, workload, rate) = match scenario.as_str() {
            "a" => ("(a) 1 endpoint", Workload::Outbound(1), None),
            "b" => ("(b) 10 endpoints", Workload::Outbound(10), None),
            "c" => ("(c) no endpoint, ingest only", Workload::Outbound(0), None),
            "d" => (
                "(d) 1 endpoint at a fixed offered rate",
                Workload::Outbound(1),
                Some(args.rate),
            ),
            "e" => (
                "(e) inbound: verified requests to /in/{source}, handed on to 1 destination",
                Workload::Inbound,
                None,
            ),
            other => anyhow::bail!("unknown scenario `{other}` (use a, b, c, d, e)"),
        };
        let messages = match rate {
            Some(rate) => rate * args.rate_seconds,
            None => args.messages,
        };
        run_scenario(&args, name, workload, messages, rate).await?;
    }
    Ok(())
}

/// What the clients publish.
#[derive(Debug, Clone, Copy)]
enum Workload {
    /// Messages through the API to an application with this many endpoints.
    Outbound(usize),
    /// Standard Webhooks-signed requests to an inbound source with one destination.
    Inbound,
}

/// Creates what a scenario publishes to; returns the URL the clients post to, the signing
/// secret for inbound requests, and the deliveries to expect per published item.
async fn prepare(
    client: &reqwest::Client,
    base: &str,
    workload: Workload,
    receiver: &str,
) -> anyhow::Result<(String, Option<Secret>, u64)> {
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}/api/v1{path}"))
            .bearer_auth("bench")
            .json(&body)
            .send()
    };
    match workload {
        Workload::Outbound(endpoints) => {
            post("/app", serde_json::json!({"name": "bench", "uid": "bench"}))
                .await?
                .error_for_status()?;
            for _ in 0..endpoints {
                post("/app/bench/endpoint", serde_json::json!({"url": receiver}))
                    .await?
                    .error_for_status()?;
            }
            Ok((
                format!("{base}/api/v1/app/bench/msg"),
                None,
                endpoints as u64,
            ))
        }
        Workload::Inbound => {
            let source: serde_json::Value = post(
                "/source",
                serde_json::json!({"name": "bench", "verification": {"type": "standard-webhooks"},
                                   "destinations": [{"url": receiver}]}),
            )
            .await?
            .error_for_status()?
            .json()
            .await?;
            let id = source["id"].as_str().context("the source has an id")?;
            let secret: serde_json::Value = client
                .get(format!("{base}/api/v1/source/{id}/secret"))
                .bearer_auth("bench")
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let secret = Secret::parse(secret["key"].as_str().context("a secret")?)?;
            Ok((format!("{base}/in/{id}"), Some(secret), 1))
        }
    }
}

async fn run_scenario(
    args: &BenchArgs,
    name: &str,
    workload: Workload,
    messages: u64,
    rate: Option<u64>,
) -> anyhow::Result<()> {
    let concurrency = args.concurrency;
    let deployment = Deployment::start(args).await?;
    let topology = deployment.describe(args);
    let base = format!("http://{}", deployment.api.address);
    let receiver = start_receiver().await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let (url, secret, per_item) = prepare(&client, &base, workload, &receiver.url).await?;

    let cpu_before = cpu_seconds();
    let api_latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        let (client, url, secret, next, api_latency) = (
            client.clone(),
            url.clone(),
            secret.clone(),
            Arc::clone(&next),
            Arc::clone(&api_latency),
        );
        clients.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= messages {
                    return Ok::<_, anyhow::Error>(());
                }
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let payload = serde_json::json!({"n": n, "t": micros_now(), "claim": "c-12345", "status": "approved"});
                let request = match &secret {
                    None => client.post(&url).bearer_auth("bench").json(&serde_json::json!({"eventType": "bench.event", "payload": payload})),
                    Some(secret) => {
                        let (body, id, ts) = (payload.to_string(), format!("evt-{n}"), micros_now() / 1_000_000);
                        let signature = secret.sign(&id, i64::try_from(ts).unwrap_or_default(), body.as_bytes());
                        client.post(&url)
                            .header("webhook-id", id)
                            .header("webhook-timestamp", ts.to_string())
                            .header("webhook-signature", signature)
                            .header("content-type", "application/json")
                            .body(body)
                    }
                };
                let sent = Instant::now();
                request.send().await?.error_for_status()?;
                let _ = api_latency.lock().expect("histogram lock").record(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
        }));
    }
    // Progress on stderr, ten times a second: published, and delivered when there is delivery.
    let expected = messages * per_item;
    let bar = indicatif::ProgressBar::new(if per_item > 0 { expected } else { messages });
    bar.set_style(
        indicatif::ProgressStyle::with_template("  {prefix} {bar:40} {pos}/{len} {msg}")
            .expect("a valid template"),
    );
    bar.set_prefix(if per_item > 0 {
        "delivered"
    } else {
        "accepted "
    });
    let progress = {
        let (bar, next, received) = (
            bar.clone(),
            Arc::clone(&next),
            Arc::clone(&receiver.received),
        );
        tokio::spawn(async move {
            loop {
                let published = next.load(Ordering::Relaxed).min(messages);
                bar.set_position(if per_item > 0 {
                    received.load(Ordering::Relaxed)
                } else {
                    published
                });
                bar.set_message(format!("({published} published)"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    for task in clients {
        task.await?.context("publishing failed")?;
    }
    let publish_time = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    while receiver.received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total_time = started.elapsed();
    progress.abort();
    bar.finish_and_clear();
    let delivered = receiver.received.load(Ordering::Relaxed);
    let cpu = cpu_seconds() - cpu_before;
    deployment.stop().await;

    let api = api_latency.lock().expect("histogram lock").clone();
    let e2e = receiver.latency_us.lock().expect("histogram lock").clone();
    let ms = |us: u64| us as f64 / 1000.0;
    println!("\n{name} — {topology}");
    println!(
        "  accepted      {:>10.0} msg/s   ({messages} in {:.2} s)",
        messages as f64 / publish_time.as_secs_f64(),
        publish_time.as_secs_f64()
    );
    if per_item > 0 {
        println!(
            "  delivered     {:>10.0} attempts/s ({delivered}/{expected} in {:.2} s)",
            delivered as f64 / total_time.as_secs_f64(),
            total_time.as_secs_f64()
        );
        println!(
            "  create→deliv  p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            ms(e2e.value_at_quantile(0.5)),
            ms(e2e.value_at_quantile(0.9)),
            ms(e2e.value_at_quantile(0.99)),
            ms(e2e.max())
        );
    }
    println!(
        "  API latency   p50 {:.2} ms  p99 {:.2} ms",
        ms(api.value_at_quantile(0.5)),
        ms(api.value_at_quantile(0.99))
    );
    println!(
        "  CPU           {:.2} s ({:.0} % of one core)   peak RSS {:.0} MiB (whole process)",
        cpu,
        100.0 * cpu / total_time.as_secs_f64(),
        peak_rss_mib()
    );
    Ok(())
}
