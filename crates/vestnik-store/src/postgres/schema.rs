//! The PostgreSQL schema: the same tables as SQLite's, with native types. Migrations run under
//! an advisory lock, so several nodes starting at once apply each exactly once.

use deadpool_postgres::Client;

/// Each entry moves the schema one version forward; never edit a released entry, append one.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE applications (
    id TEXT PRIMARY KEY, uid TEXT UNIQUE, name TEXT NOT NULL, metadata TEXT NOT NULL,
    throttle_rate INTEGER, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL
);
CREATE TABLE event_types (
    name TEXT PRIMARY KEY, description TEXT NOT NULL, archived BOOLEAN NOT NULL,
    deprecated BOOLEAN NOT NULL, feature_flag TEXT, schemas TEXT,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL
);
CREATE TABLE endpoints (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, uid TEXT, url TEXT NOT NULL,
    description TEXT NOT NULL, disabled BOOLEAN NOT NULL, event_types TEXT, channels TEXT,
    metadata TEXT NOT NULL, throttle_rate INTEGER, headers TEXT NOT NULL, secret TEXT NOT NULL,
    previous_secrets TEXT NOT NULL, failing_since BIGINT,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_by_app ON endpoints (app_id, id);
CREATE TABLE messages (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, event_id TEXT, event_type TEXT NOT NULL,
    channels TEXT, payload TEXT, payload_expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL,
    headers TEXT,
    UNIQUE (app_id, event_id)
);
CREATE INDEX messages_by_app ON messages (app_id, id);
CREATE INDEX messages_by_expiry ON messages (payload_expires_at) WHERE payload IS NOT NULL;
-- status: 0 success, 1 pending, 2 fail, 3 sending (leased until next_attempt_at).
CREATE TABLE deliveries (
    msg_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, app_id TEXT NOT NULL,
    status INTEGER NOT NULL, attempts INTEGER NOT NULL, next_attempt_at BIGINT,
    manual BOOLEAN NOT NULL DEFAULT FALSE, created_at BIGINT NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, msg_id);
CREATE TABLE attempts (
    id TEXT PRIMARY KEY, msg_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, app_id TEXT NOT NULL,
    url TEXT NOT NULL, status INTEGER NOT NULL, outcome TEXT NOT NULL,
    response_status_code INTEGER NOT NULL, response TEXT NOT NULL,
    response_duration_ms BIGINT NOT NULL, manual BOOLEAN NOT NULL, created_at BIGINT NOT NULL
);
CREATE INDEX attempts_by_msg ON attempts (msg_id, id);
CREATE INDEX attempts_by_endpoint ON attempts (endpoint_id, id);
CREATE TABLE sources (
    id TEXT PRIMARY KEY, uid TEXT UNIQUE, name TEXT NOT NULL, app_id TEXT NOT NULL,
    config TEXT NOT NULL, secret TEXT NOT NULL, previous_secrets TEXT NOT NULL,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL
);
CREATE TABLE inbound_requests (
    id TEXT PRIMARY KEY, source_id TEXT NOT NULL, received_at BIGINT NOT NULL,
    remote_addr TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, headers TEXT NOT NULL,
    body BYTEA, body_size BIGINT NOT NULL, status INTEGER NOT NULL, reason TEXT, event_id TEXT,
    msg_id TEXT, duplicate_of TEXT
);
CREATE INDEX inbound_by_source ON inbound_requests (source_id, id);
CREATE INDEX inbound_by_status ON inbound_requests (source_id, status, id);
CREATE UNIQUE INDEX inbound_event_ids ON inbound_requests (source_id, event_id)
    WHERE status = 0 AND event_id IS NOT NULL;
CREATE TABLE idempotency (
    key TEXT PRIMARY KEY, request_hash TEXT NOT NULL, status INTEGER NOT NULL,
    body TEXT NOT NULL, created_at BIGINT NOT NULL
);
CREATE INDEX idempotency_by_age ON idempotency (created_at);
"#];

/// Arbitrary, fixed: the advisory lock key that serialises migrations across nodes.
const MIGRATION_LOCK: i64 = 0x7665_7374_6e69_6b00;

pub async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS vestnik_migrations (version INTEGER PRIMARY KEY)")
        .await?;
    let applied: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM vestnik_migrations",
            &[],
        )
        .await?
        .get(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO vestnik_migrations (version) VALUES ($1)",
            &[&(index as i32 + 1)],
        )
        .await?;
    }
    tx.commit().await
}
