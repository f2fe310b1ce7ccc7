//! The receiving flow for one request: verify → persist (durable before the caller answers) →
//! dedup on the sender's event id → hand-on tasks for the delivery pipeline. Storage is reached
//! through the `Store` seam only.

use crate::config::SourceConfig;
use crate::extract;
use crate::verify::{Rejection, RequestParts, verify};
use http::HeaderMap;
use std::net::IpAddr;
use vestnik_core::{MessageId, RequestId};
use vestnik_store::{
    InboundRequest, LeasedTask, Message, RequestStatus, Source, Store, StoreResult, UnixMs,
};

/// Limits of the request log.
#[derive(Debug, Clone)]
pub struct InboundSettings {
    /// Rejected requests kept per source, newest first; older ones are deleted.
    pub rejected_kept: usize,
    /// Bytes of a rejected request's body kept (its full size is recorded).
    pub rejected_body_cap: usize,
    /// Days the request log keeps a request (and an accepted one's body, as its message's
    /// payload).
    pub retention_days: i64,
}

impl Default for InboundSettings {
    fn default() -> Self {
        Self {
            rejected_kept: 1_000,
            rejected_body_cap: 64 * 1024,
            retention_days: 30,
        }
    }
}

/// One request as the edge read it.
#[derive(Debug, Clone)]
pub struct Received<'a> {
    pub remote: IpAddr,
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The size of the body as sent, when only a prefix of it was read (oversize).
    pub declared_size: Option<usize>,
    pub received_at: UnixMs,
}

/// What became of a request.
#[derive(Debug)]
pub enum Receipt {
    /// Stored and queued for every destination; `tasks` are born leased when a lease was given.
    Accepted {
        request: RequestId,
        tasks: Vec<LeasedTask>,
    },
    /// Its event id was accepted before as `original`; nothing is handed on.
    Duplicate {
        request: RequestId,
        original: RequestId,
    },
    /// Stored in the rejected log; never handed on.
    Rejected {
        request: RequestId,
        rejection: Rejection,
    },
}

/// The source's secrets that verify at `now`: the current one and those in their grace period.
pub fn valid_secrets(source: &Source, now: UnixMs) -> Vec<&str> {
    std::iter::once(source.secrets.current.as_str())
        .chain(
            source
                .secrets
                .previous
                .iter()
                .filter(|(_, until)| *until > now)
                .map(|(secret, _)| secret.as_str()),
        )
        .collect()
}

fn base_record(source: &Source, config: &SourceConfig, received: &Received<'_>) -> InboundRequest {
    InboundRequest {
        id: RequestId::generate(u64::try_from(received.received_at).unwrap_or_default()),
        source_id: source.id.clone(),
        received_at: received.received_at,
        remote_addr: received.remote.to_string(),
        method: received.method.to_owned(),
        path: received.path.to_owned(),
        headers: extract::logged_headers(config, received.headers),
        body: None,
        body_size: i64::try_from(received.declared_size.unwrap_or(received.body.len()))
            .unwrap_or(i64::MAX),
        status: RequestStatus::Accepted,
        reason: None,
        event_id: None,
        msg_id: None,
        duplicate_of: None,
    }
}

/// Stores a refused request in the rejected log (its body capped) and returns the receipt.
pub async fn record_rejection(
    store: &dyn Store,
    source: &Source,
    config: &SourceConfig,
    received: &Received<'_>,
    rejection: Rejection,
    settings: &InboundSettings,
) -> StoreResult<Receipt> {
    let mut record = base_record(source, config, received);
    let kept = received.body.len().min(settings.rejected_body_cap);
    record.body = Some(received.body[..kept].to_vec());
    record.status = RequestStatus::Rejected;
    record.reason = Some(format!("{}: {}", rejection.code, rejection.detail));
    let (record, _) = store
        .record_request(record, None, None, settings.rejected_kept)
        .await?;
    Ok(Receipt::Rejected {
        request: record.id,
        rejection,
    })
}

/// Verifies, stores and queues one request. The receipt is durable when this returns.
pub async fn receive(
    store: &dyn Store,
    source: &Source,
    config: &SourceConfig,
    received: &Received<'_>,
    lease_until: Option<UnixMs>,
    settings: &InboundSettings,
) -> StoreResult<Receipt> {
    let now = received.received_at;
    let parts = RequestParts {
        headers: received.headers,
        body: received.body,
        remote: received.remote,
    };
    let secrets = valid_secrets(source, now);
    if let Err(rejection) = verify(config, &secrets, &parts, now.div_euclid(1000)) {
        return record_rejection(store, source, config, received, rejection, settings).await;
    }
    // Messages keep payloads as text; a binary body is refused rather than altered.
    let Ok(text) = std::str::from_utf8(received.body) else {
        let rejection = Rejection {
            status: 400,
            code: "body_not_utf8",
            detail: "the body is not UTF-8 text; Vestnik hands on text bodies only".into(),
        };
        return record_rejection(store, source, config, received, rejection, settings).await;
    };
    let event_id = extract::event_id(config, received.headers, received.body);
    let message = Message {
        id: MessageId::generate(u64::try_from(now).unwrap_or_default()),
        app_id: source.app_id.clone(),
        event_id: event_id.clone(),
        event_type: extract::event_type(config, received.headers, received.body),
        channels: None,
        payload: Some(text.to_owned()),
        payload_expires_at: now + settings.retention_days * 86_400_000,
        created_at: now,
        headers: extract::forwarded_headers(config, received.headers),
    };
    let mut record = base_record(source, config, received);
    record.event_id = event_id;
    let (record, tasks) = store
        .record_request(record, Some(message), lease_until, settings.rejected_kept)
        .await?;
    Ok(match (record.status, record.duplicate_of) {
        (RequestStatus::Duplicate, Some(original)) => Receipt::Duplicate {
            request: record.id,
            original,
        },
        _ => Receipt::Accepted {
            request: record.id,
            tasks,
        },
    })
}
