//! log-service running itself while it ingests. Phases of OTLP ingest into the default tenant
//! take turns: quiet (every alert rule disabled, no retention run), rules (the demo's rule set
//! plus two rules that match the generated records, evaluated every `--ops-eval-ms`) and
//! rules+retention (the same, and in the middle of the phase a retention run
//! that drops another tenant's expired day), forwards in one round and backwards in the next.
//! Each phase's loss against the quiet ones is what alert evaluation, and retention on top of
//! it, cost ingest; the drop is timed on its own, on a store of the benchmark's size.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::{BATCH, DAY_NS, STORED_STEP_NS, Timeline, ingest_otlp, samples};

/// The tenant whose day expires in round `round`: it gets one day of logs, 40 days old, before
/// the phases begin (under the benchmark's default retention of ten years), and a 30-day policy
/// just before its round's rules+retention phase, so that phase's retention run has exactly
/// that day to drop. Loading every round's day first keeps the writing of those logs out of
/// the phases after it.
fn expiring_tenant(round: u64) -> String {
    format!("retention-bench-{round}")
}

/// Time between two records of a phase: 5 µs, as a live stream of 200,000 logs/s arrives, so
/// each phase's records follow the last phase's in time as live logs do. (At the stored data's
/// millisecond, a phase of 3M records spanned 50 minutes and overlapped the last phase's by
/// as much, and a rule's newest matches were looked for through every log of the day.)
const LIVE_STEP_NS: u64 = 5_000;

/// Rules that match the generated records, so that their counts have rows to count.
fn matching_rules() -> [Value; 2] {
    [
        json!({"name": "bench retries", "query": "retrying", "threshold": 1000,
               "window_seconds": 300, "severity": "info"}),
        json!({"name": "bench errors", "min_level": "ERROR", "threshold": 10,
               "window_seconds": 60, "severity": "warning"}),
    ]
}

#[derive(Clone, Copy, PartialEq)]
pub enum Phase {
    Quiet,
    Evaluating,
    Retaining,
}

pub const PHASES: [Phase; 3] = [Phase::Quiet, Phase::Evaluating, Phase::Retaining];

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Quiet => "quiet",
            Phase::Evaluating => "rules",
            Phase::Retaining => "rules+retention",
        }
    }
}

/// One retention run that dropped a tenant's day.
pub struct DayDrop {
    pub secs: f64,
    pub rows: i64,
}

pub struct Operations {
    /// Records/s of each phase, by [`PHASES`] index.
    pub rates: [Vec<f64>; 3],
    /// Rule evaluations, evaluation rounds and seconds spent in rounds, during each kind of
    /// phase.
    pub evaluations: [[f64; 3]; 3],
    pub drops: Vec<DayDrop>,
    /// Rules firing at the end of the last phase that evaluated them (the evaluations counted
    /// real rows).
    pub firing: usize,
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

impl Operations {
    /// The mean rate of a kind of phase: with the phases in both orders, the mean is what
    /// cancels the slowing of ingest as the store grows (a median would pick one end).
    pub fn rate(&self, phase: Phase) -> f64 {
        let rates = &self.rates[phase as usize];
        rates.iter().sum::<f64>() / rates.len().max(1) as f64
    }

    /// What `phase` loses against the quiet phases, as a fraction of the quiet rate.
    pub fn loss(&self, phase: Phase) -> f64 {
        1.0 - self.rate(phase) / self.rate(Phase::Quiet)
    }

    /// The mean duration of an evaluation round of every rule, in the rules phases.
    pub fn round_secs(&self) -> f64 {
        let [_, rounds, secs] = self.evaluations[Phase::Evaluating as usize];
        secs / rounds.max(1.0)
    }

    pub fn drop_secs(&self) -> Vec<f64> {
        self.drops.iter().map(|d| d.secs).collect()
    }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Value {
    let mut request = client.request(method, &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("log-service answers");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

/// The evaluator's counters: (rule evaluations, evaluation rounds, seconds in rounds).
async fn evaluator_counts(rest: &str) -> [f64; 3] {
    samples(
        rest,
        [
            "log_service_alert_evaluations_total",
            "log_service_alert_round_duration_seconds_count",
            "log_service_alert_round_duration_seconds_sum",
        ],
    )
    .await
}

async fn set_rules(client: &reqwest::Client, rest: &str, ids: &[String], enabled: bool) {
    let verb = if enabled { "enable" } else { "disable" };
    for id in ids {
        let url = format!("{rest}/api/v1/alerts/{id}/{verb}");
        call(client, reqwest::Method::POST, url, None).await;
    }
}

/// Runs `rounds` phases of each kind, `rows_per_phase` records each, the records numbered from
/// `after_record` on; each round's expiring tenant (see [`expiring_tenant`]) holds a day of
/// `day_rows` logs for its retention run to drop (both rounded up to whole batches, as ingest
/// sends them).
pub async fn measure(
    rest: &str,
    otlp: SocketAddr,
    concurrency: usize,
    rows_per_phase: u64,
    day_rows: u64,
    rounds: usize,
    after_record: u64,
) -> Operations {
    let batch = BATCH as u64;
    let rows_per_phase = rows_per_phase.div_ceil(batch) * batch;
    let day_rows = day_rows.div_ceil(batch) * batch;
    let client = reqwest::Client::new();
    let post = reqwest::Method::POST;
    for rule in matching_rules() {
        call(
            &client,
            post.clone(),
            format!("{rest}/api/v1/alerts"),
            Some(rule),
        )
        .await;
    }
    let rules_url = format!("{rest}/api/v1/alerts");
    let rules = call(&client, reqwest::Method::GET, rules_url.clone(), None).await;
    let ids: Vec<String> = rules["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["id"].as_str().expect("rule id").to_owned())
        .collect();
    let now_ns = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64
    };
    let mut next = after_record.div_ceil(batch) * batch + batch;
    let mut ops = Operations {
        rates: [vec![], vec![], vec![]],
        evaluations: [[0.0; 3]; 3],
        drops: vec![],
        firing: 0,
    };
    let day = now_ns() / DAY_NS * DAY_NS - 40 * DAY_NS + 3_600_000_000_000;
    for round in 0..rounds as u64 {
        let old = Timeline {
            base_ns: day - next * STORED_STEP_NS,
            days: 1,
            step_ns: STORED_STEP_NS,
        };
        let tenant = expiring_tenant(round);
        ingest_otlp(otlp, concurrency, next, day_rows, old, Some(&tenant)).await;
        next += day_rows;
    }
    // Untimed, so the first phase does not pay for the checkpoint of the days just written.
    let settle = Timeline {
        base_ns: now_ns() - (next + rows_per_phase) * LIVE_STEP_NS,
        days: 1,
        step_ns: LIVE_STEP_NS,
    };
    ingest_otlp(otlp, concurrency, next, rows_per_phase, settle, None).await;
    next += rows_per_phase;
    for round in 0..rounds as u64 {
        // Every other round runs the phases backwards (quiet, rules, rules+retention, then
        // rules+retention, rules, quiet): ingest slows as the store grows, and in this order
        // each kind of phase sits, on average, at the same store size.
        let mut order = PHASES;
        if round % 2 == 1 {
            order.reverse();
        }
        let tenant = expiring_tenant(round);
        for phase in order {
            if phase == Phase::Retaining {
                let policy = json!({"tenant_id": tenant, "retention_days": 30});
                let url = format!("{rest}/api/v1/retention");
                call(&client, post.clone(), url, Some(policy)).await;
            }
            set_rules(&client, rest, &ids, phase != Phase::Quiet).await;
            let counted = evaluator_counts(rest).await;
            // The phase's records end now, so the rules' windows hold the newest of them.
            let recent = Timeline {
                base_ns: now_ns() - (next + rows_per_phase) * LIVE_STEP_NS,
                days: 1,
                step_ns: LIVE_STEP_NS,
            };
            let drop = (phase == Phase::Retaining).then(|| {
                let (client, url) = (client.clone(), format!("{rest}/api/v1/retention/run"));
                let tenant = tenant.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let began = Instant::now();
                    let report = call(&client, reqwest::Method::POST, url, None).await;
                    let removed = report["removed"].as_array().expect("removed");
                    assert!(
                        removed.iter().all(|r| r["tenant_id"] == tenant.as_str()),
                        "a retention run removes only {tenant}'s days: {removed:?}"
                    );
                    DayDrop {
                        secs: began.elapsed().as_secs_f64(),
                        rows: report["rows_removed"].as_i64().unwrap_or(0),
                    }
                })
            });
            let rate = ingest_otlp(otlp, concurrency, next, rows_per_phase, recent, None).await;
            next += rows_per_phase;
            ops.rates[phase as usize].push(rate);
            let now = evaluator_counts(rest).await;
            for (sum, (now, before)) in ops.evaluations[phase as usize]
                .iter_mut()
                .zip(now.iter().zip(counted))
            {
                *sum += now - before;
            }
            if let Some(drop) = drop {
                let drop = drop.await.expect("retention run");
                assert_eq!(
                    drop.rows, day_rows as i64,
                    "a retention run drops exactly the expired day of {tenant}"
                );
                ops.drops.push(drop);
            }
            if phase != Phase::Quiet {
                // Before the next phase disables them (the last phase may be a quiet one).
                let rules = call(&client, reqwest::Method::GET, rules_url.clone(), None).await;
                ops.firing = rules["rules"]
                    .as_array()
                    .expect("rules")
                    .iter()
                    .filter(|r| r["state"] == "firing")
                    .count();
            }
        }
    }
    ops
}
