//! The storage behaviours, each a function of a fresh store.

use std::collections::HashSet;
use std::sync::Arc;
use vestnik_core::{
    AppId, AttemptId, DeliveryStatus, EndpointId, MessageId, OutcomeCode, RequestId, SourceId,
};
use vestnik_store::*;

const NOW: UnixMs = 1_700_000_000_000;

fn app(uid: &str) -> Application {
    Application {
        id: AppId::generate(NOW as u64),
        uid: Some(uid.into()),
        name: uid.into(),
        metadata: "{}".into(),
        throttle_rate: None,
        created_at: NOW,
        updated_at: NOW,
    }
}

fn endpoint(app: &AppId, event_types: Option<Vec<&str>>, channels: Option<Vec<&str>>) -> Endpoint {
    Endpoint {
        id: EndpointId::generate(NOW as u64),
        app_id: app.clone(),
        uid: None,
        url: "https://example.com/hook".into(),
        description: String::new(),
        disabled: false,
        event_types: event_types.map(|t| t.into_iter().map(str::to_owned).collect()),
        channels: channels.map(|c| c.into_iter().map(str::to_owned).collect()),
        metadata: "{}".into(),
        throttle_rate: None,
        headers: "{}".into(),
        secrets: EndpointSecrets {
            current: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            previous: Vec::new(),
        },
        failing_since: None,
        created_at: NOW,
        updated_at: NOW,
    }
}

fn message(
    app: &AppId,
    event_type: &str,
    channels: Option<Vec<&str>>,
    event_id: Option<&str>,
) -> Message {
    Message {
        id: MessageId::generate(NOW as u64),
        app_id: app.clone(),
        event_id: event_id.map(str::to_owned),
        event_type: event_type.into(),
        channels: channels.map(|c| c.into_iter().map(str::to_owned).collect()),
        payload: Some(r#"{"n":1}"#.into()),
        payload_expires_at: NOW + 1_000,
        created_at: NOW,
        headers: Vec::new(),
    }
}

fn outcome(task: &LeasedTask, success: bool, next: TaskNext, at: UnixMs) -> AttemptOutcome {
    AttemptOutcome {
        attempt: Attempt {
            id: AttemptId::generate(at as u64),
            msg_id: task.msg_id.clone(),
            endpoint_id: task.endpoint_id.clone(),
            app_id: task.app_id.clone(),
            url: "https://example.com/hook".into(),
            status: if success {
                DeliveryStatus::Success
            } else {
                DeliveryStatus::Fail
            },
            outcome: if success {
                OutcomeCode::Success
            } else {
                OutcomeCode::HttpStatus
            },
            response_status_code: if success { 200 } else { 500 },
            response: String::new(),
            response_duration_ms: 3,
            manual: false,
            created_at: at,
        },
        next,
        disable_if_failing_since_before: 0,
    }
}

async fn statuses(store: &Arc<dyn Store>, msg: &MessageId) -> Vec<DeliveryStatus> {
    let page = PageRequest::first(50, true);
    store
        .list_deliveries_for_message(msg, &page)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.status)
        .collect()
}

pub async fn applications_answer_to_id_or_uid_and_uids_are_unique(store: Arc<dyn Store>) {
    let created = store.create_app(app("clinic-7")).await.unwrap();
    assert_eq!(
        store.get_app("clinic-7").await.unwrap().unwrap().id,
        created.id
    );
    assert_eq!(
        store
            .get_app(created.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .uid
            .as_deref(),
        Some("clinic-7")
    );
    assert!(matches!(
        store.create_app(app("clinic-7")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_app("nobody").await.unwrap(), None);
    let mut more = Vec::new();
    for n in 0..5 {
        more.push(store.create_app(app(&format!("app-{n}"))).await.unwrap().id);
    }
    let first = store.list_apps(&PageRequest::first(3, true)).await.unwrap();
    assert_eq!(
        first.len(),
        4,
        "limit + 1 rows tell the caller there is more"
    );
    assert_eq!(first[0].id, created.id, "ids sort by creation");
    let next = PageRequest {
        limit: 3,
        cursor: Some(first[2].id.to_string()),
        ascending: true,
    };
    let rest: Vec<AppId> = store
        .list_apps(&next)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(rest, more[2..]);
}

pub async fn a_message_and_its_deliveries_are_written_together(store: Arc<dyn Store>) {
    let app = store.create_app(app("clinic")).await.unwrap();
    let all = store
        .create_endpoint(endpoint(&app.id, None, None))
        .await
        .unwrap();
    let claims = store
        .create_endpoint(endpoint(&app.id, Some(vec!["claim.decided"]), None))
        .await
        .unwrap();
    let channel = store
        .create_endpoint(endpoint(&app.id, None, Some(vec!["a"])))
        .await
        .unwrap();
    let (msg, tasks) = store
        .create_message(
            message(&app.id, "claim.decided", None, Some("evt-1")),
            Recipients::Subscribers,
            None,
        )
        .await
        .unwrap();
    let reached: HashSet<EndpointId> = tasks.iter().map(|t| t.endpoint_id.clone()).collect();
    assert_eq!(
        reached,
        HashSet::from([all.id.clone(), claims.id.clone()]),
        "the channel endpoint wants channel a"
    );
    assert_eq!(
        statuses(&store, &msg.id).await,
        [DeliveryStatus::Pending, DeliveryStatus::Pending]
    );
    let (_, tasks) = store
        .create_message(
            message(&app.id, "other", Some(vec!["a"]), None),
            Recipients::Subscribers,
            Some(NOW + 60_000),
        )
        .await
        .unwrap();
    let reached: HashSet<EndpointId> = tasks.iter().map(|t| t.endpoint_id.clone()).collect();
    assert_eq!(reached, HashSet::from([all.id.clone(), channel.id.clone()]));
    // A duplicate eventId writes nothing at all.
    let duplicate = message(&app.id, "claim.decided", None, Some("evt-1"));
    let duplicate_id = duplicate.id.clone();
    assert!(matches!(
        store
            .create_message(duplicate, Recipients::Subscribers, None)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .get_message(&app.id, duplicate_id.as_str())
            .await
            .unwrap(),
        None
    );
    assert!(statuses(&store, &duplicate_id).await.is_empty());
    let (_, only) = store
        .create_message(
            message(&app.id, "other", None, None),
            Recipients::Endpoint(claims.id.clone()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(only.len(), 1, "one endpoint, whatever its filter");
}

pub async fn concurrent_leases_never_hand_out_the_same_task(store: Arc<dyn Store>) {
    let app = store.create_app(app("clinic")).await.unwrap();
    for _ in 0..3 {
        store
            .create_endpoint(endpoint(&app.id, None, None))
            .await
            .unwrap();
    }
    for _ in 0..100 {
        store
            .create_message(
                message(&app.id, "x", None, None),
                Recipients::Subscribers,
                None,
            )
            .await
            .unwrap();
    }
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut held = Vec::new();
                loop {
                    let batch = store.lease_due(NOW + 1, NOW + 60_000, 7).await.unwrap();
                    if batch.is_empty() {
                        return held;
                    }
                    held.extend(batch.into_iter().map(|t| (t.msg_id, t.endpoint_id)));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for worker in workers {
        for task in worker.await.unwrap() {
            assert!(seen.insert(task.clone()), "{task:?} was leased twice");
        }
    }
    assert_eq!(seen.len(), 300, "every task was leased exactly once");
}

pub async fn an_expired_lease_makes_the_task_due_again(store: Arc<dyn Store>) {
    let app = store.create_app(app("clinic")).await.unwrap();
    store
        .create_endpoint(endpoint(&app.id, None, None))
        .await
        .unwrap();
    store
        .create_message(
            message(&app.id, "x", None, None),
            Recipients::Subscribers,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.lease_due(NOW, NOW + 1_000, 10).await.unwrap().len(),
        1
    );
    assert!(
        store
            .lease_due(NOW + 500, NOW + 2_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "held"
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(NOW + 1_000));
    let again = store.lease_due(NOW + 1_000, NOW + 3_000, 10).await.unwrap();
    assert_eq!(again.len(), 1, "a dead holder's task comes back");
    store
        .release(
            vec![(again[0].msg_id.clone(), again[0].endpoint_id.clone())],
            NOW + 5_000,
        )
        .await
        .unwrap();
    assert_eq!(store.next_due_at().await.unwrap(), Some(NOW + 5_000));
    let depths = store.queue_depths(NOW + 1_000).await.unwrap();
    assert_eq!((depths.due, depths.leased, depths.waiting), (0, 0, 1));
}

pub async fn attempts_move_tasks_through_retry_exhaustion_delivery_and_disabling(
    store: Arc<dyn Store>,
) {
    let app = store.create_app(app("clinic")).await.unwrap();
    let ep = store
        .create_endpoint(endpoint(&app.id, None, None))
        .await
        .unwrap();
    let (msg, _) = store
        .create_message(
            message(&app.id, "x", None, None),
            Recipients::Subscribers,
            None,
        )
        .await
        .unwrap();
    let task = store
        .lease_due(NOW, NOW + 60_000, 1)
        .await
        .unwrap()
        .remove(0);
    store
        .record_attempts(vec![outcome(
            &task,
            false,
            TaskNext::RetryAt(NOW + 5_000),
            NOW,
        )])
        .await
        .unwrap();
    assert_eq!(statuses(&store, &msg.id).await, [DeliveryStatus::Pending]);
    let task = store
        .lease_due(NOW + 5_000, NOW + 60_000, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(task.attempts, 1);
    store
        .record_attempts(vec![outcome(
            &task,
            false,
            TaskNext::Exhausted,
            NOW + 5_000,
        )])
        .await
        .unwrap();
    assert_eq!(statuses(&store, &msg.id).await, [DeliveryStatus::Fail]);
    assert!(
        store
            .lease_due(NOW + 10_000_000, NOW + 20_000_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "exhausted is final"
    );
    let attempts = store
        .list_attempts(&AttemptFilter {
            app: app.id.clone(),
            msg: Some(msg.id.clone()),
            endpoint: None,
            status: None,
            status_code_class: None,
            channel: None,
            event_types: Vec::new(),
            before: None,
            after: None,
            page: PageRequest::first(10, true),
        })
        .await
        .unwrap();
    assert_eq!(attempts.len(), 2);
    // A delivered task, then a 410 that disables the endpoint.
    let (msg2, _) = store
        .create_message(
            message(&app.id, "x", None, None),
            Recipients::Subscribers,
            None,
        )
        .await
        .unwrap();
    let task = store
        .lease_due(NOW, NOW + 60_000, 1)
        .await
        .unwrap()
        .remove(0);
    store
        .record_attempts(vec![outcome(&task, true, TaskNext::Delivered, NOW + 1)])
        .await
        .unwrap();
    assert_eq!(statuses(&store, &msg2.id).await, [DeliveryStatus::Success]);
    let (_, _) = store
        .create_message(
            message(&app.id, "x", None, None),
            Recipients::Subscribers,
            None,
        )
        .await
        .unwrap();
    let task = store
        .lease_due(NOW, NOW + 60_000, 1)
        .await
        .unwrap()
        .remove(0);
    let transitions = store
        .record_attempts(vec![outcome(
            &task,
            false,
            TaskNext::DisableEndpoint,
            NOW + 2,
        )])
        .await
        .unwrap();
    assert!(
        transitions.iter().any(
            |t| matches!(t, EndpointTransition::Disabled { endpoint, .. } if *endpoint == ep.id)
        ),
        "{transitions:?}"
    );
    assert!(
        store
            .get_endpoint_by_id(&ep.id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
}

pub async fn resend_recover_and_bring_forward_make_tasks_due(store: Arc<dyn Store>) {
    let app = store.create_app(app("clinic")).await.unwrap();
    let ep = store
        .create_endpoint(endpoint(&app.id, None, None))
        .await
        .unwrap();
    let (failed, _) = store
        .create_message(
            message(&app.id, "x", None, None),
            Recipients::Subscribers,
            None,
        )
        .await
        .unwrap();
    let task = store
        .lease_due(NOW, NOW + 60_000, 1)
        .await
        .unwrap()
        .remove(0);
    store
        .record_attempts(vec![outcome(&task, false, TaskNext::Exhausted, NOW)])
        .await
        .unwrap();
    assert_eq!(
        store
            .recover(&ep.id, NOW - 1, None, NOW + 10)
            .await
            .unwrap(),
        1
    );
    let task = store
        .lease_due(NOW + 10, NOW + 60_000, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(task.msg_id, failed.id);
    store
        .record_attempts(vec![outcome(&task, true, TaskNext::Delivered, NOW + 10)])
        .await
        .unwrap();
    store.resend(&failed.id, &ep.id, NOW + 20).await.unwrap();
    let resent = store.lease_due(NOW + 20, NOW + 60_000, 1).await.unwrap();
    assert_eq!((resent.len(), resent[0].manual), (1, true));
    store
        .record_attempts(vec![outcome(
            &resent[0],
            true,
            TaskNext::Delivered,
            NOW + 21,
        )])
        .await
        .unwrap();
    // A retry waiting an hour is brought forward to now.
    let (_, _) = store
        .create_message(
            message(&app.id, "x", None, None),
            Recipients::Subscribers,
            None,
        )
        .await
        .unwrap();
    let task = store
        .lease_due(NOW + 30, NOW + 60_000, 1)
        .await
        .unwrap()
        .remove(0);
    store
        .record_attempts(vec![outcome(
            &task,
            false,
            TaskNext::RetryAt(NOW + 3_600_000),
            NOW + 30,
        )])
        .await
        .unwrap();
    assert_eq!(store.bring_forward(&ep.id, NOW + 40).await.unwrap(), 1);
    assert_eq!(
        store
            .lease_due(NOW + 40, NOW + 60_000, 5)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn payloads_expire_and_expunge(store: Arc<dyn Store>) {
    let app = store.create_app(app("clinic")).await.unwrap();
    let (msg, _) = store
        .create_message(
            message(&app.id, "x", None, None),
            Recipients::Subscribers,
            None,
        )
        .await
        .unwrap();
    let (kept, _) = store
        .create_message(
            Message {
                payload_expires_at: NOW + 10_000_000,
                ..message(&app.id, "x", None, None)
            },
            Recipients::Subscribers,
            None,
        )
        .await
        .unwrap();
    assert_eq!(store.expire_payloads(NOW + 2_000).await.unwrap(), 1);
    assert_eq!(
        store
            .get_message(&app.id, msg.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .payload,
        None
    );
    assert!(
        store
            .get_message(&app.id, kept.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .payload
            .is_some()
    );
    store.expunge_message_content(&kept.id).await.unwrap();
    assert_eq!(
        store
            .get_message(&app.id, kept.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .payload,
        None
    );
}

fn request(
    source: &SourceId,
    status: RequestStatus,
    event_id: Option<&str>,
    at: UnixMs,
) -> InboundRequest {
    InboundRequest {
        id: RequestId::generate(at as u64),
        source_id: source.clone(),
        received_at: at,
        remote_addr: "127.0.0.1".into(),
        method: "POST".into(),
        path: "/in/x".into(),
        headers: "{}".into(),
        body: Some(b"{}".to_vec()),
        body_size: 2,
        status,
        reason: (status == RequestStatus::Rejected).then(|| "signature_mismatch: no".into()),
        event_id: event_id.map(str::to_owned),
        msg_id: None,
        duplicate_of: None,
    }
}

pub async fn inbound_requests_deduplicate_and_the_rejected_log_is_capped(store: Arc<dyn Store>) {
    let destinations_app = app("vestnik-source.x");
    let source = Source {
        id: SourceId::generate(NOW as u64),
        uid: Some("insurer".into()),
        name: "Insurer".into(),
        app_id: destinations_app.id.clone(),
        config: "{}".into(),
        secrets: EndpointSecrets {
            current: "s".into(),
            previous: Vec::new(),
        },
        created_at: NOW,
        updated_at: NOW,
    };
    let destination = endpoint(&destinations_app.id, None, None);
    let source = store
        .create_source(source, destinations_app.clone(), vec![destination])
        .await
        .unwrap();
    assert_eq!(
        store.get_source("insurer").await.unwrap().unwrap().id,
        source.id
    );
    let accepted = |n: i64| request(&source.id, RequestStatus::Accepted, Some("evt-1"), NOW + n);
    let (first, tasks) = store
        .record_request(
            accepted(0),
            Some(message(
                &destinations_app.id,
                "inbound",
                None,
                Some("evt-1"),
            )),
            None,
            3,
        )
        .await
        .unwrap();
    assert_eq!((first.status, tasks.len()), (RequestStatus::Accepted, 1));
    let (again, tasks) = store
        .record_request(
            accepted(1),
            Some(message(
                &destinations_app.id,
                "inbound",
                None,
                Some("evt-1"),
            )),
            None,
            3,
        )
        .await
        .unwrap();
    assert_eq!(
        (again.status, again.duplicate_of.as_ref(), tasks.len()),
        (RequestStatus::Duplicate, Some(&first.id), 0)
    );
    for n in 0..5 {
        store
            .record_request(
                request(&source.id, RequestStatus::Rejected, None, NOW + 10 + n),
                None,
                None,
                3,
            )
            .await
            .unwrap();
    }
    let filter = |status| RequestFilter {
        page: PageRequest::first(50, false),
        status: Some(RequestFilterStatus::Stored(status)),
        since: None,
        until: None,
    };
    assert_eq!(
        store
            .list_requests(&source.id, &filter(RequestStatus::Rejected))
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .list_requests(&source.id, &filter(RequestStatus::Duplicate))
            .await
            .unwrap()
            .len(),
        1
    );
    let view = store
        .get_request(&source.id, &first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (view.request.body.as_deref(), view.handling),
        (Some(&br#"{"n":1}"#[..]), Some(Handling::Pending))
    );
    assert_eq!(
        store
            .replay_requests(&source, ReplaySelection::One(first.id.clone()), NOW + 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.expire_requests(NOW + 10).await.unwrap(),
        2,
        "the accepted request and its duplicate"
    );
    assert_eq!(
        store.get_request(&source.id, &first.id).await.unwrap(),
        None
    );
    store.delete_source(&source.id).await.unwrap();
    assert_eq!(store.get_source("insurer").await.unwrap(), None);
    assert_eq!(
        store.get_app(destinations_app.id.as_str()).await.unwrap(),
        None
    );
}

pub async fn queued_tasks_are_claimed_once_and_stale_copies_are_refused(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    let app = store.create_app(app("insurer")).await.unwrap();
    for _ in 0..2 {
        store
            .create_endpoint(endpoint(&app.id, None, None))
            .await
            .unwrap();
    }
    for _ in 0..50 {
        store
            .create_message(
                message(&app.id, "x", None, None),
                Recipients::Subscribers,
                None,
            )
            .await
            .unwrap();
    }
    let relay_lease = NOW + 60_000;
    let keys = store
        .lease_due_keys(NOW + 1, relay_lease, 1_000)
        .await
        .unwrap();
    assert_eq!(keys.len(), 100);
    assert!(
        store
            .lease_due_keys(NOW + 1, relay_lease, 1_000)
            .await
            .unwrap()
            .is_empty(),
        "queued tasks are held by the relay's lease"
    );
    let queued: Vec<QueuedTask> = keys
        .iter()
        .map(|(msg_id, endpoint_id)| QueuedTask {
            msg_id: msg_id.clone(),
            endpoint_id: endpoint_id.clone(),
            lease_until: relay_lease,
        })
        .collect();

    // The queue may carry every message several times; eight workers claim copies at once.
    let copies: Vec<QueuedTask> = (0..4)
        .flat_map(|round| {
            let mut copy = queued.clone();
            copy.rotate_left(round * 17);
            copy
        })
        .collect();
    let workers: Vec<_> = copies
        .chunks(copies.len() / 8)
        .map(|chunk| {
            let (store, chunk) = (Arc::clone(&store), chunk.to_vec());
            tokio::spawn(async move {
                let mut held = Vec::new();
                for batch in chunk.chunks(13) {
                    held.extend(store.claim(batch.to_vec(), NOW + 120_000).await.unwrap());
                }
                held
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for worker in workers {
        for task in worker.await.unwrap() {
            assert_eq!(&task.payload[..], br#"{"n":1}"#);
            assert_eq!(task.attempts, 0);
            let key = (task.msg_id, task.endpoint_id);
            assert!(seen.insert(key.clone()), "{key:?} was claimed twice");
        }
    }
    assert_eq!(
        seen.len(),
        100,
        "every queued task was claimed exactly once"
    );

    // A late copy, or the relay giving up on its lease, cannot touch a claimed task.
    assert!(
        store
            .claim(queued.clone(), NOW + 130_000)
            .await
            .unwrap()
            .is_empty()
    );
    store.release_queued(queued.clone(), NOW + 2).await.unwrap();
    assert!(
        store
            .lease_due(NOW + 60_001, NOW + 200_000, 1_000)
            .await
            .unwrap()
            .is_empty(),
        "the workers' leases hold after the relay's would have ended"
    );
    assert_eq!(
        store
            .lease_due(NOW + 120_001, NOW + 200_000, 1_000)
            .await
            .unwrap()
            .len(),
        100,
        "a worker that died leaves its tasks due when its lease ends"
    );

    // Unconfirmed by the broker: released while still queued, due again, re-leased with a new
    // token that the old message no longer matches.
    store
        .create_message(
            message(&app.id, "x", None, None),
            Recipients::Subscribers,
            None,
        )
        .await
        .unwrap();
    let unconfirmed: Vec<QueuedTask> = store
        .lease_due_keys(NOW + 1, relay_lease, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(msg_id, endpoint_id)| QueuedTask {
            msg_id,
            endpoint_id,
            lease_until: relay_lease,
        })
        .collect();
    assert_eq!(unconfirmed.len(), 2);
    store
        .release_queued(unconfirmed.clone(), NOW + 5)
        .await
        .unwrap();
    assert_eq!(
        store
            .lease_due_keys(NOW + 5, NOW + 70_000, 1_000)
            .await
            .unwrap()
            .len(),
        2,
        "released tasks are due again"
    );
    assert!(
        store
            .claim(unconfirmed, NOW + 120_000)
            .await
            .unwrap()
            .is_empty(),
        "the old message names a lease that is gone"
    );
}
