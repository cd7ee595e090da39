//! `spawn_app()` and request helpers shared by the integration tests.

use server::Service as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use log_service::grpc::proto::query::TraceIdRequest;
use log_service::grpc::proto::query::query_service_client::QueryServiceClient;
use log_service::{Application, Config};
use reqwest::{Method, StatusCode};
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
        let request = self.client.post(format!("{}{path}", self.rest)).json(body);
        send(request, tenant).await
    }

    pub async fn get(&self, path: &str, tenant: Option<&str>) -> (StatusCode, Value) {
        send(self.client.get(format!("{}{path}", self.rest)), tenant).await
    }

    /// The REST port's `/metrics` page.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(format!("{}/metrics", self.rest)).send();
        response.await.unwrap().text().await.unwrap()
    }

    /// Posts `body` as it is, declared as `content_type`, to `url` (any listener's): for bodies
    /// the JSON helpers cannot send (protobuf, broken JSON, other media types).
    pub async fn post_raw(
        &self,
        url: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let request = self.client.post(url).header("content-type", content_type);
        request.body(body).send().await.expect("request sent")
    }

    /// Posts `body` to `path` and checks that it is refused with a 422 naming `field`.
    pub async fn assert_invalid_field(&self, path: &str, body: &Value, field: &str) {
        let (status, answer) = self.post(path, None, body).await;
        assert_eq!(status, 422, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }

    /// Posts `body`, which is not JSON of any shape, to `path` and checks that it is refused
    /// with a 400 naming the body.
    pub async fn assert_unreadable_body(&self, path: &str, body: &'static str) {
        let url = format!("{}{path}", self.rest);
        let response = self.post_raw(&url, "application/json", body).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["field"], "body", "{body} -> {answer}");
    }

    pub async fn query_client(&self) -> QueryServiceClient<Channel> {
        QueryServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("grpc connects")
    }
}

/// Sends a REST request as `tenant` (none: no `X-Tenant-ID`); the answer's status and JSON body
/// (null when it has none).
async fn send(request: reqwest::RequestBuilder, tenant: Option<&str>) -> (StatusCode, Value) {
    let request = match tenant {
        Some(t) => request.header("X-Tenant-ID", t),
        None => request,
    };
    let response = request.send().await.expect("request sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends a request with an optional bearer key and tenant header; the status and JSON body.
pub async fn call(
    app: &TestApp,
    method: Method,
    url: &str,
    key: Option<&str>,
    tenant: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(tenant) = tenant {
        request = request.header("X-Tenant-ID", tenant);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    // The live tail answers with an endless event stream: only its status matters here.
    if response
        .headers()
        .get("content-type")
        .is_some_and(|t| t == "text/event-stream")
    {
        return (status, Value::Null);
    }
    (status, response.json().await.unwrap_or(Value::Null))
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

/// Checks that an OTLP/gRPC export, of either signal, was answered with nothing rejected: the
/// answer is the empty one, without a partial success.
pub fn assert_all_accepted<R>(answer: Result<tonic::Response<R>, tonic::Status>)
where
    R: Default + PartialEq + std::fmt::Debug,
{
    let answer = answer.expect("export answered").into_inner();
    assert_eq!(answer, R::default(), "the export rejected records");
}

/// A `GetLogsByTraceId` or `GetDagByTraceId` request, carrying `x-tenant-id` when a tenant is
/// given.
pub fn trace_request(trace_id: &str, tenant: Option<&str>) -> tonic::Request<TraceIdRequest> {
    with_tenant(
        TraceIdRequest {
            trace_id: trace_id.into(),
        },
        tenant,
    )
}

/// The status code of a gRPC answer, `Ok` for a success.
pub fn grpc_code<T>(answer: Result<tonic::Response<T>, tonic::Status>) -> tonic::Code {
    answer.map_or_else(|status| status.code(), |_| tonic::Code::Ok)
}

/// Posts `message` as one raw gRPC frame to `path` on `addr`, past any client's own encoding, so
/// that malformed protobuf reaches the server; returns the answer's `grpc-status`.
pub async fn raw_grpc_status(addr: SocketAddr, path: &str, message: &[u8]) -> String {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(frame)
        .send()
        .await
        .unwrap();
    response.headers()["grpc-status"]
        .to_str()
        .expect("ascii grpc-status")
        .to_owned()
}

/// Lower-case hex, as the API spells trace and span ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// The string `key` of every element of the array `body[list]`, in order.
pub fn strings(body: &Value, list: &str, key: &str) -> Vec<String> {
    body[list]
        .as_array()
        .unwrap_or_else(|| panic!("{list} array in {body}"))
        .iter()
        .map(|item| {
            item[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} string in {item}"))
                .to_owned()
        })
        .collect()
}

/// Messages of the logs in a list response, in order.
pub fn messages(body: &Value) -> Vec<String> {
    strings(body, "logs", "message")
}

/// An application that can be stopped, so that another can start on its database.
pub struct Stoppable {
    pub app: TestApp,
    pub stop: server::Stop,
    pub run: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Stoppable {
    pub async fn start(config: Config) -> Stoppable {
        let stop = server::Stop::new();
        let app = Application::build(config, &stop)
            .await
            .expect("application builds");
        let test = TestApp {
            rest: format!("http://{}", app.rest_addr()),
            otlp_http: format!("http://{}", app.otlp_http_addr()),
            otlp_grpc: app.otlp_grpc_addr(),
            grpc: app.grpc_addr(),
            client: reqwest::Client::new(),
            _dir: TempDir::new(),
        };
        let run = tokio::spawn(app.run());
        Stoppable {
            app: test,
            stop,
            run,
        }
    }

    /// Stops intake and waits until the application, its evaluator and its writer are done.
    pub async fn stop(self) {
        self.stop.stop();
        self.run.await.expect("run task").expect("clean stop");
        assert!(self.stop.join().await, "background tasks joined");
    }
}

/// Two tests of one check: `$sqlite` runs `$check` on SQLite, `$postgres` on a fresh PostgreSQL
/// database (skipped when no server answers).
macro_rules! on_both_backends {
    ($sqlite:ident, $postgres:ident, $check:path) => {
        #[tokio::test]
        async fn $sqlite() {
            let app = $crate::helpers::spawn_app().await;
            $check(&app).await;
        }

        #[tokio::test]
        async fn $postgres() {
            $crate::postgres::PostgresApp::check($check).await;
        }
    };
}
pub(crate) use on_both_backends;
