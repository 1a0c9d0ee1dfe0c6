-- Each opening of the store, and whether it was closed: an opening never closed means the daemon
-- stopped uncleanly, and the next start checks the database's integrity first.
CREATE TABLE store_runs (
    id INTEGER PRIMARY KEY,
    opened_at BIGINT NOT NULL,
    closed_at BIGINT,
    integrity_checked BOOLEAN NOT NULL
);
