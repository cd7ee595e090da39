//! PostgreSQL backend with the minisource REST API's `log_entries` table (see `schema`).
//!
//! One writer task owns a connection and inserts a whole group commit with one `UNNEST`
//! statement per table; readers share a second connection (tokio-postgres pipelines concurrent
//! queries). PostgreSQL keeps microseconds, so timestamps are stored at that precision.

mod partitions;
mod reader;
mod rules;
mod schema;
mod spans;
mod writer;

pub(super) use rules::open_rules;

use std::sync::Arc;

use tokio_postgres::{Client, NoTls};

use super::{Backend, Partitions, QueueReceiver, StoreError};

/// The reader, retention's side, and the writer task of one database.
type Opened = (
    Box<dyn Backend>,
    Box<dyn Partitions>,
    tokio::task::JoinHandle<()>,
);

async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(error = %err, "postgres connection closed");
        }
    });
    Ok(client)
}

/// Connects, creates the schema, starts the writer task.
pub(super) async fn open(url: &str, queue: QueueReceiver) -> Result<Opened, StoreError> {
    let writer = connect(url).await?;
    schema::create(&writer).await?;
    let reader = connect(url).await?;
    let partitions = partitions::PgPartitions::open(url).await?;
    let task = tokio::spawn(writer::run(url.to_owned(), writer, queue));
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
