//! Integration tests of the management API, the delivery pipeline and the inbound gateway over
//! real loopback HTTP, each on a fresh SQLite file.

mod harness;

mod bad_input;
mod delivery;
mod inbound;
mod management;
