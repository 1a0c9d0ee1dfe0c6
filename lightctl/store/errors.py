"""The store's errors: one tree, so that a caller can tell the store's trouble from its own."""

from __future__ import annotations

import sqlite3


class StoreError(RuntimeError):
    """The records cannot be opened or used (closed store, failed integrity check, bad schema)."""


class StoreTooNew(StoreError):
    """The database was migrated by a newer lightctl than this one: refused, never downgraded."""


class DatabaseUnavailable(StoreError):
    """The database server cannot be reached, or dropped the connection (PostgreSQL): the store's
    failure, whatever the job was; the next statement outside a transaction connects again."""


class StoreWriteFailed(StoreError):
    """A write did not land because the store failed, not the job: BEGIN or COMMIT failed (a full
    disk, a locked database, an I/O error), or the job met such a failure in its own statements.
    Every job of the failed batch gets this error; ``cause`` is the database's own exception."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause


ENVIRONMENT_ERRORS = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_PROTOCOL,
    }
)
"""SQLite's primary result codes that mean the database or its disk failed, whatever the job was."""


POSTGRESQL_ENVIRONMENT_CLASSES = frozenset({"08", "40", "53", "57", "58", "XX"})
"""PostgreSQL's SQLSTATE classes that mean the server or its disk failed, whatever the job was:
connection exception, transaction rollback (serialization, deadlock), insufficient resources
(disk full, out of memory), operator intervention (shutdown), system error, internal error."""


def is_environment_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the store's failure (disk full, locked, I/O, a lost server) rather than
    the job's own (a constraint, a bad statement, a bug in the job)."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in POSTGRESQL_ENVIRONMENT_CLASSES
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and isinstance(code, int) and code & 0xFF in ENVIRONMENT_ERRORS
