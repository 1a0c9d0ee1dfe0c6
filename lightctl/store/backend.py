"""Where the records live: a SQLite file (the embedded default, a district's records) or a
PostgreSQL database (``postgresql://...``, the city's records). Everything above this module
(the writer, the readers, the migrations, every repository) works on a
:class:`~lightctl.store.sql.Connection` and is the same for both; a backend says how connections
are made, how one daemon per database is enforced, and what each database does at opening and
closing that the other does not.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol

from lightctl.model.storage import is_database_url
from lightctl.store.connection import connect_reader, connect_writer
from lightctl.store.errors import StoreError
from lightctl.store.migrate import POSTGRESQL, SQLITE, Dialect
from lightctl.store.ownership import Ownership
from lightctl.store.postgresql import PgConnection, PgLoop, advisory_lock, without_password
from lightctl.store.sql import Connection

OWNER_LOCK_KEY = 0x6C69_6768_7463_746C
"""The advisory lock a daemon holds on its PostgreSQL database ("lightctl" in ASCII)."""


class Backend(Protocol):
    kind: str
    label: str
    """The database as messages show it (a path, or a URL without its password)."""
    dialect: Dialect
    checks_integrity: bool
    """Whether an unclean stop calls for an integrity check at the next opening (SQLite)."""

    def take(self) -> None:
        """Take the database for this process (one daemon per database) before connecting."""
        ...

    def release(self) -> None: ...

    def connect_writer(self) -> Connection: ...

    def connect_reader(self) -> Connection: ...

    def check_integrity(self, conn: Connection) -> list[str]:
        """Problems found (``["ok"]`` when none)."""
        ...

    def closing(self, conn: Connection) -> None:
        """Last words on the writer's connection at a clean stop."""
        ...

    def disconnect(self, conn: Connection) -> None: ...

    def close(self) -> None:
        """After every connection is closed."""
        ...


class SqliteBackend:
    kind = "sqlite"
    dialect = SQLITE
    checks_integrity = True

    def __init__(self, path: str, busy_timeout_s: float) -> None:
        if path == ":memory:":
            raise StoreError("the store needs a file: its writer and readers are separate connections")
        self.path = path
        self.label = path
        self.busy_timeout_s = busy_timeout_s
        self.ownership = Ownership(path)

    def take(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.ownership.take()

    def release(self) -> None:
        self.ownership.release()

    def connect_writer(self) -> Connection:
        return connect_writer(self.path, self.busy_timeout_s)

    def connect_reader(self) -> Connection:
        return connect_reader(self.path, self.busy_timeout_s)

    def check_integrity(self, conn: Connection) -> list[str]:
        return [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]

    def closing(self, conn: Connection) -> None:
        conn.execute("PRAGMA optimize")

    def disconnect(self, conn: Connection) -> None:
        if isinstance(conn, sqlite3.Connection):
            conn.close()

    def close(self) -> None:
        pass


class PostgresqlBackend:
    """The database a URL names; its password from the URL, ``PGPASSWORD`` or ``~/.pgpass``
    (asyncpg reads them as libpq does). Its integrity is the server's business (WAL replay
    after a crash), so an unclean stop calls for no check here."""

    kind = "postgresql"
    dialect = POSTGRESQL
    checks_integrity = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.label = without_password(url)
        self._loop: PgLoop | None = None

    def _pg_loop(self) -> PgLoop:
        if self._loop is None:
            self._loop = PgLoop(self.label)
        return self._loop

    def take(self) -> None:
        """The owner lock is taken by the writer's connection (:meth:`connect_writer`), every time
        it connects: the server drops it with the connection, however the process ends."""

    def release(self) -> None:
        pass

    def connect_writer(self) -> Connection:
        conn = PgConnection(self.url, self._pg_loop(), dict_rows=False, set_up=advisory_lock(_signed(OWNER_LOCK_KEY), self.label))
        conn.connect()
        return conn

    def connect_reader(self) -> Connection:
        conn = PgConnection(self.url, self._pg_loop(), dict_rows=True)
        conn.connect()
        return conn

    def check_integrity(self, conn: Connection) -> list[str]:
        return ["ok"]

    def closing(self, conn: Connection) -> None:
        pass

    def disconnect(self, conn: Connection) -> None:
        if isinstance(conn, PgConnection):
            conn.close()

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()


def _signed(key: int) -> int:
    """A 64-bit key as PostgreSQL's signed bigint."""
    return key - (1 << 64) if key >= 1 << 63 else key


def backend_for(target: str, busy_timeout_s: float) -> Backend:
    """``postgresql://...`` (or ``postgres://``): PostgreSQL; anything else is a SQLite file."""
    if is_database_url(target):
        return PostgresqlBackend(target)
    return SqliteBackend(target, busy_timeout_s)
