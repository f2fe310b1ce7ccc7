//! Tests of the `vestnik` binary as a real process.

mod crash;
mod inbound_crash;
mod process;
mod simulate;
