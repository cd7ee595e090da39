//! HTTP calls to one service, turning every failure into a sentence that names the service, its
//! address and what to do.

use std::time::Duration;

use anyhow::anyhow;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::terminal::safe;

/// One service the command talks to.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its name in messages (`order-gateway`).
    pub name: &'static str,
    /// Base URL without a trailing slash.
    pub base: String,
    client: reqwest::Client,
    token: Option<String>,
}

/// A JSON answer with its status.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The body as JSON (`Null` when empty or not JSON).
    pub json: Value,
}

impl Service {
    /// Builds a client for `name` at `base` with a 10 s timeout per request.
    pub fn new(name: &'static str, base: &str) -> Service {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .unwrap_or_default();
        Service {
            name,
            base: base.to_owned(),
            client,
            token: None,
        }
    }

    /// Sends a bearer token with every request.
    pub fn with_token(mut self, token: Option<String>) -> Service {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// Adds the bearer token, when there is one, to a request built elsewhere (the live tail's).
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request and returns status and JSON body, whatever the status.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method, &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self
            .authorize(request)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, json })
    }

    /// Like [`Service::call`] but a non-2xx status is an error quoting the service's message.
    pub async fn call_ok(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let answer = self.call(method, path, body).await?;
        if answer.status.is_success() {
            Ok(answer.json)
        } else {
            Err(self.status_error(path, &answer))
        }
    }

    /// What to do when this service cannot be reached.
    fn hint(&self) -> &'static str {
        match self.name {
            "log-service" => {
                "start it with `tracehop up`, or point --log-service / TRACEHOP_LOG_SERVICE_URL at it"
            }
            "order-gateway" => {
                "start the services with `tracehop up`, or point --gateway / TRACEHOP_GATEWAY_URL at it"
            }
            "payment-service" => {
                "start the services with `tracehop up`, or point --payment / TRACEHOP_PAYMENT_URL at it"
            }
            _ => {
                "start the services with `tracehop up`, or point --email / TRACEHOP_EMAIL_URL at it"
            }
        }
    }

    /// Describes a failure to reach the service.
    pub fn transport_error(&self, err: &reqwest::Error) -> anyhow::Error {
        let what = if err.is_timeout() {
            "did not answer in time".to_owned()
        } else if err.is_connect() {
            format!("is not reachable ({})", root_cause(err))
        } else {
            format!("failed ({})", root_cause(err))
        };
        anyhow!("{} at {} {what}; {}", self.name, self.base, self.hint())
    }

    /// Describes a non-2xx answer, quoting the `{"error": {"code", "message"}}` shape when present.
    pub fn status_error(&self, path: &str, answer: &Answer) -> anyhow::Error {
        let detail = error_text(&answer.json);
        let advice = match answer.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if self.name == "log-service" => {
                "; pass a log-service API key with --api-key or TRACEHOP_API_KEY"
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                "; pass the admin token with --token or ADMIN_TOKEN"
            }
            StatusCode::NOT_FOUND if self.name != "log-service" => {
                "; is that address really this service?"
            }
            _ => "",
        };
        anyhow!(
            "{} at {} answered {} to {path}{}{advice}",
            self.name,
            self.base,
            answer.status.as_u16(),
            detail.map(|d| format!(": {d}")).unwrap_or_default()
        )
    }
}

/// `code: message` of the services' error shape, or the `error`/`message` text of other shapes,
/// escaped for the terminal: it is quoted in what tracehop prints.
pub fn error_text(json: &Value) -> Option<String> {
    quoted_error(json).map(|text| safe(&text).into_owned())
}

fn quoted_error(json: &Value) -> Option<String> {
    let error = json.get("error")?;
    match error {
        Value::String(s) => Some(s.clone()),
        Value::Object(obj) => {
            let message = obj.get("message").and_then(Value::as_str).unwrap_or("");
            match obj.get("code").and_then(Value::as_str) {
                Some(code) if !message.is_empty() => Some(format!("{code}: {message}")),
                Some(code) => Some(code.to_owned()),
                None if !message.is_empty() => Some(message.to_owned()),
                None => None,
            }
        }
        _ => None,
    }
}

/// The innermost cause, which says what actually happened (`Connection refused (os error 111)`).
fn root_cause(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shapes_are_quoted() {
        let body = serde_json::json!({"error": {"code": "invalid_faults", "message": "failure_rate: must be between 0 and 1"}});
        assert_eq!(
            error_text(&body).unwrap(),
            "invalid_faults: failure_rate: must be between 0 and 1"
        );
        assert_eq!(
            error_text(&serde_json::json!({"error": "not found"})).unwrap(),
            "not found"
        );
        assert_eq!(error_text(&Value::Null), None);
    }

    #[test]
    fn quoted_errors_are_escaped() {
        let body = serde_json::json!({"error": {"code": "bad\u{1b}[2J", "message": "a\u{0}b\u{1b}[31mred"}});
        assert_eq!(
            error_text(&body).unwrap(),
            "bad\\u{1b}[2J: a\\u{0}b\\u{1b}[31mred"
        );
    }

    #[tokio::test]
    async fn an_unreachable_service_is_named_with_its_address_and_a_hint() {
        // Port 9 on loopback (discard) has no listener on a test machine.
        let service = Service::new("order-gateway", "http://127.0.0.1:9");
        let err = service
            .call(Method::GET, "/health", None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("order-gateway at http://127.0.0.1:9 is not reachable"),
            "{err}"
        );
        assert!(err.contains("tracehop up"), "{err}");
        assert!(!err.contains('\n'));
    }
}
