//! The API keys file (`API_KEYS_FILE`): a JSON list of keys, each stored only as the SHA-256 of
//! the key, with the tenant it acts for and its role.

use std::collections::HashSet;
use std::path::Path;

use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The query routes, the live tail and the gRPC query service.
    Read,
    /// The ingest routes and receivers; nothing else.
    Write,
    /// Everything, for any tenant: retention and alert rules too.
    Admin,
}

impl Role {
    /// The role's name in the keys file and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    /// Whether a key of this role may do what needs `need`.
    pub fn allows(self, need: Role) -> bool {
        self == Role::Admin || self == need
    }

    fn parse(text: &str) -> Option<Role> {
        match text {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// One configured key, without the key itself.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key's name, for logs and messages.
    pub name: String,
    /// The tenant the key acts for when a request names none.
    pub tenant: String,
    /// What the key may do.
    pub role: Role,
    digest: [u8; 32],
}

/// The digest stays out of debug output (a config printed at start, say): it is all an
/// attacker would need to try keys offline.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("tenant", &self.tenant)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Every configured key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeys(Vec<ApiKey>);

/// One entry of the file as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    tenant: String,
    role: String,
    sha256: String,
}

impl ApiKeys {
    /// Reads and checks the keys file at `path`; the error says what is wrong, in one line.
    pub fn load(path: &Path) -> Result<ApiKeys, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot be read: {e}"))?;
        ApiKeys::parse(&text)
    }

    /// Parses and checks the text of a keys file.
    pub fn parse(text: &str) -> Result<ApiKeys, String> {
        let entries: Vec<Entry> = serde_json::from_str(text).map_err(|e| {
            format!("is not a JSON list of {{name, tenant, role, sha256}} objects: {e}")
        })?;
        if entries.is_empty() {
            return Err("lists no keys".to_owned());
        }
        let mut names = HashSet::new();
        let mut keys = Vec::with_capacity(entries.len());
        for entry in entries {
            let name = entry.name.trim().to_owned();
            if name.is_empty() {
                return Err("a key has an empty name".to_owned());
            }
            if !names.insert(name.clone()) {
                return Err(format!("key name {name:?} appears twice"));
            }
            let role = Role::parse(&entry.role).ok_or_else(|| {
                format!(
                    "key {name:?}: unknown role {:?}; expected read, write or admin",
                    entry.role
                )
            })?;
            let tenant = crate::auth::named_tenant(Some(entry.tenant.as_bytes()))
                .ok()
                .flatten()
                .ok_or_else(|| {
                    format!("key {name:?}: tenant must be 1 to 128 printable characters")
                })?;
            let digest = parse_digest(&entry.sha256).ok_or_else(|| {
                format!("key {name:?}: sha256 must be 64 hex digits (the SHA-256 of the key)")
            })?;
            keys.push(ApiKey {
                name,
                tenant,
                role,
                digest,
            });
        }
        Ok(ApiKeys(keys))
    }

    /// The key whose hash is the hash of `presented`. Every entry is compared, each in constant
    /// time, so the answer's timing tells nothing about which digest bytes matched.
    pub fn find(&self, presented: &[u8]) -> Option<&ApiKey> {
        let digest = sha256(presented);
        let mut found = None;
        for key in &self.0 {
            if equal(&key.digest, &digest) {
                found = Some(key);
            }
        }
        found
    }
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(bytes));
    out
}

/// Compares two digests without stopping at the first difference.
fn equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.trim().as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn file(entries: &[(&str, &str, &str, &str)]) -> String {
        let list: Vec<_> = entries
            .iter()
            .map(|(name, tenant, role, sha)| {
                serde_json::json!({"name": name, "tenant": tenant, "role": role, "sha256": sha})
            })
            .collect();
        serde_json::Value::Array(list).to_string()
    }

    #[test]
    fn finds_a_key_by_its_hash_only() {
        let sha = hex(&sha256(b"k-write"));
        let keys = ApiKeys::parse(&file(&[
            ("ci-writer", "acme", "write", &sha),
            (
                "ops",
                "ops",
                "admin",
                &hex(&sha256(b"k-admin")).to_uppercase(),
            ),
        ]))
        .unwrap();
        let key = keys.find(b"k-write").expect("the writer's key");
        assert_eq!(
            (key.name.as_str(), key.tenant.as_str()),
            ("ci-writer", "acme")
        );
        assert_eq!(key.role, Role::Write);
        assert_eq!(keys.find(b"k-admin").unwrap().role, Role::Admin);
        assert!(keys.find(b"k-writ").is_none());
        // The digest itself is not a key, and debug output does not show it.
        assert!(keys.find(sha.as_bytes()).is_none());
        assert!(!format!("{keys:?}").contains(&sha), "{keys:?}");
    }

    #[test]
    fn bad_files_are_refused_with_the_problem() {
        let sha = hex(&sha256(b"k"));
        let cases = [
            ("not json".to_owned(), "not a JSON list"),
            ("{}".to_owned(), "not a JSON list"),
            ("[]".to_owned(), "lists no keys"),
            (
                r#"[{"name":"a","tenant":"t","role":"read","sha256":"00","extra":1}]"#.to_owned(),
                "unknown field",
            ),
            (file(&[("a", "t", "owner", &sha)]), "unknown role \"owner\""),
            (file(&[("a", "t", "read", "abc")]), "64 hex digits"),
            (
                file(&[("a", "t", "read", &"zz".repeat(32))]),
                "64 hex digits",
            ),
            (
                file(&[("a", "t", "read", &sha), ("a", "u", "write", &sha)]),
                "\"a\" appears twice",
            ),
            (file(&[("a", " ", "read", &sha)]), "tenant must be"),
            (file(&[("", "t", "read", &sha)]), "empty name"),
        ];
        for (text, expected) in cases {
            let err = ApiKeys::parse(&text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn roles_allow_their_own_work_and_admin_allows_all() {
        assert!(Role::Read.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Write));
        assert!(!Role::Write.allows(Role::Read));
        assert!(!Role::Write.allows(Role::Admin));
        for need in [Role::Read, Role::Write, Role::Admin] {
            assert!(Role::Admin.allows(need));
        }
    }
}
