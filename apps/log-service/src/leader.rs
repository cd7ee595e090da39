//! Leadership among replicas on one database: the leader evaluates alert rules and runs
//! periodic retention, the others skip both, so a rule fires once and a day is dropped once.
//!
//! On PostgreSQL the leader is the replica whose dedicated session holds the session-level
//! advisory lock [`LEADER_LOCK`] (`pg_try_advisory_lock`). Every [`RETRY`] a follower tries to
//! take it and the leader checks its session; PostgreSQL releases the lock when the session ends
//! (a stop, a crash, SIGKILL), so another replica leads within about one interval. A leader whose
//! session fails a check steps down at once, before PostgreSQL may hand the lock to another.
//! On SQLite the single process always leads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_postgres::Client;

use crate::config::DatabaseConfig;
use crate::metrics::Metrics;
use crate::storage::connect_postgres;

/// The advisory lock whose holder leads ("logslead").
pub const LEADER_LOCK: i64 = 0x6c6f_6773_6c65_6164;

/// Between two attempts to lead, and between two checks of the leader's session.
pub const RETRY: Duration = Duration::from_secs(1);

/// Whether this replica leads now; cheap to clone.
#[derive(Debug, Clone)]
pub struct Leader {
    leading: Arc<AtomicBool>,
}

impl Leader {
    /// Starts campaigning on `database` (SQLite: leads at once) until intake stops; the
    /// `log_service_leader` gauge and the log follow every change.
    pub fn start(
        database: &DatabaseConfig,
        replica: &str,
        metrics: Metrics,
        stop: &server::Stop,
    ) -> Leader {
        let leader = Leader {
            leading: Arc::new(AtomicBool::new(false)),
        };
        match database {
            DatabaseConfig::Sqlite { .. } => {
                leader.set(true, &metrics);
                tracing::info!(replica, "leading: a single process on sqlite");
            }
            DatabaseConfig::Postgres { url } => {
                let campaign = Campaign {
                    url: url.clone(),
                    replica: replica.to_owned(),
                    leader: leader.clone(),
                    metrics,
                    following_logged: false,
                };
                stop.spawn(campaign.run(stop.intake_stopped()));
            }
        }
        leader
    }

    /// True while this replica leads.
    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    fn set(&self, leading: bool, metrics: &Metrics) {
        self.leading.store(leading, Ordering::Release);
        metrics.leader.set(leading as i64);
    }
}

/// The PostgreSQL side: a session of its own, taken and checked every [`RETRY`].
struct Campaign {
    url: String,
    replica: String,
    leader: Leader,
    metrics: Metrics,
    /// "following" is logged once per stretch as a follower, not every second.
    following_logged: bool,
}

impl Campaign {
    async fn run(mut self, stopped: impl std::future::Future<Output = ()>) {
        tokio::pin!(stopped);
        let mut ticks = tokio::time::interval(RETRY);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut session: Option<Client> = None;
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = ticks.tick() => {}
            }
            let client = match session.take() {
                Some(client) => client,
                None => match tokio::time::timeout(RETRY * 5, connect_postgres(&self.url)).await {
                    Ok(Ok(client)) => client,
                    Ok(Err(error)) => {
                        self.failed("leadership session not connected", &error);
                        continue;
                    }
                    Err(elapsed) => {
                        self.failed("leadership session not connected", &elapsed);
                        continue;
                    }
                },
            };
            session = self.step(client).await;
        }
        if let Some(client) = session
            && self.leader.is_leader()
        {
            // Closing the session releases the lock too; unlocking first hands over sooner.
            let unlock = client.execute("SELECT pg_advisory_unlock($1)", &[&LEADER_LOCK]);
            let _ = tokio::time::timeout(RETRY, unlock).await;
            tracing::info!(replica = %self.replica, "leadership released at stop");
        }
        self.leader.set(false, &self.metrics);
    }

    /// One round: the leader checks its session, a follower tries to lead. Returns the session
    /// to keep, `None` when it failed (a leader then steps down).
    async fn step(&mut self, client: Client) -> Option<Client> {
        if self.leader.is_leader() {
            let check = tokio::time::timeout(RETRY, client.simple_query("SELECT 1")).await;
            let failure = match check {
                Ok(Ok(_)) if !client.is_closed() => return Some(client),
                Ok(Ok(_)) => "connection closed".to_owned(),
                Ok(Err(error)) => error.to_string(),
                Err(elapsed) => elapsed.to_string(),
            };
            self.leader.set(false, &self.metrics);
            self.metrics.leader_errors.inc();
            tracing::warn!(replica = %self.replica, error = %failure, "leadership lost: its session failed");
            return None;
        }
        let taken = tokio::time::timeout(
            RETRY,
            client.query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK]),
        )
        .await;
        match taken {
            Ok(Ok(row)) => {
                if row.get::<_, bool>(0) {
                    self.leader.set(true, &self.metrics);
                    self.following_logged = false;
                    tracing::info!(replica = %self.replica, "leadership taken");
                } else if !self.following_logged {
                    self.following_logged = true;
                    tracing::info!(replica = %self.replica, "following: another replica leads");
                }
                Some(client)
            }
            Ok(Err(error)) => {
                self.failed("leadership lock not tried", &error);
                None
            }
            Err(elapsed) => {
                self.failed("leadership lock not tried", &elapsed);
                None
            }
        }
    }

    fn failed(&self, what: &'static str, error: &dyn std::fmt::Display) {
        self.metrics.leader_errors.inc();
        tracing::warn!(replica = %self.replica, error = %error, "{what}");
    }
}
