"""``lightctl bench access`` runs and reports what BENCHMARKS.md quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import installation_data, modbus_controller


def test_the_access_bench_reports_each_figure(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(installation_data([modbus_controller("m0", 0)])), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "lightctl", "--config", str(config), "bench", "access", "--requests", "20", "--rounds", "2", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["password_hash"]["memory_kib"] == 1024 and result["password_hash"]["hash_ms"] > 0
    assert result["sign_in_ms"] > 0 and result["requests"] == 20
    assert set(result["request_us"]) == {"floor (public page)", "local credential", "api token", "session", "refused change, audited"}
    assert all(us > 0 for us in result["request_us"].values())
