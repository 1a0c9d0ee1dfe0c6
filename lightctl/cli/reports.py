"""``lightctl report``: the city's figures from the running daemon's API, printed as a table, or
saved as JSON, CSV or a spreadsheet; ``report monthly`` writes the bureau's monthly workbook."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from lightctl.cli.common import EXIT_OK, ApiError, UsageError, api

TABLE_REPORTS = {
    "rates": ("the action plan's rates with their targets", "site, district, region or area", "district"),
    "lighting-on": ("lighting-on rate (亮灯率) from the nightly inspections", "site, district, region, area, day or month", "district"),
    "energy": ("energy: metered and estimated kWh, cost, savings, coal and CO2",
               "site, district, region, area, controller, channel, 15min, hour, day or month", "district"),
    "workorders": ("work orders handled and closed on time", "site, district, region or area", "district"),
}
FORMATS = ("table", "json", "csv", "xlsx")


def register(sub: Any) -> None:
    report = sub.add_parser("report", help="reports: rates, lighting-on, energy, forecast, work orders, the monthly workbook")
    commands = report.add_subparsers(dest="report_command", required=True)
    for name, (text, groupings, default) in TABLE_REPORTS.items():
        p = commands.add_parser(name, help=text)
        p.add_argument("--from", dest="first", help="first day YYYY-MM-DD or a month YYYY-MM (default: the 1st of this month)")
        p.add_argument("--to", dest="last", help="last day, included (default: today)")
        _common(p, groupings, default)
        if name == "energy":
            p.add_argument("--window", help="only the days of a day set, e.g. set:spring-decorations or holiday:spring_festival")
        p.set_defaults(func=cmd_table, report=name)
    p = commands.add_parser("forecast", help="energy and cost the schedule will use over the coming nights")
    p.add_argument("--from", dest="first", help="first night YYYY-MM-DD (default: tonight)")
    p.add_argument("--nights", type=int, default=7)
    _common(p, "night, site, district, region or area", "night")
    p.set_defaults(func=cmd_table, report="forecast")
    p = commands.add_parser("monthly", help="the bureau's monthly workbook (one sheet per table)")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--output", help="file to write (default: lightctl-monthly-YYYY-MM.xlsx)")
    p.add_argument("--format", choices=("xlsx", "json"), default="xlsx")
    p.add_argument("--json", action="store_true", help="print the tables as JSON instead")
    p.set_defaults(func=cmd_monthly)
    p = commands.add_parser("curtail", help="what-if: the kW a curtailment of a selector would shed now (nothing is sent)")
    p.add_argument("--target", required=True)
    p.add_argument("--level", type=float, default=0.0, help="cap in percent (default 0: off)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_curtail)
    p = commands.add_parser("inspect", help="take and store a lighting-on inspection now")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inspect)


def _common(p: argparse.ArgumentParser, groupings: str, default: str) -> None:
    p.add_argument("--district", help="one district (id or name)")
    p.add_argument("--by", default=default, help=f"{groupings} (default: {default})")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--output", help="file to write (default: print; xlsx: lightctl-<report>.xlsx)")
    p.add_argument("--json", action="store_true", help="the same as --format json")


def _get(args: argparse.Namespace, path: str, query: dict[str, Any]) -> Any:
    given = {k: v for k, v in query.items() if v is not None}
    try:
        return api(args, "GET", f"{path}?{urlencode(given)}" if given else path)
    except ApiError as exc:
        if exc.status == 400:
            raise UsageError(str(exc)) from None
        raise


def cmd_table(args: argparse.Namespace) -> int:
    query: dict[str, Any] = {"district": args.district, "by": args.by, "from": args.first}
    if args.report == "forecast":
        query["nights"] = args.nights
    else:
        query["to"] = args.last
    if args.report == "energy":
        query["window"] = args.window
    table = _get(args, f"/api/v1/reports/{args.report}", query)
    output = "json" if args.json else args.format
    if output == "xlsx":
        from lightctl.services.reports.workbook import write_workbook  # start-up cost: openpyxl

        path = write_workbook([table], args.output or f"lightctl-{args.report}.xlsx")
        print(f"wrote {path}")
        return EXIT_OK
    if output == "json":
        text = json.dumps(table, ensure_ascii=False, indent=2)
    else:
        from lightctl.services.reports import render  # start-up cost: only what prints tables

        text = render.csv_text(table) if output == "csv" else render.text(table)
    _emit(text, args.output)
    return EXIT_OK


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")
        print(f"wrote {output}")
    else:
        sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))


def cmd_monthly(args: argparse.Namespace) -> int:
    answer = _get(args, "/api/v1/reports/monthly", {"month": args.month})
    if args.json or args.format == "json":
        _emit(json.dumps(answer, ensure_ascii=False, indent=2), args.output)
        return EXIT_OK
    from lightctl.services.reports.workbook import write_workbook  # start-up cost: openpyxl

    path = write_workbook(answer["tables"], args.output or f"lightctl-monthly-{args.month}.xlsx")
    print(f"wrote {path}: {len(answer['tables'])} sheets ({', '.join(t['name'] for t in answer['tables'])})")
    return EXIT_OK


def cmd_curtail(args: argparse.Namespace) -> int:
    answer = _get(args, "/api/v1/reports/curtail", {"target": args.target, "level": args.level})
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return EXIT_OK
    what = "off" if answer["level"] == 0 else f"to {answer['level']:g}%"
    print(
        f"curtailing {answer['target']} {what} would shed {answer['shed_kw']:.2f} kW now "
        f"({answer['channels']} channels, {answer['luminaires']} luminaires); nothing was sent"
    )
    if not answer["shed"]:
        print("none: nothing on that selector draws more than the cap allows")
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    try:
        answer = api(args, "POST", "/api/v1/reports/inspections")
    except ApiError as exc:
        if exc.status == 409:
            print(f"no inspection: {exc}")
            return EXIT_OK
        raise
    if args.json:
        print(json.dumps(answer, ensure_ascii=False))
        return EXIT_OK
    rate = answer["lighting_on_rate"]
    print(
        f"lighting-on inspection at {answer['at']}: {answer['lit']} of {answer['should_be_lit']} luminaires lit "
        f"({answer['not_reported']} not reported){'' if rate is None else f', {rate * 100:.1f}%'}"
    )
    return EXIT_OK
