#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::main::<order_gateway::Application>().await
}
