"""``lightctl schedule preview``: the transitions of the coming days, computed from config.yaml.

The preview is computed locally from the same config and the same pure engine the daemon runs, so
it needs no running daemon.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime
from zoneinfo import ZoneInfo

DEFAULT_CONFIG = "config.yaml"
MAX_DAYS = 3660


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schedule = subparsers.add_parser("schedule", help="the calendar schedule")
    commands = schedule.add_subparsers(dest="schedule_command", required=True)
    preview = commands.add_parser(
        "preview",
        help="list every schedule transition in order",
        description="Every transition from noon of --from for --days operating days (noon to noon): "
        "local time with offset, start/end, scene, priority, target selector and why.",
    )
    preview.add_argument(
        "--config", default=argparse.SUPPRESS, help="config file (default: lightctl's --config, $LIGHTCTL_CONFIG or config.yaml)"
    )
    preview.add_argument("--from", dest="first", type=_date, default=None, help="first day, YYYY-MM-DD (default today)")
    preview.add_argument("--days", type=_days, default=7, help="number of operating days (default 7)")
    preview.add_argument("--target", default=None, help="only transitions on channels of this selector")
    preview.add_argument("--json", action="store_true", help="a JSON array of {at, scene, target, reason, ...}")
    preview.set_defaults(func=run_preview)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad date {text!r}: expected YYYY-MM-DD") from None


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad number of days {text!r}") from None
    if not 1 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"--days must be 1 to {MAX_DAYS}")
    return value


def run_preview(args: argparse.Namespace) -> int:
    from lightctl.config.problems import ConfigError
    from lightctl.inventory.index import Inventory
    from lightctl.inventory.selectors import SelectorError
    from lightctl.resolve.loading import load_config
    from schedules.builder import build
    from schedules.preview import dumps, nights, preview, table

    try:
        config = load_config(getattr(args, "config", None) or os.environ.get("LIGHTCTL_CONFIG", DEFAULT_CONFIG))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    inventory = Inventory(config)
    schedule = build(config, inventory, log_missing=False)  # printed below, once
    first = args.first or datetime.now(ZoneInfo(config.installation.timezone)).date()
    try:
        rows = preview(schedule, inventory, first, args.days, args.target)
    except SelectorError as exc:
        print(f"--target: {exc}", file=sys.stderr)
        return 2
    last = date.fromordinal(first.toordinal() + args.days - 1)
    for warning in schedule.calendar_warnings(first, last):
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(dumps(rows))
    else:
        print(
            f"{len(rows)} transitions from {first} 12:00 for {args.days} operating day(s) "
            f"({config.installation.timezone}); official holiday calendar: {schedule.official.covered_years()}"
        )
        if config.schedule.default_scene is not None:
            print(f"outside the entries: scene {config.schedule.default_scene}")
        print(table(rows))
        estimated = [n for n in nights(schedule, first, args.days) if n.estimated] if schedule.uses_official_calendar() else []
        if estimated:
            print("nights whose holidays are estimated (no published arrangement yet):")
            for night in estimated:
                print(f"  {night.describe()}")
    return 0
