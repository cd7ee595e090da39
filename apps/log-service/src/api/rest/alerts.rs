//! Log alert rules over REST: `/api/v1/alerts` and `/api/v1/alerts/{id}` (list, create, read,
//! replace, delete, enable, disable). The `alerts` module does the work; these handlers only
//! speak HTTP. Every route is scoped to the caller's tenant: another tenant's id is not found.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::alerts::RuleSpec;
use crate::api::AppState;
use crate::api::extract::{AdminTenant, JsonObject};
use crate::error::AppError;
use crate::query::check_path_id;

/// `GET /api/v1/alerts`: the tenant's rules by name, with their state and last delivery, and
/// whether alerts are delivered at all (`delivering`: `ALERTMANAGER_URL` is set).
pub async fn list(
    State(state): State<AppState>,
    AdminTenant(tenant): AdminTenant,
) -> Result<Json<Value>, AppError> {
    let rules = state.alerts.list(&tenant).await?;
    let views: Vec<Value> = rules.iter().map(|r| state.alerts.view(r)).collect();
    Ok(Json(json!({
        "count": views.len(),
        "rules": views,
        "delivering": state.alerts.is_delivering(),
    })))
}

/// `POST /api/v1/alerts`: creates a rule; 201 with its id and state.
pub async fn create(
    State(state): State<AppState>,
    AdminTenant(tenant): AdminTenant,
    JsonObject(obj): JsonObject,
) -> Result<impl IntoResponse, AppError> {
    let spec = RuleSpec::parse(&obj, &[])?;
    let rule = state.alerts.create(&tenant, spec).await?;
    Ok((StatusCode::CREATED, Json(state.alerts.view(&rule))))
}

/// `GET /api/v1/alerts/{id}`.
pub async fn get(
    State(state): State<AppState>,
    AdminTenant(tenant): AdminTenant,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    check_path_id("id", &id)?;
    let rule = state.alerts.get(&tenant, &id).await?;
    Ok(Json(state.alerts.view(&rule)))
}

/// `PUT /api/v1/alerts/{id}`: replaces the rule's definition (the whole body, as `POST` takes
/// it); its state is kept until the next evaluation judges it by the new definition.
pub async fn replace(
    State(state): State<AppState>,
    AdminTenant(tenant): AdminTenant,
    Path(id): Path<String>,
    JsonObject(obj): JsonObject,
) -> Result<Json<Value>, AppError> {
    check_path_id("id", &id)?;
    let spec = RuleSpec::parse(&obj, &[])?;
    let rule = state.alerts.replace(&tenant, &id, spec).await?;
    Ok(Json(state.alerts.view(&rule)))
}

/// `DELETE /api/v1/alerts/{id}`: 204; a firing alert is resolved in Alertmanager.
pub async fn delete(
    State(state): State<AppState>,
    AdminTenant(tenant): AdminTenant,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    check_path_id("id", &id)?;
    state.alerts.delete(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/alerts/{id}/enable` (`ENABLED`) and `/disable`: a disabled rule stops being
/// evaluated and turns inactive; a firing alert is resolved in Alertmanager.
pub async fn set_enabled<const ENABLED: bool>(
    State(state): State<AppState>,
    AdminTenant(tenant): AdminTenant,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    check_path_id("id", &id)?;
    let rule = state.alerts.set_enabled(&tenant, &id, ENABLED).await?;
    Ok(Json(state.alerts.view(&rule)))
}
