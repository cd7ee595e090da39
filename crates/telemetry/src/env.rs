//! Typed reads of environment variables, each error naming its variable, and the shutdown signal.

use std::str::FromStr;

use crate::ConfigError;

/// Reads `name` with `get`, parsing it as `T`; `default` when unset or empty.
pub fn parse<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::new(name, raw, e.to_string())),
    }
}

/// Reads a string variable, `default` when unset or empty.
pub fn string(get: &impl Fn(&str) -> Option<String>, name: &str, default: &str) -> String {
    get(name)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Reads a rate in `0..=1`.
pub fn rate(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: f64,
) -> Result<f64, ConfigError> {
    let value: f64 = parse(get, name, default)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(ConfigError::new(
            name,
            value.to_string(),
            "expected a number between 0 and 1",
        ));
    }
    Ok(value)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_variable() {
        let get = |k: &str| (k == "X").then(|| "abc".to_owned());
        let e = parse::<u64>(&get, "X", 1).unwrap_err();
        assert_eq!(e.variable, "X");
        assert_eq!(parse::<u64>(&get, "Y", 7).unwrap(), 7);
        let get = |_: &str| Some("1.5".to_owned());
        assert!(rate(&get, "R", 0.0).is_err());
    }
}
