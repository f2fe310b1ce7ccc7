//! The strategy simulator: the same claims workload played under polling, long polling,
//! on-view and webhooks, in virtual time with a seeded random stream, reporting what each costs
//! the insurer and how late the clinic learns. Pure: no clock, no I/O.

pub mod rng;
pub mod sim;
pub mod workload;
