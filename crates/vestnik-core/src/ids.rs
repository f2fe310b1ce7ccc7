//! Prefixed, time-sortable ids (`app_…`, `ep_…`, `msg_…`, `atmpt_…`, `src_…`, `req_…`): a ULID after the prefix, so
//! ids sort by creation time and serve directly as pagination cursors.

use std::fmt;

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal) => {
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id whose ULID embeds `unix_ms` (or the last time used, if the clock stepped
            /// back), so ids sort by creation time, within a millisecond too.
            pub fn generate(unix_ms: u64) -> Self {
                let (time_ms, random_part) = monotonic_parts(unix_ms);
                let ulid = ulid::Ulid::from_parts(time_ms, random_part);
                Self(format!("{}{}", $prefix, ulid))
            }

            /// Accepts a string only if it has this id's prefix followed by a valid ULID.
            pub fn parse(text: &str) -> Option<Self> {
                let rest = text.strip_prefix($prefix)?;
                ulid::Ulid::from_string(rest).ok()?;
                Some(Self(text.to_owned()))
            }

            /// Wraps a value that came from our own storage, where it was validated on the way in.
            pub fn from_trusted(text: String) -> Self {
                Self(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(AppId, "app_");
prefixed_id!(EndpointId, "ep_");
prefixed_id!(MessageId, "msg_");
prefixed_id!(AttemptId, "atmpt_");
prefixed_id!(SourceId, "src_");
prefixed_id!(RequestId, "req_");

const RANDOM_PART_MASK: u128 = (1u128 << 80) - 1;

/// The millisecond and random part of the last id this process made.
static LAST_GENERATED: std::sync::Mutex<(u64, u128)> = std::sync::Mutex::new((0, 0));

/// The ULID's time and 80-bit random part, never going backwards within this process (the ULID
/// spec's monotonic mode): pagination lists items in id order, so two items created in the same
/// millisecond, or by threads that read the clock a moment apart, must keep the order they were
/// made in. A clock that steps back keeps the last time until it catches up.
fn monotonic_parts(unix_ms: u64) -> (u64, u128) {
    let mut last = LAST_GENERATED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let next = if unix_ms <= last.0 && last.1 < RANDOM_PART_MASK {
        (last.0, last.1 + 1)
    } else {
        (
            unix_ms.max(last.0 + 1),
            rand::random::<u128>() & RANDOM_PART_MASK,
        )
    };
    *last = next;
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_time() {
        let earlier = MessageId::generate(1_000);
        let later = MessageId::generate(2_000);
        assert!(earlier.as_str().starts_with("msg_"));
        assert!(earlier < later);
        assert_eq!(MessageId::parse(earlier.as_str()), Some(earlier.clone()));
        assert_eq!(MessageId::parse("ep_01ARZ3NDEKTSV4RRFFQ69G5FAV"), None);
        assert_eq!(MessageId::parse("msg_not-a-ulid"), None);
    }

    #[test]
    fn ids_generated_in_the_same_millisecond_differ() {
        let ids: std::collections::HashSet<_> =
            (0..10_000).map(|_| EndpointId::generate(42)).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn ids_generated_in_the_same_millisecond_keep_their_order() {
        let ids: Vec<_> = (0..1_000)
            .map(|n| AppId::generate(if n % 2 == 0 { 7 } else { 6 }))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
