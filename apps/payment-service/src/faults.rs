//! Fault knobs, changeable at run time through `GET`/`PUT /admin/faults`.

use serde::{Deserialize, Serialize};
use server::admin::{Knobs, Simulation};
use server::error::ApiError;

/// The simulated faults of payment-service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Faults {
    /// Share of payments declined (0..1) and added processing time.
    #[serde(flatten)]
    pub simulation: Simulation,
    /// When true every payment answers 503 at once.
    pub unavailable: bool,
}

/// A partial update of [`Faults`]: only the fields present change.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsUpdate {
    failure_rate: Option<f64>,
    latency_ms: Option<u64>,
    unavailable: Option<bool>,
}

impl Knobs for Faults {
    type Update = FaultsUpdate;

    fn apply(&mut self, update: FaultsUpdate) -> Result<(), ApiError> {
        self.simulation
            .apply(update.failure_rate, update.latency_ms)?;
        self.unavailable = update.unavailable.unwrap_or(self.unavailable);
        Ok(())
    }
}
