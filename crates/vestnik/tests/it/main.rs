//! Tests of the `vestnik` binary as a real process.

mod crash;
mod inbound_crash;
mod nodes;
mod process;
mod simulate;
