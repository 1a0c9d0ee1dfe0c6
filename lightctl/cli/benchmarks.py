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
    p = bench.add_parser("faults", help="fault detection at scale: latency, cost per poll round, a 30%% offline flood, chattering memory")
    p.add_argument("--controllers", type=int, default=5000)
    p.add_argument("--poll-s", type=float, default=10.0)
    p.add_argument("--processes", type=int, default=0, help="simulator processes (default: by size)")
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_faults)
    p = bench.add_parser("load", help="the one switch through the API with and without console clients watching")
    p.add_argument("--controllers", type=int, default=5000)
    p.add_argument("--protocol", default="modbus", help="modbus, opcua, dali, bacnet or mixed")
    p.add_argument("--clients", type=int, default=50, help="console clients: a WebSocket each, and status every 5 s")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--processes", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_load)
    p = bench.add_parser("soak", help="whole nights in compressed time with random faults: memory, tasks, fds, missed transitions")
    p.add_argument("--hours", type=float, default=24.0, help="compressed hours to run (default 24)")
    p.add_argument("--speed", type=float, default=120.0, help="compressed seconds per real second (default 120)")
    p.add_argument("--controllers", type=int, default=500)
    p.add_argument("--protocol", default="modbus", help="modbus, opcua, dali, bacnet or mixed")
    p.add_argument("--fault-share", type=float, default=0.05, help="share of controllers given a fault each time")
    p.add_argument("--fault-every-min", type=float, default=20.0, help="compressed minutes between new faults")
    p.add_argument("--seed", type=int, default=2027)
    p.add_argument("--processes", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_soak)
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
    p = bench.add_parser("federation", help="1 + N: the city's one switch over district daemons through Mosquitto, broker restarts")
    p.add_argument("--districts", type=int, default=4)
    p.add_argument("--controllers", type=int, default=1250, help="simulated controllers per district")
    p.add_argument("--rounds", type=int, default=5, help="timed switches, each of the single daemon and the city")
    p.add_argument("--view-restarts", type=int, default=3, help="broker restarts timed until the city's view is complete")
    p.add_argument("--restarts", type=int, default=20, help="broker restarts (SIGKILL) during switching")
    p.add_argument("--seed", type=int, default=2027)
    p.add_argument("--processes", type=int, default=0, help="simulator processes (default: by size)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_federation)
    p = bench.add_parser("show", help="a 10-cue show: spread of each cue's arrival across controllers")
    p.add_argument("--controllers", type=int, default=200)
    p.add_argument("--protocol", default="mixed", help="modbus, opcua, dali, bacnet, a comma-separated list of them, or mixed")
    p.add_argument("--processes", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_show)
    p = bench.add_parser("access", help="sign-in, the password hash and checking each caller, against the API's floor")
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--rounds", type=int, default=10, help="password hashes and sign-ins")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_access)
    p = bench.add_parser("console", help="the console in headless Chromium: first page, JavaScript size, frames, map")
    p.add_argument("--controllers", type=int, default=5000, help="a generated config of this many (0: none)")
    p.add_argument("--demo", action=argparse.BooleanOptionalAction, default=True, help="also the shipped config.yaml")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_console)


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


def cmd_bench_faults(args: argparse.Namespace) -> int:
    from lightctl.bench.faults import run_faults_bench
    from lightctl.loop import run

    return run(run_faults_bench(args))


def cmd_bench_access(args: argparse.Namespace) -> int:
    from lightctl.bench.access import run_access_bench
    from lightctl.cli.common import full_config
    from lightctl.loop import run

    return run(run_access_bench(args, full_config(args)))


def cmd_bench_load(args: argparse.Namespace) -> int:
    from lightctl.bench.load import run_load_bench
    from lightctl.loop import run

    return run(run_load_bench(args))


def cmd_bench_federation(args: argparse.Namespace) -> int:
    from lightctl.bench.federation import run_federation_bench
    from lightctl.loop import run

    return run(run_federation_bench(args))


def cmd_bench_soak(args: argparse.Namespace) -> int:
    from lightctl.bench.soak import run_soak_bench
    from lightctl.loop import run

    return run(run_soak_bench(args))


def cmd_bench_console(args: argparse.Namespace) -> int:
    from lightctl.bench.console import run_console_bench

    return run_console_bench(args)  # synchronous: Playwright's API, the daemon on a thread of its own
