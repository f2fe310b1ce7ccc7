//! The headers of one attempt: Standard Webhooks signature headers (and their `svix-` twins),
//! then an inbound request's forwarded headers, then the endpoint's custom headers; neither of
//! the latter may override the signature headers.

use vestnik_signature::{Secret, signature_header};

/// Headers that belong to Vestnik; a custom header with one of these names is ignored.
pub const RESERVED_HEADERS: [&str; 8] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "content-type",
    "content-length",
];

pub fn is_reserved(name: &str) -> bool {
    RESERVED_HEADERS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
}

/// Builds the header list for one attempt, in sending order.
pub fn attempt_headers(
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    secrets: &[Secret],
    svix_headers: bool,
    forwarded: &[(String, String)],
    custom: &[(String, String)],
) -> Vec<(String, String)> {
    let signature = signature_header(secrets, msg_id, timestamp, body);
    let timestamp = timestamp.to_string();
    // A forwarded inbound body keeps the content type its sender gave it.
    let content_type = forwarded
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map_or("application/json", |(_, value)| value.as_str());
    let mut headers = vec![
        ("content-type".to_owned(), content_type.to_owned()),
        ("webhook-id".to_owned(), msg_id.to_owned()),
        ("webhook-timestamp".to_owned(), timestamp.clone()),
        ("webhook-signature".to_owned(), signature.clone()),
    ];
    if svix_headers {
        headers.push(("svix-id".to_owned(), msg_id.to_owned()));
        headers.push(("svix-timestamp".to_owned(), timestamp));
        headers.push(("svix-signature".to_owned(), signature));
    }
    headers.extend(
        forwarded
            .iter()
            .chain(custom)
            .filter(|(name, _)| !is_reserved(name))
            .cloned(),
    );
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svix_twins_and_custom_headers_follow_the_standard_ones() {
        let secret = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let custom = vec![
            ("X-Clinic".to_owned(), "42".to_owned()),
            ("Webhook-Signature".to_owned(), "forged".to_owned()),
        ];
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let headers = attempt_headers(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            body,
            &[secret],
            true,
            &[],
            &custom,
        );
        let get = |name: &str| {
            headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            get("webhook-signature"),
            vec!["v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="]
        );
        assert_eq!(get("svix-signature"), get("webhook-signature"));
        assert_eq!(get("svix-timestamp"), vec!["1649367553"]);
        assert_eq!(get("x-clinic"), vec!["42"]);
    }

    #[test]
    fn standard_only_mode_sends_no_svix_headers() {
        let headers = attempt_headers("msg_1", 1, b"{}", &[Secret::generate()], false, &[], &[]);
        assert!(headers.iter().all(|(name, _)| !name.starts_with("svix-")));
        assert_eq!(headers.len(), 4);
    }

    #[test]
    fn forwarded_headers_keep_their_content_type_but_not_a_senders_signature() {
        let forwarded = vec![
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("x-github-event".to_owned(), "push".to_owned()),
            (
                "webhook-signature".to_owned(),
                "v1,from-the-sender".to_owned(),
            ),
        ];
        let secret = Secret::generate();
        let headers = attempt_headers(
            "msg_1",
            1,
            b"a=1",
            std::slice::from_ref(&secret),
            false,
            &forwarded,
            &[],
        );
        let get = |name: &str| {
            headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("content-type"), ["application/x-www-form-urlencoded"]);
        assert_eq!(get("x-github-event"), ["push"]);
        assert_eq!(get("webhook-signature"), [secret.sign("msg_1", 1, b"a=1")]);
    }
}
