//! Running `vestnik serve` as a real process in tests: a free port, the child process, waiting
//! until it answers, and a receiver that counts what it delivers.

use axum::http::HeaderMap;
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "crash-token";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `vestnik serve` on `port` over `database`, allowed to deliver to loopback, with `extra` flags.
pub fn start_server(port: u16, database: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vestnik"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            database,
        ])
        .args(["--allow-target", "127.0.0.0/8"])
        .args(extra)
        .env("VESTNIK_API_TOKEN", TOKEN)
        .env("VESTNIK_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the vestnik binary starts")
}

pub async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "vestnik did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a receiver has seen: distinct `webhook-id`s, and every POST.
#[derive(Default)]
pub struct Deliveries {
    pub unique: HashSet<String>,
    pub total: usize,
}

/// An endpoint that answers each delivery 200 after `delay` and records it; returns its URL.
pub async fn receiver(deliveries: Arc<Mutex<Deliveries>>, delay: Duration) -> String {
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let deliveries = Arc::clone(&deliveries);
        async move {
            tokio::time::sleep(delay).await;
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let mut d = deliveries.lock().unwrap();
            d.total += 1;
            d.unique.insert(id);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
