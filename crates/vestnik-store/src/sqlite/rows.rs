//! Mapping between SQLite rows and the store's records.

pub use crate::columns::*;
use crate::model::*;
use crate::{StoreError, StoreResult};
use rusqlite::Row;
use vestnik_core::{AppId, AttemptId, DeliveryStatus, EndpointId, MessageId, OutcomeCode};

fn json_list(text: Option<String>) -> rusqlite::Result<Option<Vec<String>>> {
    text.map(|text| {
        serde_json::from_str(&text).map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, err.into())
        })
    })
    .transpose()
}

fn status(code: i64) -> rusqlite::Result<DeliveryStatus> {
    DeliveryStatus::from_code(code).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, code))
}

fn u32_opt(value: Option<i64>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok())
}

pub fn app(row: &Row<'_>) -> rusqlite::Result<Application> {
    Ok(Application {
        id: AppId::from_trusted(row.get(0)?),
        uid: row.get(1)?,
        name: row.get(2)?,
        metadata: row.get(3)?,
        throttle_rate: u32_opt(row.get(4)?),
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

pub fn event_type(row: &Row<'_>) -> rusqlite::Result<EventType> {
    Ok(EventType {
        name: row.get(0)?,
        description: row.get(1)?,
        archived: row.get(2)?,
        deprecated: row.get(3)?,
        feature_flag: row.get(4)?,
        schemas: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

/// The current secret at `column` and the JSON list of previous ones right after it.
pub fn secrets_at(row: &Row<'_>, column: usize) -> rusqlite::Result<EndpointSecrets> {
    let previous: String = row.get(column + 1)?;
    let previous: Vec<(String, UnixMs)> = serde_json::from_str(&previous).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(
            column + 1,
            rusqlite::types::Type::Text,
            err.into(),
        )
    })?;
    Ok(EndpointSecrets {
        current: row.get(column)?,
        previous,
    })
}

pub fn endpoint(row: &Row<'_>) -> rusqlite::Result<Endpoint> {
    Ok(Endpoint {
        id: EndpointId::from_trusted(row.get(0)?),
        app_id: AppId::from_trusted(row.get(1)?),
        uid: row.get(2)?,
        url: row.get(3)?,
        description: row.get(4)?,
        disabled: row.get(5)?,
        event_types: json_list(row.get(6)?)?,
        channels: json_list(row.get(7)?)?,
        metadata: row.get(8)?,
        throttle_rate: u32_opt(row.get(9)?),
        headers: row.get(10)?,
        secrets: secrets_at(row, 11)?,
        failing_since: row.get(13)?,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
    })
}

pub fn message(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: MessageId::from_trusted(row.get(0)?),
        app_id: AppId::from_trusted(row.get(1)?),
        event_id: row.get(2)?,
        event_type: row.get(3)?,
        channels: json_list(row.get(4)?)?,
        payload: row.get(5)?,
        payload_expires_at: row.get(6)?,
        created_at: row.get(7)?,
        headers: header_pairs(row, 8)?,
    })
}

pub fn header_pairs(row: &Row<'_>, column: usize) -> rusqlite::Result<Vec<(String, String)>> {
    match row.get::<_, Option<String>>(column)? {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text).map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(
                column,
                rusqlite::types::Type::Text,
                err.into(),
            )
        }),
    }
}

/// Reads a delivery whose columns start at `offset` (so it can follow a message in a join).
pub fn delivery_at(row: &Row<'_>, offset: usize) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        msg_id: MessageId::from_trusted(row.get(offset)?),
        endpoint_id: EndpointId::from_trusted(row.get(offset + 1)?),
        status: status(row.get(offset + 2)?)?,
        attempts: row.get(offset + 3)?,
        next_attempt_at: row.get(offset + 4)?,
        created_at: row.get(offset + 5)?,
    })
}

pub fn delivery(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    delivery_at(row, 0)
}

pub fn attempt(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    let outcome: String = row.get(6)?;
    Ok(Attempt {
        id: AttemptId::from_trusted(row.get(0)?),
        msg_id: MessageId::from_trusted(row.get(1)?),
        endpoint_id: EndpointId::from_trusted(row.get(2)?),
        app_id: AppId::from_trusted(row.get(3)?),
        url: row.get(4)?,
        status: status(row.get(5)?)?,
        outcome: OutcomeCode::parse(&outcome).unwrap_or(OutcomeCode::HttpStatus),
        response_status_code: row.get(7)?,
        response: row.get(8)?,
        response_duration_ms: row.get(9)?,
        manual: row.get(10)?,
        created_at: row.get(11)?,
    })
}

/// Maps a UNIQUE violation to `Conflict` with a caller-safe message; other errors pass through.
pub fn conflict_on_unique(err: rusqlite::Error, what: &str) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(code, _)
            if code.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(what.to_owned())
        }
        _ => StoreError::Database(err),
    }
}

pub fn one<T>(result: rusqlite::Result<T>) -> StoreResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(err) => Err(err.into()),
    }
}
