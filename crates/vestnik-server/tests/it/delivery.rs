//! The delivery pipeline end to end: fan-out, retries, Retry-After, 410, timeouts, the SSRF
//! guard, resend, recover, recovery catch-up, secret rotation, operational webhooks and send-example.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;
use vestnik_signature::{Secret, verify};

fn header(received: &Received, name: &str) -> String {
    received
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn now_secs() -> i64 {
    vestnik_delivery::now_ms() / 1000
}

#[tokio::test]
async fn fan_out_follows_event_type_filters_and_channels() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    app.create_app("clinic").await;
    let everything = format!("{}/all", receiver.url);
    let claims_only = format!("{}/claims", receiver.url);
    let channel_a = format!("{}/chan-a", receiver.url);
    app.create_endpoint("clinic", json!({"url": everything}))
        .await;
    app.create_endpoint(
        "clinic",
        json!({"url": claims_only, "eventTypes": ["claim.status_changed"]}),
    )
    .await;
    app.create_endpoint("clinic", json!({"url": channel_a, "channels": ["a"]}))
        .await;

    let claim = app
        .send(
            "clinic",
            json!({"eventType": "claim.status_changed", "payload": {"n": 1}}),
        )
        .await;
    // Sent as raw text: the payload's spacing and key order must survive to the receiver.
    let raw =
        r#"{"eventType": "patient.updated", "channels": ["a"], "payload": {"z": 2,  "a": [1, 2]}}"#;
    let response = app
        .client
        .post(format!("{}/app/clinic/msg", app.base))
        .bearer_auth(TOKEN)
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let other: serde_json::Value = response.json().await.unwrap();
    app.wait_attempts("clinic", claim["id"].as_str().unwrap(), |a| a.len() == 2)
        .await;
    app.wait_attempts("clinic", other["id"].as_str().unwrap(), |a| a.len() == 2)
        .await;

    assert_eq!(receiver.received_on("/all").len(), 2);
    let claims = receiver.received_on("/claims");
    assert_eq!(claims.len(), 1);
    assert_eq!(
        header(&claims[0], "webhook-id"),
        claim["id"].as_str().unwrap()
    );
    let channel = receiver.received_on("/chan-a");
    assert_eq!(channel.len(), 1);
    assert_eq!(
        header(&channel[0], "webhook-id"),
        other["id"].as_str().unwrap()
    );
    assert_eq!(
        &channel[0].body[..],
        br#"{"z": 2,  "a": [1, 2]}"#,
        "the payload goes out byte for byte"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_three_attempts_and_the_message_is_delivered() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    receiver.script([Reply::Status(500), Reply::Status(502)]);
    app.create_app("clinic").await;
    let endpoint = app
        .create_endpoint("clinic", json!({"url": format!("{}/hook", receiver.url)}))
        .await;
    let msg = app
        .send(
            "clinic",
            json!({"eventType": "claim.status_changed", "payload": {"claim": "c1"}}),
        )
        .await;
    let msg_id = msg["id"].as_str().unwrap();
    let attempts = app
        .wait_attempts("clinic", msg_id, |a| a.iter().any(|x| x["status"] == 0))
        .await;
    let codes: Vec<_> = attempts
        .iter()
        .map(|a| a["responseStatusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 502, 200]);
    assert_eq!(attempts[0]["outcome"], "http_status");
    assert_eq!(attempts[2]["outcome"], "success");
    // The same webhook-id on every retry, a fresh timestamp each time.
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| header(r, "webhook-id") == msg_id));
    let (_, destinations) = app.get(&format!("/app/clinic/msg/{msg_id}/endpoint")).await;
    assert_eq!(destinations["data"][0]["id"], endpoint["id"]);
    assert_eq!(destinations["data"][0]["statusText"], "success");
    app.stop().await;
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    receiver.script([Reply::RetryAfter(429, 2)]);
    app.create_app("clinic").await;
    app.create_endpoint("clinic", json!({"url": format!("{}/hook", receiver.url)}))
        .await;
    let msg = app
        .send("clinic", json!({"eventType": "x", "payload": {}}))
        .await;
    let attempts = app
        .wait_attempts("clinic", msg["id"].as_str().unwrap(), |a| a.len() == 2)
        .await;
    assert_eq!(attempts[0]["responseStatusCode"], 429);
    let first = attempts[0]["timestamp"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    let second = attempts[1]["timestamp"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    // The schedule alone would retry after 50 ms; the receiver asked for 2 s.
    assert!(
        second.duration_since(first) >= jiff::SignedDuration::from_millis(1_900),
        "{first} → {second}"
    );
    app.stop().await;
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_stops_retrying() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    receiver.script([Reply::Status(410)]);
    app.create_app("clinic").await;
    let endpoint = app
        .create_endpoint("clinic", json!({"url": format!("{}/hook", receiver.url)}))
        .await;
    let msg = app
        .send("clinic", json!({"eventType": "x", "payload": {}}))
        .await;
    app.wait_attempts("clinic", msg["id"].as_str().unwrap(), |a| a.len() == 1)
        .await;
    let ep_id = endpoint["id"].as_str().unwrap();
    for _ in 0..200 {
        let (_, ep) = app.get(&format!("/app/clinic/endpoint/{ep_id}")).await;
        if ep["disabled"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (_, ep) = app.get(&format!("/app/clinic/endpoint/{ep_id}")).await;
    assert_eq!(ep["disabled"], true);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 1, "no retry after 410");
    let (_, stats) = app
        .get(&format!("/app/clinic/endpoint/{ep_id}/stats"))
        .await;
    assert_eq!(stats["fail"], 1);
    app.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_times_out() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    receiver.script([Reply::Sleep(Duration::from_secs(3))]);
    app.create_app("clinic").await;
    app.create_endpoint("clinic", json!({"url": format!("{}/hook", receiver.url)}))
        .await;
    let msg = app
        .send("clinic", json!({"eventType": "x", "payload": {}}))
        .await;
    let attempts = app
        .wait_attempts("clinic", msg["id"].as_str().unwrap(), |a| a.len() >= 2)
        .await;
    assert_eq!(attempts[0]["outcome"], "timeout");
    assert_eq!(attempts[0]["responseStatusCode"], 0);
    assert_eq!(attempts[1]["outcome"], "success");
    app.stop().await;
}

#[tokio::test]
async fn loopback_and_cloud_metadata_are_refused_without_an_allow_list() {
    let mut settings = fast_settings();
    settings.delivery.allow_targets.clear();
    settings.delivery.schedule =
        vestnik_core::RetrySchedule::new(vec![], 0.0, Duration::from_secs(1));
    let app = spawn_app_with(settings).await;
    let receiver = TestReceiver::start().await;
    app.create_app("clinic").await;
    app.create_endpoint("clinic", json!({"url": format!("{}/hook", receiver.url)}))
        .await;
    app.create_endpoint(
        "clinic",
        json!({"url": "http://169.254.169.254/latest/meta-data/"}),
    )
    .await;
    app.create_endpoint("clinic", json!({"url": format!("http://localhost:{}/named", receiver.url.rsplit(':').next().unwrap())})).await;
    let msg = app
        .send("clinic", json!({"eventType": "x", "payload": {}}))
        .await;
    let attempts = app
        .wait_attempts("clinic", msg["id"].as_str().unwrap(), |a| a.len() == 3)
        .await;
    for attempt in &attempts {
        assert_eq!(attempt["outcome"], "blocked_target", "{attempt}");
        assert_eq!(attempt["status"], 2);
    }
    assert!(
        attempts
            .iter()
            .any(|a| a["response"].as_str().unwrap().contains("link-local"))
    );
    assert!(
        receiver.received().is_empty(),
        "nothing may reach a refused target"
    );
    app.stop().await;
}

#[tokio::test]
async fn resend_makes_a_manual_attempt() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    app.create_app("clinic").await;
    let endpoint = app
        .create_endpoint(
            "clinic",
            json!({"url": format!("{}/hook", receiver.url), "uid": "main"}),
        )
        .await;
    let msg = app
        .send(
            "clinic",
            json!({"eventType": "x", "payload": {}, "eventId": "evt-1"}),
        )
        .await;
    app.wait_attempts("clinic", "evt-1", |a| a.len() == 1).await;
    let (status, _) = app
        .post("/app/clinic/msg/evt-1/endpoint/main/resend", json!({}))
        .await;
    assert_eq!(status, 202);
    let attempts = app
        .wait_attempts("clinic", msg["id"].as_str().unwrap(), |a| a.len() == 2)
        .await;
    assert_eq!(attempts[0]["triggerType"], 0);
    assert_eq!(attempts[1]["triggerType"], 1);
    assert_eq!(attempts[1]["endpointId"], endpoint["id"]);
    assert_eq!(receiver.received().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn recover_redelivers_exhausted_messages() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    receiver.fallback(Some(Reply::Status(500)));
    app.create_app("clinic").await;
    app.create_endpoint(
        "clinic",
        json!({"url": format!("{}/hook", receiver.url), "uid": "main"}),
    )
    .await;
    let since = vestnik_delivery::operational::rfc3339(vestnik_delivery::now_ms() - 1000);
    let msg = app
        .send("clinic", json!({"eventType": "x", "payload": {}}))
        .await;
    let msg_id = msg["id"].as_str().unwrap();
    app.wait_attempts("clinic", msg_id, |a| a.len() == 4).await; // 1 + 3 retries: exhausted
    let (_, destinations) = app.get(&format!("/app/clinic/msg/{msg_id}/endpoint")).await;
    assert_eq!(destinations["data"][0]["statusText"], "fail");
    receiver.fallback(None);
    let (status, task) = app
        .post("/app/clinic/endpoint/main/recover", json!({"since": since}))
        .await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(task["task"], "endpoint.recover");
    let attempts = app.wait_attempts("clinic", msg_id, |a| a.len() == 5).await;
    assert_eq!(attempts[4]["status"], 0);
    app.stop().await;
}

#[tokio::test]
async fn a_recovered_endpoint_gets_its_waiting_retries_at_once() {
    let mut settings = fast_settings();
    // After the first failure the next retry would wait a minute.
    settings.delivery.schedule = vestnik_core::RetrySchedule::new(
        vec![Duration::from_secs(60); 3],
        0.0,
        Duration::from_secs(3600),
    );
    let app = spawn_app_with(settings).await;
    let receiver = TestReceiver::start().await;
    receiver.fallback(Some(Reply::Status(503)));
    app.create_app("clinic").await;
    app.create_endpoint("clinic", json!({"url": format!("{}/hook", receiver.url)}))
        .await;
    let mut waiting = Vec::new();
    for n in 0..5 {
        let msg = app
            .send("clinic", json!({"eventType": "x", "payload": {"n": n}}))
            .await;
        waiting.push(msg["id"].as_str().unwrap().to_owned());
    }
    for id in &waiting {
        app.wait_attempts("clinic", id, |a| a.len() == 1).await;
    }
    receiver.fallback(None);
    let fresh = app
        .send(
            "clinic",
            json!({"eventType": "x", "payload": {"n": "fresh"}}),
        )
        .await;
    app.wait_attempts("clinic", fresh["id"].as_str().unwrap(), |a| {
        a.len() == 1 && a[0]["status"] == 0
    })
    .await;
    // Without catch-up these would sit out their 60 s backoff; wait_attempts gives up after 20 s.
    for id in &waiting {
        app.wait_attempts("clinic", id, |a| a.iter().any(|x| x["status"] == 0))
            .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_and_the_new_one_verifies() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    app.create_app("clinic").await;
    app.create_endpoint(
        "clinic",
        json!({"url": format!("{}/hook", receiver.url), "uid": "main"}),
    )
    .await;
    let (_, old) = app.get("/app/clinic/endpoint/main/secret").await;
    let old = Secret::parse(old["key"].as_str().unwrap()).unwrap();
    let (status, _) = app
        .post("/app/clinic/endpoint/main/secret/rotate", json!({}))
        .await;
    assert_eq!(status, 204);
    let (_, new) = app.get("/app/clinic/endpoint/main/secret").await;
    let new = Secret::parse(new["key"].as_str().unwrap()).unwrap();
    assert_ne!(old, new);
    let msg = app
        .send(
            "clinic",
            json!({"eventType": "x", "payload": {"after": "rotation"}}),
        )
        .await;
    app.wait_attempts("clinic", msg["id"].as_str().unwrap(), |a| a.len() == 1)
        .await;
    let received = &receiver.received()[0];
    let signature = header(received, "webhook-signature");
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    let (id, ts) = (
        header(received, "webhook-id"),
        header(received, "webhook-timestamp"),
    );
    verify(&new, &id, &ts, &signature, &received.body, now_secs(), 300).unwrap();
    verify(&old, &id, &ts, &signature, &received.body, now_secs(), 300).unwrap();
    assert_eq!(header(received, "svix-signature"), signature);
    app.stop().await;
}

#[tokio::test]
async fn custom_headers_are_sent_but_cannot_override_signatures() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    app.create_app("clinic").await;
    app.create_endpoint(
        "clinic",
        json!({"url": format!("{}/hook", receiver.url), "uid": "main"}),
    )
    .await;
    let (status, _) = app
        .request(
            reqwest::Method::PUT,
            "/app/clinic/endpoint/main/headers",
            Some(json!({"headers": {"X-Clinic": "42"}})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .request(
            reqwest::Method::PUT,
            "/app/clinic/endpoint/main/headers",
            Some(json!({"headers": {"webhook-signature": "x"}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let msg = app
        .send("clinic", json!({"eventType": "x", "payload": {}}))
        .await;
    app.wait_attempts("clinic", msg["id"].as_str().unwrap(), |a| a.len() == 1)
        .await;
    assert_eq!(header(&receiver.received()[0], "x-clinic"), "42");
    app.stop().await;
}

#[tokio::test]
async fn operational_webhooks_reach_the_operator_signed() {
    let operator = TestReceiver::start().await;
    let always_fails = TestReceiver::start().await;
    always_fails.fallback(Some(Reply::Status(500)));
    let flaky = TestReceiver::start().await;
    flaky.script([Reply::Status(500), Reply::Status(500)]);
    let gone = TestReceiver::start().await;
    gone.fallback(Some(Reply::Status(410)));
    let mut settings = fast_settings();
    settings.operational_webhook_url = Some(format!("{}/ops", operator.url));
    settings.delivery.failing_after_attempts = 2;
    let app = spawn_app_with(settings).await;
    app.create_app("clinic").await;
    for (event_type, receiver) in [("a", &always_fails), ("b", &flaky), ("c", &gone)] {
        app.create_endpoint(
            "clinic",
            json!({"url": format!("{}/hook", receiver.url), "eventTypes": [event_type], "uid": event_type}),
        )
        .await;
    }
    let mut msg_ids = std::collections::HashMap::new();
    for event_type in ["a", "b", "c"] {
        let msg = app
            .send("clinic", json!({"eventType": event_type, "payload": {}}))
            .await;
        msg_ids.insert(event_type, msg["id"].as_str().unwrap().to_owned());
    }

    // a: fails twice (failing), then twice more (exhausted); b: fails twice (failing), then
    // succeeds (recovered); c: 410 on the first attempt (exhausted, endpoint disabled).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while operator.received().len() < 6 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // nothing more may follow
    let (_, secret) = app
        .get("/app/vestnik-operational/endpoint/operator/secret")
        .await;
    let secret = Secret::parse(secret["key"].as_str().unwrap()).unwrap();
    let mut events = Vec::new();
    for received in operator.received() {
        assert_eq!(received.path, "/ops");
        verify(
            &secret,
            &header(&received, "webhook-id"),
            &header(&received, "webhook-timestamp"),
            &header(&received, "webhook-signature"),
            &received.body,
            now_secs(),
            300,
        )
        .expect("operational webhooks are signed with the operator endpoint's secret");
        let event: serde_json::Value = serde_json::from_slice(&received.body).unwrap();
        let data = &event["data"];
        let subject = match event["type"].as_str().unwrap() {
            "endpoint.disabled" => data["endpointUid"].as_str().unwrap().to_owned(),
            _ => {
                let msg_id = data["msgId"].as_str().unwrap();
                let (event_type, _) = msg_ids.iter().find(|(_, id)| *id == msg_id).unwrap();
                (*event_type).to_owned()
            }
        };
        events.push(format!("{} {subject}", event["type"].as_str().unwrap()));
    }
    events.sort();
    assert_eq!(
        events,
        [
            "endpoint.disabled c",
            "message.attempt.exhausted a",
            "message.attempt.exhausted c",
            "message.attempt.failing a",
            "message.attempt.failing b",
            "message.attempt.recovered b",
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn send_example_goes_to_that_endpoint_alone() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start().await;
    app.create_app("clinic").await;
    for uid in ["target", "bystander"] {
        app.create_endpoint(
            "clinic",
            json!({"url": format!("{}/{uid}", receiver.url), "uid": uid, "eventTypes": ["other"]}),
        )
        .await;
    }
    let example = json!({"claimId": "C-1", "status": "approved"});
    let (status, _) = app
        .post(
            "/event-type",
            json!({"name": "claim.status_changed", "description": "a claim's status changed",
                   "schemas": {"1": {"type": "object", "examples": [example]}}}),
        )
        .await;
    assert_eq!(status, 201);

    let (status, msg) = app
        .post(
            "/app/clinic/endpoint/target/send-example",
            json!({"eventType": "claim.status_changed"}),
        )
        .await;
    assert_eq!(status, 202, "{msg}");
    assert_eq!(msg["eventType"], "claim.status_changed");
    assert_eq!(msg["payload"], example);
    app.wait_attempts("clinic", msg["id"].as_str().unwrap(), |a| a.len() == 1)
        .await;
    let (status, ping) = app
        .post(
            "/app/clinic/endpoint/target/send-example",
            json!({"eventType": "svix.ping"}),
        )
        .await;
    assert_eq!(status, 202, "{ping}");
    app.wait_attempts("clinic", ping["id"].as_str().unwrap(), |a| a.len() == 1)
        .await;
    let target = receiver.received_on("/target");
    assert_eq!(target.len(), 2);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&target[0].body).unwrap(),
        example
    );
    assert_eq!(&target[1].body[..], br#"{"success":true}"#);
    assert!(receiver.received_on("/bystander").is_empty());

    let (status, error) = app
        .post(
            "/event-type",
            json!({"name": "bare", "description": "no schema"}),
        )
        .await;
    assert_eq!(status, 201, "{error}");
    let (status, error) = app
        .post(
            "/app/clinic/endpoint/target/send-example",
            json!({"eventType": "bare"}),
        )
        .await;
    assert_eq!((status, &error["code"]), (400, &json!("no_example")));
    let (status, error) = app
        .post(
            "/app/clinic/endpoint/target/send-example",
            json!({"eventType": "unknown"}),
        )
        .await;
    assert_eq!(status, 404, "{error}");
    let (status, _) = app
        .post(
            "/app/clinic/endpoint/nobody/send-example",
            json!({"eventType": "svix.ping"}),
        )
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}
