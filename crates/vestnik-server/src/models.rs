//! The API's JSON shapes (Svix field names, camelCase) and their validation into store records.

use crate::error::ApiError;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use vestnik_core::{Channel, EndpointUrl, EventTypeName, Uid};
use vestnik_delivery::operational::rfc3339;
use vestnik_store::{Application, Delivery, Endpoint, EventType, Message};

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`) in PATCH bodies.
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

pub fn check_uid(field: &str, uid: Option<&str>) -> Result<(), ApiError> {
    match uid {
        Some(uid) => Uid::parse(uid)
            .map(|_| ())
            .map_err(|err| ApiError::field(field, format!("uid {err}"))),
        None => Ok(()),
    }
}

pub fn check_event_type(field: &str, name: &str) -> Result<(), ApiError> {
    EventTypeName::parse(name)
        .map(|_| ())
        .map_err(|err| ApiError::field(field, format!("event type {err}")))
}

pub fn check_channels(field: &str, channels: Option<&[String]>) -> Result<(), ApiError> {
    for channel in channels.unwrap_or_default() {
        Channel::parse(channel).map_err(|err| ApiError::field(field, format!("channel {err}")))?;
    }
    if channels.is_some_and(|c| c.len() > 10) {
        return Err(ApiError::field(field, "at most 10 channels"));
    }
    Ok(())
}

pub fn check_url(url: &str) -> Result<(), ApiError> {
    EndpointUrl::parse(url)
        .map(|_| ())
        .map_err(|err| ApiError::field("url", format!("url {err}")))
}

pub fn check_metadata(
    metadata: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ApiError> {
    if metadata.values().all(serde_json::Value::is_string) {
        Ok(())
    } else {
        Err(ApiError::field(
            "metadata",
            "metadata values must be strings",
        ))
    }
}

fn metadata_value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    pub name: String,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default, alias = "rateLimit")]
    pub throttle_rate: Option<u16>,
}

impl ApplicationIn {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.name.is_empty() {
            return Err(ApiError::field("name", "name must not be empty"));
        }
        check_uid("uid", self.uid.as_deref())?;
        check_metadata(&self.metadata)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub uid: Option<Option<String>>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, alias = "rateLimit", deserialize_with = "double_option")]
    pub throttle_rate: Option<Option<u16>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    pub metadata: serde_json::Value,
    pub throttle_rate: Option<u32>,
    /// The same value under the name today's Svix SDKs read.
    pub rate_limit: Option<u32>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Application> for ApplicationOut {
    fn from(app: Application) -> Self {
        Self {
            id: app.id.into_string(),
            uid: app.uid,
            name: app.name,
            metadata: metadata_value(&app.metadata),
            throttle_rate: app.throttle_rate,
            rate_limit: app.throttle_rate,
            created_at: rfc3339(app.created_at),
            updated_at: rfc3339(app.updated_at),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    #[serde(default)]
    pub feature_flag: Option<String>,
    #[serde(default)]
    pub schemas: Option<serde_json::Map<String, serde_json::Value>>,
}

/// PUT body: like [`EventTypeIn`] without the name (it is in the path).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeUpdate {
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    #[serde(default)]
    pub feature_flag: Option<String>,
    #[serde(default)]
    pub schemas: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    pub description: Option<String>,
    pub archived: Option<bool>,
    pub deprecated: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub feature_flag: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub schemas: Option<Option<serde_json::Map<String, serde_json::Value>>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub feature_flag: Option<String>,
    pub schemas: Option<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
}

impl EventTypeOut {
    pub fn new(et: EventType, with_content: bool) -> Self {
        Self {
            name: et.name,
            description: et.description,
            archived: et.archived,
            deprecated: et.deprecated,
            feature_flag: et.feature_flag,
            schemas: et
                .schemas
                .filter(|_| with_content)
                .and_then(|s| serde_json::from_str(&s).ok()),
            created_at: rfc3339(et.created_at),
            updated_at: rfc3339(et.updated_at),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    pub url: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub disabled: bool,
    /// `filterTypes` is the name today's Svix SDKs send.
    #[serde(default, alias = "filterTypes")]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `rateLimit` is the name today's Svix SDKs send.
    #[serde(default, alias = "rateLimit")]
    pub throttle_rate: Option<u16>,
    #[serde(default)]
    pub secret: Option<String>,
    /// Vestnik extension: custom headers at creation (Svix sets them through `/headers`).
    #[serde(default)]
    pub headers: Option<std::collections::HashMap<String, String>>,
}

impl EndpointIn {
    pub fn validate(&self) -> Result<(), ApiError> {
        check_url(&self.url)?;
        check_uid("uid", self.uid.as_deref())?;
        check_channels("channels", self.channels.as_deref())?;
        for name in self.event_types.iter().flatten() {
            check_event_type("eventTypes", name)?;
        }
        if self.throttle_rate == Some(0) {
            return Err(ApiError::field(
                "throttleRate",
                "throttleRate must be at least 1",
            ));
        }
        check_metadata(&self.metadata)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub disabled: Option<bool>,
    #[serde(default, alias = "filterTypes", deserialize_with = "double_option")]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    pub channels: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    pub uid: Option<Option<String>>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, alias = "rateLimit", deserialize_with = "double_option")]
    pub throttle_rate: Option<Option<u16>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub disabled: bool,
    pub event_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub metadata: serde_json::Value,
    pub throttle_rate: Option<u32>,
    /// `eventTypes` and `throttleRate` again under the names today's Svix SDKs read, and the
    /// `version` they require.
    pub filter_types: Option<Vec<String>>,
    pub rate_limit: Option<u32>,
    pub version: u32,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Endpoint> for EndpointOut {
    fn from(ep: &Endpoint) -> Self {
        Self {
            id: ep.id.to_string(),
            uid: ep.uid.clone(),
            url: ep.url.clone(),
            description: ep.description.clone(),
            disabled: ep.disabled,
            event_types: ep.event_types.clone(),
            channels: ep.channels.clone(),
            metadata: metadata_value(&ep.metadata),
            throttle_rate: ep.throttle_rate,
            filter_types: ep.event_types.clone(),
            rate_limit: ep.throttle_rate,
            version: 1,
            created_at: rfc3339(ep.created_at),
            updated_at: rfc3339(ep.updated_at),
        }
    }
}

/// Body of `send-example`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventExampleIn {
    pub event_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    pub event_type: String,
    pub payload: Box<RawValue>,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    #[serde(default)]
    pub payload_retention_period: Option<i64>,
    #[serde(default)]
    pub application: Option<ApplicationIn>,
}

impl MessageIn {
    pub fn validate(&self) -> Result<(), ApiError> {
        check_event_type("eventType", &self.event_type)?;
        check_uid("eventId", self.event_id.as_deref())?;
        check_channels("channels", self.channels.as_deref())?;
        if !self.payload.get().trim_start().starts_with('{') {
            return Err(ApiError::field("payload", "payload must be a JSON object"));
        }
        if let Some(days) = self.payload_retention_period
            && !(5..=90).contains(&days)
        {
            return Err(ApiError::field(
                "payloadRetentionPeriod",
                "payloadRetentionPeriod must be between 5 and 90 days",
            ));
        }
        if let Some(app) = &self.application {
            app.validate()?;
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    pub id: String,
    pub event_id: Option<String>,
    pub event_type: String,
    pub channels: Option<Vec<String>>,
    pub payload: Box<RawValue>,
    pub timestamp: String,
}

pub fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).expect("valid JSON")
}

impl MessageOut {
    pub fn new(msg: Message, with_content: bool) -> Self {
        let payload = msg
            .payload
            .filter(|_| with_content)
            .and_then(|text| RawValue::from_string(text).ok())
            .unwrap_or_else(empty_object);
        Self {
            id: msg.id.into_string(),
            event_id: msg.event_id,
            event_type: msg.event_type,
            channels: msg.channels,
            payload,
            timestamp: rfc3339(msg.created_at),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEndpointOut {
    #[serde(flatten)]
    pub endpoint: EndpointOut,
    pub status: i64,
    pub status_text: &'static str,
    pub next_attempt: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessageOut {
    #[serde(flatten)]
    pub message: MessageOut,
    pub status: i64,
    pub status_text: &'static str,
    pub next_attempt: Option<String>,
}

pub fn next_attempt(delivery: &Delivery) -> Option<String> {
    delivery.next_attempt_at.map(rfc3339)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttemptOut {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub url: String,
    pub response: String,
    pub response_status_code: i32,
    pub response_duration_ms: i64,
    pub status: i64,
    pub status_text: &'static str,
    pub trigger_type: i64,
    pub timestamp: String,
    /// Vestnik extension: why the attempt ended as it did.
    pub outcome: &'static str,
}

impl MessageAttemptOut {
    pub fn new(a: vestnik_store::Attempt, with_content: bool) -> Self {
        Self {
            id: a.id.into_string(),
            msg_id: a.msg_id.into_string(),
            endpoint_id: a.endpoint_id.into_string(),
            url: a.url,
            response: if with_content {
                a.response
            } else {
                String::new()
            },
            response_status_code: a.response_status_code,
            response_duration_ms: a.response_duration_ms,
            status: a.status.code(),
            status_text: a.status.text(),
            trigger_type: i64::from(a.manual),
            timestamp: rfc3339(a.created_at),
            outcome: a.outcome.as_str(),
        }
    }
}

/// Svix's `ListResponse_*`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    pub iterator: Option<String>,
    pub prev_iterator: Option<String>,
    pub done: bool,
}

impl<T> ListResponse<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> ListResponse<U> {
        ListResponse {
            data: self.data.into_iter().map(f).collect(),
            iterator: self.iterator,
            prev_iterator: self.prev_iterator,
            done: self.done,
        }
    }
}

/// Body of a secret rotation (endpoints and sources): an optional key to use, and how long the
/// replaced secret stays valid.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateIn {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub grace_period_seconds: Option<i64>,
}

/// Longest grace period a rotated-out secret keeps (Svix's bound: 7 days).
pub const MAX_GRACE_SECONDS: i64 = 604_800;

impl RotateIn {
    /// The SDKs send `{}` or nothing at all; both mean "generate a key, default grace period".
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        crate::extract::parse_json(body)
    }

    /// The grace period in milliseconds (default 24 h), validated.
    pub fn grace_ms(&self) -> Result<i64, ApiError> {
        let seconds = self.grace_period_seconds.unwrap_or(86_400);
        if !(0..=MAX_GRACE_SECONDS).contains(&seconds) {
            return Err(ApiError::field(
                "gracePeriodSeconds",
                format!("must be between 0 and {MAX_GRACE_SECONDS}"),
            ));
        }
        Ok(seconds * 1000)
    }
}
