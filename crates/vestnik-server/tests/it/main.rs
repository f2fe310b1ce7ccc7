//! Integration tests of the management API and the delivery pipeline over real loopback HTTP,
//! each on a fresh SQLite file.

mod harness;

mod bad_input;
mod delivery;
mod management;
