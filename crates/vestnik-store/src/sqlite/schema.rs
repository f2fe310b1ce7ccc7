//! The SQLite schema and its migrations, applied in order and tracked in `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry moves the schema one version forward; never edit a released entry, append one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE applications (
    id            TEXT PRIMARY KEY,
    uid           TEXT UNIQUE,
    name          TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    throttle_rate INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE event_types (
    name         TEXT PRIMARY KEY,
    description  TEXT NOT NULL,
    archived     INTEGER NOT NULL,
    deprecated   INTEGER NOT NULL,
    feature_flag TEXT,
    schemas      TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE TABLE endpoints (
    id               TEXT PRIMARY KEY,
    app_id           TEXT NOT NULL,
    uid              TEXT,
    url              TEXT NOT NULL,
    description      TEXT NOT NULL,
    disabled         INTEGER NOT NULL,
    event_types      TEXT,
    channels         TEXT,
    metadata         TEXT NOT NULL,
    throttle_rate    INTEGER,
    headers          TEXT NOT NULL,
    secret           TEXT NOT NULL,
    previous_secrets TEXT NOT NULL,
    failing_since    INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_by_app ON endpoints (app_id, id);
CREATE TABLE messages (
    id                 TEXT PRIMARY KEY,
    app_id             TEXT NOT NULL,
    event_id           TEXT,
    event_type         TEXT NOT NULL,
    channels           TEXT,
    payload            TEXT,
    payload_expires_at INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    UNIQUE (app_id, event_id)
);
CREATE INDEX messages_by_app ON messages (app_id, id);
CREATE INDEX messages_by_expiry ON messages (payload_expires_at) WHERE payload IS NOT NULL;
-- One row per message and matching endpoint: the delivery task and its state. While a dispatcher
-- holds the task (status 3, sending), next_attempt_at is the lease's end: an expired lease is
-- simply due again.
CREATE TABLE deliveries (
    msg_id          TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL,
    app_id          TEXT NOT NULL,
    status          INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER,
    manual          INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
) WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, msg_id);
CREATE TABLE attempts (
    id                   TEXT PRIMARY KEY,
    msg_id               TEXT NOT NULL,
    endpoint_id          TEXT NOT NULL,
    app_id               TEXT NOT NULL,
    url                  TEXT NOT NULL,
    status               INTEGER NOT NULL,
    outcome              TEXT NOT NULL,
    response_status_code INTEGER NOT NULL,
    response             TEXT NOT NULL,
    response_duration_ms INTEGER NOT NULL,
    manual               INTEGER NOT NULL,
    created_at           INTEGER NOT NULL
);
CREATE INDEX attempts_by_msg ON attempts (msg_id, id);
CREATE INDEX attempts_by_endpoint ON attempts (endpoint_id, id);
"#,
    r#"
-- Inbound: sources (configured senders; their destinations are the endpoints of a reserved
-- application) and every request they sent, accepted or not.
ALTER TABLE messages ADD COLUMN headers TEXT;
CREATE TABLE sources (
    id               TEXT PRIMARY KEY,
    uid              TEXT UNIQUE,
    name             TEXT NOT NULL,
    app_id           TEXT NOT NULL,
    config           TEXT NOT NULL,
    secret           TEXT NOT NULL,
    previous_secrets TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
-- status: 0 accepted, 1 duplicate, 2 rejected. An accepted request's body lives in its message's
-- payload (msg_id), so it is stored once.
CREATE TABLE inbound_requests (
    id           TEXT PRIMARY KEY,
    source_id    TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    remote_addr  TEXT NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    headers      TEXT NOT NULL,
    body         BLOB,
    body_size    INTEGER NOT NULL,
    status       INTEGER NOT NULL,
    reason       TEXT,
    event_id     TEXT,
    msg_id       TEXT,
    duplicate_of TEXT
);
CREATE INDEX inbound_by_source ON inbound_requests (source_id, id);
CREATE INDEX inbound_by_status ON inbound_requests (source_id, status, id);
CREATE UNIQUE INDEX inbound_event_ids ON inbound_requests (source_id, event_id)
    WHERE status = 0 AND event_id IS NOT NULL;
"#,
    r#"
-- Responses kept for idempotency keys (24 h).
CREATE TABLE idempotency (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX idempotency_by_age ON idempotency (created_at);
"#,
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Pragmas every connection gets: WAL so readers never block the writer, full fsync at commit so
/// an accepted message survives power loss, and a busy timeout instead of instant failures.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA busy_timeout = 10000;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16000;",
    )
}
