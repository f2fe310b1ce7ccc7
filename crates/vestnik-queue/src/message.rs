//! What travels on the dispatch queue: a task's key and the relay lease it was queued under,
//! never the payload (that stays in the database, where retention and expunging apply).

use serde::{Deserialize, Serialize};
use vestnik_core::{EndpointId, MessageId};
use vestnik_store::QueuedTask;

#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    msg: String,
    endpoint: String,
    lease: i64,
}

/// The queue message's body for `task`.
pub fn encode(task: &QueuedTask) -> Vec<u8> {
    serde_json::to_vec(&Wire {
        msg: task.msg_id.as_str().to_owned(),
        endpoint: task.endpoint_id.as_str().to_owned(),
        lease: task.lease_until,
    })
    .expect("a struct of strings and an integer serializes")
}

/// The task a queue message names, or why it names none (someone else published on our queue).
pub fn decode(body: &[u8]) -> Result<QueuedTask, String> {
    let wire: Wire = serde_json::from_slice(body).map_err(|err| err.to_string())?;
    Ok(QueuedTask {
        msg_id: MessageId::parse(&wire.msg)
            .ok_or_else(|| format!("{:?} is not a message id", wire.msg))?,
        endpoint_id: EndpointId::parse(&wire.endpoint)
            .ok_or_else(|| format!("{:?} is not an endpoint id", wire.endpoint))?,
        lease_until: wire.lease,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_survives_the_trip_and_foreign_bodies_are_refused() {
        let task = QueuedTask {
            msg_id: MessageId::generate(1_700_000_000_000),
            endpoint_id: EndpointId::generate(1_700_000_000_000),
            lease_until: 1_700_000_300_000,
        };
        assert_eq!(decode(&encode(&task)).unwrap(), task);
        assert!(decode(b"hello").is_err());
        assert!(decode(br#"{"msg":"ep_1","endpoint":"ep_1","lease":1}"#).is_err());
    }
}
