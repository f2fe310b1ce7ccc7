//! The storage seam on PostgreSQL, for several `vestnik serve` nodes sharing one database: every
//! write is one transaction, leases are taken with `FOR UPDATE SKIP LOCKED` so two nodes never
//! hold the same task, and an expired lease simply makes its task due again.

mod inbound;
mod rows;
mod schema;

use crate::model::*;
use crate::query::*;
use crate::{Store, StoreError, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::{Client, GenericClient, Pool};
use rows::*;
use vestnik_core::{AppId, AttemptId, DeliveryStatus, EndpointId, MessageId};

pub struct PgStore {
    pool: Pool,
}

/// Connections a node opens at most unless told otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://…`), optionally inside `schema` (created if missing; the
    /// test suites give every test its own), and runs the migrations; at most
    /// [`DEFAULT_POOL_SIZE`] connections.
    pub async fn connect(url: &str, schema: Option<&str>) -> StoreResult<Self> {
        Self::connect_with_pool(url, schema, DEFAULT_POOL_SIZE).await
    }

    /// [`Self::connect`] with at most `pool_size` connections (at least 2).
    pub async fn connect_with_pool(
        url: &str,
        schema: Option<&str>,
        pool_size: usize,
    ) -> StoreResult<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|err| StoreError::Open(format!("{err}")))?;
        if let Some(schema) = schema {
            if !schema
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(StoreError::Open(format!(
                    "schema {schema:?} must be letters, digits and _"
                )));
            }
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|err| StoreError::Open(err.to_string()))?;
            let driver = tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
            drop(client);
            let _ = driver.await;
            config.options(format!("-c search_path={schema}"));
        }
        let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(2))
            .build()
            .map_err(|err| StoreError::Open(err.to_string()))?;
        let store = Self { pool };
        let mut client = store.client().await?;
        schema::migrate(&mut client).await?;
        Ok(store)
    }

    /// A store in a fresh schema of its own, dropped with the returned guard: how test suites
    /// share one database without seeing each other.
    pub async fn connect_isolated(url: &str, prefix: &str) -> StoreResult<(Self, IsolatedSchema)> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let schema = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let store = Self::connect(url, Some(&schema)).await?;
        Ok((
            store,
            IsolatedSchema {
                url: url.to_owned(),
                schema,
            },
        ))
    }

    async fn client(&self) -> StoreResult<Client> {
        self.pool
            .get()
            .await
            .map_err(|err| StoreError::Pool(err.to_string()))
    }
}

/// Drops its schema (and everything in it) when dropped.
#[derive(Debug)]
pub struct IsolatedSchema {
    url: String,
    schema: String,
}

impl IsolatedSchema {
    /// The schema's name, for more stores on it ([`PgStore::connect`]).
    pub fn name(&self) -> &str {
        &self.schema
    }
}

impl Drop for IsolatedSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop may run inside a runtime that cannot block on itself: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// The tasks behind `rows` of `(msg_id, endpoint_id, app_id, attempts, manual)`, with their
/// messages loaded in one query.
async fn leased_tasks(
    tx: &impl GenericClient,
    rows: &[tokio_postgres::Row],
) -> StoreResult<Vec<LeasedTask>> {
    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let select = tx
        .prepare_cached("SELECT id, event_type, event_id, payload, created_at, headers FROM messages WHERE id = ANY($1)")
        .await?;
    let messages = tx.query(&select, &[&ids]).await?;
    let by_id: std::collections::HashMap<String, &tokio_postgres::Row> =
        messages.iter().map(|m| (m.get(0), m)).collect();
    let mut tasks = Vec::with_capacity(rows.len());
    for row in rows {
        let msg_id: String = row.get(0);
        let Some(m) = by_id.get(&msg_id) else {
            continue;
        };
        tasks.push(LeasedTask {
            msg_id: MessageId::from_trusted(msg_id.clone()),
            endpoint_id: EndpointId::from_trusted(row.get(1)),
            app_id: AppId::from_trusted(row.get(2)),
            event_type: m.get(1),
            event_id: m.get(2),
            payload: bytes::Bytes::from(m.get::<_, Option<String>>(3).unwrap_or_default()),
            attempts: u32::try_from(row.get::<_, i32>(3)).unwrap_or(0),
            manual: row.get(4),
            msg_created_at: m.get(4),
            headers: header_pairs(m.get(5))?,
        });
    }
    Ok(tasks)
}

/// Attempts as the parallel arrays one `INSERT … SELECT * FROM unnest(…)` takes.
#[derive(Default)]
struct AttemptArrays<'a> {
    ids: Vec<&'a str>,
    msgs: Vec<&'a str>,
    endpoints: Vec<&'a str>,
    apps: Vec<&'a str>,
    urls: Vec<&'a str>,
    statuses: Vec<i32>,
    outcomes: Vec<&'a str>,
    codes: Vec<i32>,
    responses: Vec<&'a str>,
    durations: Vec<i64>,
    manual: Vec<bool>,
    created: Vec<i64>,
}

impl<'a> AttemptArrays<'a> {
    fn push(&mut self, a: &'a Attempt) {
        self.ids.push(a.id.as_str());
        self.msgs.push(a.msg_id.as_str());
        self.endpoints.push(a.endpoint_id.as_str());
        self.apps.push(a.app_id.as_str());
        self.urls.push(&a.url);
        self.statuses.push(a.status.code() as i32);
        self.outcomes.push(a.outcome.as_str());
        self.codes.push(a.response_status_code);
        self.responses.push(&a.response);
        self.durations.push(a.response_duration_ms);
        self.manual.push(a.manual);
        self.created.push(a.created_at);
    }
}

/// Queued tasks as the three parallel arrays `unnest` takes, sorted by key so that every
/// statement locks rows in the same order (two nodes cannot deadlock on them).
fn queued_arrays(mut tasks: Vec<QueuedTask>) -> (Vec<String>, Vec<String>, Vec<i64>) {
    tasks.sort_by(|a, b| (&a.msg_id, &a.endpoint_id).cmp(&(&b.msg_id, &b.endpoint_id)));
    tasks.dedup_by(|a, b| a.msg_id == b.msg_id && a.endpoint_id == b.endpoint_id);
    let mut msgs = Vec::with_capacity(tasks.len());
    let mut endpoints = Vec::with_capacity(tasks.len());
    let mut tokens = Vec::with_capacity(tasks.len());
    for task in tasks {
        msgs.push(task.msg_id.as_str().to_owned());
        endpoints.push(task.endpoint_id.as_str().to_owned());
        tokens.push(task.lease_until);
    }
    (msgs, endpoints, tokens)
}

/// Leases up to `$2` tasks due by `$1` until `$3`, returning what [`leased_tasks`] reads. SKIP
/// LOCKED: tasks another node is leasing right now are passed over, not waited for.
const LEASE_DUE: &str = "WITH due AS (
     SELECT msg_id, endpoint_id FROM deliveries WHERE next_attempt_at <= $1
     ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
 UPDATE deliveries d SET status = 3, next_attempt_at = $3 FROM due
 WHERE d.msg_id = due.msg_id AND d.endpoint_id = due.endpoint_id
 RETURNING d.msg_id, d.endpoint_id, d.app_id, d.attempts, d.manual";

/// Locks, in key order, the queued tasks that still hold the relay lease their message names.
const STILL_QUEUED: &str = "WITH still AS (
     SELECT d.msg_id, d.endpoint_id FROM deliveries d
     JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS q(msg_id, endpoint_id, lease_until)
       ON d.msg_id = q.msg_id AND d.endpoint_id = q.endpoint_id
     WHERE d.status = 3 AND d.next_attempt_at = q.lease_until
     ORDER BY d.msg_id, d.endpoint_id FOR UPDATE OF d)";

/// Inserts a message and one delivery per recipient, inside the caller's transaction.
async fn insert_message(
    tx: &impl GenericClient,
    msg: Message,
    recipients: &Recipients,
    lease_until: Option<UnixMs>,
) -> StoreResult<(Message, Vec<LeasedTask>)> {
    let (status, next) = match lease_until {
        Some(until) => (DeliveryStatus::Sending, until),
        None => (DeliveryStatus::Pending, msg.created_at),
    };
    let endpoints = match recipients {
        Recipients::Subscribers => {
            let select = tx
                .prepare_cached(&format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = $1 AND NOT disabled ORDER BY id"))
                .await?;
            let rows = tx.query(&select, &[&msg.app_id.as_str()]).await?;
            let mut all = all(rows, endpoint)?;
            all.retain(|ep| ep.accepts(&msg.event_type, msg.channels.as_deref()));
            all
        }
        Recipients::Endpoint(id) => {
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = $1 AND id = $2"
                    ),
                    &[&msg.app_id.as_str(), &id.as_str()],
                )
                .await?
                .ok_or(StoreError::NotFound("endpoint"))?;
            vec![endpoint(&row)?]
        }
    };
    // The message and its deliveries in one statement: atomic even outside a transaction.
    let insert = tx
        .prepare_cached(&format!(
            "WITH message AS (
                 INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9))
             INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, manual, created_at)
             SELECT $1, endpoint_id, $2, $10, 0, $11, FALSE, $8 FROM unnest($12::text[]) AS endpoint_id"
        ))
        .await?;
    let endpoint_ids: Vec<&str> = endpoints.iter().map(|ep| ep.id.as_str()).collect();
    tx.execute(
        &insert,
        &[
            &msg.id.as_str(),
            &msg.app_id.as_str(),
            &msg.event_id,
            &msg.event_type,
            &list_to_json(&msg.channels),
            &msg.payload,
            &msg.payload_expires_at,
            &msg.created_at,
            &header_pairs_to_json(&msg.headers),
            &(status.code() as i32),
            &next,
            &endpoint_ids,
        ],
    )
    .await
    .map_err(|err| conflict_on_unique(err, "a message with this eventId already exists"))?;
    let tasks = LeasedTask::first_of(&msg, endpoints.into_iter().map(|ep| ep.id));
    Ok((msg, tasks))
}

async fn insert_app(tx: &impl GenericClient, app: &Application) -> StoreResult<()> {
    tx.execute(
        &format!("INSERT INTO applications ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
        &[
            &app.id.as_str(),
            &app.uid,
            &app.name,
            &app.metadata,
            &app.throttle_rate.map(|r| r as i32),
            &app.created_at,
            &app.updated_at,
        ],
    )
    .await
    .map_err(|err| conflict_on_unique(err, "an application with this uid already exists"))?;
    Ok(())
}

async fn insert_endpoint(tx: &impl GenericClient, ep: &Endpoint) -> StoreResult<()> {
    let previous = serde_json::to_string(&ep.secrets.previous).expect("serialisable");
    tx.execute(
        &format!("INSERT INTO endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"),
        &[&ep.id.as_str(), &ep.app_id.as_str(), &ep.uid, &ep.url, &ep.description, &ep.disabled,
          &list_to_json(&ep.event_types), &list_to_json(&ep.channels), &ep.metadata, &ep.throttle_rate.map(|r| r as i32),
          &ep.headers, &ep.secrets.current, &previous, &ep.failing_since, &ep.created_at, &ep.updated_at],
    )
    .await
    .map_err(|err| conflict_on_unique(err, "an endpoint with this uid already exists in the application"))?;
    Ok(())
}

/// A manual delivery of `msg` to `endpoint`, due at `now` (see the SQLite store).
async fn schedule_resend(
    tx: &impl GenericClient,
    msg: &str,
    endpoint: &str,
    app: &str,
    now: UnixMs,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, manual, created_at)
         VALUES ($1, $2, $3, 1, 0, $4, TRUE, $4)
         ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET
           status = CASE WHEN deliveries.status = 3 THEN 3 ELSE 1 END,
           next_attempt_at = CASE WHEN deliveries.status = 3 THEN deliveries.next_attempt_at ELSE $4 END,
           manual = TRUE",
        &[&msg, &endpoint, &app, &now],
    )
    .await?;
    Ok(())
}

async fn delete_deliveries_and_attempts(
    tx: &impl GenericClient,
    column: &str,
    id: &str,
) -> StoreResult<()> {
    tx.execute(
        &format!("DELETE FROM deliveries WHERE {column} = $1"),
        &[&id],
    )
    .await?;
    tx.execute(&format!("DELETE FROM attempts WHERE {column} = $1"), &[&id])
        .await?;
    Ok(())
}

fn message_filter(filter: &MessageFilter, alias: &str, q: &mut Query) {
    if let Some(channel) = &filter.channel {
        let mark = q.bind(format!("%\"{channel}\"%"));
        q.push(&format!(" AND {alias}channels LIKE {mark}"));
    }
    if !filter.event_types.is_empty() {
        let mark = q.bind(filter.event_types.clone());
        q.push(&format!(" AND {alias}event_type = ANY({mark})"));
    }
    if let Some(before) = filter.before {
        let mark = q.bind(before);
        q.push(&format!(" AND {alias}created_at < {mark}"));
    }
    if let Some(after) = filter.after {
        let mark = q.bind(after);
        q.push(&format!(" AND {alias}created_at > {mark}"));
    }
}

fn not_found_if_none(changed: u64, what: &'static str) -> StoreResult<()> {
    if changed == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let client = self.client().await?;
        Ok(client
            .query_opt("SELECT value FROM settings WHERE key = $1", &[&key])
            .await?
            .map(|r| r.get(0)))
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<String> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&key, &value],
            )
            .await?;
        Ok(client
            .query_one("SELECT value FROM settings WHERE key = $1", &[&key])
            .await?
            .get(0))
    }

    async fn get_idempotent(&self, key: &str) -> StoreResult<Option<IdempotentResponse>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT request_hash, status, body, created_at FROM idempotency WHERE key = $1",
                &[&key],
            )
            .await?;
        Ok(row.map(|r| IdempotentResponse {
            request_hash: r.get(0),
            status: u16::try_from(r.get::<_, i32>(1)).unwrap_or(200),
            body: r.get(2),
            created_at: r.get(3),
        }))
    }

    async fn put_idempotent(&self, key: &str, response: IdempotentResponse) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO idempotency (key, request_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&key, &response.request_hash, &i32::from(response.status), &response.body, &response.created_at],
            )
            .await?;
        Ok(())
    }

    async fn expire_idempotent(&self, before: UnixMs) -> StoreResult<u64> {
        let client = self.client().await?;
        Ok(client
            .execute("DELETE FROM idempotency WHERE created_at < $1", &[&before])
            .await?)
    }

    async fn create_app(&self, app: Application) -> StoreResult<Application> {
        let client = self.client().await?;
        insert_app(&client, &app).await?;
        Ok(app)
    }

    async fn get_app(&self, key: &str) -> StoreResult<Option<Application>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE id = $1 OR uid = $1 ORDER BY id = $1 DESC LIMIT 1"
        );
        let select = client.prepare_cached(&sql).await?;
        client
            .query_opt(&select, &[&key])
            .await?
            .as_ref()
            .map(app)
            .transpose()
    }

    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Vec<Application>> {
        let client = self.client().await?;
        let mut q = Query::new(format!("SELECT {APP_COLUMNS} FROM applications WHERE TRUE"));
        q.page(page, "id");
        all(client.query(&q.sql, &q.params()).await?, app)
    }

    async fn update_app(&self, a: Application) -> StoreResult<Application> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE applications SET uid = $2, name = $3, metadata = $4, throttle_rate = $5, updated_at = $6 WHERE id = $1",
                &[&a.id.as_str(), &a.uid, &a.name, &a.metadata, &a.throttle_rate.map(|r| r as i32), &a.updated_at],
            )
            .await
            .map_err(|err| conflict_on_unique(err, "an application with this uid already exists"))?;
        not_found_if_none(changed, "application")?;
        Ok(a)
    }

    async fn delete_app(&self, id: &AppId) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id = id.as_str();
        not_found_if_none(
            tx.execute("DELETE FROM applications WHERE id = $1", &[&id])
                .await?,
            "application",
        )?;
        tx.execute("DELETE FROM endpoints WHERE app_id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM messages WHERE app_id = $1", &[&id])
            .await?;
        delete_deliveries_and_attempts(&tx, "app_id", id).await?;
        Ok(tx.commit().await?)
    }

    async fn create_event_type(&self, et: EventType) -> StoreResult<EventType> {
        let client = self.client().await?;
        client
            .execute(
                &format!("INSERT INTO event_types ({EVENT_TYPE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
                &[&et.name, &et.description, &et.archived, &et.deprecated, &et.feature_flag, &et.schemas, &et.created_at, &et.updated_at],
            )
            .await
            .map_err(|err| conflict_on_unique(err, "an event type with this name already exists"))?;
        Ok(et)
    }

    async fn get_event_type(&self, name: &str) -> StoreResult<Option<EventType>> {
        let client = self.client().await?;
        let sql = format!("SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE name = $1");
        client
            .query_opt(&sql, &[&name])
            .await?
            .as_ref()
            .map(event_type)
            .transpose()
    }

    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> StoreResult<Vec<EventType>> {
        let client = self.client().await?;
        let archived = if include_archived {
            ""
        } else {
            " AND NOT archived"
        };
        let mut q = Query::new(format!(
            "SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE TRUE{archived}"
        ));
        q.page(page, "name");
        all(client.query(&q.sql, &q.params()).await?, event_type)
    }

    async fn update_event_type(&self, et: EventType) -> StoreResult<EventType> {
        let client = self.client().await?;
        client
            .execute(
                &format!("INSERT INTO event_types ({EVENT_TYPE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (name) DO UPDATE SET description = excluded.description, archived = excluded.archived,
                 deprecated = excluded.deprecated, feature_flag = excluded.feature_flag, schemas = excluded.schemas,
                 updated_at = excluded.updated_at"),
                &[&et.name, &et.description, &et.archived, &et.deprecated, &et.feature_flag, &et.schemas, &et.created_at, &et.updated_at],
            )
            .await?;
        Ok(et)
    }

    async fn delete_event_type(&self, name: &str, expunge: bool) -> StoreResult<()> {
        let client = self.client().await?;
        let changed = if expunge {
            client
                .execute("DELETE FROM event_types WHERE name = $1", &[&name])
                .await?
        } else {
            client
                .execute(
                    "UPDATE event_types SET archived = TRUE WHERE name = $1",
                    &[&name],
                )
                .await?
        };
        not_found_if_none(changed, "event type")
    }

    async fn create_endpoint(&self, ep: Endpoint) -> StoreResult<Endpoint> {
        let client = self.client().await?;
        insert_endpoint(&client, &ep).await?;
        Ok(ep)
    }

    async fn get_endpoint(&self, app: &AppId, key: &str) -> StoreResult<Option<Endpoint>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = $1 AND (id = $2 OR uid = $2) ORDER BY id = $2 DESC LIMIT 1"
        );
        client
            .query_opt(&sql, &[&app.as_str(), &key])
            .await?
            .as_ref()
            .map(endpoint)
            .transpose()
    }

    async fn get_endpoint_by_id(&self, id: &EndpointId) -> StoreResult<Option<Endpoint>> {
        let client = self.client().await?;
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = $1");
        client
            .query_opt(&sql, &[&id.as_str()])
            .await?
            .as_ref()
            .map(endpoint)
            .transpose()
    }

    async fn list_endpoints(&self, app: &AppId, page: &PageRequest) -> StoreResult<Vec<Endpoint>> {
        let client = self.client().await?;
        let mut q = Query::new(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = "
        ));
        let mark = q.bind(app.as_str().to_owned());
        q.push(&mark);
        q.page(page, "id");
        all(client.query(&q.sql, &q.params()).await?, endpoint)
    }

    async fn update_endpoint(&self, ep: Endpoint) -> StoreResult<Endpoint> {
        let client = self.client().await?;
        let previous = serde_json::to_string(&ep.secrets.previous).expect("serialisable");
        let changed = client
            .execute(
                "UPDATE endpoints SET uid = $2, url = $3, description = $4, disabled = $5, event_types = $6,
                 channels = $7, metadata = $8, throttle_rate = $9, headers = $10, secret = $11,
                 previous_secrets = $12, failing_since = $13, updated_at = $14 WHERE id = $1",
                &[&ep.id.as_str(), &ep.uid, &ep.url, &ep.description, &ep.disabled, &list_to_json(&ep.event_types),
                  &list_to_json(&ep.channels), &ep.metadata, &ep.throttle_rate.map(|r| r as i32), &ep.headers,
                  &ep.secrets.current, &previous, &ep.failing_since, &ep.updated_at],
            )
            .await
            .map_err(|err| conflict_on_unique(err, "an endpoint with this uid already exists in the application"))?;
        not_found_if_none(changed, "endpoint")?;
        Ok(ep)
    }

    async fn delete_endpoint(&self, id: &EndpointId) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        not_found_if_none(
            tx.execute("DELETE FROM endpoints WHERE id = $1", &[&id.as_str()])
                .await?,
            "endpoint",
        )?;
        delete_deliveries_and_attempts(&tx, "endpoint_id", id.as_str()).await?;
        Ok(tx.commit().await?)
    }

    async fn endpoint_stats(
        &self,
        id: &EndpointId,
        since: Option<UnixMs>,
        until: Option<UnixMs>,
    ) -> StoreResult<EndpointStats> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT status, COUNT(*) FROM deliveries WHERE endpoint_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY status",
                &[&id.as_str(), &since.unwrap_or(i64::MIN), &until.unwrap_or(i64::MAX)],
            )
            .await?;
        let mut stats = EndpointStats::default();
        for row in rows {
            let count: i64 = row.get(1);
            match status(row.get(0))? {
                DeliveryStatus::Success => stats.success = count,
                DeliveryStatus::Pending => stats.pending = count,
                DeliveryStatus::Sending => stats.sending = count,
                DeliveryStatus::Fail => stats.fail = count,
            }
        }
        Ok(stats)
    }

    async fn create_message(
        &self,
        msg: Message,
        recipients: Recipients,
        lease_until: Option<UnixMs>,
    ) -> StoreResult<(Message, Vec<LeasedTask>)> {
        let client = self.client().await?;
        insert_message(&client, msg, &recipients, lease_until).await
    }

    async fn get_message(&self, app: &AppId, key: &str) -> StoreResult<Option<Message>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE app_id = $1 AND (id = $2 OR event_id = $2) ORDER BY id = $2 DESC LIMIT 1"
        );
        client
            .query_opt(&sql, &[&app.as_str(), &key])
            .await?
            .as_ref()
            .map(message)
            .transpose()
    }

    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
    ) -> StoreResult<Vec<Message>> {
        let client = self.client().await?;
        let mut q = Query::new(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE app_id = "
        ));
        let mark = q.bind(app.as_str().to_owned());
        q.push(&mark);
        message_filter(filter, "", &mut q);
        q.page(&filter.page, "id");
        all(client.query(&q.sql, &q.params()).await?, message)
    }

    async fn expunge_message_content(&self, id: &MessageId) -> StoreResult<()> {
        let client = self.client().await?;
        not_found_if_none(
            client
                .execute(
                    "UPDATE messages SET payload = NULL WHERE id = $1",
                    &[&id.as_str()],
                )
                .await?,
            "message",
        )
    }

    async fn expire_payloads(&self, now: UnixMs) -> StoreResult<u64> {
        let client = self.client().await?;
        Ok(client.execute("UPDATE messages SET payload = NULL WHERE payload IS NOT NULL AND payload_expires_at <= $1", &[&now]).await?)
    }

    async fn list_deliveries_for_message(
        &self,
        msg: &MessageId,
        page: &PageRequest,
    ) -> StoreResult<Vec<Delivery>> {
        let client = self.client().await?;
        let mut q = Query::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE msg_id = "
        ));
        let mark = q.bind(msg.as_str().to_owned());
        q.push(&mark);
        q.page(page, "endpoint_id");
        all(client.query(&q.sql, &q.params()).await?, delivery)
    }

    async fn list_messages_for_endpoint(
        &self,
        endpoint: &EndpointId,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
    ) -> StoreResult<Vec<(Message, Delivery)>> {
        let client = self.client().await?;
        let columns = MESSAGE_COLUMNS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .chain(DELIVERY_COLUMNS.split(", ").map(|c| format!("d.{c}")))
            .collect::<Vec<_>>()
            .join(", ");
        let mut q = Query::new(format!(
            "SELECT {columns} FROM deliveries d JOIN messages m ON m.id = d.msg_id WHERE d.endpoint_id = "
        ));
        let mark = q.bind(endpoint.as_str().to_owned());
        q.push(&mark);
        if let Some(status) = status {
            let mark = q.bind(status.code() as i32);
            q.push(&format!(" AND d.status = {mark}"));
        }
        message_filter(filter, "m.", &mut q);
        q.page(&filter.page, "d.msg_id");
        client
            .query(&q.sql, &q.params())
            .await?
            .iter()
            .map(|row| Ok((message_at(row, 0)?, delivery_at(row, 9)?)))
            .collect()
    }

    async fn list_attempts(&self, filter: &AttemptFilter) -> StoreResult<Vec<Attempt>> {
        let client = self.client().await?;
        let columns = ATTEMPT_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let needs_message = filter.channel.is_some() || !filter.event_types.is_empty();
        let mut q = Query::new(format!("SELECT {columns} FROM attempts a"));
        if needs_message {
            q.push(" JOIN messages m ON m.id = a.msg_id");
        }
        let mark = q.bind(filter.app.as_str().to_owned());
        q.push(&format!(" WHERE a.app_id = {mark}"));
        if let Some(msg) = &filter.msg {
            let mark = q.bind(msg.as_str().to_owned());
            q.push(&format!(" AND a.msg_id = {mark}"));
        }
        if let Some(endpoint) = &filter.endpoint {
            let mark = q.bind(endpoint.as_str().to_owned());
            q.push(&format!(" AND a.endpoint_id = {mark}"));
        }
        if let Some(status) = filter.status {
            let mark = q.bind(status.code() as i32);
            q.push(&format!(" AND a.status = {mark}"));
        }
        if let Some(class) = filter.status_code_class {
            let low = q.bind(class);
            let high = q.bind(if class == 0 { 100 } else { class + 100 });
            q.push(&format!(
                " AND a.response_status_code >= {low} AND a.response_status_code < {high}"
            ));
        }
        if let Some(before) = filter.before {
            let mark = q.bind(before);
            q.push(&format!(" AND a.created_at < {mark}"));
        }
        if let Some(after) = filter.after {
            let mark = q.bind(after);
            q.push(&format!(" AND a.created_at > {mark}"));
        }
        if needs_message {
            let only_messages = MessageFilter {
                channel: filter.channel.clone(),
                event_types: filter.event_types.clone(),
                ..MessageFilter::page(filter.page.clone())
            };
            message_filter(&only_messages, "m.", &mut q);
        }
        q.page(&filter.page, "a.id");
        all(client.query(&q.sql, &q.params()).await?, attempt)
    }

    async fn get_attempt(&self, msg: &MessageId, id: &AttemptId) -> StoreResult<Option<Attempt>> {
        let client = self.client().await?;
        let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE id = $1 AND msg_id = $2");
        client
            .query_opt(&sql, &[&id.as_str(), &msg.as_str()])
            .await?
            .as_ref()
            .map(attempt)
            .transpose()
    }

    async fn expunge_attempt_content(&self, id: &AttemptId) -> StoreResult<()> {
        let client = self.client().await?;
        not_found_if_none(
            client
                .execute(
                    "UPDATE attempts SET response = 'EXPUNGED' WHERE id = $1",
                    &[&id.as_str()],
                )
                .await?,
            "attempt",
        )
    }

    async fn resend(&self, msg: &MessageId, endpoint: &EndpointId, now: UnixMs) -> StoreResult<()> {
        let client = self.client().await?;
        let app: String = client
            .query_opt(
                "SELECT app_id FROM messages WHERE id = $1",
                &[&msg.as_str()],
            )
            .await?
            .ok_or(StoreError::NotFound("message"))?
            .get(0);
        schedule_resend(&client, msg.as_str(), endpoint.as_str(), &app, now).await
    }

    async fn recover(
        &self,
        endpoint: &EndpointId,
        since: UnixMs,
        until: Option<UnixMs>,
        now: UnixMs,
    ) -> StoreResult<u64> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE deliveries SET status = 1, next_attempt_at = $2, manual = TRUE
                 WHERE endpoint_id = $1 AND status = 2 AND created_at >= $3 AND created_at < $4",
                &[&endpoint.as_str(), &now, &since, &until.unwrap_or(i64::MAX)],
            )
            .await?)
    }

    async fn bring_forward(&self, endpoint: &EndpointId, now: UnixMs) -> StoreResult<u64> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE deliveries SET next_attempt_at = $2 WHERE endpoint_id = $1 AND status = 1 AND next_attempt_at > $2",
                &[&endpoint.as_str(), &now],
            )
            .await?)
    }

    async fn lease_due(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        limit: usize,
    ) -> StoreResult<Vec<LeasedTask>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease = tx.prepare_cached(LEASE_DUE).await?;
        let rows = tx.query(&lease, &[&now, &limit, &lease_until]).await?;
        let tasks = leased_tasks(&tx, &rows).await?;
        tx.commit().await?;
        Ok(tasks)
    }

    async fn lease_due_keys(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        limit: usize,
    ) -> StoreResult<Vec<(MessageId, EndpointId)>> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease = client.prepare_cached(LEASE_DUE).await?;
        let rows = client.query(&lease, &[&now, &limit, &lease_until]).await?;
        Ok(rows
            .iter()
            .map(|row| {
                (
                    MessageId::from_trusted(row.get(0)),
                    EndpointId::from_trusted(row.get(1)),
                )
            })
            .collect())
    }

    async fn claim(
        &self,
        tasks: Vec<QueuedTask>,
        lease_until: UnixMs,
    ) -> StoreResult<Vec<LeasedTask>> {
        let (msgs, endpoints, tokens) = queued_arrays(tasks);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The new lease ends after the relay's, so the same message cannot claim it again.
        let take = tx
            .prepare_cached(&format!(
                "{STILL_QUEUED}
                 UPDATE deliveries d SET next_attempt_at = GREATEST($4, d.next_attempt_at + 1)
                 FROM still WHERE d.msg_id = still.msg_id AND d.endpoint_id = still.endpoint_id
                 RETURNING d.msg_id, d.endpoint_id, d.app_id, d.attempts, d.manual"
            ))
            .await?;
        let rows = tx
            .query(&take, &[&msgs, &endpoints, &tokens, &lease_until])
            .await?;
        let tasks = leased_tasks(&tx, &rows).await?;
        tx.commit().await?;
        Ok(tasks)
    }

    async fn release_queued(&self, tasks: Vec<QueuedTask>, due_at: UnixMs) -> StoreResult<()> {
        let (msgs, endpoints, tokens) = queued_arrays(tasks);
        let client = self.client().await?;
        let release = client
            .prepare_cached(&format!(
                "{STILL_QUEUED}
                 UPDATE deliveries d SET status = 1, next_attempt_at = $4
                 FROM still WHERE d.msg_id = still.msg_id AND d.endpoint_id = still.endpoint_id"
            ))
            .await?;
        client
            .execute(&release, &[&msgs, &endpoints, &tokens, &due_at])
            .await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client().await?.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn next_due_at(&self) -> StoreResult<Option<UnixMs>> {
        let client = self.client().await?;
        let select = client
            .prepare_cached(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE next_attempt_at IS NOT NULL",
            )
            .await?;
        Ok(client.query_one(&select, &[]).await?.get(0))
    }

    async fn release(
        &self,
        tasks: Vec<(MessageId, EndpointId)>,
        due_at: UnixMs,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for (msg, endpoint) in &tasks {
            tx.execute(
                "UPDATE deliveries SET status = 1, next_attempt_at = $3 WHERE msg_id = $1 AND endpoint_id = $2 AND status = 3",
                &[&msg.as_str(), &endpoint.as_str(), &due_at],
            )
            .await?;
        }
        Ok(tx.commit().await?)
    }

    async fn fail_without_attempt(&self, tasks: Vec<(MessageId, EndpointId)>) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for (msg, endpoint) in &tasks {
            tx.execute(
                "UPDATE deliveries SET status = 2, next_attempt_at = NULL WHERE msg_id = $1 AND endpoint_id = $2 AND status = 3",
                &[&msg.as_str(), &endpoint.as_str()],
            )
            .await?;
        }
        Ok(tx.commit().await?)
    }

    async fn record_attempts(
        &self,
        mut outcomes: Vec<AttemptOutcome>,
    ) -> StoreResult<Vec<EndpointTransition>> {
        // Endpoint by endpoint, oldest first: the order their health is folded in, and one lock
        // order for every node (batches recorded at once wait for each other, never deadlock).
        outcomes.sort_by(|a, b| {
            (&a.attempt.endpoint_id, a.attempt.created_at)
                .cmp(&(&b.attempt.endpoint_id, b.attempt.created_at))
        });
        let mut attempts = AttemptArrays::default();
        let (mut msgs, mut endpoints, mut states, mut nexts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for outcome in &outcomes {
            attempts.push(&outcome.attempt);
            let (state, next) = match outcome.next {
                TaskNext::Delivered => (DeliveryStatus::Success, None),
                TaskNext::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
                TaskNext::Exhausted | TaskNext::DisableEndpoint => (DeliveryStatus::Fail, None),
            };
            msgs.push(outcome.attempt.msg_id.as_str());
            endpoints.push(outcome.attempt.endpoint_id.as_str());
            states.push(state.code() as i32);
            nexts.push(next);
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO attempts ({ATTEMPT_COLUMNS})
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::int4[], $7::text[], $8::int4[], $9::text[], $10::int8[], $11::bool[], $12::int8[])"
            ))
            .await?;
        let a = &attempts;
        tx.execute(
            &insert,
            &[
                &a.ids,
                &a.msgs,
                &a.endpoints,
                &a.apps,
                &a.urls,
                &a.statuses,
                &a.outcomes,
                &a.codes,
                &a.responses,
                &a.durations,
                &a.manual,
                &a.created,
            ],
        )
        .await?;
        let update = tx
            .prepare_cached(
                "UPDATE deliveries d SET status = u.status, attempts = d.attempts + 1,
                     next_attempt_at = u.next_attempt_at, manual = FALSE
                 FROM unnest($1::text[], $2::text[], $3::int4[], $4::int8[])
                     AS u(msg_id, endpoint_id, status, next_attempt_at)
                 WHERE d.msg_id = u.msg_id AND d.endpoint_id = u.endpoint_id",
            )
            .await?;
        tx.execute(&update, &[&msgs, &endpoints, &states, &nexts])
            .await?;

        // Endpoints that only succeeded need a write only if they were failing (a recovery);
        // the others are read under lock and their health folded in order.
        let mut only_delivered: Vec<&str> = Vec::new();
        let mut failed: Vec<&str> = Vec::new();
        for group in outcomes.chunk_by(|a, b| a.attempt.endpoint_id == b.attempt.endpoint_id) {
            let id = group[0].attempt.endpoint_id.as_str();
            if group.iter().all(|o| o.next == TaskNext::Delivered) {
                only_delivered.push(id);
            } else {
                failed.push(id);
            }
        }
        let mut transitions = Vec::new();
        if !only_delivered.is_empty() {
            let recover = tx
                .prepare_cached(
                    "UPDATE endpoints SET failing_since = NULL
                     WHERE id = ANY($1) AND failing_since IS NOT NULL RETURNING id",
                )
                .await?;
            for row in tx.query(&recover, &[&only_delivered]).await? {
                transitions.push(EndpointTransition::Recovered {
                    endpoint: EndpointId::from_trusted(row.get(0)),
                });
            }
        }
        if !failed.is_empty() {
            let rows = tx
                .query(
                    "SELECT id, failing_since, disabled FROM endpoints WHERE id = ANY($1)
                     ORDER BY id FOR UPDATE",
                    &[&failed],
                )
                .await?;
            for row in rows {
                let endpoint = EndpointId::from_trusted(row.get(0));
                let before = EndpointHealth {
                    failing_since: row.get(1),
                    disabled: row.get(2),
                };
                let mut after = before;
                let changes = after.apply(
                    &endpoint,
                    outcomes
                        .iter()
                        .filter(|o| o.attempt.endpoint_id == endpoint),
                );
                if after != before {
                    let at = outcomes
                        .iter()
                        .filter(|o| o.attempt.endpoint_id == endpoint)
                        .map(|o| o.attempt.created_at)
                        .max()
                        .unwrap_or_default();
                    tx.execute(
                        "UPDATE endpoints SET failing_since = $2, disabled = $3,
                             updated_at = CASE WHEN $3 AND NOT disabled THEN $4 ELSE updated_at END
                         WHERE id = $1",
                        &[
                            &endpoint.as_str(),
                            &after.failing_since,
                            &after.disabled,
                            &at,
                        ],
                    )
                    .await?;
                }
                transitions.extend(changes);
            }
        }
        tx.commit().await?;
        Ok(transitions)
    }

    async fn queue_depths(&self, now: UnixMs) -> StoreResult<QueueDepths> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*) FILTER (WHERE status = 1 AND next_attempt_at <= $1),
                        COUNT(*) FILTER (WHERE status = 3),
                        COUNT(*) FILTER (WHERE status = 1 AND next_attempt_at > $1)
                 FROM deliveries WHERE next_attempt_at IS NOT NULL",
                &[&now],
            )
            .await?;
        Ok(QueueDepths {
            due: row.get(0),
            leased: row.get(1),
            waiting: row.get(2),
        })
    }
}
