"""The bureau's workbook (openpyxl): one sheet per table, real numbers with their formats (shares as
percentages, kWh, money, dates as dates), the total in bold, and a column chart on every sheet
whose table asks for one (energy, forecast). Built from the tables' JSON, so that the workbook
holds exactly what the API answered."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from lightctl.services.reports.table import KINDS

HEADER_ROW = 4
"""Row 1: the title; row 2: the period; row 4: the columns' titles; data below."""
BOLD = Font(bold=True)
_BAD = re.compile(r"[\[\]:*?/\\]")


def sheet_name(name: str, taken: set[str]) -> str:
    base = _BAD.sub("-", name)[:31] or "sheet"
    candidate, n = base, 2
    while candidate.lower() in taken:
        suffix = f" ({n})"
        candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(candidate.lower())
    return candidate


def _value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "date" and isinstance(value, str) and len(value) == 10:
        return date.fromisoformat(value)
    return value


def write_table(ws: Worksheet, table: Mapping[str, Any]) -> None:
    columns: Sequence[Mapping[str, str]] = table["columns"]
    ws.cell(row=1, column=1, value=table["title"]).font = Font(bold=True, size=13)
    period = table.get("period")
    if period:
        ws.cell(row=2, column=1, value=f"{period['from']} to {period['to']} ({period['timezone']})")
    for index, column in enumerate(columns, start=1):
        ws.cell(row=HEADER_ROW, column=index, value=column["title"]).font = BOLD
        ws.column_dimensions[get_column_letter(index)].width = max(10, min(40, len(column["title"]) + 2))
    rows = list(table["rows"])
    total = table.get("total")
    for offset, row in enumerate([*rows, *([total] if total else [])], start=1):
        for index, column in enumerate(columns, start=1):
            cell = ws.cell(row=HEADER_ROW + offset, column=index, value=_value(row.get(column["key"]), column["kind"]))
            cell.number_format = KINDS.get(column["kind"], "General") if column["kind"] not in ("text", "time", "bool") else "General"
            if total is not None and offset == len(rows) + 1:
                cell.font = BOLD
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=2)
    last = HEADER_ROW + len(rows) + (1 if total else 0)
    for n, note in enumerate(table.get("notes", []), start=2):
        ws.cell(row=last + n, column=1, value=f"note: {note}")
    chart = table.get("chart")
    if chart and rows:
        _chart(ws, table, columns, len(rows), chart)


def _chart(ws: Worksheet, table: Mapping[str, Any], columns: Sequence[Mapping[str, str]], count: int, spec: Mapping[str, Any]) -> None:
    keys = [c["key"] for c in columns]
    chart = BarChart()
    chart.type = "col"
    chart.title = table["title"]
    chart.y_axis.title = "kWh"
    chart.height, chart.width = 9, max(16, min(40, count * 0.8))
    for key in spec["values"]:
        column = keys.index(key) + 1
        chart.add_data(Reference(ws, min_col=column, min_row=HEADER_ROW, max_row=HEADER_ROW + count), titles_from_data=True)
    category = keys.index(spec["category"]) + 1
    chart.set_categories(Reference(ws, min_col=category, min_row=HEADER_ROW + 1, max_row=HEADER_ROW + count))
    anchor_row = HEADER_ROW + count + len(table.get("notes", [])) + 4
    ws.add_chart(chart, f"A{anchor_row}")


def write_workbook(tables: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    workbook = Workbook()
    taken: set[str] = set()
    first = True
    for table in tables:
        ws = workbook.active if first and workbook.active is not None else workbook.create_sheet()
        first = False
        ws.title = sheet_name(table["name"], taken)
        write_table(ws, table)
    target = Path(path)
    workbook.save(target)
    return target
