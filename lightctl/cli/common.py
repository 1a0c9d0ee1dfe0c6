"""What every command module shares: exit codes, reaching the daemon, reading the config.

Command modules import only this and argparse at module level; what a command needs beyond that
(the daemon, the drivers, the whole config's validation) is imported when the command runs, so
that ``lightctl status`` does not pay for the daemon's imports (start-up cost, not cycles).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightctl.model.config import Config
    from lightctl.services.access import Caller, Permission

DEFAULT_CONFIG = "config.yaml"
EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
TOKEN_VARIABLE = "LIGHTCTL_TOKEN"


class ApiError(RuntimeError):
    """The daemon refused a request (``status`` is its HTTP status) or could not be reached (None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UsageError(ValueError):
    """A command given something it cannot use (a selector, a scene, a date): exit code 2."""


class AccessRefused(PermissionError):
    """A command acting on the daemon's records that its caller may not run: exit code 1."""


def local_caller(args: argparse.Namespace, permission: Permission) -> Caller:
    """The caller a command acting on the daemon's records directly acts as: ``local``, for
    whoever can read the local credential (the daemon's OS user); checked against the table."""
    from lightctl.config.loader import read_daemon_settings
    from lightctl.runtime.credentials import LocalCredentialError, read_local_credential
    from lightctl.services.access import AccessDenied, local_caller, require

    settings = read_daemon_settings(config_path(args))
    try:
        read_local_credential(settings.database)
        caller = local_caller()
        require(caller, permission)
    except (LocalCredentialError, AccessDenied) as exc:
        raise AccessRefused(f"{exc} (from another machine or OS user: --url and --token)") from None
    return caller


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config)


def full_config(args: argparse.Namespace) -> Config:
    """The whole installation, validated with every check (what the daemon itself loads)."""
    from lightctl.resolve.loading import load_config  # start-up cost: only commands that need it

    return load_config(config_path(args))


def api(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """One request to the running daemon (``--url``, else where config.yaml says it listens), as
    the caller ``--token`` (or the local credential) names: the daemon checks the route's
    permission for that caller."""
    from lightctl.cli.apiclient import call, target  # start-up cost: aiohttp
    from lightctl.config.loader import read_daemon_settings
    from lightctl.loop import run

    settings = read_daemon_settings(config_path(args))
    where = target(settings, url=args.url, token=args.token, cacert=args.cacert)
    return run(call(where, method, path, json=body))


def print_outcome(result: dict[str, Any]) -> None:
    """A command's summary line, then every controller that did not confirm, with why."""
    summary = result["summary"]
    what = "hand-back" if result["scene"] == "handback" else f"scene {result['scene']}"
    print(
        f"{what} on {result['target']}: {summary['confirmed']} confirmed, "
        f"{summary['unconfirmed']} unconfirmed, {summary['failed']} failed in {result['elapsed_s']:.3f} s "
        f"(command #{result['command_id']})"
    )
    for cid, outcome in result["controllers"].items():
        if outcome["status"] != "confirmed":
            print(f"  {cid}: {outcome['status']}: {outcome.get('error', '')}")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
