//! Claims submitted at the clinic reach a final status there equal to the insurer's; by
//! webhook the clinic learns within well under a second (real time); duplicate and stale
//! webhooks change nothing; with the receiver down nothing is lost; polling costs what the
//! brief's rules predict.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use vestnik_claims::payload::PayloadFormat;
use vestnik_clinic::client::Reason;
use vestnik_clinic::strategy::Strategy;
use vestnik_demo::{DemoSettings, Listeners, RunningDemo};

/// 60 simulated days per real second: a 20-business-day review ends within ~0.7 s.
const FAST: f64 = 60.0 * 86_400.0;

async fn demo(
    strategy: Strategy,
    scale: f64,
    format: PayloadFormat,
    dir: &tempfile::TempDir,
) -> RunningDemo {
    demo_at(strategy, scale, format, dir, None).await
}

pub async fn demo_at(
    strategy: Strategy,
    scale: f64,
    format: PayloadFormat,
    dir: &tempfile::TempDir,
    clock_start: Option<jiff::Timestamp>,
) -> RunningDemo {
    let settings = DemoSettings {
        strategy,
        time_scale: scale,
        claims_per_minute: 0.0,
        seed: 7,
        payload_format: format,
        data_dir: dir.path().to_owned(),
        retry_schedule: vestnik_core::RetrySchedule::new(
            vec![Duration::from_millis(100); 20],
            0.0,
            Duration::from_secs(1),
        ),
        clock_start,
    };
    vestnik_demo::start(
        settings,
        Listeners::bind("127.0.0.1", [0, 0, 0]).await.unwrap(),
    )
    .await
    .unwrap()
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// The `data` list of a JSON list answer.
async fn data(url: &str) -> Vec<Value> {
    get(url).await["data"].as_array().unwrap().clone()
}

async fn submit(demo: &RunningDemo, n: usize) {
    let client = reqwest::Client::new();
    for _ in 0..n {
        let response = client
            .post(format!("{}/api/claims", demo.clinic_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
}

/// Waits until every claim is final at the clinic; returns the clinic's and the insurer's claims.
async fn all_final(demo: &RunningDemo, within: Duration) -> (Vec<Value>, Vec<Value>) {
    let deadline = Instant::now() + within;
    loop {
        let clinic = data(&format!("{}/api/claims", demo.clinic_url)).await;
        if clinic.iter().all(|c| {
            matches!(
                c["status"].as_str(),
                Some("approved" | "partial" | "denied")
            )
        }) {
            let insurer = data(&format!("{}/claims", demo.insurer_url)).await;
            return (clinic, insurer);
        }
        let pending: Vec<_> = clinic
            .iter()
            .filter(|c| c["learned_at"].is_null())
            .map(|c| c["clinic_claim_id"].clone())
            .collect();
        assert!(
            Instant::now() < deadline,
            "not final at the clinic: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn same_outcomes(clinic: &[Value], insurer: &[Value]) {
    assert_eq!(clinic.len(), insurer.len());
    for claim in clinic {
        let at_insurer = insurer
            .iter()
            .find(|i| i["clinic_claim_id"] == claim["clinic_claim_id"])
            .unwrap();
        assert_eq!(
            claim["status"], at_insurer["status"],
            "{}",
            claim["clinic_claim_id"]
        );
        assert_eq!(claim["version"], at_insurer["version"]);
        assert_eq!(claim["amount_approved"], at_insurer["amount_approved"]);
    }
}

#[tokio::test]
async fn by_webhook_every_decision_arrives_at_once_in_every_payload_format() {
    for format in PayloadFormat::ALL {
        let dir = tempfile::tempdir().unwrap();
        let demo = demo(Strategy::Webhook, FAST, format, &dir).await;
        submit(&demo, 12).await;
        let (clinic, insurer) = all_final(&demo, Duration::from_secs(30)).await;
        same_outcomes(&clinic, &insurer);
        for claim in &clinic {
            // At 60 simulated days per second a webhook's few milliseconds are hours of
            // simulated time, so a manual decision made just before a 28- or 40-day timer check
            // may be learned by the timer first; everything else arrives by webhook.
            let via = claim["learned_via"].as_str().unwrap();
            if claim["review_mode"] == "auto" {
                assert_eq!(via, "webhook", "{format:?}: {claim}");
            } else {
                assert!(matches!(via, "webhook" | "timer"), "{format:?}: {claim}");
            }
            let lag = claim["lag_real_ms"].as_i64().unwrap();
            assert!(
                (0..1_000).contains(&lag),
                "{format:?}: learned {lag} ms (real) after the decision"
            );
        }
        let by_webhook = clinic
            .iter()
            .filter(|c| c["learned_via"] == "webhook")
            .count();
        assert!(
            by_webhook * 4 >= clinic.len() * 3,
            "{format:?}: {by_webhook} of {} by webhook",
            clinic.len()
        );
        // Webhooks cost the insurer no status requests; only the safety-net timer may ask about
        // a claim still in review 28 days after its last check.
        let requests = &get(&format!("{}/api/stats", demo.clinic_url)).await["requests"];
        for reason in ["poll", "long-poll", "sweep", "view"] {
            assert_eq!(requests[reason], 0, "{format:?}: {requests}");
        }
        let manual = clinic
            .iter()
            .filter(|c| c["review_mode"] == "manual")
            .count() as u64;
        assert!(requests["timer"].as_u64().unwrap() <= manual, "{requests}");
        demo.stop().await;
    }
}

#[tokio::test]
async fn duplicate_and_stale_webhooks_leave_the_claim_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(Strategy::Webhook, FAST, PayloadFormat::Json, &dir).await;
    submit(&demo, 1).await;
    let (clinic, _) = all_final(&demo, Duration::from_secs(30)).await;
    let before = clinic[0].clone();
    // Replay the claim's first event (version 1, in review) as a new webhook, and resend the
    // final one: neither may change what the clinic knows.
    let client = reqwest::Client::new();
    let v1 = format!(
        "{}/api/v1/app/{}",
        demo.gateway_url,
        vestnik_demo::CLINIC_ID
    );
    let messages: Value = client
        .get(format!("{v1}/msg"))
        .bearer_auth(&demo.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let messages = messages["data"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "in review, then decided");
    let stale = messages
        .iter()
        .find(|m| m["payload"]["data"]["version"] == 1)
        .unwrap();
    let final_msg = messages
        .iter()
        .find(|m| m["payload"]["data"]["version"] == 2)
        .unwrap();
    let republished = client
        .post(format!("{v1}/msg"))
        .bearer_auth(&demo.token)
        .json(&json!({"eventType": "claim.status_changed", "payload": stale["payload"], "channels": ["json"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(republished.status(), 202);
    let resent = client
        .post(format!(
            "{v1}/msg/{}/endpoint/mis/resend",
            final_msg["id"].as_str().unwrap()
        ))
        .bearer_auth(&demo.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resent.status(), 202);
    // Both reach the clinic's handler (the gateway's log shows them delivered)…
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log: Value = client
            .get(format!(
                "{}/api/v1/source/{}/request?status=accepted",
                demo.gateway_url, demo.source_id
            ))
            .bearer_auth(&demo.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let handled = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["handling"] == "delivered")
            .count();
        let duplicates: Value = client
            .get(format!(
                "{}/api/v1/source/{}/request?status=duplicate",
                demo.gateway_url, demo.source_id
            ))
            .bearer_auth(&demo.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if handled == 3 && duplicates["data"].as_array().unwrap().len() == 1 {
            break; // two originals and the stale one handled; the resend deduplicated at the gateway
        }
        assert!(Instant::now() < deadline, "log: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // …and change nothing.
    let after = get(&format!("{}/api/claims", demo.clinic_url)).await["data"][0].clone();
    assert_eq!(
        (&after["status"], &after["version"], &after["learned_at"]),
        (&before["status"], &before["version"], &before["learned_at"])
    );
    demo.stop().await;
}

#[tokio::test]
async fn with_the_receiver_down_no_decision_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(Strategy::Webhook, FAST, PayloadFormat::FhirR5, &dir).await;
    demo.clinic.clinic.set_receiver_up(false);
    submit(&demo, 10).await;
    // The insurer decides everything while the clinic hears nothing.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending = get(&format!("{}/claims?status=in_review", demo.insurer_url)).await;
        if pending["data"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let clinic = data(&format!("{}/api/claims", demo.clinic_url)).await;
    // Nothing arrives by webhook while the receiver is down (the 28-day timer may still learn
    // a decision on its own: that is what it is for).
    assert!(
        clinic.iter().all(|c| c["learned_via"] != "webhook"),
        "no webhook applied while the receiver is down: {clinic:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    demo.clinic.clinic.set_receiver_up(true);
    let (clinic, insurer) = all_final(&demo, Duration::from_secs(30)).await;
    same_outcomes(&clinic, &insurer);
    let via: Vec<&str> = clinic
        .iter()
        .map(|c| c["learned_via"].as_str().unwrap())
        .collect();
    assert!(
        via.iter().all(|v| matches!(*v, "webhook" | "timer")),
        "{via:?}"
    );
    demo.stop().await;
}

#[tokio::test]
async fn polling_costs_what_the_brief_predicts() {
    // Real time, so that the 2 s polls and the decisions interleave as they would in production.
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(Strategy::Poll, 1.0, PayloadFormat::Json, &dir).await;
    submit(&demo, 6).await;
    // Automatic claims are decided within 5 s: wait for their polls to stop; manual ones keep
    // polling to the end of the 30 s window.
    tokio::time::sleep(Duration::from_secs(32)).await;
    let clinic = data(&format!("{}/api/claims", demo.clinic_url)).await;
    let insurer = data(&format!("{}/claims", demo.insurer_url)).await;
    let mut expected_min = 0;
    let mut expected_max = 0;
    for claim in &insurer {
        match claim["review_mode"].as_str().unwrap() {
            "manual" => {
                expected_min += 16;
                expected_max += 16;
            }
            _ => {
                // Decided t seconds after submission: polls at 0, 2, … until one sees it.
                let submitted: jiff::Timestamp =
                    claim["submitted_at"].as_str().unwrap().parse().unwrap();
                let decided: jiff::Timestamp =
                    claim["decided_at"].as_str().unwrap().parse().unwrap();
                let t = decided.duration_since(submitted).as_secs_f64();
                let polls = (t / 2.0).ceil() as u64 + 1;
                expected_min += polls - 1; // a poll landing just after the decision
                expected_max += polls;
            }
        }
    }
    let polls = demo.clinic.clinic.insurer.counters.get(Reason::Poll);
    assert!(
        (expected_min..=expected_max).contains(&polls),
        "{polls} polls, expected {expected_min}..={expected_max}"
    );
    for claim in clinic.iter().filter(|c| c["review_mode"] == "auto") {
        assert_eq!(claim["learned_via"], "poll");
    }
    demo.stop().await;
}

#[tokio::test]
async fn a_long_poll_per_claim_learns_the_automatic_decisions() {
    // Ten simulated seconds per real second: a 30 s long-poll is held 3 s, automatic decisions
    // (0.1–5 s) come within it, manual reviews do not.
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(Strategy::LongPoll, 10.0, PayloadFormat::Json, &dir).await;
    submit(&demo, 6).await;
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    let clinic = data(&format!("{}/api/claims", demo.clinic_url)).await;
    assert_eq!(
        demo.clinic.clinic.insurer.counters.get(Reason::LongPoll),
        6,
        "exactly one long-poll per claim"
    );
    for claim in &clinic {
        match claim["review_mode"].as_str().unwrap() {
            "auto" => assert_eq!(
                (
                    claim["learned_via"].as_str(),
                    claim["status"] != "in_review"
                ),
                (Some("long-poll"), true),
                "{claim}"
            ),
            _ => assert_eq!(
                claim["status"], "in_review",
                "a manual review outlasts the long-poll; the nightly sweep will learn it"
            ),
        }
    }
    assert_eq!(demo.clinic.clinic.insurer.counters.get(Reason::Poll), 0);
    demo.stop().await;
}

#[tokio::test]
async fn on_view_asks_only_when_a_pending_claim_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(Strategy::OnView, FAST, PayloadFormat::Json, &dir).await;
    submit(&demo, 8).await;
    let (clinic, insurer) = all_final(&demo, Duration::from_secs(30)).await;
    same_outcomes(&clinic, &insurer);
    let views: u64 = clinic.iter().map(|c| c["views"].as_u64().unwrap()).sum();
    let counters = &demo.clinic.clinic.insurer.counters;
    let view_requests = counters.get(Reason::View);
    assert!(
        view_requests <= views,
        "{view_requests} requests for {views} views"
    );
    assert!(
        clinic
            .iter()
            .all(|c| matches!(c["learned_via"].as_str(), Some("view" | "timer"))),
        "{clinic:?}"
    );
    assert_eq!(
        counters.get(Reason::Poll) + counters.get(Reason::LongPoll) + counters.get(Reason::Sweep),
        0
    );
    demo.stop().await;
}
