//! Receiving webhooks safely: a source's configuration ([`config`]), verification presets
//! ([`verify`]), what a request says about itself ([`extract`]) and the verify → persist →
//! dedup → hand-on flow ([`receive`]). Everything but `receive` is pure.

pub mod config;
pub mod extract;
pub mod receive;
pub mod verify;

pub use config::{ConfigError, EventIdRule, Scheme, SourceConfig};
pub use receive::{InboundSettings, Receipt, Received, receive, record_rejection, valid_secrets};
pub use verify::{Rejection, RequestParts};
