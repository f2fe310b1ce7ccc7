//! The inbound gateway end to end: sources, verification and the rejected log, dedup, hand-on
//! to URLs and in-process handlers, exhaustion and replay, secret rotation, alerts.

use crate::harness::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vestnik_delivery::{HandedEvent, Handler, HandlerError};
use vestnik_signature::{Secret, verify};

fn now_secs() -> i64 {
    vestnik_delivery::now_ms() / 1000
}

async fn create_source(app: &TestApp, body: Value) -> Value {
    let (status, source) = app.post("/source", body).await;
    assert_eq!(status, 201, "{source}");
    source
}

/// Posts `body` to the source with Standard Webhooks headers signed by `secret`.
async fn post_signed(
    app: &TestApp,
    source: &Value,
    secret: &str,
    msg_id: &str,
    ts: i64,
    body: &str,
) -> (u16, Value) {
    let signature = Secret::parse(secret)
        .unwrap()
        .sign(msg_id, ts, body.as_bytes());
    post_raw(
        app,
        source,
        &[
            ("webhook-id", msg_id.to_owned()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature),
            ("content-type", "application/json".to_owned()),
        ],
        body.as_bytes().to_vec(),
    )
    .await
}

async fn post_raw(
    app: &TestApp,
    source: &Value,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!(
            "{}{}",
            app.root(),
            source["ingestPath"].as_str().unwrap()
        ))
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn requests(app: &TestApp, source: &Value, query: &str) -> Vec<Value> {
    let (status, list) = app
        .get(&format!(
            "/source/{}/request{query}",
            source["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

async fn secret_of(app: &TestApp, source: &Value) -> String {
    let (_, secret) = app
        .get(&format!(
            "/source/{}/secret",
            source["id"].as_str().unwrap()
        ))
        .await;
    secret["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_verified_event_is_handed_on_once_signed_by_vestnik() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let source = create_source(
        &app,
        json!({"name": "Insurer", "uid": "insurer", "verification": {"type": "standard-webhooks"},
               "destinations": [{"url": format!("{}/claims", receiver.url)}]}),
    )
    .await;
    assert_eq!(
        source["ingestPath"],
        format!("/in/{}", source["id"].as_str().unwrap())
    );
    let secret = secret_of(&app, &source).await;
    assert!(secret.starts_with("whsec_"));
    let body =
        r#"{"type": "claim.status_changed", "data": {"claimId": "C-1",  "status": "approved"}}"#;
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(post_signed(&app, &source, &secret, "evt_claim_1_v2", now_secs(), body).await);
    }
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert_eq!(answers[0].1["status"], "accepted");
    for (status, answer) in &answers[1..] {
        assert_eq!((*status, &answer["status"]), (200, &json!("duplicate")));
        assert_eq!(answer["duplicateOf"], answers[0].1["id"]);
    }

    let delivered = eventually("the hand-on", async || {
        let log = requests(&app, &source, "?status=delivered").await;
        (log.len() == 1).then_some(log)
    })
    .await;
    assert_eq!(delivered[0]["eventId"], "evt_claim_1_v2");
    let received = receiver.received();
    assert_eq!(
        received.len(),
        1,
        "the same event sent three times is handed on once"
    );
    assert_eq!(
        &received[0].body[..],
        body.as_bytes(),
        "the body goes on byte for byte"
    );
    assert_eq!(received[0].headers["content-type"], "application/json");
    // The destination trusts Vestnik's own signature, made with its endpoint's secret.
    let endpoint_id = source["destinations"][0]["endpointId"].as_str().unwrap();
    let (_, key) = app
        .get(&format!(
            "/app/{}/endpoint/{endpoint_id}/secret",
            source["appId"].as_str().unwrap()
        ))
        .await;
    let header = |name: &str| received[0].headers[name].to_str().unwrap().to_owned();
    verify(
        &Secret::parse(key["key"].as_str().unwrap()).unwrap(),
        &header("webhook-id"),
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &received[0].body,
        now_secs(),
        300,
    )
    .expect("the hand-on carries Vestnik's signature");

    let duplicates = requests(&app, &source, "?status=duplicate").await;
    assert_eq!(duplicates.len(), 2);
    let (status, one) = app
        .get(&format!(
            "/source/insurer/request/{}",
            answers[0].1["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        one["body"], body,
        "the log keeps the body exactly as received"
    );
    assert_eq!(one["handling"], "delivered");
    assert_eq!(one["headers"]["webhook-id"], "evt_claim_1_v2");
    app.stop().await;
}

#[tokio::test]
async fn forged_stale_malformed_and_oversize_requests_are_refused_and_logged() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let source = create_source(
        &app,
        json!({"name": "Insurer", "verification": {"type": "standard-webhooks"}, "maxBodyBytes": 1000,
               "destinations": [{"url": format!("{}/claims", receiver.url)}]}),
    )
    .await;
    let secret = secret_of(&app, &source).await;
    let forged = Secret::generate().expose();
    let cases = [
        (
            post_signed(&app, &source, &forged, "m1", now_secs(), "{}").await,
            401,
            "signature_mismatch",
        ),
        (
            post_signed(&app, &source, &secret, "m2", now_secs() - 600, "{}").await,
            401,
            "timestamp_out_of_tolerance",
        ),
        (
            post_signed(&app, &source, &secret, "m3", now_secs() + 600, "{}").await,
            401,
            "timestamp_out_of_tolerance",
        ),
        (
            post_raw(&app, &source, &[], b"{}".to_vec()).await,
            401,
            "missing_signature",
        ),
        (
            post_raw(
                &app,
                &source,
                &[
                    ("webhook-id", "m4".into()),
                    ("webhook-timestamp", "noon".into()),
                    ("webhook-signature", "v1,x".into()),
                ],
                b"{}".to_vec(),
            )
            .await,
            400,
            "malformed_timestamp",
        ),
        (
            post_signed(&app, &source, &secret, "m5", now_secs(), &"x".repeat(2000)).await,
            413,
            "payload_too_large",
        ),
    ];
    for ((status, answer), want_status, want_code) in &cases {
        assert_eq!(
            (*status, answer["code"].as_str().unwrap()),
            (*want_status, *want_code),
            "{answer}"
        );
    }
    // A changed body with a genuine signature of another body.
    let signature = Secret::parse(&secret)
        .unwrap()
        .sign("m6", now_secs(), b"{\"a\":1}");
    let (status, answer) = post_raw(
        &app,
        &source,
        &[
            ("webhook-id", "m6".into()),
            ("webhook-timestamp", now_secs().to_string()),
            ("webhook-signature", signature),
        ],
        b"{\"a\":2}".to_vec(),
    )
    .await;
    assert_eq!(
        (status, &answer["code"]),
        (401, &json!("signature_mismatch"))
    );

    let rejected = requests(&app, &source, "?status=rejected").await;
    assert_eq!(rejected.len(), 7);
    assert!(
        rejected
            .iter()
            .all(|r| r["status"] == "rejected" && r["handling"].is_null())
    );
    let oversize = rejected
        .iter()
        .find(|r| {
            r["reason"]
                .as_str()
                .unwrap()
                .starts_with("payload_too_large")
        })
        .unwrap();
    assert_eq!(oversize["bodySize"], 2000);
    assert!(requests(&app, &source, "?status=accepted").await.is_empty());
    let (status, _) = post_raw(
        &app,
        &json!({"ingestPath": "/in/src_01JNOSUCHSOURCE0000000000"}),
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 404);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        receiver.received().is_empty(),
        "nothing refused is ever handed on"
    );
    app.stop().await;
}

/// An in-process handler that fails its first call, then records every event it applies.
#[derive(Clone, Default)]
struct Ledger {
    calls: Arc<Mutex<u32>>,
    applied: Arc<Mutex<Vec<HandedEvent>>>,
}

#[async_trait::async_trait]
impl Handler for Ledger {
    async fn handle(&self, event: HandedEvent) -> Result<(), HandlerError> {
        let first = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls == 1
        };
        if first {
            return Err(HandlerError("the clinic database is restarting".into()));
        }
        self.applied.lock().unwrap().push(event);
        Ok(())
    }
}

#[tokio::test]
async fn an_in_process_handler_gets_events_and_its_failures_are_retried() {
    let ledger = Ledger::default();
    let mut settings = fast_settings();
    settings
        .delivery
        .handlers
        .register("clinic-claims", ledger.clone());
    let app = spawn_app_with(settings).await;
    let (status, error) = app
        .post("/source", json!({"name": "x", "verification": {"type": "bearer"}, "destinations": [{"handler": "nobody"}]}))
        .await;
    assert_eq!(status, 422, "{error}");
    let source = create_source(
        &app,
        json!({"name": "Insurer", "verification": {"type": "github"}, "secret": "gh-secret",
               "destinations": [{"handler": "clinic-claims"}]}),
    )
    .await;
    assert_eq!(source["destinations"][0]["handler"], "clinic-claims");
    let body = br#"{"action":"opened"}"#;
    let signature = vestnik_signature::providers::sign_hmac(
        vestnik_signature::providers::Algorithm::Sha256,
        vestnik_signature::providers::Encoding::Hex,
        b"gh-secret",
        &[body],
    );
    let (status, answer) = post_raw(
        &app,
        &source,
        &[
            ("x-hub-signature-256", format!("sha256={signature}")),
            ("x-github-delivery", "72d3162e-cc78".into()),
            ("x-github-event", "pull_request".into()),
            ("content-type", "application/json".into()),
        ],
        body.to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let applied = eventually("the handler to apply the event", async || {
        let applied = ledger.applied.lock().unwrap().clone();
        (!applied.is_empty()).then_some(applied)
    })
    .await;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].event_type, "pull_request");
    assert_eq!(applied[0].event_id.as_deref(), Some("72d3162e-cc78"));
    assert_eq!(&applied[0].body[..], body);
    assert_eq!(
        applied[0].attempt, 2,
        "the first call failed and was retried"
    );
    assert!(
        applied[0]
            .headers
            .contains(&("x-github-event".into(), "pull_request".into()))
    );
    let request = &requests(&app, &source, "").await[0];
    let attempts = app
        .attempts(
            source["appId"].as_str().unwrap(),
            request["msgId"].as_str().unwrap(),
        )
        .await;
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["outcome"], "handler_error");
    assert_eq!(attempts[0]["response"], "the clinic database is restarting");
    assert_eq!(attempts[1]["outcome"], "success");
    app.stop().await;
}

#[tokio::test]
async fn an_exhausted_hand_on_is_visible_alerted_and_replayable() {
    let operator = TestReceiver::start().await;
    let mut settings = fast_settings();
    settings.operational_webhook_url = Some(format!("{}/ops", operator.url));
    let app = spawn_app_with(settings).await;
    let receiver = TestReceiver::start().await;
    receiver.fallback(Some(Reply::Status(500)));
    let source = create_source(
        &app,
        json!({"name": "Payments", "verification": {"type": "stripe"}, "secret": "whsec_stripe_test",
               "destinations": [{"url": format!("{}/payments", receiver.url)}]}),
    )
    .await;
    let body = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
    let header = vestnik_signature::providers::stripe_header("whsec_stripe_test", now_secs(), body);
    let (status, _) = post_raw(
        &app,
        &source,
        &[("stripe-signature", header)],
        body.to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let exhausted = eventually("the hand-on to exhaust its retries", async || {
        let log = requests(&app, &source, "?status=exhausted").await;
        (log.len() == 1).then_some(log)
    })
    .await;
    assert_eq!(exhausted[0]["eventId"], "evt_1");
    assert_eq!(receiver.received().len(), 4, "1 attempt + 3 retries");
    let alert = eventually("the exhaustion alert", async || {
        operator.received().into_iter().find_map(|r| {
            let event: Value = serde_json::from_slice(&r.body).ok()?;
            (event["type"] == "inbound.delivery.exhausted").then_some(event)
        })
    })
    .await;
    assert_eq!(alert["data"]["sourceId"], source["id"]);
    assert_eq!(alert["data"]["msgEventId"], "evt_1");

    receiver.fallback(None);
    let (status, replayed) = app
        .post(
            &format!("/source/{}/replay", source["id"].as_str().unwrap()),
            json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!((status, &replayed["replayed"]), (202, &json!(1)));
    eventually("the replay to deliver", async || {
        (requests(&app, &source, "?status=delivered").await.len() == 1).then_some(())
    })
    .await;
    assert_eq!(receiver.received().len(), 5);
    // Replaying one request by id works too.
    let id = exhausted[0]["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!(
                "/source/{}/request/{id}/replay",
                source["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, 202);
    eventually("the second replay", async || {
        (receiver.received().len() == 6).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_keeps_verifying_through_its_grace_period() {
    let app = spawn_app().await;
    let source = create_source(
        &app,
        json!({"name": "Insurer", "verification": {"type": "standard-webhooks"}}),
    )
    .await;
    let old = secret_of(&app, &source).await;
    let path = format!("/source/{}/secret/rotate", source["id"].as_str().unwrap());
    let (status, rotated) = app.post(&path, json!({"gracePeriodSeconds": 3600})).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    assert_eq!(
        post_signed(&app, &source, &new, "a", now_secs(), "{}")
            .await
            .0,
        200
    );
    assert_eq!(
        post_signed(&app, &source, &old, "b", now_secs(), "{}")
            .await
            .0,
        200,
        "old secret in grace"
    );
    // Without a grace period the replaced secret stops at once; the first keeps its hour.
    let (status, newest) = app.post(&path, json!({"gracePeriodSeconds": 0})).await;
    assert_eq!(status, 200);
    let newest = newest["key"].as_str().unwrap().to_owned();
    assert_eq!(
        post_signed(&app, &source, &new, "c", now_secs(), "{}")
            .await
            .0,
        401
    );
    assert_eq!(
        post_signed(&app, &source, &old, "d", now_secs(), "{}")
            .await
            .0,
        200
    );
    assert_eq!(
        post_signed(&app, &source, &newest, "e", now_secs(), "{}")
            .await
            .0,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn repeated_verification_failures_raise_an_alert() {
    let operator = TestReceiver::start().await;
    let mut settings = fast_settings();
    settings.operational_webhook_url = Some(format!("{}/ops", operator.url));
    settings.alerts.verification_failures = 3;
    let app = spawn_app_with(settings).await;
    let source = create_source(
        &app,
        json!({"name": "Insurer", "uid": "insurer", "verification": {"type": "bearer"}}),
    )
    .await;
    for _ in 0..5 {
        let (status, _) = post_raw(
            &app,
            &source,
            &[("authorization", "Bearer guess".into())],
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status, 401);
    }
    let alert = eventually("the alert", async || operator.received().first().cloned()).await;
    let event: Value = serde_json::from_slice(&alert.body).unwrap();
    assert_eq!(event["type"], "source.verification_failing");
    assert_eq!(event["data"]["sourceUid"], "insurer");
    assert_eq!(event["data"]["lastCode"], "bad_credentials");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        operator.received().len(),
        1,
        "one alert per window, not one per request"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_source_definitions_are_422() {
    let app = spawn_app().await;
    for body in [
        json!({"name": "x", "verification": {"type": "rot13"}}),
        json!({"name": "x", "verification": {"type": "stripe"}}),
        json!({"name": "x", "verification": {"type": "standard-webhooks"}, "secret": "not-base64!"}),
        json!({"name": "x", "verification": {"type": "none"}, "allowedIps": ["not-a-cidr"]}),
        json!({"name": "x", "verification": {"type": "none"}, "toleranceSeconds": 0}),
        json!({"name": "x", "verification": {"type": "none"}, "destinations": [{"url": "ftp://x"}]}),
        json!({"name": "", "verification": {"type": "none"}}),
    ] {
        let (status, error) = app.post("/source", body.clone()).await;
        assert_eq!(status, 422, "{body} → {error}");
    }
    let (status, _) = app.get("/source/nonexistent").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn round_trip_from_vestnik_outbound_to_vestnik_inbound() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    // The clinic's side: a source that trusts the insurer's endpoint secret.
    let source = create_source(
        &app,
        json!({"name": "Insurer", "verification": {"type": "standard-webhooks"},
               "destinations": [{"url": format!("{}/mis", receiver.url)}]}),
    )
    .await;
    let secret = secret_of(&app, &source).await;
    // The insurer's side: an application whose endpoint is the clinic's gateway.
    app.create_app("clinic-17").await;
    app.create_endpoint(
        "clinic-17",
        json!({"url": format!("{}{}", app.root(), source["ingestPath"].as_str().unwrap()), "secret": secret}),
    )
    .await;
    let payload = json!({"claimId": "C-7", "status": "partial", "approved": "1200.50"});
    let msg = app
        .send(
            "clinic-17",
            json!({"eventType": "claim.status_changed", "payload": payload}),
        )
        .await;
    let msg_id = msg["id"].as_str().unwrap();
    let attempts = app
        .wait_attempts("clinic-17", msg_id, |a| !a.is_empty())
        .await;
    assert_eq!(
        attempts[0]["responseStatusCode"], 200,
        "the gateway accepted the insurer's webhook"
    );
    let handed_on = eventually("the hand-on to the MIS", async || {
        receiver.received().first().cloned()
    })
    .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&handed_on.body).unwrap(),
        payload
    );
    let log = requests(&app, &source, "?status=accepted").await;
    assert_eq!(
        log[0]["eventId"], msg_id,
        "the insurer's webhook-id is the dedup key"
    );
    app.stop().await;
}

type Headers = Vec<(&'static str, String)>;

/// How a test signs for one preset: the source definition, and the headers for a body at a time.
struct Preset {
    verification: Value,
    secret: &'static str,
    timestamped: bool,
    sign: fn(&str, &[u8], i64) -> Headers,
}

fn presets() -> Vec<Preset> {
    use vestnik_signature::providers::{Algorithm, Encoding, sign_hmac, stripe_header};
    vec![
        Preset {
            verification: json!({"type": "standard-webhooks"}),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            timestamped: true,
            sign: |secret, body, ts| {
                let id = format!("msg_{ts}_{}", body.len());
                let signature = Secret::parse(secret).unwrap().sign(&id, ts, body);
                vec![
                    ("webhook-id", id),
                    ("webhook-timestamp", ts.to_string()),
                    ("webhook-signature", signature),
                ]
            },
        },
        Preset {
            verification: json!({"type": "stripe"}),
            secret: "whsec_stripe_preset",
            timestamped: true,
            sign: |secret, body, ts| vec![("stripe-signature", stripe_header(secret, ts, body))],
        },
        Preset {
            verification: json!({"type": "github"}),
            secret: "gh-preset",
            timestamped: false,
            sign: |secret, body, _| {
                let hex = sign_hmac(Algorithm::Sha256, Encoding::Hex, secret.as_bytes(), &[body]);
                vec![("x-hub-signature-256", format!("sha256={hex}"))]
            },
        },
        Preset {
            verification: json!({"type": "shopify"}),
            secret: "shp-preset",
            timestamped: false,
            sign: |secret, body, _| {
                vec![(
                    "x-shopify-hmac-sha256",
                    sign_hmac(
                        Algorithm::Sha256,
                        Encoding::Base64,
                        secret.as_bytes(),
                        &[body],
                    ),
                )]
            },
        },
        Preset {
            verification: json!({"type": "hmac", "header": "X-Signature", "algorithm": "sha512",
                                 "encoding": "base64", "prefix": "v1=", "timestampHeader": "X-Timestamp"}),
            secret: "generic-preset",
            timestamped: true,
            sign: |secret, body, ts| {
                let t = ts.to_string();
                let mac = sign_hmac(
                    Algorithm::Sha512,
                    Encoding::Base64,
                    secret.as_bytes(),
                    &[t.as_bytes(), b".", body],
                );
                vec![("x-timestamp", t), ("x-signature", format!("v1={mac}"))]
            },
        },
        Preset {
            verification: json!({"type": "bearer"}),
            secret: "bearer-preset",
            timestamped: false,
            sign: |secret, _, _| vec![("authorization", format!("Bearer {secret}"))],
        },
        Preset {
            verification: json!({"type": "basic"}),
            secret: "clinic:preset-password",
            timestamped: false,
            sign: |secret, _, _| {
                use base64::Engine as _;
                vec![(
                    "authorization",
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(secret)
                    ),
                )]
            },
        },
        Preset {
            verification: json!({"type": "header", "header": "X-Api-Key"}),
            secret: "header-preset",
            timestamped: false,
            sign: |secret, _, _| vec![("x-api-key", secret.to_owned())],
        },
    ]
}

#[tokio::test]
async fn every_preset_hands_on_the_genuine_and_logs_the_rest_as_rejected() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    let body = br#"{"id":"evt_preset","type":"claim.status_changed","status":"approved"}"#;
    let changed = br#"{"id":"evt_preset","type":"claim.status_changed","status":"denied"}"#;
    for preset in presets() {
        let name = preset.verification["type"].as_str().unwrap().to_owned();
        let source = create_source(
            &app,
            json!({"name": name, "verification": preset.verification, "secret": preset.secret,
                   "destinations": [{"url": format!("{}/{name}", receiver.url)}]}),
        )
        .await;
        let now = now_secs();
        let good = (preset.sign)(preset.secret, body, now);
        let (status, answer) = post_raw(&app, &source, &good, body.to_vec()).await;
        assert_eq!(
            (status, &answer["status"]),
            (200, &json!("accepted")),
            "{name}: {answer}"
        );

        let wrong_secret = match name.as_str() {
            "standard-webhooks" => Secret::generate().expose(),
            "basic" => "clinic:guess".to_owned(),
            _ => "not-the-secret".to_owned(),
        };
        let mut refused = vec![
            (
                "wrong secret",
                (preset.sign)(&wrong_secret, body, now),
                body.as_slice(),
                401,
            ),
            ("missing headers", Vec::new(), body.as_slice(), 401),
        ];
        if !matches!(name.as_str(), "bearer" | "basic" | "header") {
            refused.push(("modified body", good.clone(), changed.as_slice(), 401));
        }
        if preset.timestamped {
            refused.push((
                "stale timestamp",
                (preset.sign)(preset.secret, body, now - 3600),
                body.as_slice(),
                401,
            ));
        }
        for (case, headers, sent, want) in &refused {
            let (status, answer) = post_raw(&app, &source, headers, sent.to_vec()).await;
            assert_eq!(status, *want, "{name}, {case}: {answer}");
        }
        let rejected = requests(&app, &source, "?status=rejected").await;
        assert_eq!(
            rejected.len(),
            refused.len(),
            "{name}: every refusal is logged"
        );
        assert!(
            rejected.iter().all(|r| r["reason"].is_string()),
            "{name}: with its reason"
        );
        let path = format!("/{name}");
        eventually(&format!("{name}: the hand-on"), async || {
            (receiver.received_on(&path).len() == 1).then_some(())
        })
        .await;
        assert_eq!(
            &receiver.received_on(&path)[0].body[..],
            body,
            "{name}: handed on unchanged"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        receiver.received().len(),
        presets().len(),
        "only the genuine requests went on"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_rejected_log_keeps_only_the_newest_and_a_configured_event_id_deduplicates() {
    let mut settings = fast_settings();
    settings.inbound.rejected_kept = 3;
    let app = spawn_app_with(settings).await;
    let source = create_source(
        &app,
        json!({"name": "Bank", "verification": {"type": "bearer"}, "secret": "s3cret",
               "eventId": {"jsonPointer": "/payment/id"}}),
    )
    .await;
    for n in 0..5 {
        let (status, _) = post_raw(
            &app,
            &source,
            &[("authorization", "Bearer nope".into())],
            format!("{{\"n\":{n}}}").into_bytes(),
        )
        .await;
        assert_eq!(status, 401);
    }
    let rejected = requests(&app, &source, "?status=rejected").await;
    assert_eq!(
        rejected.len(),
        3,
        "a flood of forgeries cannot grow the log without bound"
    );
    let mut kept = Vec::new();
    for request in &rejected {
        let path = format!(
            "/source/{}/request/{}",
            source["id"].as_str().unwrap(),
            request["id"].as_str().unwrap()
        );
        kept.push(app.get(&path).await.1["body"].as_str().unwrap().to_owned());
    }
    kept.sort();
    assert_eq!(
        kept,
        [r#"{"n":2}"#, r#"{"n":3}"#, r#"{"n":4}"#],
        "the newest are kept"
    );
    let body = br#"{"payment":{"id":"pay-77"},"amount":"10.00"}"#;
    let auth = [("authorization", "Bearer s3cret".to_owned())];
    assert_eq!(
        post_raw(&app, &source, &auth, body.to_vec()).await.1["status"],
        "accepted"
    );
    assert_eq!(
        post_raw(&app, &source, &auth, body.to_vec()).await.1["status"],
        "duplicate"
    );
    let other = br#"{"payment":{"id":"pay-78"},"amount":"10.00"}"#;
    assert_eq!(
        post_raw(&app, &source, &auth, other.to_vec()).await.1["status"],
        "accepted"
    );
    app.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_allow_list_sees_the_forwarded_sender() {
    let mut settings = fast_settings();
    settings.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    let app = spawn_app_with(settings).await;
    let source = create_source(
        &app,
        json!({"name": "YooKassa", "verification": {"type": "none"}, "allowedIps": ["198.51.100.0/24"],
               "eventId": {"jsonPointer": "/object/id"}}),
    )
    .await;
    let from = |forwarded: Option<&str>| {
        let headers: Vec<(&str, String)> = forwarded
            .map(|f| ("x-forwarded-for", f.to_owned()))
            .into_iter()
            .collect();
        let body = format!(r#"{{"object":{{"id":"{}"}}}}"#, forwarded.unwrap_or("none"));
        let app = &app;
        let source = &source;
        async move { post_raw(app, source, &headers, body.into_bytes()).await }
    };
    assert_eq!(
        from(Some("198.51.100.7")).await.0,
        200,
        "the proxy vouches for the sender"
    );
    let (status, answer) = from(None).await;
    assert_eq!(
        (status, &answer["code"]),
        (401, &json!("ip_not_allowed")),
        "the proxy itself is not allowed"
    );
    let (status, _) = from(Some("198.51.100.7, 203.0.113.1")).await;
    assert_eq!(
        status, 401,
        "only the entry the proxy wrote counts, not one the client put first"
    );
    app.stop().await;
}
