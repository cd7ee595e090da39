fn main() -> std::process::ExitCode {
    tracehop::main()
}
