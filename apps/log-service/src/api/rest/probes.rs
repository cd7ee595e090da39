//! The probes of log-service: the shared `/health`, `/ready` and `/metrics`, with storage as the
//! dependency `/ready` checks, and the minisource REST API's `/live`.

use axum::Json;
use axum::response::IntoResponse;
use serde_json::json;

use crate::storage::Store;

/// `GET /live`: the process answers.
pub async fn live() -> impl IntoResponse {
    Json(json!({ "status": "alive" }))
}

/// Ready while storage answers and the writer runs.
pub async fn storage_readiness(store: Store) -> server::Readiness {
    let backend = store.backend_name();
    let ready = match store.ready().await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            false
        }
    };
    server::Readiness {
        ready,
        dependencies: vec![
            ("backend", backend),
            ("storage", if ready { "available" } else { "unavailable" }),
        ],
    }
}
