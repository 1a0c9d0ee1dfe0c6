"""What a repository may ask of a database connection: the part of Python's ``sqlite3`` that the
PostgreSQL adapter (:mod:`lightctl.store.postgresql`) offers too.

A repository's jobs (``store.write(job)``, ``store.read_with(read)``) and row sinks take a
:class:`Connection` and write the SQL that SQLite and PostgreSQL share, with ``?`` placeholders:

* ``execute(sql, params)`` and ``executemany(sql, rows)``; a cursor's ``fetchone()``,
  ``fetchall()``, iteration, ``rowcount``, and ``lastrowid`` after an ``INSERT`` into a table whose
  key the row gets by itself (``id INTEGER PRIMARY KEY``);
* rows of the writer's connection are tuples, rows of a reader's are dicts keyed by column name;
* parameters of the column's own type: ``str`` for TEXT, ``int`` for BIGINT/INTEGER, ``float`` or
  ``int`` for DOUBLE PRECISION, ``bool`` for BOOLEAN (PostgreSQL refuses text for a number);
* no bare ``?`` whose type only a column could tell (``SELECT ?``, ``? IS NULL``): write
  ``CAST(? AS BIGINT)``;
* nothing of SQLite's own (``PRAGMA``, ``sqlite_master``, ``INSERT OR REPLACE``, ``GLOB``, date
  functions): ``INSERT ... ON CONFLICT (...) DO UPDATE/NOTHING`` is shared, times are BIGINT
  UTC milliseconds computed in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    @property
    def lastrowid(self) -> int | None: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Cursor: ...

    @property
    def in_transaction(self) -> bool: ...
