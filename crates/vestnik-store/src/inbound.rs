//! The inbound half's records and its storage seam: sources (configured senders) and every
//! request they sent. An accepted request becomes a message of the source's reserved
//! application, so its hand-on to destinations is an ordinary delivery.

use crate::StoreResult;
use crate::model::{Application, Endpoint, EndpointSecrets, LeasedTask, Message, UnixMs};
use crate::query::PageRequest;
use async_trait::async_trait;
use vestnik_core::{AppId, MessageId, RequestId, SourceId};

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: SourceId,
    pub uid: Option<String>,
    pub name: String,
    /// The reserved application whose endpoints are this source's destinations.
    pub app_id: AppId,
    /// Verification scheme, tolerance, IP allow-list, event-id rule, forwarded headers and body
    /// limit, as JSON owned by `vestnik-inbound`.
    pub config: String,
    /// The secrets requests are verified with; previous ones until their grace period ends.
    pub secrets: EndpointSecrets,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Accepted,
    /// Verified, but its event id was accepted before: acknowledged, not handed on.
    Duplicate,
    /// Failed verification or was malformed: never handed on.
    Rejected,
}

impl RequestStatus {
    pub const ALL: [Self; 3] = [Self::Accepted, Self::Duplicate, Self::Rejected];

    pub fn code(self) -> i64 {
        match self {
            Self::Accepted => 0,
            Self::Duplicate => 1,
            Self::Rejected => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.code() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Rejected => "rejected",
        }
    }
}

/// How far an accepted request's hand-on has got, over all its destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Not yet attempted everywhere (or the source has no destination yet).
    Pending,
    /// Every destination has it.
    Delivered,
    /// At least one destination failed and a retry is scheduled.
    Failing,
    /// At least one destination ran out of retries; replay hands it on again.
    Exhausted,
}

impl Handling {
    pub const ALL: [Self; 4] = [
        Self::Pending,
        Self::Delivered,
        Self::Failing,
        Self::Exhausted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failing => "failing",
            Self::Exhausted => "exhausted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|handling| handling.as_str() == text)
    }
}

/// One received request as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRequest {
    pub id: RequestId,
    pub source_id: SourceId,
    pub received_at: UnixMs,
    pub remote_addr: String,
    pub method: String,
    pub path: String,
    /// JSON object of the request's headers, credentials redacted.
    pub headers: String,
    /// The body exactly as received; `None` in lists, for duplicates, and once expired.
    pub body: Option<Vec<u8>>,
    pub body_size: i64,
    pub status: RequestStatus,
    /// Why a request was rejected (`code: detail`).
    pub reason: Option<String>,
    pub event_id: Option<String>,
    pub msg_id: Option<MessageId>,
    /// For a duplicate: the request that was accepted with the same event id.
    pub duplicate_of: Option<RequestId>,
}

/// A stored request with the state of its hand-on (`None` unless accepted).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestView {
    pub request: InboundRequest,
    pub handling: Option<Handling>,
}

/// The status filter of the request log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFilterStatus {
    Stored(RequestStatus),
    Handling(Handling),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestFilter {
    pub page: PageRequest,
    pub status: Option<RequestFilterStatus>,
    pub since: Option<UnixMs>,
    pub until: Option<UnixMs>,
}

/// Which accepted requests to hand on again.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplaySelection {
    One(RequestId),
    /// Every accepted request received in `[since, until)`.
    Range {
        since: UnixMs,
        until: UnixMs,
    },
}

#[async_trait]
pub trait InboundStore: Send + Sync + 'static {
    /// Creates the source with its reserved application and first destinations, atomically.
    async fn create_source(
        &self,
        source: Source,
        app: Application,
        destinations: Vec<Endpoint>,
    ) -> StoreResult<Source>;
    /// By id or uid.
    async fn get_source(&self, key: &str) -> StoreResult<Option<Source>>;
    async fn list_sources(&self, page: &PageRequest) -> StoreResult<Vec<Source>>;
    async fn update_source(&self, source: Source) -> StoreResult<Source>;
    /// Deletes the source, its application, destinations, requests and their deliveries.
    async fn delete_source(&self, id: &SourceId) -> StoreResult<()>;

    /// Stores a received request in one transaction. An accepted request whose event id the
    /// source accepted before is stored as a duplicate instead, without its body; otherwise an
    /// accepted request is stored with `message` and its deliveries (born leased until
    /// `lease_until` when given). Rejected requests beyond the newest `rejected_kept` of the
    /// source are deleted. Returns the request as stored and the tasks to dispatch.
    async fn record_request(
        &self,
        request: InboundRequest,
        message: Option<Message>,
        lease_until: Option<UnixMs>,
        rejected_kept: usize,
    ) -> StoreResult<(InboundRequest, Vec<LeasedTask>)>;
    /// Without bodies, newest first unless the page says otherwise.
    async fn list_requests(
        &self,
        source: &SourceId,
        filter: &RequestFilter,
    ) -> StoreResult<Vec<RequestView>>;
    /// With its body.
    async fn get_request(
        &self,
        source: &SourceId,
        id: &RequestId,
    ) -> StoreResult<Option<RequestView>>;
    /// Forgets requests received before `before` (the request log's retention); their hand-on
    /// messages stay, as any message does. Returns how many.
    async fn expire_requests(&self, before: UnixMs) -> StoreResult<u64>;
    /// Schedules the selected accepted requests for delivery again to every enabled destination,
    /// now; returns how many requests were replayed.
    async fn replay_requests(
        &self,
        source: &Source,
        selection: ReplaySelection,
        now: UnixMs,
    ) -> StoreResult<u64>;
}
