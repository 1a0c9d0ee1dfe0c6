"""One compressed hour of ``lightctl bench soak`` in the suite (issue 18): a transition switched
and confirmed everywhere but where a fault was injected, nothing growing. Longer runs by hand."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_compressed_hour_misses_no_transition_and_grows_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lightctl", "bench", "soak", "--hours", "1", "--controllers", "100", "--speed", "120",
         "--fault-every-min", "10", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["transitions"] >= 1 and report["missed_transitions"] == []
    assert report["bounded"] and all(s["store_healthy"] for s in report["samples"])
