//! The web view on the REST port: a search page over the logs, a trace page (waterfall, span
//! details, the trace's log lines under their spans, the error DAG), a services page and an
//! alerts page. One HTML shell and one script, compiled into the binary, so the view works with
//! no network and no build step; the pages read the same REST and Jaeger APIs as any client,
//! with the tenant and API key the user gives them.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::AppState;
use crate::auth::Role;

const SHELL: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// The page routes and their assets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/services", get(page))
        .route("/alerts", get(page))
        .route("/trace/{trace_id}", get(trace_page))
        .route(
            "/ui/app.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/ui/app.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
}

/// The page shell; the script draws the page its path names.
async fn page() -> Response {
    shell(StatusCode::OK)
}

fn shell(status: StatusCode) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SHELL,
    )
        .into_response()
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `?tenant=` of a page address: a browser's navigation carries no `X-Tenant-ID`.
#[derive(serde::Deserialize)]
struct PageQuery {
    tenant: Option<String>,
}

/// `/trace/{trace_id}`: 400 for an id that is no trace id (32 hex digits), 404 when the tenant
/// holds no span and no log of it (an existence probe, not a read of the trace), so a
/// bookmarked or mistyped link says so at the HTTP level too. With API keys the page cannot
/// tell (the browser sends its key only to the API), and the script shows the API's answer
/// instead.
async fn trace_page(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    if trace_id.len() != 32 || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return shell(StatusCode::BAD_REQUEST);
    }
    let tenant = query.tenant.as_deref().map(str::as_bytes);
    let Ok(tenant) = state.access.tenant(None, tenant, Role::Read) else {
        return shell(StatusCode::OK);
    };
    let trace_id = trace_id.to_ascii_lowercase();
    // A storage failure still serves the page: the script then shows the API's own answer.
    match state.store.trace_exists(&tenant, &trace_id).await {
        Ok(false) => shell(StatusCode::NOT_FOUND),
        _ => shell(StatusCode::OK),
    }
}
