//! Fault knobs, changeable at run time through `GET`/`PUT /admin/faults`.

use serde::{Deserialize, Serialize};
use server::admin::{Knobs, Simulation};
use server::error::ApiError;

/// The simulated faults of email-service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Faults {
    /// Share of send attempts that fail (0..1) and added sending time.
    #[serde(flatten)]
    pub simulation: Simulation,
    /// When true the consumer is cancelled and messages wait in the queue.
    pub paused: bool,
    /// The next this-many send attempts fail, whatever the rate (deterministic retries).
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
        self.simulation
            .apply(update.failure_rate, update.latency_ms)?;
        self.paused = update.paused.unwrap_or(self.paused);
        self.fail_next = update.fail_next.unwrap_or(self.fail_next);
        Ok(())
    }
}
