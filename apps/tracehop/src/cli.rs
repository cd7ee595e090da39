//! The command line: flags, their defaults and environment variables, parsed with clap derive.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::util::parse_duration;

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(
    name = "tracehop",
    version,
    about = "Starts the order services, places orders, shows their traces and logs, measures load and sets fault knobs"
)]
pub struct Cli {
    /// Where the services answer.
    #[command(flatten)]
    pub urls: Urls,
    /// Colour on a terminal (auto), always or never; `NO_COLOR` also turns it off.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// When to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Base URLs of the services, shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct Urls {
    /// order-gateway base URL.
    #[arg(long, global = true, env = "TRACEHOP_GATEWAY_URL", default_value = "http://127.0.0.1:3000", value_parser = parse_url, value_name = "URL")]
    pub gateway: String,
    /// payment-service base URL.
    #[arg(long, global = true, env = "TRACEHOP_PAYMENT_URL", default_value = "http://127.0.0.1:3001", value_parser = parse_url, value_name = "URL")]
    pub payment: String,
    /// email-service (admin) base URL; give it before the subcommand (`order --email` is the
    /// customer's address).
    #[arg(id = "email_url", long = "email", env = "TRACEHOP_EMAIL_URL", default_value = "http://127.0.0.1:3002", value_parser = parse_url, value_name = "URL")]
    pub email: String,
    /// log-service REST base URL.
    #[arg(long = "log-service", global = true, env = "TRACEHOP_LOG_SERVICE_URL", default_value = "http://127.0.0.1:5002", value_parser = parse_url, value_name = "URL")]
    pub log_service: String,
    /// log-service API key, sent as `Authorization: Bearer` (log-service with `API_KEYS_FILE`).
    #[arg(
        long = "api-key",
        global = true,
        env = "TRACEHOP_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
}

impl Urls {
    /// A client of log-service that sends `--api-key` / `TRACEHOP_API_KEY` when given.
    pub fn log_service(&self) -> crate::client::Service {
        crate::client::Service::new("log-service", &self.log_service)
            .with_token(self.api_key.clone())
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Starts log-service and the three services (binaries next to tracehop), waits until each is ready.
    Up(UpArgs),
    /// Stops the services a `tracehop up --detach` started.
    Down(DownArgs),
    /// Places orders and prints order id, status and trace id.
    Order(OrderArgs),
    /// Draws a trace from log-service as a waterfall with each span's log lines.
    Trace(TraceArgs),
    /// Searches the log lines log-service holds.
    Logs(LogsArgs),
    /// Places orders at a fixed concurrency or rate and reports throughput and latency percentiles.
    Load(LoadArgs),
    /// Reads or sets the run-time fault knobs of payment-service or email-service.
    Faults(FaultsArgs),
}

/// Flags of `tracehop up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Starts the services in the background, writes `<log-dir>/tracehop.pids` and returns.
    #[arg(short, long)]
    pub detach: bool,
    /// Directory of the services' JSON logs, their stdout and the pid file.
    #[arg(long, env = "LOG_DIR", default_value = "logs")]
    pub log_dir: PathBuf,
    /// log-service storage (`sqlite://PATH` or `postgres://...`); default: log-service's own.
    #[arg(long, env = "DATABASE_URL")]
    pub database: Option<String>,
    /// Directory holding the service binaries (default: the directory of this executable).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// The RabbitMQ broker.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// Starts (or reuses) a local RabbitMQ cluster of this many nodes with the repository's
    /// scripts/rabbitmq-cluster.sh, and gives the services every node's URL and quorum queues,
    /// in place of --amqp-url (and `AMQP_URL`). Stop the cluster with
    /// `scripts/rabbitmq-cluster.sh stop`.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub brokers: Option<u8>,
    /// order-gateway port.
    #[arg(long, default_value_t = 3000)]
    pub gateway_port: u16,
    /// payment-service port.
    #[arg(long, default_value_t = 3001)]
    pub payment_port: u16,
    /// email-service admin port.
    #[arg(long, default_value_t = 3002)]
    pub email_port: u16,
    /// log-service REST port.
    #[arg(long, default_value_t = 5002)]
    pub log_service_port: u16,
    /// log-service OTLP gRPC port (every service exports here).
    #[arg(long, default_value_t = 4317)]
    pub otlp_grpc_port: u16,
    /// log-service OTLP HTTP port.
    #[arg(long, default_value_t = 4318)]
    pub otlp_http_port: u16,
    /// log-service gRPC query port.
    #[arg(long, default_value_t = 50051)]
    pub grpc_port: u16,
    /// Starts no log-service (the services export to whatever listens on the OTLP port).
    #[arg(long)]
    pub no_log_service: bool,
    /// Alertmanager that log-service sends its log alerts to (log-service's `ALERTMANAGER_URL`);
    /// without it the rules are evaluated and their state shown, nothing is sent.
    #[arg(long, env = "ALERTMANAGER_URL", value_parser = parse_url, value_name = "URL")]
    pub alertmanager_url: Option<String>,
    /// Log alert rules log-service loads at start (`ALERT_RULES_FILE`); default:
    /// observability/log-alert-rules.json when it exists in the current directory.
    #[arg(long, env = "ALERT_RULES_FILE", value_name = "PATH")]
    pub alert_rules: Option<PathBuf>,
    /// Share of payments declined, 0..1 (`PAYMENT_FAILURE_RATE`).
    #[arg(long, value_parser = parse_rate)]
    pub payment_failure_rate: Option<f64>,
    /// Added payment latency in ms (`PAYMENT_LATENCY_MS`).
    #[arg(long)]
    pub payment_latency_ms: Option<u64>,
    /// Share of e-mail sends that fail, 0..1 (`EMAIL_FAILURE_RATE`).
    #[arg(long, value_parser = parse_rate)]
    pub email_failure_rate: Option<f64>,
    /// Added e-mail latency in ms (`EMAIL_LATENCY_MS`).
    #[arg(long)]
    pub email_latency_ms: Option<u64>,
    /// How long to wait for every `/ready`, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
}

/// Flags of `tracehop down`.
#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// The log directory given to `tracehop up --detach` (holds tracehop.pids).
    #[arg(long, env = "LOG_DIR", default_value = "logs")]
    pub log_dir: PathBuf,
    /// How long each service may take to stop after SIGTERM before it gets SIGKILL.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// One order line given as `sku:quantity:price`.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Stock keeping unit.
    pub sku: String,
    /// Units.
    pub quantity: u32,
    /// Unit price in minor units (cents).
    pub unit_price_cents: i64,
}

/// Flags of `tracehop order`.
#[derive(Debug, Clone, Args)]
pub struct OrderArgs {
    /// Customer e-mail (default customer@example.com when any order field is given).
    #[arg(long)]
    pub email: Option<String>,
    /// An order line `sku:quantity:price`, price in cents (1999) or with a decimal point (19.99); repeatable.
    #[arg(long = "item", value_parser = parse_item, value_name = "SKU:QTY:PRICE")]
    pub items: Vec<Item>,
    /// ISO 4217 currency code.
    #[arg(long)]
    pub currency: Option<String>,
    /// How many orders to place, one after the other.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// One JSON object per order instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `tracehop trace`.
#[derive(Debug, Clone, Args)]
pub struct TraceArgs {
    /// The trace id (32 hex digits).
    #[arg(required_unless_present = "last", conflicts_with = "last")]
    pub trace_id: Option<String>,
    /// The trace of the last order `tracehop order` placed (else the newest trace log-service has).
    #[arg(long)]
    pub last: bool,
    /// Prints log-service's JSON for the trace instead of the waterfall.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the trace's spans to arrive (exporters send every 500 ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub wait: Duration,
}

/// Flags of `tracehop logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Only this service.
    #[arg(long)]
    pub service: Option<String>,
    /// Only this level and above (debug, info, warn, error).
    #[arg(long)]
    pub level: Option<String>,
    /// Only lines newer than this, e.g. 30s, 10m, 2h, 1d.
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Only lines of this trace.
    #[arg(long)]
    pub trace: Option<String>,
    /// Only lines whose message contains these words.
    #[arg(long)]
    pub search: Option<String>,
    /// At most this many lines (newest kept), 1..=1000.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Prints log-service's JSON page instead of lines.
    #[arg(long, conflicts_with = "follow")]
    pub json: bool,
    /// Prints new lines as they are stored, until Ctrl-C (resumes after a log-service restart).
    #[arg(long, short)]
    pub follow: bool,
}

/// Flags of `tracehop load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Connections, each sending its next order when the previous one is answered (default 32);
    /// with --rate, the most requests in flight.
    #[arg(long, short, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: Option<u32>,
    /// Orders per second on a fixed schedule (latency counts from the scheduled time).
    #[arg(long, short, value_parser = parse_positive)]
    pub rate: Option<f64>,
    /// How long to send, e.g. 20s or 2m.
    #[arg(long, short, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Share of payments payment-service declines during the run (its fault knob, restored after).
    #[arg(long, value_parser = parse_rate)]
    pub decline_ratio: Option<f64>,
    /// Bearer token of payment-service's /admin/faults (for --decline-ratio).
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Per-request timeout; a request that takes longer counts as a transport error.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Prints the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A service with fault knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FaultTarget {
    /// payment-service: failure_rate, latency_ms, unavailable.
    Payment,
    /// email-service: failure_rate, latency_ms, paused.
    Email,
}

/// Flags of `tracehop faults`.
#[derive(Debug, Clone, Args)]
pub struct FaultsArgs {
    /// Which service.
    #[arg(value_enum)]
    pub service: FaultTarget,
    /// Knobs to set as key=value; none reads the current values.
    #[arg(value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Bearer token of /admin/faults.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Prints the knobs as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses the process arguments; on a bad command line prints one line and gives the exit code.
pub fn parse() -> Result<Cli, ExitCode> {
    parse_from(std::env::args_os())
}

/// Parses `args`; help and version are printed in full, every error as one line.
pub fn parse_from<I, T>(args: I) -> Result<Cli, ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(cli),
        Err(err) => {
            use clap::error::ErrorKind;
            match err.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = err.print();
                    Err(ExitCode::from(if err.use_stderr() { 2 } else { 0 }))
                }
                _ => {
                    eprintln!("tracehop: {}", one_line(&err.render().to_string()));
                    Err(ExitCode::from(2))
                }
            }
        }
    }
}

/// Reduces clap's rendered error (message, tip, usage) to its first line plus a pointer to --help.
fn one_line(rendered: &str) -> String {
    // The message is the first paragraph; clap puts a list (missing arguments) on its next lines.
    let paragraph: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let message = paragraph.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let message = if message.is_empty() {
        "invalid command line"
    } else {
        message
    };
    format!("{message}; see tracehop --help")
}

fn parse_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("{text:?} is not a URL ({e}); expected e.g. http://127.0.0.1:3000"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} is not an http:// or https:// URL"));
    }
    Ok(text.trim().trim_end_matches('/').to_owned())
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?} is not a number between 0 and 1")),
    }
}

fn parse_positive(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("{text:?} is not a positive number")),
    }
}

/// Parses `sku:quantity:price`; the price is cents, or currency units when it has a decimal point.
pub fn parse_item(text: &str) -> Result<Item, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let [sku, quantity, price] = parts[..] else {
        return Err(format!(
            "{text:?} is not sku:quantity:price (e.g. SKU-1:2:1999)"
        ));
    };
    if sku.trim().is_empty() {
        return Err(format!("{text:?} has an empty sku"));
    }
    let quantity: u32 = quantity
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: quantity {quantity:?} is not a whole number"))?;
    let unit_price_cents = parse_price(price.trim())
        .ok_or_else(|| format!("{text:?}: price {price:?} is not cents (1999) or 19.99"))?;
    Ok(Item {
        sku: sku.trim().to_owned(),
        quantity,
        unit_price_cents,
    })
}

fn parse_price(text: &str) -> Option<i64> {
    match text.split_once('.') {
        None => text.parse().ok(),
        Some((units, fraction)) => {
            if fraction.is_empty()
                || fraction.len() > 2
                || !fraction.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let units: i64 = if units.is_empty() {
                0
            } else {
                units.parse().ok()?
            };
            let cents: i64 = format!("{fraction:0<2}").parse().ok()?;
            units.checked_mul(100)?.checked_add(cents)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_parse_cents_and_decimal_prices() {
        assert_eq!(
            parse_item("SKU-1:2:1999").unwrap(),
            Item {
                sku: "SKU-1".into(),
                quantity: 2,
                unit_price_cents: 1999
            }
        );
        assert_eq!(parse_item("A:1:19.9").unwrap().unit_price_cents, 1990);
        assert_eq!(parse_item("A:1:0.05").unwrap().unit_price_cents, 5);
        assert!(parse_item("A:1").is_err());
        assert!(parse_item("A:x:1").is_err());
        assert!(parse_item("A:1:1.234").is_err());
        assert!(parse_item(":1:1").is_err());
    }

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: unexpected argument '--nope' found\n\n  tip: to pass '--nope' as a value, use '-- --nope'\n\nUsage: tracehop order [OPTIONS]\n";
        assert_eq!(
            one_line(rendered),
            "unexpected argument '--nope' found; see tracehop --help"
        );
        let rendered = "error: the following required arguments were not provided:\n  <TRACE_ID>\n\nUsage: tracehop trace\n";
        assert_eq!(
            one_line(rendered),
            "the following required arguments were not provided: <TRACE_ID>; see tracehop --help"
        );
    }

    #[test]
    fn urls_and_rates_are_checked() {
        assert_eq!(parse_url("http://h:1/").unwrap(), "http://h:1");
        assert!(parse_url("h:1").is_err());
        assert!(parse_rate("1.5").is_err());
        assert_eq!(parse_rate("0.25").unwrap(), 0.25);
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
