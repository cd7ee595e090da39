//! The tracehop binary against the real services: order-gateway, payment-service and
//! email-service in this process (system-tests' stack, real RabbitMQ) exporting over OTLP gRPC to
//! a real log-service, also in this process on port 0 with a temporary SQLite file.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use system_tests::{LogService, Stack, StackOptions, logged_services};

/// The services, log-service and a private state directory for `--last`.
struct World {
    stack: Stack,
    log_service: LogService,
    state_dir: tempfile::TempDir,
}

async fn world(env: &[(&str, &str)]) -> World {
    let log_service = LogService::start().await;
    let stack = system_tests::spawn_stack(StackOptions {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        otlp_endpoint: Some(log_service.otlp_grpc_endpoint()),
        ..Default::default()
    })
    .await;
    World {
        stack,
        log_service,
        state_dir: tempfile::tempdir().expect("temp dir"),
    }
}

/// What one run of the binary did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// A failure reported the way users should see it: non-zero, one line, no backtrace.
    fn one_line_error(self) -> String {
        assert_ne!(self.code, 0, "expected a failure; stdout: {}", self.stdout);
        common::assert_one_line_error(&self.stderr)
    }
}

fn from(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs tracehop with the given URLs and arguments. RUST_BACKTRACE=1 proves errors stay one line.
async fn tracehop_with(urls: &[(&str, &str)], state_dir: &std::path::Path, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracehop"));
    command
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("TRACEHOP_STATE_DIR", state_dir)
        .env_remove("ADMIN_TOKEN")
        .env_remove("TRACEHOP_API_KEY")
        .env_remove("NO_COLOR")
        .kill_on_drop(true);
    for (k, v) in urls {
        command.env(k, v);
    }
    from(command.output().await.expect("tracehop runs"))
}

impl World {
    async fn tracehop(&self, args: &[&str]) -> Run {
        tracehop_with(
            &[
                ("TRACEHOP_GATEWAY_URL", &self.stack.gateway_url),
                ("TRACEHOP_PAYMENT_URL", &self.stack.payment_url),
                ("TRACEHOP_EMAIL_URL", &self.stack.email_url),
                ("TRACEHOP_LOG_SERVICE_URL", &self.log_service.rest_url()),
            ],
            self.state_dir.path(),
            args,
        )
        .await
    }

    /// Places one order with `tracehop order` and returns (order id, status, trace id).
    async fn order(&self) -> (String, String, String) {
        let run = self.tracehop(&["order"]).await.ok();
        parse_order_line(run.stdout.lines().next().expect("one line"))
    }

    async fn stop(self) {
        self.stack.stop().await;
    }
}

/// `order <id>  <status>  trace <trace id>`.
fn parse_order_line(line: &str) -> (String, String, String) {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 5, "unexpected order line {line:?}");
    assert_eq!((words[0], words[3]), ("order", "trace"), "{line:?}");
    (words[1].into(), words[2].into(), words[4].into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_of_a_real_order_names_all_three_services_with_their_logs() {
    let world = world(&[]).await;
    let (order_id, status, trace_id) = world.order().await;
    assert_eq!(status, "confirmed");
    assert_eq!(trace_id.len(), 32);
    assert_eq!(order_id.len(), 36);

    // --last is the order just placed; the command waits until the spans stop arriving.
    let text = world.tracehop(&["trace", "--last"]).await.ok().stdout;
    let header = text.lines().next().unwrap_or("");
    assert!(header.starts_with(&format!("trace {trace_id}")), "{text}");
    for service in ["order-gateway", "payment-service", "email-service"] {
        assert!(text.contains(service), "{service} missing:\n{text}");
    }
    for span in [
        "POST /create-order",
        "POST /process-payment",
        "payments (producer)",
        "email.payments (consumer)",
        "send email",
    ] {
        assert!(text.contains(span), "span {span:?} missing:\n{text}");
    }
    assert!(
        !text.contains('\x1b'),
        "not a terminal, so no colour:\n{text}"
    );
    // The gateway's server span is the root: first row, no indentation, starting the time line
    // (the consumer may end after it, so its bar need not fill the line).
    let first_row = text.lines().nth(2).unwrap_or("");
    let bar = first_row.split_whitespace().rev().nth(1).unwrap_or("");
    assert!(
        first_row.starts_with("order-gateway")
            && first_row.contains("+0.00ms")
            && bar.starts_with('#'),
        "{text}"
    );
    // Log lines sit beneath their spans, tagged with the order id.
    assert!(text.contains(&format!("order_id={order_id}")), "{text}");

    let json = world
        .tracehop(&["trace", &trace_id, "--json"])
        .await
        .ok()
        .json();
    let spans = json["spans"].as_array().expect("spans");
    assert!(spans.len() >= 6, "{json:#}");
    assert!(spans.iter().all(|s| s["trace_id"] == trace_id.as_str()));
    assert!(json["logs"].as_array().is_some_and(|l| !l.is_empty()));

    let forced = world
        .tracehop(&["--color", "always", "trace", &trace_id])
        .await
        .ok();
    assert!(forced.stdout.contains("\x1b["), "--color always colours");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_take_items_and_count_and_report_rejections_in_one_line() {
    let world = world(&[]).await;
    let run = world
        .tracehop(&[
            "order",
            "--count",
            "2",
            "--email",
            "ann@example.com",
            "--item",
            "SKU-A:2:5.50",
            "--item",
            "SKU-B:1:100",
        ])
        .await
        .ok();
    let lines: Vec<_> = run.stdout.lines().map(parse_order_line).collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(lines.iter().all(|(_, status, _)| status == "confirmed"));
    assert_ne!(lines[0].2, lines[1].2, "one trace per order");

    let json = world.tracehop(&["order", "--json"]).await.ok().json();
    assert_eq!(json["http_status"], 201);
    assert_eq!(
        json["payment"]["amount_cents"], 1999,
        "no field: the sample order"
    );

    let err = world
        .tracehop(&["order", "--email", "not-an-address"])
        .await
        .one_line_error();
    assert!(
        err.contains("1 of 1 orders failed at order-gateway"),
        "{err}"
    );
    assert!(err.contains("customer_email"), "{err}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_filter_by_trace_service_and_level() {
    let world = world(&[]).await;
    let (_, _, trace_id) = world.order().await;

    // Log records leave the services in batches; poll until every service's lines are in.
    let deadline = Instant::now() + Duration::from_secs(15);
    let page = loop {
        let page = world
            .tracehop(&["logs", "--trace", &trace_id, "--json"])
            .await
            .ok()
            .json();
        let services = logged_services(&page);
        if ["order-gateway", "payment-service", "email-service"]
            .iter()
            .all(|s| services.contains(s))
        {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "not every service's logs arrived: {page:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        page["logs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["trace_id"] == trace_id.as_str())
    );

    let text = world
        .tracehop(&[
            "logs",
            "--trace",
            &trace_id,
            "--service",
            "payment-service",
            "--since",
            "5m",
        ])
        .await
        .ok()
        .stdout;
    assert!(!text.is_empty());
    for line in text.lines() {
        assert!(
            line.contains(" payment-service ") && line.contains(&trace_id),
            "{line}"
        );
    }

    let errors = world
        .tracehop(&["logs", "--trace", &trace_id, "--level", "error", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(
        errors["logs"].as_array().map(Vec::len),
        Some(0),
        "a confirmed order logs no errors: {errors:#}"
    );

    let err = world
        .tracehop(&["logs", "--level", "loud"])
        .await
        .one_line_error();
    assert!(err.contains("--level"), "{err}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_report_counts_add_up_and_decline_ratio_is_restored() {
    let world = world(&[]).await;
    let report = world
        .tracehop(&["load", "--concurrency", "4", "--duration", "2s", "--json"])
        .await
        .ok()
        .json();
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"));
    common::assert_load_report_adds_up(&report, 11);
    let l = &report["latency_ms"];
    let ms = |k: &str| l[k].as_f64().expect("latency figure");
    assert!(
        0.0 < ms("p50") && ms("p50") <= ms("p90") && ms("p90") <= ms("p99"),
        "{l}"
    );
    assert!(ms("p99") <= ms("p99_9") && ms("p99_9") <= ms("max"), "{l}");
    let rps = report["throughput_rps"].as_f64().unwrap();
    assert!(
        (rps - n(&report["answered"]) as f64 / report["duration_s"].as_f64().unwrap()).abs() < 1e-6
    );

    // A fixed rate with every payment declined: all answers are 402, and the knob comes back.
    let report = world
        .tracehop(&[
            "load",
            "--rate",
            "40",
            "--duration",
            "1s",
            "--decline-ratio",
            "1",
            "--json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(report["mode"], "rate");
    assert_eq!(
        n(&report["status"]["402"]),
        n(&report["answered"]),
        "{report:#}"
    );
    assert!(
        (30..=41).contains(&n(&report["sent"])),
        "about 40 scheduled in 1 s: {report:#}"
    );
    let knobs = world
        .tracehop(&["faults", "payment", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(knobs["failure_rate"], 0.0, "restored after the run");

    // The human report says the same in words.
    let text = world
        .tracehop(&["load", "-c", "2", "-d", "500ms"])
        .await
        .ok()
        .stdout;
    assert!(
        text.contains("answered +") && text.contains("p99.9"),
        "{text}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_set_and_read_back_with_the_admin_token() {
    let world = world(&[("ADMIN_TOKEN", "s3cret")]).await;
    let err = world
        .tracehop(&["faults", "payment"])
        .await
        .one_line_error();
    assert!(
        err.contains("payment-service at") && err.contains("401") && err.contains("--token"),
        "{err}"
    );

    let set = world
        .tracehop(&[
            "faults",
            "payment",
            "failure_rate=0.25",
            "latency_ms=5",
            "--token",
            "s3cret",
        ])
        .await
        .ok();
    assert_eq!(
        set.stdout.trim(),
        "failure_rate=0.25 latency_ms=5 unavailable=false"
    );
    let read = world
        .tracehop(&["faults", "payment", "--json", "--token", "s3cret"])
        .await
        .ok()
        .json();
    assert_eq!(read["failure_rate"], 0.25);
    assert_eq!(read["latency_ms"], 5);

    // email-service: pausing the consumer shows on its /ready.
    world
        .tracehop(&["faults", "email", "paused=true", "--token", "s3cret"])
        .await
        .ok();
    let email = world.stack.email_url.clone();
    let ready = world
        .stack
        .client
        .get(format!("{email}/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let read = world
        .tracehop(&["faults", "email", "paused=false", "--token", "s3cret"])
        .await
        .ok();
    assert!(read.stdout.contains("paused=false"), "{}", read.stdout);
    // The email-service URL flag goes before the subcommand.
    let read = world
        .tracehop(&["--email", &email, "faults", "email", "--token", "s3cret"])
        .await
        .ok();
    assert!(read.stdout.contains("paused=false"), "{}", read.stdout);

    let err = world
        .tracehop(&["faults", "email", "unavailable=true", "--token", "s3cret"])
        .await
        .one_line_error();
    assert!(err.contains("failure_rate, latency_ms, paused"), "{err}");
    let err = world
        .tracehop(&["faults", "payment", "failure_rate=2", "--token", "s3cret"])
        .await
        .one_line_error();
    assert!(err.contains("between 0 and 1"), "{err}");
    world.stop().await;
}

#[tokio::test]
async fn bad_flags_and_missing_services_give_one_line_errors() {
    let state = tempfile::tempdir().unwrap();
    let dead = [
        ("TRACEHOP_GATEWAY_URL", "http://127.0.0.1:9"),
        ("TRACEHOP_LOG_SERVICE_URL", "http://127.0.0.1:9"),
    ];
    let run = |args: &'static [&'static str]| tracehop_with(&dead, state.path(), args);

    let err = run(&["load", "--rate", "-1"]).await.one_line_error();
    assert!(err.contains("--rate") || err.contains("-1"), "{err}");
    assert!(err.ends_with("see tracehop --help"), "{err}");
    let err = run(&["order", "--item", "nope"]).await.one_line_error();
    assert!(err.contains("sku:quantity:price"), "{err}");
    let err = run(&["order", "--bogus"]).await.one_line_error();
    assert!(err.contains("--bogus"), "{err}");
    let err = run(&["--gateway", "localhost", "order"])
        .await
        .one_line_error();
    assert!(
        err.contains("not a URL") || err.contains("not an http"),
        "{err}"
    );
    let err = run(&["trace"]).await.one_line_error();
    assert!(err.contains("--last") || err.contains("TRACE_ID"), "{err}");
    let err = run(&["faults", "sms"]).await.one_line_error();
    assert!(err.contains("sms"), "{err}");

    let err = run(&["order"]).await.one_line_error();
    assert!(
        err.starts_with("tracehop: order-gateway at http://127.0.0.1:9 is not reachable"),
        "{err}"
    );
    let err = run(&["trace", "--last"]).await.one_line_error();
    assert!(
        err.contains("log-service at http://127.0.0.1:9 is not reachable"),
        "{err}"
    );
    let err = run(&["load", "-d", "1s"]).await.one_line_error();
    assert!(err.contains("order-gateway at http://127.0.0.1:9"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap().to_owned();
    let err = tracehop_with(&dead, state.path(), &["down", "--log-dir", &dir])
        .await
        .one_line_error();
    assert!(err.contains("tracehop.pids"), "{err}");
    let err = tracehop_with(
        &dead,
        state.path(),
        &["up", "--log-dir", &dir, "--bin-dir", &dir],
    )
    .await
    .one_line_error();
    assert!(
        err.contains("is not at") && err.contains("cargo build --release"),
        "{err}"
    );

    let help = run(&["--help"]).await.ok();
    for command in ["up", "down", "order", "trace", "logs", "load", "faults"] {
        assert!(help.stdout.contains(command), "{}", help.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_sends_the_api_key_a_log_service_with_api_keys_asks_for() {
    // The keys file holds only hashes: `printf %s <key> | sha256sum`.
    let keys = log_service::ApiKeys::parse(
        r#"[{"name": "cli", "tenant": "acme", "role": "read",
             "sha256": "1369fecd06ff48d8966c87b336a9e25b374216666d73a166dfc0f0d9853c39f1"},
            {"name": "app", "tenant": "acme", "role": "write",
             "sha256": "8ff671243629ee8f5b131b96588e317c86c4849563e64ab1238b5911910959cb"}]"#,
    )
    .unwrap();
    let log_service = LogService::start_with(|config| config.api_keys = Some(keys)).await;
    let url = log_service.rest_url();
    let response = reqwest::Client::new()
        .post(format!("{url}/api/v1/logs"))
        .bearer_auth("tracehop-writer-key")
        .json(&serde_json::json!({"service_name": "svc", "level": "WARN", "message": "acme only"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let state_dir = tempfile::tempdir().unwrap();
    let logs = |key: Option<&'static str>| {
        let mut env = vec![("TRACEHOP_LOG_SERVICE_URL", url.as_str())];
        env.extend(key.map(|k| ("TRACEHOP_API_KEY", k)));
        let dir = state_dir.path().to_owned();
        async move { tracehop_with(&env, &dir, &["logs", "--json"]).await }
    };

    let error = logs(None).await.one_line_error();
    assert!(error.contains("answered 401"), "{error}");
    assert!(error.contains("TRACEHOP_API_KEY"), "{error}");
    let page = logs(Some("tracehop-reader-key")).await.ok().json();
    let messages: Vec<&str> = page["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["acme only"]);
    // The writer's key may not read.
    let error = logs(Some("tracehop-writer-key")).await.one_line_error();
    assert!(error.contains("answered 403"), "{error}");
}
