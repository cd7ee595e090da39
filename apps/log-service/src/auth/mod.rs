//! Who may do what, for which tenant: the one check every listener's handlers call. Without
//! `API_KEYS_FILE` the tenant is whatever `X-Tenant-ID` (or `x-tenant-id` metadata) names,
//! `default` when absent. With it, every request carries `Authorization: Bearer <key>`; the key
//! decides the tenant (its own unless the request names one, and only an admin key may name
//! another) and what the request may do (its role).

mod keys;

use std::sync::Arc;

pub use keys::{ApiKey, ApiKeys, Role};

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::model::{DEFAULT_TENANT, MAX_SHORT_FIELD};

/// The access check, shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct Access {
    keys: Option<Arc<ApiKeys>>,
    metrics: Metrics,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("keys", &self.keys.is_some())
            .finish()
    }
}

/// The tenants a caller may see listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantScope {
    /// Every tenant.
    All,
    /// Only this one.
    Only(String),
}

impl TenantScope {
    /// `tenants` without those the caller may not see.
    pub fn filter(&self, tenants: Vec<String>) -> Vec<String> {
        match self {
            TenantScope::All => tenants,
            TenantScope::Only(own) => tenants.into_iter().filter(|t| t == own).collect(),
        }
    }
}

/// Why a request was refused: the `reason` label of `log_service_access_refused_total`.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    MissingKey,
    UnknownKey,
    WrongRole,
    OtherTenant,
    AdminToken,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::MissingKey => "missing_key",
            Refusal::UnknownKey => "unknown_key",
            Refusal::WrongRole => "wrong_role",
            Refusal::OtherTenant => "other_tenant",
            Refusal::AdminToken => "admin_token",
        }
    }
}

impl Access {
    /// The check for `keys` (none: no key is asked for), counting refusals in `metrics`.
    pub fn new(keys: Option<ApiKeys>, metrics: Metrics) -> Access {
        Access {
            keys: keys.map(Arc::new),
            metrics,
        }
    }

    /// The tenant a request acts for, given its `Authorization` and `X-Tenant-ID` values, when
    /// it may do what needs `need`: 401 without a known key, 403 for a key of another role or
    /// a tenant the key may not act for.
    pub fn tenant(
        &self,
        authorization: Option<&[u8]>,
        tenant_header: Option<&[u8]>,
        need: Role,
    ) -> Result<String, AppError> {
        let named = named_tenant(tenant_header)?;
        let Some(keys) = &self.keys else {
            return Ok(named.unwrap_or_else(|| DEFAULT_TENANT.to_owned()));
        };
        let key = self.key(keys, authorization, need)?;
        match named {
            None => Ok(key.tenant.clone()),
            Some(tenant) if tenant == key.tenant || key.role == Role::Admin => Ok(tenant),
            Some(tenant) => Err(self.refuse(
                Refusal::OtherTenant,
                Some(key),
                AppError::Forbidden(format!(
                    "key {:?} may not act for tenant {tenant:?}",
                    key.name
                )),
            )),
        }
    }

    /// Which tenants a request with `authorization` may see listed (`GET /api/v1/tenants`):
    /// without API keys every tenant, since any request may name any tenant; with them, every
    /// tenant for an admin key, which may act for any, and only its own for a read key. A key
    /// that may not read is refused as a query would be.
    pub fn visible_tenants(&self, authorization: Option<&[u8]>) -> Result<TenantScope, AppError> {
        let Some(keys) = &self.keys else {
            return Ok(TenantScope::All);
        };
        let key = self.key(keys, authorization, Role::Read)?;
        Ok(match key.role {
            Role::Admin => TenantScope::All,
            _ => TenantScope::Only(key.tenant.clone()),
        })
    }

    /// The admin routes' check: with API keys, an admin key or `admin_token` (`ADMIN_TOKEN`)
    /// as the bearer token; without, `admin_token` when set, nothing otherwise.
    pub fn admin(
        &self,
        headers: &http::HeaderMap,
        admin_token: Option<&str>,
    ) -> Result<(), AppError> {
        let token_ok = || server::error::check_bearer(headers, admin_token).is_ok();
        match &self.keys {
            Some(_) if admin_token.is_some() && token_ok() => Ok(()),
            Some(keys) => self
                .key(keys, authorization(headers), Role::Admin)
                .map(drop),
            None if token_ok() => Ok(()),
            None => Err(self.refuse(
                Refusal::AdminToken,
                None,
                AppError::Unauthorized("a valid bearer token is required (ADMIN_TOKEN)".into()),
            )),
        }
    }

    /// The key presented as `Bearer <key>` in `authorization`, if it may do what needs `need`.
    fn key<'k>(
        &self,
        keys: &'k ApiKeys,
        authorization: Option<&[u8]>,
        need: Role,
    ) -> Result<&'k ApiKey, AppError> {
        let Some(presented) = authorization.and_then(bearer) else {
            return Err(self.refuse(
                Refusal::MissingKey,
                None,
                AppError::Unauthorized(
                    "an API key is required: send Authorization: Bearer <key>".into(),
                ),
            ));
        };
        let Some(key) = keys.find(presented) else {
            return Err(self.refuse(
                Refusal::UnknownKey,
                None,
                AppError::Unauthorized("the API key is not known".into()),
            ));
        };
        if !key.role.allows(need) {
            return Err(self.refuse(
                Refusal::WrongRole,
                Some(key),
                AppError::Forbidden(format!(
                    "key {:?} has role {}; this needs {}",
                    key.name,
                    key.role.as_str(),
                    need.as_str()
                )),
            ));
        }
        Ok(key)
    }

    /// Counts and logs a refusal (the key's name at most, never the key) and returns `error`.
    fn refuse(&self, reason: Refusal, key: Option<&ApiKey>, error: AppError) -> AppError {
        let reason = reason.as_str();
        self.metrics
            .access_refused
            .with_label_values(&[reason])
            .inc();
        tracing::warn!(
            reason,
            key = key.map(|k| k.name.as_str()),
            "request refused"
        );
        error
    }
}

/// The `Authorization` value of an HTTP request.
pub fn authorization(headers: &http::HeaderMap) -> Option<&[u8]> {
    headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes())
}

/// The key of a `Bearer <key>` value; the scheme is case-insensitive (RFC 9110, 11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let key = rest.trim_ascii();
    (!key.is_empty()).then_some(key)
}

/// The tenant an `X-Tenant-ID` header or `x-tenant-id` metadata value names; absent or blank
/// names none.
pub fn named_tenant(raw: Option<&[u8]>) -> Result<Option<String>, AppError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let text = std::str::from_utf8(raw)
        .map_err(|_| AppError::malformed("X-Tenant-ID", "must be UTF-8"))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_SHORT_FIELD || text.chars().any(char::is_control) {
        return Err(AppError::malformed(
            "X-Tenant-ID",
            format!("must be 1..={MAX_SHORT_FIELD} printable characters"),
        ));
    }
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        let entry = |name: &str, tenant: &str, role: &str, key: &[u8]| {
            let sha: String = keys::sha256(key)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            serde_json::json!({"name": name, "tenant": tenant, "role": role, "sha256": sha})
        };
        let file = serde_json::json!([
            entry("reader", "acme", "read", b"r"),
            entry("root", "ops", "admin", b"a"),
        ]);
        let keys = ApiKeys::parse(&file.to_string()).unwrap();
        Access::new(Some(keys), Metrics::new().unwrap())
    }

    #[test]
    fn without_keys_the_header_decides() {
        let open = Access::new(None, Metrics::new().unwrap());
        assert_eq!(open.tenant(None, None, Role::Admin).unwrap(), "default");
        assert_eq!(
            open.tenant(None, Some(b"  acme "), Role::Write).unwrap(),
            "acme"
        );
        assert!(open.tenant(None, Some(b"a\nb"), Role::Read).is_err());
        assert!(open.tenant(None, Some(&[0xff, 0xfe]), Role::Read).is_err());
    }

    #[test]
    fn with_keys_the_key_decides() {
        let access = access();
        let tenant = |auth: &[u8], header: Option<&[u8]>, need| {
            access
                .tenant(Some(auth), header, need)
                .map_err(|e| e.to_string())
        };
        assert_eq!(tenant(b"Bearer r", None, Role::Read).unwrap(), "acme");
        assert_eq!(
            tenant(b"bearer  r ", Some(b"acme"), Role::Read).unwrap(),
            "acme"
        );
        for (auth, header, need, refusal) in [
            (
                &b"Bearer r"[..],
                Some(&b"other"[..]),
                Role::Read,
                "may not act for tenant \"other\"",
            ),
            (
                b"Bearer r",
                None,
                Role::Write,
                "has role read; this needs write",
            ),
            (b"Bearer x", None, Role::Read, "not known"),
            (b"Basic r", None, Role::Read, "required"),
        ] {
            let error = tenant(auth, header, need).unwrap_err();
            assert!(error.contains(refusal), "{error}");
        }
        assert!(access.tenant(None, None, Role::Read).is_err());
        assert_eq!(
            tenant(b"Bearer a", Some(b"any"), Role::Write).unwrap(),
            "any"
        );
        assert_eq!(tenant(b"Bearer a", None, Role::Read).unwrap(), "ops");
    }

    #[test]
    fn a_read_key_sees_only_its_tenant_listed_and_an_admin_key_every_tenant() {
        let stored = || vec!["acme".to_owned(), "ops".to_owned(), "other".to_owned()];
        let access = access();
        let reader = access.visible_tenants(Some(b"Bearer r")).unwrap();
        assert_eq!(reader.filter(stored()), ["acme"]);
        let admin = access.visible_tenants(Some(b"Bearer a")).unwrap();
        assert_eq!(admin.filter(stored()), stored());
        assert!(access.visible_tenants(None).is_err());
        assert!(access.visible_tenants(Some(b"Bearer x")).is_err());
        let open = Access::new(None, Metrics::new().unwrap());
        assert_eq!(open.visible_tenants(None).unwrap(), TenantScope::All);
    }
}
