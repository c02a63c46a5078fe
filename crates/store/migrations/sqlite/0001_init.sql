-- Vigil store, SQLite, version 1: alerts, incidents, timeline, actions, evidence.
-- Each table keeps the columns queries filter on plus `doc`, the JSON of the model value.
-- Times are nanoseconds since the Unix epoch (UTC).
CREATE TABLE alerts (
    -- Rows are appended in insertion order; the fingerprint lives in a small unique index, which
    -- keeps random-fingerprint inserts cheap.
    seq INTEGER PRIMARY KEY,
    -- The 64-bit fingerprint as a signed integer (same bits).
    fingerprint INTEGER NOT NULL UNIQUE,
    incident_id INTEGER,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER,
    updated_at INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX alerts_by_updated ON alerts (updated_at DESC, fingerprint);
CREATE INDEX alerts_by_incident ON alerts (incident_id) WHERE incident_id IS NOT NULL;

CREATE TABLE incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status TEXT NOT NULL,
    severity INTEGER NOT NULL,
    drill INTEGER NOT NULL,
    detected_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX incidents_by_detected ON incidents (detected_at DESC, id DESC);
CREATE INDEX incidents_by_status ON incidents (status);

CREATE TABLE timeline (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX timeline_by_incident ON timeline (incident_id, at, id);

CREATE TABLE actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER,
    status TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX actions_by_incident ON actions (incident_id, requested_at, id);

CREATE TABLE evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL,
    collected_at INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX evidence_by_incident ON evidence (incident_id, collected_at, id);
