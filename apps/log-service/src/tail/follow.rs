//! One client's live tail: the replay of what it missed, then its tenant's matching live logs.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;

use super::filter::matches;
use super::hub::{Hub, Subscription};
use crate::model::{LogFilter, LogView};
use crate::storage::{Store, StoreError};

/// Logs read from the store per replay query.
const REPLAY_PAGE: u32 = 1000;
/// Most logs one connection replays; a client further behind gets the rest on its next
/// connection (it resumes from the last id it received), so the replay is bounded and gapless.
pub const MAX_REPLAY: usize = 10_000;
/// How long after its replay a tail still expects live copies of replayed logs: a log a peer
/// replica committed is published here only once its notification has arrived and its rows
/// have been read back, a few milliseconds after the replay could read it from the table.
const OVERLAP_GRACE: Duration = Duration::from_secs(10);

/// What a tail yields next.
#[derive(Debug)]
pub enum Item {
    /// A committed log.
    Log(Arc<LogView>),
    /// The client fell behind the hub and this many logs were dropped for it.
    Lagged(u64),
}

/// A client's tail; the subscription is taken before the replay, so nothing committed meanwhile
/// is lost, and live copies of replayed logs are skipped, so nothing comes twice.
///
/// The skip is by id, not by "at or below the last id sent": with several replicas writing,
/// ids are not committed in order, and a peer's log may carry a lower id than one already sent.
/// Each log reaches the hub once, so only the overlap of the replay with the live logs needs
/// the set of replayed ids, which is bounded by [`MAX_REPLAY`] and dropped once no live copy
/// can still come.
pub struct Follow {
    sub: Subscription,
    store: Store,
    tenant: String,
    filter: LogFilter,
    /// Id of the last log replayed (or the resume point): where the next replay page starts.
    cursor: i64,
    /// Ids replayed whose live copy may still be queued in the subscription.
    replayed_ids: HashSet<i64>,
    /// When the replay ended, for dropping `replayed_ids`.
    replay_ended: Option<Instant>,
    pending: VecDeque<Arc<LogView>>,
    replaying: bool,
    replayed: usize,
    /// The replay stopped at [`MAX_REPLAY`] with more to come: end after `pending`.
    end_after_pending: bool,
}

impl Follow {
    /// Subscribes to `hub`, then reads the first replay page when `after_id` is given.
    pub async fn open(
        hub: &Hub,
        store: Store,
        tenant: String,
        filter: LogFilter,
        after_id: Option<i64>,
    ) -> Result<Follow, StoreError> {
        let sub = hub.subscribe();
        let mut follow = Follow {
            sub,
            store,
            tenant,
            filter,
            cursor: after_id.unwrap_or(0),
            replayed_ids: HashSet::new(),
            replay_ended: None,
            pending: VecDeque::new(),
            replaying: after_id.is_some(),
            replayed: 0,
            end_after_pending: false,
        };
        if follow.replaying {
            follow.replay_page().await?;
        }
        Ok(follow)
    }

    async fn replay_page(&mut self) -> Result<(), StoreError> {
        let after = self.pending.back().map_or(self.cursor, |l| l.id);
        let page = self
            .store
            .logs_after(&self.tenant, &self.filter, after, REPLAY_PAGE)
            .await?;
        let full = page.len() as u32 == REPLAY_PAGE;
        self.replayed += page.len();
        self.pending.extend(page.into_iter().map(Arc::new));
        if !full {
            self.replaying = false;
        } else if self.replayed >= MAX_REPLAY {
            self.replaying = false;
            self.end_after_pending = true;
        }
        Ok(())
    }

    /// The next item; `None` when the tail ends (replay bound reached, hub closed).
    pub async fn next(&mut self) -> Option<Result<Item, StoreError>> {
        loop {
            if let Some(log) = self.pending.pop_front() {
                self.cursor = log.id;
                self.replayed_ids.insert(log.id);
                return Some(Ok(Item::Log(log)));
            }
            if self.replaying {
                if let Err(err) = self.replay_page().await {
                    return Some(Err(err));
                }
                continue;
            }
            if self.end_after_pending {
                return None;
            }
            self.forget_replayed_when_drained();
            match self.sub.rx.recv().await {
                Ok(log) => {
                    // Each replayed log comes live at most once: forget it when it does.
                    if !self.replayed_ids.remove(&log.id)
                        && log.tenant_id == self.tenant
                        && matches(&self.filter, &log)
                    {
                        return Some(Ok(Item::Log(log)));
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    let metrics = &self.sub.metrics;
                    metrics.stream_lagged.inc();
                    metrics.stream_skipped.inc_by(n);
                    return Some(Ok(Item::Lagged(n)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Drops the replayed ids once the subscription is drained well after the replay ended:
    /// every live copy of a replayed log was published within [`OVERLAP_GRACE`] of the end, so
    /// it has been received by then.
    fn forget_replayed_when_drained(&mut self) {
        if self.replayed_ids.is_empty() {
            return;
        }
        let ended = *self.replay_ended.get_or_insert_with(Instant::now);
        if ended.elapsed() >= OVERLAP_GRACE && self.sub.rx.is_empty() {
            self.replayed_ids = HashSet::new();
        }
    }
}
