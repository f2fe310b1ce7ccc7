//! [`InboundStore`] on PostgreSQL: sources, the request log with dedup on the sender's event id
//! (a unique index settles a race between two nodes), and replay.

use super::rows::*;
use super::{
    PgStore, insert_app, insert_endpoint, insert_message, not_found_if_none, schedule_resend,
};
use crate::inbound::*;
use crate::model::*;
use crate::query::PageRequest;
use crate::{StoreError, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use vestnik_core::{AppId, MessageId, RequestId, SourceId};

fn source(row: &Row) -> StoreResult<Source> {
    Ok(Source {
        id: SourceId::from_trusted(row.try_get(0)?),
        uid: row.try_get(1)?,
        name: row.try_get(2)?,
        app_id: AppId::from_trusted(row.try_get(3)?),
        config: row.try_get(4)?,
        secrets: secrets_at(row, 5)?,
        created_at: row.try_get(7)?,
        updated_at: row.try_get(8)?,
    })
}

fn request_view(row: &Row) -> StoreResult<RequestView> {
    let status: i32 = row.try_get(9)?;
    let handling: Option<String> = row.try_get(14)?;
    Ok(RequestView {
        request: InboundRequest {
            id: RequestId::from_trusted(row.try_get(0)?),
            source_id: SourceId::from_trusted(row.try_get(1)?),
            received_at: row.try_get(2)?,
            remote_addr: row.try_get(3)?,
            method: row.try_get(4)?,
            path: row.try_get(5)?,
            headers: row.try_get(6)?,
            body: row.try_get(7)?,
            body_size: row.try_get(8)?,
            status: RequestStatus::from_code(i64::from(status))
                .ok_or_else(|| StoreError::Corrupt(format!("request status {status}")))?,
            reason: row.try_get(10)?,
            event_id: row.try_get(11)?,
            msg_id: row
                .try_get::<_, Option<String>>(12)?
                .map(MessageId::from_trusted),
            duplicate_of: row
                .try_get::<_, Option<String>>(13)?
                .map(RequestId::from_trusted),
        },
        handling: handling
            .map(|h| {
                Handling::parse(&h).ok_or_else(|| StoreError::Corrupt(format!("handling {h}")))
            })
            .transpose()?,
    })
}

async fn insert_request(
    tx: &impl GenericClient,
    r: &InboundRequest,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO inbound_requests (id, source_id, received_at, remote_addr, method, path, headers, body,
             body_size, status, reason, event_id, msg_id, duplicate_of)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        &[&r.id.as_str(), &r.source_id.as_str(), &r.received_at, &r.remote_addr, &r.method, &r.path, &r.headers,
          &r.body, &r.body_size, &(r.status.code() as i32), &r.reason, &r.event_id,
          &r.msg_id.as_ref().map(MessageId::as_str), &r.duplicate_of.as_ref().map(RequestId::as_str)],
    )
    .await
    .map(drop)
}

fn write_source_sql(insert: bool) -> String {
    if insert {
        format!(
            "INSERT INTO sources ({SOURCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )
    } else {
        "UPDATE sources SET uid = $2, name = $3, app_id = $4, config = $5, secret = $6, previous_secrets = $7,
             created_at = $8, updated_at = $9 WHERE id = $1"
            .to_owned()
    }
}

async fn write_source(tx: &impl GenericClient, s: &Source, insert: bool) -> StoreResult<u64> {
    let previous = serde_json::to_string(&s.secrets.previous).expect("serialisable");
    tx.execute(
        &write_source_sql(insert),
        &[
            &s.id.as_str(),
            &s.uid,
            &s.name,
            &s.app_id.as_str(),
            &s.config,
            &s.secrets.current,
            &previous,
            &s.created_at,
            &s.updated_at,
        ],
    )
    .await
    .map_err(|err| conflict_on_unique(err, "a source with this uid already exists"))
}

impl PgStore {
    /// The earlier accepted request of a source with this event id, if any.
    async fn earlier(
        tx: &impl GenericClient,
        source: &SourceId,
        event_id: &str,
    ) -> StoreResult<Option<String>> {
        Ok(tx
            .query_opt("SELECT id FROM inbound_requests WHERE source_id = $1 AND event_id = $2 AND status = 0", &[&source.as_str(), &event_id])
            .await?
            .map(|r| r.get(0)))
    }

    async fn store_duplicate(
        &self,
        mut request: InboundRequest,
        earlier: String,
    ) -> StoreResult<(InboundRequest, Vec<LeasedTask>)> {
        request.status = RequestStatus::Duplicate;
        request.duplicate_of = Some(RequestId::from_trusted(earlier));
        request.body = None;
        request.msg_id = None;
        let client = self.client().await?;
        insert_request(&client, &request).await?;
        Ok((request, Vec::new()))
    }
}

#[async_trait]
impl InboundStore for PgStore {
    async fn create_source(
        &self,
        source: Source,
        app: Application,
        destinations: Vec<Endpoint>,
    ) -> StoreResult<Source> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        insert_app(&tx, &app).await?;
        write_source(&tx, &source, true).await?;
        for destination in &destinations {
            insert_endpoint(&tx, destination).await?;
        }
        tx.commit().await?;
        Ok(source)
    }

    async fn get_source(&self, key: &str) -> StoreResult<Option<Source>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {SOURCE_COLUMNS} FROM sources WHERE id = $1 OR uid = $1 ORDER BY id = $1 DESC LIMIT 1"
        );
        client
            .query_opt(&sql, &[&key])
            .await?
            .as_ref()
            .map(source)
            .transpose()
    }

    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Vec<Source>> {
        let client = self.client().await?;
        let mut q = Query::new(format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE TRUE"));
        q.page(page, "id");
        all(client.query(&q.sql, &q.params()).await?, source)
    }

    async fn update_source(&self, s: Source) -> StoreResult<Source> {
        let client = self.client().await?;
        not_found_if_none(write_source(&client, &s, false).await?, "source")?;
        Ok(s)
    }

    async fn delete_source(&self, id: &SourceId) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let app: String = tx
            .query_opt("SELECT app_id FROM sources WHERE id = $1", &[&id.as_str()])
            .await?
            .ok_or(StoreError::NotFound("source"))?
            .get(0);
        tx.execute("DELETE FROM sources WHERE id = $1", &[&id.as_str()])
            .await?;
        tx.execute(
            "DELETE FROM inbound_requests WHERE source_id = $1",
            &[&id.as_str()],
        )
        .await?;
        tx.execute("DELETE FROM applications WHERE id = $1", &[&app])
            .await?;
        tx.execute("DELETE FROM endpoints WHERE app_id = $1", &[&app])
            .await?;
        tx.execute("DELETE FROM messages WHERE app_id = $1", &[&app])
            .await?;
        super::delete_deliveries_and_attempts(&tx, "app_id", &app).await?;
        Ok(tx.commit().await?)
    }

    async fn record_request(
        &self,
        mut request: InboundRequest,
        message: Option<Message>,
        lease_until: Option<UnixMs>,
        rejected_kept: usize,
    ) -> StoreResult<(InboundRequest, Vec<LeasedTask>)> {
        let mut client = self.client().await?;
        if request.status == RequestStatus::Rejected {
            let tx = client.transaction().await?;
            insert_request(&tx, &request).await?;
            let kept = i64::try_from(rejected_kept).unwrap_or(i64::MAX);
            tx.execute(
                "DELETE FROM inbound_requests WHERE source_id = $1 AND status = 2 AND id <= (
                     SELECT id FROM inbound_requests WHERE source_id = $1 AND status = 2 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                &[&request.source_id.as_str(), &kept],
            )
            .await?;
            tx.commit().await?;
            return Ok((request, Vec::new()));
        }
        let tx = client.transaction().await?;
        if let Some(event_id) = request.event_id.clone()
            && let Some(earlier) = Self::earlier(&tx, &request.source_id, &event_id).await?
        {
            drop(tx);
            return self.store_duplicate(request, earlier).await;
        }
        let inserted = async {
            let tasks = match message {
                Some(message) => {
                    request.msg_id = Some(message.id.clone());
                    request.body = None;
                    insert_message(&tx, message, &Recipients::Subscribers, lease_until)
                        .await?
                        .1
                }
                None => Vec::new(),
            };
            insert_request(&tx, &request)
                .await
                .map_err(|err| conflict_on_unique(err, "duplicate event"))?;
            Ok::<_, StoreError>(tasks)
        }
        .await;
        match inserted {
            Ok(tasks) => {
                tx.commit().await?;
                Ok((request, tasks))
            }
            // Another node accepted the same event id a moment ago: this one is its duplicate.
            Err(StoreError::Conflict(_)) if request.event_id.is_some() => {
                drop(tx);
                let client = self.client().await?;
                let event_id = request.event_id.clone().unwrap_or_default();
                let earlier = Self::earlier(&client, &request.source_id, &event_id)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Conflict("a message with this eventId already exists".into())
                    })?;
                drop(client);
                self.store_duplicate(request, earlier).await
            }
            Err(err) => Err(err),
        }
    }

    async fn list_requests(
        &self,
        source: &SourceId,
        filter: &RequestFilter,
    ) -> StoreResult<Vec<RequestView>> {
        let client = self.client().await?;
        let mut inner = Query::new(format!(
            "SELECT {}, {HANDLING} AS handling FROM inbound_requests r WHERE r.source_id = ",
            request_columns("NULL::BYTEA")
        ));
        let mark = inner.bind(source.as_str().to_owned());
        inner.push(&mark);
        if let Some(since) = filter.since {
            let mark = inner.bind(since);
            inner.push(&format!(" AND r.received_at >= {mark}"));
        }
        if let Some(until) = filter.until {
            let mark = inner.bind(until);
            inner.push(&format!(" AND r.received_at < {mark}"));
        }
        let mut q = inner;
        q.sql = format!("SELECT * FROM ({}) AS log WHERE TRUE", q.sql);
        match filter.status {
            None => {}
            Some(RequestFilterStatus::Stored(status)) => {
                let mark = q.bind(status.code() as i32);
                q.push(&format!(" AND status = {mark}"));
            }
            Some(RequestFilterStatus::Handling(wanted)) => {
                let mark = q.bind(wanted.as_str().to_owned());
                q.push(&format!(" AND handling = {mark}"));
            }
        }
        q.page(&filter.page, "id");
        all(client.query(&q.sql, &q.params()).await?, request_view)
    }

    async fn get_request(
        &self,
        source: &SourceId,
        id: &RequestId,
    ) -> StoreResult<Option<RequestView>> {
        let client = self.client().await?;
        let columns = request_columns("COALESCE(r.body, convert_to(m.payload, 'UTF8'))");
        let sql = format!(
            "SELECT {columns}, {HANDLING} FROM inbound_requests r LEFT JOIN messages m ON m.id = r.msg_id
             WHERE r.source_id = $1 AND r.id = $2"
        );
        client
            .query_opt(&sql, &[&source.as_str(), &id.as_str()])
            .await?
            .as_ref()
            .map(request_view)
            .transpose()
    }

    async fn expire_requests(&self, before: UnixMs) -> StoreResult<u64> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "DELETE FROM inbound_requests WHERE received_at < $1",
                &[&before],
            )
            .await?)
    }

    async fn replay_requests(
        &self,
        source: &Source,
        selection: ReplaySelection,
        now: UnixMs,
    ) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = match &selection {
            ReplaySelection::One(id) => {
                tx.query(
                    "SELECT r.msg_id, m.event_type FROM inbound_requests r JOIN messages m ON m.id = r.msg_id
                     WHERE r.source_id = $1 AND r.id = $2 AND r.status = 0",
                    &[&source.id.as_str(), &id.as_str()],
                )
                .await?
            }
            ReplaySelection::Range { since, until } => {
                tx.query(
                    "SELECT r.msg_id, m.event_type FROM inbound_requests r JOIN messages m ON m.id = r.msg_id
                     WHERE r.source_id = $1 AND r.received_at >= $2 AND r.received_at < $3 AND r.status = 0",
                    &[&source.id.as_str(), since, until],
                )
                .await?
            }
        };
        if matches!(selection, ReplaySelection::One(_)) && rows.is_empty() {
            return Err(StoreError::NotFound("accepted request"));
        }
        let destinations = all(
            tx.query(
                &format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE app_id = $1 AND NOT disabled"
                ),
                &[&source.app_id.as_str()],
            )
            .await?,
            endpoint,
        )?;
        for row in &rows {
            let (msg, event_type): (String, String) = (row.get(0), row.get(1));
            for destination in destinations.iter().filter(|d| d.accepts(&event_type, None)) {
                schedule_resend(
                    &tx,
                    &msg,
                    destination.id.as_str(),
                    source.app_id.as_str(),
                    now,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }
}
