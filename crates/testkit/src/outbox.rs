//! The outbox as the tests read it: email-service writes one JSON line per e-mail sent to
//! `$LOG_DIR/outbox.jsonl`, and the promise "exactly one e-mail per confirmed order" is checked
//! by counting those lines per order.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

/// The e-mails sent so far: every line, and the counts the assertions need.
#[derive(Debug, Default, Clone)]
pub struct Outbox {
    /// Every complete line, in the order written.
    pub entries: Vec<Value>,
    /// Number of lines per `order_id`.
    pub per_order: HashMap<String, usize>,
    /// `order_id` of each line's `trace_id` (to find e-mails of orders answered without an id).
    pub order_of_trace: HashMap<String, String>,
    /// Lines that are not JSON (a crash mid-write tears at most the last line).
    pub torn: usize,
}

impl Outbox {
    /// Reads the outbox file `path`; a missing file is an empty outbox.
    pub fn read(path: &Path) -> Self {
        Self::parse(&std::fs::read_to_string(path).unwrap_or_default())
    }

    /// Parses the text of an outbox file.
    pub fn parse(text: &str) -> Self {
        let mut outbox = Self::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(value) = serde_json::from_str::<Value>(line) else {
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
            outbox.entries.push(value);
        }
        outbox
    }

    /// Returns the number of e-mails sent (complete lines).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns true when no e-mail was sent.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the number of e-mails for `order_id`.
    pub fn count(&self, order_id: &str) -> usize {
        self.per_order.get(order_id).copied().unwrap_or(0)
    }

    /// Returns the orders e-mailed more than once, with their counts.
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

    /// Asserts the promise of the outbox: every order of `confirmed` (answered 201) e-mailed
    /// exactly once, no order e-mailed twice, no torn line.
    pub fn assert_each_emailed_once(&self, confirmed: &[&str]) {
        for id in confirmed {
            assert_eq!(self.count(id), 1, "e-mails of order {id}, answered 201");
        }
        let duplicates = self.duplicates();
        assert!(
            duplicates.is_empty(),
            "orders e-mailed twice: {duplicates:?}"
        );
        assert_eq!(self.torn, 0, "torn outbox lines");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_per_order_and_a_torn_line_apart() {
        let outbox = Outbox::parse(concat!(
            r#"{"order_id":"a","trace_id":"t1"}"#,
            "\n",
            r#"{"order_id":"b","trace_id":"t2"}"#,
            "\n\n",
            r#"{"order_id":"a","trace_id":"t3"}"#,
            "\n",
            r#"{"order_id":"c","#,
        ));
        assert_eq!(outbox.len(), 3);
        assert_eq!(outbox.torn, 1);
        assert_eq!((outbox.count("a"), outbox.count("b")), (2, 1));
        assert_eq!(outbox.count("c"), 0);
        assert_eq!(outbox.duplicates(), [("a".to_owned(), 2)]);
        assert_eq!(outbox.order_of_trace["t2"], "b");
        assert_eq!(outbox.entries[1]["order_id"], "b");
        assert!(Outbox::read(Path::new("/nonexistent/outbox.jsonl")).is_empty());
    }
}
