//! Claims as the insurer receives and decides them: the submission (validated), the review mode,
//! the statuses a claim goes through and the decision with its per-line amounts.

use crate::money::Money;
use serde::{Deserialize, Serialize};

/// Most service lines one claim may carry.
pub const MAX_LINES: usize = 100;

/// One service the clinic provided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLine {
    pub code: String,
    #[serde(default)]
    pub description: String,
    pub quantity: u32,
    pub unit_price: Money,
}

impl ServiceLine {
    pub fn net(&self) -> Option<Money> {
        self.unit_price.checked_mul(self.quantity)
    }
}

/// What the clinic sends (`POST /claims`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSubmission {
    pub clinic_id: String,
    /// The clinic's own id of the claim: the idempotency key, unique per clinic.
    pub clinic_claim_id: String,
    /// A pseudonymous patient reference (no personal data travels in events).
    pub patient_ref: String,
    pub policy_number: String,
    pub lines: Vec<ServiceLine>,
    pub total: Money,
}

/// A field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn check_id(field: &str, value: &str) -> Result<(), Invalid> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(invalid(field, "1 to 64 characters of [A-Za-z0-9-_./]"))
    }
}

impl ClaimSubmission {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_id("clinic_id", &self.clinic_id)?;
        check_id("clinic_claim_id", &self.clinic_claim_id)?;
        check_id("patient_ref", &self.patient_ref)?;
        check_id("policy_number", &self.policy_number)?;
        if self.lines.is_empty() || self.lines.len() > MAX_LINES {
            return Err(invalid("lines", format!("1 to {MAX_LINES} service lines")));
        }
        let mut sum = Money::ZERO;
        for (index, line) in self.lines.iter().enumerate() {
            check_id(&format!("lines[{index}].code"), &line.code)?;
            if line.description.len() > 256 {
                return Err(invalid(
                    format!("lines[{index}].description"),
                    "at most 256 characters",
                ));
            }
            if !(1..=10_000).contains(&line.quantity) {
                return Err(invalid(format!("lines[{index}].quantity"), "1 to 10000"));
            }
            if line.unit_price == Money::ZERO {
                return Err(invalid(
                    format!("lines[{index}].unit_price"),
                    "must be above zero",
                ));
            }
            sum = line
                .net()
                .and_then(|net| sum.checked_add(net))
                .ok_or_else(|| invalid("total", "too large"))?;
        }
        if sum != self.total {
            return Err(invalid(
                "total",
                format!("is {} but the lines add up to {sum}", self.total),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewMode {
    Auto,
    Manual,
}

/// Where a claim stands. `Approved`, `Partial` and `Denied` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    Received,
    InReview,
    Approved,
    Partial,
    Denied,
}

impl ClaimStatus {
    pub const ALL: [Self; 5] = [
        Self::Received,
        Self::InReview,
        Self::Approved,
        Self::Partial,
        Self::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::InReview => "in_review",
            Self::Approved => "approved",
            Self::Partial => "partial",
            Self::Denied => "denied",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Approved | Self::Partial | Self::Denied)
    }
}

/// The decision on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineDecision {
    pub sequence: u32,
    pub submitted: Money,
    pub approved: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A decision, whose kind follows from its amounts (so the two can never disagree): all
/// approved → approved, nothing → denied, anything between → partial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub lines: Vec<LineDecision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `auto`, or `reviewer:<name>` for a manual decision.
    pub decided_by: String,
}

impl Decision {
    pub fn submitted(&self) -> Money {
        self.lines.iter().map(|line| line.submitted).sum()
    }

    pub fn approved(&self) -> Money {
        self.lines.iter().map(|line| line.approved).sum()
    }

    pub fn status(&self) -> ClaimStatus {
        let approved = self.approved();
        if approved == Money::ZERO {
            ClaimStatus::Denied
        } else if approved == self.submitted() {
            ClaimStatus::Approved
        } else {
            ClaimStatus::Partial
        }
    }

    /// Checks a reviewer's decision against the claim: one entry per line, none above what was
    /// submitted, and a reason wherever something is withheld.
    pub fn check_against(&self, claim: &ClaimSubmission) -> Result<(), Invalid> {
        if self.lines.len() != claim.lines.len() {
            return Err(invalid(
                "lines",
                format!("one decision per line ({})", claim.lines.len()),
            ));
        }
        for (index, (decided, line)) in self.lines.iter().zip(&claim.lines).enumerate() {
            let submitted = line.net().unwrap_or(Money::ZERO);
            if decided.sequence != index as u32 + 1 || decided.submitted != submitted {
                return Err(invalid(
                    format!("lines[{index}]"),
                    "does not match the claim's line",
                ));
            }
            if decided.approved > submitted {
                return Err(invalid(
                    format!("lines[{index}].approved"),
                    "above the submitted amount",
                ));
            }
            if decided.approved < submitted && decided.reason.as_deref().is_none_or(str::is_empty) {
                return Err(invalid(
                    format!("lines[{index}].reason"),
                    "say why it is not approved in full",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> ClaimSubmission {
        ClaimSubmission {
            clinic_id: "clinic-7".into(),
            clinic_claim_id: "CL-2025-000123".into(),
            patient_ref: "pat-42".into(),
            policy_number: "DMS-555".into(),
            lines: vec![
                ServiceLine {
                    code: "consult-therapist".into(),
                    description: "Therapist consultation".into(),
                    quantity: 1,
                    unit_price: Money::parse("2500").unwrap(),
                },
                ServiceLine {
                    code: "xray-chest".into(),
                    description: "Chest X-ray".into(),
                    quantity: 1,
                    unit_price: Money::parse("3000").unwrap(),
                },
            ],
            total: Money::parse("5500.00").unwrap(),
        }
    }

    #[test]
    fn a_claim_must_add_up_and_name_itself_properly() {
        assert_eq!(sample().validate(), Ok(()));
        let mut wrong_total = sample();
        wrong_total.total = Money::parse("5000").unwrap();
        assert_eq!(wrong_total.validate().unwrap_err().field, "total");
        let mut no_lines = sample();
        no_lines.lines.clear();
        assert_eq!(no_lines.validate().unwrap_err().field, "lines");
        let mut bad_id = sample();
        bad_id.clinic_claim_id = "has space".into();
        assert_eq!(bad_id.validate().unwrap_err().field, "clinic_claim_id");
        let mut zero = sample();
        zero.lines[0].quantity = 0;
        assert_eq!(zero.validate().unwrap_err().field, "lines[0].quantity");
    }

    #[test]
    fn the_decision_kind_follows_the_amounts() {
        let claim = sample();
        let line =
            |sequence: u32, submitted: &str, approved: &str, reason: Option<&str>| LineDecision {
                sequence,
                submitted: Money::parse(submitted).unwrap(),
                approved: Money::parse(approved).unwrap(),
                reason: reason.map(str::to_owned),
            };
        let decide = |lines| Decision {
            lines,
            reason: None,
            decided_by: "auto".into(),
        };
        let full = decide(vec![
            line(1, "2500", "2500", None),
            line(2, "3000", "3000", None),
        ]);
        assert_eq!(
            (full.status(), full.check_against(&claim)),
            (ClaimStatus::Approved, Ok(()))
        );
        let partial = decide(vec![
            line(1, "2500", "2500", None),
            line(2, "3000", "0", Some("ar001")),
        ]);
        assert_eq!(partial.status(), ClaimStatus::Partial);
        assert_eq!(partial.approved().to_string(), "2500.00");
        let denied = decide(vec![
            line(1, "2500", "0", Some("x")),
            line(2, "3000", "0", Some("x")),
        ]);
        assert_eq!(denied.status(), ClaimStatus::Denied);
        let unexplained = decide(vec![
            line(1, "2500", "2500", None),
            line(2, "3000", "100", None),
        ]);
        assert_eq!(
            unexplained.check_against(&claim).unwrap_err().field,
            "lines[1].reason"
        );
        let too_much = decide(vec![
            line(1, "2500", "2600", None),
            line(2, "3000", "3000", None),
        ]);
        assert!(too_much.check_against(&claim).is_err());
    }
}
