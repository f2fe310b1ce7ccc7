//! What both SQL backends share: the tables' column lists (same names on SQLite and
//! PostgreSQL), the request log's hand-on state as one SQL expression, and how list and header
//! columns are encoded as JSON text.

pub const APP_COLUMNS: &str = "id, uid, name, metadata, throttle_rate, created_at, updated_at";
pub const EVENT_TYPE_COLUMNS: &str =
    "name, description, archived, deprecated, feature_flag, schemas, created_at, updated_at";
pub const ENDPOINT_COLUMNS: &str = "id, app_id, uid, url, description, disabled, event_types, \
    channels, metadata, throttle_rate, headers, secret, previous_secrets, failing_since, \
    created_at, updated_at";
pub const MESSAGE_COLUMNS: &str =
    "id, app_id, event_id, event_type, channels, payload, payload_expires_at, created_at, headers";
pub const DELIVERY_COLUMNS: &str =
    "msg_id, endpoint_id, status, attempts, next_attempt_at, created_at";
pub const ATTEMPT_COLUMNS: &str = "id, msg_id, endpoint_id, app_id, url, status, outcome, \
    response_status_code, response, response_duration_ms, manual, created_at";
pub const SOURCE_COLUMNS: &str =
    "id, uid, name, app_id, config, secret, previous_secrets, created_at, updated_at";

/// The request log's columns (alias `r`) with `body` standing for the body column: lists pass
/// `NULL` (the size is enough there), reading one request passes the stored body.
pub fn request_columns(body: &str) -> String {
    format!(
        "r.id, r.source_id, r.received_at, r.remote_addr, r.method, r.path, r.headers, {body}, \
         r.body_size, r.status, r.reason, r.event_id, r.msg_id, r.duplicate_of"
    )
}

/// The hand-on state of an accepted request (alias `r`), from its deliveries (status codes of
/// `DeliveryStatus`: 0 success, 1 pending, 2 fail, 3 sending).
pub const HANDLING: &str = "CASE
    WHEN r.status != 0 THEN NULL
    WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = r.msg_id AND d.status = 2) THEN 'exhausted'
    WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = r.msg_id AND d.status != 0 AND d.attempts > 0) THEN 'failing'
    WHEN NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = r.msg_id AND d.status != 0)
         AND EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = r.msg_id) THEN 'delivered'
    ELSE 'pending' END";

/// An optional list (event types, channels) as a JSON array.
pub fn list_to_json(list: &Option<Vec<String>>) -> Option<String> {
    list.as_ref()
        .map(|items| serde_json::to_string(items).expect("a list of strings serialises"))
}

/// Forwarded headers are kept as a JSON array of `[name, value]` pairs, NULL when there are none.
pub fn header_pairs_to_json(headers: &[(String, String)]) -> Option<String> {
    (!headers.is_empty())
        .then(|| serde_json::to_string(headers).expect("pairs of strings serialise"))
}
