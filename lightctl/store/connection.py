"""How the store's SQLite connections are opened: autocommit mode (transactions are explicit),
WAL, ``synchronous=FULL`` (a committed record survives the daemon being killed and the power
failing), foreign keys enforced, and a bounded wait for a lock held by another process."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

DEFAULT_BUSY_TIMEOUT_S = 10.0
WRITER_CACHE_KIB = 32_768
"""The writer's page cache (SQLite's default is 2 MiB): the growing ends of the readings, their
index and the roll-ups' tables, and the inner pages above them, stay in memory as they deepen."""


def dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


def connect_writer(path: str, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
    return conn


def connect_reader(path: str, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s)
    conn.execute("PRAGMA query_only=ON")
    conn.row_factory = dict_row
    return conn
