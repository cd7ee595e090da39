//! Fault knobs, changeable at run time through `GET`/`PUT /admin/faults`.

use serde::{Deserialize, Serialize};
use server::admin::{Knobs, check_latency, check_rate};
use server::error::ApiError;

/// The simulated faults of email-service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Share of send attempts that fail (0..1).
    pub failure_rate: f64,
    /// Added sending time in milliseconds.
    pub latency_ms: u64,
    /// When true the consumer is cancelled and messages wait in the queue.
    pub paused: bool,
    /// The next this-many send attempts fail, whatever the rate (deterministic retries).
    #[serde(default)]
    pub fail_next: u32,
}

/// A partial update of [`Faults`]: only the fields present change.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsUpdate {
    failure_rate: Option<f64>,
    latency_ms: Option<u64>,
    paused: Option<bool>,
    fail_next: Option<u32>,
}

impl Knobs for Faults {
    type Update = FaultsUpdate;

    fn apply(&mut self, update: FaultsUpdate) -> Result<(), ApiError> {
        let mut next = *self;
        if let Some(rate) = update.failure_rate {
            next.failure_rate = check_rate("failure_rate", rate)?;
        }
        if let Some(ms) = update.latency_ms {
            next.latency_ms = check_latency("latency_ms", ms)?;
        }
        if let Some(paused) = update.paused {
            next.paused = paused;
        }
        if let Some(n) = update.fail_next {
            next.fail_next = n;
        }
        *self = next;
        Ok(())
    }
}
