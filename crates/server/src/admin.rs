//! `GET`/`PUT /admin/faults`: run-time fault knobs, JSON in and out, validated, behind an
//! optional bearer token. Each service declares its knobs ([`Knobs`]), the two every service
//! has among them ([`Simulation`]); the route is shared.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, check_bearer, parse_json};
use crate::{ConfigError, Env};

/// A service's fault knobs.
pub trait Knobs: Serialize + Copy + Send + Sync + 'static {
    /// A partial update: the fields present change.
    type Update: DeserializeOwned + Send;

    /// Applies `update`, validating every field. The route applies it to a copy and keeps the
    /// copy only on success, so on error nothing changes.
    fn apply(&mut self, update: Self::Update) -> Result<(), ApiError>;
}

/// Called with the new knobs after each accepted update (to pause a consumer, say).
pub type OnChange<K> = Arc<dyn Fn(&K) + Send + Sync>;

struct Admin<K> {
    knobs: Arc<RwLock<K>>,
    token: Option<Arc<str>>,
    on_change: Option<OnChange<K>>,
}

impl<K> Clone for Admin<K> {
    fn clone(&self) -> Self {
        Self {
            knobs: self.knobs.clone(),
            token: self.token.clone(),
            on_change: self.on_change.clone(),
        }
    }
}

/// Builds the `/admin/faults` route over `knobs`.
pub fn faults_router<K: Knobs>(
    knobs: Arc<RwLock<K>>,
    token: Option<Arc<str>>,
    on_change: Option<OnChange<K>>,
) -> Router {
    Router::new()
        .route("/admin/faults", get(get_faults::<K>).put(put_faults::<K>))
        .with_state(Admin {
            knobs,
            token,
            on_change,
        })
}

async fn get_faults<K: Knobs>(
    State(admin): State<Admin<K>>,
    headers: HeaderMap,
) -> Result<Json<K>, ApiError> {
    check_bearer(&headers, admin.token.as_deref())?;
    Ok(Json(*admin.knobs.read().unwrap_or_else(|p| p.into_inner())))
}

async fn put_faults<K: Knobs>(
    State(admin): State<Admin<K>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<K>, ApiError> {
    check_bearer(&headers, admin.token.as_deref())?;
    let update: K::Update = parse_json(&headers, body, "invalid_faults")?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_faults",
            "request body is required",
        )
    })?;
    let next = {
        let mut knobs = admin.knobs.write().unwrap_or_else(|p| p.into_inner());
        let mut next = *knobs;
        next.apply(update)?;
        *knobs = next;
        next
    };
    if let Some(on_change) = &admin.on_change {
        on_change(&next);
    }
    tracing::info!(faults = %serde_json::to_string(&next).unwrap_or_default(), "faults updated");
    Ok(Json(next))
}

/// What a service's `/admin/faults` starts from: the simulated faults it reads at start-up and
/// the token the route requires.
#[derive(Debug, Clone)]
pub struct FaultsConfig {
    /// The starting knobs.
    pub simulation: Simulation,
    /// `ADMIN_TOKEN`: when set, required as a bearer token by `/admin/faults`.
    pub token: Option<Arc<str>>,
}

impl FaultsConfig {
    /// Reads `ADMIN_TOKEN` and the knobs named by `rate_var` and `latency_var` (see
    /// [`Simulation::from_env`]).
    pub fn from_env(
        env: &Env,
        rate_var: &'static str,
        latency_var: &'static str,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            simulation: Simulation::from_env(env, rate_var, latency_var)?,
            token: env.get("ADMIN_TOKEN").map(Arc::from),
        })
    }
}

/// The knobs every service with simulated work has: how often the work fails and how long it
/// takes. A service's knobs hold them under `#[serde(flatten)]`, so the JSON stays flat
/// (`{"failure_rate", "latency_ms", ...}`). Their update fields stay in the service's own update
/// struct: serde's `flatten` does not work with `deny_unknown_fields`, which the update needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Simulation {
    /// Share of attempts that fail (0..1).
    pub failure_rate: f64,
    /// Added time of each attempt, in milliseconds.
    pub latency_ms: u64,
}

impl Simulation {
    /// Reads the starting knobs: `latency_var` in milliseconds (default 0) and `rate_var`
    /// (0..1, default 0).
    pub fn from_env(
        env: &Env,
        rate_var: &'static str,
        latency_var: &'static str,
    ) -> Result<Self, ConfigError> {
        let latency_ms = env.parse(latency_var, 0)?;
        Ok(Self {
            failure_rate: env.rate(rate_var, 0.0)?,
            latency_ms,
        })
    }

    /// Applies the `failure_rate` and `latency_ms` fields of an update, each checked first.
    pub fn apply(
        &mut self,
        failure_rate: Option<f64>,
        latency_ms: Option<u64>,
    ) -> Result<(), ApiError> {
        let failure_rate = failure_rate.map(check_rate).transpose()?;
        let latency_ms = latency_ms.map(check_latency).transpose()?;
        self.failure_rate = failure_rate.unwrap_or(self.failure_rate);
        self.latency_ms = latency_ms.unwrap_or(self.latency_ms);
        Ok(())
    }

    /// Waits the added latency, if any.
    pub async fn delay(&self) {
        if self.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.latency_ms)).await;
        }
    }
}

/// Checks a rate knob (0..1).
fn check_rate(value: f64) -> Result<f64, ApiError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::invalid(
            "invalid_faults",
            "failure_rate",
            "must be between 0 and 1",
        ))
    }
}

/// Checks an added-latency knob (at most a minute).
fn check_latency(value: u64) -> Result<u64, ApiError> {
    if value <= 60_000 {
        Ok(value)
    } else {
        Err(ApiError::invalid(
            "invalid_faults",
            "latency_ms",
            "must be at most 60000",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulation_changes_nothing_when_a_field_is_invalid() {
        let mut knobs = Simulation {
            failure_rate: 0.5,
            latency_ms: 10,
        };
        let error = knobs.apply(Some(0.1), Some(60_001)).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("latency_ms"));
        let error = knobs.apply(Some(1.5), None).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("failure_rate"));
        assert_eq!((knobs.failure_rate, knobs.latency_ms), (0.5, 10));
        knobs.apply(None, Some(0)).unwrap();
        assert_eq!((knobs.failure_rate, knobs.latency_ms), (0.5, 0));
    }
}
