//! Several `vestnik serve` nodes on one PostgreSQL database (and RabbitMQ), as real processes:
//! 20,000 messages published across three nodes while one of them is killed with SIGKILL and
//! later restarted, or while the broker is stopped and started again. Every accepted message
//! arrives at least once; duplicates are counted and reported. And a node whose database refuses
//! connections answers 503 and heals by itself.

use crate::process::{Deliveries, TOKEN, free_port, receiver, start_server, wait_healthy};
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MESSAGES: usize = 20_000;
const PUBLISHERS: usize = 16;
/// Leases short enough that the killed node's tasks come back within the test, long enough that a
/// busy node works through what it holds before its leases run out (leases are not renewed).
const LEASE_SECONDS: &str = "20";

/// Tests that use the broker run one at a time: one of them stops it.
static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    fn create(tag: &str) -> Self {
        let admin = std::env::var("VESTNIK_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("vestnik_{tag}_{}", std::process::id());
        let created = psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"))
            && psql(&admin, &format!("CREATE DATABASE {name}"));
        assert!(
            created,
            "PostgreSQL is needed at {admin} for the node tests (psql); .ci/run starts it"
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

fn rabbitmqctl(args: &[&str]) -> bool {
    std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A queue of the run's own on the local RabbitMQ, deleted at the end.
struct BrokerQueue {
    url: String,
    name: String,
}

impl BrokerQueue {
    fn create(tag: &str) -> Self {
        let url = std::env::var("VESTNIK_TEST_AMQP")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        let reachable = std::net::TcpStream::connect_timeout(
            &"127.0.0.1:5672".parse().unwrap(),
            Duration::from_secs(2),
        )
        .is_ok();
        assert!(
            reachable,
            "RabbitMQ is needed on 127.0.0.1:5672 for the queue tests; .ci/run starts it"
        );
        Self {
            url,
            name: format!("vestnik.test.{tag}.{}", std::process::id()),
        }
    }

    fn flags(&self) -> Vec<String> {
        vec![
            "--queue".into(),
            self.url.clone(),
            "--queue-name".into(),
            self.name.clone(),
        ]
    }
}

impl Drop for BrokerQueue {
    fn drop(&mut self) {
        rabbitmqctl(&["delete_queue", &self.name]);
    }
}

/// Stops the broker's application (connections drop, durable queues stay on disk) and starts it
/// again when dropped, even if the test fails.
struct BrokerStopped;

impl BrokerStopped {
    fn now() -> Self {
        assert!(
            rabbitmqctl(&["stop_app"]),
            "rabbitmqctl stop_app failed (the broker test runs as root on CI)"
        );
        Self
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    }
}

/// Nodes of one deployment: their ports, processes and flags (by index).
struct Nodes {
    database: String,
    ports: Vec<u16>,
    flags: Vec<Vec<String>>,
    children: Vec<Child>,
}

impl Nodes {
    fn start(database: &str, flags: Vec<Vec<String>>) -> Self {
        let ports: Vec<u16> = flags.iter().map(|_| free_port()).collect();
        let children = ports
            .iter()
            .zip(&flags)
            .map(|(port, flags)| Self::spawn(database, *port, flags))
            .collect();
        Self {
            database: database.to_owned(),
            ports,
            flags,
            children,
        }
    }

    fn spawn(database: &str, port: u16, flags: &[String]) -> Child {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        start_server(port, database, &flags)
    }

    fn kill(&mut self, node: usize) {
        self.children[node].kill().unwrap(); // SIGKILL
        self.children[node].wait().unwrap();
    }

    fn restart(&mut self, node: usize) {
        self.children[node] = Self::spawn(&self.database, self.ports[node], &self.flags[node]);
    }

    fn base(&self, node: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[node])
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The application `n` with one endpoint: the counting receiver.
async fn configure(client: &reqwest::Client, api_base: &str, hook: &str) {
    for (path, body) in [
        ("/app", serde_json::json!({"name": "n", "uid": "n"})),
        ("/app/n/endpoint", serde_json::json!({"url": hook})),
    ] {
        let created = client
            .post(format!("{api_base}/api/v1{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{path}");
    }
}

/// Publishers spread `MESSAGES` messages over the API nodes; a node that does not answer is
/// skipped and the message tried on the next. Returns the publishers and the accepted ids.
fn publish(
    client: &reqwest::Client,
    bases: Vec<String>,
) -> (Vec<tokio::task::JoinHandle<()>>, Arc<Mutex<Vec<String>>>) {
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let bases = Arc::new(bases);
    let publishers = (0..PUBLISHERS)
        .map(|publisher| {
            let (client, accepted, next, bases) = (
                client.clone(),
                Arc::clone(&accepted),
                Arc::clone(&next),
                Arc::clone(&bases),
            );
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= MESSAGES {
                        return;
                    }
                    let body = serde_json::json!({"eventType": "claim.status_changed", "payload": {"n": n}});
                    let deadline = Instant::now() + Duration::from_secs(60);
                    for attempt in 0.. {
                        let base = &bases[(n + publisher + attempt) % bases.len()];
                        let sent = client
                            .post(format!("{base}/api/v1/app/n/msg"))
                            .bearer_auth(TOKEN)
                            .json(&body)
                            .send()
                            .await;
                        if let Ok(response) = sent
                            && response.status() == 202
                            && let Ok(out) = response.json::<serde_json::Value>().await
                        {
                            let id = out["id"].as_str().unwrap().to_owned();
                            accepted.lock().unwrap().push(id);
                            break;
                        }
                        assert!(Instant::now() < deadline, "no node accepted message {n}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    (publishers, accepted)
}

async fn wait_for_unique(deliveries: &Mutex<Deliveries>, count: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while deliveries.lock().unwrap().unique.len() < count {
        assert!(Instant::now() < deadline, "deliveries never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every accepted message has arrived (or `within` ends); returns how many did not.
async fn missing_after(
    deliveries: &Mutex<Deliveries>,
    accepted: &[String],
    within: Duration,
) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let missing = {
            let d = deliveries.lock().unwrap();
            accepted.iter().filter(|id| !d.unique.contains(*id)).count()
        };
        if missing == 0 || Instant::now() > deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Three `--role all` nodes; node 2 is killed once 30 % has arrived and restarted 2 s later.
async fn kill_one_of_three(tag: &str, extra: Vec<String>) {
    let database = Database::create(tag);
    let deliveries = Arc::new(Mutex::new(Deliveries::default()));
    let hook = receiver(Arc::clone(&deliveries), Duration::ZERO).await;
    let mut node_flags = flags(&["--lease-seconds", LEASE_SECONDS]);
    node_flags.extend(extra);
    let mut nodes = Nodes::start(&database.url(), vec![node_flags; 3]);
    let client = reqwest::Client::new();
    for node in 0..3 {
        wait_healthy(&client, &nodes.base(node)).await;
    }
    configure(&client, &nodes.base(0), &hook).await;
    let (publishers, accepted) = publish(&client, (0..3).map(|n| nodes.base(n)).collect());
    wait_for_unique(&deliveries, MESSAGES * 3 / 10, Duration::from_secs(120)).await;
    nodes.kill(1);
    let delivered_at_kill = deliveries.lock().unwrap().unique.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    nodes.restart(1);
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), MESSAGES);
    let missing = missing_after(&deliveries, &accepted, Duration::from_secs(120)).await;
    drop(nodes);
    let d = deliveries.lock().unwrap();
    println!(
        "{tag}: 3 nodes, accepted {}, delivered {} unique ({} when node 2 was killed), {} POSTs, {} duplicates",
        accepted.len(),
        d.unique.len(),
        delivered_at_kill,
        d.total,
        d.total - d.unique.len()
    );
    assert_eq!(missing, 0, "{missing} accepted messages never arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_loses_nothing() {
    kill_one_of_three("nodes_pg", Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_loses_nothing_with_rabbitmq() {
    let _broker = BROKER.lock().await;
    let queue = BrokerQueue::create("kill");
    kill_one_of_three("nodes_amqp", queue.flags()).await;
}

async fn readiness(client: &reqwest::Client, base: &str) -> (u16, serde_json::Value) {
    let response = client
        .get(format!("{base}/api/v1/health/ready"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls readiness until `pred` holds (the broker link is noticed within a second or two).
async fn wait_readiness(client: &reqwest::Client, base: &str, status: u16, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = readiness(client, base).await;
        if code == status && body["status"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{base} readiness stayed {code} {body}, expected {status} {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One API node and two workers; RabbitMQ's application is stopped once 20 % has arrived and
/// started again 5 s later. The API keeps accepting throughout; everything arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_delays_delivery_but_loses_nothing() {
    let _broker = BROKER.lock().await;
    let database = Database::create("broker");
    let queue = BrokerQueue::create("outage");
    let deliveries = Arc::new(Mutex::new(Deliveries::default()));
    let hook = receiver(Arc::clone(&deliveries), Duration::ZERO).await;
    let role = |role: &str| {
        let mut f = flags(&["--lease-seconds", LEASE_SECONDS, "--role", role]);
        f.extend(queue.flags());
        f
    };
    let nodes = Nodes::start(
        &database.url(),
        vec![role("api"), role("worker"), role("worker")],
    );
    let client = reqwest::Client::new();
    for node in 0..3 {
        wait_healthy(&client, &nodes.base(node)).await;
    }
    let (api, worker) = (nodes.base(0), nodes.base(1));
    wait_readiness(&client, &api, 200, "ready").await;
    wait_readiness(&client, &worker, 200, "ready").await;
    let not_found = client
        .get(format!("{worker}/api/v1/app"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(not_found.status(), 404, "a worker serves no API");
    configure(&client, &api, &hook).await;

    let (publishers, accepted) = publish(&client, vec![api.clone()]);
    wait_for_unique(&deliveries, MESSAGES / 5, Duration::from_secs(120)).await;
    let stopped = BrokerStopped::now();
    let accepted_at_stop = accepted.lock().unwrap().len();
    wait_readiness(&client, &api, 200, "degraded").await;
    wait_readiness(&client, &worker, 503, "unavailable").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let accepted_while_down = accepted.lock().unwrap().len() - accepted_at_stop;
    let delivered_while_down = deliveries.lock().unwrap().unique.len();
    drop(stopped); // start_app
    wait_readiness(&client, &worker, 200, "ready").await;
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), MESSAGES);
    let missing = missing_after(&deliveries, &accepted, Duration::from_secs(180)).await;
    drop(nodes);
    let d = deliveries.lock().unwrap();
    println!(
        "broker outage: accepted {} ({accepted_while_down} while RabbitMQ was stopped), delivered {} unique ({delivered_while_down} by the end of the outage), {} POSTs, {} duplicates",
        accepted.len(),
        d.unique.len(),
        d.total,
        d.total - d.unique.len()
    );
    assert!(
        accepted_while_down > 0,
        "the API accepted nothing while the broker was down"
    );
    assert_eq!(missing, 0, "{missing} accepted messages never arrived");
}

/// The database refuses every connection for a while under a running node: the API answers 503
/// `storage_unavailable` (nothing stored, retry), readiness says unavailable, and both recover
/// on their own when the database is back; a message accepted afterwards is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_and_heals_by_itself() {
    let database = Database::create("dbdown");
    let deliveries = Arc::new(Mutex::new(Deliveries::default()));
    let hook = receiver(Arc::clone(&deliveries), Duration::ZERO).await;
    let nodes = Nodes::start(&database.url(), vec![Vec::new()]);
    let client = reqwest::Client::new();
    let base = nodes.base(0);
    wait_healthy(&client, &base).await;
    configure(&client, &base, &hook).await;
    let send = || {
        client
            .post(format!("{base}/api/v1/app/n/msg"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"eventType": "x", "payload": {}}))
            .send()
    };

    let name = &database.name;
    assert!(psql(
        &database.admin,
        &format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
    ));
    let refused = send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "2");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "storage_unavailable", "{body}");
    let (code, ready) = readiness(&client, &base).await;
    assert_eq!(
        (code, &ready["status"]),
        (503, &serde_json::json!("unavailable")),
        "{ready}"
    );
    assert_eq!(ready["database"]["up"], false);

    assert!(psql(
        &database.admin,
        &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    ));
    wait_readiness(&client, &base, 200, "ready").await;
    let accepted = send().await.unwrap();
    assert_eq!(accepted.status(), 202);
    let id = accepted.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        missing_after(&deliveries, &[id], Duration::from_secs(30)).await,
        0,
        "the message accepted after the outage was delivered"
    );
}
