//! Other senders' signature schemes, for verifying what they send us: Stripe's
//! `Stripe-Signature`, and the family of "an HMAC of the body in one header" schemes (GitHub,
//! Shopify, generic). Pure; every comparison is constant-time (`Mac::verify_slice`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Hex,
    Base64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the timestamp is outside the tolerance window")]
    TimestampOutOfTolerance,
    #[error("no signature matches")]
    Mismatch,
}

fn keyed<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> M {
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    parts.iter().for_each(|part| mac.update(part));
    mac
}

fn digest(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match algorithm {
        Algorithm::Sha256 => keyed::<Hmac<Sha256>>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::Sha512 => keyed::<Hmac<Sha512>>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
    }
}

fn matches(algorithm: Algorithm, key: &[u8], parts: &[&[u8]], presented: &[u8]) -> bool {
    match algorithm {
        Algorithm::Sha256 => keyed::<Hmac<Sha256>>(key, parts)
            .verify_slice(presented)
            .is_ok(),
        Algorithm::Sha512 => keyed::<Hmac<Sha512>>(key, parts)
            .verify_slice(presented)
            .is_ok(),
    }
}

fn encode(encoding: Encoding, bytes: &[u8]) -> String {
    match encoding {
        Encoding::Hex => hex::encode(bytes),
        Encoding::Base64 => BASE64.encode(bytes),
    }
}

fn decode(encoding: Encoding, text: &str) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Hex => hex::decode(text.trim()).ok(),
        Encoding::Base64 => BASE64.decode(text.trim()).ok(),
    }
}

/// The encoded HMAC of the concatenated `parts`, as a sender would put it in its header.
pub fn sign_hmac(algorithm: Algorithm, encoding: Encoding, key: &[u8], parts: &[&[u8]]) -> String {
    encode(encoding, &digest(algorithm, key, parts))
}

/// Checks an encoded HMAC (already stripped of any prefix such as `sha256=`) over `parts`.
pub fn verify_hmac(
    algorithm: Algorithm,
    encoding: Encoding,
    key: &[u8],
    parts: &[&[u8]],
    presented: &str,
) -> Result<(), ProviderError> {
    let presented = decode(encoding, presented)
        .ok_or(ProviderError::Malformed("the signature does not decode"))?;
    if matches(algorithm, key, parts, &presented) {
        Ok(())
    } else {
        Err(ProviderError::Mismatch)
    }
}

/// `t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, keyed by the whole secret string (`whsec_…`
/// included), as Stripe signs.
pub fn stripe_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let v1 = sign_hmac(
        Algorithm::Sha256,
        Encoding::Hex,
        secret.as_bytes(),
        &[t.as_bytes(), b".", body],
    );
    format!("t={t},v1={v1}")
}

/// Verifies a `Stripe-Signature` header: the timestamp within `tolerance_seconds` of `now`
/// (both directions), and any one `v1` entry matching.
pub fn verify_stripe(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), ProviderError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", value)) => timestamp = Some(value),
            Some(("v1", value)) => candidates.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(ProviderError::Malformed("no t= timestamp"))?;
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| ProviderError::Malformed("t= is not a unix timestamp"))?;
    if candidates.is_empty() {
        return Err(ProviderError::Malformed("no v1= signature"));
    }
    if (now - seconds).abs() > tolerance_seconds {
        return Err(ProviderError::TimestampOutOfTolerance);
    }
    let parts: [&[u8]; 3] = [timestamp.as_bytes(), b".", body];
    let matched = candidates.iter().any(|candidate| {
        hex::decode(candidate)
            .is_ok_and(|bytes| matches(Algorithm::Sha256, secret.as_bytes(), &parts, &bytes))
    });
    if matched {
        Ok(())
    } else {
        Err(ProviderError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
    #[test]
    fn github_documented_example() {
        let expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let parts: [&[u8]; 1] = [b"Hello, World!"];
        let key = b"It's a Secret to Everybody";
        assert_eq!(
            sign_hmac(Algorithm::Sha256, Encoding::Hex, key, &parts),
            expected
        );
        assert_eq!(
            verify_hmac(Algorithm::Sha256, Encoding::Hex, key, &parts, expected),
            Ok(())
        );
        assert_eq!(
            verify_hmac(
                Algorithm::Sha256,
                Encoding::Hex,
                key,
                &[b"Hello, World?"],
                expected
            ),
            Err(ProviderError::Mismatch)
        );
        assert_eq!(
            verify_hmac(Algorithm::Sha256, Encoding::Hex, key, &parts, "zz"),
            Err(ProviderError::Malformed("the signature does not decode"))
        );
    }

    #[test]
    fn base64_and_sha512_round_trip_and_detect_a_changed_body() {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let signature = sign_hmac(algorithm, Encoding::Base64, b"key", &[b"body"]);
            assert_eq!(
                verify_hmac(algorithm, Encoding::Base64, b"key", &[b"body"], &signature),
                Ok(())
            );
            assert_eq!(
                verify_hmac(algorithm, Encoding::Base64, b"key", &[b"bodY"], &signature),
                Err(ProviderError::Mismatch)
            );
        }
    }

    #[test]
    fn stripe_accepts_any_v1_within_tolerance() {
        let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
        let good = stripe_header("whsec_test", 1_700_000_000, body);
        let other = stripe_header("whsec_other", 1_700_000_000, body);
        let v1 = good.split_once(",v1=").unwrap().1;
        let both = format!("{other},v1={v1},v0=ignored");
        for header in [&good, &both] {
            assert_eq!(
                verify_stripe("whsec_test", header, body, 1_700_000_100, 300),
                Ok(())
            );
        }
        assert_eq!(
            verify_stripe("whsec_test", &other, body, 1_700_000_000, 300),
            Err(ProviderError::Mismatch)
        );
        assert_eq!(
            verify_stripe("whsec_test", &good, body, 1_700_000_301, 300),
            Err(ProviderError::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify_stripe("whsec_test", &good, body, 1_699_999_699, 300),
            Err(ProviderError::TimestampOutOfTolerance),
            "a timestamp from the future is refused too"
        );
        assert_eq!(
            verify_stripe("whsec_test", "v1=abc", body, 0, 300),
            Err(ProviderError::Malformed("no t= timestamp"))
        );
        assert_eq!(
            verify_stripe("whsec_test", "t=1", body, 1, 300),
            Err(ProviderError::Malformed("no v1= signature"))
        );
    }
}
