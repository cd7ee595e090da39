//! `tracehop faults`: reads (`GET`) or sets (`PUT`, a partial JSON body) `/admin/faults`.

use anyhow::{anyhow, bail};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::cli::{FaultTarget, FaultsArgs, Urls};
use crate::client::Service;
use crate::terminal::{self, safe};

/// The type of a knob's value.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Rate,
    Millis,
    Flag,
}

fn knobs(target: FaultTarget) -> &'static [(&'static str, Kind)] {
    match target {
        FaultTarget::Payment => &[
            ("failure_rate", Kind::Rate),
            ("latency_ms", Kind::Millis),
            ("unavailable", Kind::Flag),
        ],
        FaultTarget::Email => &[
            ("failure_rate", Kind::Rate),
            ("latency_ms", Kind::Millis),
            ("paused", Kind::Flag),
        ],
    }
}

/// The service a target names, at the configured URL.
pub fn service(urls: &Urls, target: FaultTarget) -> Service {
    match target {
        FaultTarget::Payment => Service::new("payment-service", &urls.payment),
        FaultTarget::Email => Service::new("email-service", &urls.email),
    }
}

/// Turns `key=value` arguments into the JSON update, checking names and types first.
fn update(target: FaultTarget, settings: &[String]) -> anyhow::Result<Value> {
    let known = knobs(target);
    let names = || known.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let mut body = Map::new();
    for setting in settings {
        let Some((key, value)) = setting.split_once('=') else {
            bail!("{setting:?} is not key=value; the knobs are {}", names());
        };
        let (key, value) = (key.trim(), value.trim());
        let Some((_, kind)) = known.iter().find(|(n, _)| *n == key) else {
            bail!(
                "{key:?} is not a fault knob of {}; the knobs are {}",
                service_name(target),
                names()
            );
        };
        let parsed = match kind {
            Kind::Rate => value
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .map(|r| json!(r))
                .ok_or_else(|| anyhow!("{key}={value:?}: expected a number between 0 and 1"))?,
            Kind::Millis => value
                .parse::<u64>()
                .map(|ms| json!(ms))
                .map_err(|_| anyhow!("{key}={value:?}: expected whole milliseconds"))?,
            Kind::Flag => match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "on" | "yes" => json!(true),
                "false" | "0" | "off" | "no" => json!(false),
                _ => bail!("{key}={value:?}: expected true or false"),
            },
        };
        body.insert(key.to_owned(), parsed);
    }
    Ok(Value::Object(body))
}

fn service_name(target: FaultTarget) -> &'static str {
    match target {
        FaultTarget::Payment => "payment-service",
        FaultTarget::Email => "email-service",
    }
}

/// Reads or sets the knobs, then prints them.
pub async fn run(urls: &Urls, args: FaultsArgs) -> anyhow::Result<()> {
    let service = service(urls, args.service).with_token(args.token.clone());
    let knobs = if args.settings.is_empty() {
        service.call_ok(Method::GET, "/admin/faults", None).await?
    } else {
        let body = update(args.service, &args.settings)?;
        service
            .call_ok(Method::PUT, "/admin/faults", Some(&body))
            .await?
    };
    if args.json {
        println!("{}", terminal::json(&knobs, false)?);
    } else if let Some(obj) = knobs.as_object() {
        let line: Vec<String> = obj
            .iter()
            .map(|(k, v)| safe(&format!("{k}={v}")).into_owned())
            .collect();
        println!("{}", line.join(" "));
    } else {
        bail!(
            "{} at {} answered /admin/faults with something other than a JSON object",
            service.name,
            service.base
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_typed_and_checked() {
        let body = update(
            FaultTarget::Payment,
            &[
                "failure_rate=0.5".into(),
                "latency_ms=20".into(),
                "unavailable=on".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"failure_rate": 0.5, "latency_ms": 20, "unavailable": true})
        );
        let body = update(FaultTarget::Email, &["paused=false".into()]).unwrap();
        assert_eq!(body, json!({"paused": false}));

        let err = update(FaultTarget::Email, &["unavailable=true".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("paused"), "{err}");
        assert!(update(FaultTarget::Payment, &["failure_rate=2".into()]).is_err());
        assert!(update(FaultTarget::Payment, &["latency_ms=-1".into()]).is_err());
        assert!(update(FaultTarget::Payment, &["failure_rate".into()]).is_err());
    }
}
