"""Fifty console clients on the WebSocket and the API while the one switch runs (issue 18): none is
dropped, each receives every controller's result, the switch confirms everything. The short form
of ``lightctl bench load`` (whose long form, 5,000 controllers, is in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_fifty_clients_watch_the_one_switch_and_none_is_dropped() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lightctl", "bench", "load", "--controllers", "200", "--clients", "50", "--rounds", "2", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["clients_dropped"] == 0 and report["clients_missing_results"] == 0, report
    assert report["controllers_not_confirmed"] == 0 and report["overflows"] == 0 and report["client_errors"] == []
    assert report["status_fetches"] >= 50 and report["status_failures"] == 0
