//! The small state file remembering the last order, so `tracehop trace --last` finds its trace.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What `tracehop order` remembers.
///
/// Fields added after the first version are optional, so a file an older tracehop wrote still
/// loads (and an older tracehop ignores the new fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastOrder {
    /// The order id.
    pub order_id: String,
    /// Its trace id.
    pub trace_id: String,
    /// The log-service base URL tracehop was pointed at when the order was placed, so that
    /// `trace --last` against another one can say so instead of "no such trace".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_service: Option<String>,
    /// When the order was placed, to tell a trace still arriving from one that never will.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed_at: Option<DateTime<Utc>>,
}

impl LastOrder {
    /// The log-service the order was placed with, when it is known and is not `base`.
    pub fn placed_elsewhere(&self, base: &str) -> Option<&str> {
        self.log_service
            .as_deref()
            .filter(|then| !same_url(then, base))
    }
}

/// Compares base URLs as URLs, so `HTTP://Localhost:80/` and `http://localhost` are one service.
fn same_url(a: &str, b: &str) -> bool {
    let norm = |u: &str| match reqwest::Url::parse(u.trim()) {
        Ok(url) => url.as_str().trim_end_matches('/').to_owned(),
        Err(_) => u.trim().trim_end_matches('/').to_owned(),
    };
    norm(a) == norm(b)
}

/// `$TRACEHOP_STATE_DIR`, else `$XDG_STATE_HOME/tracehop`, else `~/.local/state/tracehop`, else
/// `./logs`.
fn state_dir() -> PathBuf {
    let from = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = from("TRACEHOP_STATE_DIR") {
        return dir;
    }
    if let Some(dir) = from("XDG_STATE_HOME") {
        return dir.join("tracehop");
    }
    if let Some(home) = from("HOME") {
        return home.join(".local/state/tracehop");
    }
    PathBuf::from("logs")
}

fn path() -> PathBuf {
    state_dir().join("last-order.json")
}

/// Remembers `order`; a failure to write only costs `--last` its memory, so it is reported, not fatal.
pub fn save(order: &LastOrder) {
    let path = path();
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(order).unwrap_or_default())?;
            std::fs::rename(&tmp, &path)
        });
    if let Err(err) = written {
        eprintln!(
            "tracehop: warning: could not remember the last order in {} ({err}); set TRACEHOP_STATE_DIR to a writable directory",
            path.display()
        );
    }
}

/// The last order remembered, if any.
pub fn load() -> Option<LastOrder> {
    let bytes = std::fs::read(path()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_from_before_the_log_service_was_remembered_still_loads() {
        let old: LastOrder = serde_json::from_str(
            r#"{"order_id":"o-1","trace_id":"0af7651916cd43dd8448eb211c80319c"}"#,
        )
        .unwrap();
        assert_eq!(old.order_id, "o-1");
        assert_eq!(old.log_service, None);
        assert_eq!(old.placed_at, None);
        assert_eq!(old.placed_elsewhere("http://127.0.0.1:5002"), None);
    }

    #[test]
    fn the_log_service_round_trips_and_is_compared_as_a_url() {
        let order = LastOrder {
            order_id: "o-1".into(),
            trace_id: "t".into(),
            log_service: Some("http://127.0.0.1:5002".into()),
            placed_at: Some(Utc::now()),
        };
        let text = serde_json::to_string(&order).unwrap();
        assert_eq!(serde_json::from_str::<LastOrder>(&text).unwrap(), order);
        assert_eq!(order.placed_elsewhere("http://127.0.0.1:5002/"), None);
        assert_eq!(order.placed_elsewhere("HTTP://127.0.0.1:5002"), None);
        assert_eq!(
            order.placed_elsewhere("http://127.0.0.1:6002"),
            Some("http://127.0.0.1:5002")
        );
    }
}
