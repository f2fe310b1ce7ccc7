//! What a verified request says about itself: the sender's event id (for dedup), an event type
//! (for destination filters), the headers that go on with the body, and the headers we log
//! (credentials redacted). Pure.

use crate::config::{EventIdRule, Scheme, SourceConfig};
use http::HeaderMap;

/// Event ids and types longer than this are not the sender's ids; they are ignored.
const MAX_ID_LEN: usize = 256;
/// The event type of a request whose scheme names none.
pub const DEFAULT_EVENT_TYPE: &str = "inbound";
const REDACTED: &str = "[redacted]";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn json_string(body: &[u8], pointer: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.pointer(pointer)? {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn usable(id: Option<String>) -> Option<String> {
    id.map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN)
}

/// The sender's id of this event: the configured rule, else the scheme's own place for it.
pub fn event_id(config: &SourceConfig, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let found = match &config.event_id {
        Some(EventIdRule::Header(name)) => header(headers, name).map(str::to_owned),
        Some(EventIdRule::JsonPointer(pointer)) => json_string(body, pointer),
        None => match &config.verification {
            Scheme::StandardWebhooks => header(headers, "webhook-id")
                .or_else(|| header(headers, "svix-id"))
                .map(str::to_owned),
            Scheme::Stripe => json_string(body, "/id"),
            Scheme::Github => header(headers, "x-github-delivery").map(str::to_owned),
            Scheme::Shopify => header(headers, "x-shopify-webhook-id").map(str::to_owned),
            _ => None,
        },
    };
    usable(found)
}

/// The event type destinations filter on: the sender's own name for it where its scheme has
/// one (Stripe's and Standard Webhooks' `type`, GitHub's event header, Shopify's topic), made
/// to fit `[a-zA-Z0-9-_.]`; otherwise `inbound`.
pub fn event_type(config: &SourceConfig, headers: &HeaderMap, body: &[u8]) -> String {
    let found = match &config.verification {
        Scheme::StandardWebhooks | Scheme::Stripe => json_string(body, "/type"),
        Scheme::Github => header(headers, "x-github-event").map(str::to_owned),
        Scheme::Shopify => header(headers, "x-shopify-topic").map(|topic| topic.replace('/', ".")),
        _ => None,
    };
    found
        .map(|name| {
            name.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .filter(|name| !name.is_empty() && name.len() <= MAX_ID_LEN)
        .unwrap_or_else(|| DEFAULT_EVENT_TYPE.to_owned())
}

/// Headers a scheme's receivers usually need beside the body.
fn scheme_headers(scheme: &Scheme) -> &'static [&'static str] {
    match scheme {
        Scheme::Github => &["x-github-event", "x-github-delivery", "x-github-hook-id"],
        Scheme::Shopify => &[
            "x-shopify-topic",
            "x-shopify-shop-domain",
            "x-shopify-webhook-id",
            "x-shopify-api-version",
        ],
        _ => &[],
    }
}

/// The original headers that go on to destinations: `content-type`, the scheme's own and the
/// configured ones, in that order, as lower-case names.
pub fn forwarded_headers(config: &SourceConfig, headers: &HeaderMap) -> Vec<(String, String)> {
    let mut names: Vec<&str> = vec!["content-type"];
    names.extend(scheme_headers(&config.verification));
    names.extend(config.forward_headers.iter().map(String::as_str));
    let mut forwarded = Vec::new();
    for name in names {
        if forwarded
            .iter()
            .any(|(seen, _): &(String, String)| seen == name)
        {
            continue;
        }
        if let Some(value) = header(headers, name) {
            forwarded.push((name.to_owned(), value.to_owned()));
        }
    }
    forwarded
}

fn is_credential(config: &SourceConfig, name: &str) -> bool {
    matches!(
        name,
        "authorization" | "proxy-authorization" | "cookie" | "x-api-key"
    ) || matches!(&config.verification, Scheme::Header { header } if header == name)
}

/// The sender's address: the TCP peer, unless the peer is a trusted proxy — then the nearest
/// address in `X-Forwarded-For` that is not itself a trusted proxy (read right to left, since
/// anything left of the proxies' own entries is the client's to write).
pub fn client_address(
    peer: std::net::IpAddr,
    forwarded_for: Option<&str>,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |address: &std::net::IpAddr| trusted.iter().any(|net| net.contains(address));
    if !is_trusted(&peer) {
        return peer;
    }
    forwarded_for
        .into_iter()
        .flat_map(|header| header.rsplit(','))
        .filter_map(|entry| entry.trim().parse::<std::net::IpAddr>().ok())
        .find(|address| !is_trusted(address))
        .unwrap_or(peer)
}

/// The request's headers as a JSON object for the request log, credentials replaced by
/// `[redacted]`; repeated headers are joined with `, `.
pub fn logged_headers(config: &SourceConfig, headers: &HeaderMap) -> String {
    let mut object = serde_json::Map::new();
    for name in headers.keys() {
        let value = if is_credential(config, name.as_str()) {
            REDACTED.to_owned()
        } else {
            headers
                .get_all(name)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        object.insert(name.as_str().to_owned(), serde_json::Value::String(value));
    }
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn each_scheme_finds_its_event_id_and_a_rule_overrides_it() {
        let body = br#"{"id":"evt_9","type":"invoice.paid","data":{"n":7}}"#;
        let stripe = SourceConfig::new(Scheme::Stripe);
        assert_eq!(
            event_id(&stripe, &HeaderMap::new(), body).as_deref(),
            Some("evt_9")
        );
        assert_eq!(event_type(&stripe, &HeaderMap::new(), body), "invoice.paid");
        let github = SourceConfig::new(Scheme::Github);
        let gh = headers(&[
            ("x-github-delivery", "72d3162e"),
            ("x-github-event", "pull_request"),
        ]);
        assert_eq!(event_id(&github, &gh, b"{}").as_deref(), Some("72d3162e"));
        assert_eq!(event_type(&github, &gh, b"{}"), "pull_request");
        let shopify = SourceConfig::new(Scheme::Shopify);
        let sh = headers(&[
            ("x-shopify-webhook-id", "b54557e4"),
            ("x-shopify-topic", "orders/create"),
        ]);
        assert_eq!(event_id(&shopify, &sh, b"{}").as_deref(), Some("b54557e4"));
        assert_eq!(event_type(&shopify, &sh, b"{}"), "orders.create");
        let sw = SourceConfig::new(Scheme::StandardWebhooks);
        assert_eq!(
            event_id(&sw, &headers(&[("svix-id", "msg_2")]), b"{}").as_deref(),
            Some("msg_2")
        );
        let mut by_pointer = SourceConfig::new(Scheme::None);
        by_pointer.event_id = Some(EventIdRule::JsonPointer("/data/n".into()));
        assert_eq!(
            event_id(&by_pointer, &HeaderMap::new(), body).as_deref(),
            Some("7")
        );
        assert_eq!(
            event_id(&SourceConfig::new(Scheme::Bearer), &HeaderMap::new(), body),
            None
        );
        assert_eq!(
            event_type(&SourceConfig::new(Scheme::Bearer), &HeaderMap::new(), body),
            "inbound"
        );
    }

    #[test]
    fn forwarded_and_logged_headers() {
        let mut config = SourceConfig::new(Scheme::Header {
            header: "x-token".into(),
        });
        config.forward_headers = vec!["x-request-id".into()];
        let sent = headers(&[
            ("content-type", "application/json"),
            ("x-request-id", "r-1"),
            ("x-token", "secret-value"),
            ("authorization", "Bearer abc"),
            ("x-multi", "a"),
            ("x-multi", "b"),
        ]);
        assert_eq!(
            forwarded_headers(&config, &sent),
            [
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-request-id".to_owned(), "r-1".to_owned())
            ]
        );
        let logged: serde_json::Value =
            serde_json::from_str(&logged_headers(&config, &sent)).unwrap();
        assert_eq!(logged["x-token"], "[redacted]");
        assert_eq!(logged["authorization"], "[redacted]");
        assert_eq!(logged["x-multi"], "a, b");
        assert_eq!(logged["x-request-id"], "r-1");
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
        // Straight from the internet: the peer, whatever the header claims.
        assert_eq!(
            client_address(ip("203.0.113.9"), Some("185.71.76.1"), &trusted),
            ip("203.0.113.9")
        );
        // Through the proxy: the nearest untrusted entry, not a spoofed one further left.
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                Some("185.71.76.1, 198.51.100.7, 10.0.0.3"),
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("garbage"), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), None, &trusted),
            ip("10.0.0.2")
        );
    }
}
