//! Test harness: `spawn_app` starts the real server on port 0 over a fresh SQLite file (or a
//! fresh PostgreSQL schema, and with `VESTNIK_TEST_QUEUE` a fresh RabbitMQ queue), and
//! `TestReceiver` is a real HTTP endpoint whose answers a test scripts.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vestnik_core::RetrySchedule;
use vestnik_server::{RunningServer, ServerSettings};
use vestnik_store::sqlite::SqliteStore;

pub const TOKEN: &str = "test-token";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    server: Option<RunningServer>,
    _storage: Storage,
    _queue: Option<TestQueue>,
}

/// A test's own RabbitMQ queue, deleted when the test ends.
struct TestQueue(vestnik_queue::QueueSettings);

impl Drop for TestQueue {
    fn drop(&mut self) {
        let settings = self.0.clone();
        // Drop may run inside a runtime that cannot block on itself: use a thread of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = runtime.block_on(vestnik_queue::delete_queue(&settings));
            }
        })
        .join();
    }
}

/// With `VESTNIK_TEST_QUEUE=amqp://…` (and the PostgreSQL backend), dispatch goes through a
/// queue of the test's own.
fn test_queue(settings: &mut ServerSettings) -> Option<TestQueue> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let url = std::env::var("VESTNIK_TEST_QUEUE").ok()?;
    assert_eq!(
        std::env::var("VESTNIK_TEST_BACKEND").as_deref(),
        Ok("postgres"),
        "VESTNIK_TEST_QUEUE needs VESTNIK_TEST_BACKEND=postgres"
    );
    let queue = vestnik_queue::QueueSettings {
        queue: format!(
            "vestnik.api-suite.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ),
        lease: settings.delivery.lease,
        ..vestnik_queue::QueueSettings::new(url)
    };
    settings.queue = Some(queue.clone());
    Some(TestQueue(queue))
}

/// What keeps a test's database alive (and cleans it up).
enum Storage {
    Sqlite(#[expect(dead_code, reason = "held for its Drop")] tempfile::TempDir),
    Postgres(
        #[expect(dead_code, reason = "held for its Drop")] vestnik_store::postgres::IsolatedSchema,
    ),
}

/// The backend the suite runs on: `VESTNIK_TEST_BACKEND=postgres` (with `VESTNIK_TEST_POSTGRES`,
/// default the CI machine's server) or SQLite; a fresh database (or schema) per test.
async fn open_store() -> (Arc<dyn vestnik_store::Store>, Storage) {
    if std::env::var("VESTNIK_TEST_BACKEND").as_deref() == Ok("postgres") {
        let url = std::env::var("VESTNIK_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let (store, schema) = vestnik_store::postgres::PgStore::connect_isolated(&url, "api")
            .await
            .unwrap_or_else(|err| panic!("PostgreSQL is needed at {url} for this suite ({err})"));
        return (Arc::new(store), Storage::Postgres(schema));
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vestnik.db").display());
    let store = SqliteStore::open(&url, vestnik_delivery::now_ms()).unwrap();
    (Arc::new(store), Storage::Sqlite(dir))
}

pub fn fast_settings() -> ServerSettings {
    let mut settings = ServerSettings {
        api_token: Some(TOKEN.into()),
        ..ServerSettings::default()
    };
    settings.delivery.allow_targets = vec!["127.0.0.0/8".parse().unwrap()];
    settings.delivery.timeout = Duration::from_secs(1);
    settings.delivery.schedule = RetrySchedule::new(
        vec![
            Duration::from_millis(50),
            Duration::from_millis(100),
            Duration::from_millis(100),
        ],
        0.0,
        Duration::from_secs(3600),
    );
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(fast_settings()).await
}

pub async fn spawn_app_with(mut settings: ServerSettings) -> TestApp {
    let queue = test_queue(&mut settings);
    let (store, storage) = open_store().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = vestnik_server::start(store, settings, listener, CancellationToken::new())
        .await
        .unwrap();
    TestApp {
        base: format!("http://{}/api/v1", server.address),
        client: reqwest::Client::new(),
        server: Some(server),
        _storage: storage,
        _queue: queue,
    }
}

impl TestApp {
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `http://host:port`, for routes outside `/api/v1` such as `/in/{source}`.
    pub fn root(&self) -> &str {
        self.base.trim_end_matches("/api/v1")
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn create_app(&self, uid: &str) -> Value {
        let (status, body) = self.post("/app", json!({"name": uid, "uid": uid})).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn create_endpoint(&self, app: &str, body: Value) -> Value {
        let (status, out) = self.post(&format!("/app/{app}/endpoint"), body).await;
        assert_eq!(status, 201, "{out}");
        out
    }

    pub async fn send(&self, app: &str, body: Value) -> Value {
        let (status, out) = self.post(&format!("/app/{app}/msg"), body).await;
        assert_eq!(status, 202, "{out}");
        out
    }

    pub async fn attempts(&self, app: &str, msg: &str) -> Vec<Value> {
        let (status, out) = self.get(&format!("/app/{app}/attempt/msg/{msg}")).await;
        assert_eq!(status, 200, "{out}");
        let mut data = out["data"].as_array().unwrap().clone();
        data.reverse(); // oldest first
        data
    }

    /// Polls until `check` holds on the message's attempts, or panics after 20 s.
    pub async fn wait_attempts(
        &self,
        app: &str,
        msg: &str,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let attempts = self.attempts(app, msg).await;
            if check(&attempts) {
                return attempts;
            }
            assert!(
                Instant::now() < deadline,
                "condition not reached; attempts: {attempts:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    RetryAfter(u16, u64),
    Sleep(Duration),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone, Default)]
struct ReceiverState {
    script: Arc<Mutex<VecDeque<Reply>>>,
    fallback: Arc<Mutex<Option<Reply>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

pub struct TestReceiver {
    pub url: String,
    state: ReceiverState,
}

impl TestReceiver {
    pub async fn start() -> Self {
        let state = ReceiverState::default();
        let handler_state = state.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let state = handler_state.clone();
                async move {
                    state.received.lock().unwrap().push(Received {
                        path: uri.path().to_owned(),
                        headers,
                        body,
                    });
                    let reply = state
                        .script
                        .lock()
                        .unwrap()
                        .pop_front()
                        .or_else(|| state.fallback.lock().unwrap().clone());
                    match reply {
                        None => (StatusCode::OK, HeaderMap::new(), "ok"),
                        Some(Reply::Status(code)) => (
                            StatusCode::from_u16(code).unwrap(),
                            HeaderMap::new(),
                            "scripted",
                        ),
                        Some(Reply::RetryAfter(code, secs)) => {
                            let mut headers = HeaderMap::new();
                            headers.insert("retry-after", secs.to_string().parse().unwrap());
                            (StatusCode::from_u16(code).unwrap(), headers, "slow down")
                        }
                        Some(Reply::Sleep(duration)) => {
                            tokio::time::sleep(duration).await;
                            (StatusCode::OK, HeaderMap::new(), "late")
                        }
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    /// The next answers, in order; after them the fallback (200 unless set).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    pub fn fallback(&self, reply: Option<Reply>) {
        *self.state.fallback.lock().unwrap() = reply;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn received_on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

/// Polls `probe` until it yields a value, or panics after 20 s naming what was awaited.
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
