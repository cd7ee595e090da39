//! PostgreSQL's reads over many spans ([`SpanReads`]). Every query names `tenant_id` and, when
//! it takes a time range, bounds `start_us`: the planner then prunes `log_spans` to the
//! tenant's partition and, inside it, to the days of the range.

use super::reader::PgReader;
use super::{Params, micros, param, refs};
use crate::model::SpanKind;
use crate::storage::spans::{P50_RANK, P99_RANK};
use crate::storage::sql::{Conditions, Placeholders};
use crate::storage::{
    DependencyEdge, Operation, Read, ServiceSummary, SpanReads, SpanSearch, TagMatch,
};

/// The WHERE clause of a search, and its parameters.
fn search_clause(tenant: &str, search: &SpanSearch) -> (String, Params) {
    let params: Params = vec![
        param(tenant.to_owned()),
        param(search.service.clone()),
        param(micros(search.start_ns)),
        param(micros(search.end_ns)),
    ];
    let mut sql = Conditions::new(
        Placeholders::Dollar,
        "tenant_id = $1 AND service_name = $2 AND start_us BETWEEN $3 AND $4",
        params,
    );
    if let Some(name) = &search.operation {
        sql.push(" AND name = ?", [param(name.clone())]);
    }
    if let Some(min) = search.min_duration_ns {
        sql.push(" AND end_us - start_us >= ?", [param(micros(min))]);
    }
    if let Some(max) = search.max_duration_ns {
        sql.push(" AND end_us - start_us <= ?", [param(micros(max))]);
    }
    for tag in &search.tags {
        match tag {
            // `->>` gives a value's text: `true`, `200`, or the string itself.
            TagMatch::Attribute { key, value } => sql.push(
                " AND attributes ->> ?::text = ?::text",
                [param(key.clone()), param(value.clone())],
            ),
            TagMatch::Error(true) => sql.push_sql(" AND status = 2"),
            TagMatch::Error(false) => sql.push_sql(" AND status <> 2"),
            TagMatch::Kind(kind) => sql.push(" AND kind = ?", [param(*kind as i16)]),
            TagMatch::Status(status) => sql.push(" AND status = ?", [param(*status as i16)]),
        }
    }
    sql.finish()
}

impl SpanReads for PgReader {
    fn span_services<'a>(&'a self, tenant: &'a str) -> Read<'a, Vec<String>> {
        Box::pin(async move {
            self.query_map(
                "SELECT s.service_name FROM log_services s WHERE s.tenant_id = $1 AND EXISTS \
                 (SELECT 1 FROM log_spans p WHERE p.tenant_id = $1 \
                  AND p.service_name = s.service_name) ORDER BY 1",
                &[&tenant],
                |r| r.get(0),
            )
            .await
        })
    }

    fn operations<'a>(
        &'a self,
        tenant: &'a str,
        service: &'a str,
        kind: Option<SpanKind>,
    ) -> Read<'a, Vec<Operation>> {
        Box::pin(async move {
            let kind = kind.map(|k| k as i16);
            self.query_map(
                "SELECT DISTINCT name, kind FROM log_spans WHERE tenant_id = $1 \
                 AND service_name = $2 AND ($3::int2 IS NULL OR kind = $3) ORDER BY 1, 2",
                &[&tenant, &service, &kind],
                |r| Operation {
                    name: r.get(0),
                    kind: r.get::<_, i16>(1) as i64,
                },
            )
            .await
        })
    }

    fn find_trace_ids<'a>(
        &'a self,
        tenant: &'a str,
        search: &'a SpanSearch,
    ) -> Read<'a, Vec<String>> {
        Box::pin(async move {
            let (filter, params) = search_clause(tenant, search);
            let limit = search.limit;
            self.query_map(
                &format!(
                    "SELECT trace_id, MAX(start_us) AS last FROM log_spans WHERE {filter} \
                     GROUP BY trace_id ORDER BY last DESC, trace_id LIMIT {limit}"
                ),
                &refs(&params),
                |r| r.get(0),
            )
            .await
        })
    }

    fn dependencies<'a>(
        &'a self,
        tenant: &'a str,
        start_ns: i64,
        end_ns: i64,
    ) -> Read<'a, Vec<DependencyEdge>> {
        Box::pin(async move {
            // UNION (not ALL) keeps one reference per (child, referenced span) pair.
            self.query_map(
                "WITH s AS MATERIALIZED ( \
                   SELECT trace_id::text AS trace_id, span_id::text AS span_id, \
                          parent_span_id::text AS parent_span_id, \
                          service_name::text AS service, links \
                   FROM log_spans WHERE tenant_id = $1 AND start_us BETWEEN $2 AND $3), \
                 refs AS ( \
                   SELECT trace_id AS ct, span_id AS cs, trace_id AS rt, \
                          parent_span_id AS rs, service AS child \
                   FROM s WHERE parent_span_id IS NOT NULL \
                   UNION \
                   SELECT s.trace_id, s.span_id, l ->> 'trace_id', l ->> 'span_id', s.service \
                   FROM s, jsonb_array_elements(s.links) l) \
                 SELECT p.service, r.child, COUNT(*) FROM refs r \
                 JOIN s p ON p.trace_id = r.rt AND p.span_id = r.rs \
                 WHERE p.service <> r.child GROUP BY 1, 2 ORDER BY 1, 2",
                &[&tenant, &micros(start_ns), &micros(end_ns)],
                |r| DependencyEdge {
                    parent: r.get(0),
                    child: r.get(1),
                    call_count: r.get(2),
                },
            )
            .await
        })
    }

    fn service_summary<'a>(
        &'a self,
        tenant: &'a str,
        start_ns: i64,
        end_ns: i64,
    ) -> Read<'a, Vec<ServiceSummary>> {
        Box::pin(async move {
            let kinds = format!("{}, {}", SpanKind::Server as i16, SpanKind::Consumer as i16);
            // The same nearest ranks as SQLite's, so both backends pick the same span.
            self.query_map(
                    &format!(
                        "WITH r AS (SELECT service_name::text AS service, \
                       end_us - start_us AS dur, status, \
                       ROW_NUMBER() OVER (PARTITION BY service_name ORDER BY end_us - start_us) AS rn, \
                       COUNT(*) OVER (PARTITION BY service_name) AS n \
                       FROM log_spans WHERE tenant_id = $1 AND kind IN ({kinds}) \
                       AND start_us BETWEEN $2 AND $3) \
                     SELECT service, MAX(n), COUNT(*) FILTER (WHERE status = 2), \
                       MAX(CASE WHEN rn = {P50_RANK} THEN dur END), \
                       MAX(CASE WHEN rn = {P99_RANK} THEN dur END) \
                     FROM r GROUP BY service ORDER BY service"
                    ),
                    &[&tenant, &micros(start_ns), &micros(end_ns)],
|r| ServiceSummary {
                    service: r.get(0),
                    requests: r.get(1),
                    errors: r.get(2),
                    p50_ns: r.get::<_, i64>(3).saturating_mul(1000),
                    p99_ns: r.get::<_, i64>(4).saturating_mul(1000),
                },
).await
        })
    }

    fn trace_exists<'a>(&'a self, tenant: &'a str, trace_id: &'a str) -> Read<'a, bool> {
        Box::pin(async move {
            // The spans' primary key and the logs' trace index both start (tenant, trace).
            let row = self
                .client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM log_spans WHERE tenant_id = $1 AND trace_id = $2) \
                 OR EXISTS (SELECT 1 FROM log_entries WHERE tenant_id = $1 AND trace_id = $2)",
                    &[&tenant, &trace_id],
                )
                .await?;
            Ok(row.get(0))
        })
    }
}
