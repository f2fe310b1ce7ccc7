//! `vestnik simulate`: polling vs long polling vs on-view vs webhooks on the same claims workload,
//! in numbers — a table (or JSON/CSV), an SVG chart, and a progress bar while it runs.

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use vestnik_sim::sim::Strategy;
use vestnik_sim::workload::{DAY, HOUR, Params};

fn parse_strategy(text: &str) -> Result<Strategy, String> {
    Strategy::parse(text)
        .ok_or_else(|| "use poll, poll-once, long-poll, on-view, webhook or webhook+on-view".into())
}

/// `DAY:HOUR+HOURS`, e.g. `3:09+6`: the receiver is down on day 3 from 09:00 for six hours.
fn parse_outage(text: &str) -> Result<(i64, i64), String> {
    let error =
        || format!("{text:?} is not an outage like 3:09+6 (day 3, from 09:00, for 6 hours)");
    let (start, hours) = text.split_once('+').ok_or_else(error)?;
    let (day, hour) = start.split_once(':').ok_or_else(error)?;
    let (day, hour, hours): (i64, i64, f64) = (
        day.parse().map_err(|_| error())?,
        hour.parse().map_err(|_| error())?,
        hours.parse().map_err(|_| error())?,
    );
    let from = day * DAY + hour * HOUR;
    Ok((from, from + (hours * HOUR as f64) as i64))
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Days during which claims arrive.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Extra days simulated after the period, so late decisions and the 28/40-day timers play out.
    #[arg(long, default_value_t = 45)]
    tail_days: u32,
    /// First day (Moscow calendar), e.g. 2026-12-01 to see the New Year break.
    #[arg(long, default_value = "2026-03-02")]
    start: jiff::civil::Date,
    /// Claims per hour during the clinic's working hours (09–18) on business days.
    #[arg(long, default_value_t = 40.0)]
    claims_per_hour: f64,
    /// Share of claims decided automatically (within 0.1–5 s); the rest go to manual review
    /// (1–20 business days).
    #[arg(long, default_value_t = 0.6)]
    auto_probability: f64,
    /// Times a person opens a claim per business day, pending or not.
    #[arg(long, default_value_t = 0.5)]
    views_per_day: f64,
    /// Chance that a webhook delivery attempt fails.
    #[arg(long, default_value_t = 0.0)]
    outage_probability: f64,
    /// Receiver outage window, DAY:HOUR+HOURS (repeatable).
    #[arg(long = "outage", value_parser = parse_outage)]
    outages: Vec<(i64, i64)>,
    /// Webhook delivery latency, milliseconds.
    #[arg(long, default_value_t = 50)]
    webhook_latency_ms: i64,
    /// Delays between webhook attempts (Vestnik's default).
    #[arg(long, default_value = "5s,5m,30m,2h,5h,10h,10h")]
    retry_schedule: String,
    /// Requests per second the nightly 03:00 sweep sends.
    #[arg(long, default_value_t = 50.0)]
    sweep_rate: f64,
    /// webhook+on-view: a view checks when the last webhook is older than this many hours.
    #[arg(long, default_value_t = 168.0)]
    stale_after_hours: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Strategies to run (default: all six).
    #[arg(long, value_delimiter = ',', value_parser = parse_strategy)]
    strategies: Vec<Strategy>,
    /// table, json or csv.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
    format: String,
    /// Also draw requests per hour and the staleness CDF into this SVG file.
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let delays = vestnik_core::RetrySchedule::parse_delays(&args.retry_schedule)
        .map_err(anyhow::Error::msg)?;
    let params = Params {
        start: args.start,
        days: args.days,
        tail_days: args.tail_days,
        claims_per_hour: args.claims_per_hour,
        auto_probability: args.auto_probability.clamp(0.0, 1.0),
        views_per_business_day: args.views_per_day.max(0.0),
        outage_probability: args.outage_probability.clamp(0.0, 1.0),
        outages: args.outages.clone(),
        webhook_latency_ms: args.webhook_latency_ms.max(0),
        retry_schedule_ms: delays
            .iter()
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .collect(),
        sweep_rate: args.sweep_rate.max(0.001),
        stale_after_ms: (args.stale_after_hours * HOUR as f64) as i64,
        seed: args.seed,
        end_ms: None,
    };
    anyhow::ensure!(
        params.days > 0 && params.claims_per_hour > 0.0,
        "--days and --claims-per-hour must be above zero"
    );
    let strategies = if args.strategies.is_empty() {
        Strategy::ALL.to_vec()
    } else {
        args.strategies.clone()
    };
    let expected = (params.claims_per_hour * 9.0 * f64::from(params.days) * 5.0 / 7.0) as u64
        * strategies.len() as u64;
    let bar = ProgressBar::new(expected.max(1));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} simulating {bar:40} {percent:>3}% ({pos}/{len} claim·strategies, {elapsed})",
        )
        .expect("a valid template"),
    );
    if args.format != "table" {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = std::time::Instant::now();
    let outcome = vestnik_sim::simulate(&params, &strategies, &|n| bar.inc(n));
    bar.finish_and_clear();
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&outcome.reports)?),
        "csv" => print!("{}", vestnik_sim::report::csv(&outcome.reports)),
        _ => {
            println!(
                "{} claims over {} days from {} ({} claims/h in working hours, {:.0} % automatic), horizon +{} days; {:.1} s",
                outcome.claims,
                params.days,
                params.start,
                params.claims_per_hour,
                params.auto_probability * 100.0,
                params.tail_days,
                started.elapsed().as_secs_f64()
            );
            print!("{}", vestnik_sim::report::table(&outcome.reports));
            println!(
                "requests: what the insurer handles (status GETs, long-polls, sweep and timer checks, webhook POSTs with retries); \
                 stale: decision → clinic knows; stale views: opened claims showing an out-of-date status"
            );
        }
    }
    if let Some(path) = &args.chart {
        let per_hour: Vec<_> = outcome
            .per_hour
            .iter()
            .map(|(s, h)| (*s, h.as_slice()))
            .collect();
        let staleness: Vec<_> = outcome
            .staleness
            .iter()
            .map(|(s, v)| (*s, v.as_slice()))
            .collect();
        let title = format!(
            "{} claims, {} days from {}, seed {}",
            outcome.claims, params.days, params.start, params.seed
        );
        std::fs::write(path, vestnik_sim::chart::svg(&per_hour, &staleness, &title))
            .with_context(|| format!("cannot write {}", path.display()))?;
        if args.format == "table" {
            println!("chart: {}", path.display());
        }
    }
    Ok(())
}
