//! `vestnik demo`: the whole story on this machine — Vestnik's gateway, the insurer and the
//! clinic on three loopback ports, claims flowing — until Ctrl-C, with a progress line every few
//! seconds.

use anyhow::Context as _;
use clap::Args;
use std::time::{Duration, Instant};
use vestnik_claims::payload::PayloadFormat;
use vestnik_clinic::strategy::Strategy;

fn parse_strategy(text: &str) -> Result<Strategy, String> {
    Strategy::parse(text).ok_or_else(|| "use webhook, poll, long-poll or on-view".into())
}

fn parse_format(text: &str) -> Result<PayloadFormat, String> {
    PayloadFormat::parse(text).ok_or_else(|| "use json, fhir-r4 or fhir-r5".into())
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// How the clinic learns decisions: webhook, poll, long-poll or on-view.
    #[arg(long, default_value = "webhook", value_parser = parse_strategy)]
    strategy: Strategy,
    /// Simulated seconds per real second (86400: a day per second, so 20 business days pass in
    /// about half a minute).
    #[arg(long, default_value_t = 86_400.0)]
    time_scale: f64,
    /// Claims the clinic submits per real minute.
    #[arg(long, default_value_t = 30.0)]
    claims_per_minute: f64,
    /// Seeds adjudication and the generated claims.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// What the insurer's webhooks carry: json, fhir-r4 or fhir-r5.
    #[arg(long, default_value = "json", value_parser = parse_format)]
    payload_format: PayloadFormat,
    /// Host the three services listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Ports of the gateway, the insurer and the clinic.
    #[arg(long, value_delimiter = ',', default_value = "8071,8072,8073")]
    ports: Vec<u16>,
    /// Keep the databases here (default: a fresh temporary folder, removed on exit).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    crate::serve::init_logs("text", "warn");
    let temporary = tempfile::tempdir()?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_owned());
    std::fs::create_dir_all(&data_dir)?;
    let ports: [u16; 3] = args
        .ports
        .clone()
        .try_into()
        .map_err(|_| anyhow::anyhow!("--ports takes three ports"))?;
    let listeners = vestnik_demo::Listeners::bind(&args.host, ports)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{ports:?} (use --ports to pick others)",
                args.host
            )
        })?;
    let settings = vestnik_demo::DemoSettings {
        strategy: args.strategy,
        time_scale: args.time_scale,
        claims_per_minute: args.claims_per_minute,
        seed: args.seed,
        payload_format: args.payload_format,
        data_dir,
        retry_schedule: vestnik_core::RetrySchedule::new(
            vestnik_core::RetrySchedule::parse_delays("1s,5s,30s,2m,5m,10m,30m,1h")
                .map_err(anyhow::Error::msg)?,
            0.2,
            Duration::from_secs(3600),
        ),
        clock_start: None,
    };
    let demo = vestnik_demo::start(settings, listeners).await?;
    println!(
        "Vestnik demo: an insurer tells a clinic about claim decisions ({} strategy, time ×{}).",
        args.strategy.as_str(),
        args.time_scale
    );
    println!("  clinic claims page      {}/", demo.clinic_url);
    println!("  insurer reviewer page   {}/review", demo.insurer_url);
    println!(
        "  Vestnik gateway         {}/api/v1   (token {}; /metrics, /openapi.json)",
        demo.gateway_url, demo.token
    );
    println!(
        "  JSON: {}/api/claims, {}/claims",
        demo.clinic_url, demo.insurer_url
    );
    println!("Ctrl-C stops it.\n");
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let clinic = &demo.clinic.clinic;
                let (claims, decided) = clinic.db.counts().unwrap_or_default();
                let now = clinic.simulated_now().to_zoned_datetime(vestnik_claims::adjudication::moscow()).datetime();
                println!(
                    "[{:>4} s] {claims} claims, {decided} decided and known at the clinic, {} status requests to the insurer; simulated {now:.0}",
                    started.elapsed().as_secs(),
                    clinic.insurer.counters.status_requests(),
                );
            }
        }
    }
    println!("stopping…");
    demo.stop().await;
    Ok(())
}
