"""PostgreSQL for the store (the city's records): asyncpg behind the synchronous
:class:`~lightctl.store.sql.Connection` that the store's writer thread, its readers and the
repositories' jobs use with SQLite, so that the same repositories and migrations run on both.

* **One event loop per store, in its own thread** (:class:`PgLoop`), runs every asyncpg
  connection of the store; a :class:`PgConnection` hands each statement to it and waits for the
  result. The writer thread, the reader threads and the thread that opens the store call it
  alike, whatever loop (if any) their own thread runs.
* **What SQLite's SQL becomes**: ``?`` placeholders are numbered ``$1, $2, ...`` (never inside a
  quoted string or a comment), ``BEGIN IMMEDIATE`` is ``BEGIN``; an ``INSERT`` into a table whose
  key is an identity column (a migration's ``INTEGER PRIMARY KEY``) gets ``RETURNING`` that key,
  which is the cursor's ``lastrowid``; ``numeric`` results (``SUM`` of a BIGINT) come back as
  ``int`` or ``float``, as SQLite gives them; an ``int`` given for a BOOLEAN parameter is taken
  as its truth value (SQLite's booleans are integers).
* **A lost connection is the store's failure, never the job's**: an error that leaves the
  connection closed is raised as :class:`~lightctl.store.errors.DatabaseUnavailable`, and the
  next statement outside a transaction connects again (the writer's next batch; a reader's next
  read), running the connection's set-up again (the writer's owner lock).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from lightctl.store.errors import DatabaseUnavailable, StoreError
from lightctl.store.ownership import DatabaseInUse

T = TypeVar("T")

CONNECT_TIMEOUT_S = 10.0
STATEMENT_TIMEOUT_S = 120.0
"""A statement the server has not answered in this time is cancelled (asyncpg's command_timeout)."""
CALL_MARGIN_S = 15.0
"""What a caller waits beyond the statement timeout before calling the server unreachable."""

_TRANSACTION = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|END)\b", re.IGNORECASE)
_SCHEMA_CHANGE = re.compile(r"^\s*(CREATE|ALTER|DROP)\b", re.IGNORECASE)
_INSERT_INTO = re.compile(r"^\s*INSERT\s+INTO\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_BEGIN_IMMEDIATE = re.compile(r"^\s*BEGIN\s+IMMEDIATE\b", re.IGNORECASE)


def without_password(url: str) -> str:
    """The URL as logs and messages may show it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def numbered_placeholders(sql: str) -> str:
    """SQLite's ``?`` as PostgreSQL's ``$1, $2, ...``, skipping quoted text and comments."""
    out: list[str] = []
    number = 0
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"'):
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:  # a doubled quote inside the text
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end])
            i = end
        elif ch == "?":
            number += 1
            out.append(f"${number}")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _number(text: str) -> int | float:
    """A ``numeric`` value as SQLite would give it: an integer when it has no fraction."""
    if text.lstrip("-").isdigit():
        return int(text)
    return float(text)


class PgLoop:
    """The event loop, in a thread of its own, on which a store's asyncpg connections run."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"store-pg {label}", daemon=True)
        self._thread.start()
        self._closed = False

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Run ``coro`` on the loop and wait for it (from any other thread)."""
        if self._closed:
            coro.close()
            raise StoreError(f"store {self.label} is closed")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise DatabaseUnavailable(f"store {self.label}: no answer from PostgreSQL in {timeout_s:.0f} s") from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    simple: bool
    """Transaction control or a schema change: sent as it is, never prepared."""
    schema_change: bool
    returns_key: bool
    """An INSERT given ``RETURNING`` its table's identity key (the cursor's lastrowid)."""
    begins: bool


class PgCursor:
    __slots__ = ("_rows", "lastrowid", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int, lastrowid: int | None = None) -> None:
        self._rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


def _rowcount(status: str | None) -> int:
    if not status:
        return -1
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


SetUp = Callable[[asyncpg.Connection], Awaitable[None]]


class PgConnection:
    """One asyncpg connection behind the store's synchronous :class:`~lightctl.store.sql.Connection`.
    Used by one thread at a time (the writer's, or one reader's)."""

    def __init__(self, url: str, loop: PgLoop, *, dict_rows: bool, set_up: SetUp | None = None) -> None:
        self.url = url
        self.label = without_password(url)
        self.dict_rows = dict_rows
        self._loop = loop
        self._set_up = set_up
        self._conn: asyncpg.Connection | None = None
        self._statements: dict[str, _Statement] = {}
        self._prepared: dict[str, Any] = {}
        self._booleans: dict[str, tuple[int, ...]] = {}
        self._identity: dict[str, str] = {}

    # -- the connection ----------------------------------------------------------------------

    def connect(self) -> None:
        self._loop.call(self._connect(), CONNECT_TIMEOUT_S + CALL_MARGIN_S)

    async def _connect(self) -> None:
        try:
            conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT_S, command_timeout=STATEMENT_TIMEOUT_S)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailable(f"store {self.label}: cannot connect to PostgreSQL: {exc}") from exc
        try:
            await conn.set_type_codec("numeric", encoder=str, decoder=_number, schema="pg_catalog", format="text")
            if self._set_up is not None:
                await self._set_up(conn)
            self._identity = await _identity_columns(conn)
        except BaseException:
            await conn.close(timeout=5)
            raise
        self._conn = conn
        self._prepared.clear()
        self._booleans.clear()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                self._loop.call(conn.close(timeout=5), 10)
            except Exception:
                conn.terminate()

    @property
    def in_transaction(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.is_closed() and conn.is_in_transaction()

    def _live(self) -> asyncpg.Connection:
        conn = self._conn
        if conn is None or conn.is_closed():
            self._conn = None
            self.connect()
            conn = self._conn
            assert conn is not None
        return conn

    # -- statements --------------------------------------------------------------------------

    def _statement(self, sql: str) -> _Statement:
        found = self._statements.get(sql)
        if found is None:
            text = _BEGIN_IMMEDIATE.sub("BEGIN", numbered_placeholders(sql))
            simple = bool(_TRANSACTION.match(text))
            schema_change = bool(_SCHEMA_CHANGE.match(text))
            insert = _INSERT_INTO.match(text)
            key = self._identity.get(insert.group(1).lower()) if insert else None
            returns_key = key is not None and not _RETURNING.search(text)
            if returns_key:
                text = f"{text.rstrip().rstrip(';')} RETURNING {key}"
            begins = text.strip().upper() == "BEGIN"
            found = _Statement(text, simple or schema_change, schema_change, returns_key, begins)
            if not schema_change:  # a table created later may give an INSERT its key
                self._statements[sql] = found
        return found

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> PgCursor:
        statement = self._statement(sql)
        args = list(parameters)
        try:
            return self._execute(statement, args)
        except DatabaseUnavailable:
            # A connection the server closed while it was idle may still look open until its
            # first statement fails: a BEGIN, or a reader's query, is then simply sent again on a
            # new connection (nothing was done on the old one).
            if not (statement.begins or self.dict_rows):
                raise
            return self._execute(statement, args)

    def _execute(self, statement: _Statement, args: list[Any]) -> PgCursor:
        conn = self._live()
        if statement.simple and not args:
            status = self._call(conn.execute(statement.sql))
            if statement.schema_change:
                self._schema_changed(conn)
            return PgCursor([], _rowcount(status))
        return self._call(self._fetch(conn, statement, args))

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> PgCursor:
        statement = self._statement(sql)
        conn = self._live()
        rows = [list(row) for row in seq_of_parameters]
        if rows:
            self._call(self._executemany(conn, statement, rows))
        return PgCursor([], -1)

    async def _prepare(self, conn: asyncpg.Connection, text: str) -> Any:
        prepared = self._prepared.get(text)
        if prepared is None:
            prepared = await conn.prepare(text)
            self._prepared[text] = prepared
            self._booleans[text] = tuple(i for i, t in enumerate(prepared.get_parameters()) if t.name == "bool")
        return prepared

    def _coerce(self, text: str, args: list[Any]) -> list[Any]:
        for i in self._booleans.get(text, ()):
            value = args[i]
            if isinstance(value, int) and not isinstance(value, bool):
                args[i] = bool(value)
        return args

    async def _fetch(self, conn: asyncpg.Connection, statement: _Statement, args: list[Any]) -> PgCursor:
        prepared = await self._prepare(conn, statement.sql)
        records = await prepared.fetch(*self._coerce(statement.sql, args))
        rows = [dict(r.items()) if self.dict_rows else tuple(r.values()) for r in records]
        lastrowid = None
        if statement.returns_key:
            lastrowid = int(records[-1][0]) if records else None
            rows = []
        return PgCursor(rows, _rowcount(prepared.get_statusmsg()), lastrowid)

    async def _executemany(self, conn: asyncpg.Connection, statement: _Statement, rows: list[list[Any]]) -> None:
        prepared = await self._prepare(conn, statement.sql)
        await prepared.executemany([self._coerce(statement.sql, row) for row in rows])

    def _schema_changed(self, conn: asyncpg.Connection) -> None:
        self._prepared.clear()
        self._booleans.clear()
        self._identity = self._call(_identity_columns(conn))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return self._loop.call(coro, STATEMENT_TIMEOUT_S + CALL_MARGIN_S)
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            conn = self._conn
            if conn is None or conn.is_closed():
                self._conn = None
                raise DatabaseUnavailable(f"store {self.label}: the connection to PostgreSQL was lost: {exc}") from exc
            raise


async def _identity_columns(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'"
    )
    return {str(r["table_name"]).lower(): str(r["column_name"]) for r in rows}


def advisory_lock(key: int, label: str) -> SetUp:
    """A connection set-up that takes the database's owner lock (one daemon per database): a
    session-level advisory lock, dropped by the server when the connection ends however it ends."""

    async def take(conn: asyncpg.Connection) -> None:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            holder = await conn.fetchval(
                "SELECT string_agg(a.client_addr::text || ' pid ' || a.pid::text, ', ') FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.objid = $1",
                key & 0xFFFFFFFF,
            )
            raise DatabaseInUse(f"{label} is in use by another lightctl process ({holder or 'unknown'}): stop it first (one daemon per database)")

    return take
