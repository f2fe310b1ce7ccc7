//! A source's configuration: how its requests are verified, where its event ids are, which
//! headers go on with the body, and its limits. Kept by the store as JSON and validated here.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use vestnik_signature::providers::{Algorithm, Encoding};

/// Default tolerance of timestamped schemes, both directions.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;
/// Default largest body a source accepts.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest body limit a source may configure.
pub const MAX_BODY_BYTES_LIMIT: usize = 16 * 1024 * 1024;

/// How a source proves a request is its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Scheme {
    /// Standard Webhooks / Svix: `webhook-*` or `svix-*` headers, `whsec_` secrets.
    StandardWebhooks,
    /// `Stripe-Signature: t=…,v1=…`, HMAC-SHA256 hex over `t.body`, keyed by the secret string.
    Stripe,
    /// `X-Hub-Signature-256: sha256=<hex>` over the body; id `X-GitHub-Delivery`.
    Github,
    /// `X-Shopify-Hmac-Sha256: <base64>` over the body; id `X-Shopify-Webhook-Id`.
    Shopify,
    /// Any "HMAC of the body in a header" scheme. With `timestampHeader`, the signed content is
    /// `<timestamp>.<body>` and the timestamp must lie within the tolerance.
    Hmac {
        header: String,
        #[serde(default = "sha256")]
        algorithm: Algorithm,
        #[serde(default = "hex")]
        encoding: Encoding,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp_header: Option<String>,
    },
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// `Authorization: Basic …` whose `user:password` equals the secret.
    Basic,
    /// A header whose value equals the secret.
    Header { header: String },
    /// No signature: only the IP allow-list (if any) stands guard.
    None,
}

fn sha256() -> Algorithm {
    Algorithm::Sha256
}

fn hex() -> Encoding {
    Encoding::Hex
}

impl Scheme {
    /// The name used in the API, logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::StandardWebhooks => "standard-webhooks",
            Self::Stripe => "stripe",
            Self::Github => "github",
            Self::Shopify => "shopify",
            Self::Hmac { .. } => "hmac",
            Self::Bearer => "bearer",
            Self::Basic => "basic",
            Self::Header { .. } => "header",
            Self::None => "none",
        }
    }

    /// Whether requests carry a secret-derived proof (everything but `none`).
    pub fn uses_secret(&self) -> bool {
        !matches!(self, Self::None)
    }
}

/// Where a source's event id is, when its scheme's default does not fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum EventIdRule {
    /// A request header.
    Header(String),
    /// A JSON pointer into the body (`/id`, `/data/object/id`).
    JsonPointer(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceConfig {
    pub verification: Scheme,
    #[serde(default = "default_tolerance")]
    pub tolerance_seconds: i64,
    /// When not empty, requests from other addresses are rejected, whatever their signature.
    #[serde(default)]
    pub allowed_ips: Vec<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventIdRule>,
    /// Headers handed on with the body, beside `content-type` and the scheme's own.
    #[serde(default)]
    pub forward_headers: Vec<String>,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

fn default_tolerance() -> i64 {
    DEFAULT_TOLERANCE_SECONDS
}

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

fn is_header_name(name: &str) -> bool {
    http::HeaderName::from_bytes(name.as_bytes()).is_ok()
}

impl SourceConfig {
    pub fn new(verification: Scheme) -> Self {
        Self {
            verification,
            tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
            allowed_ips: Vec::new(),
            event_id: None,
            forward_headers: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Checks the limits and that header names and pointers are well-formed; lower-cases header
    /// names so lookups need not.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        if !(1..=86_400).contains(&self.tolerance_seconds) {
            return Err(invalid(
                "toleranceSeconds",
                "toleranceSeconds must be between 1 and 86400",
            ));
        }
        if !(1..=MAX_BODY_BYTES_LIMIT).contains(&self.max_body_bytes) {
            return Err(invalid(
                "maxBodyBytes",
                format!("maxBodyBytes must be between 1 and {MAX_BODY_BYTES_LIMIT}"),
            ));
        }
        match &mut self.verification {
            Scheme::Hmac {
                header,
                timestamp_header,
                ..
            } => {
                *header = header.to_ascii_lowercase();
                if !is_header_name(header) {
                    return Err(invalid("verification.header", "not a valid header name"));
                }
                if let Some(name) = timestamp_header {
                    *name = name.to_ascii_lowercase();
                    if !is_header_name(name) {
                        return Err(invalid(
                            "verification.timestampHeader",
                            "not a valid header name",
                        ));
                    }
                }
            }
            Scheme::Header { header } => {
                *header = header.to_ascii_lowercase();
                if !is_header_name(header) {
                    return Err(invalid("verification.header", "not a valid header name"));
                }
            }
            _ => {}
        }
        match &mut self.event_id {
            Some(EventIdRule::Header(name)) => {
                *name = name.to_ascii_lowercase();
                if !is_header_name(name) {
                    return Err(invalid("eventId.header", "not a valid header name"));
                }
            }
            Some(EventIdRule::JsonPointer(pointer)) if !pointer.starts_with('/') => {
                return Err(invalid(
                    "eventId.jsonPointer",
                    "a JSON pointer starts with '/', as in /id",
                ));
            }
            _ => {}
        }
        for name in &mut self.forward_headers {
            *name = name.to_ascii_lowercase();
            if !is_header_name(name) {
                return Err(invalid(
                    "forwardHeaders",
                    format!("{name:?} is not a header name"),
                ));
            }
        }
        if self.forward_headers.len() > 50 {
            return Err(invalid("forwardHeaders", "at most 50 headers"));
        }
        Ok(self)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a source config serialises")
    }

    /// Parses a config the store kept (it was validated on the way in).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_tagged_and_camel_case_with_defaults() {
        let config: SourceConfig = serde_json::from_str(
            r#"{"verification": {"type": "hmac", "header": "X-Signature", "prefix": "sha256=",
                "timestampHeader": "X-Timestamp"}, "eventId": {"jsonPointer": "/id"},
                "allowedIps": ["203.0.113.0/24"]}"#,
        )
        .unwrap();
        let config = config.validated().unwrap();
        assert_eq!(
            config.verification,
            Scheme::Hmac {
                header: "x-signature".into(),
                algorithm: Algorithm::Sha256,
                encoding: Encoding::Hex,
                prefix: Some("sha256=".into()),
                timestamp_header: Some("x-timestamp".into()),
            }
        );
        assert_eq!(config.tolerance_seconds, 300);
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert_eq!(SourceConfig::from_json(&config.to_json()).unwrap(), config);
        let stripe: SourceConfig =
            serde_json::from_str(r#"{"verification": {"type": "stripe"}}"#).unwrap();
        assert_eq!(stripe.verification, Scheme::Stripe);
    }

    #[test]
    fn bad_configs_name_their_field() {
        let bad = |json: &str| {
            serde_json::from_str::<SourceConfig>(json)
                .unwrap()
                .validated()
                .unwrap_err()
                .to_string()
        };
        assert!(
            bad(r#"{"verification": {"type": "none"}, "toleranceSeconds": 0}"#)
                .starts_with("toleranceSeconds")
        );
        assert!(
            bad(r#"{"verification": {"type": "header", "header": "bad header"}}"#)
                .starts_with("verification.header")
        );
        assert!(
            bad(r#"{"verification": {"type": "none"}, "eventId": {"jsonPointer": "id"}}"#)
                .starts_with("eventId.jsonPointer")
        );
        assert!(
            serde_json::from_str::<SourceConfig>(r#"{"verification": {"type": "rot13"}}"#).is_err()
        );
    }
}
