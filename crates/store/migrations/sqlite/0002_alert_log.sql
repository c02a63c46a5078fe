-- Vigil store, SQLite, version 2: the alert log.
-- Intake appends each alert state here (rows land on the table's last page, so a commit writes
-- a few pages however many alerts it holds) instead of updating `alerts` in place (one random
-- page per alert and index). The writer folds the log into `alerts`, in order, when it grows,
-- when idle, and before anything reads or changes `alerts`.
CREATE TABLE alert_log (
    seq INTEGER PRIMARY KEY,
    fingerprint INTEGER NOT NULL,
    incident_id INTEGER,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER,
    updated_at INTEGER NOT NULL,
    doc TEXT NOT NULL
);
