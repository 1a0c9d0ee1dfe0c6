-- Every state-changing request, accepted or refused (refused sign-ins among them), and every
-- change the CLI makes on the records directly. Append-only: no route and no repository method
-- changes or deletes a row.

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    user_name TEXT,
    role TEXT,
    via TEXT NOT NULL,
    address TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    detail TEXT,
    status INTEGER NOT NULL,
    result TEXT NOT NULL,
    error TEXT
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_user ON audit (user_name, at);
