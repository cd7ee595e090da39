//! The live tail: logs pushed to subscribers after their commit, never read back by polling.
//!
//! The writer's completion path hands each committed log, with its stored id, to the [`Hub`]
//! (one bounded `tokio::sync::broadcast` shared by every subscriber); a [`Follow`] is one
//! client's view of it: the replay of what it missed (`Last-Event-ID`), then the live logs of its
//! tenant that match its filter. A client that falls more than the hub's capacity behind is told
//! how many logs it skipped instead of slowing ingest or growing memory.

mod filter;
mod follow;
mod hub;

pub use follow::{Follow, Item};
pub use hub::{Hub, Publisher};
