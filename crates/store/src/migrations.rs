//! Versioned schema migrations, embedded in the binary and applied in order at open.
//!
//! Each backend keeps a `schema_migrations (version, name, applied_at)` table. Opening a store
//! applies every migration whose version is not recorded yet, each in its own transaction
//! together with its `schema_migrations` row, so a crash half-way leaves a consistent schema and
//! opening again is idempotent. A database whose recorded version is newer than this binary knows
//! is refused rather than silently misread.

/// One migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version, starting at 1, strictly increasing.
    pub version: i64,
    /// Short name.
    pub name: &'static str,
    /// SQL to run (several statements).
    pub sql: &'static str,
}

/// SQLite migrations, in order.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "alert_log",
        sql: include_str!("../migrations/sqlite/0002_alert_log.sql"),
    },
];

/// PostgreSQL migrations, in order.
pub const POSTGRES: &[Migration] = &[Migration {
    version: 1,
    name: "init",
    sql: include_str!("../migrations/postgres/0001_init.sql"),
}];

/// The newest schema version this binary knows for the given list.
pub(crate) fn latest(list: &[Migration]) -> i64 {
    list.iter().map(|m| m.version).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_strictly_increase() {
        for list in [SQLITE, POSTGRES] {
            for w in list.windows(2) {
                assert!(
                    w[0].version < w[1].version,
                    "{} then {}",
                    w[0].version,
                    w[1].version
                );
            }
            assert_eq!(list.first().map(|m| m.version), Some(1));
        }
        // Both backends share the first (logical) schema; later ones may be backend-specific
        // storage changes, such as SQLite's alert log.
        assert_eq!(SQLITE[0].name, POSTGRES[0].name);
    }
}
