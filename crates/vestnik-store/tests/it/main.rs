//! The storage suite: every behaviour the API and the workers rely on, written once against the
//! `Store` trait and run on each backend (a fresh database per test).

mod suite;

use std::sync::Arc;
use vestnik_store::Store;

/// A fresh SQLite store in its own temporary folder (kept alive by the returned guard).
async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("suite.db").display());
    let store = vestnik_store::sqlite::SqliteStore::open(&url, 0).unwrap();
    (Arc::new(store), dir)
}

/// Where the PostgreSQL suites run: `VESTNIK_TEST_POSTGRES`, or the CI machine's server.
pub fn postgres_url() -> String {
    std::env::var("VESTNIK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL store in a schema of its own; fails loudly when the server is missing.
async fn postgres() -> (Arc<dyn Store>, vestnik_store::postgres::IsolatedSchema) {
    let (store, schema) =
        vestnik_store::postgres::PgStore::connect_isolated(&postgres_url(), "suite")
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "PostgreSQL is needed at {} for this suite ({err}); .ci/run starts it",
                    postgres_url()
                )
            });
    (Arc::new(store), schema)
}

/// One `#[tokio::test]` per suite function, on one backend.
macro_rules! on_backend {
    ($backend:ident, $open:path, [$($test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (store, _guard) = $open().await;
                    crate::suite::$test(store).await;
                }
            )*
        }
    };
}

/// The whole suite on every backend: one list, so no backend can miss a test.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        on_backend!(sqlite, crate::sqlite, [$($test),*]);
        on_backend!(postgres, crate::postgres, [$($test),*]);
    };
}

on_every_backend!(
    applications_answer_to_id_or_uid_and_uids_are_unique,
    a_message_and_its_deliveries_are_written_together,
    concurrent_leases_never_hand_out_the_same_task,
    queued_tasks_are_claimed_once_and_stale_copies_are_refused,
    an_expired_lease_makes_the_task_due_again,
    attempts_move_tasks_through_retry_exhaustion_delivery_and_disabling,
    resend_recover_and_bring_forward_make_tasks_due,
    payloads_expire_and_expunge,
    inbound_requests_deduplicate_and_the_rejected_log_is_capped,
);
