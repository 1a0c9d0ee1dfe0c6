"""The benchmark command itself: it runs, confirms, and reports what BENCHMARKS.md quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_switch_bench_over_every_protocol_reports_cpu_and_confirms() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lightctl", "bench", "switch", "--protocol", "mixed",
         "--controllers", "8", "--rounds", "2", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["protocols"] == ["bacnet", "dali", "modbus", "opcua"]
    assert report["not_confirmed"] == 0 and report["rounds"] == 2
    assert report["floor_p50_s"] > 0 and report["engine_p50_s"] > 0
    assert report["cpu_ms_per_controller_engine"] > 0 and report["cpu_ms_per_controller_simulators"] > 0
    assert report["requests_per_controller_engine"] >= 1


def test_faults_bench_detects_every_fault_once_and_reports_its_cost() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lightctl", "bench", "faults", "--controllers", "100", "--poll-s", "1", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["false_alarms_before"] == 0 and report["detected"] == report["injected"] == 10
    assert report["other_alarms"] == 0 and report["offline_faults_ok"] and report["comm_lost_faults"] == 30
    assert report["chattering_held"] == 10 and report["eval_cpu_us_per_reading"] > 0
    assert len(report["memory_kib_every_10_min"]) == 7
