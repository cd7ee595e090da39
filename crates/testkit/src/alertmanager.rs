//! A real Alertmanager (Debian's `prometheus-alertmanager`, which `scripts/test.sh` installs) for
//! the tests of log-service's alert delivery.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{process::free_port, wait_until};

/// An Alertmanager on a free port whose one receiver drops everything, with its own storage
/// directory and no cluster port (parallel tests never share one); killed on drop.
pub struct Alertmanager {
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts one and waits until it is ready.
    pub async fn start() -> Alertmanager {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
        )
        .expect("write alertmanager.yml");
        let port = free_port();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "prometheus-alertmanager runs (scripts/test.sh installs it: \
                 apt-get install prometheus-alertmanager)",
            );
        let am = Alertmanager {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let ready = format!("{}/-/ready", am.url);
        wait_until("alertmanager ready", Duration::from_secs(20), || async {
            let answer = reqwest::get(&ready).await.ok()?;
            answer.status().is_success().then_some(())
        })
        .await;
        am
    }

    /// Waits until it holds an active alert called `alertname`, and returns it.
    pub async fn wait_firing(&self, alertname: &str) -> Value {
        let what = format!("alert {alertname} in alertmanager");
        wait_until(&what, Duration::from_secs(10), || async {
            self.alerts(alertname).await.into_iter().next()
        })
        .await
    }

    /// Waits until it holds no active alert called `alertname`.
    pub async fn wait_resolved(&self, alertname: &str) {
        let what = format!("alert {alertname} resolved in alertmanager");
        wait_until(&what, Duration::from_secs(10), || async {
            self.alerts(alertname).await.is_empty().then_some(())
        })
        .await
    }

    /// The active alerts called `alertname` (its `GET /api/v2/alerts`, which leaves out
    /// resolved ones).
    pub async fn alerts(&self, alertname: &str) -> Vec<Value> {
        let answer: Value = reqwest::get(format!("{}/api/v2/alerts", self.url))
            .await
            .expect("alertmanager answers")
            .json()
            .await
            .expect("alerts JSON");
        answer
            .as_array()
            .expect("an array of alerts")
            .iter()
            .filter(|a| a["labels"]["alertname"] == alertname)
            .cloned()
            .collect()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
