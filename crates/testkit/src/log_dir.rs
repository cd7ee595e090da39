//! The `LOG_DIR` of a test's services: their JSON log files and the outbox, in a temporary
//! directory of their own.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Outbox;

/// A temporary `LOG_DIR`, removed when dropped: `<service>.log` (one JSON object per line) for
/// each service and `outbox.jsonl` for the e-mails.
#[derive(Debug)]
pub struct LogDir {
    dir: tempfile::TempDir,
}

impl LogDir {
    /// Creates an empty log directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("tracehop-test-")
                .tempdir()
                .expect("a temporary log directory"),
        }
    }

    /// Returns the directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Returns the JSON lines `service` has logged so far (`<service>.log`).
    pub fn lines(&self, service: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join(format!("{service}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Returns the JSON lines of `service` whose `message` is `message`.
    pub fn messages(&self, service: &str, message: &str) -> Vec<Value> {
        let mut lines = self.lines(service);
        lines.retain(|l| l["message"] == message);
        lines
    }

    /// Returns the e-mails sent so far (`outbox.jsonl`).
    pub fn outbox(&self) -> Outbox {
        Outbox::read(&self.dir.path().join("outbox.jsonl"))
    }

    /// Waits until `pred` holds for the outbox and returns it; panics after `timeout`, showing
    /// the outbox as it was.
    pub async fn wait_for_outbox(
        &self,
        timeout: Duration,
        pred: impl Fn(&Outbox) -> bool,
    ) -> Outbox {
        let deadline = Instant::now() + timeout;
        loop {
            let outbox = self.outbox();
            if pred(&outbox) {
                return outbox;
            }
            assert!(
                Instant::now() < deadline,
                "the outbox never satisfied the condition within {timeout:?}; got {:#?}",
                outbox.entries
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every order of `order_ids` has an e-mail, and returns the outbox then.
    pub async fn wait_until_emailed(&self, order_ids: &[&str], timeout: Duration) -> Outbox {
        crate::wait_until("every confirmed order to be e-mailed", timeout, || async {
            let outbox = self.outbox();
            order_ids
                .iter()
                .all(|id| outbox.count(id) > 0)
                .then_some(outbox)
        })
        .await
    }
}

impl Default for LogDir {
    fn default() -> Self {
        Self::new()
    }
}
