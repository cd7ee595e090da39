//! tracehop, the command line front door of the workspace: `up` starts log-service and the three
//! services as child processes (and `down` stops a detached run), `order` places orders, `trace`
//! draws a trace from log-service as a waterfall, `logs` searches log-service (or follows it live), `load` measures the
//! order path with an HDR histogram, and `faults` reads and sets the services' fault knobs.
//!
//! Every failure reaches `main` as one `anyhow` error whose message names the service, the address
//! and what to do, printed as a single line. Text that comes from a server is printed only through
//! [`terminal`], which escapes what a terminal would otherwise act on.

pub mod cli;
mod client;
mod cpu;
mod faults;
mod follow;
mod load;
mod logs;
mod order;
mod state;
mod style;
pub mod terminal;
mod trace;
mod up;
mod util;

use anyhow::Context;
use cli::{Cli, Command};

/// The whole command: parses the arguments, runs, and turns an error into one line on stderr
/// with its cause chain (never a backtrace) and exit code 1. The chain can quote a server, so it
/// is escaped for the terminal.
pub fn main() -> std::process::ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(exit) => return exit,
    };
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tracehop: {}", terminal::safe(&format!("{error:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command line to completion on a fresh tokio runtime.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let urls = cli.urls;
    let color = style::Palette::for_stdout(cli.color);
    match cli.command {
        Command::Up(args) => up::up(args).await,
        Command::Down(args) => up::down(args).await,
        Command::Order(args) => order::run(&urls, args).await,
        Command::Trace(args) => trace::run(&urls, args, color).await,
        Command::Logs(args) => logs::run(&urls, args, color).await,
        Command::Load(args) => load::run(&urls, args).await,
        Command::Faults(args) => faults::run(&urls, args).await,
    }
}
