-- The notification outbox: each webhook delivery is a row written in the same transaction as the
-- fault or work-order change it tells of, so a restart loses none; every attempt is recorded.

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    state TEXT NOT NULL,
    delivered_at BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE outbox_attempts (
    id INTEGER PRIMARY KEY,
    outbox_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status INTEGER,
    error TEXT,
    elapsed_s DOUBLE PRECISION NOT NULL
);
CREATE INDEX outbox_attempts_row ON outbox_attempts (outbox_id, at);
