//! The simulator against the real services: the same claims, played by the real insurer and
//! clinic (time-scaled) and by `vestnik-sim`, cost the insurer the same requests.
//!
//! The run starts at 02:59:00 (Moscow) on a business day with time ×100, and lasts until about
//! 03:02: claims submitted in the first seconds are polled (or long-polled) for 30 s, the 03:00
//! sweep asks about every claim still pending, and automatic decisions come within 5 s. The
//! simulator is given each claim's real submission and decision times.
//!
//! Tolerance: sweeps and long-polls must match exactly. Polls may differ by at most one per
//! automatic claim: at ×100 a poll's few milliseconds of real latency are a few tenths of a
//! simulated second, so a decision landing that close to a poll can be seen by it in one run and
//! by the next in the other.

use serde_json::Value;
use std::time::Duration;
use vestnik_claims::payload::PayloadFormat;
use vestnik_clinic::client::Reason;
use vestnik_clinic::strategy::Strategy;
use vestnik_sim::sim::{self, Kind};
use vestnik_sim::workload::{Claim, DAY, Days, Params};

const SCALE: f64 = 100.0;

async fn real_run(strategy: Strategy, claims: usize) -> (Vec<Value>, [u64; 3]) {
    let dir = tempfile::tempdir().unwrap();
    let start: jiff::Timestamp = "2026-03-03T02:59:00+03:00".parse().unwrap();
    let demo = crate::story::demo_at(strategy, SCALE, PayloadFormat::Json, &dir, Some(start)).await;
    let client = reqwest::Client::new();
    for _ in 0..claims {
        let response = client
            .post(format!("{}/api/claims", demo.clinic_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    // Until 03:02 on the simulated clock: past every poll window and the 03:00 sweep.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    let counters = &demo.clinic.clinic.insurer.counters;
    let counts = [
        counters.get(Reason::Poll),
        counters.get(Reason::LongPoll),
        counters.get(Reason::Sweep),
    ];
    let insurer: Value = reqwest::get(format!("{}/claims", demo.insurer_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    demo.stop().await;
    (insurer["data"].as_array().unwrap().clone(), counts)
}

/// The real claims as the simulator's workload: times in ms since midnight (Moscow) of the day.
fn as_workload(insurer: &[Value]) -> (Vec<Claim>, Params, Days, usize) {
    let midnight: jiff::Timestamp = "2026-03-03T00:00:00+03:00".parse().unwrap();
    let ms = |text: &str| {
        text.parse::<jiff::Timestamp>()
            .unwrap()
            .duration_since(midnight)
            .as_millis() as i64
    };
    let mut claims: Vec<Claim> = insurer
        .iter()
        .map(|c| Claim {
            submitted: ms(c["submitted_at"].as_str().unwrap()),
            decided: c["decided_at"].as_str().map_or(i64::MAX, ms),
            manual: c["review_mode"] == "manual",
            stream: 0,
        })
        .collect();
    claims.sort_by_key(|c| c.submitted);
    let auto = claims.iter().filter(|c| !c.manual).count();
    let params = Params {
        start: jiff::civil::Date::new(2026, 3, 3).unwrap(),
        views_per_business_day: 0.0,
        end_ms: Some(3 * 3_600_000 + 2 * 60_000),
        ..Params::default()
    };
    let days = Days::new(params.start, 3);
    assert!(params.horizon_ms() < DAY);
    (claims, params, days, auto)
}

#[tokio::test]
async fn polling_and_long_polling_cost_what_the_simulator_says() {
    let (insurer, [polls, _, sweeps]) = real_run(Strategy::Poll, 8).await;
    let (claims, params, days, auto) = as_workload(&insurer);
    let simulated = sim::run(sim::Strategy::Poll, &params, &claims, &days);
    assert_eq!(
        sweeps,
        simulated.count(Kind::Sweep),
        "the 03:00 sweep asks about the same pending claims"
    );
    println!(
        "poll: real {polls} polls and {sweeps} sweep checks; simulated {} and {} ({auto} of {} claims automatic)",
        simulated.count(Kind::Poll),
        simulated.count(Kind::Sweep),
        claims.len()
    );
    let difference = polls.abs_diff(simulated.count(Kind::Poll));
    assert!(
        difference as usize <= auto,
        "polls: real {polls}, simulated {}, {auto} automatic claims",
        simulated.count(Kind::Poll)
    );
    assert!(
        sweeps > 0 || insurer.iter().all(|c| c["review_mode"] == "auto"),
        "the sweep ran"
    );

    let (insurer, [_, long_polls, sweeps]) = real_run(Strategy::LongPoll, 8).await;
    let (claims, params, days, _) = as_workload(&insurer);
    let simulated = sim::run(sim::Strategy::LongPoll, &params, &claims, &days);
    assert_eq!(long_polls, simulated.count(Kind::LongPoll));
    assert_eq!(sweeps, simulated.count(Kind::Sweep));
}
