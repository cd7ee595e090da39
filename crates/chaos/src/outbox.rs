//! Counting the e-mails of the outbox per order.

use std::collections::HashMap;
use std::path::Path;

/// The outbox as the tests count it: e-mails per order id and the trace id of each line.
#[derive(Debug, Default, Clone)]
pub struct Outbox {
    /// Number of lines per `order_id`.
    pub per_order: HashMap<String, usize>,
    /// `order_id` of each line's `trace_id` (to find e-mails of orders answered without an id).
    pub order_of_trace: HashMap<String, String>,
    /// Complete lines.
    pub lines: usize,
    /// Lines that are not JSON (a crash mid-write tears at most the last line).
    pub torn: usize,
}

impl Outbox {
    /// Reads `path`; a missing file is an empty outbox.
    pub fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut outbox = Self::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                outbox.torn += 1;
                continue;
            };
            let order = value["order_id"].as_str().unwrap_or_default().to_owned();
            if let Some(trace) = value["trace_id"].as_str() {
                outbox
                    .order_of_trace
                    .insert(trace.to_owned(), order.clone());
            }
            *outbox.per_order.entry(order).or_default() += 1;
            outbox.lines += 1;
        }
        outbox
    }

    /// Number of e-mails for `order_id`.
    pub fn count(&self, order_id: &str) -> usize {
        self.per_order.get(order_id).copied().unwrap_or(0)
    }

    /// The orders e-mailed more than once, with their counts.
    pub fn duplicates(&self) -> Vec<(String, usize)> {
        let mut dups: Vec<_> = self
            .per_order
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(o, n)| (o.clone(), *n))
            .collect();
        dups.sort();
        dups
    }
}
