//! HTTP routes: `POST /create-order`, probes and metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use orders::{PaymentAnswer, PaymentRequest, PaymentStatus};
use prometheus::Registry;
use serde_json::json;
use server::error::{ApiError, BODY_LIMIT, parse_json};
use telemetry::{BaggageExt, KeyValue, OpenTelemetrySpanExt};
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::order::OrderRequest;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) client: reqwest::Client,
    pub(crate) payment_url: Arc<str>,
    pub(crate) metrics: Metrics,
}

/// The routes; `registry` is what `/metrics` serves.
pub(crate) fn router(state: AppState, registry: &Registry) -> Router {
    let readiness = {
        let client = state.client.clone();
        let url: Arc<str> = Arc::from(format!("{}/health", state.payment_url));
        move || payment_reachable(client.clone(), url.clone())
    };
    Router::new()
        .route("/create-order", post(create_order))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
        .merge(server::probes(registry.clone(), readiness))
}

/// Namespace of order ids derived from a client's `Idempotency-Key` (UUIDv5).
const ORDER_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x2b9e_61d4_0f3a_4e8c_a5d1_94c7_e0b3_7f12);

/// The order id: derived from the client's `Idempotency-Key` when given, so a retry after a 503
/// or a lost answer is the same order (payment-service answers it with the first result and
/// never publishes a second event); random otherwise.
fn order_id(headers: &HeaderMap) -> Result<String, ApiError> {
    let invalid = |message: &str| {
        ApiError::bad_request(
            "invalid_idempotency_key",
            Some("Idempotency-Key"),
            message.to_owned(),
        )
    };
    let mut keys = headers.get_all("idempotency-key").iter();
    let Some(value) = keys.next() else {
        return Ok(uuid::Uuid::new_v4().to_string());
    };
    if keys.next().is_some() {
        return Err(invalid("send one Idempotency-Key header, not several"));
    }
    let key = value.as_bytes();
    // Visible ASCII only (no space, tab or other control), so a key reads the same in every log.
    if key.is_empty() || key.len() > 255 || !key.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(invalid(
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(uuid::Uuid::new_v5(&ORDER_NAMESPACE, key).to_string())
}

async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let order = parse_json::<OrderRequest>(&headers, body, "invalid_order")?
        .unwrap_or_else(OrderRequest::sample);
    let amount_cents = order.validate()?;
    let order_id = order_id(&headers)?;
    let span = tracing::Span::current();
    span.set_attribute("order.id", order_id.clone());
    let trace_id = telemetry::trace_id(&span);
    tracing::info!(
        order_id = %order_id,
        items = order.items.len(),
        amount_cents,
        currency = %order.currency,
        customer = %telemetry::mask_email(&order.customer_email),
        "order received"
    );

    let outcome = pay(&state, &order_id, amount_cents, &order).await;
    let (status, body) = match outcome {
        Payment::Succeeded(payment) => {
            tracing::info!(order_id = %order_id, payment_id = %payment.payment_id, "order confirmed");
            // The order id is said once, at the top level.
            let payment = json!({
                "payment_id": payment.payment_id,
                "status": payment.status,
                "amount_cents": payment.amount_cents,
            });
            (
                StatusCode::CREATED,
                json!({"order_id": order_id, "status": "confirmed", "trace_id": trace_id, "payment": payment}),
            )
        }
        Payment::Declined => {
            span.record("otel.status_code", "ERROR");
            tracing::warn!(order_id = %order_id, "payment declined");
            state
                .metrics
                .orders
                .with_label_values(&["payment_declined"])
                .inc();
            return Ok((
                StatusCode::PAYMENT_REQUIRED,
                Json(json!({"order_id": order_id, "status": "payment_declined", "trace_id": trace_id})),
            )
                .into_response());
        }
        Payment::Conflict(message) => {
            tracing::info!(order_id = %order_id, "idempotency key reused for another order");
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_conflict",
                message,
            ));
        }
        Payment::Unavailable(reason) => {
            tracing::error!(order_id = %order_id, reason = %reason, "payment unavailable; order failed");
            state.metrics.orders.with_label_values(&["failed"]).inc();
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "payment_unavailable",
                "payment could not be confirmed in time; retry with the same Idempotency-Key header \
                 to complete this order without risking a second one",
            ));
        }
    };
    state.metrics.orders.with_label_values(&["confirmed"]).inc();
    Ok((status, Json(body)).into_response())
}

enum Payment {
    Succeeded(PaymentAnswer),
    Declined,
    /// The Idempotency-Key was first used for a different order: payment-service's message.
    Conflict(String),
    Unavailable(String),
}

/// Calls payment-service inside a CLIENT span. The order id travels in the body, which is what
/// payment-service dedupes on; it also rides along as `order.id` baggage, to show baggage
/// crossing every hop, but no service takes the order id from there.
async fn pay(state: &AppState, order_id: &str, amount_cents: i64, order: &OrderRequest) -> Payment {
    let url = format!("{}/process-payment", state.payment_url);
    let span = telemetry::http::client_span("POST", &url);
    let cx = span
        .context()
        .with_baggage([KeyValue::new("order.id", order_id.to_owned())]);
    let headers = telemetry::http::propagation_headers(&cx);
    let request = state
        .client
        .post(&url)
        .headers(headers)
        .json(&PaymentRequest {
            order_id: order_id.to_owned(),
            amount_cents,
            currency: order.currency.clone(),
            customer_email: order.customer_email.clone(),
        });
    async {
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let kind = if error.is_timeout() {
                    "timeout"
                } else if error.is_connect() {
                    "connect_error"
                } else {
                    "request_error"
                };
                telemetry::http::record_client_status(&tracing::Span::current(), Err(kind));
                tracing::error!(error = %error, kind, "payment request failed");
                return Payment::Unavailable(kind.to_owned());
            }
        };
        let status = response.status();
        telemetry::http::record_client_status(&tracing::Span::current(), Ok(status));
        match status {
            StatusCode::CREATED => match response.json::<PaymentAnswer>().await {
                // An answer about another order, or a 201 that is not a success, is no answer.
                Ok(answer)
                    if answer.order_id == order_id && answer.status == PaymentStatus::Succeeded =>
                {
                    Payment::Succeeded(answer)
                }
                Ok(answer) => {
                    tracing::error!(
                        answered_order_id = %answer.order_id,
                        status = answer.status.as_str(),
                        "payment answer does not confirm this order"
                    );
                    Payment::Unavailable("bad_answer".into())
                }
                Err(error) => {
                    tracing::error!(error = %error, "payment answer unreadable");
                    Payment::Unavailable("bad_answer".into())
                }
            },
            StatusCode::PAYMENT_REQUIRED => {
                tracing::Span::current().record("otel.status_code", "ERROR");
                Payment::Declined
            }
            StatusCode::UNPROCESSABLE_ENTITY => match response.json::<serde_json::Value>().await {
                Ok(body) if body["error"]["code"] == "idempotency_conflict" => Payment::Conflict(
                    body["error"]["message"]
                        .as_str()
                        .unwrap_or("the Idempotency-Key was used for another order")
                        .to_owned(),
                ),
                _ => Payment::Unavailable("status 422".into()),
            },
            other => Payment::Unavailable(format!("status {}", other.as_u16())),
        }
    }
    .instrument(span)
    .await
}

/// Ready while payment-service answers: no order can succeed without it.
async fn payment_reachable(client: reqwest::Client, url: Arc<str>) -> server::Readiness {
    let probe = client
        .get(&*url)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    let ready = probe.is_ok_and(|r| r.status().is_success());
    server::Readiness {
        ready,
        dependencies: vec![("payment", if ready { "reachable" } else { "unreachable" })],
    }
}
