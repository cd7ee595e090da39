//! The write queue between the request handlers and a backend's single writer.
//!
//! The queue is bounded in *rows* (a semaphore): a caller that would overflow it is told at once
//! (429 / RESOURCE_EXHAUSTED) instead of the queue growing without limit. The writer takes
//! everything that is queued (up to `max_batch_rows`), writes it in one transaction and answers
//! each caller only after the commit, so an acknowledged record is on disk and one fsync is shared
//! by every request of the group. Both backends' writers drain it the same way; only the
//! transaction differs.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::StoreError;
use crate::metrics::Metrics;
use crate::model::WriteBatch;
use crate::tail::Publisher;

/// A batch waiting for the writer, with the queue room it holds until it is committed.
pub struct WriteJob {
    /// The rows to write.
    pub batch: WriteBatch,
    done: oneshot::Sender<Result<Vec<i64>, StoreError>>,
    _permit: OwnedSemaphorePermit,
}

/// Jobs the writer commits in one transaction.
pub struct CommitGroup {
    /// The jobs, in the order they were queued.
    pub jobs: Vec<WriteJob>,
    rows: usize,
    started: Instant,
}

/// The handlers' end of the queue.
pub(super) struct WriteQueue {
    tx: mpsc::UnboundedSender<WriteJob>,
    permits: Arc<Semaphore>,
    capacity: usize,
}

/// The writer's end of the queue; it also records the commit metrics.
pub struct QueueReceiver {
    rx: mpsc::UnboundedReceiver<WriteJob>,
    permits: Arc<Semaphore>,
    capacity: usize,
    max_batch_rows: usize,
    metrics: Metrics,
    /// Hands committed logs to the live tail.
    tail: Publisher,
}

/// Creates a queue holding at most `capacity` rows, drained in groups of up to `max_batch_rows`.
pub(super) fn channel(
    capacity: usize,
    max_batch_rows: usize,
    metrics: Metrics,
    tail: Publisher,
) -> (WriteQueue, QueueReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(capacity));
    let queue = WriteQueue {
        tx,
        permits: permits.clone(),
        capacity,
    };
    let receiver = QueueReceiver {
        rx,
        permits,
        capacity,
        max_batch_rows,
        metrics,
        tail,
    };
    (queue, receiver)
}

impl WriteQueue {
    /// Queues the batch and waits for its commit; returns the ids of its logs.
    pub(super) async fn push(&self, batch: WriteBatch) -> Result<Vec<i64>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let rows = batch.len();
        if rows > self.capacity {
            return Err(StoreError::TooLarge {
                rows,
                capacity: self.capacity,
            });
        }
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(rows as u32)
            .map_err(|_| StoreError::QueueFull)?;
        let (done, done_rx) = oneshot::channel();
        self.tx
            .send(WriteJob {
                batch,
                done,
                _permit: permit,
            })
            .map_err(|_| StoreError::Closed)?;
        done_rx.await.map_err(|_| StoreError::Closed)?
    }

    /// True once the writer has stopped.
    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl QueueReceiver {
    /// Waits for the next group; `None` once every handle is gone and the queue is drained.
    pub async fn next_group(&mut self) -> Option<CommitGroup> {
        let first = self.rx.recv().await?;
        Some(self.group_from(first))
    }

    /// [`QueueReceiver::next_group`] for a writer running on its own thread.
    pub fn blocking_next_group(&mut self) -> Option<CommitGroup> {
        let first = self.rx.blocking_recv()?;
        Some(self.group_from(first))
    }

    /// Adds whatever else is already queued, up to `max_batch_rows`, to `first`.
    fn group_from(&mut self, first: WriteJob) -> CommitGroup {
        let mut rows = first.batch.len();
        let mut jobs = vec![first];
        while rows < self.max_batch_rows {
            match self.rx.try_recv() {
                Ok(job) => {
                    rows += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        CommitGroup {
            jobs,
            rows,
            started: Instant::now(),
        }
    }

    /// Answers every caller of the group: its log ids after a commit (one list per job, in
    /// order; the committed logs are published to the live tail first), or the error of the rolled-back transaction. Records the commit's duration and
    /// size, and the queue depth.
    pub fn finish(&self, group: CommitGroup, result: Result<Vec<Vec<i64>>, StoreError>) {
        let metrics = &self.metrics;
        metrics
            .commit_seconds
            .observe(group.started.elapsed().as_secs_f64());
        metrics.commit_rows.observe(group.rows as f64);
        match result {
            Ok(ids) => {
                // Published before the callers hear of the commit, so a live tail has a log by
                // the time its ingest call returns.
                for (job, ids) in group.jobs.iter().zip(&ids) {
                    self.tail.publish(&job.batch.tenant, &job.batch.logs, ids);
                }
                for (job, ids) in group.jobs.into_iter().zip(ids) {
                    let _ = job.done.send(Ok(ids));
                }
            }
            Err(err) => {
                metrics.commit_failures.inc();
                tracing::error!(error = %err, rows = group.rows, "group commit failed");
                let message = err.to_string();
                for job in group.jobs {
                    let _ = job.done.send(Err(StoreError::WriteFailed(message.clone())));
                }
            }
        }
        metrics
            .queued_rows
            .set((self.capacity - self.permits.available_permits()) as i64);
    }
}
