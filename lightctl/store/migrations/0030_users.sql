-- Users with their role (and a maintenance user's crew), server-side sessions, and API tokens.
-- Secrets are never stored: a password as its Argon2id hash (parameters included), a session's
-- cookie and a token as the SHA-256 of their random value. Times are UTC epoch milliseconds.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    crew TEXT,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    password_changed_at BIGINT NOT NULL,
    last_login_at BIGINT,
    disabled_at BIGINT,
    disabled_by TEXT
);

-- A session lasts until it is ended (sign-out, revocation, its user's password changed or the
-- user disabled) or until it times out: idle (last_seen_at) or absolute (created_at).
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    address TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ended_at BIGINT,
    ended_why TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, ended_at);

-- An API token acts for its user with at most the permissions of its role (its scope).
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT,
    revoked_by TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
