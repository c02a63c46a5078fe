//! Vigil's durable store: [`model::Store`] for SQLite (the default) and PostgreSQL.
//!
//! Pick the backend with a URL and [`open`]:
//!
//! | URL | backend |
//! |---|---|
//! | `sqlite:///abs/path.db` | SQLite file at `/abs/path.db` |
//! | `sqlite://relative/path.db`, `sqlite:relative/path.db` | SQLite file relative to the working directory |
//! | `/abs/path.db`, `relative/path.db` (no scheme) | SQLite file |
//! | `postgres://user:pw@host:port/db`, `postgresql://…` | PostgreSQL (no TLS; loopback or private network) |
//!
//! **Durability.** Every method that returns `Ok` has committed what it wrote, and a `kill -9`
//! right after an `Ok` loses nothing. SQLite runs in WAL mode; by default ([`SqliteSync::Tiered`])
//! every commit that changes incidents, actions or evidence fsyncs the WAL before it returns, and
//! alert intake alone is fsynced within [`SqliteSync::INTAKE_SYNC_WITHIN`] (or when the writer
//! goes idle), so power loss can cost at most the last moments of alert intake. PostgreSQL commits
//! with its default `synchronous_commit=on`.
//!
//! **Throughput.** SQLite writes go to one writer thread that does group commit: all writes queued
//! while the previous commit was syncing share the next transaction and its single fsync, each in
//! its own savepoint so one failing write does not affect the others. Concurrent single-alert
//! upserts therefore cost a fraction of an fsync each. Reads use a pool of read-only connections.
//!
//! **Schema.** Each table holds the columns queries filter on (fingerprint, incident id, status,
//! severity, times in nanoseconds since the epoch) plus `doc`, the JSON of the model value, so the
//! model can grow without a migration. Migrations are versioned, embedded and applied in order at
//! open (see [`migrations`]).

/// How a stored alert row takes a new state of its alert (both backends, same SQL): everything
/// from the new state, except that an incident id stays when the new state has none.
macro_rules! alert_upsert_conflict {
    () => {
        "ON CONFLICT (fingerprint) DO UPDATE SET
             incident_id = COALESCE(excluded.incident_id, alerts.incident_id),
             starts_at = excluded.starts_at,
             ends_at = excluded.ends_at,
             updated_at = excluded.updated_at,
             doc = excluded.doc"
    };
}
pub(crate) use alert_upsert_conflict;

mod codec;
pub mod migrations;
mod postgres;
mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use model::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a SQLite commit is made durable (`?synchronous=` in a SQLite store URL).
///
/// Every mode survives `kill -9` of Vigil: a commit has written its WAL frames to the kernel
/// before the write is acknowledged. The modes differ in when the WAL is fsynced, which is what
/// survives the machine losing power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// `synchronous=tiered` (default): a commit that changes incidents, actions, evidence or any
    /// other state fsyncs the WAL before it is acknowledged. A commit of alert intake alone
    /// (appends to the alert log, which Prometheus and Falco re-send anyway) is acknowledged once
    /// written, and the writer fsyncs the WAL with the first commit after
    /// [`SqliteSync::INTAKE_SYNC_WITHIN`] and when it goes idle, so power loss can take at most
    /// the last ~250 ms of alert intake and nothing else.
    #[default]
    Tiered,
    /// `synchronous=FULL`: the WAL is fsynced at every commit; every acknowledged write survives
    /// a crash of the process and of the machine (power loss).
    Full,
    /// `synchronous=NORMAL`: the WAL is fsynced at checkpoints only; an acknowledged write
    /// survives `kill -9` of Vigil (the kernel holds it), but the last commits can be lost if the
    /// machine itself loses power.
    Normal,
}

impl SqliteSync {
    /// In `tiered` mode, the longest a busy writer goes between WAL fsyncs while it commits
    /// alert intake alone.
    pub const INTAKE_SYNC_WITHIN: std::time::Duration = std::time::Duration::from_millis(100);

    /// Whether a commit must fsync the WAL, given whether it carries anything but alert intake
    /// (`state`) and how long ago the WAL was last fsynced.
    pub fn fsync_commit(self, state: bool, since_last_fsync: std::time::Duration) -> bool {
        match self {
            SqliteSync::Full => true,
            SqliteSync::Normal => false,
            SqliteSync::Tiered => state || since_last_fsync >= Self::INTAKE_SYNC_WITHIN,
        }
    }

    /// Reads `synchronous=tiered|full|normal` from a SQLite URL's query string (default tiered).
    pub fn from_url(url: &str) -> Result<SqliteSync, StoreError> {
        let Some((_, query)) = url.split_once('?') else {
            return Ok(SqliteSync::default());
        };
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k == "synchronous" {
                return match v.to_ascii_lowercase().as_str() {
                    "tiered" => Ok(SqliteSync::Tiered),
                    "full" => Ok(SqliteSync::Full),
                    "normal" => Ok(SqliteSync::Normal),
                    _ => Err(StoreError::Config(format!(
                        "store URL {url:?}: synchronous={v:?}: expected tiered, full or normal"
                    ))),
                };
            }
        }
        Ok(SqliteSync::default())
    }
}

/// Where a store lives, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl StoreLocation {
    /// Parses a store URL (see the crate documentation for the accepted forms).
    pub fn parse(url: &str) -> Result<StoreLocation, StoreError> {
        let u = url.trim();
        if u.is_empty() {
            return Err(StoreError::Config("store URL is empty".into()));
        }
        if u.starts_with("postgres://") || u.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres(u.to_string()));
        }
        let path = if let Some(rest) = u.strip_prefix("sqlite://") {
            rest
        } else if let Some(rest) = u.strip_prefix("sqlite:") {
            rest
        } else if let Some((scheme, _)) = u.split_once("://") {
            return Err(StoreError::Config(format!(
                "store URL {url:?}: unknown scheme {scheme:?}: expected sqlite://, postgres:// or a file path"
            )));
        } else {
            u
        };
        // Query parameters: `synchronous=tiered|full|normal` (see [`SqliteSync`]); others
        // (`?mode=rwc`) are ignored, the store sets its own options.
        SqliteSync::from_url(u)?;
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return Err(StoreError::Config(format!(
                "store URL {url:?}: no database file path"
            )));
        }
        Ok(StoreLocation::Sqlite(PathBuf::from(path)))
    }
}

/// Opens the store the URL names, applying pending migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match StoreLocation::parse(url)? {
        StoreLocation::Sqlite(path) => open_sqlite_with(path, SqliteSync::from_url(url)?).await,
        StoreLocation::Postgres(url) => Ok(Arc::new(PgStore::connect(&url).await?)),
    }
}

/// Opens (creating if needed) a SQLite store at `path`, applying pending migrations.
pub async fn open_sqlite(path: impl AsRef<Path>) -> Result<Arc<dyn Store>, StoreError> {
    open_sqlite_with(path, SqliteSync::default()).await
}

/// Opens a SQLite store with the given commit durability.
pub async fn open_sqlite_with(
    path: impl AsRef<Path>,
    sync: SqliteSync,
) -> Result<Arc<dyn Store>, StoreError> {
    let path = path.as_ref().to_path_buf();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open_with(path, sync))
        .await
        .map_err(|e| StoreError::Backend(format!("opening SQLite: {e}")))??;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronous_parameter() {
        assert_eq!(
            SqliteSync::from_url("sqlite://a.db").unwrap(),
            SqliteSync::Tiered
        );
        assert_eq!(
            SqliteSync::from_url("sqlite://a.db?synchronous=full").unwrap(),
            SqliteSync::Full
        );
        assert_eq!(
            SqliteSync::from_url("sqlite://a.db?mode=rwc&synchronous=NORMAL").unwrap(),
            SqliteSync::Normal
        );
        let e = StoreLocation::parse("sqlite://a.db?synchronous=off").unwrap_err();
        assert!(e.to_string().contains("synchronous"), "{e}");
    }

    #[test]
    fn tiered_fsyncs_state_at_once_and_intake_within_its_bound() {
        use std::time::Duration;
        let t = SqliteSync::Tiered;
        assert!(t.fsync_commit(true, Duration::ZERO));
        assert!(!t.fsync_commit(false, Duration::from_millis(5)));
        assert!(t.fsync_commit(false, SqliteSync::INTAKE_SYNC_WITHIN));
        assert!(SqliteSync::Full.fsync_commit(false, Duration::ZERO));
        assert!(!SqliteSync::Normal.fsync_commit(true, Duration::from_secs(60)));
    }

    #[test]
    fn urls_pick_the_backend() {
        let s = |p: &str| StoreLocation::Sqlite(PathBuf::from(p));
        assert_eq!(
            StoreLocation::parse("sqlite:///var/lib/v.db").unwrap(),
            s("/var/lib/v.db")
        );
        assert_eq!(
            StoreLocation::parse("sqlite://data/v.db").unwrap(),
            s("data/v.db")
        );
        assert_eq!(
            StoreLocation::parse("sqlite:data/v.db?mode=rwc").unwrap(),
            s("data/v.db")
        );
        assert_eq!(
            StoreLocation::parse("./vigil-data/vigil.db").unwrap(),
            s("./vigil-data/vigil.db")
        );
        assert_eq!(
            StoreLocation::parse("postgres://u:p@127.0.0.1:5432/vigil").unwrap(),
            StoreLocation::Postgres("postgres://u:p@127.0.0.1:5432/vigil".into())
        );
        assert!(matches!(
            StoreLocation::parse("postgresql://localhost/x").unwrap(),
            StoreLocation::Postgres(_)
        ));
        let e = StoreLocation::parse("mysql://x/y").unwrap_err().to_string();
        assert!(e.contains("mysql"), "{e}");
        assert!(StoreLocation::parse("").is_err());
        assert!(StoreLocation::parse("sqlite://").is_err());
    }
}
