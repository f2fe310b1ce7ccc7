//! The clinic's own SQLite database: patients and claims, with what the clinic knows of each
//! claim's status and when it learned it. Updates are idempotent: one whose version is not newer
//! than the stored one changes nothing.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::sync::Mutex;
use vestnik_claims::money::Money;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type DbResult<T> = Result<T, DbError>;

/// What the clinic knows of one of its claims.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClinicClaim {
    pub clinic_claim_id: String,
    pub patient_ref: String,
    pub insurer_claim_id: Option<String>,
    pub total: Money,
    /// `submitting` until the insurer answers, then the insurer's status.
    pub status: String,
    pub version: u32,
    pub review_mode: Option<String>,
    pub submitted_at: Timestamp,
    pub decision_due_at: Option<Timestamp>,
    /// When the insurer decided (its clock).
    pub decided_at: Option<Timestamp>,
    /// When the clinic learned the final status (the same simulated clock).
    pub learned_at: Option<Timestamp>,
    /// How: webhook, poll, long-poll, sweep, view or timer.
    pub learned_via: Option<String>,
    pub amount_approved: Option<Money>,
    pub last_checked_at: Timestamp,
    pub timer_checks: u32,
    pub views: u32,
}

/// A status the clinic heard of, from a webhook or a status request.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub clinic_claim_id: String,
    pub insurer_claim_id: String,
    pub status: String,
    pub version: u32,
    pub review_mode: Option<String>,
    pub decision_due_at: Option<Timestamp>,
    pub decided_at: Option<Timestamp>,
    pub amount_approved: Option<Money>,
}

const FINAL: [&str; 3] = ["approved", "partial", "denied"];

pub struct Db {
    conn: Mutex<Connection>,
}

const COLUMNS: &str = "clinic_claim_id, patient_ref, insurer_claim_id, total, status, version, review_mode, \
    submitted_at, decision_due_at, decided_at, learned_at, learned_via, amount_approved, last_checked_at, \
    timer_checks, views";

fn time(text: Option<String>) -> rusqlite::Result<Option<Timestamp>> {
    text.map(|t| {
        t.parse().map_err(|err: jiff::Error| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, err.into())
        })
    })
    .transpose()
}

fn money(text: Option<String>) -> rusqlite::Result<Option<Money>> {
    text.map(|t| {
        Money::parse(&t).map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, err.into())
        })
    })
    .transpose()
}

fn claim(row: &Row<'_>) -> rusqlite::Result<ClinicClaim> {
    Ok(ClinicClaim {
        clinic_claim_id: row.get(0)?,
        patient_ref: row.get(1)?,
        insurer_claim_id: row.get(2)?,
        total: money(row.get(3)?)?.unwrap_or_default(),
        status: row.get(4)?,
        version: row.get(5)?,
        review_mode: row.get(6)?,
        submitted_at: time(row.get(7)?)?.unwrap_or_default(),
        decision_due_at: time(row.get(8)?)?,
        decided_at: time(row.get(9)?)?,
        learned_at: time(row.get(10)?)?,
        learned_via: row.get(11)?,
        amount_approved: money(row.get(12)?)?,
        last_checked_at: time(row.get(13)?)?.unwrap_or_default(),
        timer_checks: row.get(14)?,
        views: row.get(15)?,
    })
}

impl Db {
    pub fn open(path: &std::path::Path) -> DbResult<Self> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS patients (
                 patient_ref TEXT PRIMARY KEY, name TEXT NOT NULL, policy_number TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS claims (
                 clinic_claim_id TEXT PRIMARY KEY, patient_ref TEXT NOT NULL, insurer_claim_id TEXT,
                 total TEXT NOT NULL, status TEXT NOT NULL, version INTEGER NOT NULL, review_mode TEXT,
                 submitted_at TEXT NOT NULL, decision_due_at TEXT, decided_at TEXT, learned_at TEXT,
                 learned_via TEXT, amount_approved TEXT, last_checked_at TEXT NOT NULL,
                 timer_checks INTEGER NOT NULL DEFAULT 0, views INTEGER NOT NULL DEFAULT 0);",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .expect("the clinic database lock is never poisoned")
    }

    pub fn add_patient(&self, patient_ref: &str, name: &str, policy_number: &str) -> DbResult<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO patients (patient_ref, name, policy_number) VALUES (?1, ?2, ?3)",
            params![patient_ref, name, policy_number],
        )?;
        Ok(())
    }

    /// Records a claim about to be sent (status `submitting`, version 0).
    pub fn add_claim(
        &self,
        clinic_claim_id: &str,
        patient_ref: &str,
        total: Money,
        now: Timestamp,
    ) -> DbResult<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO claims (clinic_claim_id, patient_ref, total, status, version, submitted_at, last_checked_at)
             VALUES (?1, ?2, ?3, 'submitting', 0, ?4, ?4)",
            params![clinic_claim_id, patient_ref, total.to_string(), now.to_string()],
        )?;
        Ok(())
    }

    /// Applies a status if it is newer than what the clinic has; `learned_at` is set the first
    /// time a final status arrives. Returns whether anything changed.
    pub fn apply(&self, update: &StatusUpdate, via: &str, now: Timestamp) -> DbResult<bool> {
        let is_final = FINAL.contains(&update.status.as_str());
        let changed = self.conn().execute(
            "UPDATE claims SET insurer_claim_id = ?2, status = ?3, version = ?4,
                 review_mode = COALESCE(?5, review_mode), decision_due_at = COALESCE(?6, decision_due_at),
                 decided_at = COALESCE(?7, decided_at), amount_approved = COALESCE(?8, amount_approved),
                 learned_at = CASE WHEN ?9 AND learned_at IS NULL THEN ?10 ELSE learned_at END,
                 learned_via = CASE WHEN ?9 AND learned_at IS NULL THEN ?11 ELSE learned_via END
             WHERE clinic_claim_id = ?1 AND version < ?4",
            params![
                update.clinic_claim_id,
                update.insurer_claim_id,
                update.status,
                update.version,
                update.review_mode,
                update.decision_due_at.map(|t| t.to_string()),
                update.decided_at.map(|t| t.to_string()),
                update.amount_approved.map(|m| m.to_string()),
                is_final,
                now.to_string(),
                via,
            ],
        )?;
        Ok(changed > 0)
    }

    /// Notes that the insurer was asked about a claim (by the timer, when `timer`).
    pub fn checked(&self, clinic_claim_id: &str, now: Timestamp, timer: bool) -> DbResult<()> {
        self.conn().execute(
            "UPDATE claims SET last_checked_at = ?2, timer_checks = timer_checks + ?3 WHERE clinic_claim_id = ?1",
            params![clinic_claim_id, now.to_string(), i64::from(timer)],
        )?;
        Ok(())
    }

    pub fn viewed(&self, clinic_claim_id: &str) -> DbResult<()> {
        self.conn().execute(
            "UPDATE claims SET views = views + 1 WHERE clinic_claim_id = ?1",
            [clinic_claim_id],
        )?;
        Ok(())
    }

    pub fn get(&self, clinic_claim_id: &str) -> DbResult<Option<ClinicClaim>> {
        let conn = self.conn();
        let sql = format!("SELECT {COLUMNS} FROM claims WHERE clinic_claim_id = ?1");
        Ok(conn.query_row(&sql, [clinic_claim_id], claim).optional()?)
    }

    /// Newest first.
    pub fn list(&self, limit: usize) -> DbResult<Vec<ClinicClaim>> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {COLUMNS} FROM claims ORDER BY submitted_at DESC, clinic_claim_id DESC LIMIT ?1"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], claim)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Claims sent to the insurer and not yet final there, as far as the clinic knows.
    pub fn pending(&self) -> DbResult<Vec<ClinicClaim>> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {COLUMNS} FROM claims WHERE insurer_claim_id IS NOT NULL
             AND status NOT IN ('approved', 'partial', 'denied') ORDER BY clinic_claim_id"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], claim)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (all claims, final ones).
    pub fn counts(&self) -> DbResult<(u64, u64)> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE status IN ('approved', 'partial', 'denied')) FROM claims",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(version: u32, status: &str) -> StatusUpdate {
        StatusUpdate {
            clinic_claim_id: "CL-1".into(),
            insurer_claim_id: "clm-000001".into(),
            status: status.into(),
            version,
            review_mode: Some("manual".into()),
            decision_due_at: None,
            decided_at: (status != "in_review").then(|| "2026-03-10T09:00:00Z".parse().unwrap()),
            amount_approved: None,
        }
    }

    #[test]
    fn stale_and_duplicate_updates_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("clinic.db")).unwrap();
        let t = |s: &str| -> Timestamp { s.parse().unwrap() };
        db.add_claim(
            "CL-1",
            "pat-1",
            Money::parse("100").unwrap(),
            t("2026-03-02T07:00:00Z"),
        )
        .unwrap();
        assert!(
            db.apply(&update(1, "in_review"), "poll", t("2026-03-02T07:00:01Z"))
                .unwrap()
        );
        assert!(
            db.apply(&update(2, "approved"), "webhook", t("2026-03-10T09:00:01Z"))
                .unwrap()
        );
        assert!(
            !db.apply(&update(2, "approved"), "webhook", t("2026-03-10T09:05:00Z"))
                .unwrap(),
            "a duplicate"
        );
        assert!(
            !db.apply(
                &update(1, "in_review"),
                "webhook",
                t("2026-03-11T00:00:00Z")
            )
            .unwrap(),
            "an older version"
        );
        let claim = db.get("CL-1").unwrap().unwrap();
        assert_eq!((claim.status.as_str(), claim.version), ("approved", 2));
        assert_eq!(claim.learned_at, Some(t("2026-03-10T09:00:01Z")));
        assert_eq!(claim.learned_via.as_deref(), Some("webhook"));
        assert!(db.pending().unwrap().is_empty());
        assert_eq!(db.counts().unwrap(), (1, 1));
    }
}
