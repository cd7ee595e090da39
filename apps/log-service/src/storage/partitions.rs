//! What retention needs of a backend: its policies, its day partitions, dropping one, and the
//! database's size. Kept apart from [`super::Backend`], whose reads serve the query routes;
//! each backend implements it in its own `partitions` module.

use serde::Serialize;

use super::Read;
use super::day::Day;

/// A tenant's retention policy as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// A UUID, chosen when the policy is created.
    pub id: String,
    pub tenant_id: String,
    /// Days kept besides today: logs of day `today - retention_days - 1` and older go.
    pub retention_days: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

/// A partition, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPartition {
    pub tenant: String,
    pub day: Day,
}

/// What dropping one partition removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    pub log_rows: i64,
    pub span_rows: i64,
    /// Rows of the error-trace index of the tenant that ended before the day was over.
    pub error_trace_rows: i64,
    /// Bytes the partition occupied.
    pub bytes: i64,
}

/// The database's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    /// Bytes holding data: what the size cap is compared with.
    pub used: i64,
    /// Bytes of the files (SQLite: database and WAL) or of the database (PostgreSQL).
    pub on_disk: i64,
}

/// The refusal of a second policy for `policy`'s tenant, the same from both backends.
pub(super) fn policy_exists(policy: &Policy) -> super::StoreError {
    super::StoreError::Conflict(format!(
        "tenant {:?} already has a retention policy",
        policy.tenant_id
    ))
}

/// Policies and partitions of one backend. Writes here are rare admin and retention work and
/// do not go through the ingest queue.
pub trait Partitions: Send + Sync {
    /// Every policy, by tenant.
    fn policies(&self) -> Read<'_, Vec<Policy>>;

    /// The policy of `tenant`.
    fn tenant_policy<'a>(&'a self, tenant: &'a str) -> Read<'a, Option<Policy>>;

    /// Stores a new policy; [`super::StoreError::Conflict`] when the tenant has one.
    fn create_policy<'a>(&'a self, policy: &'a Policy) -> Read<'a, ()>;

    /// Sets the days of the policy `id`; the updated policy, `None` when there is none.
    fn update_policy<'a>(
        &'a self,
        id: &'a str,
        retention_days: i64,
        updated_at: &'a str,
    ) -> Read<'a, Option<Policy>>;

    /// Removes the policy `id`; false when there is none.
    fn delete_policy<'a>(&'a self, id: &'a str) -> Read<'a, bool>;

    /// Every partition, oldest day first.
    fn partitions(&self) -> Read<'_, Vec<StoredPartition>>;

    /// Drops one partition with everything in it, and the tenant's error-trace index rows that
    /// ended by the end of that day; gives the space back to the file system.
    fn drop_partition<'a>(&'a self, tenant: &'a str, day: Day) -> Read<'a, Dropped>;

    /// The database's size now.
    fn size(&self) -> Read<'_, Size>;
}
