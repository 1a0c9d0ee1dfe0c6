"""Conversion of a database written by the lightctl from before migration files (SQLite only).

That schema kept its version in ``PRAGMA user_version`` (2), its times as ISO 8601 text (UTC,
except an override's ``until``, in the installation's zone with its offset), measurements as a
JSON object, and operators in columns named ``user`` (a reserved word in PostgreSQL). Inside the
transaction of migration 0001 its tables are set aside (``legacy_*``), 0001 creates the new ones,
every row is copied across with its times as UTC epoch milliseconds and its measurements in typed
columns, and the old tables are dropped: all of it lands, or none of it does.

A time that SQLite cannot read, or a measurement that is neither a number nor null, stops the
conversion with an error naming the row: nothing is converted by half or dropped quietly.
"""

from __future__ import annotations

import sqlite3

from lightctl.store.errors import StoreError
from lightctl.store.observations import READING_COLUMNS

LEGACY_USER_VERSION = 2
CONVERTED_BY = 1
"""The migration in whose transaction a legacy database is converted (it creates the tables)."""

TABLES = (
    "commands",
    "command_results",
    "state_changes",
    "readings",
    "link_events",
    "overrides",
    "curtail_shed",
    "show_runs",
    "show_cue_results",
)
INDEXES = ("commands_at", "state_changes_ctrl", "readings_ctrl")

TIME_COLUMNS = {
    "commands": ("at", "finished_at"),
    "state_changes": ("at",),
    "readings": ("at",),
    "link_events": ("at",),
    "overrides": ("created_at", "until", "cleared_at"),
    "show_runs": ("started_at", "ended_at"),
}


def _ms(column: str) -> str:
    """SQL for an ISO 8601 text time (with its offset) as UTC epoch milliseconds."""
    return f"CAST(ROUND((julianday({column}) - 2440587.5) * 86400000.0) AS INTEGER)"


def detect(conn: sqlite3.Connection, label: str) -> bool:
    """Whether this database (with no ``schema_migrations``) is one to convert; False for a new,
    empty one. Anything else is refused with what was found."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if version == 0 and not tables & set(TABLES):
        return False
    if version == LEGACY_USER_VERSION and set(TABLES) <= tables:
        return True
    if version == 1:
        raise StoreError(
            f"{label}: schema version 1 comes from a development build of lightctl before curtailment "
            f"and shows (2026-11-25); it cannot be converted: move the file aside to start afresh"
        )
    raise StoreError(
        f"{label}: not a lightctl database this version can migrate (PRAGMA user_version {version}, "
        f"no schema_migrations table, tables: {', '.join(sorted(tables)) or 'none'})"
    )


def set_aside(conn: sqlite3.Connection) -> None:
    """Rename the old tables to ``legacy_*`` (and drop their indexes, whose names 0001 reuses)."""
    for index in INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    for table in TABLES:
        conn.execute(f"ALTER TABLE {table} RENAME TO legacy_{table}")


def _check_times(conn: sqlite3.Connection, label: str) -> None:
    for table, columns in TIME_COLUMNS.items():
        for column in columns:
            bad = conn.execute(
                f"SELECT id, {column} FROM legacy_{table} WHERE {column} IS NOT NULL AND julianday({column}) IS NULL LIMIT 1"
            ).fetchone()
            if bad is not None:
                raise StoreError(
                    f"{label}: cannot convert {table} #{bad[0]}: {column} {bad[1]!r} is not an ISO 8601 time"
                )


def _check_measurements(conn: sqlite3.Connection, label: str) -> None:
    bad = conn.execute(
        "SELECT r.id, j.key, j.value FROM legacy_readings r, json_each(r.measurements) j"
        " WHERE j.type NOT IN ('integer', 'real', 'true', 'false', 'null') LIMIT 1"
    ).fetchone()
    if bad is not None:
        raise StoreError(f"{label}: cannot convert reading #{bad[0]}: measurement {bad[1]!r} is {bad[2]!r}, not a number")


def convert(conn: sqlite3.Connection, label: str) -> None:
    """Copy every legacy row into the tables 0001 created, then drop the legacy tables."""
    _check_times(conn, label)
    _check_measurements(conn, label)
    conn.execute(
        "INSERT INTO commands (id, at, user_name, source, action, scene, target, status, finished_at, elapsed_s,"
        " confirmed, unconfirmed, failed, detail)"
        f" SELECT id, {_ms('at')}, user, source, action, scene, target, status, {_ms('finished_at')}, elapsed_s,"
        " confirmed, unconfirmed, failed, detail FROM legacy_commands"
    )
    conn.execute(
        "INSERT INTO command_results (command_id, controller_id, status, error_kind, error, operations, channels, elapsed_s)"
        " SELECT command_id, controller_id, status, error_kind, error, operations, channels, elapsed_s"
        " FROM legacy_command_results"
    )
    conn.execute(
        "INSERT INTO state_changes (id, at, controller_id, channel_id, is_on, level, power_w, faults)"
        f" SELECT id, {_ms('at')}, controller_id, channel_id, is_on, level, power_w, faults FROM legacy_state_changes"
    )
    named = ", ".join(READING_COLUMNS)
    extracted = ", ".join(f"json_extract(measurements, '$.\"{name}\"') + 0.0" for name in READING_COLUMNS)
    conn.execute(
        f"INSERT INTO readings (id, at, controller_id, power_w, energy_kwh, faults, {named})"
        f" SELECT id, {_ms('at')}, controller_id, power_w, energy_kwh, faults, {extracted} FROM legacy_readings"
    )
    conn.execute(
        "INSERT INTO reading_values (reading_id, name, value)"
        " SELECT r.id, j.key, j.value + 0.0 FROM legacy_readings r, json_each(r.measurements) j"
        f" WHERE j.type != 'null' AND j.key NOT IN ({', '.join('?' for _ in READING_COLUMNS)})",
        list(READING_COLUMNS),
    )
    conn.execute(
        "INSERT INTO link_events (id, at, controller_id, state, error)"
        f" SELECT id, {_ms('at')}, controller_id, state, error FROM legacy_link_events"
    )
    conn.execute(
        "INSERT INTO overrides (id, created_at, user_name, kind, scene, target, until, cap, cleared_at, cleared_by)"
        f" SELECT id, {_ms('created_at')}, user, kind, scene, target, {_ms('until')}, cap, {_ms('cleared_at')},"
        " cleared_by FROM legacy_overrides"
    )
    conn.execute(
        "INSERT INTO curtail_shed (override_id, controller_id, channel_id, luminaires, level_before, level_after, shed_w)"
        " SELECT override_id, controller_id, channel_id, luminaires, level_before, level_after, shed_w"
        " FROM legacy_curtail_shed"
    )
    conn.execute(
        "INSERT INTO show_runs (id, show_id, user_name, started_at, ended_at, status, loops_done, detail)"
        f" SELECT id, show_id, user, {_ms('started_at')}, {_ms('ended_at')}, status, loops_done, detail"
        " FROM legacy_show_runs"
    )
    conn.execute(
        "INSERT INTO show_cue_results (run_id, loop, cue, controller_id, status, sent_offset_ms, error)"
        " SELECT run_id, loop, cue, controller_id, status, sent_offset_ms, error FROM legacy_show_cue_results"
    )
    for table in reversed(TABLES):  # those that refer to others first
        conn.execute(f"DROP TABLE legacy_{table}")
