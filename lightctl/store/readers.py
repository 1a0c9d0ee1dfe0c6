"""A small pool of read connections: in WAL mode (and in PostgreSQL) readers do not wait for the
writer nor for each other, so each of ``size`` threads keeps its own connection (SQLite's
``query_only``) and reads run side by side. A read sees the last committed state when it starts.
A PostgreSQL reader whose connection was lost connects again at its next read."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from lightctl.store.errors import StoreError
from lightctl.store.sql import Connection

T = TypeVar("T")
Row = dict[str, Any]

DEFAULT_READERS = 4


class ReaderPool:
    def __init__(
        self,
        label: str,
        connect: Callable[[], Connection],
        disconnect: Callable[[Connection], None],
        *,
        size: int = DEFAULT_READERS,
    ) -> None:
        if size < 1:
            raise ValueError("the store needs at least one read connection")
        self.path = label
        self.size = size
        self._connect = connect
        self._disconnect = disconnect
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="store-reader")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            self._disconnect(conn)

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def run(self, read: Callable[[Connection], T]) -> T:
        """Run ``read`` on one of the pool's connections, in the pool's thread."""
        executor = self._executor
        if executor is None:
            raise StoreError(f"store {self.path} is closed")
        return await asyncio.get_running_loop().run_in_executor(executor, lambda: read(self._connection()))

    async def query(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """Rows as dicts keyed by column name."""
        values = list(params)
        return await self.run(lambda conn: conn.execute(sql, values).fetchall())
