//! Group commit: one thread owns the write connection and runs every queued write in a single
//! transaction (each in its own savepoint), then answers all of them after one fsync. Concurrent
//! API requests thus share commits without giving up "durable before we answer".

use crate::{StoreError, StoreResult};
use rusqlite::Connection;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Called after the batch's commit with the commit's result.
type Completion = Box<dyn FnOnce(StoreResult<()>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;

/// The most writes folded into one transaction; bounds the latency one commit adds.
const MAX_BATCH: usize = 1024;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub fn spawn(conn: Connection) -> StoreResult<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("vestnik-sqlite-writer".into())
            .spawn(move || run(conn, queue))
            .map_err(|err| StoreError::Open(err.to_string()))?;
        Ok(Self { jobs })
    }

    /// Runs `work` inside the next group transaction; resolves once that transaction committed.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = in_savepoint(conn, work);
            Box::new(move |committed: StoreResult<()>| {
                let _ = reply.send(committed.and(result));
            })
        });
        self.jobs.send(job).map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    // Cached statements: these run once per write, and parsing them anew was a visible share of
    // the writer thread's time in the profile.
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let result = work(conn);
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    result
}

fn run(conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(err) = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut begin| begin.execute([]))
        {
            // Dropping the batch drops every reply channel: each caller gets `WriterGone`.
            tracing::error!(error = %err, jobs = batch.len(), "cannot begin a write transaction");
            continue;
        }
        let completions: Vec<Completion> = batch.into_iter().map(|job| job(&conn)).collect();
        let committed = conn
            .prepare_cached("COMMIT")
            .and_then(|mut commit| commit.execute([]))
            .map(drop)
            .map_err(StoreError::from);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for completion in completions {
            let outcome = match &committed {
                Ok(()) => Ok(()),
                Err(err) => Err(StoreError::Commit(err.to_string())),
            };
            completion(outcome);
        }
    }
}
