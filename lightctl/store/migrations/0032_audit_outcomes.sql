-- The outcome of each request the audit recorded as pending before it was handled: who it turned
-- out to be (known once authenticated) and how it ended. Added, never changed: a request cut short
-- by a crash gets the outcome 'interrupted' at the next start. The audit stays append-only.

CREATE TABLE audit_outcomes (
    audit_id INTEGER NOT NULL PRIMARY KEY REFERENCES audit (id),
    at BIGINT NOT NULL,
    user_name TEXT,
    role TEXT,
    via TEXT NOT NULL,
    status INTEGER NOT NULL,
    result TEXT NOT NULL,
    error TEXT
);
