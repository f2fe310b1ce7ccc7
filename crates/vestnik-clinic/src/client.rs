//! The clinic's calls to the insurer, each counted by why it was made: what a strategy costs.

use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use vestnik_claims::model::ClaimSubmission;

/// Why the clinic asked the insurer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Submit,
    Poll,
    LongPoll,
    Sweep,
    View,
    Timer,
}

impl Reason {
    pub const ALL: [Self; 6] = [
        Self::Submit,
        Self::Poll,
        Self::LongPoll,
        Self::Sweep,
        Self::View,
        Self::Timer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Poll => "poll",
            Self::LongPoll => "long-poll",
            Self::Sweep => "sweep",
            Self::View => "view",
            Self::Timer => "timer",
        }
    }
}

/// Requests made to the insurer, by reason.
#[derive(Debug, Default)]
pub struct Counters([AtomicU64; 6]);

impl Counters {
    pub fn count(&self, reason: Reason) {
        self.0[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, reason: Reason) -> u64 {
        self.0[reason as usize].load(Ordering::Relaxed)
    }

    /// Every request but submissions: what learning statuses costs.
    pub fn status_requests(&self) -> u64 {
        Reason::ALL
            .iter()
            .filter(|r| **r != Reason::Submit)
            .map(|r| self.get(*r))
            .sum()
    }

    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for reason in Reason::ALL {
            map.insert(reason.as_str().to_owned(), self.get(reason).into());
        }
        map.insert("status_requests".into(), self.status_requests().into());
        Value::Object(map)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the insurer could not be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the insurer answered {status}: {body}")]
    Refused { status: u16, body: String },
}

pub struct InsurerClient {
    http: reqwest::Client,
    base: String,
    pub counters: Counters,
}

impl InsurerClient {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            counters: Counters::default(),
        }
    }

    async fn answer(response: reqwest::Response) -> Result<Value, ClientError> {
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            Ok(response.json().await?)
        } else {
            Err(ClientError::Refused {
                status,
                body: response.text().await.unwrap_or_default(),
            })
        }
    }

    pub async fn submit(&self, claim: &ClaimSubmission) -> Result<Value, ClientError> {
        self.counters.count(Reason::Submit);
        let response = self
            .http
            .post(format!("{}/claims", self.base))
            .json(claim)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        Self::answer(response).await
    }

    /// The claim's current status; with `wait_seconds`, a long-poll (seconds on the insurer's
    /// clock).
    pub async fn status(
        &self,
        id: &str,
        reason: Reason,
        wait_seconds: Option<u64>,
    ) -> Result<Value, ClientError> {
        self.counters.count(reason);
        let url = match wait_seconds {
            Some(wait) => format!("{}/claims/{id}?wait={wait}", self.base),
            None => format!("{}/claims/{id}", self.base),
        };
        let response = self
            .http
            .get(url)
            .timeout(Duration::from_secs(40))
            .send()
            .await?;
        Self::answer(response).await
    }
}
