//! The outbox: one JSON line per e-mail actually sent, and the memory of which events were sent.
//!
//! The recent sent event ids are rebuilt from the file at start-up, so a redelivered event
//! never sends a second e-mail, across restarts and crashes included. The check, the write and the
//! insertion happen under one lock, so two concurrent deliveries of one event cannot both send.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

/// One sent e-mail, as written to the outbox.
#[derive(Debug, Serialize)]
pub(crate) struct SentEmail<'a> {
    pub(crate) order_id: &'a str,
    pub(crate) event_id: &'a str,
    pub(crate) to: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) sent_at: String,
    pub(crate) trace_id: Option<String>,
}

pub(crate) struct Outbox {
    inner: Mutex<Inner>,
}

struct Inner {
    file: File,
    sent: Recent,
}

/// The ids of the most recent e-mails, oldest forgotten first.
///
/// Only a delivery that was sent but not yet acked can come back, and the prefetch bounds how
/// many those are, so remembering the last [`REMEMBERED`] sends is ample, and memory stays
/// flat however long the service runs.
#[derive(Default)]
struct Recent {
    ids: HashSet<u128>,
    order: VecDeque<u128>,
}

/// How many sent event ids are remembered (about 5 MB).
const REMEMBERED: usize = 100_000;

impl Recent {
    fn contains(&self, k: &u128) -> bool {
        self.ids.contains(k)
    }

    fn insert(&mut self, k: u128) {
        if self.ids.insert(k) {
            self.order.push_back(k);
            if self.order.len() > REMEMBERED
                && let Some(oldest) = self.order.pop_front()
            {
                self.ids.remove(&oldest);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// A compact key: a UUID's 128 bits, or a 128-bit hash of any other id.
fn key(event_id: &str) -> u128 {
    if let Ok(uuid) = uuid::Uuid::parse_str(event_id) {
        return uuid.as_u128();
    }
    let mut a = std::collections::hash_map::DefaultHasher::new();
    event_id.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (event_id, 0x9e37_79b9_u32).hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

impl Outbox {
    /// Opens (appending) the outbox and loads the ids already sent.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut sent = Recent::default();
        if let Ok(existing) = File::open(path) {
            for line in BufReader::new(existing).lines() {
                let line = line?;
                // A torn last line (crash mid-write) is skipped: its e-mail is sent again, once.
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(id) = value.get("event_id").and_then(|v| v.as_str())
                {
                    sent.insert(key(id));
                }
            }
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        // End a torn last line so the next record starts on a line of its own.
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            let reader = File::open(path)?;
            std::os::unix::fs::FileExt::read_exact_at(&reader, &mut last, len - 1)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(Self {
            inner: Mutex::new(Inner { file, sent }),
        })
    }

    /// Whether `event_id` was already sent.
    pub(crate) fn contains(&self, event_id: &str) -> bool {
        self.lock().sent.contains(&key(event_id))
    }

    /// Writes the line unless the event was already sent; returns whether it wrote.
    pub(crate) fn record_once(&self, email: &SentEmail<'_>) -> std::io::Result<bool> {
        let mut inner = self.lock();
        let k = key(email.event_id);
        if inner.sent.contains(&k) {
            return Ok(false);
        }
        let mut line = serde_json::to_vec(email).map_err(std::io::Error::other)?;
        line.push(b'\n');
        // One write of the whole line: a crash leaves the line complete or torn, never interleaved.
        inner.file.write_all(&line)?;
        inner.sent.insert(k);
        Ok(true)
    }

    /// Number of distinct events sent.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().sent.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email<'a>(event_id: &'a str) -> SentEmail<'a> {
        SentEmail {
            order_id: "o",
            event_id,
            to: "a@example.com",
            subject: "s",
            sent_at: "t".into(),
            trace_id: None,
        }
    }

    #[test]
    fn remembers_a_bounded_window_of_recent_sends() {
        let mut recent = Recent::default();
        for k in 0..(REMEMBERED as u128 + 10) {
            recent.insert(k);
        }
        assert_eq!(recent.len(), REMEMBERED);
        assert!(!recent.contains(&0));
        assert!(recent.contains(&(REMEMBERED as u128 + 9)));
    }

    #[test]
    fn sends_once_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let outbox = Outbox::open(&path).unwrap();
        let id = "0b4c5a52-8c5e-4c1d-9b0e-1f2a3b4c5d6e";
        assert!(outbox.record_once(&email(id)).unwrap());
        assert!(!outbox.record_once(&email(id)).unwrap());
        assert!(outbox.record_once(&email("plain-id")).unwrap());
        drop(outbox);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"torn")
            .unwrap();
        let outbox = Outbox::open(&path).unwrap();
        assert_eq!(outbox.len(), 2);
        assert!(outbox.contains(id));
        assert!(!outbox.record_once(&email("plain-id")).unwrap());
        assert!(outbox.record_once(&email("after-torn")).unwrap());
        drop(outbox);
        assert!(Outbox::open(&path).unwrap().contains("after-torn"));
    }
}
