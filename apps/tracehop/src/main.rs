use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match tracehop::cli::parse() {
        Ok(cli) => cli,
        Err(exit) => return exit,
    };
    if let Err(error) = tracehop::run(cli) {
        // One line with the whole cause chain; never a backtrace, whatever RUST_BACKTRACE says. The
        // chain can quote a server or a service's last output line, so it is escaped as a whole.
        eprintln!(
            "tracehop: {}",
            tracehop::terminal::safe(&format!("{error:#}"))
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
