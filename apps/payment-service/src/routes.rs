//! HTTP routes: `POST /process-payment`, probes, metrics and fault knobs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use messaging::{OutgoingMessage, Publisher};
use orders::{PaymentAnswer, PaymentEvent, PaymentEventType, PaymentRequest, PaymentStatus};
use prometheus::Registry;
use server::admin::faults_router;
use server::error::{ApiError, BODY_LIMIT, parse_json};
use telemetry::OpenTelemetrySpanExt;
use tokio::sync::OnceCell;

use crate::faults::Faults;
use crate::metrics::Metrics;

/// Answers are remembered for this many orders, oldest forgotten first. The memory mostly
/// makes concurrent duplicates wait for the first; a duplicate arriving later than that is
/// harmless too, since it derives the same decision, payment id and event id.
const IDEMPOTENCY_CAPACITY: usize = 4096;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) publisher: Publisher,
    pub(crate) metrics: Metrics,
    pub(crate) faults: Arc<RwLock<Faults>>,
    pub(crate) idempotency: Arc<Idempotency>,
    pub(crate) admin_token: Option<Arc<str>>,
}

/// The routes; `registry` is what `/metrics` serves.
pub(crate) fn router(state: AppState, registry: &Registry) -> Router {
    Router::new()
        .route("/process-payment", post(process_payment))
        .with_state(state.clone())
        .merge(server::probes(registry.clone(), {
            let publisher = state.publisher.clone();
            move || broker_readiness(publisher.is_ready())
        }))
        .merge(faults_router(state.faults, state.admin_token, None))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// 422 naming the field of the request that breaks a shared rule of [`orders::rules`].
fn invalid_payment(error: orders::Invalid) -> ApiError {
    ApiError::invalid("invalid_payment", &error.field, &error.problem.to_string())
}

/// What is remembered of a completed payment; everything else is derived from the order id.
#[derive(Debug, Clone)]
struct Charged {
    declined: bool,
    amount_cents: i64,
    /// The currency and e-mail of the first request, to recognise a different order sent
    /// under the same key.
    currency: String,
    customer_email: String,
}

impl Charged {
    /// 422 when `request` is not the order this payment was made for: a reused idempotency
    /// key must not confirm somebody else's order (3 x 777 EUR told a 1,999 USD order went through).
    fn check_same_order(&self, request: &PaymentRequest) -> Result<(), ApiError> {
        if self.amount_cents == request.amount_cents
            && self.currency == request.currency
            && self.customer_email == request.customer_email
        {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_conflict",
            format!(
                "this Idempotency-Key was first used for an order of {} {} for {}; this request is for {} {} for {}: use a new key for a new order",
                self.amount_cents,
                self.currency,
                telemetry::mask_email(&self.customer_email),
                request.amount_cents,
                request.currency,
                telemetry::mask_email(&request.customer_email),
            ),
        ))
    }
}

/// First-result memory per order id: concurrent duplicates wait for the first to finish.
#[derive(Default)]
pub(crate) struct Idempotency {
    inner: Mutex<IdempotencyInner>,
}

#[derive(Default)]
struct IdempotencyInner {
    cells: HashMap<Arc<str>, Arc<OnceCell<Charged>>>,
    order: std::collections::VecDeque<Arc<str>>,
}

impl Idempotency {
    fn cell(&self, key: &str) -> Arc<OnceCell<Charged>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cell) = inner.cells.get(key) {
            return cell.clone();
        }
        if inner.order.len() >= IDEMPOTENCY_CAPACITY
            && let Some(oldest) = inner.order.pop_front()
        {
            inner.cells.remove(&oldest);
        }
        let cell = Arc::new(OnceCell::new());
        let key: Arc<str> = Arc::from(key);
        inner.cells.insert(key.clone(), cell.clone());
        inner.order.push_back(key);
        cell
    }
}

async fn process_payment(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: PaymentRequest =
        parse_json(&headers, body, "invalid_payment")?.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_payment",
                "request body is required",
            )
        })?;
    request.validate().map_err(invalid_payment)?;
    let span = tracing::Span::current();
    span.set_attribute("order.id", request.order_id.clone());

    let faults = *state.faults.read().unwrap_or_else(|p| p.into_inner());
    if faults.unavailable {
        tracing::warn!(order_id = %request.order_id, "payment refused: service marked unavailable");
        return Err(unavailable(
            "payment-service is unavailable (fault injected)",
        ));
    }

    // Only a completed, published answer is remembered: a failure leaves the cell empty so the
    // caller's retry runs again.
    let cell = state.idempotency.cell(&request.order_id);
    let replay = cell.initialized();
    let charged = cell
        .get_or_try_init(|| charge(&state, &request, faults))
        .await?;
    charged.check_same_order(&request)?;
    if replay {
        tracing::info!(order_id = %request.order_id, "repeated request answered with the first result");
    }
    let (status, payment_status) = if charged.declined {
        span.record("otel.status_code", "ERROR");
        (StatusCode::PAYMENT_REQUIRED, PaymentStatus::Declined)
    } else {
        (StatusCode::CREATED, PaymentStatus::Succeeded)
    };
    let answer = PaymentAnswer {
        payment_id: derived_id(&request.order_id, "payment").to_string(),
        order_id: request.order_id,
        status: payment_status,
        amount_cents: charged.amount_cents,
    };
    Ok((status, Json(answer)).into_response())
}

async fn charge(
    state: &AppState,
    request: &PaymentRequest,
    faults: Faults,
) -> Result<Charged, ApiError> {
    faults.simulation.delay().await;
    // Everything about a payment is a function of its order id: a retry after an unconfirmed
    // publish (the broker may still have kept the first event) gets the same outcome, the same
    // payment id and the same event id, so the consumer's outbox sends at most one e-mail.
    let declined = declines(&request.order_id, faults.simulation.failure_rate);
    let event_type = if declined {
        PaymentEventType::Failed
    } else {
        PaymentEventType::Succeeded
    };
    let payment_id = derived_id(&request.order_id, "payment").to_string();
    let event = PaymentEvent {
        event_id: derived_id(&request.order_id, event_type.routing_key()).to_string(),
        event_type,
        occurred_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        order_id: request.order_id.clone(),
        payment_id: payment_id.clone(),
        amount_cents: request.amount_cents,
        currency: request.currency.clone(),
        customer_email: request.customer_email.clone(),
    };
    let body = event.encode();
    let message = OutgoingMessage {
        routing_key: event_type.routing_key(),
        message_id: &event.event_id,
        correlation_id: &event.order_id,
        content_type: "application/json",
        body: &body,
    };
    if let Err(error) = state.publisher.publish(&message).await {
        tracing::error!(order_id = %request.order_id, error = %error, "payment event not confirmed by the broker");
        return Err(unavailable("payment event could not be published"));
    }
    let status = if declined {
        PaymentStatus::Declined
    } else {
        PaymentStatus::Succeeded
    };
    state
        .metrics
        .processed
        .with_label_values(&[status.as_str()])
        .inc();
    if declined {
        tracing::warn!(order_id = %request.order_id, payment_id = %payment_id, event_id = %event.event_id, "payment declined");
    } else {
        tracing::info!(
            order_id = %request.order_id,
            payment_id = %payment_id,
            event_id = %event.event_id,
            amount_cents = request.amount_cents,
            customer = %telemetry::mask_email(&request.customer_email),
            "payment succeeded"
        );
    }
    Ok(Charged {
        declined,
        amount_cents: request.amount_cents,
        currency: request.currency.clone(),
        customer_email: request.customer_email.clone(),
    })
}

/// Namespace of the ids derived from an order id (UUIDv5).
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c_4b7e_2d0a_4c55_9b8e_7a1d_3c2f_5e60);

/// A stable id for `what` of `order_id`.
fn derived_id(order_id: &str, what: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&ID_NAMESPACE, format!("{order_id}/{what}").as_bytes())
}

/// Whether the simulated bank declines `order_id`: a uniform draw from the order id, so the
/// share of declines over many orders is `failure_rate` and one order always gets one answer.
fn declines(order_id: &str, failure_rate: f64) -> bool {
    if failure_rate <= 0.0 {
        return false;
    }
    let draw = derived_id(order_id, "decision").as_u128() >> 64;
    (draw as f64 / u64::MAX as f64) < failure_rate
}

fn unavailable(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
        message,
    )
}

/// Ready while a confirmed channel is open: without it no payment can be confirmed.
async fn broker_readiness(connected: bool) -> server::Readiness {
    server::Readiness {
        ready: connected,
        dependencies: vec![(
            "broker",
            if connected {
                "connected"
            } else {
                "disconnected"
            },
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_the_rate_and_repeat_per_order() {
        let ids: Vec<String> = (0..10_000)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let declined = ids.iter().filter(|id| declines(id, 0.3)).count();
        assert!((2_700..3_300).contains(&declined), "{declined}");
        assert!(ids.iter().all(|id| declines(id, 1.0)));
        assert!(!ids.iter().any(|id| declines(id, 0.0)));
        assert_eq!(declines(&ids[0], 0.5), declines(&ids[0], 0.5));
        assert_eq!(derived_id("o", "payment"), derived_id("o", "payment"));
        assert_ne!(
            derived_id("o", "payment.succeeded"),
            derived_id("o", "payment.failed")
        );
    }
}
