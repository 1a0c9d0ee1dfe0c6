"""The ``schedule:`` section of config.yaml.

Events and day-set terms are written as short strings in YAML and parsed here, at validation time,
so that a typo is reported with its file and line like any other config error.

The operating day runs noon to noon (as in the TALQ calendar model): an entry of day D starts and
ends within [D 12:00, D+1 12:00). Clock times before 12:00 are on the morning after D; sunset and
dusk are D's, sunrise and dawn the next morning's. A night that starts at sunset and ends at 01:00
therefore belongs to the evening it started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any, Literal, get_args

from pydantic import ConfigDict, Field, field_validator, model_validator

from lightctl.model.installation import ID_PATTERN, Frozen, Ident

# --------------------------------------------------------------------------- events

ASTRO_EVENTS = ("sunset", "dusk", "sunrise", "dawn")
"""dusk and dawn are civil (sun 6 degrees below the horizon)."""
EVENING_EVENTS = frozenset({"sunset", "dusk"})
MAX_OFFSET = timedelta(hours=6)

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_OFFSET = re.compile(r"([+-])\s*(\d+)\s*(h|min|m|s)\b")
_UNIT_S = {"h": 3600, "min": 60, "m": 60, "s": 1}


def parse_clock(text: str) -> time:
    match = _CLOCK.match(text.strip())
    if not match:
        raise ValueError(f"bad clock time {text!r}: expected HH:MM or HH:MM:SS")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"bad clock time {text!r}")
    return time(hour, minute, second)


def clock_in_day(value: time) -> timedelta:
    """Offset of a clock time from 00:00 of the operating day's date (before noon: the morning after)."""
    offset = timedelta(hours=value.hour, minutes=value.minute, seconds=value.second)
    return offset + timedelta(days=1) if value.hour < 12 else offset


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    base: str  # "clock" or one of ASTRO_EVENTS
    clock: time | None
    offset: timedelta
    not_before: time | None
    not_after: time | None
    text: str


def parse_event(text: str, not_before: str | None = None, not_after: str | None = None) -> ParsedEvent:
    raw = text.strip()
    label = raw
    lo = parse_clock(not_before) if not_before is not None else None
    hi = parse_clock(not_after) if not_after is not None else None
    if lo is not None and hi is not None and clock_in_day(lo) > clock_in_day(hi):
        raise ValueError(f"not_before {not_before} is after not_after {not_after} in the operating day")
    if lo is not None:
        label += f" not before {not_before}"
    if hi is not None:
        label += f" not after {not_after}"
    if _CLOCK.match(raw):
        if lo is not None or hi is not None:
            raise ValueError(f"{raw!r} is a clock time: not_before/not_after only apply to sun events")
        return ParsedEvent("clock", parse_clock(raw), timedelta(0), None, None, label)
    name = re.match(r"^[a-z_]+", raw)
    if not name or name[0] not in ASTRO_EVENTS:
        raise ValueError(
            f"bad event {raw!r}: expected HH:MM or one of {', '.join(ASTRO_EVENTS)} "
            "with optional offsets like 'sunset - 10m' or 'dusk+1h30m'"
        )
    rest = raw[name.end() :].strip()
    offset = timedelta(0)
    position = 0
    for match in _OFFSET.finditer(rest):
        if rest[position : match.start()].strip():
            break
        seconds = int(match[2]) * _UNIT_S[match[3]]
        offset += timedelta(seconds=seconds if match[1] == "+" else -seconds)
        position = match.end()
    if rest[position:].strip():
        raise ValueError(
            f"bad offset {rest[position:]!r} in event {raw!r}: expected e.g. '-10m', '+1h', '+30s'"
        )
    if abs(offset) > MAX_OFFSET:
        raise ValueError(f"offset of {raw!r} is more than {MAX_OFFSET} from the event")
    return ParsedEvent(name[0], None, offset, lo, hi, label)


class EventSpec(Frozen):
    """``"19:30"``, ``"sunset-10m"``, or ``{at: "sunset-10m", not_before: "18:30"}``."""

    at: str
    not_before: str | None = None
    not_after: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"at": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _parses(self) -> EventSpec:
        parse_event(self.at, self.not_before, self.not_after)
        return self

    @property
    def parsed(self) -> ParsedEvent:
        return parse_event(self.at, self.not_before, self.not_after)


# --------------------------------------------------------------------------- day sets

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HolidayName = Literal[
    "new_years_day",
    "spring_festival",
    "tomb_sweeping_day",
    "labour_day",
    "dragon_boat_festival",
    "national_day",
    "mid_autumn_festival",
    "anti_fascist_70th_day",
]
OFFICIAL_HOLIDAYS: tuple[str, ...] = get_args(HolidayName)
LUNAR_FESTIVALS: dict[str, tuple[int, int]] = {
    "laba": (12, 8),  # 腊八
    "xiaonian": (12, 23),  # 小年 (腊月二十三, the northern date that the DOMAIN notes use)
    "spring_festival": (1, 1),  # 春节
    "lantern": (1, 15),  # 元宵
    "longtaitou": (2, 2),  # 龙抬头
    "dragon_boat": (5, 5),  # 端午
    "qixi": (7, 7),  # 七夕
    "zhongyuan": (7, 15),  # 中元
    "mid_autumn": (8, 15),  # 中秋
    "double_ninth": (9, 9),  # 重阳
}
NEW_YEARS_EVE = "new_years_eve"  # 除夕: the last day of lunar month 12 (29th or 30th)
FESTIVALS = (*LUNAR_FESTIVALS, NEW_YEARS_EVE)

SIMPLE_TERMS = frozenset({"daily", "weekdays", "weekends", "workday", "restday", "holiday", "makeup-workday"})

_POINT = re.compile(r"^(festival|lunar):([a-z_]+|\d{1,2}-\d{1,2})\s*(?:([+-])\s*(\d{1,3})d?)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class LunarPoint:
    """A day fixed by the lunar calendar: a festival or a lunar month-day, plus N days."""

    festival: str | None
    month: int
    day: int
    shift: int
    text: str


@dataclass(frozen=True, slots=True)
class Term:
    kind: str  # simple term name, "weekday", "holiday", "lunar", "lunar-range", "dates", "season", "set"
    text: str
    weekday: int | None = None
    name: str | None = None
    start: LunarPoint | None = None
    end: LunarPoint | None = None
    first: date | None = None
    last: date | None = None
    season: tuple[tuple[int, int], tuple[int, int]] | None = None


def _lunar_point(text: str) -> LunarPoint:
    match = _POINT.match(text.strip())
    if not match:
        raise ValueError(f"bad lunar day {text!r}: expected festival:NAME[+-N] or lunar:M-D[+-N]")
    kind, value, sign, days = match[1], match[2], match[3], match[4]
    shift = (int(days) if sign == "+" else -int(days)) if days else 0
    if kind == "festival":
        if value not in FESTIVALS:
            raise ValueError(f"unknown festival {value!r} in {text!r}: known are {', '.join(FESTIVALS)}")
        month, day = LUNAR_FESTIVALS.get(value, (12, 30))
        return LunarPoint(value, month, day, shift, text.strip())
    parts = value.split("-")
    if len(parts) != 2:
        raise ValueError(f"bad lunar date {value!r} in {text!r}: expected M-D, e.g. lunar:12-23")
    month, day = int(parts[0]), int(parts[1])
    if not (1 <= month <= 12 and 1 <= day <= 30):
        raise ValueError(f"bad lunar date {value!r} in {text!r}: month 1-12, day 1-30")
    return LunarPoint(None, month, day, shift, text.strip())


def _iso(text: str) -> date:
    if not _DATE.match(text.strip()):
        raise ValueError(f"bad date {text!r}: expected YYYY-MM-DD")
    return date.fromisoformat(text.strip())


def parse_term(text: str) -> Term:
    raw = text.strip()
    if raw in SIMPLE_TERMS:
        return Term(raw, raw)
    if raw in WEEKDAY_NAMES:
        return Term("weekday", raw, weekday=WEEKDAY_NAMES.index(raw))
    kind, sep, value = raw.partition(":")
    if not sep:
        raise ValueError(
            f"bad day term {raw!r}: expected one of {', '.join(sorted(SIMPLE_TERMS))}, mon..sun, "
            "holiday:NAME, festival:NAME[..festival:NAME], lunar:M-D[..lunar:M-D], date:YYYY-MM-DD[..YYYY-MM-DD], "
            "season:MM-DD..MM-DD or set:NAME"
        )
    value = value.strip()
    if kind == "holiday":
        if value not in OFFICIAL_HOLIDAYS:
            raise ValueError(f"unknown official holiday {value!r}: known are {', '.join(OFFICIAL_HOLIDAYS)}")
        return Term("holiday", raw, name=value)
    if kind == "set":
        if not re.match(ID_PATTERN, value):
            raise ValueError(f"bad day-set name {value!r}")
        return Term("set", raw, name=value)
    if kind in ("festival", "lunar"):
        first, dots, last = raw.partition("..")
        start = _lunar_point(first)
        if not dots:
            return Term("lunar", raw, start=start)
        return Term("lunar-range", raw, start=start, end=_lunar_point(last))
    if kind == "date":
        first, dots, last = value.partition("..")
        start_day = _iso(first)
        end_day = _iso(last) if dots else start_day
        if end_day < start_day:
            raise ValueError(f"date range {raw!r} ends before it starts")
        return Term("dates", raw, first=start_day, last=end_day)
    if kind == "season":
        first, dots, last = value.partition("..")
        bounds = []
        for part in (first, last) if dots else ():
            match = _MONTH_DAY.match(part.strip())
            if not match:
                break
            month, day = int(match[1]), int(match[2])
            date(2000, month, day)  # raises ValueError for 02-30 and the like (2000 is a leap year)
            bounds.append((month, day))
        if len(bounds) != 2:
            raise ValueError(f"bad season {raw!r}: expected season:MM-DD..MM-DD, e.g. season:05-01..09-30")
        return Term("season", raw, season=(bounds[0], bounds[1]))
    raise ValueError(f"unknown kind of day term {kind!r} in {raw!r}")


class DaySetSpec(Frozen):
    """(union of ``any``, or every day) ∩ each of ``all`` − union of ``except``.

    Written as one term (``"weekdays"``), a list of terms (a union), or a mapping."""

    any: list[str] = []
    all: list[str] = []
    except_: list[str] = Field(default=[], alias="except")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"any": [data]}
        if isinstance(data, list):
            return {"any": data}
        return data

    @field_validator("any", "all", "except_")
    @classmethod
    def _terms_parse(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_term(value)
        return values

    def terms(self) -> list[Term]:
        return [parse_term(t) for t in (*self.any, *self.all, *self.except_)]


# --------------------------------------------------------------------------- official calendar data


def _date_list(values: list[str]) -> list[date]:
    out: list[date] = []
    for value in values:
        first, dots, last = str(value).partition("..")
        start = _iso(first)
        end = _iso(last) if dots else start
        if end < start or (end - start).days > 40:
            raise ValueError(f"bad date range {value!r}")
        out += [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return out



class OfficialYear(Frozen):
    """One year of the State Council's holiday arrangement (国务院办公厅 节假日安排), for years the
    chinesecalendar package does not know yet. Dates are ``YYYY-MM-DD`` or ``YYYY-MM-DD..YYYY-MM-DD``."""

    year: int = Field(ge=2000, le=2100)
    source: str | None = Field(default=None, description="the notice these dates were copied from")
    holidays: dict[HolidayName, list[str]]
    makeup_workdays: dict[HolidayName, list[str]] = {}

    @model_validator(mode="after")
    def _dates_parse(self) -> OfficialYear:
        for group in (self.holidays, self.makeup_workdays):
            for days in group.values():
                for day in _date_list(days):
                    if abs(day.year - self.year) > 1:
                        raise ValueError(f"{day} is far from the year {self.year}")
        return self

    def holiday_days(self) -> dict[date, str]:
        return {day: name for name, days in self.holidays.items() for day in _date_list(days)}

    def workday_days(self) -> dict[date, str]:
        return {day: name for name, days in self.makeup_workdays.items() for day in _date_list(days)}


# --------------------------------------------------------------------------- entries


class EntryConfig(Frozen):
    """On the days of ``days``, from ``start`` to ``end``, ``scene`` on ``target`` at ``priority``."""

    id: Ident
    description: str | None = None
    days: DaySetSpec
    start: EventSpec
    end: EventSpec
    scene: str
    target: str = "*"
    priority: int = Field(ge=0, le=1000, description="higher wins")

    @model_validator(mode="after")
    def _clock_order(self) -> EntryConfig:
        start, end = self.start.parsed, self.end.parsed
        if start.clock is not None and end.clock is not None and clock_in_day(start.clock) >= clock_in_day(end.clock):
            raise ValueError(
                f"end {self.end.at} is not after start {self.start.at} in the operating day (noon to noon: "
                "times before 12:00 are the next morning), so the entry would never be in force"
            )
        return self


class AstronomyConfig(Frozen):
    own_times_beyond_km: float = Field(
        default=5.0,
        ge=0,
        description="sites farther than this from the installation's location get their own sun times",
    )


class ScheduleConfig(Frozen):
    astronomy: AstronomyConfig = AstronomyConfig()
    holiday_files: list[str] = Field(
        default=[], description="YAML files of OfficialYear, relative to config.yaml; read at load time"
    )
    official_years: list[OfficialYear] = []
    day_sets: dict[str, DaySetSpec] = {}
    entries: list[EntryConfig] = []
    default_scene: str | None = Field(
        default=None,
        description="the scene in force wherever no entry is (default: everything off); with hand-back "
        "rules, e.g. the owners' BMS runs the towers' facades outside the centre's hours",
    )
    check_years: int = Field(default=2, ge=0, le=20, description="overlap check: this year and N more")

    @field_validator("day_sets")
    @classmethod
    def _names(cls, value: dict[str, DaySetSpec]) -> dict[str, DaySetSpec]:
        for name in value:
            if not re.match(ID_PATTERN, name):
                raise ValueError(f"bad day-set name {name!r}")
        return value
