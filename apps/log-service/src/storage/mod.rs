//! Storage: one writer that group-commits batches, readers that answer queries, two backends.
//!
//! Every write goes through a single queue bounded in *rows* (a semaphore): a caller that would
//! overflow it is told at once (429 / RESOURCE_EXHAUSTED) instead of the queue growing without limit.
//! The writer takes everything that is queued (up to `max_batch_rows`), writes it in one transaction
//! and answers each caller only after the commit, so an acknowledged record is on disk and one
//! fsync is shared by every request of the group.

mod postgres;
mod sqlite;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::config::DatabaseConfig;
use crate::metrics::Metrics;
use crate::model::{
    Bucket, Interval, LogFilter, LogView, SpanView, Stats, StorageInfo, WriteBatch,
};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The write queue has no room for the batch.
    #[error("write queue is full")]
    QueueFull,
    /// The batch alone is larger than the whole queue.
    #[error("batch of {rows} rows exceeds the queue capacity of {capacity}")]
    TooLarge { rows: usize, capacity: usize },
    /// The writer has stopped (shutdown or a fatal fault).
    #[error("writer stopped")]
    Closed,
    /// The transaction holding this batch failed; nothing of it was stored.
    #[error("write failed: {0}")]
    WriteFailed(String),
    /// A blocking task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(String),
}

/// A batch waiting for the writer, with the queue room it holds until it is committed.
pub(crate) struct WriteJob {
    pub batch: WriteBatch,
    pub done: oneshot::Sender<Result<Vec<i64>, StoreError>>,
    pub _permit: OwnedSemaphorePermit,
}

enum Backend {
    Sqlite(sqlite::SqliteReader),
    Postgres(postgres::PgStore),
}

struct Inner {
    backend: Backend,
    writer_tx: mpsc::UnboundedSender<WriteJob>,
    permits: Arc<Semaphore>,
    capacity: usize,
}

/// Handle to storage; cheap to clone, shared by every server of the application.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish()
    }
}

/// Waits for the writer to finish its last transaction once every `Store` handle is gone.
#[derive(Debug)]
pub struct WriterHandle {
    thread: Option<std::thread::JoinHandle<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl WriterHandle {
    /// Returns when the writer has drained its queue and stopped.
    pub async fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match &$self.inner.backend {
            Backend::Sqlite($b) => $e,
            Backend::Postgres($b) => $e,
        }
    };
}

impl Store {
    /// Opens (and creates or migrates) the database and starts the writer.
    pub async fn open(
        database: &DatabaseConfig,
        queue_capacity: usize,
        max_batch_rows: usize,
        metrics: Metrics,
    ) -> Result<(Store, WriterHandle), StoreError> {
        let (writer_tx, writer_rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(queue_capacity));
        let (backend, handle) = match database {
            DatabaseConfig::Sqlite { path } => {
                let (reader, thread) = sqlite::open(
                    path,
                    writer_rx,
                    max_batch_rows,
                    metrics,
                    permits.clone(),
                    queue_capacity,
                )
                .await?;
                (
                    Backend::Sqlite(reader),
                    WriterHandle {
                        thread: Some(thread),
                        task: None,
                    },
                )
            }
            DatabaseConfig::Postgres { url } => {
                let (store, task) = postgres::open(
                    url,
                    writer_rx,
                    max_batch_rows,
                    metrics,
                    permits.clone(),
                    queue_capacity,
                )
                .await?;
                (
                    Backend::Postgres(store),
                    WriterHandle {
                        thread: None,
                        task: Some(task),
                    },
                )
            }
        };
        let store = Store {
            inner: Arc::new(Inner {
                backend,
                writer_tx,
                permits,
                capacity: queue_capacity,
            }),
        };
        Ok((store, handle))
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match &self.inner.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Writes the batch and returns the ids of its logs once the transaction has committed.
    pub async fn write(&self, batch: WriteBatch) -> Result<Vec<i64>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let rows = batch.len();
        if rows > self.inner.capacity {
            return Err(StoreError::TooLarge {
                rows,
                capacity: self.inner.capacity,
            });
        }
        let permit = self
            .inner
            .permits
            .clone()
            .try_acquire_many_owned(rows as u32)
            .map_err(|_| StoreError::QueueFull)?;
        let (done, done_rx) = oneshot::channel();
        self.inner
            .writer_tx
            .send(WriteJob {
                batch,
                done,
                _permit: permit,
            })
            .map_err(|_| StoreError::Closed)?;
        done_rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Rows currently waiting for the writer.
    pub fn queued_rows(&self) -> usize {
        self.inner.capacity - self.inner.permits.available_permits()
    }

    /// Checks that the writer runs and the database answers.
    pub async fn ready(&self) -> Result<(), StoreError> {
        if self.inner.writer_tx.is_closed() {
            return Err(StoreError::Closed);
        }
        dispatch!(self, b => b.ping().await)
    }

    /// Up to `limit` logs matching `filter` after skipping `offset`, newest first, and the total
    /// number of matches.
    pub async fn query_logs(
        &self,
        tenant: &str,
        filter: &LogFilter,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<LogView>, i64), StoreError> {
        dispatch!(self, b => b.query_logs(tenant, filter, limit, offset).await)
    }

    /// One log by id, only if it belongs to `tenant`.
    pub async fn get_log(&self, tenant: &str, id: i64) -> Result<Option<LogView>, StoreError> {
        dispatch!(self, b => b.get_log(tenant, id).await)
    }

    /// Logs of one trace, oldest first.
    pub async fn logs_by_trace(
        &self,
        tenant: &str,
        trace_id: &str,
    ) -> Result<Vec<LogView>, StoreError> {
        dispatch!(self, b => b.logs_by_trace(tenant, trace_id).await)
    }

    /// Logs of one request id, oldest first.
    pub async fn logs_by_request(
        &self,
        tenant: &str,
        request_id: &str,
    ) -> Result<Vec<LogView>, StoreError> {
        dispatch!(self, b => b.logs_by_request(tenant, request_id).await)
    }

    /// Spans of one trace, by start time.
    pub async fn spans_by_trace(
        &self,
        tenant: &str,
        trace_id: &str,
    ) -> Result<Vec<SpanView>, StoreError> {
        dispatch!(self, b => b.spans_by_trace(tenant, trace_id).await)
    }

    /// Service names seen for `tenant`, sorted.
    pub async fn services(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        dispatch!(self, b => b.services(tenant).await)
    }

    /// Counts per level and service in an optional time range.
    pub async fn stats(
        &self,
        tenant: &str,
        start_ns: Option<i64>,
        end_ns: Option<i64>,
    ) -> Result<Stats, StoreError> {
        dispatch!(self, b => b.stats(tenant, start_ns, end_ns).await)
    }

    /// Counts per level in time buckets.
    pub async fn aggregate(
        &self,
        tenant: &str,
        filter: &LogFilter,
        interval: Interval,
    ) -> Result<Vec<Bucket>, StoreError> {
        dispatch!(self, b => b.aggregate(tenant, filter, interval).await)
    }

    /// Row counts and estimated size of `tenant`'s data.
    pub async fn storage(&self, tenant: &str) -> Result<StorageInfo, StoreError> {
        dispatch!(self, b => b.storage(tenant).await)
    }

    /// Ids of traces with an error (span status Error or an ERROR/FATAL log), newest first.
    pub async fn error_traces(
        &self,
        tenant: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self, b => b.error_traces(tenant, limit, offset).await)
    }
}

/// Words of a free-text search, each quoted so that user input is never parsed as query syntax.
/// Splitting on the same boundaries as the index's tokenizer keeps every quoted term a single token.
pub(crate) fn search_terms(search: &str) -> Vec<String> {
    search
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// Records how long a group commit took and how many rows it held.
pub(crate) fn observe_commit(metrics: &Metrics, started: Instant, rows: usize, ok: bool) {
    metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    metrics.commit_rows.observe(rows as f64);
    if !ok {
        metrics.commit_failures.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::search_terms;

    #[test]
    fn search_terms_drop_query_syntax() {
        assert_eq!(
            search_terms("Authentication \"failed\" OR user-42*"),
            ["authentication", "failed", "or", "user", "42"]
        );
        assert!(search_terms("!!! ***").is_empty());
    }
}
