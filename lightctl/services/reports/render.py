"""A report's table (its JSON, as the API answers it) as text for a terminal, or as CSV.

Text rounds as each column's kind says (shares as percentages); CSV keeps the numbers as they are
(shares as fractions), one header row of the columns' titles, the total last."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

NONE = "—"


def format_value(value: Any, kind: str) -> str:
    if value is None:
        return NONE
    if kind == "bool":
        return "yes" if value else "no"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind == "int":
        return f"{value:,.0f}"
    if kind in ("kwh", "kg"):
        return f"{value:,.1f}"
    if kind == "number":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    if kind in ("money", "kw"):
        return f"{value:,.2f}"
    return str(value)


def width(text: str) -> int:
    """Columns a terminal gives ``text``: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, size: int, right: bool) -> str:
    gap = " " * max(0, size - width(text))
    return gap + text if right else text + gap


def _cells(row: Mapping[str, Any], columns: Sequence[Mapping[str, str]]) -> list[str]:
    return [format_value(row.get(c["key"]), c["kind"]) for c in columns]


def text(table: Mapping[str, Any]) -> str:
    columns = table["columns"]
    lines = [table["title"]]
    rows = [_cells(r, columns) for r in table["rows"]]
    if not rows:
        lines.append("none")
    else:
        if table.get("total"):
            rows.append(_cells(table["total"], columns))
        header = [c["title"] for c in columns]
        widths = [max(width(header[i]), *(width(r[i]) for r in rows)) for i in range(len(columns))]
        numeric = [c["kind"] not in ("text", "date", "time", "bool") for c in columns]

        def line(cells: list[str]) -> str:
            return "  ".join(_pad(cell, w, num) for cell, w, num in zip(cells, widths, numeric, strict=True)).rstrip()

        lines.append(line(header))
        lines.append("  ".join("-" * w for w in widths))
        lines += [line(r) for r in rows[: len(table["rows"])]]
        if table.get("total"):
            lines.append("  ".join("-" * w for w in widths))
            lines.append(line(rows[-1]))
    lines += [f"  note: {n}" for n in table.get("notes", [])]
    return "\n".join(lines)


def csv_text(table: Mapping[str, Any]) -> str:
    columns = table["columns"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c["title"] for c in columns])
    for row in [*table["rows"], *([table["total"]] if table.get("total") else [])]:
        writer.writerow(["" if row.get(c["key"]) is None else row.get(c["key"]) for c in columns])
    return out.getvalue()
