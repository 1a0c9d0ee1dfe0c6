-- The records of lightctl: commands with every controller's result, observations (state changes,
-- meter readings, link events), operator layers (overrides, curtailments and what they shed) and
-- light-show runs with every cue's result.
--
-- Written in what SQLite and PostgreSQL share; the runner (lightctl/store/migrate.py) translates
-- the two SQLite phrases used here: "INTEGER PRIMARY KEY" (a key the row gets by itself) and
-- "WITHOUT ROWID". Times are UTC epoch milliseconds (BIGINT); durations are seconds.

CREATE TABLE commands (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    scene TEXT,
    target TEXT,
    status TEXT NOT NULL,
    finished_at BIGINT,
    elapsed_s DOUBLE PRECISION,
    confirmed INTEGER,
    unconfirmed INTEGER,
    failed INTEGER,
    detail TEXT
);
CREATE INDEX commands_at ON commands (at);

CREATE TABLE command_results (
    command_id BIGINT NOT NULL REFERENCES commands (id),
    controller_id TEXT NOT NULL,
    status TEXT NOT NULL,
    error_kind TEXT,
    error TEXT,
    operations INTEGER,
    channels INTEGER,
    elapsed_s DOUBLE PRECISION,
    PRIMARY KEY (command_id, controller_id)
);

CREATE TABLE state_changes (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    controller_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    is_on BOOLEAN,
    level DOUBLE PRECISION,
    power_w DOUBLE PRECISION,
    faults TEXT
);
CREATE INDEX state_changes_channel ON state_changes (controller_id, channel_id, at);

-- One row per reading of a controller. The electrical figures cabinets report go in their own
-- columns (lightctl/store/observations.py, READING_COLUMNS, names the measurement of each); any
-- other figure a driver gives (per-channel outputs, DALI gear counts, ...) in reading_values.
CREATE TABLE readings (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    controller_id TEXT NOT NULL,
    power_w DOUBLE PRECISION,
    energy_kwh DOUBLE PRECISION,
    faults TEXT,
    voltage_v DOUBLE PRECISION,
    voltage_l1_v DOUBLE PRECISION,
    voltage_l2_v DOUBLE PRECISION,
    voltage_l3_v DOUBLE PRECISION,
    current_l1_a DOUBLE PRECISION,
    current_l2_a DOUBLE PRECISION,
    current_l3_a DOUBLE PRECISION,
    leakage_ma DOUBLE PRECISION
);
CREATE INDEX readings_controller ON readings (controller_id, at);

CREATE TABLE reading_values (
    reading_id BIGINT NOT NULL REFERENCES readings (id),
    name TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (reading_id, name)
) WITHOUT ROWID;

CREATE TABLE link_events (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    controller_id TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT
);
CREATE INDEX link_events_controller ON link_events (controller_id, at);

-- An operator's layer: a scene held on a selector (kind 'override'), or a curtailment capping
-- the level of a selector's channels (kind 'curtail', with its cap in percent).
CREATE TABLE overrides (
    id INTEGER PRIMARY KEY,
    created_at BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    scene TEXT NOT NULL,
    target TEXT NOT NULL,
    until BIGINT,
    cap DOUBLE PRECISION,
    cleared_at BIGINT,
    cleared_by TEXT
);

CREATE TABLE curtail_shed (
    override_id BIGINT NOT NULL REFERENCES overrides (id),
    controller_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    luminaires INTEGER NOT NULL,
    level_before DOUBLE PRECISION NOT NULL,
    level_after DOUBLE PRECISION NOT NULL,
    shed_w DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (override_id, controller_id, channel_id)
);

CREATE TABLE show_runs (
    id INTEGER PRIMARY KEY,
    show_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    status TEXT NOT NULL,
    loops_done INTEGER,
    detail TEXT
);

CREATE TABLE show_cue_results (
    run_id BIGINT NOT NULL REFERENCES show_runs (id),
    loop INTEGER NOT NULL,
    cue INTEGER NOT NULL,
    controller_id TEXT NOT NULL,
    status TEXT NOT NULL,
    sent_offset_ms DOUBLE PRECISION,
    error TEXT,
    PRIMARY KEY (run_id, loop, cue, controller_id)
);
