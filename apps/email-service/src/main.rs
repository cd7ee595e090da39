#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::main::<email_service::Application>().await
}
