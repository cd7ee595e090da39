//! The retention admin routes under `/api/v1/retention`. Policies are admin objects: a policy
//! names its tenant in `tenant_id`, and every route requires `ADMIN_TOKEN` as a bearer token
//! when it is set, or an admin API key when `API_KEYS_FILE` is; `X-Tenant-ID` plays no part, so no tenant reads or changes another's policy
//! through its own tenant header.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use crate::api::AppState;
use crate::api::extract::JsonObject;
use crate::error::AppError;
use crate::model::{MAX_SHORT_FIELD, format_ts, refuse_unknown_fields};
use crate::retention::{MAX_RETENTION_DAYS, RunReport};
use crate::storage::Policy;

/// 401 unless the request carries the configured admin token or, with API keys, an admin key.
fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    state.access.admin(headers, state.admin_token.as_deref())
}

/// `retention_days`: a whole number of days from 1 to 3650.
fn retention_days(obj: &Map<String, Value>) -> Result<i64, AppError> {
    let value = obj
        .get("retention_days")
        .ok_or_else(|| AppError::field("retention_days", "is required"))?;
    match value.as_i64() {
        Some(days) if (1..=MAX_RETENTION_DAYS).contains(&days) => Ok(days),
        _ => Err(AppError::field(
            "retention_days",
            format!("must be a whole number of days from 1 to {MAX_RETENTION_DAYS}"),
        )),
    }
}

/// `tenant_id`: what `X-Tenant-ID` accepts, required here.
fn tenant_id(obj: &Map<String, Value>) -> Result<String, AppError> {
    let problem = || {
        AppError::field(
            "tenant_id",
            format!("must be a string of 1 to {MAX_SHORT_FIELD} printable characters"),
        )
    };
    let text = obj
        .get("tenant_id")
        .ok_or_else(|| AppError::field("tenant_id", "is required"))?
        .as_str()
        .ok_or_else(problem)?
        .trim();
    if text.is_empty() || text.len() > MAX_SHORT_FIELD || text.chars().any(char::is_control) {
        return Err(problem());
    }
    Ok(text.to_owned())
}

fn now() -> String {
    format_ts(chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default())
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound(format!("no retention policy with id {id:?}"))
}

/// `GET /api/v1/retention`: every policy, and the default that applies to other tenants.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppError> {
    require_admin(&state, &headers)?;
    let policies = state.store.partitions().policies().await?;
    let config = state.retention.config();
    Ok(Json(json!({
        "policies": policies,
        "default_retention_days": config.default_days,
        "max_size_bytes": config.max_size_bytes,
    })))
}

/// `POST /api/v1/retention`: `{"tenant_id", "retention_days"}`; 409 when the tenant has one.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonObject(obj): JsonObject,
) -> Result<(StatusCode, Json<Policy>), AppError> {
    require_admin(&state, &headers)?;
    refuse_unknown_fields(&obj, &["tenant_id", "retention_days"], "a retention policy")?;
    let tenant_id = tenant_id(&obj)?;
    let retention_days = retention_days(&obj)?;
    let at = now();
    let policy = Policy {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id,
        retention_days,
        created_at: at.clone(),
        updated_at: at,
    };
    state.store.partitions().create_policy(&policy).await?;
    tracing::info!(tenant = %policy.tenant_id, days = retention_days, "retention policy created");
    Ok((StatusCode::CREATED, Json(policy)))
}

/// `GET /api/v1/retention/tenant/{tenant_id}`: the tenant's policy, or the default with
/// `"default": true`.
pub async fn for_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, AppError> {
    require_admin(&state, &headers)?;
    match state.store.partitions().tenant_policy(&tenant).await? {
        Some(policy) => {
            let mut body =
                serde_json::to_value(policy).map_err(|e| AppError::Internal(e.into()))?;
            body["default"] = json!(false);
            Ok(Json(body))
        }
        None => Ok(Json(json!({
            "tenant_id": tenant,
            "retention_days": state.retention.config().default_days,
            "default": true,
        }))),
    }
}

/// `PUT /api/v1/retention/{id}`: `{"retention_days"}`; the tenant of a policy does not change.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(obj): JsonObject,
) -> Result<Json<Policy>, AppError> {
    require_admin(&state, &headers)?;
    refuse_unknown_fields(&obj, &["retention_days"], "a retention policy update")?;
    let days = retention_days(&obj)?;
    let policy = state
        .store
        .partitions()
        .update_policy(&id, days, &now())
        .await?
        .ok_or_else(|| not_found(&id))?;
    tracing::info!(tenant = %policy.tenant_id, days, "retention policy updated");
    Ok(Json(policy))
}

/// `DELETE /api/v1/retention/{id}`: the tenant goes back to the default.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    require_admin(&state, &headers)?;
    if !state.store.partitions().delete_policy(&id).await? {
        return Err(not_found(&id));
    }
    tracing::info!(policy = %id, "retention policy deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/retention/run`: enforces every policy and the size cap now; the partitions
/// removed (tenant, day, rows, bytes).
pub async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<RunReport>, AppError> {
    require_admin(&state, &headers)?;
    Ok(Json(state.retention.run().await?))
}
