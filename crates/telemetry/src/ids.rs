//! Trace ids that begin with the time they were made.
//!
//! A store that indexes logs and spans by trace id (log-service, Tempo, Elasticsearch) inserts
//! each new id where it sorts. Wholly random ids land all over the index, so every commit
//! rewrites a page per trace; ids that begin with their creation time land at the index's end,
//! in pages a commit shares with its neighbours. The layout is UUIDv7's and AWS X-Ray's: the
//! first 6 bytes are the Unix time in milliseconds (big-endian), the last 10 are random, which
//! keeps the right-most 7 bytes random as W3C Trace Context Level 2 asks of a random trace id.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

/// Bytes of the trace id that hold the time.
const TIME_BYTES: usize = 6;

/// Trace ids in time order (to the millisecond), random span ids.
#[derive(Debug, Default)]
pub(crate) struct TimeOrderedIds {
    random: RandomIdGenerator,
}

impl TimeOrderedIds {
    /// The trace id made at `unix_ms` from the random bytes of `random`.
    fn trace_id_at(unix_ms: u64, random: TraceId) -> TraceId {
        let mut id = random.to_bytes();
        id[..TIME_BYTES].copy_from_slice(&unix_ms.to_be_bytes()[8 - TIME_BYTES..]);
        TraceId::from_bytes(id)
    }
}

impl IdGenerator for TimeOrderedIds {
    fn new_trace_id(&self) -> TraceId {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self::trace_id_at(unix_ms, self.random.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.random.new_span_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_trace_ids_sort_after_earlier_ones() {
        let ids = TimeOrderedIds::default();
        let first = ids.new_trace_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = ids.new_trace_id();
        assert!(
            first.to_string() < second.to_string(),
            "{first} then {second}"
        );
        assert_ne!(first, TraceId::INVALID);
    }

    #[test]
    fn the_time_fills_the_first_six_bytes_and_the_rest_stays_random() {
        let random = TraceId::from_hex("0123456789abcdef0123456789abcdef").unwrap();
        let id = TimeOrderedIds::trace_id_at(0x0194_d6c3_5a10, random);
        assert_eq!(id.to_string(), "0194d6c35a10cdef0123456789abcdef");
    }

    #[test]
    fn two_ids_of_one_millisecond_differ() {
        let ids = TimeOrderedIds::default();
        let made: std::collections::HashSet<_> = (0..1000).map(|_| ids.new_trace_id()).collect();
        assert_eq!(made.len(), 1000);
    }
}
