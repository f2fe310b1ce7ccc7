//! Verification of one received request against its source's scheme, secrets and IP allow-list.
//! Pure: the clock reading is an argument. Every secret comparison is constant-time.

use crate::config::{Scheme, SourceConfig};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;
use std::net::IpAddr;
use subtle::ConstantTimeEq;
use vestnik_signature::providers::{self, Algorithm, Encoding, ProviderError};
use vestnik_signature::{Secret, SignatureError};

/// Why a request was refused: the HTTP status (400 malformed, 401 not authentic), a stable code
/// and a detail that is safe to show the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
}

impl Rejection {
    fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: 401,
            code,
            detail: detail.into(),
        }
    }

    fn malformed(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            detail: detail.into(),
        }
    }

    fn missing(header: &str) -> Self {
        Self::unauthorized(
            "missing_signature",
            format!("the {header} header is missing"),
        )
    }

    fn mismatch() -> Self {
        Self::unauthorized(
            "signature_mismatch",
            "no signature matches the source's secrets",
        )
    }

    fn stale() -> Self {
        Self::unauthorized(
            "timestamp_out_of_tolerance",
            "the request's timestamp is outside the tolerance window",
        )
    }
}

/// What verification looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub remote: IpAddr,
}

impl RequestParts<'_> {
    /// A header's value as text; `Err` when present but not visible ASCII.
    fn header(&self, name: &str) -> Result<Option<&str>, Rejection> {
        match self.headers.get(name) {
            None => Ok(None),
            Some(value) => value.to_str().map(Some).map_err(|_| {
                Rejection::malformed("malformed_header", format!("the {name} header is not text"))
            }),
        }
    }

    fn first_header(&self, names: &[&str]) -> Result<Option<&str>, Rejection> {
        for name in names {
            if let Some(value) = self.header(name)? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    fn required(&self, names: &[&str]) -> Result<&str, Rejection> {
        self.first_header(names)?
            .ok_or_else(|| Rejection::missing(names[0]))
    }
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// Verifies `request` for a source whose currently valid secrets are `secrets` (the current one
/// and any still inside a rotation's grace period).
pub fn verify(
    config: &SourceConfig,
    secrets: &[&str],
    request: &RequestParts<'_>,
    now_secs: i64,
) -> Result<(), Rejection> {
    if !config.allowed_ips.is_empty() {
        let remote = canonical(request.remote);
        if !config.allowed_ips.iter().any(|net| net.contains(&remote)) {
            return Err(Rejection::unauthorized(
                "ip_not_allowed",
                "the request comes from an address this source does not allow",
            ));
        }
    }
    let tolerance = config.tolerance_seconds;
    match &config.verification {
        Scheme::None => Ok(()),
        Scheme::StandardWebhooks => standard_webhooks(secrets, request, now_secs, tolerance),
        Scheme::Stripe => {
            let header = request.required(&["stripe-signature"])?;
            first_match(secrets, |secret| {
                providers::verify_stripe(secret, header, request.body, now_secs, tolerance)
            })
        }
        Scheme::Github => {
            let header = request.required(&["x-hub-signature-256"])?;
            let hex = header.strip_prefix("sha256=").ok_or_else(|| {
                Rejection::malformed(
                    "malformed_signature",
                    "X-Hub-Signature-256 must start with sha256=",
                )
            })?;
            body_hmac(
                secrets,
                Algorithm::Sha256,
                Encoding::Hex,
                &[request.body],
                hex,
            )
        }
        Scheme::Shopify => {
            let header = request.required(&["x-shopify-hmac-sha256"])?;
            body_hmac(
                secrets,
                Algorithm::Sha256,
                Encoding::Base64,
                &[request.body],
                header,
            )
        }
        Scheme::Hmac {
            header,
            algorithm,
            encoding,
            prefix,
            timestamp_header,
        } => {
            let value = request.required(&[header.as_str()])?;
            let signature = match prefix {
                Some(prefix) => value.strip_prefix(prefix.as_str()).ok_or_else(|| {
                    Rejection::malformed(
                        "malformed_signature",
                        format!("the {header} header must start with {prefix:?}"),
                    )
                })?,
                None => value,
            };
            match timestamp_header {
                None => body_hmac(secrets, *algorithm, *encoding, &[request.body], signature),
                Some(name) => {
                    let timestamp = request.required(&[name.as_str()])?;
                    let seconds: i64 = timestamp.trim().parse().map_err(|_| {
                        Rejection::malformed(
                            "malformed_timestamp",
                            format!("the {name} header is not a unix timestamp"),
                        )
                    })?;
                    if (now_secs - seconds).abs() > tolerance {
                        return Err(Rejection::stale());
                    }
                    let parts: [&[u8]; 3] = [timestamp.as_bytes(), b".", request.body];
                    body_hmac(secrets, *algorithm, *encoding, &parts, signature)
                }
            }
        }
        Scheme::Bearer => {
            let value = request
                .header("authorization")?
                .ok_or_else(missing_credentials)?;
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(|| {
                    Rejection::malformed(
                        "malformed_credentials",
                        "Authorization must be Bearer <token>",
                    )
                })?;
            equal_to_a_secret(secrets, token.trim().as_bytes())
        }
        Scheme::Basic => {
            let value = request
                .header("authorization")?
                .ok_or_else(missing_credentials)?;
            let encoded = value
                .strip_prefix("Basic ")
                .or_else(|| value.strip_prefix("basic "))
                .ok_or_else(|| {
                    Rejection::malformed(
                        "malformed_credentials",
                        "Authorization must be Basic <base64>",
                    )
                })?;
            let decoded = BASE64.decode(encoded.trim()).map_err(|_| {
                Rejection::malformed(
                    "malformed_credentials",
                    "the Basic credentials are not base64",
                )
            })?;
            equal_to_a_secret(secrets, &decoded)
        }
        Scheme::Header { header } => {
            let value = request.header(header)?.ok_or_else(missing_credentials)?;
            equal_to_a_secret(secrets, value.as_bytes())
        }
    }
}

fn missing_credentials() -> Rejection {
    Rejection::unauthorized("missing_credentials", "the request carries no credentials")
}

fn equal_to_a_secret(secrets: &[&str], presented: &[u8]) -> Result<(), Rejection> {
    // Every secret is compared, so the time taken does not tell which one (if any) matched.
    let matched = secrets.iter().fold(subtle::Choice::from(0), |any, secret| {
        any | secret.as_bytes().ct_eq(presented)
    });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(Rejection::unauthorized(
            "bad_credentials",
            "the credentials do not match",
        ))
    }
}

fn provider_rejection(err: ProviderError) -> Rejection {
    match err {
        ProviderError::Malformed(detail) => Rejection::malformed("malformed_signature", detail),
        ProviderError::TimestampOutOfTolerance => Rejection::stale(),
        ProviderError::Mismatch => Rejection::mismatch(),
    }
}

/// Tries each secret; a malformed header or a stale timestamp ends the search at once.
fn first_match(
    secrets: &[&str],
    check: impl Fn(&str) -> Result<(), ProviderError>,
) -> Result<(), Rejection> {
    for secret in secrets {
        match check(secret) {
            Ok(()) => return Ok(()),
            Err(ProviderError::Mismatch) => {}
            Err(other) => return Err(provider_rejection(other)),
        }
    }
    Err(Rejection::mismatch())
}

fn body_hmac(
    secrets: &[&str],
    algorithm: Algorithm,
    encoding: Encoding,
    parts: &[&[u8]],
    signature: &str,
) -> Result<(), Rejection> {
    first_match(secrets, |secret| {
        providers::verify_hmac(algorithm, encoding, secret.as_bytes(), parts, signature)
    })
}

fn standard_webhooks(
    secrets: &[&str],
    request: &RequestParts<'_>,
    now_secs: i64,
    tolerance: i64,
) -> Result<(), Rejection> {
    let id = request.required(&["webhook-id", "svix-id"])?;
    let timestamp = request.required(&["webhook-timestamp", "svix-timestamp"])?;
    let signature = request.required(&["webhook-signature", "svix-signature"])?;
    for secret in secrets {
        let Ok(secret) = Secret::parse(secret) else {
            continue;
        };
        match vestnik_signature::verify(
            &secret,
            id,
            timestamp,
            signature,
            request.body,
            now_secs,
            tolerance,
        ) {
            Ok(()) => return Ok(()),
            Err(SignatureError::NoMatchingSignature) => {}
            Err(SignatureError::BadTimestamp) => {
                return Err(Rejection::malformed(
                    "malformed_timestamp",
                    "the webhook-timestamp header is not a unix timestamp",
                ));
            }
            Err(SignatureError::TimestampOutOfTolerance) => return Err(Rejection::stale()),
            Err(SignatureError::SecretNotBase64 | SignatureError::SecretLength(_)) => {}
        }
    }
    Err(Rejection::mismatch())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EventIdRule;
    use http::HeaderValue;
    use vestnik_signature::providers::{sign_hmac, stripe_header};

    const NOW: i64 = 1_700_000_000;
    type Headers = Vec<(&'static str, String)>;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"claim.decided"}"#;

    fn local() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn check(
        scheme: Scheme,
        secrets: &[&str],
        pairs: &[(&str, String)],
        body: &[u8],
    ) -> Result<(), Rejection> {
        let config = SourceConfig::new(scheme).validated().unwrap();
        let headers = headers(pairs);
        verify(
            &config,
            secrets,
            &RequestParts {
                headers: &headers,
                body,
                remote: local(),
            },
            NOW,
        )
    }

    fn code(result: Result<(), Rejection>) -> (u16, &'static str) {
        let rejection = result.unwrap_err();
        (rejection.status, rejection.code)
    }

    /// Each scheme: a good request passes; a changed body, a wrong secret and a missing header fail.
    #[test]
    fn every_preset_accepts_its_own_and_rejects_tampering() {
        let whsec = Secret::generate().expose();
        let sw_sign = |body: &[u8], ts: i64| {
            let secret = Secret::parse(&whsec).unwrap();
            vec![
                ("webhook-id", "msg_1".to_owned()),
                ("webhook-timestamp", ts.to_string()),
                ("webhook-signature", secret.sign("msg_1", ts, body)),
            ]
        };
        let cases: Vec<(Scheme, String, Headers)> = vec![
            (Scheme::StandardWebhooks, whsec.clone(), sw_sign(BODY, NOW)),
            (
                Scheme::Stripe,
                "whsec_stripe".into(),
                vec![("stripe-signature", stripe_header("whsec_stripe", NOW, BODY))],
            ),
            (
                Scheme::Github,
                "gh-secret".into(),
                vec![(
                    "x-hub-signature-256",
                    format!(
                        "sha256={}",
                        sign_hmac(Algorithm::Sha256, Encoding::Hex, b"gh-secret", &[BODY])
                    ),
                )],
            ),
            (
                Scheme::Shopify,
                "shp-secret".into(),
                vec![(
                    "x-shopify-hmac-sha256",
                    sign_hmac(Algorithm::Sha256, Encoding::Base64, b"shp-secret", &[BODY]),
                )],
            ),
            (
                Scheme::Hmac {
                    header: "x-sig".into(),
                    algorithm: Algorithm::Sha512,
                    encoding: Encoding::Base64,
                    prefix: Some("v1=".into()),
                    timestamp_header: Some("x-ts".into()),
                },
                "generic".into(),
                vec![
                    ("x-ts", NOW.to_string()),
                    (
                        "x-sig",
                        format!(
                            "v1={}",
                            sign_hmac(
                                Algorithm::Sha512,
                                Encoding::Base64,
                                b"generic",
                                &[NOW.to_string().as_bytes(), b".", BODY]
                            )
                        ),
                    ),
                ],
            ),
            (
                Scheme::Bearer,
                "tok".into(),
                vec![("authorization", "Bearer tok".into())],
            ),
            (
                Scheme::Basic,
                "user:pass".into(),
                vec![(
                    "authorization",
                    format!("Basic {}", BASE64.encode("user:pass")),
                )],
            ),
            (
                Scheme::Header {
                    header: "x-api-key".into(),
                },
                "key-1".into(),
                vec![("x-api-key", "key-1".into())],
            ),
        ];
        for (scheme, secret, pairs) in cases {
            let name = scheme.name();
            assert_eq!(
                check(scheme.clone(), &[&secret], &pairs, BODY),
                Ok(()),
                "{name}"
            );
            let other = Secret::generate().expose();
            assert_eq!(
                code(check(scheme.clone(), &[&other], &pairs, BODY)).0,
                401,
                "{name}: wrong secret"
            );
            if !matches!(
                scheme,
                Scheme::Bearer | Scheme::Basic | Scheme::Header { .. }
            ) {
                assert_eq!(
                    code(check(
                        scheme.clone(),
                        &[&secret],
                        &pairs,
                        b"{\"id\":\"evt_2\"}"
                    )),
                    (401, "signature_mismatch"),
                    "{name}: changed body"
                );
            }
            let (status, _) = code(check(scheme.clone(), &[&secret], &[], BODY));
            assert_eq!(status, 401, "{name}: no headers");
            // A rotation's old and new secrets both verify.
            assert_eq!(
                check(scheme, &[&other, &secret], &pairs, BODY),
                Ok(()),
                "{name}: rotation"
            );
        }
        // Standard Webhooks also takes the svix- twins, and refuses stale or future timestamps.
        let secret = Secret::parse(&whsec).unwrap();
        let svix = vec![
            ("svix-id", "msg_1".to_owned()),
            ("svix-timestamp", NOW.to_string()),
            ("svix-signature", secret.sign("msg_1", NOW, BODY)),
        ];
        assert_eq!(
            check(Scheme::StandardWebhooks, &[&whsec], &svix, BODY),
            Ok(())
        );
        for skew in [-301, 301] {
            assert_eq!(
                code(check(
                    Scheme::StandardWebhooks,
                    &[&whsec],
                    &sw_sign(BODY, NOW + skew),
                    BODY
                )),
                (401, "timestamp_out_of_tolerance")
            );
        }
    }

    #[test]
    fn stale_and_malformed_headers_get_their_own_codes() {
        let stale = vec![("stripe-signature", stripe_header("s", NOW - 600, BODY))];
        assert_eq!(
            code(check(Scheme::Stripe, &["s"], &stale, BODY)),
            (401, "timestamp_out_of_tolerance")
        );
        let garbled = vec![("stripe-signature", "v1=abc".to_owned())];
        assert_eq!(
            code(check(Scheme::Stripe, &["s"], &garbled, BODY)),
            (400, "malformed_signature")
        );
        let no_prefix = vec![("x-hub-signature-256", "abc".to_owned())];
        assert_eq!(
            code(check(Scheme::Github, &["s"], &no_prefix, BODY)),
            (400, "malformed_signature")
        );
        let bad_ts = vec![
            ("webhook-id", "m".to_owned()),
            ("webhook-timestamp", "soon".to_owned()),
            ("webhook-signature", "v1,x".to_owned()),
        ];
        let whsec = Secret::generate().expose();
        assert_eq!(
            code(check(Scheme::StandardWebhooks, &[&whsec], &bad_ts, BODY)),
            (400, "malformed_timestamp")
        );
        let scheme = Scheme::Hmac {
            header: "x-sig".into(),
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            prefix: None,
            timestamp_header: Some("x-ts".into()),
        };
        let old = (NOW - 301).to_string();
        let signed = sign_hmac(
            Algorithm::Sha256,
            Encoding::Hex,
            b"s",
            &[old.as_bytes(), b".", BODY],
        );
        let stale = vec![("x-ts", old), ("x-sig", signed)];
        assert_eq!(
            code(check(scheme, &["s"], &stale, BODY)),
            (401, "timestamp_out_of_tolerance")
        );
    }

    #[test]
    fn the_ip_allow_list_guards_every_scheme_and_knows_mapped_addresses() {
        let mut config = SourceConfig::new(Scheme::None);
        config.allowed_ips = vec!["185.71.76.0/27".parse().unwrap()];
        config.event_id = Some(EventIdRule::JsonPointer("/object/id".into()));
        let config = config.validated().unwrap();
        let headers = HeaderMap::new();
        let from = |remote: &str| {
            verify(
                &config,
                &[],
                &RequestParts {
                    headers: &headers,
                    body: BODY,
                    remote: remote.parse().unwrap(),
                },
                NOW,
            )
        };
        assert_eq!(from("185.71.76.5"), Ok(()));
        assert_eq!(from("::ffff:185.71.76.5"), Ok(()));
        assert_eq!(code(from("185.71.77.5")), (401, "ip_not_allowed"));
        assert_eq!(code(from("127.0.0.1")), (401, "ip_not_allowed"));
    }
}
