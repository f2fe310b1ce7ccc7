//! Running `vestnik serve` as a real process in tests: a free port, the child process, and
//! waiting until it answers.

use std::process::{Child, Command, Stdio};
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
