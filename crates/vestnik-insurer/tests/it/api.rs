//! Claims API behaviour and publishing, with a fast clock (60 simulated days per real second).

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vestnik_claims::clock::ScaledClock;
use vestnik_claims::payload::PayloadFormat;
use vestnik_insurer::publish::PublishSettings;
use vestnik_insurer::{InsurerSettings, RunningInsurer};

const FAST: f64 = 60.0 * 86_400.0;

/// A stand-in for Vestnik's message API: records each message, refusing the very first with 503.
#[derive(Clone, Default)]
struct FakeVestnik {
    messages: Arc<Mutex<Vec<(String, Value)>>>,
    calls: Arc<Mutex<u32>>,
}

impl FakeVestnik {
    async fn start(&self) -> String {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/api/v1/app/{app}/msg",
            axum::routing::post(
                move |axum::extract::Path(app): axum::extract::Path<String>,
                      axum::Json(body): axum::Json<Value>| {
                    let me = me.clone();
                    async move {
                        let first = {
                            let mut calls = me.calls.lock().unwrap();
                            *calls += 1;
                            *calls == 1
                        };
                        if first {
                            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                        }
                        me.messages.lock().unwrap().push((app, body));
                        axum::http::StatusCode::ACCEPTED
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }
}

async fn start(vestnik: Option<String>, scale: f64) -> (RunningInsurer, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let clock = ScaledClock::new(
        "2026-03-02T06:00:00Z".parse().unwrap(),
        jiff::Timestamp::now().as_millisecond(),
        scale,
    )
    .unwrap();
    let settings = InsurerSettings {
        seed: 42,
        clock,
        publish: vestnik.map(|vestnik_url| PublishSettings {
            vestnik_url,
            token: "t".into(),
            format: PayloadFormat::Json,
            insurer_url: url.clone(),
        }),
        public_url: url.clone(),
    };
    (
        vestnik_insurer::start(settings, listener, CancellationToken::new())
            .await
            .unwrap(),
        url,
    )
}

fn claim(clinic_claim_id: &str) -> Value {
    json!({
        "clinic_id": "clinic-7", "clinic_claim_id": clinic_claim_id, "patient_ref": "pat-42",
        "policy_number": "DMS-555",
        "lines": [{"code": "consult-therapist", "quantity": 1, "unit_price": "2500.00"},
                  {"code": "xray-chest", "quantity": 1, "unit_price": "3000.00"}],
        "total": "5500.00"
    })
}

async fn post(client: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn claims_are_received_once_decided_and_published_in_version_order() {
    let vestnik = FakeVestnik::default();
    let vestnik_url = vestnik.start().await;
    let (insurer, url) = start(Some(vestnik_url), FAST).await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 0..10 {
        let (status, body) =
            post(&client, &format!("{url}/claims"), claim(&format!("CL-{n}"))).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            (body["status"].as_str(), body["version"].as_u64()),
            (Some("in_review"), Some(1))
        );
        ids.push(body["claim_id"].as_str().unwrap().to_owned());
    }
    let (status, again) = post(&client, &format!("{url}/claims"), claim("CL-0")).await;
    assert_eq!(
        (status, &again["claim_id"]),
        (200, &json!(ids[0])),
        "the clinic claim id is the idempotency key"
    );

    // Every claim reaches a final decision (the slowest manual ones within ~0.5 s real).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = get(&client, &format!("{url}/claims?status=in_review")).await;
        if list["data"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "claims never decided: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each claim's two versions reached Vestnik, despite the refused first publish.
    let deadline = Instant::now() + Duration::from_secs(20);
    while vestnik.messages.lock().unwrap().len() < 20 {
        assert!(
            Instant::now() < deadline,
            "published {}",
            vestnik.messages.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let messages = vestnik.messages.lock().unwrap().clone();
    for id in &ids {
        let versions: Vec<(String, u64)> = messages
            .iter()
            .filter(|(_, m)| m["payload"]["data"]["claim_id"] == json!(id))
            .map(|(app, m)| {
                (
                    app.clone(),
                    m["payload"]["data"]["version"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            versions,
            [("clinic-7".to_owned(), 1), ("clinic-7".to_owned(), 2)],
            "{id}"
        );
    }
    let final_event = messages
        .iter()
        .find(|(_, m)| m["payload"]["data"]["version"] == 2)
        .unwrap();
    assert_eq!(final_event.1["eventType"], "claim.status_changed");
    assert_eq!(final_event.1["channels"], json!(["json"]));
    assert!(final_event.1["eventId"].as_str().unwrap().ends_with("-v2"));
    let (_, stats) = get(&client, &format!("{url}/stats")).await;
    assert_eq!(stats["requests"]["submit"], 11);
    insurer.stop().await;
}

#[tokio::test]
async fn long_poll_answers_at_the_change_or_after_the_wait() {
    // Real time: a manual claim stays in review for days, so the long poll times out.
    let (insurer, url) = start(None, 1.0).await;
    let client = reqwest::Client::new();
    let mut manual = None;
    for n in 0..20 {
        let (_, body) = post(&client, &format!("{url}/claims"), claim(&format!("LP-{n}"))).await;
        if body["review_mode"] == "manual" {
            manual = Some(body["claim_id"].as_str().unwrap().to_owned());
            break;
        }
    }
    let id = manual.expect("one in twenty claims goes to manual review with this seed");
    let started = Instant::now();
    let (status, body) = get(&client, &format!("{url}/claims/{id}?wait=1")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("in_review")));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "held for the wait"
    );

    // A reviewer decides while the long poll waits: it answers at once with the decision.
    let poll = tokio::spawn({
        let (client, url) = (client.clone(), format!("{url}/claims/{id}?wait=30"));
        async move { get(&client, &url).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let (status, decided) = post(
        &client,
        &format!("{url}/claims/{id}/decision"),
        json!({"decision": "denied", "reason": "not covered", "reviewer": "anna"}),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    let (_, answered) = poll.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(answered["status"], "denied");
    assert_eq!(answered["version"], 2);
    let (status, again) = post(
        &client,
        &format!("{url}/claims/{id}/decision"),
        json!({"decision": "approved"}),
    )
    .await;
    assert_eq!((status, &again["code"]), (409, &json!("already_decided")));
    let (_, stats) = get(&client, &format!("{url}/stats")).await;
    assert_eq!(stats["requests"]["long_poll"], 2);
    insurer.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_4xx() {
    let (insurer, url) = start(None, 1.0).await;
    let client = reqwest::Client::new();
    let raw = client
        .post(format!("{url}/claims"))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let mut wrong_total = claim("X-1");
    wrong_total["total"] = json!("1.00");
    let (status, body) = post(&client, &format!("{url}/claims"), wrong_total).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_claim"))
    );
    assert!(
        body["detail"].as_str().unwrap().starts_with("total"),
        "{body}"
    );
    let mut number_amount = claim("X-2");
    number_amount["total"] = json!(5500);
    assert_eq!(
        post(&client, &format!("{url}/claims"), number_amount)
            .await
            .0,
        422,
        "amounts are decimal strings"
    );
    assert_eq!(
        get(&client, &format!("{url}/claims/clm-999999")).await.0,
        404
    );
    assert_eq!(
        get(&client, &format!("{url}/claims?status=lost")).await.0,
        400
    );
    let (_, body) = post(&client, &format!("{url}/claims"), claim("X-3")).await;
    let id = body["claim_id"].as_str().unwrap();
    assert_eq!(
        get(&client, &format!("{url}/claims/{id}?wait=31")).await.0,
        400
    );
    let (status, _) = post(
        &client,
        &format!("{url}/claims/{id}/decision"),
        json!({"decision": "maybe"}),
    )
    .await;
    assert_eq!(status, 422);
    let partial_too_much = json!({"decision": "partial", "lines": [{"approved": "9999.00"}, {"approved": "0", "reason": "x"}]});
    let (status, body) = post(
        &client,
        &format!("{url}/claims/{id}/decision"),
        partial_too_much,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    insurer.stop().await;
}
