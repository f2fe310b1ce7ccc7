//! Bad input gets the right 4xx in Svix's error shape, never a 5xx.

use crate::harness::*;
use serde_json::json;

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let app = spawn_app().await;
    for token in [None, Some("wrong")] {
        let mut request = app.client.get(format!("{}/app", app.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "authentication_failed");
    }
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400_and_wrong_types_are_422_with_the_field() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/app", app.base))
        .bearer_auth(TOKEN)
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "invalid_json");

    let (status, body) = app.post("/app", json!({"name": 5})).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]));
    let (status, body) = app.post("/app", json!({"uid": "x"})).await;
    assert_eq!(status, 422, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn invalid_values_are_422() {
    let app = spawn_app().await;
    app.create_app("clinic").await;
    let cases = [
        (
            "/app/clinic/endpoint",
            json!({"url": "ftp://example.com/x"}),
        ),
        ("/app/clinic/endpoint", json!({"url": "not a url"})),
        (
            "/app/clinic/endpoint",
            json!({"url": "https://example.com", "secret": "short"}),
        ),
        (
            "/app/clinic/endpoint",
            json!({"url": "https://example.com", "throttleRate": 0}),
        ),
        (
            "/app/clinic/msg",
            json!({"eventType": "bad type!", "payload": {}}),
        ),
        (
            "/app/clinic/msg",
            json!({"eventType": "ok", "payload": [1, 2]}),
        ),
        (
            "/app/clinic/msg",
            json!({"eventType": "ok", "payload": {}, "payloadRetentionPeriod": 1000}),
        ),
        ("/app", json!({"name": "x", "uid": "has space"})),
    ];
    for (path, body) in cases {
        let (status, out) = app.post(path, body.clone()).await;
        assert_eq!(status, 422, "{path} {body} → {out}");
        assert!(out["detail"][0]["msg"].is_string(), "{out}");
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_404_and_bad_pagination_is_422() {
    let app = spawn_app().await;
    app.create_app("clinic").await;
    for path in [
        "/app/nope",
        "/app/clinic/endpoint/nope",
        "/app/clinic/msg/nope",
        "/app/clinic/msg/nope/attempt/atmpt_x",
        "/event-type/nope",
        "/nothing/here",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 404, "{path} → {body}");
        assert_eq!(body["code"], "not_found");
    }
    for query in [
        "limit=0",
        "limit=100000",
        "limit=x",
        "iterator=%27;drop",
        "order=sideways",
    ] {
        let (status, body) = app.get(&format!("/app?{query}")).await;
        assert_eq!(status, 422, "{query} → {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn oversize_payloads_are_413() {
    let mut settings = fast_settings();
    settings.max_body_bytes = 10_000;
    let app = spawn_app_with(settings).await;
    app.create_app("clinic").await;
    let big = "x".repeat(20_000);
    let (status, body) = app
        .post(
            "/app/clinic/msg",
            json!({"eventType": "x", "payload": {"big": big}}),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "payload_too_large");
    app.stop().await;
}
