"""Commands that only talk to the daemon must not import the daemon, the drivers or the
simulators (issue 13.8: a CLI call cost about 1.4 s of imports before it did anything)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "lightctl.runtime.daemon", "lightctl.reconcile.engine", "lightctl.simulation.farm", "lightctl.resolve.loading",
    "drivers.modbus", "drivers.opcua", "drivers.dali", "drivers.bacnet", "asyncua", "bacpypes3", "pymodbus", "dali",
    "web.app", "schedules.engine",
)


def test_a_command_through_the_api_imports_none_of_the_daemon() -> None:
    probe = (
        "import sys, json\n"
        "from lightctl.cli.main import main\n"
        "code = main(['--url', 'http://127.0.0.1:9', 'status'])\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
        "sys.exit(0 if code == 3 else 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert "cannot reach the daemon" in done.stderr
