//! The stop contract of every tracehop server.
//!
//! On SIGINT or SIGTERM (or [`Stop::stop`] in tests), in this order:
//! 1. intake stops at once: listeners close and the consumer cancels its subscription;
//! 2. in-flight requests and deliveries finish;
//! 3. background tasks that serve them (the publisher waiting for its last confirms, the store's
//!    writer committing its queue) are told to finish, and are joined;
//! 4. telemetry is flushed.
//!
//! Steps 1 to 3 end within [`STOP_DEADLINE`] of the signal, whatever a peer does; step 4 takes
//! at most [`FLUSH_DEADLINE`] more. So a process exits within six seconds of being asked to,
//! which keeps `docker stop` (10 s before SIGKILL) and rolling restarts from killing it mid-write.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::instrument::WithSubscriber;

/// From the stop signal until every request, delivery and background task is done.
pub const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// For the last export of spans and logs: a local collector takes milliseconds for the last
/// batch; an absent one must not hold the exit.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(1);

/// One server's stop: the intake token its listeners and consumers watch, the background token
/// its helper tasks watch, and the tracker that joins those tasks. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    intake: CancellationToken,
    background: CancellationToken,
    tasks: TaskTracker,
    deadline: Arc<OnceLock<Instant>>,
}

impl Stop {
    /// Creates a stop that nothing has triggered yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops intake and starts the deadline (idempotent).
    pub fn stop(&self) {
        self.deadline.get_or_init(|| Instant::now() + STOP_DEADLINE);
        self.intake.cancel();
    }

    /// Stops intake on the first SIGINT or SIGTERM.
    pub fn stop_on_signal(&self) {
        let stop = self.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("stop requested");
            stop.stop();
        });
    }

    /// Completes once intake has stopped: what listeners and consumers wait for.
    pub fn intake_stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        self.intake.clone().cancelled_owned()
    }

    /// The token of intake, for code that takes a [`CancellationToken`].
    pub fn intake_token(&self) -> CancellationToken {
        self.intake.clone()
    }

    /// The token of background work, cancelled by [`Stop::join`] after intake has drained, so a
    /// publisher still confirms the events of the last requests.
    pub fn background_token(&self) -> CancellationToken {
        self.background.clone()
    }

    /// When everything must be done; `None` until stopped.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.get().copied()
    }

    /// Runs `task` in the caller's dispatcher and joins it in [`Stop::join`].
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task.with_current_subscriber())
    }

    /// Waits for `work` until the deadline (counted from now when not stopped yet); `None`
    /// when the deadline cut it.
    pub async fn drain<F: Future>(&self, work: F) -> Option<F::Output> {
        let deadline = self
            .deadline()
            .unwrap_or_else(|| Instant::now() + STOP_DEADLINE);
        tokio::time::timeout_at(deadline, work).await.ok()
    }

    /// Stops everything that is still running and waits for the spawned tasks until the
    /// deadline; `false` (and a warning) when some were still running then.
    pub async fn join(&self) -> bool {
        self.stop();
        self.background.cancel();
        self.tasks.close();
        let joined = self.drain(self.tasks.wait()).await.is_some();
        if !joined {
            tracing::warn!(
                tasks = self.tasks.len(),
                deadline_s = STOP_DEADLINE.as_secs(),
                "background tasks still running at the stop deadline"
            );
        }
        joined
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn background_work_ends_after_intake_and_within_the_deadline() {
        let stop = Stop::new();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (intake, background) = (stop.intake_stopped(), stop.background_token());
        let log = order.clone();
        stop.spawn(async move {
            intake.await;
            log.lock().unwrap().push("intake");
        });
        let log = order.clone();
        stop.spawn(async move {
            background.cancelled().await;
            log.lock().unwrap().push("background");
        });
        stop.spawn(std::future::pending::<()>());
        let started = Instant::now();
        stop.stop();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(*order.lock().unwrap(), ["intake"]);
        assert!(!stop.join().await, "the pending task outlives the deadline");
        assert_eq!(*order.lock().unwrap(), ["intake", "background"]);
        assert_eq!(started.elapsed(), STOP_DEADLINE);
    }
}
