//! Embedded SQLite backend: WAL journal, one writer thread doing group commits, a small pool of
//! read-only connections, FTS5 for free-text search.

mod reader;
mod rules;
mod schema;
mod writer;

pub(super) use rules::open_rules;

use std::path::Path;

use reader::SqliteReader;

use super::{Backend, QueueReceiver, StoreError};

/// Opens the database, creates the schema, starts the writer thread.
pub(super) async fn open(
    path: &Path,
    queue: QueueReceiver,
) -> Result<(Box<dyn Backend>, std::thread::JoinHandle<()>), StoreError> {
    let path = path.to_path_buf();
    let (conn, reader) = tokio::task::spawn_blocking(move || {
        let conn = schema::open_writer(&path)?;
        Ok::<_, StoreError>((conn, SqliteReader::new(path)))
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))??;
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || writer::run(conn, queue))?;
    Ok((Box::new(reader), thread))
}
