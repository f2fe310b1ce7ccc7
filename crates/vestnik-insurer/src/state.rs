//! The insurer's claims and what happens to them: receipt (idempotent on the clinic's claim id),
//! routing, scheduled automatic or simulated-manual decisions, reviewers' decisions, and a change
//! signal that long-polls and pages wait on. All times are simulated (the scaled clock).

use jiff::Timestamp;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tokio::sync::watch;
use vestnik_claims::adjudication::{self, History};
use vestnik_claims::calendar::BusinessCalendar;
use vestnik_claims::clock::ScaledClock;
use vestnik_claims::model::{ClaimStatus, ClaimSubmission, Decision, Invalid, ReviewMode};
use vestnik_claims::payload::ClaimRecord;

/// What a submission led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// A new claim, and when (simulated) its decision is scheduled.
    New(ClaimRecord, Timestamp),
    /// The clinic sent this claim id before: the existing claim.
    Existing(ClaimRecord),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClaimError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("no claim {0}")]
    NotFound(String),
    #[error("claim {0} is already decided")]
    AlreadyDecided(String),
}

struct Book {
    claims: BTreeMap<String, ClaimRecord>,
    by_clinic_key: HashMap<(String, String), String>,
    history: HashMap<String, History>,
    rng: StdRng,
    issued: u64,
}

pub struct Claims {
    book: Mutex<Book>,
    calendar: BusinessCalendar,
    clock: ScaledClock,
    changes: watch::Sender<u64>,
}

impl Claims {
    pub fn new(seed: u64, clock: ScaledClock) -> Self {
        Self {
            book: Mutex::new(Book {
                claims: BTreeMap::new(),
                by_clinic_key: HashMap::new(),
                history: HashMap::new(),
                rng: StdRng::seed_from_u64(seed),
                issued: 0,
            }),
            calendar: BusinessCalendar::russia(),
            clock,
            changes: watch::channel(0).0,
        }
    }

    pub fn clock(&self) -> &ScaledClock {
        &self.clock
    }

    /// A receiver that sees a new value after every change to any claim.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book
            .lock()
            .expect("the claims book lock is never poisoned")
    }

    /// Receives a claim at simulated time `now`: routes it and schedules its decision.
    pub fn submit(
        &self,
        submission: ClaimSubmission,
        now: Timestamp,
    ) -> Result<Submitted, ClaimError> {
        submission.validate()?;
        let key = (
            submission.clinic_id.clone(),
            submission.clinic_claim_id.clone(),
        );
        let mut book = self.book();
        if let Some(id) = book.by_clinic_key.get(&key) {
            return Ok(Submitted::Existing(book.claims[id].clone()));
        }
        let history = book
            .history
            .get(&submission.policy_number)
            .copied()
            .unwrap_or_default();
        let mode = adjudication::route(&mut book.rng, history, submission.total);
        let decide_at = match mode {
            ReviewMode::Auto => {
                let delay = adjudication::automatic_delay(&mut book.rng);
                now.checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
                    .unwrap_or(now)
            }
            ReviewMode::Manual => {
                adjudication::manual_decision_at(&mut book.rng, &self.calendar, now)
            }
        };
        book.issued += 1;
        // `clm-NNNNNN`: also a valid FHIR resource id (letters, digits, '-' and '.').
        let id = format!("clm-{:06}", book.issued);
        let entry = book
            .history
            .entry(submission.policy_number.clone())
            .or_default();
        entry.previous_claims += 1;
        entry.previous_amount = entry.previous_amount + submission.total;
        let record = ClaimRecord {
            id: id.clone(),
            status: ClaimStatus::InReview,
            review_mode: mode,
            version: 1,
            submitted_at: now,
            decision_due_at: (mode == ReviewMode::Manual)
                .then(|| adjudication::decision_due_at(&self.calendar, now)),
            decision: None,
            decided_at: None,
            submission,
        };
        book.by_clinic_key.insert(key, id.clone());
        book.claims.insert(id, record.clone());
        drop(book);
        self.changed();
        Ok(Submitted::New(record, decide_at))
    }

    /// The scheduled decision: at the documented odds, unless a reviewer decided first (then
    /// `None`).
    pub fn decide_scheduled(&self, id: &str, now: Timestamp) -> Option<ClaimRecord> {
        let mut book = self.book();
        let book = &mut *book;
        let record = book.claims.get_mut(id)?;
        if record.status.is_final() {
            return None;
        }
        let decided_by = match record.review_mode {
            ReviewMode::Auto => "auto",
            ReviewMode::Manual => "reviewer:simulated",
        };
        let decision = adjudication::decide(&mut book.rng, &record.submission, decided_by);
        let updated = apply(record, decision, now);
        self.changed();
        Some(updated)
    }

    /// A reviewer's decision (checked against the claim).
    pub fn decide_by_hand(
        &self,
        id: &str,
        decision: Decision,
        now: Timestamp,
    ) -> Result<ClaimRecord, ClaimError> {
        let mut book = self.book();
        let record = book
            .claims
            .get_mut(id)
            .ok_or_else(|| ClaimError::NotFound(id.to_owned()))?;
        if record.status.is_final() {
            return Err(ClaimError::AlreadyDecided(id.to_owned()));
        }
        decision.check_against(&record.submission)?;
        let updated = apply(record, decision, now);
        drop(book);
        self.changed();
        Ok(updated)
    }

    /// The insured person's record so far (it sets the odds of manual review).
    pub fn history(&self, policy_number: &str) -> History {
        self.book()
            .history
            .get(policy_number)
            .copied()
            .unwrap_or_default()
    }

    pub fn get(&self, id: &str) -> Option<ClaimRecord> {
        self.book().claims.get(id).cloned()
    }

    /// Claims in id order, optionally of one status and one clinic.
    pub fn list(&self, status: Option<ClaimStatus>, clinic: Option<&str>) -> Vec<ClaimRecord> {
        self.book()
            .claims
            .values()
            .filter(|c| status.is_none_or(|s| c.status == s))
            .filter(|c| clinic.is_none_or(|id| c.submission.clinic_id == id))
            .cloned()
            .collect()
    }
}

fn apply(record: &mut ClaimRecord, decision: Decision, now: Timestamp) -> ClaimRecord {
    record.status = decision.status();
    record.decision = Some(decision);
    record.decided_at = Some(now);
    record.version += 1;
    record.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vestnik_claims::model::{LineDecision, ServiceLine};
    use vestnik_claims::money::Money;

    fn claims(seed: u64) -> Claims {
        let start = "2026-03-02T07:00:00Z".parse().unwrap();
        Claims::new(seed, ScaledClock::new(start, 0, 1.0).unwrap())
    }

    fn submission(clinic_claim_id: &str) -> ClaimSubmission {
        ClaimSubmission {
            clinic_id: "clinic-7".into(),
            clinic_claim_id: clinic_claim_id.into(),
            patient_ref: "pat-1".into(),
            policy_number: "P-1".into(),
            lines: vec![ServiceLine {
                code: "consult".into(),
                description: String::new(),
                quantity: 2,
                unit_price: Money::parse("1500").unwrap(),
            }],
            total: Money::parse("3000").unwrap(),
        }
    }

    #[test]
    fn a_claim_id_is_received_once_and_decided_once() {
        let claims = claims(3);
        let now = "2026-03-02T07:00:00Z".parse().unwrap();
        let Submitted::New(record, decide_at) = claims.submit(submission("A"), now).unwrap() else {
            panic!("a new claim")
        };
        assert!(decide_at > now);
        assert_eq!((record.status, record.version), (ClaimStatus::InReview, 1));
        assert_eq!(
            claims.submit(submission("A"), now).unwrap(),
            Submitted::Existing(record.clone())
        );
        let decided = claims.decide_scheduled(&record.id, decide_at).unwrap();
        assert!(decided.status.is_final());
        assert_eq!(decided.version, 2);
        assert_eq!(
            claims.decide_scheduled(&record.id, decide_at),
            None,
            "decided once"
        );
        let by_hand = Decision {
            lines: vec![LineDecision {
                sequence: 1,
                submitted: Money::parse("3000").unwrap(),
                approved: Money::parse("3000").unwrap(),
                reason: None,
            }],
            reason: None,
            decided_by: "reviewer:anna".into(),
        };
        assert_eq!(
            claims.decide_by_hand(&record.id, by_hand, now),
            Err(ClaimError::AlreadyDecided(record.id.clone()))
        );
    }

    #[test]
    fn the_insureds_history_accumulates_and_the_seed_fixes_the_routing() {
        let run = |seed| {
            let claims = claims(seed);
            let now = "2026-03-02T07:00:00Z".parse().unwrap();
            let routed = (0..40)
                .map(
                    |n| match claims.submit(submission(&format!("C-{n}")), now).unwrap() {
                        Submitted::New(record, at) => (record.review_mode, at),
                        Submitted::Existing(_) => unreachable!(),
                    },
                )
                .collect::<Vec<_>>();
            (routed, claims.history("P-1"))
        };
        let (routed, history) = run(11);
        assert_eq!(run(11).0, routed, "same seed, same routing and timing");
        assert_ne!(run(12).0, routed);
        assert_eq!(
            history.previous_claims, 40,
            "every claim counts toward the odds of the next"
        );
        assert_eq!(history.previous_amount.to_string(), "120000.00");
    }
}
