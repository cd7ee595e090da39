//! Embedded SQLite backend: WAL journal, one writer thread doing group commits, a small pool of
//! read-only connections, FTS5 for free-text search, one partition per tenant and day.

mod matches;
mod partitions;
mod reader;
mod rows;
mod rules;
mod schema;
mod spans;
mod text;
mod ts_bounds;
mod writer;

pub(super) use rules::open_rules;

use std::path::Path;

use reader::SqliteReader;

use super::{Backend, Partitions, QueueReceiver, StoreError};

/// The reader, retention's side, and the writer thread of one file.
type Opened = (
    Box<dyn Backend>,
    Box<dyn Partitions>,
    std::thread::JoinHandle<()>,
);

/// Opens the database, creates the schema, starts the writer thread.
pub(super) async fn open(path: &Path, queue: QueueReceiver) -> Result<Opened, StoreError> {
    let path = path.to_path_buf();
    let (conn, reader, partitions) = tokio::task::spawn_blocking(move || {
        let conn = schema::open_writer(&path)?;
        let partitions = partitions::SqlitePartitions::open(&path)?;
        Ok::<_, StoreError>((conn, SqliteReader::new(path), partitions))
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))??;
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || writer::run(conn, queue))?;
    Ok((Box::new(reader), Box::new(partitions), thread))
}
