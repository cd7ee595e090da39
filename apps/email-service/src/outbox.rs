//! The outbox: one JSON line per e-mail actually sent, and the memory of which events were sent.
//!
//! Every replica of email-service may append to the same outbox file (one shared volume): the
//! file, not a process's memory, says what was sent. A replica takes the file's exclusive lock,
//! reads the lines other replicas appended since it last looked, and only then decides and
//! writes, so two replicas given the same event (a redelivery after a crash lands on any of
//! them) cannot both send it. The lock is the operating system's (`flock`), released when the
//! holder exits, a crash included. Within one process the check, the write and the insertion
//! happen under one mutex as well.

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use hashbrown::HashTable;
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
    /// The append handle; its lock is the outbox's lock across replicas.
    file: File,
    /// A read handle for the lines other replicas append.
    reader: File,
    /// How far the file has been read: the end of the last complete line seen.
    read_to: u64,
    sent: Recent,
}

impl Inner {
    /// Reads the complete lines appended since the last look and remembers their event ids. A
    /// line without its newline yet is left for the next look: it may be another replica's
    /// write in progress (or a crashed writer's torn line, which [`Inner::end_torn_line`]
    /// settles under the lock).
    fn catch_up(&mut self) -> std::io::Result<()> {
        if self.reader.metadata()?.len() <= self.read_to {
            return Ok(());
        }
        self.reader.seek(SeekFrom::Start(self.read_to))?;
        let mut lines = BufReader::new(&self.reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = lines.read_until(b'\n', &mut line)?;
            if read == 0 || line.last() != Some(&b'\n') {
                return Ok(());
            }
            self.read_to += read as u64;
            // A torn line (a crash mid-write) is skipped: its e-mail is sent again, once.
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&line)
                && let Some(id) = value.get("event_id").and_then(|v| v.as_str())
            {
                self.sent.insert(key(id));
            }
        }
    }

    /// With the lock held and the file read, bytes past the last complete line can only be a
    /// crashed writer's torn line: ends it, so the next record starts on a line of its own.
    fn end_torn_line(&mut self) -> std::io::Result<()> {
        let len = self.file.metadata()?.len();
        if len > self.read_to {
            self.file.write_all(b"\n")?;
            self.read_to = len + 1;
        }
        Ok(())
    }

    /// Runs `work` holding the lock every replica takes, with the other replicas' lines read.
    fn locked<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        self.file.lock()?;
        let result = self
            .catch_up()
            .and_then(|()| self.end_torn_line())
            .and_then(|()| work(self));
        self.file.unlock()?;
        result
    }
}

/// The ids of the most recent e-mails, oldest forgotten first.
///
/// Only a delivery that was sent but not yet acked can come back, and the prefetch bounds how
/// many those are, so remembering the last [`REMEMBERED`] sends is ample, and memory stays
/// flat however long the service runs: a ring of the keys and a hash table of their places in
/// it, so each key is stored once, both sized at the start and never grown.
struct Recent {
    ring: Vec<u128>,
    /// Where the next key goes; once the ring is full, the place of the oldest key.
    next: usize,
    places: HashTable<u32>,
    hasher: RandomState,
}

/// How many sent event ids are remembered (1.6 MB of keys, 1.3 MB of table).
const REMEMBERED: usize = 100_000;

impl Default for Recent {
    fn default() -> Self {
        Recent {
            ring: Vec::with_capacity(REMEMBERED),
            next: 0,
            // Room for twice the keys: a table that loses one entry and gains one per send
            // reclaims its deleted slots in place only while it is at most half full; fuller,
            // it doubles instead (a set of 100,000 ids held 4.5 MB that way).
            places: HashTable::with_capacity(2 * REMEMBERED),
            hasher: RandomState::new(),
        }
    }
}

impl Recent {
    fn contains(&self, k: &u128) -> bool {
        let ring = &self.ring;
        self.places
            .find(self.hasher.hash_one(k), |&place| ring[place as usize] == *k)
            .is_some()
    }

    fn insert(&mut self, k: u128) {
        if self.contains(&k) {
            return;
        }
        let Recent {
            ring,
            next,
            places,
            hasher,
        } = self;
        if ring.len() < REMEMBERED {
            ring.push(k);
        } else {
            let oldest = hasher.hash_one(ring[*next]);
            if let Ok(entry) = places.find_entry(oldest, |&place| place as usize == *next) {
                entry.remove();
            }
            ring[*next] = k;
        }
        let place = u32::try_from(*next).expect("REMEMBERED fits in u32");
        places.insert_unique(hasher.hash_one(k), place, |&p| {
            hasher.hash_one(ring[p as usize])
        });
        *next = (*next + 1) % REMEMBERED;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.places.len()
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
    /// Opens (appending) the outbox and loads the ids already sent, by this replica or any
    /// other.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let mut inner = Inner {
            reader: File::open(path)?,
            file,
            read_to: 0,
            sent: Recent::default(),
        };
        inner.locked(|_| Ok(()))?;
        Ok(Self {
            inner: Mutex::new(inner),
        })
    }

    /// Whether `event_id` was already sent, as far as the lines read so far say: a cheap
    /// early answer for redeliveries, taken without the lock; [`Outbox::record_once`] decides.
    pub(crate) fn contains(&self, event_id: &str) -> bool {
        let mut inner = self.lock();
        // A failed read leaves the answer to `record_once`, which reports it.
        let _ = inner.catch_up();
        inner.sent.contains(&key(event_id))
    }

    /// Writes the line unless the event was already sent, by this replica or another; returns
    /// whether it wrote.
    pub(crate) fn record_once(&self, email: &SentEmail<'_>) -> std::io::Result<bool> {
        let mut line = serde_json::to_vec(email).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let k = key(email.event_id);
        self.lock().locked(|inner| {
            if inner.sent.contains(&k) {
                return Ok(false);
            }
            // One write of the whole line: a crash leaves the line complete or torn, never
            // interleaved with another replica's.
            inner.file.write_all(&line)?;
            inner.read_to += line.len() as u64;
            inner.sent.insert(k);
            Ok(true)
        })
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
        recent.insert(REMEMBERED as u128 + 9);
        assert_eq!(
            recent.len(),
            REMEMBERED,
            "a key sent again is not stored twice"
        );
        assert!(recent.contains(&10) && !recent.contains(&9));
    }

    #[test]
    fn the_window_never_grows_however_many_sends_pass() {
        let mut recent = Recent::default();
        let (ring, table) = (recent.ring.capacity(), recent.places.allocation_size());
        for k in 0..(5 * REMEMBERED as u128) {
            recent.insert(k.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
        }
        assert_eq!(recent.len(), REMEMBERED);
        assert_eq!(recent.ring.capacity(), ring);
        assert_eq!(recent.places.allocation_size(), table);
        assert!(table < 1_400_000, "{table} bytes of table");
        let newest =
            (5 * REMEMBERED as u128 - 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        assert!(recent.contains(&newest));
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

    #[test]
    fn replicas_sharing_the_file_send_each_event_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let ids: Vec<String> = (0..500).map(|i| format!("event-{i}")).collect();
        // Three replicas, each offered every event, racing.
        let written: usize = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..3)
                .map(|_| {
                    let outbox = Outbox::open(&path).unwrap();
                    let ids = &ids;
                    scope.spawn(move || {
                        ids.iter()
                            .filter(|id| outbox.record_once(&email(id)).unwrap())
                            .count()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).sum()
        });
        assert_eq!(written, ids.len());
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let distinct: std::collections::HashSet<&str> = lines
            .iter()
            .map(|l| l["event_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            ids.len(),
            "every line is one whole record, none twice"
        );
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn a_replica_sees_what_another_sent_and_settles_its_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let first = Outbox::open(&path).unwrap();
        let second = Outbox::open(&path).unwrap();
        assert!(first.record_once(&email("sent-by-first")).unwrap());
        assert!(second.contains("sent-by-first"));
        assert!(!second.record_once(&email("sent-by-first")).unwrap());
        // A third replica dies in the middle of its line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"order_id\":\"o\",\"event_id\":\"torn")
            .unwrap();
        assert!(second.record_once(&email("after-the-crash")).unwrap());
        assert!(first.contains("after-the-crash"));
        let text = std::fs::read_to_string(&path).unwrap();
        let last = text.lines().last().unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(last).unwrap()["event_id"],
            "after-the-crash"
        );
    }
}
