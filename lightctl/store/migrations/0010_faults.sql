-- Faults found by the rules (lightctl/services/faults), every transition of each, and the burning
-- hours of each channel. One open fault per condition (fault_key): a restart finds it here and
-- judges it again, never opening a second. Times are UTC epoch milliseconds.

CREATE TABLE faults (
    id INTEGER PRIMARY KEY,
    fault_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    district_id TEXT NOT NULL,
    site_id TEXT NOT NULL,
    controller_id TEXT,
    channel_id TEXT,
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    lighting TEXT NOT NULL,
    luminaires INTEGER NOT NULL,
    opened_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    occurrences INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    cleared_at BIGINT,
    cleared_how TEXT,
    acked_at BIGINT,
    acked_by TEXT,
    shelved_until BIGINT,
    shelved_by TEXT,
    shelve_reason TEXT,
    parent_id BIGINT,
    chattering BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX faults_one_open ON faults (fault_key) WHERE cleared_at IS NULL;
CREATE INDEX faults_opened ON faults (opened_at);
CREATE INDEX faults_site ON faults (site_id, opened_at);

-- Every transition of a fault (opened, acknowledged, shelved, unshelved, suppressed, annunciated,
-- chattering, cleared), with who and why where a person did it.
CREATE TABLE fault_events (
    id INTEGER PRIMARY KEY,
    fault_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    person TEXT,
    note TEXT
);
CREATE INDEX fault_events_fault ON fault_events (fault_id, at);

-- Burning hours per channel, from the on-time the controllers report; since = when counting
-- began or the lamps were last replaced.
CREATE TABLE channel_hours (
    controller_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    burning_s DOUBLE PRECISION NOT NULL,
    since BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (controller_id, channel_id)
);

CREATE TABLE relampings (
    id INTEGER PRIMARY KEY,
    controller_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    person TEXT NOT NULL,
    hours_before DOUBLE PRECISION NOT NULL,
    note TEXT
);
