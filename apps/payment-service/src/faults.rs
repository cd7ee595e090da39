//! Fault knobs, changeable at run time through `GET`/`PUT /admin/faults`.

use serde::{Deserialize, Serialize};
use server::admin::{Knobs, check_latency, check_rate};
use server::error::ApiError;

/// The simulated faults of payment-service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Share of payments declined (0..1).
    pub failure_rate: f64,
    /// Added processing time in milliseconds.
    pub latency_ms: u64,
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
        let mut next = *self;
        if let Some(rate) = update.failure_rate {
            next.failure_rate = check_rate("failure_rate", rate)?;
        }
        if let Some(ms) = update.latency_ms {
            next.latency_ms = check_latency("latency_ms", ms)?;
        }
        if let Some(unavailable) = update.unavailable {
            next.unavailable = unavailable;
        }
        *self = next;
        Ok(())
    }
}
