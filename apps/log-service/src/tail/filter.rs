//! The query API's filter applied to one log in memory, with the stored query's rules.

use crate::model::{LogFilter, LogView};
use crate::storage::search_terms;

/// True when `log` is one the stored query with `filter` would return.
pub(super) fn matches(filter: &LogFilter, log: &LogView) -> bool {
    let context = &log.context;
    let same = |wanted: &Option<String>, value: &Option<String>| {
        wanted.is_none() || wanted.as_deref() == value.as_deref()
    };
    filter
        .service
        .as_deref()
        .is_none_or(|s| s == log.service_name)
        && filter.level.is_none_or(|l| l == log.level)
        && filter.min_level.is_none_or(|l| log.level >= l)
        && filter.start_ns.is_none_or(|t| log.timestamp_ns >= t)
        && filter.end_ns.is_none_or(|t| log.timestamp_ns <= t)
        && same(&filter.trace_id, &context.trace_id)
        && same(&filter.request_id, &context.request_id)
        && same(&filter.user_id, &context.user_id)
        && same(&filter.environment, &context.environment)
        && filter
            .search
            .as_deref()
            .is_none_or(|s| has_words(&log.message, s))
}

/// Every word of `search` is a word of `message`, split and folded as the full-text indexes do.
fn has_words(message: &str, search: &str) -> bool {
    let words = search_terms(message);
    let wanted = search_terms(search);
    !wanted.is_empty() && wanted.iter().all(|w| words.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, LogContext};

    fn log(message: &str) -> LogView {
        LogView {
            id: 1,
            tenant_id: "t".into(),
            timestamp: String::new(),
            timestamp_ns: 10,
            service_name: "auth".into(),
            level: Level::Warn,
            message: message.into(),
            context: LogContext {
                trace_id: Some("abc".into()),
                ..Default::default()
            },
            metadata: serde_json::json!({}),
        }
    }

    #[test]
    fn filters_follow_the_stored_query() {
        let l = log("User-42 login FAILED");
        let f = |filter: LogFilter| matches(&filter, &l);
        assert!(f(LogFilter::default()));
        assert!(f(LogFilter {
            search: Some("failed user".into()),
            min_level: Some(Level::Warn),
            trace_id: Some("abc".into()),
            ..Default::default()
        }));
        assert!(!f(LogFilter {
            search: Some("fail".into()),
            ..Default::default()
        }));
        assert!(!f(LogFilter {
            min_level: Some(Level::Error),
            ..Default::default()
        }));
        assert!(!f(LogFilter {
            trace_id: Some("abd".into()),
            ..Default::default()
        }));
        assert!(!f(LogFilter {
            service: Some("billing".into()),
            ..Default::default()
        }));
    }
}
