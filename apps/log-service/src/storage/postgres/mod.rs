//! PostgreSQL backend with the minisource REST API's `log_entries` table (see `schema`).
//!
//! One writer task owns a connection and inserts a whole group commit with one `UNNEST`
//! statement per table; readers share a second connection (tokio-postgres pipelines concurrent
//! queries). PostgreSQL keeps microseconds, so timestamps are stored at that precision.
//! Replicas on one database share the tables; each commit is announced to the others' live
//! tails on a notify channel (`notify`).

mod notify;
mod page;
mod partitions;
mod reader;
mod rules;
mod schema;
mod spans;
mod statistics;
mod writer;

pub(super) use rules::open_rules;

use std::sync::Arc;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use super::{Backend, Partitions, QueueReceiver, StoreError};
use crate::metrics::Metrics;
use crate::tail::Hub;

/// What the PostgreSQL backend needs beside its URL and queue: who this replica is, where the
/// other replicas' logs are published, and when to stop listening for them.
pub(super) struct Peers<'a> {
    pub replica: &'a str,
    pub hub: Hub,
    pub metrics: Metrics,
    pub stop: &'a server::Stop,
}

/// The reader, retention's side, and the writer task of one database.
type Opened = (
    Box<dyn Backend>,
    Box<dyn Partitions>,
    tokio::task::JoinHandle<()>,
);

/// Connects a client whose connection runs on a task of its own.
pub(crate) async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(error = %err, "postgres connection closed");
        }
    });
    Ok(client)
}

/// Connects, creates the schema, starts the writer task, the listener for the other replicas'
/// commits and the keeper of the day partitions' statistics.
pub(super) async fn open(
    url: &str,
    queue: QueueReceiver,
    peers: Peers<'_>,
) -> Result<Opened, StoreError> {
    let mut writer = connect(url).await?;
    schema::create(&mut writer).await?;
    let reader = connect(url).await?;
    let partitions = partitions::PgPartitions::open(url).await?;
    let replica = peers.replica.to_owned();
    let task = tokio::spawn(writer::run(url.to_owned(), replica.clone(), writer, queue));
    let listening = notify::subscribe(url).await?;
    peers.stop.spawn(statistics::keep(
        url.to_owned(),
        peers.metrics.clone(),
        peers.stop.intake_stopped(),
    ));
    let stopped = peers.stop.intake_stopped();
    peers.stop.spawn(notify::listen(
        url.to_owned(),
        listening,
        replica,
        peers.hub,
        peers.metrics,
        stopped,
    ));
    Ok((
        Box::new(reader::PgReader::new(Arc::new(reader))),
        Box::new(partitions),
        task,
    ))
}

/// PostgreSQL keeps timestamps to the microsecond.
pub(super) const TIMESTAMP_RESOLUTION_NS: i64 = 1000;

/// Unix nanoseconds to the microseconds PostgreSQL stores.
fn micros(ns: i64) -> i64 {
    ns.div_euclid(TIMESTAMP_RESOLUTION_NS)
}

/// Owned query parameters, so that a WHERE clause can be built up before it is borrowed for a call.
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// One owned query parameter.
fn param(value: impl ToSql + Sync + Send + 'static) -> Box<dyn ToSql + Sync + Send> {
    Box::new(value)
}

/// `params` as the borrowed list a query call takes.
fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}
