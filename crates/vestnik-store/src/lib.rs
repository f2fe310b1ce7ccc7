//! Vestnik's storage seam. [`Store`] (with [`InboundStore`]) is every read and write the API and the workers make; the API
//! and `vestnik-delivery` see only this trait, so a PostgreSQL implementation slots in beside
//! [`sqlite::SqliteStore`] without touching them.

pub mod columns;
pub mod inbound;
pub mod model;
pub mod postgres;
pub mod query;
pub mod sqlite;

pub use inbound::*;
pub use model::*;
pub use query::*;

use async_trait::async_trait;
use vestnik_core::{AppId, AttemptId, EndpointId, MessageId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("PostgreSQL error: {}", postgres_cause(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no PostgreSQL connection available: {0}")]
    Pool(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the transaction could not commit: {0}")]
    Commit(String),
    #[error("the storage writer has stopped")]
    WriterGone,
    #[error("database file is in use by another process: {0}")]
    Locked(String),
    #[error("cannot open the database: {0}")]
    Open(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The database cannot be reached or is refusing work for now (down, restarting, out of
    /// connections): nothing was written, and the same request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::WriterGone => true,
            StoreError::Postgres(err) => match err.as_db_error() {
                // SQLSTATE classes 08 (connection), 53 (insufficient resources), 57P (shutdown).
                Some(db) => {
                    let code = db.code().code();
                    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
                }
                None => {
                    err.is_closed()
                        || std::error::Error::source(err)
                            .is_some_and(|source| source.is::<std::io::Error>())
                }
            },
            _ => false,
        }
    }
}

/// The server's message and SQLSTATE for a database error (never the row values PostgreSQL puts
/// in an error's detail), else the driver's own description.
fn postgres_cause(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => err.to_string(),
    }
}

#[async_trait]
pub trait Store: InboundStore + Send + Sync + 'static {
    // Settings kept across restarts (the generated admin token, for instance).
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<String>;

    // Responses kept for `idempotency-key`s (the key is scoped by the caller, e.g. with the path).
    async fn get_idempotent(&self, key: &str) -> StoreResult<Option<IdempotentResponse>>;
    /// Keeps the first response stored for `key`; a later one for the same key is ignored.
    async fn put_idempotent(&self, key: &str, response: IdempotentResponse) -> StoreResult<()>;
    /// Forgets responses kept since before `before`; returns how many.
    async fn expire_idempotent(&self, before: UnixMs) -> StoreResult<u64>;

    // Applications: `key` is the id or the uid.
    async fn create_app(&self, app: Application) -> StoreResult<Application>;
    async fn get_app(&self, key: &str) -> StoreResult<Option<Application>>;
    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Vec<Application>>;
    async fn update_app(&self, app: Application) -> StoreResult<Application>;
    async fn delete_app(&self, id: &AppId) -> StoreResult<()>;

    async fn create_event_type(&self, event_type: EventType) -> StoreResult<EventType>;
    async fn get_event_type(&self, name: &str) -> StoreResult<Option<EventType>>;
    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> StoreResult<Vec<EventType>>;
    async fn update_event_type(&self, event_type: EventType) -> StoreResult<EventType>;
    async fn delete_event_type(&self, name: &str, expunge: bool) -> StoreResult<()>;

    async fn create_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint>;
    async fn get_endpoint(&self, app: &AppId, key: &str) -> StoreResult<Option<Endpoint>>;
    async fn get_endpoint_by_id(&self, id: &EndpointId) -> StoreResult<Option<Endpoint>>;
    async fn list_endpoints(&self, app: &AppId, page: &PageRequest) -> StoreResult<Vec<Endpoint>>;
    async fn update_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint>;
    async fn delete_endpoint(&self, id: &EndpointId) -> StoreResult<()>;
    async fn endpoint_stats(
        &self,
        id: &EndpointId,
        since: Option<UnixMs>,
        until: Option<UnixMs>,
    ) -> StoreResult<EndpointStats>;

    /// Writes the message and one delivery per recipient endpoint in one transaction. With
    /// `lease_until`, the deliveries start leased by the caller (who dispatches them from memory);
    /// without, they start due. `Conflict` if the app has seen the `eventId` before.
    async fn create_message(
        &self,
        message: Message,
        recipients: Recipients,
        lease_until: Option<UnixMs>,
    ) -> StoreResult<(Message, Vec<LeasedTask>)>;
    async fn get_message(&self, app: &AppId, key: &str) -> StoreResult<Option<Message>>;
    async fn list_messages(&self, app: &AppId, filter: &MessageFilter)
    -> StoreResult<Vec<Message>>;
    async fn expunge_message_content(&self, id: &MessageId) -> StoreResult<()>;
    /// Drops payloads whose retention period has ended; returns how many.
    async fn expire_payloads(&self, now: UnixMs) -> StoreResult<u64>;

    async fn list_deliveries_for_message(
        &self,
        msg: &MessageId,
        page: &PageRequest,
    ) -> StoreResult<Vec<Delivery>>;
    /// Messages sent to an endpoint, with that endpoint's delivery state.
    async fn list_messages_for_endpoint(
        &self,
        endpoint: &EndpointId,
        filter: &MessageFilter,
        status: Option<vestnik_core::DeliveryStatus>,
    ) -> StoreResult<Vec<(Message, Delivery)>>;

    async fn list_attempts(&self, filter: &AttemptFilter) -> StoreResult<Vec<Attempt>>;
    async fn get_attempt(&self, msg: &MessageId, id: &AttemptId) -> StoreResult<Option<Attempt>>;
    async fn expunge_attempt_content(&self, id: &AttemptId) -> StoreResult<()>;

    /// Makes the delivery of `msg` to `endpoint` due now as a manual attempt.
    async fn resend(&self, msg: &MessageId, endpoint: &EndpointId, now: UnixMs) -> StoreResult<()>;
    /// Makes failed deliveries of the endpoint created in the window due again; returns how many.
    async fn recover(
        &self,
        endpoint: &EndpointId,
        since: UnixMs,
        until: Option<UnixMs>,
        now: UnixMs,
    ) -> StoreResult<u64>;
    /// Brings the endpoint's waiting retries forward to `now` (recovery catch-up).
    async fn bring_forward(&self, endpoint: &EndpointId, now: UnixMs) -> StoreResult<u64>;

    /// Leases up to `limit` due, unleased (or lease-expired) tasks until `lease_until`.
    async fn lease_due(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        limit: usize,
    ) -> StoreResult<Vec<LeasedTask>>;
    /// Leases like [`Store::lease_due`] but returns only the tasks' keys: the relay queues
    /// keys, and the worker that takes one loads the rest with [`Store::claim`].
    async fn lease_due_keys(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        limit: usize,
    ) -> StoreResult<Vec<(MessageId, EndpointId)>>;
    /// Takes over queued tasks whose relay lease is still the one the queue message names,
    /// leasing each until `lease_until` (a later end than the relay's, so the same message
    /// cannot take it twice). Stale copies are left out of the answer.
    async fn claim(
        &self,
        tasks: Vec<QueuedTask>,
        lease_until: UnixMs,
    ) -> StoreResult<Vec<LeasedTask>>;
    /// Makes queued tasks due at `due_at` again if they still hold the named relay lease (the
    /// broker did not confirm them); a task a worker has claimed since is left alone.
    async fn release_queued(&self, tasks: Vec<QueuedTask>, due_at: UnixMs) -> StoreResult<()>;
    /// The earliest time a task becomes due, if any waits.
    async fn next_due_at(&self) -> StoreResult<Option<UnixMs>>;
    /// Returns leased tasks to the pool without an attempt (shutdown, backpressure), due at `due_at`.
    async fn release(&self, tasks: Vec<(MessageId, EndpointId)>, due_at: UnixMs)
    -> StoreResult<()>;
    /// Ends leased tasks as failed without an attempt: their endpoint is gone or disabled.
    async fn fail_without_attempt(&self, tasks: Vec<(MessageId, EndpointId)>) -> StoreResult<()>;
    /// Records finished attempts and their tasks' next state, all in one transaction.
    async fn record_attempts(
        &self,
        outcomes: Vec<AttemptOutcome>,
    ) -> StoreResult<Vec<EndpointTransition>>;
    /// Answers when the database does (readiness checks).
    async fn ping(&self) -> StoreResult<()>;
    /// Counts of tasks by pipeline state, for metrics.
    async fn queue_depths(&self, now: UnixMs) -> StoreResult<QueueDepths>;
}
