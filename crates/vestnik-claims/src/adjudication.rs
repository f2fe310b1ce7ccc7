//! How the insurer decides, at random but reproducibly (a seeded RNG is passed in):
//!
//! - **Routing.** A claim goes to manual review with probability `0.25 + 0.05 × min(previous
//!   claims, 6)`, plus 0.20 if the amount is over 50,000 RUB and 0.10 if the insured's previous
//!   claims total over 200,000 RUB, capped at 0.90. A first, small claim is reviewed by hand one
//!   time in four; a frequent, expensive claimant almost always.
//! - **Automatic decisions** come 100 ms – 5 s after submission: approved 70 %, partial 20 %
//!   (one or more lines, never all, not covered), denied 10 %.
//! - **Manual decisions** are due on a business day 1–20 business days after receipt (uniform),
//!   at a time within the insurer's working hours (09:00–18:00 Moscow time), unless a reviewer
//!   decides first; the outcome then has the same odds as above.

use crate::calendar::BusinessCalendar;
use crate::model::{ClaimSubmission, Decision, LineDecision, ReviewMode};
use crate::money::Money;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rand::Rng;
use std::time::Duration;

/// The insured person's record with this insurer before this claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct History {
    pub previous_claims: u32,
    pub previous_amount: Money,
}

/// The review limit: 20 business days.
pub const REVIEW_BUSINESS_DAYS: u32 = 20;
/// Amounts above this are more often reviewed by hand (kopecks: 50,000 RUB).
const LARGE_CLAIM: Money = Money::from_kopecks(5_000_000);
/// A history above this total is more often reviewed by hand (200,000 RUB).
const LARGE_HISTORY: Money = Money::from_kopecks(20_000_000);

pub fn manual_review_probability(history: History, amount: Money) -> f64 {
    let mut odds = 0.25 + 0.05 * f64::from(history.previous_claims.min(6));
    if amount > LARGE_CLAIM {
        odds += 0.20;
    }
    if history.previous_amount > LARGE_HISTORY {
        odds += 0.10;
    }
    odds.min(0.90)
}

pub fn route(rng: &mut impl Rng, history: History, amount: Money) -> ReviewMode {
    if rng.random_bool(manual_review_probability(history, amount)) {
        ReviewMode::Manual
    } else {
        ReviewMode::Auto
    }
}

/// How long automatic adjudication takes.
pub fn automatic_delay(rng: &mut impl Rng) -> Duration {
    Duration::from_millis(rng.random_range(100..=5_000))
}

/// When a manual review finishes: 1–20 business days after `received`, within working hours.
pub fn manual_decision_at(
    rng: &mut impl Rng,
    calendar: &BusinessCalendar,
    received: Timestamp,
) -> Timestamp {
    let moscow = moscow();
    let day = calendar.add_business_days(
        received.to_zoned_datetime(moscow.clone()).date(),
        rng.random_range(1..=REVIEW_BUSINESS_DAYS),
    );
    let minute = rng.random_range(9 * 60..18 * 60);
    day.at((minute / 60) as i8, (minute % 60) as i8, 0, 0)
        .to_zoned_datetime(moscow)
        .expect("a Moscow time exists")
        .timestamp()
}

/// The last moment of the review period: the end of the 20th business day (Moscow time).
pub fn decision_due_at(calendar: &BusinessCalendar, received: Timestamp) -> Timestamp {
    let moscow = moscow();
    let day = calendar.add_business_days(
        received.to_zoned_datetime(moscow.clone()).date(),
        REVIEW_BUSINESS_DAYS,
    );
    day.at(23, 59, 59, 0)
        .to_zoned_datetime(moscow)
        .expect("a Moscow time exists")
        .timestamp()
}

/// The insurer's legal time zone: Moscow is UTC+3 all year (no daylight saving since 2014), so
/// a fixed offset is exact and needs no time-zone database.
pub fn moscow() -> TimeZone {
    TimeZone::fixed(jiff::tz::offset(3))
}

/// An outcome at the documented odds, with per-line amounts and reasons.
pub fn decide(rng: &mut impl Rng, claim: &ClaimSubmission, decided_by: &str) -> Decision {
    let submitted: Vec<Money> = claim
        .lines
        .iter()
        .map(|line| line.net().unwrap_or(Money::ZERO))
        .collect();
    let roll = rng.random_range(0..100);
    let covered: Vec<bool> = if roll < 70 {
        vec![true; submitted.len()]
    } else if roll < 90 && submitted.len() > 1 {
        // Partial: leave out a random non-empty, proper subset of the lines.
        let mut covered: Vec<bool> = (0..submitted.len()).map(|_| rng.random_bool(0.5)).collect();
        let pick = rng.random_range(0..covered.len());
        if covered.iter().all(|c| *c) {
            covered[pick] = false;
        } else if covered.iter().all(|c| !*c) {
            covered[pick] = true;
        }
        covered
    } else if roll < 90 {
        // Partial on a single line: approve part of it.
        return Decision {
            lines: vec![LineDecision {
                sequence: 1,
                submitted: submitted[0],
                approved: Money::from_kopecks(submitted[0].kopecks() / 2),
                reason: Some("ar002: plan limit reached".into()),
            }],
            reason: Some("Approved up to the plan limit".into()),
            decided_by: decided_by.to_owned(),
        };
    } else {
        vec![false; submitted.len()]
    };
    let lines = submitted
        .iter()
        .zip(&covered)
        .enumerate()
        .map(|(index, (amount, covered))| LineDecision {
            sequence: index as u32 + 1,
            submitted: *amount,
            approved: if *covered { *amount } else { Money::ZERO },
            reason: (!covered).then(|| "ar001: not covered by the policy programme".to_owned()),
        })
        .collect::<Vec<_>>();
    let reason = if covered.iter().all(|c| !*c) {
        Some("The services are not covered by the policy".to_owned())
    } else if covered.iter().any(|c| !*c) {
        Some("Some services are not covered by the policy programme".to_owned())
    } else {
        None
    };
    Decision {
        lines,
        reason,
        decided_by: decided_by.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClaimStatus, ServiceLine};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn claim(lines: usize, price: &str) -> ClaimSubmission {
        let unit_price = Money::parse(price).unwrap();
        ClaimSubmission {
            clinic_id: "clinic-7".into(),
            clinic_claim_id: "CL-1".into(),
            patient_ref: "pat-1".into(),
            policy_number: "P-1".into(),
            lines: (0..lines)
                .map(|n| ServiceLine {
                    code: format!("svc-{n}"),
                    description: String::new(),
                    quantity: 1,
                    unit_price,
                })
                .collect(),
            total: (0..lines).map(|_| unit_price).sum(),
        }
    }

    #[test]
    fn the_odds_shift_with_history_and_amount_as_documented() {
        let small = Money::parse("3000").unwrap();
        let large = Money::parse("80000").unwrap();
        let first = History::default();
        let frequent = History {
            previous_claims: 10,
            previous_amount: Money::parse("250000").unwrap(),
        };
        assert!((manual_review_probability(first, small) - 0.25).abs() < 1e-9);
        assert!((manual_review_probability(first, large) - 0.45).abs() < 1e-9);
        assert!((manual_review_probability(frequent, small) - 0.65).abs() < 1e-9);
        assert!((manual_review_probability(frequent, large) - 0.85).abs() < 1e-9);
        // Sampled: the share routed to manual review follows the odds.
        let mut rng = StdRng::seed_from_u64(7);
        let share = |rng: &mut StdRng, history, amount| {
            (0..10_000)
                .filter(|_| route(rng, history, amount) == ReviewMode::Manual)
                .count() as f64
                / 10_000.0
        };
        assert!((share(&mut rng, first, small) - 0.25).abs() < 0.02);
        assert!((share(&mut rng, frequent, large) - 0.85).abs() < 0.02);
    }

    #[test]
    fn the_same_seed_gives_the_same_adjudication() {
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let calendar = BusinessCalendar::russia();
            let received: Timestamp = "2025-10-23T07:15:00Z".parse().unwrap();
            (0..50)
                .map(|n| {
                    let c = claim(1 + n % 3, "1500");
                    (
                        route(&mut rng, History::default(), c.total),
                        automatic_delay(&mut rng),
                        manual_decision_at(&mut rng, &calendar, received),
                        decide(&mut rng, &c, "auto"),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn decisions_are_consistent_and_within_their_windows() {
        let mut rng = StdRng::seed_from_u64(1);
        let calendar = BusinessCalendar::russia();
        let received: Timestamp = "2025-12-24T10:00:00Z".parse().unwrap();
        let due = decision_due_at(&calendar, received);
        assert_eq!(
            due.to_zoned_datetime(moscow()).date(),
            "2026-02-02".parse().unwrap()
        );
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2_000 {
            let at = manual_decision_at(&mut rng, &calendar, received);
            assert!(at > received && at <= due);
            let local = at.to_zoned_datetime(moscow());
            assert!(calendar.is_business_day(local.date()));
            assert!((9..18).contains(&local.hour()));
            let delay = automatic_delay(&mut rng);
            assert!(Duration::from_millis(100) <= delay && delay <= Duration::from_secs(5));
            let c = claim(1 + rng.random_range(0..4), "2500");
            let decision = decide(&mut rng, &c, "auto");
            assert_eq!(decision.check_against(&c), Ok(()));
            seen.insert(decision.status());
        }
        assert_eq!(
            seen.len(),
            3,
            "approved, partial and denied all occur: {seen:?}"
        );
        assert!(!seen.contains(&ClaimStatus::InReview));
    }
}
