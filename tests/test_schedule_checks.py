"""Config checks of the schedule section: every problem names the file, the line and the entries."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from test_schedule_support import CONFIG_FILE, installation_config, load_data

from lightctl.config.holidays import load_holiday_files
from lightctl.config.problems import Locator, Problem
from lightctl.inventory.index import Inventory
from lightctl.model.schedule import EntryConfig, ScheduleConfig
from schedules.checks import check_schedule

FILE = str(CONFIG_FILE)


def _check(data: Any) -> list[Problem]:
    config = installation_config(data)
    return check_schedule(config, FILE, Locator(data), Inventory(config), today=date(2026, 1, 1))


def _entry_line(data: Any, index: int) -> int:
    return int(data["schedule"]["entries"].lc.item(index)[0]) + 1


def test_the_default_schedule_passes() -> None:
    assert _check(load_data()) == []


def test_equal_priority_overlap_on_shared_channels_is_refused() -> None:
    data = load_data()
    entries = data["schedule"]["entries"]
    # Give the Spring Festival nights the holiday's priority: both are in force on 17 Feb 2026.
    lantern = next(i for i, e in enumerate(entries) if e["id"] == "lantern-nights")
    holiday = next(i for i, e in enumerate(entries) if e["id"] == "spring-festival-holiday")
    entries[lantern]["priority"] = 30
    (problem,) = _check(data)
    first, second = sorted((lantern, holiday))
    assert problem.file == FILE
    assert problem.line is not None and problem.line > _entry_line(data, second)
    assert problem.path == f"schedule.entries[{second}].priority"
    text = str(problem)
    assert "'lantern-nights'" in text and "'spring-festival-holiday'" in text
    assert f"{FILE}:{_entry_line(data, first)}" in text and f"{FILE}:{_entry_line(data, second)}" in text
    assert "priority 30" in text and "night of 2026-02-17, 18:30 to 23:00" in text
    assert "higher priority" in text


def test_equal_priority_on_disjoint_days_or_channels_is_allowed() -> None:
    data = load_data()
    entries = data["schedule"]["entries"]
    # Same priority as the working-day night, but only on rest days: never together.
    assert [e["priority"] for e in entries if e["id"] in ("normal-night", "restday-night")] == [10, 10]
    # Same priority and the same time, but on channels the other entry does not reach.
    entries.append(
        {"id": "bridge-extra", "days": "daily", "start": "19:30", "end": "21:30", "scene": "all-on",
         "target": "site:qiansimen-bridge", "priority": 5}
    )
    assert _check(data) == []


def test_unknown_scene_selector_and_day_set_are_named() -> None:
    data = load_data()
    entry = data["schedule"]["entries"][1]
    entry["scene"] = "night-normall"
    entry["target"] = "district:yuzhongg"
    entry["days"] = "set:no-such-days"
    problems = _check(data)
    messages = {p.path: p.message for p in problems}
    assert "unknown scene 'night-normall'" in messages["schedule.entries[1].scene"]
    assert "did you mean yuzhong" in messages["schedule.entries[1].target"]
    assert "unknown day set 'no-such-days'" in messages["schedule.entries[1].days"]
    assert all(p.line is not None for p in problems)


def test_day_set_cycles_and_duplicate_entry_ids() -> None:
    data = load_data()
    data["schedule"]["day_sets"]["loop-a"] = ["set:loop-b"]
    data["schedule"]["day_sets"]["loop-b"] = ["set:loop-a"]
    (problem,) = _check(data)
    assert "refers to itself" in problem.message
    data = load_data()
    data["schedule"]["entries"][2]["id"] = "normal-night"
    problems = _check(data)
    assert any("duplicate entry id 'normal-night'" in p.message for p in problems)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("start", "sunsett - 10m", "bad event"),
        ("start", "sunset - 10 parsecs", "bad offset"),
        ("start", "25:00", "bad clock time"),
        ("start", "sunset + 7h", "more than 6:00:00"),
        ("start", {"at": "19:30", "not_before": "18:00"}, "only apply to sun events"),
        ("days", "festival:chongyang", "unknown festival"),
        ("days", "holiday:golden_week", "unknown official holiday"),
        ("days", "season:02-30..03-01", "day is out of range"),
        ("days", "date:2026-10-07..2026-10-01", "ends before it starts"),
        ("days", "fortnightly", "bad day term"),
        ("end", "19:30", "never be in force"),
        ("end", "12:30", "never be in force"),
    ],
)
def test_bad_events_and_day_terms_fail_validation(field: str, value: Any, message: str) -> None:
    entry = {"id": "x", "days": "daily", "start": "19:30", "end": "21:30", "scene": "s", "priority": 1}
    entry[field] = value
    with pytest.raises(ValidationError, match=message):
        EntryConfig.model_validate(entry)


def test_holiday_files_are_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "holidays").mkdir()
    (tmp_path / "holidays" / "2027.yaml").write_text(
        "year: 2027\n"
        "source: test data, not the official 2027 arrangement\n"
        "holidays:\n"
        "  national_day: ['2027-10-01..2027-10-07']\n"
        "makeup_workdays:\n"
        "  national_day: ['2027-09-26']\n",
        encoding="utf-8",
    )
    data = load_data()
    data["schedule"]["holiday_files"] = ["holidays/2027.yaml"]
    config = installation_config(data)
    problems: list[Problem] = []
    loaded = load_holiday_files(config, str(tmp_path / "config.yaml"), Locator(data), problems)
    assert problems == []
    assert [y.year for y in loaded.schedule.official_years] == [2027]


def test_a_bad_holiday_file_is_reported_with_its_own_line(tmp_path: Path) -> None:
    (tmp_path / "2027.yaml").write_text(
        "year: 2027\nholidays:\n  national_day: ['2027-10-01..2027-10-07']\n  golden_week: ['2027-10-08']\n",
        encoding="utf-8",
    )
    data = load_data()
    data["schedule"]["holiday_files"] = ["2027.yaml", "missing.yaml"]
    problems: list[Problem] = []
    load_holiday_files(installation_config(data), str(tmp_path / "config.yaml"), Locator(data), problems)
    bad, missing = problems
    assert bad.file == str(tmp_path / "2027.yaml") and bad.line == 4
    assert "cannot read holiday file" in missing.message and missing.path == "schedule.holiday_files[1]"


def test_the_section_is_optional() -> None:
    assert ScheduleConfig().entries == []
    config = installation_config({**load_data(), "schedule": {}})
    assert config.schedule.entries == []
