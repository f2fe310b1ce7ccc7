//! Durability of the inbound gateway with real processes: 1,000 events accepted while their
//! destination is down survive `kill -9` of the gateway and reach the destination after the
//! restart, each applied exactly once by the destination's idempotent ledger.

use crate::process::{TOKEN, free_port, start_server, wait_healthy};
use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vestnik_signature::Secret;

const EVENTS: usize = 1_000;
const PUBLISHERS: usize = 8;
/// Retries often enough to notice the destination soon after it comes back, and long enough
/// (about 30 s) to outlive the kill and the restart.
const SCHEDULE: &str = "200ms,500ms,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s";

/// The destination's ledger: how many times each event (by its own id in the body) arrived.
type Ledger = Arc<Mutex<HashMap<u64, u32>>>;

async fn start_destination(port: u16, ledger: Ledger) {
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let ledger = Arc::clone(&ledger);
        async move {
            let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if let Some(n) = event["event"].as_u64() {
                *ledger.lock().unwrap().entry(n).or_default() += 1;
            }
            "applied"
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_inbound_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("inbound.db").display());
    let (port, destination_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_server(port, &database, &["--retry-schedule", SCHEDULE]);
    wait_healthy(&client, &base).await;

    let source: serde_json::Value = client
        .post(format!("{base}/api/v1/source"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "name": "Insurer", "verification": {"type": "standard-webhooks"},
            "destinations": [{"url": format!("http://127.0.0.1:{destination_port}/ledger")}],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let source_id = source["id"]
        .as_str()
        .expect("the source was created")
        .to_owned();
    let secret: serde_json::Value = client
        .get(format!("{base}/api/v1/source/{source_id}/secret"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = Secret::parse(secret["key"].as_str().unwrap()).unwrap();

    // The destination is down: every event is accepted and waits in the retry schedule.
    let ingest = format!("{base}/in/{source_id}");
    let mut publishers = Vec::new();
    for publisher in 0..PUBLISHERS {
        let (client, ingest, secret) = (client.clone(), ingest.clone(), secret.clone());
        publishers.push(tokio::spawn(async move {
            for n in (publisher..EVENTS).step_by(PUBLISHERS) {
                let body = format!(r#"{{"event":{n},"status":"approved"}}"#);
                let (id, ts) = (format!("evt-{n}"), vestnik_delivery::now_ms() / 1000);
                let response = client
                    .post(&ingest)
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", secret.sign(&id, ts, body.as_bytes()))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "event {n} must be accepted");
            }
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();

    let mut server = start_server(port, &database, &["--retry-schedule", SCHEDULE]);
    wait_healthy(&client, &base).await;
    let ledger = Ledger::default();
    start_destination(destination_port, Arc::clone(&ledger)).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while ledger.lock().unwrap().len() < EVENTS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let ledger = ledger.lock().unwrap();
    let deliveries: u32 = ledger.values().sum();
    println!(
        "accepted {EVENTS}, applied {} distinct, {deliveries} POSTs ({} redelivered and ignored by the ledger)",
        ledger.len(),
        deliveries as usize - ledger.len()
    );
    let missing: Vec<usize> = (0..EVENTS)
        .filter(|n| !ledger.contains_key(&(*n as u64)))
        .collect();
    assert!(missing.is_empty(), "events never handed on: {missing:?}");
}
