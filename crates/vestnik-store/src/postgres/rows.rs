//! Mapping between PostgreSQL rows and the store's records, and a small query builder for the
//! statements whose filters vary.

pub use crate::columns::*;
use crate::model::*;
use crate::query::PageRequest;
use crate::{StoreError, StoreResult};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use vestnik_core::{AppId, AttemptId, DeliveryStatus, EndpointId, MessageId, OutcomeCode};

/// A statement with `$n` parameters added as its filters are.
#[derive(Default)]
pub struct Query {
    pub sql: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Query {
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter and returns its placeholder.
    pub fn bind<T: ToSql + Sync + Send + 'static>(&mut self, value: T) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    pub fn push(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    /// Keyset pagination on `column` (see [`PageRequest`]).
    pub fn page(&mut self, page: &PageRequest, column: &str) {
        let (cmp, dir) = if page.ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        if let Some(cursor) = &page.cursor {
            let mark = self.bind(cursor.clone());
            self.sql.push_str(&format!(" AND {column} {cmp} {mark}"));
        }
        self.sql
            .push_str(&format!(" ORDER BY {column} {dir} LIMIT {}", page.fetch()));
    }
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

fn json_list(text: Option<String>) -> StoreResult<Option<Vec<String>>> {
    text.map(|t| serde_json::from_str(&t).map_err(|err| corrupt(format!("list: {err}"))))
        .transpose()
}

pub fn status(code: i32) -> StoreResult<DeliveryStatus> {
    DeliveryStatus::from_code(i64::from(code))
        .ok_or_else(|| corrupt(format!("delivery status {code}")))
}

fn u32_opt(value: Option<i32>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok())
}

pub fn header_pairs(text: Option<String>) -> StoreResult<Vec<(String, String)>> {
    match text {
        None => Ok(Vec::new()),
        Some(t) => serde_json::from_str(&t).map_err(|err| corrupt(format!("headers: {err}"))),
    }
}

pub fn secrets_at(row: &Row, column: usize) -> StoreResult<EndpointSecrets> {
    let previous: String = row.try_get(column + 1)?;
    Ok(EndpointSecrets {
        current: row.try_get(column)?,
        previous: serde_json::from_str(&previous)
            .map_err(|err| corrupt(format!("secrets: {err}")))?,
    })
}

pub fn app(row: &Row) -> StoreResult<Application> {
    Ok(Application {
        id: AppId::from_trusted(row.try_get(0)?),
        uid: row.try_get(1)?,
        name: row.try_get(2)?,
        metadata: row.try_get(3)?,
        throttle_rate: u32_opt(row.try_get(4)?),
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
    })
}

pub fn event_type(row: &Row) -> StoreResult<EventType> {
    Ok(EventType {
        name: row.try_get(0)?,
        description: row.try_get(1)?,
        archived: row.try_get(2)?,
        deprecated: row.try_get(3)?,
        feature_flag: row.try_get(4)?,
        schemas: row.try_get(5)?,
        created_at: row.try_get(6)?,
        updated_at: row.try_get(7)?,
    })
}

pub fn endpoint(row: &Row) -> StoreResult<Endpoint> {
    Ok(Endpoint {
        id: EndpointId::from_trusted(row.try_get(0)?),
        app_id: AppId::from_trusted(row.try_get(1)?),
        uid: row.try_get(2)?,
        url: row.try_get(3)?,
        description: row.try_get(4)?,
        disabled: row.try_get(5)?,
        event_types: json_list(row.try_get(6)?)?,
        channels: json_list(row.try_get(7)?)?,
        metadata: row.try_get(8)?,
        throttle_rate: u32_opt(row.try_get(9)?),
        headers: row.try_get(10)?,
        secrets: secrets_at(row, 11)?,
        failing_since: row.try_get(13)?,
        created_at: row.try_get(14)?,
        updated_at: row.try_get(15)?,
    })
}

/// A message whose columns start at `offset`.
pub fn message_at(row: &Row, offset: usize) -> StoreResult<Message> {
    Ok(Message {
        id: MessageId::from_trusted(row.try_get(offset)?),
        app_id: AppId::from_trusted(row.try_get(offset + 1)?),
        event_id: row.try_get(offset + 2)?,
        event_type: row.try_get(offset + 3)?,
        channels: json_list(row.try_get(offset + 4)?)?,
        payload: row.try_get(offset + 5)?,
        payload_expires_at: row.try_get(offset + 6)?,
        created_at: row.try_get(offset + 7)?,
        headers: header_pairs(row.try_get(offset + 8)?)?,
    })
}

pub fn message(row: &Row) -> StoreResult<Message> {
    message_at(row, 0)
}

pub fn delivery_at(row: &Row, offset: usize) -> StoreResult<Delivery> {
    Ok(Delivery {
        msg_id: MessageId::from_trusted(row.try_get(offset)?),
        endpoint_id: EndpointId::from_trusted(row.try_get(offset + 1)?),
        status: status(row.try_get(offset + 2)?)?,
        attempts: u32::try_from(row.try_get::<_, i32>(offset + 3)?).unwrap_or(0),
        next_attempt_at: row.try_get(offset + 4)?,
        created_at: row.try_get(offset + 5)?,
    })
}

pub fn delivery(row: &Row) -> StoreResult<Delivery> {
    delivery_at(row, 0)
}

pub fn attempt(row: &Row) -> StoreResult<Attempt> {
    let outcome: String = row.try_get(6)?;
    Ok(Attempt {
        id: AttemptId::from_trusted(row.try_get(0)?),
        msg_id: MessageId::from_trusted(row.try_get(1)?),
        endpoint_id: EndpointId::from_trusted(row.try_get(2)?),
        app_id: AppId::from_trusted(row.try_get(3)?),
        url: row.try_get(4)?,
        status: status(row.try_get(5)?)?,
        outcome: OutcomeCode::parse(&outcome).unwrap_or(OutcomeCode::HttpStatus),
        response_status_code: row.try_get(7)?,
        response: row.try_get(8)?,
        response_duration_ms: row.try_get(9)?,
        manual: row.try_get(10)?,
        created_at: row.try_get(11)?,
    })
}

/// Maps a unique violation to `Conflict` with a caller-safe message.
pub fn conflict_on_unique(err: tokio_postgres::Error, what: &str) -> StoreError {
    if err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(what.to_owned())
    } else {
        StoreError::Postgres(err)
    }
}

pub fn all<T>(rows: Vec<Row>, map: fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(map).collect()
}
