//! The walk by id against the obvious answer: every match of the filter, sorted by (ts, id),
//! on a store whose ids are out of time order in every way the writer allows (a log dated
//! ahead arriving first, late logs, several days written in one batch, a restart, a migrated
//! file), page after page.

use std::path::Path;

use crate::config::DatabaseConfig;
use crate::metrics::Metrics;
use crate::model::{Level, LogContext, LogFilter, NewLog, WriteBatch};
use crate::storage::day::Day;
use crate::storage::sqlite::schema::PartitionNames;
use crate::storage::{Store, WriterHandle, search_terms};
use crate::tail::Hub;

const TENANT: &str = "acme";
const DAY_A: Day = Day(19_700);
const DAY_B: Day = Day(19_701);
const DAY_C: Day = Day(19_702);

const MESSAGES: [&str; 5] = [
    "slow response from upstream, retrying",
    "retrying payment capture",
    "payment authorised",
    "order received",
    "Retrying: upstream TIMEOUT",
];
const SERVICES: [&str; 3] = ["gateway", "payment", "email"];

fn at(day: Day, secs: i64) -> i64 {
    day.start_ns() + secs * 1_000_000_000
}

/// A log as written, with the id the store gave it.
#[derive(Debug, Clone)]
struct Stored {
    id: i64,
    log: NewLog,
}

/// The same pseudo-random sequence on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn log(rng: &mut Rng, ts: i64) -> NewLog {
    let level = match rng.below(12) {
        0 => Level::Error,
        1 | 2 => Level::Warn,
        _ => Level::Info,
    };
    NewLog {
        timestamp_ns: ts,
        service: SERVICES[rng.below(3) as usize].to_owned(),
        level,
        message: MESSAGES[rng.below(5) as usize].to_owned(),
        context: LogContext {
            trace_id: (rng.below(2) == 0).then(|| format!("trace-{}", rng.below(4))),
            ..Default::default()
        },
        metadata: None,
    }
}

async fn open(path: &Path) -> (Store, WriterHandle) {
    let metrics = Metrics::new().expect("metrics");
    let hub = Hub::new(16, metrics.clone());
    let database = DatabaseConfig::Sqlite {
        path: path.to_path_buf(),
    };
    Store::open(
        &database,
        100_000,
        10_000,
        metrics,
        hub,
        "test",
        &server::Stop::new(),
    )
    .await
    .expect("store opens")
}

async fn close(store: Store, writer: WriterHandle) {
    drop(store);
    writer.join().await;
}

/// Writes `logs` as one batch, one commit, and keeps them with their ids.
async fn write(store: &Store, stored: &mut Vec<Stored>, logs: Vec<NewLog>) {
    let mut batch = WriteBatch::new(TENANT);
    batch.logs = logs.clone();
    let ids = store.write(batch).await.expect("batch written");
    stored.extend(
        ids.into_iter()
            .zip(logs)
            .map(|(id, log)| Stored { id, log }),
    );
}

/// The store before a restart: day B begins with a log dated at its last second, then runs
/// forward with jitter in batches of 1 to 600 logs (bounds are written inside a commit too);
/// day A's logs arrive late, some in the same batches as day B's; day C runs forward, then gets
/// a late batch in the middle of its time.
async fn write_before_restart(store: &Store, stored: &mut Vec<Stored>, rng: &mut Rng) {
    let mut first = vec![log(rng, at(DAY_B, 86_399)), log(rng, at(DAY_B, 1))];
    first[0].message = "retrying far ahead".into();
    write(store, stored, first).await;
    let mut secs = 2;
    for (n, size) in [1, 5, 37, 300, 600, 17, 2, 260, 90, 3]
        .into_iter()
        .enumerate()
    {
        let mut logs = Vec::new();
        for _ in 0..size {
            secs += 10;
            let jitter = rng.below(240) as i64 - 120;
            logs.push(log(rng, at(DAY_B, (secs + jitter).max(0))));
        }
        if n % 3 == 1 {
            for _ in 0..40 {
                let ts = at(DAY_A, rng.below(86_400) as i64);
                logs.push(log(rng, ts));
            }
        }
        write(store, stored, logs).await;
    }
    // Late logs: early in day B, long after its bound passed them.
    let late = (0..30).map(|s| log(rng, at(DAY_B, s))).collect();
    write(store, stored, late).await;
    for chunk in 0..4 {
        let logs = (0..150)
            .map(|n| log(rng, at(DAY_C, chunk * 300 + n * 2)))
            .collect();
        write(store, stored, logs).await;
    }
    let late = (0..40).map(|n| log(rng, at(DAY_C, 700 + n * 5))).collect();
    write(store, stored, late).await;
}

/// After a restart: day B's newest logs bar the one dated ahead, in time order. A writer that
/// forgot its running maximum would bound them by their own time, and a walk would stop before
/// the log dated ahead, which has a small id and the latest time.
async fn write_after_restart(store: &Store, stored: &mut Vec<Stored>, rng: &mut Rng) {
    for chunk in 0..3 {
        let logs = (0..200)
            .map(|n| log(rng, at(DAY_B, 80_000 + chunk * 2_000 + n * 10)))
            .collect();
        write(store, stored, logs).await;
    }
}

fn filters() -> Vec<LogFilter> {
    let search = |text: &str| LogFilter {
        search: Some(text.into()),
        ..Default::default()
    };
    let retrying = || search("retrying");
    vec![
        retrying(),
        search("upstream RETRYING"),
        search("payment"),
        search("nothing-like-this"),
        search("!!!"),
        LogFilter {
            service: Some("payment".into()),
            ..retrying()
        },
        LogFilter {
            min_level: Some(Level::Warn),
            ..retrying()
        },
        LogFilter {
            level: Some(Level::Info),
            trace_id: Some("trace-1".into()),
            ..retrying()
        },
        // Within day C, where bounds turn the start into a lowest id, with late logs inside.
        LogFilter {
            start_ns: Some(at(DAY_C, 500)),
            end_ns: Some(at(DAY_C, 900)),
            ..retrying()
        },
        // The last minutes of the store, as an alert rule asks.
        LogFilter {
            start_ns: Some(at(DAY_C, 1_100)),
            ..retrying()
        },
        // Across days, early in B.
        LogFilter {
            start_ns: Some(at(DAY_A, 40_000)),
            end_ns: Some(at(DAY_B, 3_000)),
            ..search("upstream")
        },
    ]
}

fn matches(filter: &LogFilter, log: &NewLog) -> bool {
    let words = search_terms(&log.message);
    let text = filter.search.as_deref().map(search_terms);
    filter.service.as_ref().is_none_or(|s| *s == log.service)
        && filter.level.is_none_or(|l| l == log.level)
        && filter.min_level.is_none_or(|l| log.level >= l)
        && filter.start_ns.is_none_or(|s| log.timestamp_ns >= s)
        && filter.end_ns.is_none_or(|e| log.timestamp_ns <= e)
        && filter
            .trace_id
            .as_ref()
            .is_none_or(|t| log.context.trace_id.as_ref() == Some(t))
        && text.is_none_or(|terms| !terms.is_empty() && terms.iter().all(|t| words.contains(t)))
}

/// Every page of every filter, and its count (bounded or not), is the obvious answer's.
async fn assert_every_page(store: &Store, stored: &[Stored]) {
    for filter in filters() {
        let mut expected: Vec<&Stored> =
            stored.iter().filter(|s| matches(&filter, &s.log)).collect();
        expected.sort_by_key(|s| std::cmp::Reverse((s.log.timestamp_ns, s.id)));
        let expected: Vec<i64> = expected.iter().map(|s| s.id).collect();
        let n = expected.len();
        let mut windows = vec![(50, 0, Some(10_000)), (1, 0, None), (10, 0, Some(25))];
        windows.extend((0..=n / 7 + 1).map(|k| (7, 7 * k as u64, Some(10_000))));
        windows.push((1000, 0, None));
        for (limit, offset, cap) in windows {
            let (logs, total) = store
                .query_logs(TENANT, &filter, limit, offset, cap)
                .await
                .expect("query");
            let ids: Vec<i64> = logs.iter().map(|l| l.id).collect();
            let page: Vec<i64> = expected
                .iter()
                .skip(offset as usize)
                .take(limit as usize)
                .copied()
                .collect();
            assert_eq!(ids, page, "{filter:?} limit {limit} offset {offset}");
            let count = cap.map_or(n, |c| n.min(c as usize));
            assert_eq!(total as usize, count, "{filter:?} count up to {cap:?}");
        }
    }
}

/// Puts the file back to layout 3: no bounds anywhere.
fn drop_bounds(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let partitions: Vec<(i64, i64)> = conn
        .prepare("SELECT tenant, day FROM partitions")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (tenant, day) in partitions {
        let names = PartitionNames::new(tenant, Day(day));
        conn.execute_batch(&format!("DROP TABLE \"{}\"", names.ts_bounds))
            .unwrap();
    }
    conn.execute("UPDATE layout SET value = 3 WHERE key = 'version'", [])
        .unwrap();
}

/// Bounds of day B's partition.
fn day_b_bounds(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let names = PartitionNames::new(1, DAY_B);
    conn.query_row(
        &format!("SELECT COUNT(*) FROM \"{}\"", names.ts_bounds),
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn text_search_pages_and_counts_match_every_log_by_time_whatever_the_arrival_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut stored = Vec::new();

    let (store, writer) = open(&path).await;
    write_before_restart(&store, &mut stored, &mut rng).await;
    assert_every_page(&store, &stored).await;
    close(store, writer).await;

    let (store, writer) = open(&path).await;
    write_after_restart(&store, &mut stored, &mut rng).await;
    assert_every_page(&store, &stored).await;
    close(store, writer).await;

    // A file of layout 3 gets its bounds by id ranges at start-up, not one per partition.
    drop_bounds(&path);
    let (store, writer) = open(&path).await;
    assert!(day_b_bounds(&path) > 4, "bounds by id ranges");
    assert_every_page(&store, &stored).await;
    close(store, writer).await;
}
