//! What `up` starts: each service's name, address and environment, consistent with each other
//! (the gateway's `PAYMENT_URL` is payment-service's address, every exporter's endpoint is
//! log-service's receiver).

use std::path::{Path, PathBuf};

use crate::cli::UpArgs;

/// One service to start.
#[derive(Debug)]
pub(super) struct Spec {
    pub(super) name: &'static str,
    pub(super) url: String,
    pub(super) env: Vec<(&'static str, String)>,
}

fn local(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// The services in start order, with consistent addresses and settings.
pub(super) fn specs(args: &UpArgs, log_dir: &Path) -> Vec<Spec> {
    let log_dir = log_dir.display().to_string();
    let otlp = format!("http://{}", local(args.otlp_grpc_port));
    let common = |bind: u16| -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("BIND_ADDR", local(bind)),
            ("LOG_DIR", log_dir.clone()),
            // The JSON lines already go to $LOG_DIR/<service>.log; writing each twice would cost
            // CPU on every request. <service>.stdout keeps what a service prints outside its
            // logger: start-up errors and panics.
            ("LOG_STDOUT", "false".into()),
            ("AMQP_URL", args.amqp_url.clone()),
        ];
        // Replicated queues on a cluster; every client of the topology must agree.
        if args.brokers.is_some() {
            env.push(("AMQP_QUEUE_TYPE", "quorum".into()));
        }
        if !args.no_log_service {
            env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone()));
            env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()));
        }
        env
    };
    let mut specs = Vec::new();
    if !args.no_log_service {
        let mut env = vec![
            ("BIND_ADDR", local(args.log_service_port)),
            ("OTLP_GRPC_ADDR", local(args.otlp_grpc_port)),
            ("OTLP_HTTP_ADDR", local(args.otlp_http_port)),
            ("GRPC_ADDR", local(args.grpc_port)),
            ("LOG_DIR", log_dir.clone()),
            ("LOG_STDOUT", "false".into()),
        ];
        if let Some(db) = &args.database {
            env.push(("DATABASE_URL", db.clone()));
        }
        if let Some(url) = &args.alertmanager_url {
            env.push(("ALERTMANAGER_URL", url.clone()));
        }
        if let Some(rules) = alert_rules(args) {
            env.push(("ALERT_RULES_FILE", rules.display().to_string()));
        }
        specs.push(spec("log-service", args.log_service_port, env));
    }
    let mut payment = common(args.payment_port);
    payment.extend(knobs(
        ("PAYMENT_FAILURE_RATE", args.payment_failure_rate),
        ("PAYMENT_LATENCY_MS", args.payment_latency_ms),
    ));
    specs.push(spec("payment-service", args.payment_port, payment));
    let mut email = common(args.email_port);
    email.extend(knobs(
        ("EMAIL_FAILURE_RATE", args.email_failure_rate),
        ("EMAIL_LATENCY_MS", args.email_latency_ms),
    ));
    specs.push(spec("email-service", args.email_port, email));
    let mut gateway = common(args.gateway_port);
    gateway.push((
        "PAYMENT_URL",
        format!("http://{}", local(args.payment_port)),
    ));
    specs.push(spec("order-gateway", args.gateway_port, gateway));
    specs
}

/// The demo's log alert rules, shipped in the repository that `tracehop up` usually runs from.
const DEFAULT_ALERT_RULES: &str = "observability/log-alert-rules.json";

/// The rules file for log-service: the one named, else the demo's when it is here. An absolute
/// path, so log-service reads the same file whatever its working directory.
fn alert_rules(args: &UpArgs) -> Option<PathBuf> {
    let path = match &args.alert_rules {
        Some(path) => path.clone(),
        None => Some(PathBuf::from(DEFAULT_ALERT_RULES)).filter(|p| p.is_file())?,
    };
    Some(std::path::absolute(&path).unwrap_or(path))
}

/// The service `name` answering on `port`, started with `env`.
fn spec(name: &'static str, port: u16, env: Vec<(&'static str, String)>) -> Spec {
    Spec {
        name,
        url: format!("http://{}", local(port)),
        env,
    }
}

/// The fault knobs given on the command line, as `(variable, value)` of the failure rate and
/// the latency; a knob not given keeps the service's default.
fn knobs(
    (rate_var, rate): (&'static str, Option<f64>),
    (latency_var, latency_ms): (&'static str, Option<u64>),
) -> impl Iterator<Item = (&'static str, String)> {
    let rate = rate.map(|r| (rate_var, r.to_string()));
    rate.into_iter()
        .chain(latency_ms.map(|ms| (latency_var, ms.to_string())))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn up_args(flags: &[&str]) -> Result<UpArgs, clap::Error> {
        let cli = Cli::try_parse_from(["tracehop", "up"].iter().chain(flags))?;
        match cli.command {
            Command::Up(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn env_of<'a>(specs: &'a [Spec], name: &str, key: &str) -> Option<&'a str> {
        let spec = specs.iter().find(|s| s.name == name)?;
        spec.env
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_cluster_gives_every_service_quorum_queues_and_a_single_broker_does_not() {
        let dir = Path::new("/tmp/logs");
        let cluster = specs(&up_args(&["--brokers", "3"]).unwrap(), dir);
        for name in ["payment-service", "email-service", "order-gateway"] {
            assert_eq!(
                env_of(&cluster, name, "AMQP_QUEUE_TYPE"),
                Some("quorum"),
                "{name}"
            );
        }
        let single = specs(&up_args(&[]).unwrap(), dir);
        assert_eq!(env_of(&single, "email-service", "AMQP_QUEUE_TYPE"), None);
        assert!(up_args(&["--brokers", "0"]).is_err());
    }
}
