//! Crash safety of the real binary: SIGKILL during heavy ingest, restart, and every acknowledged
//! record is there.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::TempDir;

const BATCH: usize = 200;

/// Starts the binary on port 0 and returns it with its REST base URL (read from its start-up log).
async fn start(db: &str) -> (Child, String) {
    // The log file goes beside the database, in the test's temporary directory, not ./logs.
    let log_dir = std::path::Path::new(db)
        .parent()
        .expect("database in a directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_log-service"))
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("OTLP_GRPC_ADDR", "127.0.0.1:0")
        .env("OTLP_HTTP_ADDR", "127.0.0.1:0")
        .env("GRPC_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", format!("sqlite://{db}"))
        .env("LOG_DIR", log_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let rest = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Ok(event) = serde_json::from_str::<Value>(&line)
                && event["message"] == "log-service listening"
            {
                return format!("http://{}", event["rest_addr"].as_str().unwrap());
            }
        }
        panic!("binary exited before listening");
    })
    .await
    .expect("binary listens within 30 s");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_survives_sigkill() {
    let dir = TempDir::new();
    let db = dir.0.join("crash.db").display().to_string();
    let (mut child, rest) = start(&db).await;

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let client = reqwest::Client::new();
    let mut writers = Vec::new();
    for worker in 0..6 {
        let (client, rest, acked) = (client.clone(), rest.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                let request_id = format!("w{worker}-{n}");
                let batch: Vec<Value> = (0..BATCH)
                    .map(|i| {
                        json!({"service_name": "crash", "level": "INFO",
                                    "message": format!("record {i} of {request_id}"),
                                    "request_id": request_id})
                    })
                    .collect();
                match client
                    .post(format!("{rest}/api/v1/logs/batch"))
                    .json(&batch)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 201 => acked.lock().unwrap().push(request_id),
                    Ok(r) if r.status() == 429 => continue,
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    let started = Instant::now();
    // Kill mid-stream: after enough acknowledgements that commits are surely overlapping requests.
    while acked.lock().unwrap().len() < 100 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().expect("SIGKILL sent");
    child.wait().await.unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 40,
        "only {} batches acknowledged before the kill",
        acked.len()
    );

    let (_child, rest) = start(&db).await;
    // The stats count every row (a page's total stops counting at 10,000).
    let (_, stats) = get(&client, &format!("{rest}/api/v1/logs/stats")).await;
    let total = stats["total"].as_u64().unwrap() as usize;
    assert!(
        total >= acked.len() * BATCH,
        "{total} rows stored, {} acknowledged",
        acked.len() * BATCH
    );
    for request_id in &acked {
        let (status, body) =
            get(&client, &format!("{rest}/api/v1/logs/request/{request_id}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["count"], BATCH,
            "acknowledged batch {request_id} is incomplete"
        );
    }
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.expect("request sent");
    (response.status().as_u16(), response.json().await.unwrap())
}
