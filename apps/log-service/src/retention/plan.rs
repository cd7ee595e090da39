//! Which partitions a policy has expired: pure, so it is tested without a database.

use std::collections::HashMap;

use crate::storage::StoredPartition;
use crate::storage::day::Day;

/// The partitions older than their tenant's retention: with `days` kept, today and the `days`
/// days before it stay, and everything older goes. Tenants without a policy keep
/// `default_days`. Oldest first.
pub fn expired(
    stored: &[StoredPartition],
    policies: &HashMap<String, i64>,
    default_days: i64,
    today: Day,
) -> Vec<(String, Day)> {
    let mut out: Vec<(String, Day)> = stored
        .iter()
        .filter(|p| {
            let days = policies.get(&p.tenant).copied().unwrap_or(default_days);
            p.day < today.minus(days)
        })
        .map(|p| (p.tenant.clone(), p.day))
        .collect();
    out.sort_by_key(|(tenant, day)| (*day, tenant.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(tenant: &str, day: i64) -> StoredPartition {
        StoredPartition {
            tenant: tenant.into(),
            day: Day(day),
        }
    }

    #[test]
    fn each_tenant_keeps_its_own_days() {
        let today = Day(1000);
        let stored = [
            part("acme", 990),
            part("acme", 992),
            part("acme", 993),
            part("acme", 1000),
            part("other", 990),
            part("other", 969),
        ];
        let policies = HashMap::from([("acme".to_owned(), 7)]);
        let gone = expired(&stored, &policies, 30, today);
        // acme keeps 993..=1000 (today and 7 days); other keeps 970..=1000 by the default.
        assert_eq!(
            gone,
            vec![
                ("other".to_owned(), Day(969)),
                ("acme".to_owned(), Day(990)),
                ("acme".to_owned(), Day(992))
            ]
        );
    }

    #[test]
    fn nothing_expires_within_the_window() {
        let stored = [part("a", 995), part("a", 1000)];
        assert!(expired(&stored, &HashMap::new(), 5, Day(1000)).is_empty());
    }
}
