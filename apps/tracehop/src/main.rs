use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match tracehop::cli::parse() {
        Ok(cli) => cli,
        Err(exit) => return exit,
    };
    match tracehop::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line with the whole cause chain; never a backtrace, whatever RUST_BACKTRACE says.
            eprintln!("tracehop: {error:#}");
            ExitCode::FAILURE
        }
    }
}
