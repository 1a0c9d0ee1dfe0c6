"""What every report returns: a table as JSON (the API's answer, the CLI's input for its text,
CSV and spreadsheet output), each column with the kind of figure it holds.

A table is ``{"name", "title", "period", "by", "columns": [{"key", "title", "kind"}], "rows",
"total", "chart", "notes"}``; rows and the total are objects keyed by the columns' keys. A
column's ``kind`` decides its number format everywhere (:data:`KINDS`). Shares are fractions
(0.953, shown 95.3%); energy kWh; money in the tariff's currency; masses kg.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["text", "date", "time", "int", "number", "share", "kwh", "kw", "money", "kg", "bool"]
KINDS: dict[str, str] = {
    "text": "@",
    "date": "yyyy-mm-dd",
    "time": "@",
    "int": "#,##0",
    "number": "#,##0.00",
    "share": "0.0%",
    "kwh": "#,##0.0",
    "kw": "#,##0.00",
    "money": "#,##0.00",
    "kg": "#,##0.0",
    "bool": "@",
}
"""Each kind's number format (Excel's notation, also how the text output rounds)."""


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    kind: Kind = "text"

    def as_json(self) -> dict[str, str]:
        return {"key": self.key, "title": self.title, "kind": self.kind}


@dataclass(slots=True)
class Table:
    name: str
    """Short, unique within a workbook: the sheet's name (at most 31 characters)."""
    title: str
    columns: Sequence[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] | None = None
    period: Mapping[str, str] | None = None
    by: str | None = None
    chart: Mapping[str, Any] | None = None
    """For energy: ``{"category": key, "values": [keys]}``, a column chart of those columns."""
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "period": dict(self.period) if self.period is not None else None,
            "by": self.by,
            "columns": [c.as_json() for c in self.columns],
            "rows": self.rows,
            "total": self.total,
            "chart": dict(self.chart) if self.chart is not None else None,
            "notes": self.notes,
        }


def share(part: float, whole: float) -> float | None:
    """A rate as a fraction (4 decimals), None when there is nothing to divide by."""
    return round(part / whole, 4) if whole else None


def met(value: float | None, target: float | None) -> bool | None:
    """Whether a figure meets its target; None when either is missing."""
    if value is None or target is None:
        return None
    return value >= target - 1e-9
