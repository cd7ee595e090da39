//! Storage: one writer that group-commits batches, readers that answer queries, two backends.
//!
//! Writes from every handler go through one bounded queue (`queue`) to the backend's single
//! writer. Reads go to the backend through the [`Backend`] trait, which SQLite (`sqlite`) and
//! PostgreSQL (`postgres`) implement; each backend is a folder with its schema, its writer and
//! its reader. [`Store`] is the handle the handlers hold: the queue's end plus the backend.
//! Log alert rules are kept apart from the logs, behind [`RuleStore`] (`rules`), in a table of
//! each backend written on a connection of its own. Reads over many spans at once (trace
//! search, dependencies, the services summary) are [`SpanReads`] (`spans`), which every backend
//! implements beside [`Backend`].

pub mod day;
mod partitions;
mod postgres;
mod queue;
mod rules;
mod search;
mod spans;
mod sql;
mod sqlite;

use std::ops::Deref;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::config::DatabaseConfig;
use crate::metrics::Metrics;
use crate::model::{
    Bucket, Interval, Level, LogFilter, LogView, SpanView, Stats, StorageInfo, WriteBatch,
    format_ts,
};
use crate::tail::{Hub, Publisher};

pub use partitions::{Dropped, Partitions, Policy, Size, StoredPartition};
pub(crate) use postgres::connect as connect_postgres;
pub use queue::{QueueReceiver, WriteJob};
pub use rules::{RuleKey, RuleOutcome, RuleStore, open_rules};
pub use search::search_terms;
pub use spans::{DependencyEdge, Operation, ServiceSummary, SpanReads, SpanSearch, TagMatch};

/// Most logs returned for one trace or request id.
const MAX_TRACE_ROWS: i64 = 50_000;

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
    /// A row with the same unique key exists (a second retention policy for a tenant).
    #[error("{0}")]
    Conflict(String),
    /// The database was written in a layout this build does not read; the message names the
    /// file and what to do.
    #[error("{0}")]
    OldLayout(String),
    /// A blocking task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(String),
}

/// The id a lookup of logs names: a trace's or a request's.
#[derive(Debug, Clone, Copy)]
pub enum LogKey<'a> {
    Trace(&'a str),
    Request(&'a str),
}

impl<'a> LogKey<'a> {
    /// The column that holds this kind of id, the same in both backends, and the id.
    fn column_and_id(self) -> (&'static str, &'a str) {
        match self {
            LogKey::Trace(id) => ("trace_id", id),
            LogKey::Request(id) => ("request_id", id),
        }
    }
}

/// The answer of a backend read. Boxed, because the backend is chosen at start-up and held as
/// `dyn Backend`, which `async fn` in a trait does not allow.
pub type Read<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// The read side of a storage backend; every read is scoped to a tenant, and a tenant that has
/// never written reads as empty. Writes do not go through this trait: they are queued and
/// committed by the backend's own writer, which owns its connection.
pub trait Backend: SpanReads + Send + Sync {
    /// `sqlite` or `postgres`.
    fn name(&self) -> &'static str;

    /// Checks that the database answers.
    fn ping(&self) -> Read<'_, ()>;

    /// Up to `limit` logs matching `filter` after skipping `offset`, newest first, and the total
    /// number of matches; with `count_up_to`, the count stops there (a total of at least that
    /// much means "that many or more"), so a page of a large store costs no full scan.
    fn query_logs<'a>(
        &'a self,
        tenant: &'a str,
        filter: &'a LogFilter,
        limit: u32,
        offset: u64,
        count_up_to: Option<u64>,
    ) -> Read<'a, (Vec<LogView>, i64)>;

    /// One log by id, only if it belongs to `tenant`.
    fn get_log<'a>(&'a self, tenant: &'a str, id: i64) -> Read<'a, Option<LogView>>;

    /// Logs of one trace or request, oldest first.
    fn logs_by<'a>(&'a self, tenant: &'a str, key: LogKey<'a>) -> Read<'a, Vec<LogView>>;

    /// Spans of one trace, by start time.
    fn spans_by_trace<'a>(&'a self, tenant: &'a str, trace_id: &'a str) -> Read<'a, Vec<SpanView>>;

    /// Service names seen for `tenant`, sorted.
    fn services<'a>(&'a self, tenant: &'a str) -> Read<'a, Vec<String>>;

    /// Counts per level and service in an optional time range.
    fn stats<'a>(
        &'a self,
        tenant: &'a str,
        start_ns: Option<i64>,
        end_ns: Option<i64>,
    ) -> Read<'a, Stats>;

    /// Counts per level in time buckets.
    fn aggregate<'a>(
        &'a self,
        tenant: &'a str,
        filter: &'a LogFilter,
        interval: Interval,
    ) -> Read<'a, Vec<Bucket>>;

    /// Row counts and estimated size of `tenant`'s data.
    fn storage<'a>(&'a self, tenant: &'a str) -> Read<'a, StorageInfo>;

    /// Up to `limit` logs matching `filter` with an id above `after_id`, in id order: what a
    /// live tail replays when a client resumes.
    fn logs_after<'a>(
        &'a self,
        tenant: &'a str,
        filter: &'a LogFilter,
        after_id: i64,
        limit: u32,
    ) -> Read<'a, Vec<LogView>>;

    /// Ids of traces with an error (span status Error or an ERROR/FATAL log), newest first.
    fn error_traces<'a>(
        &'a self,
        tenant: &'a str,
        limit: u32,
        offset: u32,
    ) -> Read<'a, Vec<String>>;

    /// Tenants that hold logs or spans, sorted: what the web view's tenant picker offers. A
    /// tenant whose every day retention has dropped is not listed.
    fn tenants(&self) -> Read<'_, Vec<String>>;
}

struct Inner {
    backend: Box<dyn Backend>,
    partitions: Box<dyn Partitions>,
    queue: queue::WriteQueue,
}

/// Handle to storage; cheap to clone, shared by every server of the application. Reads are the
/// backend's (`Store` derefs to [`Backend`]); writes go through the queue.
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

impl Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        self.inner.backend.as_ref()
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

impl Store {
    /// Opens (and creates or migrates) the database and starts the writer, which publishes
    /// every committed log to `tail`. On PostgreSQL, where other replicas may write too, it
    /// also publishes theirs (announced under another id than `replica`) until `stop`.
    pub async fn open(
        database: &DatabaseConfig,
        queue_capacity: usize,
        max_batch_rows: usize,
        metrics: Metrics,
        tail: Hub,
        replica: &str,
        stop: &server::Stop,
    ) -> Result<(Store, WriterHandle), StoreError> {
        let resolution_ns = match database {
            DatabaseConfig::Sqlite { .. } => 1,
            DatabaseConfig::Postgres { .. } => postgres::TIMESTAMP_RESOLUTION_NS,
        };
        let publisher = Publisher::new(tail.clone(), resolution_ns);
        let peers = postgres::Peers {
            replica,
            hub: tail,
            metrics: metrics.clone(),
            stop,
        };
        let (queue, receiver) = queue::channel(queue_capacity, max_batch_rows, metrics, publisher);
        let (backend, partitions, writer) = match database {
            DatabaseConfig::Sqlite { path } => {
                let (reader, partitions, thread) = sqlite::open(path, receiver).await?;
                let writer = WriterHandle {
                    thread: Some(thread),
                    task: None,
                };
                (reader, partitions, writer)
            }
            DatabaseConfig::Postgres { url } => {
                let (reader, partitions, task) = postgres::open(url, receiver, peers).await?;
                let writer = WriterHandle {
                    thread: None,
                    task: Some(task),
                };
                (reader, partitions, writer)
            }
        };
        let store = Store {
            inner: Arc::new(Inner {
                backend,
                partitions,
                queue,
            }),
        };
        Ok((store, writer))
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend.name()
    }

    /// Policies and day partitions, for retention.
    pub fn partitions(&self) -> &dyn Partitions {
        self.inner.partitions.as_ref()
    }

    /// Writes the batch and returns the ids of its logs once the transaction has committed.
    pub async fn write(&self, batch: WriteBatch) -> Result<Vec<i64>, StoreError> {
        self.inner.queue.push(batch).await
    }

    /// Checks that the writer runs and the database answers.
    pub async fn ready(&self) -> Result<(), StoreError> {
        if self.inner.queue.is_closed() {
            return Err(StoreError::Closed);
        }
        self.inner.backend.ping().await
    }
}

/// Adds one `(bucket start, level, count)` row to the aggregation built so far; rows arrive
/// ordered by bucket, so a new start opens a new bucket.
fn add_bucket_row(buckets: &mut Vec<(i64, Bucket)>, start_ns: i64, level: Level, count: i64) {
    if buckets.last().is_none_or(|(s, _)| *s != start_ns) {
        buckets.push((
            start_ns,
            Bucket {
                bucket: format_ts(start_ns),
                total: 0,
                counts: Default::default(),
            },
        ));
    }
    if let Some((_, bucket)) = buckets.last_mut() {
        bucket.total += count;
        bucket.counts.insert(level.as_str().into(), count.into());
    }
}

/// Adds one `(level, count)` row to `stats`: to the total, the errors, and the level's count.
fn add_level_count(stats: &mut Stats, level: Level, count: i64) {
    stats.total += count;
    if level.is_error() {
        stats.error_count += count;
    }
    let slot = stats
        .by_level
        .entry(level.as_str().to_owned())
        .or_insert(0.into());
    *slot = (slot.as_i64().unwrap_or(0) + count).into();
}
