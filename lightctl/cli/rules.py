"""How each CLI command acts, and so what checks it: the CLI's side of the one table.

A command that acts through the daemon's API is checked by the daemon (the route's permission,
for the caller the token or local credential names). A command that acts on the daemon's
records directly (users and tokens on the daemon's machine) is checked here, against
``lightctl.services.access``, for the local caller: whoever can read the local credential, i.e.
the daemon's OS user. The rest carry no lightctl identity: they read the config file, start a
process, copy or replace the database file (backup, restore), or commission field devices
directly, and the operating system and the network decide who may. A command missing from :data:`COMMANDS` does not run (and a test fails), as a route
without a rule cannot be registered.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum

from lightctl.services.access import Permission


class Acts(Enum):
    API = "through the daemon's API, which checks the route's permission for the caller"
    RECORDS = "on the daemon's records as the local caller, checked here (through the API with --url)"
    CONFIG = "reads the config file only"
    PROCESS = "starts the daemon, simulators or a benchmark of its own: the OS user's rights decide"
    FILES = "copies or replaces the daemon's database file: the file system's permissions decide"
    COMMISSIONING = "talks to field devices directly, before or beside the daemon: no lightctl identity"


@dataclass(frozen=True, slots=True)
class Rule:
    acts: Acts
    permission: Permission | None = None


API = Rule(Acts.API)
CONFIG = Rule(Acts.CONFIG)
PROCESS = Rule(Acts.PROCESS)
COMMISSIONING = Rule(Acts.COMMISSIONING)
FILES = Rule(Acts.FILES)
ADMINISTER_RECORDS = Rule(Acts.RECORDS, Permission.ADMINISTER)

COMMANDS: Mapping[str, Rule] = {
    "run": PROCESS,
    "sim": PROCESS,
    "demo": PROCESS,
    "config check": CONFIG,
    "config reload": API,
    "backup": FILES,
    "restore": FILES,
    "scene apply": API,
    "scene list": CONFIG,
    "scene show": CONFIG,
    "scene explain": CONFIG,
    "handback": API,
    "override list": API,
    "override clear": API,
    "show list": CONFIG,
    "show start": API,
    "show stop": API,
    "show status": API,
    "curtail apply": API,
    "curtail list": API,
    "curtail restore": API,
    "status": API,
    "schedule preview": CONFIG,
    "bench switch": PROCESS,
    "bench store": PROCESS,
    "bench show": PROCESS,
    "bench access": PROCESS,
    "bench federation": PROCESS,
    "bench load": PROCESS,
    "bench soak": PROCESS,
    "bench console": PROCESS,
    "opcua cert": COMMISSIONING,
    "opcua check": COMMISSIONING,
    "dali scan": COMMISSIONING,
    "dali store-scenes": COMMISSIONING,
    "discover bacnet": COMMISSIONING,
    "user add": ADMINISTER_RECORDS,
    "user passwd": ADMINISTER_RECORDS,
    "user disable": ADMINISTER_RECORDS,
    "user enable": ADMINISTER_RECORDS,
    "user set": ADMINISTER_RECORDS,
    "user list": ADMINISTER_RECORDS,
    "token create": ADMINISTER_RECORDS,
    "token list": ADMINISTER_RECORDS,
    "token revoke": ADMINISTER_RECORDS,
    "audit": API,
    "bench faults": PROCESS,
    "faults list": API,
    "report rates": API,
    "report lighting-on": API,
    "report energy": API,
    "report workorders": API,
    "report forecast": API,
    "report monthly": API,
    "report curtail": API,
    "report inspect": API,
    "bench report": PROCESS,
    "faults show": API,
    "faults ack": API,
    "faults shelve": API,
    "faults unshelve": API,
    "faults export": API,
    "faults lamps": API,
    "faults relamp": API,
    "faults notifications": API,
    "workorders list": API,
    "workorders show": API,
    "workorders file": API,
    "workorders dispatch": API,
    "workorders handle": API,
    "workorders feedback": API,
    "workorders verify": API,
    "workorders close": API,
    "workorders defer": API,
    "workorders export": API,
}


def leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command a parser runs, by its words (``"scene apply"``), with its own parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from leaf_commands(sub, (*prefix, name))
            return
    yield " ".join(prefix), parser
