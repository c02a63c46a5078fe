-- Vigil store, PostgreSQL, version 1: alerts, incidents, timeline, actions, evidence.
-- Each table keeps the columns queries filter on plus `doc`, the JSON of the model value.
-- Times are nanoseconds since the Unix epoch (UTC).
CREATE TABLE alerts (
    -- The 64-bit fingerprint as a signed integer (same bits).
    fingerprint BIGINT PRIMARY KEY NOT NULL,
    incident_id BIGINT,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT,
    updated_at BIGINT NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX alerts_by_updated ON alerts (updated_at DESC, fingerprint);
CREATE INDEX alerts_by_incident ON alerts (incident_id) WHERE incident_id IS NOT NULL;

CREATE TABLE incidents (
    id BIGSERIAL PRIMARY KEY,
    status TEXT NOT NULL,
    severity INTEGER NOT NULL,
    drill BOOLEAN NOT NULL,
    detected_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX incidents_by_detected ON incidents (detected_at DESC, id DESC);
CREATE INDEX incidents_by_status ON incidents (status);

CREATE TABLE timeline (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX timeline_by_incident ON timeline (incident_id, at, id);

CREATE TABLE actions (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT,
    status TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX actions_by_incident ON actions (incident_id, requested_at, id);

CREATE TABLE evidence (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL,
    collected_at BIGINT NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX evidence_by_incident ON evidence (incident_id, collected_at, id);
