//! `tracehop logs --follow`: log-service's live tail (`GET /api/v1/logs/stream`, Server-Sent
//! Events), printed line by line as `tracehop logs` prints them. A dropped connection (a
//! log-service restart) is reopened with `Last-Event-ID`, so no line is lost or printed twice;
//! Ctrl-C ends it with exit code 0.

use std::time::Duration;

use serde_json::Value;

use crate::cli::{LogsArgs, Urls};
use crate::client::Service;
use crate::style::Palette;

/// Pause before reconnecting after the stream dropped.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// One dispatched SSE event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// The SSE line protocol, fed with bytes as they arrive: `field: value` lines, `:` comments, and
/// an empty line dispatching the event (LF, CRLF or CR line ends).
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
    event: SseEvent,
    has_data: bool,
}

impl SseParser {
    /// Adds `bytes` and returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n' || *b == b'\r') {
            // A CR at the very end may be the first half of a CRLF: wait for the next byte.
            if self.pending[end] == b'\r' && end + 1 == self.pending.len() {
                break;
            }
            let skip = if self.pending[end] == b'\r' && self.pending.get(end + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            let line: Vec<u8> = self.pending.drain(..end + skip).take(end).collect();
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if self.has_data || !self.event.event.is_empty() {
                    events.push(std::mem::take(&mut self.event));
                }
                self.event = SseEvent::default();
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event.event = value.to_owned(),
                "id" => self.event.id = Some(value.to_owned()),
                "data" => {
                    if self.has_data {
                        self.event.data.push('\n');
                    }
                    self.event.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        events
    }
}

/// The stream's query parameters for the flags: the search's filters, without the page size.
fn stream_url(base: &str, args: &LogsArgs) -> anyhow::Result<reqwest::Url> {
    let body = crate::logs::query(args)?;
    let params: Vec<(String, String)> = body
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "page_size")
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    Ok(reqwest::Url::parse_with_params(
        &format!("{base}/api/v1/logs/stream"),
        params,
    )?)
}

/// Follows the stream until Ctrl-C.
pub async fn run(urls: &Urls, args: &LogsArgs, palette: Palette) -> anyhow::Result<()> {
    let service = urls.log_service();
    let url = stream_url(&service.base, args)?;
    // No overall timeout: the stream is meant to stay open.
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .build()?;
    let follow = follow(&service, &client, url, palette);
    tokio::select! {
        result = follow => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn follow(
    service: &Service,
    client: &reqwest::Client,
    url: reqwest::Url,
    palette: Palette,
) -> anyhow::Result<()> {
    let mut last_id: Option<String> = None;
    let mut connected_once = false;
    loop {
        let mut request = service.authorize(client.get(url.clone()));
        if let Some(id) = &last_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = match request.send().await {
            Ok(response) => response,
            // Never reached at all: say so at once, as every other command does.
            Err(err) if !connected_once => return Err(service.transport_error(&err)),
            Err(_) => {
                tokio::time::sleep(RECONNECT_DELAY).await;
                continue;
            }
        };
        if !response.status().is_success() {
            let status = response.status();
            let json = response.json().await.unwrap_or(Value::Null);
            let answer = crate::client::Answer { status, json };
            return Err(service.status_error("/api/v1/logs/stream", &answer));
        }
        connected_once = true;
        let mut response = response;
        let mut parser = SseParser::default();
        while let Ok(Some(chunk)) = response.chunk().await {
            for event in parser.push(&chunk) {
                match event.event.as_str() {
                    "log" => {
                        if let Ok(log) = serde_json::from_str::<Value>(&event.data) {
                            println!("{}", crate::logs::line(&log, palette));
                        }
                        last_id = event.id.or(last_id);
                    }
                    "lagged" => {
                        let data: Value = serde_json::from_str(&event.data).unwrap_or_default();
                        eprintln!(
                            "{}",
                            palette.dim(&format!(
                                "({} lines skipped: this terminal fell behind)",
                                data["skipped"]
                            ))
                        );
                    }
                    _ => {}
                }
            }
        }
        // The stream ended (log-service stopped or restarted): resume from the last line.
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_across_chunks_and_line_ends() {
        let mut parser = SseParser::default();
        assert!(
            parser
                .push(b": keep-alive\n\nevent: log\nid: 7\r")
                .is_empty()
        );
        let events =
            parser.push(b"\ndata: {\"a\":1}\r\n\r\nevent: lagged\rdata:{\"skipped\": 3}\r\r");
        assert_eq!(
            events,
            [SseEvent {
                event: "log".into(),
                id: Some("7".into()),
                data: "{\"a\":1}".into()
            }]
        );
        // A CR last in a chunk may start a CRLF: the event is dispatched by the next byte.
        assert_eq!(
            parser.push(b"\n"),
            [SseEvent {
                event: "lagged".into(),
                id: None,
                data: "{\"skipped\": 3}".into()
            }]
        );
        let events = parser.push(b"data: one\ndata: two\n\n");
        assert_eq!(events[0].data, "one\ntwo");
    }

    #[test]
    fn the_flags_become_the_stream_parameters() {
        let args = LogsArgs {
            service: Some("order-gateway".into()),
            level: Some("warn".into()),
            since: None,
            trace: None,
            search: Some("payment declined".into()),
            limit: 100,
            json: false,
            follow: true,
        };
        let url = stream_url("http://127.0.0.1:5002", &args).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:5002/api/v1/logs/stream?min_level=WARN&search=payment+declined&service_name=order-gateway"
        );
    }
}
