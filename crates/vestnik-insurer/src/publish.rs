//! Publishing every status change to the clinic's application in Vestnik, as the insurer would
//! through any Svix-compatible API: one message per claim version (`eventId` `<claim>-v<n>`, so a
//! retried publish is harmless), in the clinic's payload format. A publish that fails is retried
//! with backoff until it succeeds or the service stops; nothing is dropped in between.

use jiff::Timestamp;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vestnik_claims::payload::{self, ClaimRecord, EVENT_TYPE, PayloadFormat};

/// Where and how the insurer publishes.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    /// The Vestnik server, e.g. `http://127.0.0.1:8071`.
    pub vestnik_url: String,
    pub token: String,
    /// The payload format the clinics subscribed to.
    pub format: PayloadFormat,
    /// The insurer's own public URL, for links in payloads.
    pub insurer_url: String,
}

/// A claim version waiting to be published.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub record: ClaimRecord,
    pub at: Timestamp,
}

/// Sends queued events until `shutdown`; the application uid is the clinic's id.
pub async fn run(
    settings: PublishSettings,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    shutdown: CancellationToken,
) {
    let client = reqwest::Client::new();
    loop {
        let outgoing = tokio::select! {
            () = shutdown.cancelled() => return,
            next = queue.recv() => match next { Some(o) => o, None => return },
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            match publish(&client, &settings, &outgoing).await {
                Ok(()) => break,
                Err(reason) => {
                    tracing::warn!(claim = %outgoing.record.id, version = outgoing.record.version, %reason, "publish failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

async fn publish(
    client: &reqwest::Client,
    settings: &PublishSettings,
    outgoing: &Outgoing,
) -> Result<(), String> {
    let record = &outgoing.record;
    let body = serde_json::json!({
        "eventType": EVENT_TYPE,
        "eventId": format!("{}-v{}", record.id, record.version),
        "channels": [settings.format.as_str()],
        "payload": payload::event(record, settings.format, &settings.insurer_url, outgoing.at),
    });
    let url = format!(
        "{}/api/v1/app/{}/msg",
        settings.vestnik_url.trim_end_matches('/'),
        record.submission.clinic_id
    );
    let response = client
        .post(url)
        .bearer_auth(&settings.token)
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|err| err.to_string())?;
    match response.status().as_u16() {
        202 => {
            metrics::counter!("insurer_events_published_total").increment(1);
            Ok(())
        }
        409 => Ok(()), // published before (a retry after a lost answer)
        status => Err(format!("Vestnik answered {status}")),
    }
}
