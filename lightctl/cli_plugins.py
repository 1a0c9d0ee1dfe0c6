"""Command modules outside the core register their sub-commands here.

A command module exports ``register(subparsers: argparse._SubParsersAction) -> None``; each command it
adds sets ``func=`` to a callable ``(args: argparse.Namespace) -> int`` (the exit code). Modules that
are not part of this build are skipped.
"""

from __future__ import annotations

COMMAND_MODULES: tuple[str, ...] = (
    "schedules.cli",
    "drivers.modbus.cli",
    "drivers.opcua.cli",
    "drivers.dali.cli",
    "drivers.bacnet.cli",
)
