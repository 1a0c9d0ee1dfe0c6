"""``lightctl backup FILE`` and ``lightctl restore FILE``: the records, on the daemon's machine.

Both act on the database file named by the config (``daemon.database``), so the file system's
permissions are what guard them: whoever may read the daemon's database may back it up, and only
whoever may write it may restore. A backup is safe while the daemon runs; a restore is refused
until the daemon is stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lightctl.cli.common import EXIT_OK, EXIT_USAGE, add_json, config_path


def register(sub: Any) -> None:
    p = sub.add_parser("backup", help="copy the records to FILE (safe while the daemon runs), checked")
    p.add_argument("file")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_json(p)
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="put a backup in place of the records (the daemon must be stopped)")
    p.add_argument("file")
    add_json(p)
    p.set_defaults(func=cmd_restore)


def _database(args: argparse.Namespace) -> str:
    from lightctl.config.loader import read_daemon_settings

    return read_daemon_settings(config_path(args)).database


def cmd_backup(args: argparse.Namespace) -> int:
    from lightctl.store import StoreError
    from lightctl.store.backup import backup

    try:
        report = backup(_database(args), args.file, overwrite=args.force)
    except StoreError as exc:
        print(f"lightctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = {"file": str(report.path), "bytes": report.bytes, "seconds": round(report.seconds, 3),
              "schema_version": report.schema_version, "commands": report.commands, "photos_copied": report.photos,
              "integrity": "ok"}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"backed up to {report.path}: {report.bytes / 1e6:.1f} MB, integrity ok, schema {report.schema_version}, "
              f"{report.commands} commands, {report.photos} new photo(s), in {report.seconds:.2f} s")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from lightctl.store import StoreError
    from lightctl.store.backup import restore

    database = _database(args)
    try:
        kept = restore(args.file, database)
    except StoreError as exc:
        print(f"lightctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({"restored": str(args.file), "database": database, "previous": str(kept) if kept else None}))
    else:
        print(f"restored {args.file} as {database}" + (f"; the previous records are kept as {kept}" if kept else ""))
    return EXIT_OK
