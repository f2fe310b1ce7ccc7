//! The records the store keeps and returns. Times are unix milliseconds; JSON blobs are kept as
//! the exact text the caller sent, so a payload is signed and delivered byte for byte.

use vestnik_core::{AppId, AttemptId, DeliveryStatus, EndpointId, MessageId, OutcomeCode};

pub type UnixMs = i64;

#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub id: AppId,
    pub uid: Option<String>,
    pub name: String,
    pub metadata: String,
    pub throttle_rate: Option<u32>,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub feature_flag: Option<String>,
    pub schemas: Option<String>,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
}

/// An endpoint's signing secrets (or a source's verifying ones): the current one and any still
/// inside a rotation's grace period. `Debug` never shows them.
#[derive(Clone, PartialEq)]
pub struct EndpointSecrets {
    /// `whsec_…` of the current secret.
    pub current: String,
    /// Previous secrets with the time (ms) until which they still sign.
    pub previous: Vec<(String, UnixMs)>,
}

impl std::fmt::Debug for EndpointSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSecrets")
            .field("current", &"<redacted>")
            .field("previous", &self.previous.len())
            .finish()
    }
}

impl EndpointSecrets {
    /// `fresh` becomes current; the current one stays valid for `grace_ms` (not at all when 0);
    /// previous secrets whose grace has ended are dropped.
    pub fn rotated(self, fresh: String, now: UnixMs, grace_ms: i64) -> Self {
        let mut previous: Vec<(String, UnixMs)> = self
            .previous
            .into_iter()
            .filter(|(_, until)| *until > now)
            .collect();
        if grace_ms > 0 {
            previous.push((self.current, now + grace_ms));
        }
        Self {
            current: fresh,
            previous,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub app_id: AppId,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub disabled: bool,
    pub event_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub metadata: String,
    pub throttle_rate: Option<u32>,
    /// Custom headers sent with every attempt, as a JSON object of strings.
    pub headers: String,
    pub secrets: EndpointSecrets,
    /// When the current run of consecutive failures began; `None` while healthy.
    pub failing_since: Option<UnixMs>,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
}

impl Endpoint {
    /// Whether a message of `event_type` on `channels` is for this endpoint (Svix semantics: an
    /// endpoint without a filter takes every type; one with channels needs a shared channel).
    pub fn accepts(&self, event_type: &str, channels: Option<&[String]>) -> bool {
        if self.disabled {
            return false;
        }
        let type_ok = self
            .event_types
            .as_ref()
            .is_none_or(|types| types.is_empty() || types.iter().any(|t| t == event_type));
        let channel_ok = match &self.channels {
            None => true,
            Some(wanted) if wanted.is_empty() => true,
            Some(wanted) => channels.is_some_and(|have| have.iter().any(|c| wanted.contains(c))),
        };
        type_ok && channel_ok
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub app_id: AppId,
    pub event_id: Option<String>,
    pub event_type: String,
    pub channels: Option<Vec<String>>,
    /// `None` once expunged.
    pub payload: Option<String>,
    pub payload_expires_at: UnixMs,
    pub created_at: UnixMs,
    /// Headers of an inbound request that go with it to its destinations (lower-case names);
    /// empty for messages created through the API.
    pub headers: Vec<(String, String)>,
}

/// A response kept for an `idempotency-key`, so a retried request gets the same answer.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotentResponse {
    /// SHA-256 (hex) of the request body the key was first used with.
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    pub created_at: UnixMs,
}

/// Which endpoints a new message goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipients {
    /// Every enabled endpoint of the app whose event-type filter and channels accept it.
    Subscribers,
    /// This one endpoint, whatever its filters say (Svix's "send example").
    Endpoint(EndpointId),
}

/// The state of one message at one endpoint: the delivery task and Svix's "message destination".
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<UnixMs>,
    pub created_at: UnixMs,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: AttemptId,
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub app_id: AppId,
    pub url: String,
    pub status: DeliveryStatus,
    pub outcome: OutcomeCode,
    pub response_status_code: i32,
    pub response: String,
    pub response_duration_ms: i64,
    pub manual: bool,
    pub created_at: UnixMs,
}

/// A task the dispatcher holds under lease: everything needed to make one attempt.
#[derive(Debug, Clone)]
pub struct LeasedTask {
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub app_id: AppId,
    pub event_type: String,
    pub event_id: Option<String>,
    pub payload: bytes::Bytes,
    /// Attempts made before this one.
    pub attempts: u32,
    pub manual: bool,
    pub msg_created_at: UnixMs,
    /// The message's forwarded headers (see [`Message::headers`]).
    pub headers: Vec<(String, String)>,
}

impl LeasedTask {
    /// The tasks of a message just written, one per recipient endpoint, before any attempt.
    pub fn first_of(msg: &Message, endpoints: impl IntoIterator<Item = EndpointId>) -> Vec<Self> {
        let payload = bytes::Bytes::from(msg.payload.clone().unwrap_or_default());
        endpoints
            .into_iter()
            .map(|endpoint_id| LeasedTask {
                msg_id: msg.id.clone(),
                endpoint_id,
                app_id: msg.app_id.clone(),
                event_type: msg.event_type.clone(),
                event_id: msg.event_id.clone(),
                payload: payload.clone(),
                attempts: 0,
                manual: false,
                msg_created_at: msg.created_at,
                headers: msg.headers.clone(),
            })
            .collect()
    }
}

/// A task a relay leased and put on the dispatch queue. Its lease's end doubles as the lease's
/// identity: a queue message whose `lease_until` no longer matches the database is a stale copy
/// (the task was taken, finished or leased again since), so duplicates on the queue are harmless.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueuedTask {
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub lease_until: UnixMs,
}

#[cfg(test)]
mod tests {
    use super::EndpointSecrets;

    #[test]
    fn rotation_keeps_the_old_secret_for_its_grace_and_drops_expired_ones() {
        let secrets = EndpointSecrets {
            current: "b".into(),
            previous: vec![("a".into(), 1_000)],
        };
        let rotated = secrets.clone().rotated("c".into(), 2_000, 500);
        assert_eq!(rotated.current, "c");
        assert_eq!(
            rotated.previous,
            [("b".to_owned(), 2_500)],
            "a's grace had ended"
        );
        let immediate = secrets.rotated("c".into(), 500, 0);
        assert_eq!(
            immediate.previous,
            [("a".to_owned(), 1_000)],
            "b is dropped at once"
        );
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let shown = format!(
            "{:?}",
            EndpointSecrets {
                current: "whsec_topsecret".into(),
                previous: vec![("whsec_oldsecret".into(), 1)],
            }
        );
        assert!(
            !shown.contains("topsecret") && !shown.contains("oldsecret"),
            "{shown}"
        );
    }
}
