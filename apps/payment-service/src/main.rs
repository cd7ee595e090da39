#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::main::<payment_service::Application>().await
}
