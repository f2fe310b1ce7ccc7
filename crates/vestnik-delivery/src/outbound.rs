//! The only place that opens connections to customer endpoints: one signed POST per attempt,
//! redirects not followed, body read up to a cap, every failure mapped to a stable outcome code.

use crate::guard::{BlockedTarget, DnsFailure, GuardedResolver};
use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vestnik_core::{AttemptResult, OutcomeCode};

/// What an attempt produced: the state machine's input plus what we keep for people to read.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub result: AttemptResult,
    /// Response body (capped) or, when no response came, the operator-safe reason.
    pub response: String,
    pub duration: Duration,
}

pub type ClientError = reqwest::Error;

#[derive(Debug, Clone)]
pub struct OutboundClient {
    client: reqwest::Client,
    guard: Arc<GuardedResolver>,
    body_cap: usize,
}

impl OutboundClient {
    pub fn new(
        timeout: Duration,
        allow: Vec<ipnet::IpNet>,
        body_cap: usize,
        max_in_flight: usize,
    ) -> Result<Self, reqwest::Error> {
        let guard = Arc::new(GuardedResolver::new(allow));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::clone(&guard))
            .user_agent(concat!("Vestnik/", env!("CARGO_PKG_VERSION")))
            // Many endpoints may live on one host; keeping fewer idle connections than attempts
            // in flight makes every surplus attempt open (and the receiver accept) a new one.
            .pool_max_idle_per_host(max_in_flight)
            .build()?;
        Ok(Self {
            client,
            guard,
            body_cap,
        })
    }

    pub async fn post(
        &self,
        url: &url::Url,
        headers: &[(String, String)],
        body: bytes::Bytes,
    ) -> AttemptReport {
        let started = Instant::now();
        if let Err(blocked) = self.guard.check_literal(url) {
            return failure(OutcomeCode::BlockedTarget, blocked.to_string(), started);
        }
        let mut request = self.client.post(url.clone()).body(body);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                let (code, reason) = classify(&err);
                return failure(code, reason, started);
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        // The body only informs people; a receiver that stalls it after the status costs us nothing.
        while body.len() < self.body_cap {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        body.truncate(self.body_cap);
        AttemptReport {
            result: AttemptResult::from_status(status, retry_after),
            response: String::from_utf8_lossy(&body).into_owned(),
            duration: started.elapsed(),
        }
    }
}

fn failure(code: OutcomeCode, reason: String, started: Instant) -> AttemptReport {
    AttemptReport {
        result: AttemptResult::failed(code),
        response: reason,
        duration: started.elapsed(),
    }
}

/// Maps a transport error to its outcome code and a reason safe to show the endpoint's owner.
fn classify(err: &reqwest::Error) -> (OutcomeCode, String) {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<BlockedTarget>() {
            return (OutcomeCode::BlockedTarget, blocked.to_string());
        }
        if let Some(dns) = cause.downcast_ref::<DnsFailure>() {
            return (OutcomeCode::Dns, dns.to_string());
        }
        source = cause.source();
    }
    if err.is_timeout() {
        return (
            OutcomeCode::Timeout,
            "the endpoint did not answer in time".into(),
        );
    }
    let chain = error_chain(err);
    let lower = chain.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        return (OutcomeCode::Tls, chain);
    }
    (OutcomeCode::Connection, chain)
}

fn error_chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
