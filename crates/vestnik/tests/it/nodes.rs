//! Several `vestnik serve` nodes on one PostgreSQL database, as real processes: 20,000 messages
//! published across three nodes while one of them is killed with SIGKILL and later restarted.
//! Every accepted message arrives at least once; duplicates are counted and reported.

use crate::process::{Deliveries, TOKEN, free_port, receiver, start_server, wait_healthy};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MESSAGES: usize = 20_000;
const PUBLISHERS: usize = 16;
/// Leases short enough that the killed node's tasks come back within the test, long enough that a
/// busy node works through what it holds before its leases run out (leases are not renewed yet).
const LEASE_SECONDS: &str = "20";

/// A fresh database for the run, dropped at the end.
struct Database {
    admin: String,
    name: String,
}

/// Runs one statement with psql (CREATE and DROP DATABASE cannot share a transaction).
fn psql(admin: &str, sql: &str) -> bool {
    std::process::Command::new("psql")
        .args([admin, "-q", "-c", sql])
        .status()
        .is_ok_and(|s| s.success())
}

impl Database {
    fn create() -> Self {
        let admin = std::env::var("VESTNIK_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("vestnik_nodes_{}", std::process::id());
        let created = psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"))
            && psql(&admin, &format!("CREATE DATABASE {name}"));
        assert!(
            created,
            "PostgreSQL is needed at {admin} for the node test (psql)"
        );
        Self { admin, name }
    }

    fn url(&self) -> String {
        let base = self
            .admin
            .rsplit_once('/')
            .map_or(self.admin.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_loses_nothing() {
    let database = Database::create();
    let url = database.url();
    let deliveries = Arc::new(Mutex::new(Deliveries::default()));
    let hook = receiver(Arc::clone(&deliveries), Duration::ZERO).await;
    let ports = [free_port(), free_port(), free_port()];
    let flags = ["--lease-seconds", LEASE_SECONDS];
    let mut nodes: Vec<_> = ports
        .iter()
        .map(|port| start_server(*port, &url, &flags))
        .collect();
    let client = reqwest::Client::new();
    for port in ports {
        wait_healthy(&client, &format!("http://127.0.0.1:{port}")).await;
    }
    let api = |port: u16, path: &str| format!("http://127.0.0.1:{port}/api/v1{path}");
    let created = client
        .post(api(ports[0], "/app"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "n", "uid": "n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created = client
        .post(api(ports[0], "/app/n/endpoint"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"url": hook}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // Publishers spread messages over the three nodes; a node that does not answer is skipped.
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let mut publishers = Vec::new();
    for publisher in 0..PUBLISHERS {
        let (client, accepted, next) = (client.clone(), Arc::clone(&accepted), Arc::clone(&next));
        publishers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= MESSAGES {
                    return;
                }
                let body =
                    serde_json::json!({"eventType": "claim.status_changed", "payload": {"n": n}});
                let deadline = Instant::now() + Duration::from_secs(60);
                for attempt in 0.. {
                    let port = ports[(n + publisher + attempt) % 3];
                    let sent = client
                        .post(format!("http://127.0.0.1:{port}/api/v1/app/n/msg"))
                        .bearer_auth(TOKEN)
                        .json(&body)
                        .send()
                        .await;
                    if let Ok(response) = sent
                        && response.status() == 202
                        && let Ok(out) = response.json::<serde_json::Value>().await
                    {
                        accepted
                            .lock()
                            .unwrap()
                            .push(out["id"].as_str().unwrap().to_owned());
                        break;
                    }
                    assert!(Instant::now() < deadline, "no node accepted message {n}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while deliveries.lock().unwrap().unique.len() < MESSAGES * 3 / 10 {
        assert!(Instant::now() < deadline, "deliveries never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nodes[1].kill().unwrap(); // SIGKILL, mid-run
    nodes[1].wait().unwrap();
    let delivered_at_kill = deliveries.lock().unwrap().unique.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    nodes[1] = start_server(ports[1], &url, &flags);
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), MESSAGES);
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
    for node in &mut nodes {
        let _ = node.kill();
        let _ = node.wait();
    }
    let d = deliveries.lock().unwrap();
    println!(
        "3 nodes on PostgreSQL: accepted {}, delivered {} unique ({} when node 2 was killed), {} POSTs, {} duplicates",
        accepted.len(),
        d.unique.len(),
        delivered_at_kill,
        d.total,
        d.total - d.unique.len()
    );
    assert_eq!(missing, 0, "{missing} accepted messages never arrived");
}
