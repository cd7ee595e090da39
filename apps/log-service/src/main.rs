#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::main::<log_service::Application>().await
}
