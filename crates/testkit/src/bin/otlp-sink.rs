//! `otlp-sink [ADDR]`: the tests' OTLP/gRPC receiver in counting mode on ADDR (default
//! 127.0.0.1:4317). It decodes every export, counts the spans and log records and keeps nothing.
//! `scripts/bench.sh` exports to it to measure what telemetry costs the services themselves,
//! apart from what storing it costs a backend on the same cores.
//!
//!   cargo build --release -p testkit --bin otlp-sink && target/release/otlp-sink 127.0.0.1:4317
//!
//! On SIGTERM or SIGINT it lets the exports in progress finish, prints `{"spans":N,"logs":M}` and
//! exits.

use std::net::SocketAddr;
use std::process::ExitCode;

use testkit::otlp::{Mode, OtlpReceiver};
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> ExitCode {
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4317".into());
    let addr: SocketAddr = match arg.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("otlp-sink: {arg:?} is not a socket address ({e})");
            return ExitCode::from(2);
        }
    };
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("otlp-sink: cannot listen for signals");
        return ExitCode::FAILURE;
    };
    let receiver = match OtlpReceiver::bind(addr, Mode::Count).await {
        Ok(receiver) => receiver,
        Err(e) => {
            eprintln!("otlp-sink: cannot serve on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    let counts = receiver.shutdown().await;
    println!("{{\"spans\":{},\"logs\":{}}}", counts.spans, counts.logs);
    ExitCode::SUCCESS
}
