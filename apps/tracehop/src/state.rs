//! The small state file remembering the last order, so `tracehop trace --last` finds its trace.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What `tracehop order` remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastOrder {
    /// The order id.
    pub order_id: String,
    /// Its trace id.
    pub trace_id: String,
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
