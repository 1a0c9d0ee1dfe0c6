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


def cmd_bench_switch(args: argparse.Namespace) -> int:
    from lightctl.bench.runner import run_switch_bench
    from lightctl.loop import run

    return run(run_switch_bench(args))


def cmd_bench_store(args: argparse.Namespace) -> int:
    from lightctl.bench.store import run_store_bench
    from lightctl.loop import run

    return run(run_store_bench(args))


def cmd_bench_show(args: argparse.Namespace) -> int:
    from lightctl.bench.runner import run_show_bench
    from lightctl.loop import run

    return run(run_show_bench(args))


def cmd_bench_access(args: argparse.Namespace) -> int:
    from lightctl.bench.access import run_access_bench
    from lightctl.cli.common import full_config
    from lightctl.loop import run

    return run(run_access_bench(args, full_config(args)))
