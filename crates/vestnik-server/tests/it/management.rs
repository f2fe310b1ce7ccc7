//! The management API's Svix-compatible behaviour: uids as path aliases, get-or-create,
//! eventId idempotency, pagination, event types, expunging.

use crate::harness::*;
use serde_json::json;

#[tokio::test]
async fn applications_answer_to_id_or_uid_and_get_or_create() {
    let app = spawn_app().await;
    let created = app.create_app("clinic-7").await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("app_"));
    let (status, by_uid) = app.get("/app/clinic-7").await;
    assert_eq!(status, 200);
    assert_eq!(by_uid["id"], created["id"]);
    let (status, dup) = app
        .post("/app", json!({"name": "again", "uid": "clinic-7"}))
        .await;
    assert_eq!(status, 409, "{dup}");
    assert_eq!(dup["code"], "conflict");
    let (status, existing) = app
        .post(
            "/app?get_if_exists=true",
            json!({"name": "again", "uid": "clinic-7"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(existing["id"], created["id"]);
    let (status, patched) = app
        .request(
            reqwest::Method::PATCH,
            &format!("/app/{id}"),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["name"], "Renamed");
    assert_eq!(patched["uid"], "clinic-7");
    let (status, _) = app
        .request(reqwest::Method::DELETE, "/app/clinic-7", None)
        .await;
    assert_eq!(status, 204);
    let (status, gone) = app.get(&format!("/app/{id}")).await;
    assert_eq!((status, gone["code"].as_str()), (404, Some("not_found")));
    app.stop().await;
}

#[tokio::test]
async fn pagination_walks_every_item_once() {
    let app = spawn_app().await;
    for n in 0..7 {
        app.create_app(&format!("app-{n}")).await;
    }
    let mut seen = Vec::new();
    let mut iterator: Option<String> = None;
    loop {
        let path = match &iterator {
            Some(it) => format!("/app?limit=3&iterator={it}"),
            None => "/app?limit=3".to_owned(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for item in page["data"].as_array().unwrap() {
            seen.push(item["uid"].as_str().unwrap().to_owned());
        }
        if page["done"] == true {
            break;
        }
        iterator = page["iterator"].as_str().map(str::to_owned);
    }
    let expected: Vec<String> = (0..7).map(|n| format!("app-{n}")).collect();
    assert_eq!(seen, expected);
    app.stop().await;
}

#[tokio::test]
async fn event_id_makes_message_creation_idempotent() {
    let app = spawn_app().await;
    app.create_app("clinic").await;
    let first = app.send("clinic", json!({"eventType": "claim.status_changed", "eventId": "claim-1-v2", "payload": {"v": 2}})).await;
    let (status, body) = app.post("/app/clinic/msg", json!({"eventType": "claim.status_changed", "eventId": "claim-1-v2", "payload": {"v": 2}})).await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "conflict");
    let (status, by_event) = app.get("/app/clinic/msg/claim-1-v2").await;
    assert_eq!(status, 200);
    assert_eq!(by_event["id"], first["id"]);
    assert_eq!(by_event["payload"], json!({"v": 2}));
    let (_, list) = app.get("/app/clinic/msg").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn messages_filter_by_event_type_and_channel_and_expunge() {
    let app = spawn_app().await;
    app.create_app("clinic").await;
    app.send(
        "clinic",
        json!({"eventType": "a.one", "payload": {}, "channels": ["c1"]}),
    )
    .await;
    let two = app
        .send(
            "clinic",
            json!({"eventType": "b.two", "payload": {"secret": "x"}}),
        )
        .await;
    let (_, by_type) = app.get("/app/clinic/msg?event_types=b.two").await;
    assert_eq!(by_type["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_type["data"][0]["id"], two["id"]);
    let (_, by_channel) = app.get("/app/clinic/msg?channel=c1").await;
    assert_eq!(by_channel["data"][0]["eventType"], "a.one");
    let id = two["id"].as_str().unwrap();
    let (status, _) = app
        .request(
            reqwest::Method::DELETE,
            &format!("/app/clinic/msg/{id}/content"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, expunged) = app.get(&format!("/app/clinic/msg/{id}")).await;
    assert_eq!(expunged["payload"], json!({}));
    app.stop().await;
}

#[tokio::test]
async fn event_types_are_created_archived_and_listed() {
    let app = spawn_app().await;
    let schema = json!({"1": {"type": "object", "properties": {"claimId": {"type": "string"}}}});
    let (status, created) = app.post("/event-type", json!({"name": "claim.status_changed", "description": "A claim changed", "schemas": schema})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["schemas"], schema);
    let (status, _) = app
        .post(
            "/event-type",
            json!({"name": "claim.status_changed", "description": "again"}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .request(
            reqwest::Method::DELETE,
            "/event-type/claim.status_changed",
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, visible) = app.get("/event-type").await;
    assert!(visible["data"].as_array().unwrap().is_empty());
    let (_, all) = app.get("/event-type?include_archived=true").await;
    assert_eq!(all["data"][0]["archived"], true);
    app.stop().await;
}

#[tokio::test]
async fn our_openapi_document_and_health_are_served() {
    let app = spawn_app().await;
    let root = app.base.trim_end_matches("/api/v1");
    let doc: serde_json::Value = reqwest::get(format!("{root}/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["info"]["title"], "Vestnik API");
    assert!(doc["paths"]["/api/v1/app/{app_id}/msg"].is_object());
    for (path, method) in [
        ("/api/v1/source", "post"),
        ("/api/v1/source/{source_id}/request", "get"),
        ("/api/v1/source/{source_id}/replay", "post"),
        ("/in/{source_id}", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is documented"
        );
    }
    assert!(doc["paths"]["/api/v1/health/ready"]["get"].is_object());
    let health = reqwest::get(format!("{}/health", app.base)).await.unwrap();
    assert_eq!(health.status(), 204);

    // Readiness checks the database, and the broker's links when dispatch goes through one.
    let queued = std::env::var("VESTNIK_TEST_QUEUE").is_ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ready = loop {
        let response = reqwest::get(format!("{}/health/ready", app.base))
            .await
            .unwrap();
        let code = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        if body["status"] == "ready" || std::time::Instant::now() > deadline {
            assert_eq!(code, 200, "{body}");
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["role"], "all");
    assert_eq!(ready["database"]["up"], true);
    if queued {
        let parts: Vec<&str> = ready["broker"]
            .as_array()
            .expect("a queued node reports its broker links")
            .iter()
            .map(|part| part["name"].as_str().unwrap())
            .collect();
        assert_eq!(parts, ["relay", "consumer"]);
    } else {
        assert!(ready.get("broker").is_none(), "{ready}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer() {
    let app = spawn_app().await;
    let post = |path: &str, key: &str, body: serde_json::Value| {
        app.client
            .post(format!("{}{path}", app.base))
            .bearer_auth(TOKEN)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = post("/app", "k-1", json!({"name": "Clinic", "uid": "clinic"}))
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: serde_json::Value = first.json().await.unwrap();
    let retry = post("/app", "k-1", json!({"name": "Clinic", "uid": "clinic"}))
        .await
        .unwrap();
    assert_eq!(
        retry.status(),
        201,
        "the same answer, not a 409 for the existing uid"
    );
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<serde_json::Value>().await.unwrap(), first);
    let reused = post("/app", "k-1", json!({"name": "Other", "uid": "other"}))
        .await
        .unwrap();
    assert_eq!(reused.status(), 409, "a key belongs to one request body");

    // A retried message creation does not send the message twice.
    let body = json!({"eventType": "x", "payload": {"n": 1}});
    let sent: serde_json::Value = post("/app/clinic/msg", "m-1", body.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again: serde_json::Value = post("/app/clinic/msg", "m-1", body)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent["id"], again["id"]);
    let (_, list) = app.get("/app/clinic/msg").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // The same key on another path is another key.
    let other = post("/app", "m-1", json!({"name": "Second", "uid": "second"}))
        .await
        .unwrap();
    assert_eq!(other.status(), 201);
    let invalid = post("/app", &"k".repeat(300), json!({"name": "x"}))
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    app.stop().await;
}
