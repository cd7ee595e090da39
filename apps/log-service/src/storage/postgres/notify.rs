//! The live tail across replicas: every commit `NOTIFY`s [`CHANNEL`] with the committing
//! replica's id, the tenant and the committed log ids (as ranges), inside the commit's own
//! transaction, so PostgreSQL delivers it exactly when the rows become visible. Each replica
//! runs [`listen`] on a dedicated connection: it skips its own notifications (its writer has
//! published those already), reads the peer's rows by id and publishes them into its own hub.
//!
//! A lost connection is never fatal: the listener logs and counts it, then reconnects with
//! backoff. Commits notified while it was away are not replayed to live tails (a client that
//! resumes with `Last-Event-ID` reads them from the tables; see docs/architecture.md).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls, Notification};

use super::reader::{LOG_COLUMNS, log_from_row};
use crate::metrics::Metrics;
use crate::storage::WriteJob;
use crate::tail::Hub;

/// The channel every replica's writer notifies and every replica listens on.
pub const CHANNEL: &str = "log_service_commits";

/// The listener's `application_name`.
pub const APPLICATION_NAME: &str = "log-service tail listener";

/// Most bytes of one payload: PostgreSQL refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7900;

/// First and longest wait before reconnecting the listener.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Notifications waiting for their rows to be read; past it the connection is not read further
/// (PostgreSQL queues them meanwhile).
const PENDING: usize = 1024;

/// One notification: the logs `ids` (inclusive ranges) of `tenant`, committed by `replica`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Commit {
    replica: String,
    tenant: String,
    ids: Vec<(i64, i64)>,
}

/// Sorted ids as inclusive ranges of consecutive ids.
fn ranges(mut ids: Vec<i64>) -> Vec<(i64, i64)> {
    ids.sort_unstable();
    ids.dedup();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for id in ids {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == id => *end = id,
            _ => out.push((id, id)),
        }
    }
    out
}

/// The payloads announcing a commit of `jobs` whose logs got `ids` (one list per job): one per
/// tenant, split so that none reaches PostgreSQL's payload limit.
pub(super) fn payloads(replica: &str, jobs: &[WriteJob], ids: &[Vec<i64>]) -> Vec<String> {
    let mut by_tenant: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (job, ids) in jobs.iter().zip(ids) {
        if !ids.is_empty() {
            by_tenant
                .entry(job.batch.tenant.as_str())
                .or_default()
                .extend(ids);
        }
    }
    by_tenant
        .into_iter()
        .flat_map(|(tenant, ids)| split(replica, tenant, ids))
        .collect()
}

/// The payloads announcing `ids` of `tenant`, each below PostgreSQL's payload limit.
fn split(replica: &str, tenant: &str, ids: Vec<i64>) -> Vec<String> {
    let mut out = Vec::new();
    let mut commit = Commit {
        replica: replica.to_owned(),
        tenant: tenant.to_owned(),
        ids: Vec::new(),
    };
    let header = serde_json::to_string(&commit).map_or(0, |s| s.len());
    let mut size = header;
    for range in ranges(ids) {
        // `[a,b],`: the digits, the brackets and a comma.
        let len = format!("[{},{}],", range.0, range.1).len();
        if !commit.ids.is_empty() && size + len > MAX_PAYLOAD {
            out.extend(serde_json::to_string(&commit));
            commit.ids.clear();
            size = header;
        }
        commit.ids.push(range);
        size += len;
    }
    out.extend(serde_json::to_string(&commit));
    out
}

/// Why a listening session ended.
#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("connection closed")]
    Closed,
}

/// A connection listening on [`CHANNEL`], driven by a task of its own that hands over the
/// notifications.
pub(super) struct Session {
    client: Client,
    notifications: mpsc::Receiver<Result<Notification, tokio_postgres::Error>>,
}

/// Connects and listens: at start, so that a replica is listening once it is up.
pub(super) async fn subscribe(url: &str) -> Result<Session, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    // So that pg_stat_activity tells the listener from the other connections.
    config.application_name(APPLICATION_NAME);
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, notifications) = mpsc::channel(PENDING);
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            let item = match message {
                Ok(AsyncMessage::Notification(n)) => Ok(n),
                Ok(_) => continue,
                Err(error) => Err(error),
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok(Session {
        client,
        notifications,
    })
}

/// Publishes the other replicas' commits into `hub` from `first`, then from each new session
/// after a failure, until `stopped`.
pub(super) async fn listen(
    url: String,
    first: Session,
    replica: String,
    hub: Hub,
    metrics: Metrics,
    stopped: impl Future<Output = ()>,
) {
    tokio::pin!(stopped);
    let mut backoff = MIN_BACKOFF;
    let mut next = Some(first);
    loop {
        let session = match next.take() {
            Some(session) => Ok(session),
            None => tokio::select! {
                _ = &mut stopped => return,
                session = subscribe(&url) => session,
            },
        };
        let error = match session {
            Ok(session) => {
                backoff = MIN_BACKOFF;
                tracing::debug!(channel = CHANNEL, "listening for peer commits");
                tokio::select! {
                    _ = &mut stopped => return,
                    error = session.run(&replica, &hub, &metrics) => error,
                }
            }
            Err(error) => error.into(),
        };
        metrics.tail_listen_errors.inc();
        tracing::warn!(%error, retry_ms = backoff.as_millis() as u64, "peer commit listener disconnected");
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

impl Session {
    /// Handles notifications until the connection fails; returns why it did.
    async fn run(mut self, replica: &str, hub: &Hub, metrics: &Metrics) -> ListenError {
        loop {
            let notification = match self.notifications.recv().await {
                Some(Ok(notification)) => notification,
                Some(Err(error)) => return error.into(),
                None => return ListenError::Closed,
            };
            if let Err(error) = handle(&self.client, replica, hub, metrics, &notification).await {
                return error.into();
            }
        }
    }
}

/// Publishes the logs of one peer commit; a payload that does not parse is counted and skipped.
async fn handle(
    client: &Client,
    replica: &str,
    hub: &Hub,
    metrics: &Metrics,
    notification: &Notification,
) -> Result<(), tokio_postgres::Error> {
    let commit: Commit = match serde_json::from_str(notification.payload()) {
        Ok(commit) => commit,
        Err(error) => {
            metrics.tail_listen_errors.inc();
            tracing::warn!(%error, "peer commit notification unreadable");
            return Ok(());
        }
    };
    if commit.replica == replica || !hub.has_subscribers() {
        return Ok(());
    }
    let ids: Vec<i64> = commit.ids.iter().flat_map(|&(a, b)| a..=b).collect();
    let rows = client
        .query(
            &format!(
                "SELECT {LOG_COLUMNS} FROM log_entries WHERE tenant_id = $1 AND id = ANY($2) \
                 ORDER BY id"
            ),
            &[&commit.tenant, &ids],
        )
        .await?;
    metrics.tail_peer_logs.inc_by(rows.len() as u64);
    for row in &rows {
        hub.publish(log_from_row(row));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_ranges_of_consecutive_ids() {
        assert_eq!(
            ranges(vec![7, 3, 4, 5, 9, 10, 4]),
            vec![(3, 5), (7, 7), (9, 10)]
        );
        assert!(ranges(Vec::new()).is_empty());
    }

    #[test]
    fn a_large_commit_is_split_below_the_payload_limit_and_loses_no_id() {
        let ids: Vec<i64> = (0..5000).map(|i| 1_000_000_000_000 + i * 2).collect();

        let chunks = split("replica-a", "acme", ids.clone());

        assert!(chunks.len() > 1, "{} payloads", chunks.len());
        let mut seen = Vec::new();
        for chunk in &chunks {
            assert!(chunk.len() < 8000, "{} bytes", chunk.len());
            let commit: Commit = serde_json::from_str(chunk).unwrap();
            assert_eq!(
                (commit.replica.as_str(), commit.tenant.as_str()),
                ("replica-a", "acme")
            );
            seen.extend(commit.ids.iter().flat_map(|&(a, b)| a..=b));
        }
        assert_eq!(seen, ids);
    }

    #[test]
    fn a_contiguous_commit_is_one_small_payload() {
        let chunks = split("r", "acme", (100..=20_100).collect());
        assert_eq!(
            chunks,
            vec![r#"{"replica":"r","tenant":"acme","ids":[[100,20100]]}"#.to_owned()]
        );
    }
}
