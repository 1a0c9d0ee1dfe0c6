"""Backing the records up while the daemon runs, and restoring them while it does not.

* :func:`backup` copies the database with SQLite's online backup API in one step: the copy is the
  database as one read transaction saw it, consistent whatever the writer does meanwhile (in WAL
  mode a reader holds up no writer). The copy is checked (``PRAGMA integrity_check``) before it is
  given its final name, so a half-written backup never passes for a good one.
* The crews' photos (files named by their SHA-256 in ``photos/`` beside the database, which the
  records name) are copied beside the backup (``<FILE>.photos/``); a file already there is the
  same photo, so a repeated backup copies only the new ones.
* :func:`restore` refuses while a daemon holds the database (its owner lock), checks the backup's
  integrity and that this lightctl knows every migration it carries, keeps the current database
  beside it (``<db>.before-restore-<time>``), and puts the backup in place by a rename.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from lightctl.model.storage import is_database_url
from lightctl.model.times import now_ms
from lightctl.store.errors import StoreError
from lightctl.store.migrate import known_migrations
from lightctl.store.ownership import Ownership


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    bytes: int
    seconds: float
    schema_version: int
    commands: int
    photos: int = 0
    """Photos copied (new ones only)."""


def _check(path: Path) -> tuple[int, int]:
    """Integrity of a database file, and (highest migration, commands recorded)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            found = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a readable database: {exc}") from None
        if found != ["ok"]:
            raise StoreError(f"{path}: integrity check failed: {'; '.join(found[:5])}")
        try:
            version = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0
            commands = conn.execute("SELECT COUNT(*) FROM commands").fetchone()[0]
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{path} is not a lightctl database: {exc}") from None
        return int(version), int(commands)
    finally:
        conn.close()


def _sqlite_only(database: str | Path) -> None:
    if is_database_url(str(database)):
        raise StoreError(
            "the records are in PostgreSQL: back them up and restore them with PostgreSQL's tools "
            "(pg_dump -Fc, pg_restore; with the daemon stopped for a restore)"
        )


def backup(database: str | Path, target: str | Path, *, overwrite: bool = False) -> BackupReport:
    _sqlite_only(database)
    source_path, target_path = Path(database), Path(target)
    if not source_path.exists():
        raise StoreError(f"no database at {source_path}")
    if target_path.exists() and not overwrite:
        raise StoreError(f"{target_path} exists: choose another name, or --force to replace it")
    target_path.parent.mkdir(parents=True, exist_ok=True)
    partial = target_path.with_name(target_path.name + ".partial")
    started = time.monotonic()
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=10.0)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # one step: one read transaction, a consistent copy
        finally:
            copy.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"backup of {source_path} failed: {exc}") from None
    finally:
        source.close()
    try:
        version, commands = _check(partial)
    except StoreError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target_path)
    photos = copy_photos(source_path.parent / PHOTOS, photos_beside(target_path))
    return BackupReport(target_path, target_path.stat().st_size, time.monotonic() - started, version, commands, photos)


def restore(backup_path: str | Path, database: str | Path) -> Path | None:
    """Put ``backup_path`` in place of ``database``; returns where the previous database was kept
    (None if there was none). Raises :class:`StoreError` (``DatabaseInUse`` while a daemon runs)."""
    _sqlite_only(database)
    source, target = Path(backup_path), Path(database)
    if not source.exists():
        raise StoreError(f"no backup at {source}")
    _check(source)
    known = {m.version for m in known_migrations()}
    unknown = sorted(v for v in _versions(source) if v not in known)
    if unknown:
        raise StoreError(
            f"{source} was written by a newer lightctl (migrations {', '.join(map(str, unknown))} are unknown here): "
            "restore it with that version"
        )
    owner = Ownership(target)
    owner.take()  # refuses while a daemon runs on the database
    try:
        kept: Path | None = None
        if target.exists():
            kept = target.with_name(f"{target.name}.before-restore-{now_ms()}")
            os.replace(target, kept)
            for suffix in ("-wal", "-shm"):
                side = Path(f"{target}{suffix}")
                if side.exists():
                    os.replace(side, Path(f"{kept}{suffix}"))
        incoming = target.with_name(target.name + ".restoring")
        shutil.copyfile(source, incoming)
        os.replace(incoming, target)
        copy_photos(photos_beside(source), target.parent / PHOTOS)
        return kept
    finally:
        owner.release()


def _versions(path: Path) -> list[int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations")]
    finally:
        conn.close()


PHOTOS = "photos"


def photos_beside(backup_path: Path) -> Path:
    return backup_path.with_name(backup_path.name + ".photos")


def copy_photos(source: Path, target: Path) -> int:
    """Copy every photo ``target`` lacks (a photo's name is its hash: one there is the same)."""
    if not source.is_dir():
        return 0
    copied = 0
    for photo in source.iterdir():
        if photo.is_file() and not (target / photo.name).exists():
            target.mkdir(parents=True, exist_ok=True)
            partial = target / f".{photo.name}.partial"
            shutil.copyfile(photo, partial)
            os.replace(partial, target / photo.name)
            copied += 1
    return copied
