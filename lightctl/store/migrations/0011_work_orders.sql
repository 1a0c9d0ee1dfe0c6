-- Work orders: the digital city management loop (立案 filing, 派遣 dispatch, 处置 handling,
-- 反馈 feedback, 核查 verification, 结案 closure), each step with its time, person and note.
-- What the on-time rates need is kept per order: the deadline given at filing (due_at, and how it
-- was counted), a deferral with its reason and new deadline, when it was handled and closed,
-- and where (district, site, lighting kind). Times are UTC epoch milliseconds.

CREATE TABLE work_orders (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    reference TEXT,
    title TEXT NOT NULL,
    description TEXT,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    district_id TEXT,
    site_id TEXT,
    controller_id TEXT,
    channel_id TEXT,
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    lighting TEXT,
    crew_id TEXT,
    filed_at BIGINT NOT NULL,
    filed_by TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    due_basis TEXT NOT NULL,
    due_estimated BOOLEAN NOT NULL,
    dispatched_at BIGINT,
    handling_at BIGINT,
    handled_at BIGINT,
    verified_at BIGINT,
    closed_at BIGINT,
    closed_by TEXT,
    close_reason TEXT,
    closed_with_active_fault BOOLEAN NOT NULL,
    deferred_at BIGINT,
    deferred_by TEXT,
    defer_reason TEXT,
    deferred_until BIGINT,
    overdue_notified_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX work_orders_filed ON work_orders (filed_at);
CREATE INDEX work_orders_open ON work_orders (state, due_at);

CREATE TABLE work_order_faults (
    work_order_id BIGINT NOT NULL,
    fault_id BIGINT NOT NULL,
    PRIMARY KEY (work_order_id, fault_id)
) WITHOUT ROWID;
CREATE INDEX work_order_faults_fault ON work_order_faults (fault_id);

CREATE TABLE work_order_steps (
    id INTEGER PRIMARY KEY,
    work_order_id BIGINT NOT NULL,
    step TEXT NOT NULL,
    at BIGINT NOT NULL,
    person TEXT NOT NULL,
    crew_id TEXT,
    note TEXT,
    photo TEXT
);
CREATE INDEX work_order_steps_order ON work_order_steps (work_order_id, at);

-- Photos given with feedback, by the SHA-256 of their bytes (the bytes are files beside the
-- database, under photos/, named by the hash).
CREATE TABLE photos (
    sha256 TEXT NOT NULL PRIMARY KEY,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    stored_at BIGINT NOT NULL,
    stored_by TEXT NOT NULL
);
