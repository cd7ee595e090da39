//! `ALERT_RULES_FILE`: rules shipped with a deployment, read at start before storage opens (a
//! bad file stops the start with one line naming the entry and field) and upserted by name, so
//! a restart updates them instead of adding copies.
//!
//! The file is a JSON array of rule bodies, as `POST /api/v1/alerts` takes them, or an object
//! with such an array under `rules`; an entry may name its `tenant` (default `default`).

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

use super::rule::RuleSpec;
use crate::model::DEFAULT_TENANT;

/// One rule of the file and the tenant it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRule {
    /// The entry's `tenant`, `default` when absent.
    pub tenant: String,
    /// The rule itself.
    pub spec: RuleSpec,
}

/// Reads and validates the rules file at `path`.
pub fn read_rules_file(path: &Path) -> anyhow::Result<Vec<FileRule>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read ALERT_RULES_FILE {}", path.display()))?;
    parse_rules(&text).with_context(|| format!("invalid ALERT_RULES_FILE {}", path.display()))
}

fn parse_rules(text: &str) -> anyhow::Result<Vec<FileRule>> {
    let value: Value = serde_json::from_str(text).context("not JSON")?;
    let entries = match value {
        Value::Array(entries) => entries,
        Value::Object(mut obj) => match obj.remove("rules") {
            Some(Value::Array(entries)) if obj.is_empty() => entries,
            _ => bail!("expected an array of rules, or {{\"rules\": [...]}}"),
        },
        _ => bail!("expected an array of rules, or {{\"rules\": [...]}}"),
    };
    let mut seen = HashSet::new();
    let mut rules = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let Value::Object(obj) = entry else {
            bail!("rule {index}: must be a JSON object");
        };
        let tenant = match obj.get("tenant") {
            None | Some(Value::Null) => DEFAULT_TENANT.to_owned(),
            Some(Value::String(s)) => crate::auth::named_tenant(Some(s.as_bytes()))
                .map_err(|e| anyhow::anyhow!("rule {index}: tenant: {e}"))?
                .unwrap_or_else(|| DEFAULT_TENANT.to_owned()),
            Some(_) => bail!("rule {index}: tenant: must be a string"),
        };
        let spec =
            RuleSpec::parse(obj, &["tenant"]).map_err(|e| anyhow::anyhow!("rule {index}: {e}"))?;
        if !seen.insert((tenant.clone(), spec.name.clone())) {
            bail!(
                "rule {index}: name: {:?} appears twice for tenant {tenant}",
                spec.name
            );
        }
        rules.push(FileRule { tenant, spec });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_default_to_the_default_tenant_or_name_theirs() {
        let rules = parse_rules(
            r#"{"rules": [
                {"name": "a", "threshold": 1, "window_seconds": 60},
                {"name": "a", "tenant": "acme", "threshold": 2, "window_seconds": 60}
            ]}"#,
        )
        .unwrap();
        assert_eq!(rules[0].tenant, "default");
        assert_eq!(rules[1].tenant, "acme");
        assert_eq!(rules[1].spec.threshold, 2);
    }

    #[test]
    fn errors_name_the_entry_and_the_field() {
        let err = parse_rules(r#"[{"name": "a", "threshold": 0, "window_seconds": 60}]"#)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "rule 0: threshold: must be at least 1");
        let err = parse_rules(
            r#"[{"name": "a", "threshold": 1, "window_seconds": 60},
                {"name": "a", "threshold": 3, "window_seconds": 60}]"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("rule 1: name:"), "{err}");
        assert!(parse_rules("{\"rule\": []}").is_err());
    }

    #[test]
    fn the_shipped_rules_file_is_valid() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../observability/log-alert-rules.json"
        );
        let rules = read_rules_file(Path::new(path)).unwrap();
        assert!(rules.len() >= 3, "{rules:?}");
        assert!(rules.iter().all(|r| r.tenant == "default"));
    }
}
