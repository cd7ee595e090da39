use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match tracehop::cli::parse() {
        Ok(cli) => cli,
        Err(exit) => return exit,
    };
    if let Err(error) = tracehop::run(cli) {
        // One line with the whole cause chain; never a backtrace, whatever RUST_BACKTRACE says.
        eprintln!("tracehop: {error:#}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
