//! The HTTP requests the tests make of the services, whichever way the services run.

use std::time::Duration;

use serde_json::Value;

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// JSON body (`Null` when not JSON).
    pub json: Value,
}

/// Sends `POST /create-order` to `gateway_url` with `body` as JSON, or with no body (the sample
/// order), and reads the whole answer.
pub async fn create_order(
    client: &reqwest::Client,
    gateway_url: &str,
    body: Option<&str>,
) -> reqwest::Result<Response> {
    let mut request = client.post(format!("{gateway_url}/create-order"));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let json = response.json().await.unwrap_or(Value::Null);
    Ok(Response {
        status,
        headers,
        json,
    })
}

/// Sends `GET url`; a transport failure fails the test, naming the URL.
pub async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    match client.get(url).send().await {
        Ok(response) => response,
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// Returns the `/metrics` text of the service at `base_url`.
pub async fn metrics(client: &reqwest::Client, base_url: &str) -> String {
    let response = get(client, &format!("{base_url}/metrics")).await;
    response.text().await.expect("metrics text")
}

/// Returns the status code of `GET /ready` at `base_url`, 0 when nothing answers within a second
/// (a frozen or dead service).
pub async fn ready_status(client: &reqwest::Client, base_url: &str) -> u16 {
    client
        .get(format!("{base_url}/ready"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}
