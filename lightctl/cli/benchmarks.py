"""``lightctl bench``: benchmarks against simulators, reporting ratios to a floor measured in the same run."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench_command", required=True)
    p = bench.add_parser("switch", help="time the one switch against simulators, with the floor")
    p.add_argument("--controllers", type=int, default=1000)
    p.add_argument("--protocol", default="modbus", help="modbus, opcua, dali, bacnet or mixed")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--processes", type=int, default=0, help="simulator processes (default: by size)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_switch)
    p = bench.add_parser("store", help="the store's writer: state changes, readings and command records per second")
    p.add_argument("--events", type=int, default=20_000, help="state-change events of 8 channels each")
    p.add_argument("--readings", type=int, default=50_000)
    p.add_argument("--controllers", type=int, default=1000, help="results per command record")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_store)
    p = bench.add_parser("report", help="a year of readings through the store's writer, every report over it, the switch beside ingest")
    p.add_argument("--meters", type=int, default=500, help="metered channels (one per cabinet)")
    p.add_argument("--days", type=int, default=365, help="days of 15-minute readings")
    p.add_argument("--repeat", type=int, default=5, help="runs of each report (p50)")
    p.add_argument("--controllers", type=int, default=1000, help="simulated cabinets for the switch")
    p.add_argument("--rounds", type=int, default=10, help="switch rounds without, with, and again without ingest")
    p.add_argument("--rate", type=int, default=100_000, help="readings a second recorded during the switch")
    p.add_argument("--processes", type=int, default=0, help="simulator processes (default: by size)")
    p.add_argument("--no-switch", action="store_true", help="ingest and reports only")
    p.add_argument("--pause", type=float, default=1.5, help="seconds between switch rounds")
    p.add_argument("--no-hold", action="store_true", help="readings written during the switch too (for comparison)")
    p.add_argument("--dir", default=None, help="where the temporary database goes (default: the system's temp)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_report)
    p = bench.add_parser("show", help="a 10-cue show: spread of each cue's arrival across controllers")
    p.add_argument("--controllers", type=int, default=200)
    p.add_argument("--protocol", default="mixed", help="modbus, opcua, dali, bacnet, a comma-separated list of them, or mixed")
    p.add_argument("--processes", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_show)


def cmd_bench_switch(args: argparse.Namespace) -> int:
    from lightctl.bench.runner import run_switch_bench
    from lightctl.loop import run

    return run(run_switch_bench(args))


def cmd_bench_store(args: argparse.Namespace) -> int:
    from lightctl.bench.store import run_store_bench
    from lightctl.loop import run

    return run(run_store_bench(args))


def cmd_bench_report(args: argparse.Namespace) -> int:
    from lightctl.bench.report import run_report_bench
    from lightctl.loop import run

    return run(run_report_bench(args))


def cmd_bench_show(args: argparse.Namespace) -> int:
    from lightctl.bench.runner import run_show_bench
    from lightctl.loop import run

    return run(run_show_bench(args))
