//! The CPU time of this process, so `tracehop load` can say how much of the cores the load took.

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeVal;

/// User plus system CPU time of this process so far, in seconds (0 if the kernel will not say).
pub fn own_seconds() -> f64 {
    let seconds = |t: TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|usage| seconds(usage.user_time()) + seconds(usage.system_time()))
        .unwrap_or(0.0)
}
