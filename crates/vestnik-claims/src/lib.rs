//! The reference integration's domain, pure: the production calendar, money, claims and their
//! adjudication, the scaled clock, and the `claim.status_changed` payloads.

pub mod adjudication;
pub mod calendar;
pub mod clock;
pub mod html;
pub mod model;
pub mod money;
pub mod payload;
