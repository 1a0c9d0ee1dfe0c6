"""Where a daemon's records live, as its config names them (``daemon.database``): a SQLite file, or
a PostgreSQL database by URL (``postgresql://user@host:port/dbname``, the city's records)."""

from __future__ import annotations

from pathlib import Path

URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(database: str) -> bool:
    return database.startswith(URL_SCHEMES)


def files_dir(database: str) -> Path:
    """Where the daemon keeps its own files (the API token, the owner lock of a SQLite file):
    beside a SQLite database; for a PostgreSQL one, the working directory (the systemd unit's
    state directory, ``/var/lib/lightctl``)."""
    if is_database_url(database):
        return Path.cwd()
    return Path(database).resolve().parent
