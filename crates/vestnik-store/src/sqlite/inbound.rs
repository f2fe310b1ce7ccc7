//! [`InboundStore`] on SQLite: sources, the request log with dedup on the sender's event id, and
//! replay. An accepted request's body is its message's payload, so it is stored once.

use super::rows::{endpoint as endpoint_row, one, secrets_at};
use super::{
    SqliteStore, insert_app, insert_endpoint, insert_message, page_clause, query_list,
    schedule_resend,
};
use crate::columns::{ENDPOINT_COLUMNS, HANDLING, SOURCE_COLUMNS, request_columns};
use crate::inbound::*;
use crate::model::*;
use crate::query::PageRequest;
use crate::sqlite::rows::conflict_on_unique;
use crate::{StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params};
use vestnik_core::{AppId, MessageId, RequestId, SourceId};

fn corrupt(column: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unknown {what}").into(),
    )
}

fn source(row: &Row<'_>) -> rusqlite::Result<Source> {
    Ok(Source {
        id: SourceId::from_trusted(row.get(0)?),
        uid: row.get(1)?,
        name: row.get(2)?,
        app_id: AppId::from_trusted(row.get(3)?),
        config: row.get(4)?,
        secrets: secrets_at(row, 5)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

fn handling(text: Option<String>) -> rusqlite::Result<Option<Handling>> {
    text.map(|text| Handling::parse(&text).ok_or_else(|| corrupt(14, "handling")))
        .transpose()
}

/// A request row (`request_columns`, the body in column 7) followed by its handling.
fn request_view(row: &Row<'_>) -> rusqlite::Result<RequestView> {
    let status: i64 = row.get(9)?;
    Ok(RequestView {
        request: InboundRequest {
            id: RequestId::from_trusted(row.get(0)?),
            source_id: SourceId::from_trusted(row.get(1)?),
            received_at: row.get(2)?,
            remote_addr: row.get(3)?,
            method: row.get(4)?,
            path: row.get(5)?,
            headers: row.get(6)?,
            body: body_bytes(row, 7)?,
            body_size: row.get(8)?,
            status: RequestStatus::from_code(status).ok_or_else(|| corrupt(9, "status"))?,
            reason: row.get(10)?,
            event_id: row.get(11)?,
            msg_id: row
                .get::<_, Option<String>>(12)?
                .map(MessageId::from_trusted),
            duplicate_of: row
                .get::<_, Option<String>>(13)?
                .map(RequestId::from_trusted),
        },
        handling: handling(row.get(14)?)?,
    })
}

/// A body kept as a BLOB (rejected requests) or as a message's TEXT payload (accepted ones).
fn body_bytes(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<Vec<u8>>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(column)? {
        ValueRef::Null => None,
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Some(bytes.to_vec()),
        _ => return Err(corrupt(column, "body type")),
    })
}

fn insert_request(conn: &Connection, request: &InboundRequest) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO inbound_requests (id, source_id, received_at, remote_addr, method, path, headers,
             body, body_size, status, reason, event_id, msg_id, duplicate_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        request.id.as_str(),
        request.source_id.as_str(),
        request.received_at,
        request.remote_addr,
        request.method,
        request.path,
        request.headers,
        request.body,
        request.body_size,
        request.status.code(),
        request.reason,
        request.event_id,
        request.msg_id.as_ref().map(MessageId::as_str),
        request.duplicate_of.as_ref().map(RequestId::as_str),
    ])?;
    Ok(())
}

fn write_source(conn: &Connection, source: &Source, insert: bool) -> StoreResult<usize> {
    let previous = serde_json::to_string(&source.secrets.previous).expect("serialisable");
    let sql = if insert {
        format!(
            "INSERT INTO sources ({SOURCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        )
    } else {
        "UPDATE sources SET uid = ?2, name = ?3, app_id = ?4, config = ?5, secret = ?6,
             previous_secrets = ?7, created_at = ?8, updated_at = ?9 WHERE id = ?1"
            .to_owned()
    };
    conn.prepare_cached(&sql)?
        .execute(params![
            source.id.as_str(),
            source.uid,
            source.name,
            source.app_id.as_str(),
            source.config,
            source.secrets.current,
            previous,
            source.created_at,
            source.updated_at,
        ])
        .map_err(|err| conflict_on_unique(err, "a source with this uid already exists"))
}

/// Keeps the newest `kept` rejected requests of a source; a flood of forgeries cannot grow the
/// database without bound.
fn prune_rejected(conn: &Connection, source: &str, kept: usize) -> StoreResult<()> {
    let kept = i64::try_from(kept).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "DELETE FROM inbound_requests WHERE source_id = ?1 AND status = 2 AND id <= (
             SELECT id FROM inbound_requests WHERE source_id = ?1 AND status = 2
             ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![source, kept])?;
    Ok(())
}

#[async_trait]
impl InboundStore for SqliteStore {
    async fn create_source(
        &self,
        source: Source,
        app: Application,
        destinations: Vec<Endpoint>,
    ) -> StoreResult<Source> {
        self.writer
            .write(move |conn| {
                insert_app(conn, &app)?;
                write_source(conn, &source, true)?;
                for destination in &destinations {
                    insert_endpoint(conn, destination)?;
                }
                Ok(source)
            })
            .await
    }

    async fn get_source(&self, key: &str) -> StoreResult<Option<Source>> {
        let key = key.to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {SOURCE_COLUMNS} FROM sources WHERE id = ?1 OR uid = ?1 ORDER BY id = ?1 DESC LIMIT 1"
            );
            one(conn.prepare_cached(&sql)?.query_row([key], source))
        })
        .await
    }

    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Vec<Source>> {
        let page = page.clone();
        self.read(move |conn| {
            let mut params = Vec::new();
            let (filter, tail) = page_clause(&page, "id", &mut params);
            let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE 1 = 1{filter}{tail}");
            query_list(conn, &sql, params, source)
        })
        .await
    }

    async fn update_source(&self, source: Source) -> StoreResult<Source> {
        self.writer
            .write(move |conn| {
                if write_source(conn, &source, false)? == 0 {
                    return Err(StoreError::NotFound("source"));
                }
                Ok(source)
            })
            .await
    }

    async fn delete_source(&self, id: &SourceId) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.writer
            .write(move |conn| {
                let app: Option<String> = one(conn.query_row(
                    "SELECT app_id FROM sources WHERE id = ?1",
                    [&id],
                    |row| row.get(0),
                ))?;
                let app = app.ok_or(StoreError::NotFound("source"))?;
                conn.execute("DELETE FROM sources WHERE id = ?1", [&id])?;
                conn.execute("DELETE FROM inbound_requests WHERE source_id = ?1", [&id])?;
                conn.execute("DELETE FROM applications WHERE id = ?1", [&app])?;
                conn.execute("DELETE FROM endpoints WHERE app_id = ?1", [&app])?;
                conn.execute("DELETE FROM messages WHERE app_id = ?1", [&app])?;
                super::delete_deliveries_and_attempts(conn, "app_id", &app)
            })
            .await
    }

    async fn record_request(
        &self,
        mut request: InboundRequest,
        message: Option<Message>,
        lease_until: Option<UnixMs>,
        rejected_kept: usize,
    ) -> StoreResult<(InboundRequest, Vec<LeasedTask>)> {
        self.writer
            .write(move |conn| {
                if request.status == RequestStatus::Rejected {
                    insert_request(conn, &request)?;
                    prune_rejected(conn, request.source_id.as_str(), rejected_kept)?;
                    return Ok((request, Vec::new()));
                }
                if let Some(event_id) = &request.event_id {
                    let earlier: Option<String> = one(conn
                        .prepare_cached(
                            "SELECT id FROM inbound_requests
                             WHERE source_id = ?1 AND event_id = ?2 AND status = 0",
                        )?
                        .query_row([request.source_id.as_str(), event_id], |row| row.get(0)))?;
                    if let Some(earlier) = earlier {
                        request.status = RequestStatus::Duplicate;
                        request.duplicate_of = Some(RequestId::from_trusted(earlier));
                        request.body = None;
                        request.msg_id = None;
                        insert_request(conn, &request)?;
                        return Ok((request, Vec::new()));
                    }
                }
                let tasks = match message {
                    Some(message) => {
                        request.msg_id = Some(message.id.clone());
                        // The body is the message's payload; not stored twice.
                        request.body = None;
                        let (_, tasks) =
                            insert_message(conn, message, &Recipients::Subscribers, lease_until)?;
                        tasks
                    }
                    None => Vec::new(),
                };
                insert_request(conn, &request)?;
                Ok((request, tasks))
            })
            .await
    }

    async fn list_requests(
        &self,
        source: &SourceId,
        filter: &RequestFilter,
    ) -> StoreResult<Vec<RequestView>> {
        let (source, filter) = (source.as_str().to_owned(), filter.clone());
        self.read(move |conn| {
            let mut params = vec![Value::Text(source)];
            let mut inner = format!(
                "SELECT {}, {HANDLING} AS handling FROM inbound_requests r WHERE r.source_id = ?",
                request_columns("NULL")
            );
            if let Some(since) = filter.since {
                inner.push_str(" AND r.received_at >= ?");
                params.push(Value::Integer(since));
            }
            if let Some(until) = filter.until {
                inner.push_str(" AND r.received_at < ?");
                params.push(Value::Integer(until));
            }
            let mut sql = format!("SELECT * FROM ({inner}) WHERE 1 = 1");
            match filter.status {
                None => {}
                Some(RequestFilterStatus::Stored(status)) => {
                    sql.push_str(" AND status = ?");
                    params.push(Value::Integer(status.code()));
                }
                Some(RequestFilterStatus::Handling(wanted)) => {
                    sql.push_str(" AND handling = ?");
                    params.push(Value::Text(wanted.as_str().to_owned()));
                }
            }
            let (page, tail) = page_clause(&filter.page, "id", &mut params);
            sql.push_str(&page);
            sql.push_str(&tail);
            query_list(conn, &sql, params, request_view)
        })
        .await
    }

    async fn get_request(
        &self,
        source: &SourceId,
        id: &RequestId,
    ) -> StoreResult<Option<RequestView>> {
        let (source, id) = (source.as_str().to_owned(), id.as_str().to_owned());
        self.read(move |conn| {
            let columns = request_columns("COALESCE(r.body, m.payload)");
            let sql = format!(
                "SELECT {columns}, {HANDLING} FROM inbound_requests r
                 LEFT JOIN messages m ON m.id = r.msg_id
                 WHERE r.source_id = ?1 AND r.id = ?2"
            );
            one(conn
                .prepare_cached(&sql)?
                .query_row([source, id], request_view))
        })
        .await
    }

    async fn expire_requests(&self, before: UnixMs) -> StoreResult<u64> {
        self.writer
            .write(move |conn| {
                Ok(conn.execute(
                    "DELETE FROM inbound_requests WHERE received_at < ?1",
                    [before],
                )? as u64)
            })
            .await
    }

    async fn replay_requests(
        &self,
        source: &Source,
        selection: ReplaySelection,
        now: UnixMs,
    ) -> StoreResult<u64> {
        let (source_id, app) = (
            source.id.as_str().to_owned(),
            source.app_id.as_str().to_owned(),
        );
        self.writer
            .write(move |conn| {
                let messages: Vec<(String, String)> = {
                    let (sql, params) = match &selection {
                        ReplaySelection::One(id) => (
                            "SELECT r.msg_id, m.event_type FROM inbound_requests r
                             JOIN messages m ON m.id = r.msg_id
                             WHERE r.source_id = ?1 AND r.id = ?2 AND r.status = 0",
                            vec![Value::Text(source_id.clone()), Value::Text(id.as_str().to_owned())],
                        ),
                        ReplaySelection::Range { since, until } => (
                            "SELECT r.msg_id, m.event_type FROM inbound_requests r
                             JOIN messages m ON m.id = r.msg_id
                             WHERE r.source_id = ?1 AND r.received_at >= ?2 AND r.received_at < ?3
                               AND r.status = 0",
                            vec![Value::Text(source_id.clone()), Value::Integer(*since), Value::Integer(*until)],
                        ),
                    };
                    let mut stmt = conn.prepare_cached(sql)?;
                    let rows = stmt.query_map(rusqlite::params_from_iter(params), |row| Ok((row.get(0)?, row.get(1)?)))?;
                    rows.collect::<Result<_, _>>()?
                };
                if let ReplaySelection::One(_) = selection
                    && messages.is_empty()
                {
                    return Err(StoreError::NotFound("accepted request"));
                }
                let destinations: Vec<Endpoint> = {
                    let mut stmt = conn.prepare_cached(&format!(
                        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = ?1 AND disabled = 0"
                    ))?;
                    let rows = stmt.query_map([&app], endpoint_row)?;
                    rows.collect::<Result<_, _>>()?
                };
                for (msg, event_type) in &messages {
                    for destination in destinations.iter().filter(|d| d.accepts(event_type, None)) {
                        schedule_resend(conn, msg, destination.id.as_str(), &app, now)?;
                    }
                }
                Ok(messages.len() as u64)
            })
            .await
    }
}
