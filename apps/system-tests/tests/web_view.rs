//! log-service's web view in a real Chromium (Debian's `chromium` and `chromium-driver`, which
//! `scripts/test.sh` installs), driven over WebDriver: an order placed through the three real
//! services exporting to a real log-service, followed from a log line to its trace, from a span
//! to its attributes, from a log line back to its service's logs, from a pasted trace id to the
//! trace; a hostile log message shown as text; a firing rule on the alerts page, delivered to a
//! real Alertmanager (Debian's `prometheus-alertmanager`); the tenant picker; a trace of 10,000
//! spans drawn in under a second; the system's dark mode; the API key prompt of a log-service
//! with `API_KEYS_FILE`. Screenshots of every page go to `target/tmp/web-view/` (Cargo's
//! directory for integration tests' files), and their paths are printed.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use system_tests::{LogService, StackOptions, spawn_stack, wait_for_whole_trace};
use testkit::Alertmanager;

const HOSTILE: &str = "<script>alert(1)</script>";
const BIG_TRACE_SPANS: usize = 10_000;
/// The admin key of the log-service with API keys, and its SHA-256 as the keys file holds it.
const ADMIN_KEY: &str = "web-view-admin-key";
const ADMIN_KEY_SHA256: &str = "4467147aa59bd93794da3266047f69cafb32750203b9464024ae01d9002c5e0a";

/// chromedriver on a free port in a process group of its own, which also holds the Chromium
/// processes it starts: dropping it kills the group, so a failing test leaves no browser behind
/// (a panic skips `close`, and chromedriver killed alone leaves its browsers running).
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start() -> Self {
        let port = testkit::process::free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (scripts/test.sh installs chromium-driver)");
        Self { child, port }
    }

    /// A headless Chromium session at 1280x800; retries while chromedriver starts.
    async fn session(&self) -> Client {
        self.session_with(&[]).await
    }

    /// [`ChromeDriver::session`] with more Chromium flags (`--force-dark-mode`, say).
    async fn session_with(&self, flags: &[&str]) -> Client {
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
        ];
        args.extend_from_slice(flags);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), json!({ "args": args }));
        let url = format!("http://127.0.0.1:{}", self.port);
        let what = "a Chromium session from chromedriver";
        testkit::wait_until(what, Duration::from_secs(30), || {
            let capabilities = capabilities.clone();
            let url = url.clone();
            async move {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                ClientBuilder::new(connector)
                    .capabilities(capabilities)
                    .connect(&url)
                    .await
                    .ok()
            }
        })
        .await
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// The page's background as `[r, g, b]`, from its computed style.
async fn background(browser: &Client) -> [f64; 3] {
    let css = browser
        .execute(
            "return getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    let css = css.as_str().unwrap_or_default().to_owned();
    let channels: Vec<f64> = css
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    assert!(channels.len() >= 3, "a colour: {css}");
    [channels[0], channels[1], channels[2]]
}

/// Relative luminance (WCAG 2) of an sRGB colour: 0 is black, 1 white.
fn luminance([r, g, b]: [f64; 3]) -> f64 {
    let linear = |c: f64| {
        let c = c / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}

/// Waits until `css` matches at least `count` elements, and returns them.
async fn wait_for(browser: &Client, css: &str, count: usize) -> Vec<fantoccini::elements::Element> {
    let what = format!(
        "{count} elements matching {css} on {:?}",
        browser.current_url().await.ok()
    );
    testkit::wait_until(&what, Duration::from_secs(15), || async {
        let found = browser.find_all(Locator::Css(css)).await.ok()?;
        (found.len() >= count).then_some(found)
    })
    .await
}

async fn attr(element: &fantoccini::elements::Element, name: &str) -> String {
    element.attr(name).await.unwrap().unwrap_or_default()
}

async fn path_of(browser: &Client) -> String {
    let url = browser.current_url().await.unwrap();
    format!(
        "{}{}",
        url.path(),
        url.query().map(|q| format!("?{q}")).unwrap_or_default()
    )
}

/// Saves a screenshot as `<dir>/<name>.png` and prints its path.
async fn screenshot(browser: &Client, dir: &Path, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("screenshot written");
    println!("web view: screenshot {}", path.display());
}

/// A trace of `spans` spans of one service, ten children per span, as one OTLP/JSON request.
fn big_trace(trace_id: &str, spans: usize) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let start = now.as_nanos() as i64 - 10_000_000_000;
    let span_id = |i: usize| format!("{:016x}", i + 1);
    let spans: Vec<Value> = (0..spans)
        .map(|i| {
            let begin = start + i as i64 * 100_000;
            let mut span = json!({
                "traceId": trace_id, "spanId": span_id(i), "name": format!("step {i}"), "kind": 1,
                "startTimeUnixNano": begin.to_string(),
                "endTimeUnixNano": (begin + 50_000 + (i % 7) as i64 * 10_000).to_string(),
            });
            if i > 0 {
                span["parentSpanId"] = json!(span_id((i - 1) / 10));
            }
            span
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "batch-job"}}]},
        "scopeSpans": [{"spans": spans}],
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_follows_an_order_from_its_log_line_to_its_trace_and_back_in_chromium() {
    let alertmanager = Alertmanager::start().await;
    let log_service = LogService::start_with(|c| {
        c.alerts.eval_interval = Duration::from_millis(500);
        c.alerts.alertmanager_url = Some(alertmanager.url.clone());
    })
    .await;
    let rest = log_service.rest_url();
    let stack = spawn_stack(StackOptions {
        otlp_endpoint: Some(log_service.otlp_grpc_endpoint()),
        ..StackOptions::default()
    })
    .await;
    let client = stack.client.clone();
    let order = stack.create_order(None).await;
    assert_eq!(order.status, 201);
    let trace_id = order.json["trace_id"].as_str().unwrap().to_owned();
    let trace = wait_for_whole_trace(&client, &rest, &trace_id, "in log-service").await;
    let spans = trace["spans"].as_array().unwrap().clone();

    // A hostile message, a firing rule, and a trace of 10,000 spans.
    let created = client
        .post(format!("{rest}/api/v1/logs"))
        .json(&json!({"service_name": "web-test", "level": "WARN", "message": HOSTILE}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let rule = json!({"name": "gateway orders", "service": "order-gateway", "threshold": 1,
                      "window_seconds": 600, "for_seconds": 0, "severity": "warning"});
    let created = client
        .post(format!("{rest}/api/v1/alerts"))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let big_id = format!("{:032x}", 0xb16_7ace_u128);
    let sent = client
        .post(format!("{}/v1/traces", log_service.otlp_http_endpoint()))
        .json(&big_trace(&big_id, BIG_TRACE_SPANS))
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success(), "{:?}", sent.text().await);
    let alerts_url = format!("{rest}/api/v1/alerts");
    testkit::wait_until("the rule to fire", Duration::from_secs(15), || async {
        let body: Value = client
            .get(&alerts_url)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let rule = &body["rules"][0];
        (rule["state"] == "firing" && rule["delivery"]["state"] == "delivered").then_some(())
    })
    .await;

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-view");
    std::fs::create_dir_all(&shots).unwrap();
    let driver = ChromeDriver::start();
    let browser = driver.session().await;
    browser.set_window_size(1280, 800).await.unwrap();
    browser.goto(&format!("{rest}/")).await.unwrap();
    let light = background(&browser).await;
    assert!(luminance(light) > 0.8, "a light page by default: {light:?}");

    // Search: the order's log lines, newest first; its trace id is a link.
    browser.goto(&format!("{rest}/")).await.unwrap();
    wait_for(&browser, "#logs tr", 5).await;
    screenshot(&browser, &shots, "search").await;
    let link = browser
        .find(Locator::Css(&format!("#logs a[href='/trace/{trace_id}']")))
        .await
        .expect("a log line links to the order's trace");
    link.click().await.unwrap();

    // Trace: six spans over three services, nested as their parents say, the consumer linked.
    let rows = wait_for(&browser, ".waterfall .span", 6).await;
    assert_eq!(path_of(&browser).await, format!("/trace/{trace_id}"));
    assert_eq!(rows.len(), 6, "one row per span");
    let parent_of: HashMap<String, String> = spans
        .iter()
        .map(|s| {
            let parent = s["parent_span_id"].as_str().unwrap_or_default();
            (s["span_id"].as_str().unwrap().to_owned(), parent.to_owned())
        })
        .collect();
    let depth_of = |id: &str| {
        let (mut depth, mut id) = (0, id.to_owned());
        while let Some(parent) = parent_of.get(&id).filter(|p| parent_of.contains_key(*p)) {
            depth += 1;
            id = parent.clone();
        }
        depth
    };
    let mut services = HashSet::new();
    let mut consumer_row = None;
    for row in &rows {
        let id = attr(row, "data-span-id").await;
        let span = spans
            .iter()
            .find(|s| s["span_id"] == id.as_str())
            .unwrap_or_else(|| panic!("row of unknown span {id}"));
        assert_eq!(
            attr(row, "data-parent").await,
            span["parent_span_id"].as_str().unwrap_or("")
        );
        assert_eq!(
            attr(row, "data-depth").await,
            depth_of(&id).to_string(),
            "nesting of {}",
            span["name"]
        );
        services.insert(attr(row, "data-service").await);
        if span["kind"] == "CONSUMER" {
            let mark = row
                .find(Locator::Css(".link-mark"))
                .await
                .expect("the consumer's link is drawn");
            let producer = span["links"][0]["span_id"]
                .as_str()
                .expect("the consumer's link");
            assert_eq!(attr(&mark, "data-linked").await, producer);
            let linked_to = spans.iter().find(|s| s["span_id"] == producer).unwrap();
            assert_eq!(linked_to["kind"], "PRODUCER");
            consumer_row = Some(row.clone());
        }
    }
    assert_eq!(services.len(), 3, "{services:?}");

    // A span's attributes on click.
    consumer_row
        .expect("a consumer span")
        .click()
        .await
        .unwrap();
    let details = wait_for(&browser, "#span-details", 1).await;
    let text = details[0].text().await.unwrap();
    assert!(
        text.contains("messaging.system") && text.contains("rabbitmq"),
        "{text}"
    );
    screenshot(&browser, &shots, "trace").await;
    browser.set_window_size(390, 844).await.unwrap();
    // No sideways scrolling; when there is, the elements whose hiding ends it are named.
    let overflow = browser
        .execute(
            "const d = document.documentElement; const over = () => d.scrollWidth - d.clientWidth; \
             const culprits = []; \
             const walk = (e) => { for (const c of e.children) { const old = c.style.display; \
               c.style.display = 'none'; const fits = over() === 0; c.style.display = old; \
               if (fits) { culprits.push(`${c.tagName}.${c.className}#${c.id}`); walk(c); } } }; \
             const px = over(); if (px > 0) walk(document.body); return [px, culprits]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow[0],
        json!(0),
        "sideways scrolling at phone width: {overflow}"
    );
    screenshot(&browser, &shots, "trace-phone").await;
    browser.set_window_size(1280, 800).await.unwrap();

    // From a log line under its span back to its service's logs around that time.
    let around = wait_for(&browser, ".span-log .around", 1).await;
    let service = around[0]
        .text()
        .await
        .unwrap()
        .trim_end_matches(" logs around")
        .to_owned();
    around[0].click().await.unwrap();
    let rows = wait_for(&browser, "#logs tr", 1).await;
    assert!(
        path_of(&browser)
            .await
            .contains(&format!("service={service}"))
    );
    for row in rows {
        let badge = row.find(Locator::Css(".service")).await.unwrap();
        assert_eq!(badge.text().await.unwrap(), service);
    }

    // A trace id pasted into the search box opens the trace.
    browser.goto(&format!("{rest}/")).await.unwrap();
    let input = wait_for(&browser, "#f-q", 1).await;
    input[0]
        .send_keys(&format!("{trace_id}\u{E007}"))
        .await
        .unwrap();
    wait_for(&browser, ".waterfall .span", 6).await;
    assert_eq!(path_of(&browser).await, format!("/trace/{trace_id}"));

    // The hostile message is text, and nothing ran.
    browser
        .goto(&format!("{rest}/?service=web-test"))
        .await
        .unwrap();
    let cells = wait_for(&browser, "#logs td.message", 1).await;
    assert_eq!(cells[0].text().await.unwrap(), HOSTILE);
    let scripts = browser
        .execute(
            "return document.querySelectorAll('#main script').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(scripts, json!(0));
    assert!(
        browser.get_alert_text().await.is_err(),
        "an alert dialog opened"
    );

    // The alerts page shows the firing rule with its example trace.
    browser.goto(&format!("{rest}/alerts")).await.unwrap();
    let rule = wait_for(
        &browser,
        "tr[data-rule='gateway orders'][data-state='firing']",
        1,
    )
    .await;
    assert!(
        rule[0]
            .find(Locator::Css("a[href^='/trace/']"))
            .await
            .is_ok(),
        "example trace link"
    );
    // Alertmanager has it, and the page says so.
    assert_eq!(attr(&rule[0], "data-delivery").await, "delivered");
    let delivery = rule[0].find(Locator::Css("td.delivery")).await.unwrap();
    let text = delivery.text().await.unwrap();
    assert!(text.starts_with("delivered"), "{text}");
    screenshot(&browser, &shots, "alerts").await;

    browser.goto(&format!("{rest}/services")).await.unwrap();
    wait_for(&browser, ".services tbody tr", 3).await;
    screenshot(&browser, &shots, "services").await;

    // A second tenant: the top bar offers a picker of both; choosing one shows only its logs.
    let other = client
        .post(format!("{rest}/api/v1/logs"))
        .header("X-Tenant-ID", "team-b")
        .json(&json!({"service_name": "b-svc", "level": "INFO", "message": "team b only"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 201);
    browser.goto(&format!("{rest}/")).await.unwrap();
    let options = wait_for(&browser, "select#tenant option", 2).await;
    let mut names = Vec::new();
    for option in &options {
        names.push(attr(option, "value").await);
    }
    assert_eq!(names, ["default", "team-b"]);
    screenshot(&browser, &shots, "tenant-picker").await;
    let picker = browser.find(Locator::Css("select#tenant")).await.unwrap();
    picker.select_by_value("team-b").await.unwrap();
    let rows = testkit::wait_until("team-b's logs", Duration::from_secs(15), || async {
        let rows = browser.find_all(Locator::Css("#logs tr")).await.ok()?;
        let first = rows.first()?.find(Locator::Css("td.message")).await.ok()?;
        (first.text().await.ok()? == "team b only").then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 1, "only team-b's log");
    let picker = wait_for(&browser, "select#tenant", 1).await.remove(0);
    let chosen = picker.prop("value").await.unwrap();
    assert_eq!(chosen.as_deref(), Some("team-b"), "the choice is kept");
    screenshot(&browser, &shots, "tenant-b").await;
    // Back to the default tenant, which the rest of the test reads.
    picker.select_by_value("default").await.unwrap();
    wait_for(&browser, "#logs tr", 5).await;

    // 10,000 spans: on screen in under a second, only the rows in view drawn; scrolling to the
    // end draws the last rows and drops the first.
    browser
        .goto(&format!("{rest}/trace/{big_id}"))
        .await
        .unwrap();
    wait_for(&browser, ".waterfall.virtual .span", 10).await;
    let timing = testkit::wait_until("the first frame", Duration::from_secs(15), || async {
        let timing = browser
            .execute(
                "const d = document.body.dataset; \
                 return d.paintMs ? [Number(d.renderMs), Number(d.paintMs)] : null",
                vec![],
            )
            .await
            .ok()?;
        (!timing.is_null()).then_some(timing)
    })
    .await;
    let (render_ms, paint_ms) = (timing[0].as_f64().unwrap(), timing[1].as_f64().unwrap());
    println!(
        "web view: a trace of {BIG_TRACE_SPANS} spans: rows in the page after {render_ms} ms, \
         first frame painted after {paint_ms} ms"
    );
    assert!(paint_ms < 1000.0, "{paint_ms} ms");
    let drawn = browser
        .find_all(Locator::Css(".waterfall .span"))
        .await
        .unwrap()
        .len();
    assert!(
        (10..200).contains(&drawn),
        "{drawn} rows drawn of {BIG_TRACE_SPANS}"
    );
    screenshot(&browser, &shots, "big-trace").await;
    let row_named = |name: &'static str| {
        let browser = browser.clone();
        async move {
            let script = format!(
                "return [...document.querySelectorAll('.waterfall .span .name')]\
                 .some(n => n.textContent === '{name}')"
            );
            browser.execute(&script, vec![]).await.unwrap() == json!(true)
        }
    };
    assert!(row_named("step 0").await);
    browser
        .execute(
            "document.querySelector('.waterfall').scrollTop = 1e9",
            vec![],
        )
        .await
        .unwrap();
    // Depth first with ten children per span, the last row is span 1110 (0, 10, 110, 1110).
    testkit::wait_until("the last rows drawn", Duration::from_secs(10), || async {
        row_named("step 1110").await.then_some(())
    })
    .await;
    assert!(!row_named("step 0").await, "rows out of view are dropped");
    let drawn = browser
        .find_all(Locator::Css(".waterfall .span"))
        .await
        .unwrap()
        .len();
    assert!(drawn < 200, "{drawn} rows drawn after the scroll");
    screenshot(&browser, &shots, "big-trace-end").await;
    // The keyboard walks the spans: Home goes back to the first row, drawing it again.
    let last = browser
        .find(Locator::Css(".waterfall .span:last-of-type"))
        .await
        .unwrap();
    last.send_keys("\u{E011}").await.unwrap();
    testkit::wait_until("the first row focused", Duration::from_secs(10), || async {
        let focused = browser
            .execute(
                "return document.activeElement?.querySelector('.name')?.textContent",
                vec![],
            )
            .await
            .ok()?;
        (focused == json!("step 0")).then_some(())
    })
    .await;

    // An unknown trace: a 404 page that says so.
    let unknown = format!("{:032x}", 0xdead_u128);
    let status = client
        .get(format!("{rest}/trace/{unknown}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    assert_eq!(
        client
            .get(format!("{rest}/trace/not-an-id"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    browser
        .goto(&format!("{rest}/trace/{unknown}"))
        .await
        .unwrap();
    let notice = wait_for(&browser, ".notice h2", 1).await;
    assert_eq!(notice[0].text().await.unwrap(), "Trace not found");
    browser.close().await.unwrap();

    // The system's dark mode: the same trace on a dark page.
    let dark = driver.session_with(&["--force-dark-mode"]).await;
    dark.set_window_size(1280, 800).await.unwrap();
    dark.goto(&format!("{rest}/trace/{trace_id}"))
        .await
        .unwrap();
    wait_for(&dark, ".waterfall .span", 6).await;
    let colour = background(&dark).await;
    assert!(luminance(colour) < 0.05, "a dark page: {colour:?}");
    screenshot(&dark, &shots, "trace-dark").await;
    dark.goto(&format!("{rest}/alerts")).await.unwrap();
    wait_for(&dark, "tr[data-rule='gateway orders']", 1).await;
    screenshot(&dark, &shots, "alerts-dark").await;
    dark.close().await.unwrap();

    // A log-service with API keys: the page asks for a key, then works with it.
    let keys_dir = tempfile::tempdir().unwrap();
    let keys_file = keys_dir.path().join("keys.json");
    let keys = json!([{"name": "web-admin", "tenant": "default", "role": "admin",
                       "sha256": ADMIN_KEY_SHA256}]);
    std::fs::write(&keys_file, keys.to_string()).unwrap();
    let keyed = LogService::start_with(|c| {
        c.api_keys = Some(log_service::ApiKeys::load(&keys_file).expect("the keys file loads"));
    })
    .await;
    let keyed_rest = keyed.rest_url();
    let written = client
        .post(format!("{keyed_rest}/api/v1/logs"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"service_name": "keyed-svc", "level": "INFO", "message": "behind a key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), 201);
    let browser = driver.session().await;
    browser.set_window_size(1280, 800).await.unwrap();
    browser.goto(&format!("{keyed_rest}/")).await.unwrap();
    let prompt = wait_for(&browser, "#key-prompt #prompt-key", 1).await;
    assert!(
        browser.find(Locator::Css("#logs tr")).await.is_err(),
        "no logs without a key"
    );
    screenshot(&browser, &shots, "key-prompt").await;
    prompt[0]
        .send_keys(&format!("{ADMIN_KEY}\u{E007}"))
        .await
        .unwrap();
    let cells = wait_for(&browser, "#logs td.message", 1).await;
    assert_eq!(cells[0].text().await.unwrap(), "behind a key");
    assert!(browser.find(Locator::Css("#key-prompt")).await.is_err());
    screenshot(&browser, &shots, "with-key").await;

    browser.close().await.unwrap();
    drop(driver);
    stack.stop().await;
}
