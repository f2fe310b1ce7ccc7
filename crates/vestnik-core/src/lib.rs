//! Vestnik's pure domain: ids, validated names, the retry schedule, delivery decisions and SSRF
//! address classes. Nothing here does I/O or reads a clock.

pub mod delivery;
pub mod ids;
pub mod names;
pub mod retry;
pub mod ssrf;

pub use delivery::{AttemptResult, DeliveryStatus, NextStep, OutcomeCode, TriggerType};
pub use ids::{AppId, AttemptId, EndpointId, MessageId, RequestId, SourceId};
pub use names::{Channel, EndpointUrl, EventTypeName, NameError, Uid};
pub use retry::RetrySchedule;
