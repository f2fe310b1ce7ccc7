//! Standard Webhooks (`webhook-id`/`webhook-timestamp`/`webhook-signature`) secrets, signing and
//! verification; `providers` verifies other senders' schemes. Pure: time is passed in,
//! randomness only when generating a secret.

pub mod providers;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use subtle::ConstantTimeEq;

/// The prefix every endpoint secret carries on the wire and in the API.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of key material in a generated secret (Svix uses 24; the spec allows 24–64).
pub const GENERATED_SECRET_BYTES: usize = 24;
/// Default tolerance for `webhook-timestamp` drift when verifying.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 5 * 60;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the secret is not valid base64 (after an optional `whsec_` prefix)")]
    SecretNotBase64,
    #[error("the secret must hold between 24 and 64 bytes of key material, it holds {0}")]
    SecretLength(usize),
    #[error("the `webhook-timestamp` header is not a unix timestamp")]
    BadTimestamp,
    #[error("the timestamp is outside the tolerance window")]
    TimestampOutOfTolerance,
    #[error("no signature in the header matches")]
    NoMatchingSignature,
}

/// An endpoint signing secret. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>` or bare base64, as Svix accepts both.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let key = BASE64
            .decode(encoded)
            .map_err(|_| SignatureError::SecretNotBase64)?;
        Self::from_key(key)
    }

    pub fn from_key(key: Vec<u8>) -> Result<Self, SignatureError> {
        if !(GENERATED_SECRET_BYTES..=64).contains(&key.len()) {
            return Err(SignatureError::SecretLength(key.len()));
        }
        Ok(Self { key })
    }

    /// A fresh random secret from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_SECRET_BYTES];
        rand::Rng::fill(&mut rand::rng(), key.as_mut_slice());
        Self { key }
    }

    /// The `whsec_…` form shown to API callers and stored.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.key))
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }

    /// `v1,<base64 HMAC-SHA256>` over `{id}.{timestamp}.{body}`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// The value of a `webhook-signature` header: one `v1,…` entry per secret, space-separated
/// (several during a rotation's grace period).
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|secret| secret.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Verifies a received request as a Standard Webhooks receiver would: the timestamp must lie
/// within `tolerance_seconds` of `now`, and at least one `v1` entry must match in constant time.
pub fn verify(
    secret: &Secret,
    msg_id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let timestamp: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if (now - timestamp).abs() > tolerance_seconds {
        return Err(SignatureError::TimestampOutOfTolerance);
    }
    let expected = secret.sign(msg_id, timestamp, body);
    let expected = expected.as_bytes();
    let matched = signature_header
        .split_whitespace()
        .filter(|entry| entry.starts_with("v1,"))
        .any(|entry| bool::from(entry.as_bytes().ct_eq(expected)));
    if matched {
        Ok(())
    } else {
        Err(SignatureError::NoMatchingSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_standard_webhooks_vector() {
        let secret = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let sig = secret.sign(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn second_standard_webhooks_vector() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn verify_accepts_any_matching_entry_and_rejects_tampering() {
        let old = Secret::generate();
        let new = Secret::generate();
        let body = br#"{"a":1}"#;
        let header = signature_header([&old, &new], "msg_1", 1000, body);
        assert_eq!(header.split(' ').count(), 2);
        assert_eq!(
            verify(&new, "msg_1", "1000", &header, body, 1010, 300),
            Ok(())
        );
        assert_eq!(
            verify(&old, "msg_1", "1000", &header, body, 1010, 300),
            Ok(())
        );
        assert_eq!(
            verify(&new, "msg_1", "1000", &header, b"{\"a\":2}", 1010, 300),
            Err(SignatureError::NoMatchingSignature)
        );
        assert_eq!(
            verify(&new, "msg_1", "1000", &header, body, 2000, 300),
            Err(SignatureError::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify(&new, "msg_1", "x", &header, body, 1000, 300),
            Err(SignatureError::BadTimestamp)
        );
    }

    #[test]
    fn secrets_round_trip_and_reject_bad_input() {
        let secret = Secret::generate();
        assert_eq!(Secret::parse(&secret.expose()).unwrap(), secret);
        assert_eq!(
            Secret::parse("whsec_!!!").unwrap_err(),
            SignatureError::SecretNotBase64
        );
        assert_eq!(
            Secret::parse("whsec_c2hvcnQ=").unwrap_err(),
            SignatureError::SecretLength(5)
        );
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    }
}
