//! The unit storage is laid out by: one UTC day. Both backends keep each tenant's logs and spans
//! of one day in their own partition, so retention drops whole partitions instead of deleting
//! rows.

use chrono::{DateTime, NaiveDate, Utc};

/// Nanoseconds in one day.
pub const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// A UTC day, counted in days since 1970-01-01 (negative before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    /// The day holding the instant `ns` (unix nanoseconds).
    pub fn of_ns(ns: i64) -> Day {
        Day(ns.div_euclid(DAY_NS))
    }

    /// Today, in UTC.
    pub fn today() -> Day {
        Day::of_ns(Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX))
    }

    /// The first nanosecond of the day.
    pub fn start_ns(self) -> i64 {
        self.0.saturating_mul(DAY_NS)
    }

    /// The first nanosecond of the next day.
    pub fn end_ns(self) -> i64 {
        self.0.saturating_add(1).saturating_mul(DAY_NS)
    }

    /// The calendar date.
    pub fn date(self) -> NaiveDate {
        DateTime::from_timestamp(self.0.saturating_mul(86_400), 0)
            .unwrap_or_default()
            .date_naive()
    }

    /// `YYYYMMDD`, the form partition names carry.
    pub fn compact(self) -> String {
        self.date().format("%Y%m%d").to_string()
    }

    /// `YYYY-MM-DD`, the form the API answers with.
    pub fn iso(self) -> String {
        self.date().format("%Y-%m-%d").to_string()
    }

    /// `n` days before this one.
    pub fn minus(self, n: i64) -> Day {
        Day(self.0.saturating_sub(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_split_at_utc_midnight() {
        let midnight = 1_700_006_400 * 1_000_000_000; // 2023-11-15T00:00:00Z
        assert_eq!(Day::of_ns(midnight).iso(), "2023-11-15");
        assert_eq!(Day::of_ns(midnight - 1).iso(), "2023-11-14");
        assert_eq!(Day::of_ns(midnight).start_ns(), midnight);
        assert_eq!(Day::of_ns(midnight - 1).end_ns(), midnight);
        assert_eq!(Day::of_ns(midnight).compact(), "20231115");
        assert_eq!(Day::of_ns(-1).iso(), "1969-12-31");
    }
}
