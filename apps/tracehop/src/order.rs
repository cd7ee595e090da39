//! `tracehop order`: places orders one after the other and prints what the gateway answered.

use anyhow::bail;
use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{OrderArgs, Urls};
use crate::client::{Service, error_text};
use crate::state::{self, LastOrder};
use crate::terminal::{self, safe};

/// The order body, or `None` for the gateway's sample order (an empty body).
fn body(args: &OrderArgs) -> Option<Value> {
    if args.email.is_none() && args.items.is_empty() && args.currency.is_none() {
        return None;
    }
    let items: Vec<Value> = if args.items.is_empty() {
        vec![json!({"sku": "SKU-TRACE-001", "quantity": 1, "unit_price_cents": 1999})]
    } else {
        args.items
            .iter()
            .map(|i| json!({"sku": i.sku, "quantity": i.quantity, "unit_price_cents": i.unit_price_cents}))
            .collect()
    };
    Some(json!({
        "customer_email": args.email.as_deref().unwrap_or("customer@example.com"),
        "currency": args.currency.as_deref().unwrap_or("USD"),
        "items": items,
    }))
}

/// Places `--count` orders; fails (after placing them all) when any was neither confirmed nor declined.
pub async fn run(urls: &Urls, args: OrderArgs) -> anyhow::Result<()> {
    let gateway = Service::new("order-gateway", &urls.gateway);
    let body = body(&args);
    let mut failed = 0;
    let mut last_error = String::new();
    for _ in 0..args.count {
        let answer = gateway
            .call(Method::POST, "/create-order", body.as_ref())
            .await?;
        let text = |key: &str| {
            answer
                .json
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let (order_id, status, trace_id) = (text("order_id"), text("status"), text("trace_id"));
        if !order_id.is_empty() && !trace_id.is_empty() {
            state::save(&LastOrder {
                order_id: order_id.clone(),
                trace_id: trace_id.clone(),
                log_service: Some(urls.log_service.clone()),
                placed_at: Some(Utc::now()),
            });
        }
        let ok = answer.status.is_success() || answer.status.as_u16() == 402;
        if !ok {
            failed += 1;
            last_error = error_text(&answer.json).unwrap_or_else(|| answer.status.to_string());
        }
        if args.json {
            let mut line = answer.json.clone();
            if let Value::Object(obj) = &mut line {
                obj.insert("http_status".into(), json!(answer.status.as_u16()));
            }
            println!("{}", terminal::json(&line, false)?);
        } else if ok {
            println!(
                "order {}  {}  trace {}",
                safe(&order_id),
                safe(&status),
                safe(&trace_id)
            );
        } else {
            println!(
                "order failed  {} {}  trace {}",
                answer.status.as_u16(),
                error_text(&answer.json).unwrap_or_default(),
                if trace_id.is_empty() {
                    "-".into()
                } else {
                    safe(&trace_id)
                }
            );
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} orders failed at order-gateway {} (last: {last_error}); see `tracehop logs --level warn`",
            args.count,
            urls.gateway
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Item;

    fn args() -> OrderArgs {
        OrderArgs {
            email: None,
            items: vec![],
            currency: None,
            count: 1,
            json: false,
        }
    }

    #[test]
    fn no_fields_send_the_sample_order_and_any_field_fills_the_rest() {
        assert_eq!(body(&args()), None);
        let mut a = args();
        a.items.push(Item {
            sku: "A".into(),
            quantity: 2,
            unit_price_cents: 5,
        });
        let b = body(&a).unwrap();
        assert_eq!(b["customer_email"], "customer@example.com");
        assert_eq!(b["currency"], "USD");
        assert_eq!(b["items"][0]["quantity"], 2);
    }
}
