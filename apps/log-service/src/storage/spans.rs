//! Reads over many spans at once, which the Jaeger query API and the services summary need:
//! the services and operations that have spans, trace search by filters, the service
//! dependencies, per-service request counts and latencies, and whether a trace exists at all.
//! Kept apart from the per-trace reads of [`super::Backend`], which requires this trait of
//! every backend; each backend implements it in its own `spans` module. Every read is scoped to
//! a tenant and, where it takes a time range, visits only the day partitions of that range.

use super::Read;
use crate::model::{SpanKind, SpanStatus};

/// The filters of a trace search: a trace matches when one of its spans matches them all.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanSearch {
    /// The span's service.
    pub service: String,
    /// The span's name, when the search names one.
    pub operation: Option<String>,
    /// Conditions on the span, all of which must hold.
    pub tags: Vec<TagMatch>,
    /// The span starts at or after this instant (unix nanoseconds).
    pub start_ns: i64,
    /// The span starts at or before this instant (unix nanoseconds).
    pub end_ns: i64,
    /// Shortest span duration, in nanoseconds.
    pub min_duration_ns: Option<i64>,
    /// Longest span duration, in nanoseconds.
    pub max_duration_ns: Option<i64>,
    /// Most trace ids returned.
    pub limit: u32,
}

/// One condition of a trace search on a span.
#[derive(Debug, Clone, PartialEq)]
pub enum TagMatch {
    /// The attribute `key` has `value`, compared as text (`200`, `true` and `"abc"` are
    /// `200`, `true` and `abc`).
    Attribute { key: String, value: String },
    /// The span's status is ERROR (`true`) or not (`false`): Jaeger's `error` tag.
    Error(bool),
    /// The span's kind: Jaeger's `span.kind` tag.
    Kind(SpanKind),
    /// The span's status: Jaeger's `otel.status_code` tag.
    Status(SpanStatus),
}

/// A span name of a service and the kind of the spans that carry it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    pub name: String,
    /// The kind as stored (the OTLP number, 1 to 5).
    pub kind: i64,
}

/// Calls from one service to another: a span of `child` whose parent, or a span it links to,
/// is a span of `parent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyEdge {
    pub parent: String,
    pub child: String,
    pub call_count: i64,
}

/// One service's requests in a time window: its SERVER and CONSUMER spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSummary {
    pub service: String,
    pub requests: i64,
    /// Requests whose span has status ERROR.
    pub errors: i64,
    /// Median duration (nearest rank), in nanoseconds.
    pub p50_ns: i64,
    /// 99th percentile duration (nearest rank), in nanoseconds.
    pub p99_ns: i64,
}

/// Percentile ranks of the services summary, as SQL over `n` (the group's count): the nearest
/// rank `ceil(p * n / 100)`, so both backends pick the same span.
pub(super) const P50_RANK: &str = "(n * 50 + 99) / 100";
/// See [`P50_RANK`].
pub(super) const P99_RANK: &str = "(n * 99 + 99) / 100";

/// The span reads of a backend that cover many traces.
pub trait SpanReads: Send + Sync {
    /// Services that have spans, sorted.
    fn span_services<'a>(&'a self, tenant: &'a str) -> Read<'a, Vec<String>>;

    /// Distinct span names and kinds of `service`, sorted; only of `kind` when given.
    fn operations<'a>(
        &'a self,
        tenant: &'a str,
        service: &'a str,
        kind: Option<SpanKind>,
    ) -> Read<'a, Vec<Operation>>;

    /// Ids of up to `search.limit` traces with a span matching `search`, the trace whose latest
    /// matching span started last first.
    fn find_trace_ids<'a>(
        &'a self,
        tenant: &'a str,
        search: &'a SpanSearch,
    ) -> Read<'a, Vec<String>>;

    /// Calls between services by spans that started from `start_ns` to `end_ns`: parent to
    /// child across services, and a linked span's service to the linking span's (a consumer
    /// linked to its producer). A child whose parent is also its link counts once. Sorted by
    /// parent, then child.
    fn dependencies<'a>(
        &'a self,
        tenant: &'a str,
        start_ns: i64,
        end_ns: i64,
    ) -> Read<'a, Vec<DependencyEdge>>;

    /// Requests, errors and latencies per service, from the SERVER and CONSUMER spans that
    /// started from `start_ns` to `end_ns`, sorted by service.
    fn service_summary<'a>(
        &'a self,
        tenant: &'a str,
        start_ns: i64,
        end_ns: i64,
    ) -> Read<'a, Vec<ServiceSummary>>;

    /// Whether `tenant` holds a span or a log of the trace `trace_id`: what a trace page's 404
    /// needs, answered from the trace id indexes without reading the trace.
    fn trace_exists<'a>(&'a self, tenant: &'a str, trace_id: &'a str) -> Read<'a, bool>;
}
