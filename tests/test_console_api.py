"""The routes the console adds (web.console_api: sites, the schedule's nights) and how its build is
served (web.console_static), without a browser."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from lightctl.runtime.daemon import Daemon
from schedules.builder import build as build_schedule
from tests.conftest import build_config
from tests.test_all_protocols import shipped_config_data
from web.app import create_app
from web.console_api import festivals_between
from web.console_static import IMMUTABLE, NO_CACHE, ConsoleFiles, respond

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 2, 10, 15, 0, tzinfo=SHANGHAI)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    from ruamel.yaml import YAML

    from tests.conftest import ROOT

    data = shipped_config_data()
    shipped = YAML(typ="safe").load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["schedule"], data["shows"] = shipped["schedule"], shipped["shows"]
    config = build_config(data)
    daemon = Daemon(config, database=tmp_path / "api.db", clock=NOW.timestamp)
    daemon.schedule = build_schedule(config, daemon.inventory)
    async with TestClient(TestServer(create_app(daemon, local_credential="secret")), headers={"Authorization": "Bearer secret"}) as test_client:
        yield test_client
    await daemon.stop()


async def test_the_nights_of_a_month_carry_holidays_make_up_days_festivals_shows_and_transitions(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/v1/schedule/nights", params={"month": "2026-02"})
    assert response.status == 200
    answer = await response.json()
    nights = {n["date"]: n for n in answer["nights"]}
    assert len(nights) == 28 and answer["from"] == "2026-02-01" and answer["today"] == "2026-02-10"
    assert nights["2026-02-17"]["holiday"] == "spring_festival" and not nights["2026-02-17"]["workday"]
    assert nights["2026-02-14"]["makeup_workday"] and nights["2026-02-14"]["workday"]  # a Saturday worked (调休)
    assert "new_years_eve" in nights["2026-02-16"]["festivals"] and "spring_festival" in nights["2026-02-17"]["festivals"]
    assert "xiaonian" in nights["2026-02-10"]["festivals"]
    assert all(not n["estimated"] for n in nights.values())  # 2026's arrangement is published
    assert "confluence-classic" in nights["2026-02-10"]["shows"]  # started by its schedule entry every night
    starts = [t for t in nights["2026-02-10"]["transitions"] if t["action"] == "start" and t["target"] == "*"]
    assert starts and starts[0]["at"].endswith("+08:00")
    assert answer["next_change"] is not None and answer["next_change"].startswith("2026-02-10T")


async def test_nights_from_tonight_and_refusals(client: TestClient[Any, Any]) -> None:
    answer = await (await client.get("/api/v1/schedule/nights", params={"days": "1"})).json()
    assert [n["date"] for n in answer["nights"]] == ["2026-02-10"]
    this_month = await (await client.get("/api/v1/schedule/nights")).json()
    assert this_month["from"] == "2026-02-01" and this_month["days"] == 28
    for bad in ({"month": "2026-13"}, {"month": "Feb"}, {"from": "10/02/2026"}, {"days": "0"}, {"days": "63"}, {"days": "x"}):
        response = await client.get("/api/v1/schedule/nights", params=bad)
        assert response.status == 400, bad
        assert "error" in await response.json()


async def test_sites_have_their_coordinates_and_controllers(client: TestClient[Any, Any]) -> None:
    answer = await (await client.get("/api/v1/sites")).json()
    sites = {s["id"]: s for d in answer["districts"] for s in d["sites"]}
    assert sites["chaotianmen-square"]["location"] == {"lat": 29.566, "lon": 106.587}
    assert [c["id"] for c in sites["chaotianmen-square"]["controllers"]][:1] == ["ctm-sq-01"]
    assert answer["installation"]["name_en"].startswith("Chongqing")


def test_lunar_festivals_of_a_span() -> None:
    found = festivals_between(datetime(2027, 2, 1).date(), datetime(2027, 2, 28).date())
    assert {name for names in found.values() for name in names} >= {"new_years_eve", "spring_festival", "lantern"}


def test_the_build_is_served_with_cache_headers_gzip_and_never_outside_its_folder(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><script src='/assets/index-abcd1234.js'></script>" * 20)
    (dist / "assets" / "index-abcd1234.js").write_text("console.log('lit');" * 100)
    (tmp_path / "secret.txt").write_text("no")
    files = ConsoleFiles(dist)
    asset = files.get("assets/index-abcd1234.js")
    assert asset is not None and files.get("assets/../../secret.txt") is None and files.get("assets/missing.js") is None
    zipped = respond(make_mocked_request("GET", "/assets/index-abcd1234.js", headers={"Accept-Encoding": "gzip, br"}), asset, IMMUTABLE)
    assert zipped.headers["Content-Encoding"] == "gzip" and zipped.headers["Cache-Control"] == IMMUTABLE
    assert zipped.body is not None and gzip.decompress(zipped.body) == asset.body  # type: ignore[arg-type]
    plain = respond(make_mocked_request("GET", "/assets/index-abcd1234.js"), asset, IMMUTABLE)
    assert "Content-Encoding" not in plain.headers and plain.body == asset.body
    index = files.get("index.html")
    assert index is not None
    again = respond(make_mocked_request("GET", "/", headers={"If-None-Match": index.etag}), index, NO_CACHE)
    assert again.status == 304 and again.headers["Cache-Control"] == NO_CACHE
    assert ConsoleFiles(tmp_path / "not-built").get("index.html") is None


async def test_a_command_id_beyond_sqlites_integers_is_not_found(client: TestClient[Any, Any]) -> None:
    """Found by the API fuzzing test in this session's run: such an id reached SQLite and was a 500."""
    response = await client.get("/api/v1/commands/388318545149183418957824")
    assert response.status == 404 and "no command" in (await response.json())["error"]
