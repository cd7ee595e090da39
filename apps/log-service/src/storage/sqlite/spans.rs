//! SQLite's reads over many spans ([`SpanReads`]): each visits the tenant's span partitions,
//! only those of the days a time range covers when it takes one. A search asks the partitions
//! newest first and stops when it has its traces; dependencies and the summary read the range's
//! partitions as one `UNION ALL`, so a parent and child on either side of midnight still meet.

use std::collections::{BTreeSet, HashSet};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use super::reader::{SqliteReader, partitions};
use super::schema::PartitionNames;
use crate::model::SpanKind;
use crate::storage::day::Day;
use crate::storage::spans::{P50_RANK, P99_RANK};
use crate::storage::sql::{Conditions, Placeholders};
use crate::storage::{
    DependencyEdge, Operation, Read, ServiceSummary, SpanReads, SpanSearch, StoreError, TagMatch,
};

/// The WHERE clause of a search within one partition, and its parameters.
fn search_clause(search: &SpanSearch) -> (String, Vec<SqlValue>) {
    let params = vec![
        SqlValue::Text(search.service.clone()),
        SqlValue::Integer(search.start_ns),
        SqlValue::Integer(search.end_ns),
    ];
    let mut sql = Conditions::new(
        Placeholders::Question,
        "service = ?1 AND start_ns BETWEEN ?2 AND ?3",
        params,
    );
    if let Some(name) = &search.operation {
        sql.push(" AND name = ?", vec![SqlValue::Text(name.clone())]);
    }
    if let Some(min) = search.min_duration_ns {
        sql.push(" AND end_ns - start_ns >= ?", vec![min.into()]);
    }
    if let Some(max) = search.max_duration_ns {
        sql.push(" AND end_ns - start_ns <= ?", vec![max.into()]);
    }
    for tag in &search.tags {
        match tag {
            // A value's text: JSON booleans are `true`/`false`, numbers and strings as written.
            TagMatch::Attribute { key, value } => sql.push(
                " AND EXISTS (SELECT 1 FROM json_each(attributes) j WHERE j.key = ? AND \
                 (CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                 ELSE CAST(j.value AS TEXT) END) = ?)",
                vec![SqlValue::Text(key.clone()), SqlValue::Text(value.clone())],
            ),
            TagMatch::Error(true) => sql.push_sql(" AND status = 2"),
            TagMatch::Error(false) => sql.push_sql(" AND status <> 2"),
            TagMatch::Kind(kind) => sql.push(" AND kind = ?", vec![(*kind as i64).into()]),
            TagMatch::Status(status) => sql.push(" AND status = ?", vec![(*status as i64).into()]),
        }
    }
    sql.finish()
}

/// One `SELECT {columns} ... WHERE {filter}` per partition, joined by `UNION ALL`; `None` when
/// there is no partition.
fn union_of(parts: &[(Day, PartitionNames)], columns: &str, filter: &str) -> Option<String> {
    let selects: Vec<String> = parts
        .iter()
        .map(|(_, names)| format!("SELECT {columns} FROM \"{}\" WHERE {filter}", names.spans))
        .collect();
    (!selects.is_empty()).then(|| selects.join(" UNION ALL "))
}

/// Services of `tenant` that have a span in any partition.
fn services_with_spans(conn: &Connection, tid: i64) -> Result<Vec<String>, StoreError> {
    let services: Vec<String> = conn
        .prepare_cached("SELECT service FROM services WHERE tenant = ?1 ORDER BY service")?
        .query_map([tid], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let parts = partitions(conn, tid, None, None)?;
    let mut found = Vec::new();
    for service in services {
        for (_, names) in parts.iter().rev() {
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM \"{}\" WHERE service = ?1)",
                names.spans
            );
            if conn
                .prepare_cached(&sql)?
                .query_row([&service], |r| r.get(0))?
            {
                found.push(service);
                break;
            }
        }
    }
    Ok(found)
}

impl SpanReads for SqliteReader {
    fn span_services<'a>(&'a self, tenant: &'a str) -> Read<'a, Vec<String>> {
        Box::pin(self.with_tenant(tenant, vec![], services_with_spans))
    }

    fn operations<'a>(
        &'a self,
        tenant: &'a str,
        service: &'a str,
        kind: Option<SpanKind>,
    ) -> Read<'a, Vec<Operation>> {
        let service = service.to_owned();
        Box::pin(self.with_tenant(tenant, vec![], move |conn, tid| {
            let mut found = BTreeSet::new();
            let kind_clause = kind.map_or(String::new(), |k| format!(" AND kind = {}", k as i64));
            for (_, names) in partitions(conn, tid, None, None)? {
                let sql = format!(
                    "SELECT DISTINCT name, kind FROM \"{}\" WHERE service = ?1{kind_clause}",
                    names.spans
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                for op in stmt.query_map([&service], |r| {
                    Ok(Operation {
                        name: r.get(0)?,
                        kind: r.get(1)?,
                    })
                })? {
                    found.insert(op?);
                }
            }
            Ok(found.into_iter().collect())
        }))
    }

    fn find_trace_ids<'a>(
        &'a self,
        tenant: &'a str,
        search: &'a SpanSearch,
    ) -> Read<'a, Vec<String>> {
        let search = search.clone();
        Box::pin(self.with_tenant(tenant, vec![], move |conn, tid| {
            let (filter, params) = search_clause(&search);
            let limit = search.limit as usize;
            let mut seen = HashSet::new();
            let mut ids = Vec::new();
            // Days are disjoint, so a trace's latest match lies in the newest day it matches in.
            let parts = partitions(conn, tid, Some(search.start_ns), Some(search.end_ns))?;
            for (_, names) in parts.iter().rev() {
                let sql = format!(
                    "SELECT trace_id, MAX(start_ns) AS last FROM \"{}\" WHERE {filter} \
                     GROUP BY trace_id ORDER BY last DESC, trace_id LIMIT {limit}",
                    names.spans
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows =
                    stmt.query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(0))?;
                for id in rows {
                    let id = id?;
                    if ids.len() < limit && seen.insert(id.clone()) {
                        ids.push(id);
                    }
                }
                if ids.len() >= limit {
                    break;
                }
            }
            Ok(ids)
        }))
    }

    fn dependencies<'a>(
        &'a self,
        tenant: &'a str,
        start_ns: i64,
        end_ns: i64,
    ) -> Read<'a, Vec<DependencyEdge>> {
        Box::pin(self.with_tenant(tenant, vec![], move |conn, tid| {
            let parts = partitions(conn, tid, Some(start_ns), Some(end_ns))?;
            let Some(spans) = union_of(
                &parts,
                "trace_id, span_id, parent_span_id, service, links",
                "start_ns BETWEEN ?1 AND ?2",
            ) else {
                return Ok(vec![]);
            };
            // UNION (not ALL) keeps one reference per (child, referenced span) pair.
            let sql = format!(
                "WITH s AS MATERIALIZED ({spans}), \
                 refs AS ( \
                   SELECT trace_id AS ct, span_id AS cs, trace_id AS rt, parent_span_id AS rs, \
                          service AS child FROM s WHERE parent_span_id IS NOT NULL \
                   UNION \
                   SELECT s.trace_id, s.span_id, json_extract(l.value, '$.trace_id'), \
                          json_extract(l.value, '$.span_id'), s.service \
                   FROM s, json_each(s.links) l) \
                 SELECT p.service, r.child, COUNT(*) FROM refs r \
                 JOIN s p ON p.trace_id = r.rt AND p.span_id = r.rs \
                 WHERE p.service <> r.child GROUP BY p.service, r.child ORDER BY 1, 2"
            );
            Ok(conn
                .prepare(&sql)?
                .query_map([start_ns, end_ns], |r| {
                    Ok(DependencyEdge {
                        parent: r.get(0)?,
                        child: r.get(1)?,
                        call_count: r.get(2)?,
                    })
                })?
                .collect::<Result<_, _>>()?)
        }))
    }

    fn service_summary<'a>(
        &'a self,
        tenant: &'a str,
        start_ns: i64,
        end_ns: i64,
    ) -> Read<'a, Vec<ServiceSummary>> {
        Box::pin(self.with_tenant(tenant, vec![], move |conn, tid| {
            let parts = partitions(conn, tid, Some(start_ns), Some(end_ns))?;
            let kinds = format!("{}, {}", SpanKind::Server as i64, SpanKind::Consumer as i64);
            let Some(spans) = union_of(
                &parts,
                "service, end_ns - start_ns AS dur, status",
                &format!("kind IN ({kinds}) AND start_ns BETWEEN ?1 AND ?2"),
            ) else {
                return Ok(vec![]);
            };
            let sql = format!(
                "WITH r AS (SELECT service, dur, status, \
                   ROW_NUMBER() OVER (PARTITION BY service ORDER BY dur) AS rn, \
                   COUNT(*) OVER (PARTITION BY service) AS n FROM ({spans})) \
                 SELECT service, MAX(n), SUM(status = 2), \
                   MAX(CASE WHEN rn = {P50_RANK} THEN dur END), \
                   MAX(CASE WHEN rn = {P99_RANK} THEN dur END) \
                 FROM r GROUP BY service ORDER BY service"
            );
            Ok(conn
                .prepare(&sql)?
                .query_map([start_ns, end_ns], |r| {
                    Ok(ServiceSummary {
                        service: r.get(0)?,
                        requests: r.get(1)?,
                        errors: r.get(2)?,
                        p50_ns: r.get(3)?,
                        p99_ns: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?)
        }))
    }

    fn trace_exists<'a>(&'a self, tenant: &'a str, trace_id: &'a str) -> Read<'a, bool> {
        let trace_id = trace_id.to_owned();
        Box::pin(self.with_tenant(tenant, false, move |conn, tid| {
            // Newest first: a trace someone opens is most often a recent one. Each probe is one
            // seek in the spans' primary key or the logs' trace index.
            for (_, names) in partitions(conn, tid, None, None)?.iter().rev() {
                let sql = format!(
                    "SELECT EXISTS (SELECT 1 FROM \"{}\" WHERE trace_id = ?1) \
                     OR EXISTS (SELECT 1 FROM \"{}\" WHERE trace_id = ?1)",
                    names.spans, names.logs
                );
                if conn
                    .prepare_cached(&sql)?
                    .query_row([&trace_id], |r| r.get::<_, bool>(0))?
                {
                    return Ok(true);
                }
            }
            Ok(false)
        }))
    }
}
