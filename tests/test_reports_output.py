"""The reports through the running daemon: the API (in the OpenAPI document), the CLI's table, CSV
and JSON, and the bureau's monthly workbook, whose every number is the JSON's."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import free_port, installation_data, local_secret, modbus_controller, with_endpoints
from openpyxl import load_workbook
from test_cli import lightctl

from lightctl.model.values import ChannelReading, ControllerReading
from lightctl.process.service import start_daemon
from lightctl.resolve.loading import load_config
from lightctl.services.reports.workbook import HEADER_ROW
from lightctl.store.inspections import ClassRow, Inspection, SiteRow
from lightctl.store.migrate import known_migrations, migrate
from lightctl.store.records import Store
from web.app import bound_port


async def running(make_farm: Any, tmp_path: Path) -> tuple[Any, Any, Path]:
    port = free_port()
    data = installation_data([modbus_controller(f"c{i}", i, channels=2) for i in range(4)], per_site=2, api_port=port,
                             database=str(tmp_path / "out.db"))
    farm, _ = await make_farm(data)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(with_endpoints(data, farm.endpoints), ensure_ascii=False), encoding="utf-8")
    daemon, runner = await start_daemon(load_config(config_path))
    return daemon, runner, config_path


async def january(daemon: Any) -> None:
    """A night of readings on 15 January 2027 (c0: metered, the others estimated) and one inspection."""
    start = datetime(2027, 1, 15, 18, 0, tzinfo=daemon.tz).timestamp()
    counter = 0.0
    for step in range(0, 6 * 12 + 1):
        on = {"c1": ChannelReading(on=True, level=80.0), "c2": ChannelReading(on=True, level=40.0)}
        if step:
            counter += 0.05
        for cid in ("c0", "c1", "c2", "c3"):
            daemon.store.observations.record_reading(
                cid, ControllerReading(start + step * 300, on, 600.0 if cid == "c0" else None, counter if cid == "c0" else None)
            )
    await daemon.store.flush()
    at = round(datetime(2027, 1, 15, 22, 0, tzinfo=daemon.tz).timestamp() * 1000)
    await daemon.store.inspections.add(Inspection(at, "22:00", "test", [
        ClassRow("site-0", "d1", "main_city", "landscape", 30, 30, 28.5, 0, 1.5),
        ClassRow("site-1", "d2", "main_city", "landscape", 30, 30, 30, 0, 0),
    ], [SiteRow("site-0", "d1", "main_city", 2, 2), SiteRow("site-1", "d2", "main_city", 2, 1)]))


def cell_value(value: Any, kind: str) -> Any:
    if kind == "date" and isinstance(value, str) and len(value) == 10:  # a total's label stays text
        return date.fromisoformat(value)
    return value


def sheet_rows(ws: Any, columns: list[dict[str, str]], count: int) -> list[list[Any]]:
    out = []
    for row in ws.iter_rows(min_row=HEADER_ROW + 1, max_row=HEADER_ROW + count, max_col=len(columns), values_only=True):
        out.append([v.date() if isinstance(v, datetime) else v for v in row])
    return out


async def test_the_monthly_workbook_holds_the_jsons_numbers(make_farm: Any, tmp_path: Path) -> None:
    daemon, runner, config_path = await running(make_farm, tmp_path)
    try:
        await january(daemon)
        base = ["--config", str(config_path), "report", "monthly", "--month", "2027-01"]
        code, out, err = await lightctl(*base, "--json")
        assert code == 0, err
        answer = json.loads(out)
        book_path = tmp_path / "monthly.xlsx"
        code, out, err = await lightctl(*base, "--output", str(book_path))
        assert code == 0 and "8 sheets" in out, (out, err)
    finally:
        await runner.cleanup()
        await daemon.stop()
    book = load_workbook(book_path)
    tables = answer["tables"]
    assert book.sheetnames == [t["name"] for t in tables]
    energy = next(t for t in tables if t["name"] == "energy by district")
    assert energy["total"]["kwh"] > 0 and energy["total"]["metered_kwh"] == pytest.approx(0.05 * 72)
    for table in tables:
        ws = book[table["name"]]
        columns = table["columns"]
        assert ws.cell(row=1, column=1).value == table["title"]
        assert [ws.cell(row=HEADER_ROW, column=i + 1).value for i in range(len(columns))] == [c["title"] for c in columns]
        expected = [[cell_value(row.get(c["key"]), c["kind"]) for c in columns] for row in table["rows"]]
        if table["total"]:
            expected.append([cell_value(table["total"].get(c["key"]), c["kind"]) for c in columns])
        assert sheet_rows(ws, columns, len(expected)) == expected, table["name"]
        for index, column in enumerate(columns, start=1):
            if column["kind"] == "share" and expected:
                assert ws.cell(row=HEADER_ROW + 1, column=index).number_format == "0.0%"
        assert bool(ws._charts) == (table["chart"] is not None and bool(table["rows"])), table["name"]
    rates = book["rates"]
    shares = [c.value for c in rates["E"][HEADER_ROW:] if isinstance(c.value, float)]
    assert shares and all(0 <= v <= 1 for v in shares)  # real fractions, shown as percentages


async def test_the_api_and_the_cli_answer_the_same_figures(make_farm: Any, tmp_path: Path) -> None:
    daemon, runner, config_path = await running(make_farm, tmp_path)
    try:
        await january(daemon)
        url = f"http://127.0.0.1:{bound_port(runner)}"
        headers = {"Authorization": f"Bearer {local_secret(daemon.store.path)}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.get(f"{url}/api/v1/openapi.json") as response:
                paths = (await response.json())["paths"]
            assert {"/api/v1/reports/rates", "/api/v1/reports/lighting-on", "/api/v1/reports/energy", "/api/v1/reports/forecast",
                    "/api/v1/reports/workorders", "/api/v1/reports/monthly", "/api/v1/reports/curtail"} <= set(paths)
            assert paths["/api/v1/reports/energy"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["required"]
            async with session.get(f"{url}/api/v1/reports/energy", params={"from": "2027-01-15", "to": "2027-01-15", "by": "hour"}) as response:
                api_table = await response.json()
            async with session.get(f"{url}/api/v1/reports/energy", params={"by": "fortnight"}) as response:
                assert response.status == 400 and "fortnight" in (await response.json())["error"]
            async with session.get(f"{url}/api/v1/metrics") as response:
                assert (await response.json())["inventory"]["all"]["luminaires"] == 4 * 30
        base = ["--config", str(config_path), "report", "energy", "--from", "2027-01-15", "--to", "2027-01-15", "--by", "hour"]
        code, out, _ = await lightctl(*base, "--json")
        assert code == 0 and json.loads(out) == api_table
        code, out, _ = await lightctl(*base, "--format", "csv")
        rows = list(csv.reader(io.StringIO(out)))
        assert rows[0] == [c["title"] for c in api_table["columns"]]
        assert [float(r[2]) for r in rows[1:-1]] == [r["kwh"] for r in api_table["rows"]]
        code, out, _ = await lightctl(*base)
        assert code == 0 and "2027-01-15T19:00+08:00" in out and "合计 total" in out
        code, out, err = await lightctl("--config", str(config_path), "report", "rates", "--by", "day")
        assert code == 2 and "rates are grouped by one of site, district, region, area, not 'day'" in err
        code, out, _ = await lightctl("--config", str(config_path), "report", "curtail", "--target", "site:site-0", "--level", "50", "--json")
        assert code == 0 and json.loads(out)["target"] == "site:site-0"
        code, out, _ = await lightctl("--config", str(config_path), "report", "lighting-on", "--from", "2027-01", "--by", "day")
        assert code == 0 and "2027-01-15" in out
    finally:
        await runner.cleanup()
        await daemon.stop()


async def test_a_database_of_the_lightctl_before_reports_is_brought_along(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path), [m for m in known_migrations() if m.version < 10])
    conn.execute("INSERT INTO readings (at, controller_id, power_w, energy_kwh) VALUES (1798000000000, 'c1', 500.0, 12.5)")
    conn.close()
    store = Store(path)
    await asyncio.to_thread(store.open)
    try:
        (kept,) = await store.observations.readings("c1")
        assert (kept.at, kept.energy_kwh) == (1798000000000, 12.5)
        tables = {r["name"] for r in await store.read("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        assert {"energy_hours", "energy_days", "energy_months", "meter_marks", "lighting_inspections",
                "readings_hour_controller"} <= tables and "readings_controller" not in tables
    finally:
        await asyncio.to_thread(store.close)
