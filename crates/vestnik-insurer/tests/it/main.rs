//! The insurer over real loopback HTTP: its claims API, long-poll, reviewers' decisions, and what
//! it publishes to a (recording) Vestnik.

mod api;
