//! `spawn_app()` and request helpers shared by the integration tests.

use server::Service as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use log_service::grpc::proto::query::query_service_client::QueryServiceClient;
use log_service::{Application, Config};
use reqwest::StatusCode;
use serde_json::Value;
use tonic::transport::Channel;

/// A running application and clients for it. The database directory is removed on drop.
pub struct TestApp {
    pub rest: String,
    pub otlp_http: String,
    pub otlp_grpc: SocketAddr,
    pub grpc: SocketAddr,
    pub client: reqwest::Client,
    pub _dir: TempDir,
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("log-service-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Starts the application with a test config adjusted by `adjust`.
pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = TempDir::new();
    let mut config = Config::for_tests(dir.0.join("db").join("logs.db"));
    adjust(&mut config);
    spawn_config(config, dir).await
}

/// Starts the application with `config`; `dir` is kept alive with it.
pub async fn spawn_config(config: Config, dir: TempDir) -> TestApp {
    // Logs of the app show up in the output of a failing test.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("log_service=debug")
        .try_init();
    let app = Application::build(config, &server::Stop::new())
        .await
        .expect("application builds");
    let app_addr = |a: SocketAddr| format!("http://{a}");
    let test = TestApp {
        rest: app_addr(app.rest_addr()),
        otlp_http: app_addr(app.otlp_http_addr()),
        otlp_grpc: app.otlp_grpc_addr(),
        grpc: app.grpc_addr(),
        client: reqwest::Client::new(),
        _dir: dir,
    };
    tokio::spawn(app.run());
    test
}

impl TestApp {
    pub async fn post(
        &self,
        path: &str,
        tenant: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.rest)).json(body);
        if let Some(t) = tenant {
            request = request.header("X-Tenant-ID", t);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, tenant: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.get(format!("{}{path}", self.rest));
        if let Some(t) = tenant {
            request = request.header("X-Tenant-ID", t);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn query_client(&self) -> QueryServiceClient<Channel> {
        QueryServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("grpc connects")
    }
}

/// A gRPC request carrying `x-tenant-id` when a tenant is given.
pub fn with_tenant<T>(message: T, tenant: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(t) = tenant {
        request
            .metadata_mut()
            .insert("x-tenant-id", t.parse().expect("ascii tenant"));
    }
    request
}

/// Ids of the logs in a list response, in order.
pub fn ids(body: &Value) -> Vec<i64> {
    body["logs"]
        .as_array()
        .expect("logs array")
        .iter()
        .map(|l| l["id"].as_i64().expect("id"))
        .collect()
}

/// Messages of the logs in a list response, in order.
pub fn messages(body: &Value) -> Vec<String> {
    body["logs"]
        .as_array()
        .expect("logs array")
        .iter()
        .map(|l| l["message"].as_str().expect("message").to_owned())
        .collect()
}
