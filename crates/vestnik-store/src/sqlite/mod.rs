//! The embedded SQLite implementation of [`crate::Store`]: one writer thread with group commit,
//! a small pool of reader connections, and an exclusive lock file so one process owns the file.

mod inbound;
mod rows;
mod schema;
mod writer;

use crate::model::*;
use crate::query::*;
use crate::{Store, StoreError, StoreResult};
use async_trait::async_trait;
use rows::*;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use vestnik_core::{AppId, AttemptId, DeliveryStatus, EndpointId, MessageId};
use writer::Writer;

const MAX_IDLE_READERS: usize = 8;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
    /// Held for the store's lifetime: a second process on the same file fails to open it.
    _lock: std::fs::File,
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn take(&self) -> StoreResult<Connection> {
        if let Some(conn) = self.idle.lock().expect("reader pool lock").pop() {
            return Ok(conn);
        }
        let conn = Connection::open(&self.path)?;
        conn.execute_batch("PRAGMA busy_timeout = 10000; PRAGMA query_only = 1;")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        let mut idle = self.idle.lock().expect("reader pool lock");
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `sqlite://path`, `sqlite:path` or a plain path, migrates it and
    /// returns every task a previous process held to the due pool.
    pub fn open(url: &str, now: UnixMs) -> StoreResult<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = PathBuf::from(path);
        let lock = lock_file(&path)?;
        let mut conn = Connection::open(&path)
            .map_err(|err| StoreError::Open(format!("{}: {err}", path.display())))?;
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        // The lock proves no other process holds leases: everything "sending" is ours, orphaned.
        let returned = conn.execute(
            "UPDATE deliveries SET status = 1, next_attempt_at = ?1 WHERE status = 3",
            [now],
        )?;
        if returned > 0 {
            tracing::info!(
                tasks = returned,
                "returned tasks leased before the last stop"
            );
        }
        // The writer runs some 30 distinct statements; rusqlite's default cache of 16 would keep
        // evicting and re-parsing them.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            writer: Writer::spawn(conn)?,
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
            }),
            _lock: lock,
        })
    }

    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let result = work(&conn);
            readers.give(conn);
            result
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }
}

/// Selects what [`leased_task`] reads: a delivery joined with its message.
const LEASED_TASK_SELECT: &str =
    "SELECT d.msg_id, d.endpoint_id, d.app_id, m.event_type, m.event_id, m.payload,
        d.attempts, d.manual, m.created_at, m.headers
     FROM deliveries d JOIN messages m ON m.id = d.msg_id";

fn leased_task(row: &rusqlite::Row<'_>) -> rusqlite::Result<LeasedTask> {
    Ok(LeasedTask {
        msg_id: MessageId::from_trusted(row.get(0)?),
        endpoint_id: EndpointId::from_trusted(row.get(1)?),
        app_id: AppId::from_trusted(row.get(2)?),
        event_type: row.get(3)?,
        event_id: row.get(4)?,
        payload: bytes::Bytes::from(row.get::<_, Option<String>>(5)?.unwrap_or_default()),
        attempts: row.get(6)?,
        manual: row.get(7)?,
        msg_created_at: row.get(8)?,
        headers: header_pairs(row, 9)?,
    })
}

fn lock_file(db_path: &Path) -> StoreResult<std::fs::File> {
    let mut lock_path = db_path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|err| StoreError::Open(format!("{}: {err}", db_path.display())))?;
    file.try_lock()
        .map_err(|_| StoreError::Locked(db_path.display().to_string()))?;
    Ok(file)
}

/// `AND <column> > ?` (or `<`) and the ORDER/LIMIT tail for keyset pagination.
fn page_clause(page: &PageRequest, column: &str, params: &mut Vec<Value>) -> (String, String) {
    let (cmp, dir) = if page.ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    let filter = match &page.cursor {
        Some(cursor) => {
            params.push(Value::Text(cursor.clone()));
            format!(" AND {column} {cmp} ?")
        }
        None => String::new(),
    };
    (
        filter,
        format!(" ORDER BY {column} {dir} LIMIT {}", page.fetch()),
    )
}

fn query_list<T>(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
    map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params_from_iter(params), map)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Makes a manual delivery of `msg` to `endpoint` due at `now`. A resend after a delivery existed
/// reuses its row (leaving one in flight alone); one to an endpoint the message never matched
/// creates it, as Svix allows.
fn schedule_resend(
    conn: &Connection,
    msg: &str,
    endpoint: &str,
    app: &str,
    now: UnixMs,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, manual, created_at)
         VALUES (?1, ?2, ?3, 1, 0, ?4, 1, ?4)
         ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET
           status = CASE WHEN status = 3 THEN 3 ELSE 1 END,
           next_attempt_at = CASE WHEN status = 3 THEN next_attempt_at ELSE ?4 END,
           manual = 1",
    )?
    .execute(params![msg, endpoint, app, now])?;
    Ok(())
}

fn insert_app(conn: &Connection, app: &Application) -> StoreResult<()> {
    conn.execute(
        &format!("INSERT INTO applications ({APP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            app.id.as_str(),
            app.uid,
            app.name,
            app.metadata,
            app.throttle_rate,
            app.created_at,
            app.updated_at
        ],
    )
    .map_err(|err| conflict_on_unique(err, "an application with this uid already exists"))?;
    Ok(())
}

fn insert_endpoint(conn: &Connection, ep: &Endpoint) -> StoreResult<()> {
    let previous = serde_json::to_string(&ep.secrets.previous).expect("serialisable");
    conn.execute(
        &format!("INSERT INTO endpoints ({ENDPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
        params![ep.id.as_str(), ep.app_id.as_str(), ep.uid, ep.url, ep.description, ep.disabled,
            list_to_json(&ep.event_types), list_to_json(&ep.channels), ep.metadata, ep.throttle_rate,
            ep.headers, ep.secrets.current, previous, ep.failing_since, ep.created_at, ep.updated_at],
    )
    .map_err(|err| conflict_on_unique(err, "an endpoint with this uid already exists in the application"))?;
    Ok(())
}

/// Inserts a message and one delivery per recipient endpoint, inside the caller's transaction.
/// With `lease_until` the deliveries are born leased by the caller, who dispatches the returned
/// tasks from memory.
fn insert_message(
    conn: &Connection,
    msg: Message,
    recipients: &Recipients,
    lease_until: Option<UnixMs>,
) -> StoreResult<(Message, Vec<LeasedTask>)> {
    let (status, next) = match lease_until {
        Some(until) => (DeliveryStatus::Sending, until),
        None => (DeliveryStatus::Pending, msg.created_at),
    };
    conn.prepare_cached(&format!(
        "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?
    .execute(params![
        msg.id.as_str(),
        msg.app_id.as_str(),
        msg.event_id,
        msg.event_type,
        list_to_json(&msg.channels),
        msg.payload,
        msg.payload_expires_at,
        msg.created_at,
        header_pairs_to_json(&msg.headers)
    ])
    .map_err(|err| conflict_on_unique(err, "a message with this eventId already exists"))?;
    let endpoints = match &recipients {
        Recipients::Subscribers => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = ?1 AND disabled = 0"
            ))?;
            let mut all = stmt
                .query_map([msg.app_id.as_str()], endpoint)?
                .collect::<Result<Vec<_>, _>>()?;
            all.retain(|ep| ep.accepts(&msg.event_type, msg.channels.as_deref()));
            all
        }
        Recipients::Endpoint(id) => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = ?1 AND id = ?2"
            ))?;
            let found = one(stmt.query_row([msg.app_id.as_str(), id.as_str()], endpoint))?;
            vec![found.ok_or(StoreError::NotFound("endpoint"))?]
        }
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, manual, created_at)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, 0, ?6)",
    )?;
    for ep in &endpoints {
        insert.execute(params![
            msg.id.as_str(),
            ep.id.as_str(),
            msg.app_id.as_str(),
            status.code(),
            next,
            msg.created_at
        ])?;
    }
    let tasks = LeasedTask::first_of(&msg, endpoints.into_iter().map(|ep| ep.id));
    Ok((msg, tasks))
}

fn load_endpoint(conn: &Connection, id: &str) -> StoreResult<Option<Endpoint>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = ?1");
    one(conn.prepare_cached(&sql)?.query_row([id], endpoint))
}

fn delete_deliveries_and_attempts(conn: &Connection, column: &str, id: &str) -> StoreResult<()> {
    conn.execute(&format!("DELETE FROM deliveries WHERE {column} = ?1"), [id])?;
    conn.execute(&format!("DELETE FROM attempts WHERE {column} = ?1"), [id])?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        self.read(move |conn| {
            Ok(conn
                .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?)
        })
        .await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<String> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    [&key, &value],
                )?;
                Ok(
                    conn.query_row("SELECT value FROM settings WHERE key = ?1", [&key], |r| {
                        r.get(0)
                    })?,
                )
            })
            .await
    }

    async fn get_idempotent(&self, key: &str) -> StoreResult<Option<IdempotentResponse>> {
        let key = key.to_owned();
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT request_hash, status, body, created_at FROM idempotency WHERE key = ?1",
                    [key],
                    |r| {
                        Ok(IdempotentResponse {
                            request_hash: r.get(0)?,
                            status: r.get(1)?,
                            body: r.get(2)?,
                            created_at: r.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn put_idempotent(&self, key: &str, response: IdempotentResponse) -> StoreResult<()> {
        let key = key.to_owned();
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO idempotency (key, request_hash, status, body, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![
                        key,
                        response.request_hash,
                        response.status,
                        response.body,
                        response.created_at
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn expire_idempotent(&self, before: UnixMs) -> StoreResult<u64> {
        self.writer
            .write(move |conn| {
                Ok(conn.execute("DELETE FROM idempotency WHERE created_at < ?1", [before])? as u64)
            })
            .await
    }

    async fn create_app(&self, app: Application) -> StoreResult<Application> {
        self.writer
            .write(move |conn| {
                insert_app(conn, &app)?;
                Ok(app)
            })
            .await
    }

    async fn get_app(&self, key: &str) -> StoreResult<Option<Application>> {
        let key = key.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {APP_COLUMNS} FROM applications WHERE id = ?1 OR uid = ?1 ORDER BY id = ?1 DESC LIMIT 1");
            one(conn.prepare_cached(&sql)?.query_row([key], app))
        })
        .await
    }

    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Vec<Application>> {
        let page = page.clone();
        self.read(move |conn| {
            let mut params = Vec::new();
            let (filter, tail) = page_clause(&page, "id", &mut params);
            let sql = format!("SELECT {APP_COLUMNS} FROM applications WHERE 1 = 1{filter}{tail}");
            query_list(conn, &sql, params, rows::app)
        })
        .await
    }

    async fn update_app(&self, app: Application) -> StoreResult<Application> {
        self.writer
            .write(move |conn| {
                let changed = conn
                    .execute(
                        "UPDATE applications SET uid = ?2, name = ?3, metadata = ?4, throttle_rate = ?5, updated_at = ?6 WHERE id = ?1",
                        params![app.id.as_str(), app.uid, app.name, app.metadata, app.throttle_rate, app.updated_at],
                    )
                    .map_err(|err| conflict_on_unique(err, "an application with this uid already exists"))?;
                if changed == 0 {
                    return Err(StoreError::NotFound("application"));
                }
                Ok(app)
            })
            .await
    }

    async fn delete_app(&self, id: &AppId) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.writer
            .write(move |conn| {
                if conn.execute("DELETE FROM applications WHERE id = ?1", [&id])? == 0 {
                    return Err(StoreError::NotFound("application"));
                }
                conn.execute("DELETE FROM endpoints WHERE app_id = ?1", [&id])?;
                conn.execute("DELETE FROM messages WHERE app_id = ?1", [&id])?;
                delete_deliveries_and_attempts(conn, "app_id", &id)
            })
            .await
    }

    async fn create_event_type(&self, et: EventType) -> StoreResult<EventType> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    &format!("INSERT INTO event_types ({EVENT_TYPE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                    params![et.name, et.description, et.archived, et.deprecated, et.feature_flag, et.schemas, et.created_at, et.updated_at],
                )
                .map_err(|err| conflict_on_unique(err, "an event type with this name already exists"))?;
                Ok(et)
            })
            .await
    }

    async fn get_event_type(&self, name: &str) -> StoreResult<Option<EventType>> {
        let name = name.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE name = ?1");
            one(conn.prepare_cached(&sql)?.query_row([name], event_type))
        })
        .await
    }

    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> StoreResult<Vec<EventType>> {
        let page = page.clone();
        self.read(move |conn| {
            let mut params = Vec::new();
            let (filter, tail) = page_clause(&page, "name", &mut params);
            let archived = if include_archived {
                ""
            } else {
                " AND archived = 0"
            };
            let sql = format!(
                "SELECT {EVENT_TYPE_COLUMNS} FROM event_types WHERE 1 = 1{archived}{filter}{tail}"
            );
            query_list(conn, &sql, params, rows::event_type)
        })
        .await
    }

    async fn update_event_type(&self, et: EventType) -> StoreResult<EventType> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    &format!("INSERT INTO event_types ({EVENT_TYPE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (name) DO UPDATE SET description = excluded.description, archived = excluded.archived,
                     deprecated = excluded.deprecated, feature_flag = excluded.feature_flag, schemas = excluded.schemas,
                     updated_at = excluded.updated_at"),
                    params![et.name, et.description, et.archived, et.deprecated, et.feature_flag, et.schemas, et.created_at, et.updated_at],
                )?;
                Ok(et)
            })
            .await
    }

    async fn delete_event_type(&self, name: &str, expunge: bool) -> StoreResult<()> {
        let name = name.to_owned();
        self.writer
            .write(move |conn| {
                let changed = if expunge {
                    conn.execute("DELETE FROM event_types WHERE name = ?1", [&name])?
                } else {
                    conn.execute(
                        "UPDATE event_types SET archived = 1 WHERE name = ?1",
                        [&name],
                    )?
                };
                if changed == 0 {
                    return Err(StoreError::NotFound("event type"));
                }
                Ok(())
            })
            .await
    }

    async fn create_endpoint(&self, ep: Endpoint) -> StoreResult<Endpoint> {
        self.writer
            .write(move |conn| {
                insert_endpoint(conn, &ep)?;
                Ok(ep)
            })
            .await
    }

    async fn get_endpoint(&self, app: &AppId, key: &str) -> StoreResult<Option<Endpoint>> {
        let (app, key) = (app.as_str().to_owned(), key.to_owned());
        self.read(move |conn| {
            let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = ?1 AND (id = ?2 OR uid = ?2) ORDER BY id = ?2 DESC LIMIT 1");
            one(conn.prepare_cached(&sql)?.query_row([app, key], endpoint))
        })
        .await
    }

    async fn get_endpoint_by_id(&self, id: &EndpointId) -> StoreResult<Option<Endpoint>> {
        let id = id.as_str().to_owned();
        self.read(move |conn| load_endpoint(conn, &id)).await
    }

    async fn list_endpoints(&self, app: &AppId, page: &PageRequest) -> StoreResult<Vec<Endpoint>> {
        let (app, page) = (app.as_str().to_owned(), page.clone());
        self.read(move |conn| {
            let mut params = vec![Value::Text(app)];
            let (filter, tail) = page_clause(&page, "id", &mut params);
            let sql =
                format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = ?{filter}{tail}");
            query_list(conn, &sql, params, rows::endpoint)
        })
        .await
    }

    async fn update_endpoint(&self, ep: Endpoint) -> StoreResult<Endpoint> {
        self.writer
            .write(move |conn| {
                let previous = serde_json::to_string(&ep.secrets.previous).expect("serialisable");
                let changed = conn
                    .execute(
                        "UPDATE endpoints SET uid = ?2, url = ?3, description = ?4, disabled = ?5, event_types = ?6,
                         channels = ?7, metadata = ?8, throttle_rate = ?9, headers = ?10, secret = ?11,
                         previous_secrets = ?12, failing_since = ?13, updated_at = ?14 WHERE id = ?1",
                        params![ep.id.as_str(), ep.uid, ep.url, ep.description, ep.disabled,
                            list_to_json(&ep.event_types), list_to_json(&ep.channels), ep.metadata,
                            ep.throttle_rate, ep.headers, ep.secrets.current, previous, ep.failing_since, ep.updated_at],
                    )
                    .map_err(|err| conflict_on_unique(err, "an endpoint with this uid already exists in the application"))?;
                if changed == 0 {
                    return Err(StoreError::NotFound("endpoint"));
                }
                Ok(ep)
            })
            .await
    }

    async fn delete_endpoint(&self, id: &EndpointId) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.writer
            .write(move |conn| {
                if conn.execute("DELETE FROM endpoints WHERE id = ?1", [&id])? == 0 {
                    return Err(StoreError::NotFound("endpoint"));
                }
                delete_deliveries_and_attempts(conn, "endpoint_id", &id)
            })
            .await
    }

    async fn endpoint_stats(
        &self,
        id: &EndpointId,
        since: Option<UnixMs>,
        until: Option<UnixMs>,
    ) -> StoreResult<EndpointStats> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT status, COUNT(*) FROM deliveries WHERE endpoint_id = ?1
                 AND created_at >= ?2 AND created_at < ?3 GROUP BY status",
            )?;
            let rows = stmt.query_map(
                params![id, since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
            )?;
            let mut stats = EndpointStats::default();
            for row in rows {
                let (status, count) = row?;
                match DeliveryStatus::from_code(status) {
                    Some(DeliveryStatus::Success) => stats.success = count,
                    Some(DeliveryStatus::Pending) => stats.pending = count,
                    Some(DeliveryStatus::Sending) => stats.sending = count,
                    Some(DeliveryStatus::Fail) => stats.fail = count,
                    None => return Err(StoreError::Corrupt(format!("delivery status {status}"))),
                }
            }
            Ok(stats)
        })
        .await
    }

    async fn create_message(
        &self,
        msg: Message,
        recipients: Recipients,
        lease_until: Option<UnixMs>,
    ) -> StoreResult<(Message, Vec<LeasedTask>)> {
        self.writer
            .write(move |conn| insert_message(conn, msg, &recipients, lease_until))
            .await
    }

    async fn get_message(&self, app: &AppId, key: &str) -> StoreResult<Option<Message>> {
        let (app, key) = (app.as_str().to_owned(), key.to_owned());
        self.read(move |conn| {
            let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE app_id = ?1 AND (id = ?2 OR event_id = ?2) ORDER BY id = ?2 DESC LIMIT 1");
            one(conn.prepare_cached(&sql)?.query_row([app, key], message))
        })
        .await
    }

    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
    ) -> StoreResult<Vec<Message>> {
        let (app, filter) = (app.as_str().to_owned(), filter.clone());
        self.read(move |conn| {
            let mut params = vec![Value::Text(app)];
            let mut sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE app_id = ?");
            message_filter_sql(&filter, "", &mut sql, &mut params);
            let (page, tail) = page_clause(&filter.page, "id", &mut params);
            sql.push_str(&page);
            sql.push_str(&tail);
            query_list(conn, &sql, params, rows::message)
        })
        .await
    }

    async fn expunge_message_content(&self, id: &MessageId) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.writer
            .write(move |conn| {
                if conn.execute("UPDATE messages SET payload = NULL WHERE id = ?1", [id])? == 0 {
                    return Err(StoreError::NotFound("message"));
                }
                Ok(())
            })
            .await
    }

    async fn expire_payloads(&self, now: UnixMs) -> StoreResult<u64> {
        self.writer
            .write(move |conn| {
                let changed = conn.execute(
                    "UPDATE messages SET payload = NULL WHERE payload IS NOT NULL AND payload_expires_at <= ?1",
                    [now],
                )?;
                Ok(changed as u64)
            })
            .await
    }

    async fn list_deliveries_for_message(
        &self,
        msg: &MessageId,
        page: &PageRequest,
    ) -> StoreResult<Vec<Delivery>> {
        let (msg, page) = (msg.as_str().to_owned(), page.clone());
        self.read(move |conn| {
            let mut params = vec![Value::Text(msg)];
            let (filter, tail) = page_clause(&page, "endpoint_id", &mut params);
            let sql =
                format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE msg_id = ?{filter}{tail}");
            query_list(conn, &sql, params, rows::delivery)
        })
        .await
    }

    async fn list_messages_for_endpoint(
        &self,
        endpoint: &EndpointId,
        filter: &MessageFilter,
        status: Option<DeliveryStatus>,
    ) -> StoreResult<Vec<(Message, Delivery)>> {
        let (endpoint, filter) = (endpoint.as_str().to_owned(), filter.clone());
        self.read(move |conn| {
            let columns = MESSAGE_COLUMNS
                .split(", ")
                .map(|c| format!("m.{c}"))
                .chain(DELIVERY_COLUMNS.split(", ").map(|c| format!("d.{c}")))
                .collect::<Vec<_>>()
                .join(", ");
            let mut params = vec![Value::Text(endpoint)];
            let mut sql = format!(
                "SELECT {columns} FROM deliveries d JOIN messages m ON m.id = d.msg_id WHERE d.endpoint_id = ?"
            );
            if let Some(status) = status {
                sql.push_str(" AND d.status = ?");
                params.push(Value::Integer(status.code()));
            }
            message_filter_sql(&filter, "m.", &mut sql, &mut params);
            let (page, tail) = page_clause(&filter.page, "d.msg_id", &mut params);
            sql.push_str(&page);
            sql.push_str(&tail);
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(params), |row| {
                Ok((message(row)?, delivery_at(row, 8)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn list_attempts(&self, filter: &AttemptFilter) -> StoreResult<Vec<Attempt>> {
        let filter = filter.clone();
        self.read(move |conn| {
            let columns = ATTEMPT_COLUMNS
                .split(", ")
                .map(|c| format!("a.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut params = vec![Value::Text(filter.app.as_str().to_owned())];
            let mut sql = format!("SELECT {columns} FROM attempts a");
            let needs_message = filter.channel.is_some() || !filter.event_types.is_empty();
            if needs_message {
                sql.push_str(" JOIN messages m ON m.id = a.msg_id");
            }
            sql.push_str(" WHERE a.app_id = ?");
            if let Some(msg) = &filter.msg {
                sql.push_str(" AND a.msg_id = ?");
                params.push(Value::Text(msg.as_str().to_owned()));
            }
            if let Some(endpoint) = &filter.endpoint {
                sql.push_str(" AND a.endpoint_id = ?");
                params.push(Value::Text(endpoint.as_str().to_owned()));
            }
            if let Some(status) = filter.status {
                sql.push_str(" AND a.status = ?");
                params.push(Value::Integer(status.code()));
            }
            if let Some(class) = filter.status_code_class {
                sql.push_str(" AND a.response_status_code >= ? AND a.response_status_code < ?");
                params.push(Value::Integer(i64::from(class)));
                params.push(Value::Integer(i64::from(if class == 0 {
                    100
                } else {
                    class + 100
                })));
            }
            if let Some(before) = filter.before {
                sql.push_str(" AND a.created_at < ?");
                params.push(Value::Integer(before));
            }
            if let Some(after) = filter.after {
                sql.push_str(" AND a.created_at > ?");
                params.push(Value::Integer(after));
            }
            if needs_message {
                let only_messages = MessageFilter {
                    channel: filter.channel.clone(),
                    event_types: filter.event_types.clone(),
                    ..MessageFilter::page(filter.page.clone())
                };
                message_filter_sql(&only_messages, "m.", &mut sql, &mut params);
            }
            let (page, tail) = page_clause(&filter.page, "a.id", &mut params);
            sql.push_str(&page);
            sql.push_str(&tail);
            query_list(conn, &sql, params, rows::attempt)
        })
        .await
    }

    async fn get_attempt(&self, msg: &MessageId, id: &AttemptId) -> StoreResult<Option<Attempt>> {
        let (msg, id) = (msg.as_str().to_owned(), id.as_str().to_owned());
        self.read(move |conn| {
            let sql =
                format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE id = ?1 AND msg_id = ?2");
            one(conn.prepare_cached(&sql)?.query_row([id, msg], attempt))
        })
        .await
    }

    async fn expunge_attempt_content(&self, id: &AttemptId) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.writer
            .write(move |conn| {
                if conn.execute(
                    "UPDATE attempts SET response = 'EXPUNGED' WHERE id = ?1",
                    [id],
                )? == 0
                {
                    return Err(StoreError::NotFound("attempt"));
                }
                Ok(())
            })
            .await
    }

    async fn resend(&self, msg: &MessageId, endpoint: &EndpointId, now: UnixMs) -> StoreResult<()> {
        let (msg, endpoint) = (msg.as_str().to_owned(), endpoint.as_str().to_owned());
        self.writer
            .write(move |conn| {
                let app: Option<String> = conn
                    .query_row("SELECT app_id FROM messages WHERE id = ?1", [&msg], |r| {
                        r.get(0)
                    })
                    .optional()?;
                let app = app.ok_or(StoreError::NotFound("message"))?;
                schedule_resend(conn, &msg, &endpoint, &app, now)
            })
            .await
    }

    async fn recover(
        &self,
        endpoint: &EndpointId,
        since: UnixMs,
        until: Option<UnixMs>,
        now: UnixMs,
    ) -> StoreResult<u64> {
        let endpoint = endpoint.as_str().to_owned();
        self.writer
            .write(move |conn| {
                let changed = conn.execute(
                    "UPDATE deliveries SET status = 1, next_attempt_at = ?2, manual = 1
                     WHERE endpoint_id = ?1 AND status = 2 AND created_at >= ?3 AND created_at < ?4",
                    params![endpoint, now, since, until.unwrap_or(i64::MAX)],
                )?;
                Ok(changed as u64)
            })
            .await
    }

    async fn bring_forward(&self, endpoint: &EndpointId, now: UnixMs) -> StoreResult<u64> {
        let endpoint = endpoint.as_str().to_owned();
        self.writer
            .write(move |conn| {
                let changed = conn.execute(
                    "UPDATE deliveries SET next_attempt_at = ?2
                     WHERE endpoint_id = ?1 AND status = 1 AND next_attempt_at > ?2",
                    params![endpoint, now],
                )?;
                Ok(changed as u64)
            })
            .await
    }

    async fn lease_due(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        limit: usize,
    ) -> StoreResult<Vec<LeasedTask>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.writer
            .write(move |conn| {
                let tasks = {
                    let mut select = conn.prepare_cached(&format!(
                        "{LEASED_TASK_SELECT} WHERE d.next_attempt_at <= ?1 ORDER BY d.next_attempt_at LIMIT ?2"
                    ))?;
                    let rows = select.query_map(params![now, limit], leased_task)?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                let mut lease = conn.prepare_cached(
                    "UPDATE deliveries SET status = 3, next_attempt_at = ?3 WHERE msg_id = ?1 AND endpoint_id = ?2",
                )?;
                for task in &tasks {
                    lease.execute(params![task.msg_id.as_str(), task.endpoint_id.as_str(), lease_until])?;
                }
                Ok(tasks)
            })
            .await
    }

    async fn lease_due_keys(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        limit: usize,
    ) -> StoreResult<Vec<(MessageId, EndpointId)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.writer
            .write(move |conn| {
                let keys = {
                    let mut select = conn.prepare_cached(
                        "SELECT msg_id, endpoint_id FROM deliveries
                         WHERE next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?2",
                    )?;
                    let rows = select.query_map(params![now, limit], |row| {
                        Ok((
                            MessageId::from_trusted(row.get(0)?),
                            EndpointId::from_trusted(row.get(1)?),
                        ))
                    })?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                let mut lease = conn.prepare_cached(
                    "UPDATE deliveries SET status = 3, next_attempt_at = ?3 WHERE msg_id = ?1 AND endpoint_id = ?2",
                )?;
                for (msg, endpoint) in &keys {
                    lease.execute(params![msg.as_str(), endpoint.as_str(), lease_until])?;
                }
                Ok(keys)
            })
            .await
    }

    async fn claim(
        &self,
        tasks: Vec<QueuedTask>,
        lease_until: UnixMs,
    ) -> StoreResult<Vec<LeasedTask>> {
        self.writer
            .write(move |conn| {
                // The new lease ends after the relay's, so the same message cannot claim it again.
                let mut take = conn.prepare_cached(
                    "UPDATE deliveries SET next_attempt_at = MAX(?4, next_attempt_at + 1)
                     WHERE msg_id = ?1 AND endpoint_id = ?2 AND status = 3 AND next_attempt_at = ?3",
                )?;
                let mut select = conn.prepare_cached(&format!(
                    "{LEASED_TASK_SELECT} WHERE d.msg_id = ?1 AND d.endpoint_id = ?2"
                ))?;
                let mut claimed = Vec::new();
                for task in &tasks {
                    let (msg, endpoint) = (task.msg_id.as_str(), task.endpoint_id.as_str());
                    if take.execute(params![msg, endpoint, task.lease_until, lease_until])? == 1 {
                        claimed.push(select.query_row(params![msg, endpoint], leased_task)?);
                    }
                }
                Ok(claimed)
            })
            .await
    }

    async fn release_queued(&self, tasks: Vec<QueuedTask>, due_at: UnixMs) -> StoreResult<()> {
        self.writer
            .write(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "UPDATE deliveries SET status = 1, next_attempt_at = ?4
                     WHERE msg_id = ?1 AND endpoint_id = ?2 AND status = 3 AND next_attempt_at = ?3",
                )?;
                for task in &tasks {
                    stmt.execute(params![
                        task.msg_id.as_str(),
                        task.endpoint_id.as_str(),
                        task.lease_until,
                        due_at
                    ])?;
                }
                Ok(())
            })
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn next_due_at(&self) -> StoreResult<Option<UnixMs>> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE next_attempt_at IS NOT NULL",
                [],
                |row| row.get(0),
            )?)
        })
        .await
    }

    async fn release(
        &self,
        tasks: Vec<(MessageId, EndpointId)>,
        due_at: UnixMs,
    ) -> StoreResult<()> {
        self.writer
            .write(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "UPDATE deliveries SET status = 1, next_attempt_at = ?3
                     WHERE msg_id = ?1 AND endpoint_id = ?2 AND status = 3",
                )?;
                for (msg, endpoint) in &tasks {
                    stmt.execute(params![msg.as_str(), endpoint.as_str(), due_at])?;
                }
                Ok(())
            })
            .await
    }

    async fn fail_without_attempt(&self, tasks: Vec<(MessageId, EndpointId)>) -> StoreResult<()> {
        self.writer
            .write(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "UPDATE deliveries SET status = 2, next_attempt_at = NULL
                     WHERE msg_id = ?1 AND endpoint_id = ?2 AND status = 3",
                )?;
                for (msg, endpoint) in &tasks {
                    stmt.execute([msg.as_str(), endpoint.as_str()])?;
                }
                Ok(())
            })
            .await
    }

    async fn record_attempts(
        &self,
        outcomes: Vec<AttemptOutcome>,
    ) -> StoreResult<Vec<EndpointTransition>> {
        self.writer
            .write(move |conn| record_attempts_in(conn, &outcomes))
            .await
    }

    async fn queue_depths(&self, now: UnixMs) -> StoreResult<QueueDepths> {
        self.read(move |conn| {
            Ok(conn.query_row(
                "SELECT
                   COALESCE(SUM(status = 1 AND next_attempt_at <= ?1), 0),
                   COALESCE(SUM(status = 3), 0),
                   COALESCE(SUM(status = 1 AND next_attempt_at > ?1), 0)
                 FROM deliveries WHERE next_attempt_at IS NOT NULL",
                [now],
                |row| {
                    Ok(QueueDepths {
                        due: row.get(0)?,
                        leased: row.get(1)?,
                        waiting: row.get(2)?,
                    })
                },
            )?)
        })
        .await
    }
}

fn message_filter_sql(
    filter: &MessageFilter,
    alias: &str,
    sql: &mut String,
    params: &mut Vec<Value>,
) {
    if let Some(channel) = &filter.channel {
        // Channels are stored as a JSON array of validated tokens, so a quoted match is exact.
        sql.push_str(&format!(" AND {alias}channels LIKE ?"));
        params.push(Value::Text(format!("%\"{channel}\"%")));
    }
    if !filter.event_types.is_empty() {
        let marks = vec!["?"; filter.event_types.len()].join(", ");
        sql.push_str(&format!(" AND {alias}event_type IN ({marks})"));
        params.extend(filter.event_types.iter().cloned().map(Value::Text));
    }
    if let Some(before) = filter.before {
        sql.push_str(&format!(" AND {alias}created_at < ?"));
        params.push(Value::Integer(before));
    }
    if let Some(after) = filter.after {
        sql.push_str(&format!(" AND {alias}created_at > ?"));
        params.push(Value::Integer(after));
    }
}

fn record_attempts_in(
    conn: &Connection,
    outcomes: &[AttemptOutcome],
) -> StoreResult<Vec<EndpointTransition>> {
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?;
    let mut update = conn.prepare_cached(
        "UPDATE deliveries SET status = ?3, attempts = attempts + 1, next_attempt_at = ?4, manual = 0
         WHERE msg_id = ?1 AND endpoint_id = ?2",
    )?;
    let mut healthy = conn.prepare_cached(
        "UPDATE endpoints SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL",
    )?;
    let mut failing = conn.prepare_cached(
        "UPDATE endpoints SET failing_since = COALESCE(failing_since, ?2) WHERE id = ?1
         RETURNING failing_since, disabled",
    )?;
    let mut disable = conn.prepare_cached(
        "UPDATE endpoints SET disabled = 1, updated_at = ?2 WHERE id = ?1 AND disabled = 0",
    )?;
    let mut transitions = Vec::new();
    for outcome in outcomes {
        let a = &outcome.attempt;
        insert.execute(params![
            a.id.as_str(),
            a.msg_id.as_str(),
            a.endpoint_id.as_str(),
            a.app_id.as_str(),
            a.url,
            a.status.code(),
            a.outcome.as_str(),
            a.response_status_code,
            a.response,
            a.response_duration_ms,
            a.manual,
            a.created_at
        ])?;
        let (status, next) = match outcome.next {
            TaskNext::Delivered => (DeliveryStatus::Success, None),
            TaskNext::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
            TaskNext::Exhausted | TaskNext::DisableEndpoint => (DeliveryStatus::Fail, None),
        };
        update.execute(params![
            a.msg_id.as_str(),
            a.endpoint_id.as_str(),
            status.code(),
            next
        ])?;
        let endpoint = a.endpoint_id.clone();
        if outcome.next == TaskNext::Delivered {
            if healthy.execute([endpoint.as_str()])? > 0 {
                transitions.push(EndpointTransition::Recovered { endpoint });
            }
            continue;
        }
        let state: Option<(UnixMs, bool)> = failing
            .query_row(params![endpoint.as_str(), a.created_at], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((failing_since, already_disabled)) = state else {
            continue; // the endpoint was deleted meanwhile
        };
        let too_long = failing_since < outcome.disable_if_failing_since_before;
        if !already_disabled
            && (outcome.next == TaskNext::DisableEndpoint || too_long)
            && disable.execute(params![endpoint.as_str(), a.created_at])? > 0
        {
            transitions.push(EndpointTransition::Disabled {
                endpoint,
                failing_since,
            });
        }
    }
    Ok(transitions)
}
