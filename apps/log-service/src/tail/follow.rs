//! One client's live tail: the replay of what it missed, then its tenant's matching live logs.

use std::collections::VecDeque;
use std::sync::Arc;

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

/// What a tail yields next.
#[derive(Debug)]
pub enum Item {
    /// A committed log.
    Log(Arc<LogView>),
    /// The client fell behind the hub and this many logs were dropped for it.
    Lagged(u64),
}

/// A client's tail; the subscription is taken before the replay, so nothing committed meanwhile
/// is lost, and live logs at or below the last id sent are skipped, so nothing comes twice.
pub struct Follow {
    sub: Subscription,
    store: Store,
    tenant: String,
    filter: LogFilter,
    /// Id of the last log sent (or the resume point).
    cursor: i64,
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
            match self.sub.rx.recv().await {
                Ok(log) => {
                    if log.id > self.cursor
                        && log.tenant_id == self.tenant
                        && matches(&self.filter, &log)
                    {
                        self.cursor = log.id;
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
}
