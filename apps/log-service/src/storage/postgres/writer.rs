//! The PostgreSQL writer: one task that owns a connection and inserts each group of queued
//! batches in one transaction, one `UNNEST` statement per table, after creating the day
//! partitions the rows go to.

use std::collections::{BTreeSet, HashMap};

use tokio_postgres::{Client, Transaction};

use super::schema::{DDL_LOCK, PARTITION_LOCK, TenantNames, partition_ddl, tenant_ddl};
use super::{connect, micros, notify};
use crate::model::{NewSpan, SpanStatus};
use crate::storage::day::Day;
use crate::storage::{QueueReceiver, StoreError, WriteJob};

/// Runs until the queue is closed and drained; a dropped connection is reopened before the next
/// group rather than failing every group after it.
/// Each commit is announced on the notify channel under `replica`.
pub(super) async fn run(
    url: String,
    replica: String,
    mut client: Client,
    mut queue: QueueReceiver,
) {
    while let Some(group) = queue.next_group().await {
        if client.is_closed() {
            match connect(&url).await {
                Ok(new) => client = new,
                Err(err) => tracing::error!(error = %err, "postgres reconnect failed"),
            }
        }
        let result = write_jobs(&mut client, &replica, &group.jobs).await;
        queue.finish(group, result);
    }
}

/// Column arrays of one `UNNEST` insert into `log_spans`.
#[derive(Default)]
struct SpanColumns {
    tenant: Vec<String>,
    trace: Vec<String>,
    span: Vec<String>,
    parent: Vec<Option<String>>,
    service: Vec<String>,
    name: Vec<String>,
    kind: Vec<i16>,
    start: Vec<i64>,
    end: Vec<i64>,
    status: Vec<i16>,
    status_message: Vec<Option<String>>,
    attributes: Vec<String>,
    links: Vec<String>,
    events: Vec<String>,
}

/// Creates the partitions the group's rows go to, and each one's next day ahead, unless they
/// exist. Runs under the shared partition lock, so retention cannot drop one before the insert.
async fn ensure_partitions(tx: &Transaction<'_>, jobs: &[WriteJob]) -> Result<(), StoreError> {
    let mut needed: BTreeSet<(&str, i64)> = BTreeSet::new();
    for job in jobs {
        let tenant = job.batch.tenant.as_str();
        let days = job.batch.logs.iter().map(|l| Day::of_ns(l.timestamp_ns));
        let days = days.chain(job.batch.spans.iter().map(|s| Day::of_ns(s.start_ns)));
        for day in days {
            needed.insert((tenant, day.0));
            needed.insert((tenant, day.0 + 1));
        }
    }
    if needed.is_empty() {
        return Ok(());
    }
    let (tenants, days): (Vec<&str>, Vec<i32>) = needed
        .iter()
        .map(|(t, d)| (*t, (*d).clamp(i32::MIN as i64, i32::MAX as i64) as i32))
        .unzip();
    let missing_sql = "SELECT u.t, u.d FROM unnest($1::text[], $2::int4[]) AS u(t, d) \
         WHERE NOT EXISTS (SELECT 1 FROM log_partitions p WHERE p.tenant_id = u.t AND p.day = u.d)";
    if tx.query(missing_sql, &[&tenants, &days]).await?.is_empty() {
        return Ok(());
    }
    // Another replica's writer may be creating the same partitions: concurrent CREATE TABLE IF
    // NOT EXISTS of one name fails in PostgreSQL, so creators take turns, and the second one
    // sees, after the first's commit, what is left to create.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DDL_LOCK])
        .await?;
    let missing = tx.query(missing_sql, &[&tenants, &days]).await?;
    let mut known_tenants: HashMap<String, TenantNames> = HashMap::new();
    for row in missing {
        let tenant: String = row.get(0);
        let day: i32 = row.get(1);
        if !known_tenants.contains_key(&tenant) {
            tx.execute(
                "INSERT INTO log_tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&tenant],
            )
            .await?;
            let n: i32 = tx
                .query_one(
                    "SELECT id FROM log_tenants WHERE tenant_id = $1",
                    &[&tenant],
                )
                .await?
                .get(0);
            let names = TenantNames::new(n);
            tx.batch_execute(&tenant_ddl(&names, &tenant)).await?;
            known_tenants.insert(tenant.clone(), names);
        }
        tx.batch_execute(&partition_ddl(&known_tenants[&tenant], Day(day as i64)))
            .await?;
        tx.execute(
            "INSERT INTO log_partitions (tenant_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&tenant, &day],
        )
        .await?;
    }
    Ok(())
}

async fn write_jobs(
    client: &mut Client,
    replica: &str,
    jobs: &[WriteJob],
) -> Result<Vec<Vec<i64>>, StoreError> {
    let log_count: i64 = jobs.iter().map(|j| j.batch.logs.len() as i64).sum();
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock_shared($1)",
        &[&PARTITION_LOCK],
    )
    .await?;
    ensure_partitions(&tx, jobs).await?;
    let ids: Vec<i64> = if log_count > 0 {
        tx.query(
            "SELECT nextval('log_entries_id_seq') FROM generate_series(1, $1::int8)",
            &[&log_count],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect()
    } else {
        Vec::new()
    };

    let mut tenant = Vec::new();
    let mut ts = Vec::new();
    let mut level = Vec::new();
    let mut service = Vec::new();
    let mut message = Vec::new();
    let mut trace_id = Vec::new();
    let mut span_id = Vec::new();
    let mut parent = Vec::new();
    let mut user_id = Vec::new();
    let mut request_id = Vec::new();
    let mut source = Vec::new();
    let mut host = Vec::new();
    let mut environment = Vec::new();
    let mut metadata = Vec::new();
    let mut services: HashMap<(String, String), ()> = HashMap::new();
    let mut errors: HashMap<(String, String), i64> = HashMap::new();
    let mut per_job = Vec::with_capacity(jobs.len());
    let mut next = 0usize;
    for job in jobs {
        let b = &job.batch;
        per_job.push(ids[next..next + b.logs.len()].to_vec());
        next += b.logs.len();
        for log in &b.logs {
            let context = &log.context;
            tenant.push(b.tenant.clone());
            ts.push(micros(log.timestamp_ns));
            level.push(log.level.as_str().to_owned());
            service.push(log.service.clone());
            message.push(log.message.clone());
            trace_id.push(context.trace_id.clone());
            span_id.push(context.span_id.clone());
            parent.push(context.parent_span_id.clone());
            user_id.push(context.user_id.clone());
            request_id.push(context.request_id.clone());
            source.push(context.source.clone());
            host.push(context.host.clone());
            environment.push(context.environment.clone());
            metadata.push(log.metadata.clone());
            services.insert((b.tenant.clone(), log.service.clone()), ());
            if log.level.is_error()
                && let Some(t) = &context.trace_id
            {
                let slot = errors
                    .entry((b.tenant.clone(), t.clone()))
                    .or_insert(i64::MIN);
                *slot = (*slot).max(micros(log.timestamp_ns));
            }
        }
    }
    if log_count > 0 {
        tx.execute(
            "INSERT INTO log_entries (id, tenant_id, timestamp, level, service_name, message, \
             trace_id, span_id, parent_span_id, user_id, request_id, source, host, environment, metadata) \
             SELECT id, tenant, 'epoch'::timestamptz + ts * interval '1 microsecond', level, service, \
             message, trace_id, span_id, parent, user_id, request_id, source, host, env, meta::jsonb \
             FROM unnest($1::int8[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], \
             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
             $14::text[], $15::text[]) AS t(id, tenant, ts, level, service, message, trace_id, \
             span_id, parent, user_id, request_id, source, host, env, meta)",
            &[
                &ids,
                &tenant,
                &ts,
                &level,
                &service,
                &message,
                &trace_id,
                &span_id,
                &parent,
                &user_id,
                &request_id,
                &source,
                &host,
                &environment,
                &metadata,
            ],
        )
        .await?;
    }

    // Spans: deduplicated on (tenant, trace, span) so a re-sent export replaces, never
    // duplicates (a span re-sent with another start time lands in its new start's day).
    let mut spans: HashMap<(String, String, String), &NewSpan> = HashMap::new();
    for job in jobs {
        for span in &job.batch.spans {
            services.insert((job.batch.tenant.clone(), span.service.clone()), ());
            if span.status == SpanStatus::Error {
                let slot = errors
                    .entry((job.batch.tenant.clone(), span.trace_id.clone()))
                    .or_insert(i64::MIN);
                *slot = (*slot).max(micros(span.end_ns));
            }
            spans.insert(
                (
                    job.batch.tenant.clone(),
                    span.trace_id.clone(),
                    span.span_id.clone(),
                ),
                span,
            );
        }
    }
    if !spans.is_empty() {
        let mut cols = SpanColumns::default();
        for ((tenant, _, _), s) in &spans {
            cols.tenant.push(tenant.clone());
            cols.trace.push(s.trace_id.clone());
            cols.span.push(s.span_id.clone());
            cols.parent.push(s.parent_span_id.clone());
            cols.service.push(s.service.clone());
            cols.name.push(s.name.clone());
            cols.kind.push(s.kind as i16);
            cols.start.push(micros(s.start_ns));
            cols.end.push(micros(s.end_ns));
            cols.status.push(s.status as i16);
            cols.status_message.push(s.status_message.clone());
            cols.attributes.push(s.attributes.clone());
            cols.links.push(s.links.clone());
            cols.events.push(s.events.clone());
        }
        tx.execute(
            "INSERT INTO log_spans (tenant_id, trace_id, span_id, parent_span_id, service_name, name, \
             kind, start_us, end_us, status, status_message, attributes, links, events) \
             SELECT t, tr, sp, pa, se, na, ki, st, en, stt, sm, at::jsonb, li::jsonb, ev::jsonb \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::int2[], $8::int8[], $9::int8[], $10::int2[], $11::text[], $12::text[], $13::text[], \
             $14::text[]) AS u(t, tr, sp, pa, se, na, ki, st, en, stt, sm, at, li, ev) \
             ON CONFLICT (tenant_id, trace_id, span_id, start_us) DO UPDATE SET parent_span_id = excluded.parent_span_id, \
             service_name = excluded.service_name, name = excluded.name, kind = excluded.kind, \
             start_us = excluded.start_us, end_us = excluded.end_us, status = excluded.status, \
             status_message = excluded.status_message, attributes = excluded.attributes, \
             links = excluded.links, events = excluded.events",
            &[
                &cols.tenant, &cols.trace, &cols.span, &cols.parent, &cols.service, &cols.name, &cols.kind, &cols.start, &cols.end,
                &cols.status, &cols.status_message, &cols.attributes, &cols.links, &cols.events,
            ],
        )
        .await?;
    }
    if !services.is_empty() {
        let (t, s): (Vec<String>, Vec<String>) = services.into_keys().unzip();
        tx.execute(
            "INSERT INTO log_services (tenant_id, service_name) SELECT * FROM unnest($1::text[], $2::text[]) \
             ON CONFLICT DO NOTHING",
            &[&t, &s],
        )
        .await?;
    }
    if !errors.is_empty() {
        let mut t = Vec::new();
        let mut tr = Vec::new();
        let mut last = Vec::new();
        for ((tenant, trace), us) in errors {
            t.push(tenant);
            tr.push(trace);
            last.push(us);
        }
        tx.execute(
            "INSERT INTO log_error_traces (tenant_id, trace_id, last_us) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) \
             ON CONFLICT (tenant_id, trace_id) DO UPDATE \
             SET last_us = GREATEST(log_error_traces.last_us, excluded.last_us)",
            &[&t, &tr, &last],
        )
        .await?;
    }
    // Delivered by PostgreSQL at the commit, to the other replicas' live tails.
    let payloads = notify::payloads(replica, jobs, &per_job);
    if !payloads.is_empty() {
        tx.execute(
            "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
            &[&notify::CHANNEL, &payloads],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(per_job)
}
