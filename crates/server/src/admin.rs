//! `GET`/`PUT /admin/faults`: run-time fault knobs, JSON in and out, validated, behind an
//! optional bearer token. Each service declares its knobs ([`Knobs`]); the route is shared.

use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, check_bearer, parse_json};

/// A service's fault knobs.
pub trait Knobs: Serialize + Copy + Send + Sync + 'static {
    /// A partial update: the fields present change.
    type Update: DeserializeOwned + Send;

    /// Applies `update` after validating every field; on error nothing changes.
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

/// Checks a rate knob (0..1).
pub fn check_rate(field: &str, value: f64) -> Result<f64, ApiError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::invalid(
            "invalid_faults",
            field,
            "must be between 0 and 1",
        ))
    }
}

/// Checks an added-latency knob (at most a minute).
pub fn check_latency(field: &str, value: u64) -> Result<u64, ApiError> {
    if value <= 60_000 {
        Ok(value)
    } else {
        Err(ApiError::invalid(
            "invalid_faults",
            field,
            "must be at most 60000",
        ))
    }
}
