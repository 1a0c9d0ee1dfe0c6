"""``lightctl schedule preview``: text and JSON, filtered by selector, from a real config file."""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime
from pathlib import Path

import pytest
from test_schedule_support import installation_config, schedule_of

from lightctl.cli import schedule as cli
from schedules.preview import as_json, preview, table

MINIMAL = """\
installation:
  name: 测试
  name_en: Test
  location: {lat: 29.5686, lon: 106.5804}
districts:
  - id: yuzhong
    name: 渝中
    name_en: Yuzhong
    sites:
      - id: hongyadong
        name: 洪崖洞
        name_en: Hongyadong
        location: {lat: 29.5637, lon: 106.5787}
        legacy:
          - {id: tc1, luminaires: {count: 10, kind: landscape, led: true, watts: 20}}
schedule:
  entries:
    - id: weekday-night
      days: workday
      start: {at: "sunset - 10m", not_before: "18:45"}
      end: "21:30"
      scene: all-on
      priority: 10
    - id: holiday-night
      days: "holiday:spring_festival"
      start: "18:30"
      end: "01:00"
      scene: all-on
      priority: 20
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightctl")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    code: int = args.func(args)
    return code


def test_preview_lists_every_transition_in_order_with_offset_and_reason() -> None:
    schedule, inventory = schedule_of(installation_config())
    rows = preview(schedule, inventory, date(2026, 2, 16), 2)
    assert [r.at for r in rows] == sorted(r.at for r in rows)
    assert all(r.at.isoformat().endswith("+08:00") for r in rows)
    first_night = [r for r in rows if r.entry == "spring-festival-holiday"]
    assert [(r.at.isoformat(), r.action, r.scene, r.target, r.reason) for r in first_night] == [
        ("2026-02-16T18:30:00+08:00", "start", "night-festival", "*", "spring-festival-holiday: 18:30"),
        ("2026-02-17T01:00:00+08:00", "end", "night-festival", "*", "spring-festival-holiday: 01:00"),
        ("2026-02-17T18:30:00+08:00", "start", "night-festival", "*", "spring-festival-holiday: 18:30"),
        ("2026-02-18T01:00:00+08:00", "end", "night-festival", "*", "spring-festival-holiday: 01:00"),
    ]
    text = table(rows)
    assert "2026-02-16T18:30:00+08:00  start  night-festival" in text


def test_preview_filtered_by_selector() -> None:
    schedule, inventory = schedule_of(installation_config())
    rows = preview(schedule, inventory, date(2026, 3, 9), 1, target="site:nanbin-road")
    entries = {r.entry for r in rows}
    # Monday 9 Mar: maintenance night in Nan'an, street lights, and the rest of the night (on '*').
    assert entries == {"nanan-maintenance", "street-dusk-to-dawn", "normal-night"}
    assert not any(r.entry == "confluence-show" for r in rows)
    js = as_json(rows)
    assert {"at", "scene", "target", "reason"} <= js[0].keys()
    assert datetime.fromisoformat(js[0]["at"]).utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]


def test_cli_json_from_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert _run(["schedule", "preview", "--config", str(path), "--from", "2026-02-13", "--days", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(row["at"], row["scene"], row["target"], row["reason"]) for row in out] == [
        # Friday 13 Feb: a working day; sunset 18:40:51, minus 10 minutes, is clamped to 18:45.
        ("2026-02-13T18:45:00+08:00", "all-on", "*", "weekday-night: sunset - 10m not before 18:45"),
        ("2026-02-13T21:30:00+08:00", "all-on", "*", "weekday-night: 21:30"),
        # Saturday 14 Feb is a make-up working day.
        ("2026-02-14T18:45:00+08:00", "all-on", "*", "weekday-night: sunset - 10m not before 18:45"),
        ("2026-02-14T21:30:00+08:00", "all-on", "*", "weekday-night: 21:30"),
        # Sunday 15 Feb: the holiday starts; its night runs to 01:00.
        ("2026-02-15T18:30:00+08:00", "all-on", "*", "holiday-night: 18:30"),
        ("2026-02-16T01:00:00+08:00", "all-on", "*", "holiday-night: 01:00"),
    ]


def test_cli_text_and_calendar_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert _run(["schedule", "preview", "--config", str(path), "--from", "2026-12-31", "--days", "3"]) == 0
    captured = capsys.readouterr()
    assert "arrangement for 2027 is not known" in captured.err
    assert "official holiday calendar: 2004-2026" in captured.out
    start_2026 = next(line for line in captured.out.splitlines() if "2026-12-31T18:45:00+08:00  start" in line)
    assert "[holidays estimated]" not in start_2026  # 2026's arrangement is published
    # New Year's Day 2027 is a holiday (estimated from the law): no working-day night, and said so.
    assert "2027-01-01T" not in captured.out
    assert "  2027-01-01 (Fri) new_years_day, holidays estimated" in captured.out
    assert "  2027-01-02 (Sat) rest day, holidays estimated" in captured.out
    assert _run(["schedule", "preview", "--config", str(path), "--from", "2027-01-04", "--days", "1"]) == 0
    assert "[holidays estimated]" in capsys.readouterr().out
    assert _run(["schedule", "preview", "--config", str(path), "--from", "2026-12-30", "--days", "7", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["at"][:10]: row["estimated"] for row in rows} == {"2026-12-30": False, "2026-12-31": False, "2027-01-04": True, "2027-01-05": True}


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert _run(["schedule", "preview", "--config", str(path), "--target", "site:nowhere"]) == 2
    assert "unknown site 'nowhere'" in capsys.readouterr().err
    path.write_text(MINIMAL.replace("scene: all-on", "scene: al-on", 1), encoding="utf-8")
    assert _run(["schedule", "preview", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown scene 'al-on'" in err and f"{path}:" in err
    with pytest.raises(SystemExit):
        _parser().parse_args(["schedule", "preview", "--days", "0"])
