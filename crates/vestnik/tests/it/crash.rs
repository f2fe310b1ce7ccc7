//! Crash test: `kill -9` a real `vestnik serve` while it delivers a few thousand messages to a
//! slow receiver, restart it on the same SQLite file, and check that every accepted message
//! arrives at least once.

use crate::process::{Deliveries, TOKEN, free_port, receiver, start_server, wait_healthy};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MESSAGES: usize = 3_000;
const PUBLISHERS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_message_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("crash.db").display());
    let deliveries = Arc::new(Mutex::new(Deliveries::default()));
    let receiver = receiver(Arc::clone(&deliveries), Duration::from_millis(5)).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_server(port, &database, &["--endpoint-concurrency", "4"]);
    wait_healthy(&client, &base).await;

    let api = |path: &str| format!("{base}/api/v1{path}");
    let status = client
        .post(api("/app"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "crash", "uid": "crash"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201);
    let status = client
        .post(api("/app/crash/endpoint"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"url": receiver}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201);

    // Publish from 16 clients; only messages answered 202 count as accepted.
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let mut publishers = Vec::new();
    for publisher in 0..PUBLISHERS {
        let (client, url, accepted) =
            (client.clone(), api("/app/crash/msg"), Arc::clone(&accepted));
        publishers.push(tokio::spawn(async move {
            for n in (publisher..MESSAGES).step_by(PUBLISHERS) {
                let body =
                    serde_json::json!({"eventType": "claim.status_changed", "payload": {"n": n}});
                // While the server is down (killed, restarting) keep trying the same message.
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    match client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .json(&body)
                        .send()
                        .await
                    {
                        Ok(response) if response.status() == 202 => {
                            if let Ok(out) = response.json::<serde_json::Value>().await {
                                accepted
                                    .lock()
                                    .unwrap()
                                    .push(out["id"].as_str().unwrap().to_owned());
                            }
                            break;
                        }
                        _ => {
                            assert!(Instant::now() < deadline, "the server never came back");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }

    // Kill -9 once deliveries are well under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while deliveries.lock().unwrap().unique.len() < MESSAGES / 10 {
        assert!(Instant::now() < deadline, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let delivered_before_kill = deliveries.lock().unwrap().unique.len();
    let accepted_before_kill = accepted.lock().unwrap().len();
    assert!(
        accepted_before_kill > delivered_before_kill,
        "the kill must come mid-flight"
    );

    let mut server = start_server(port, &database, &["--endpoint-concurrency", "4"]);
    wait_healthy(&client, &base).await;
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    let missing = loop {
        let missing = {
            let d = deliveries.lock().unwrap();
            accepted.iter().filter(|id| !d.unique.contains(*id)).count()
        };
        if missing == 0 || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    server.kill().unwrap();
    server.wait().unwrap();
    let d = deliveries.lock().unwrap();
    println!(
        "accepted {} ({} before the kill), delivered before kill {}, unique delivered {}, total POSTs {} (duplicates {})",
        accepted.len(),
        accepted_before_kill,
        delivered_before_kill,
        d.unique.len(),
        d.total,
        d.total - d.unique.len()
    );
    assert_eq!(
        missing, 0,
        "{missing} accepted messages were never delivered"
    );
}
