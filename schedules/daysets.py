"""Day sets evaluated a year at a time: ``dates(year) -> frozenset[date]``, cached."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from lightctl.model.schedule import DaySetSpec, Term, parse_term
from schedules.calendars import OfficialCalendar, point_date


class DaySetError(ValueError):
    pass


def _year_days(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]


class DaySets:
    """Evaluates day-set specs (and the named ones they refer to with ``set:NAME``)."""

    def __init__(self, named: Mapping[str, DaySetSpec], official: OfficialCalendar) -> None:
        self.named = dict(named)
        self.official = official
        self._cache: dict[tuple[int, int], frozenset[date]] = {}
        self._term_cache: dict[tuple[str, int], frozenset[date]] = {}
        self._specs: dict[int, DaySetSpec] = {}
        for name in self.named:
            self._check_cycles(name, ())

    def _check_cycles(self, name: str, chain: tuple[str, ...]) -> None:
        if name in chain:
            raise DaySetError(f"day set {name!r} refers to itself: {' -> '.join((*chain, name))}")
        spec = self.named.get(name)
        if spec is None:
            raise DaySetError(f"unknown day set {name!r} (known: {', '.join(sorted(self.named)) or 'none'})")
        for term in spec.terms():
            if term.kind == "set" and term.name is not None:
                self._check_cycles(term.name, (*chain, name))

    def check(self, spec: DaySetSpec) -> None:
        """Raise DaySetError for references to unknown named sets."""
        for term in spec.terms():
            if term.kind == "set" and term.name is not None and term.name not in self.named:
                raise DaySetError(
                    f"unknown day set {term.name!r} in {term.text!r} "
                    f"(known: {', '.join(sorted(self.named)) or 'none'})"
                )

    def contains(self, spec: DaySetSpec, day: date) -> bool:
        return day in self.dates(spec, day.year)

    def dates(self, spec: DaySetSpec, year: int) -> frozenset[date]:
        key = (id(spec), year)
        found = self._cache.get(key)
        if found is None:
            self._specs[id(spec)] = spec  # keeps id() stable for the cache's lifetime
            if spec.any:
                result: set[date] = set()
                for text in spec.any:
                    result |= self._term(text, year)
            else:
                result = set(_year_days(year))
            for text in spec.all:
                result &= self._term(text, year)
            for text in spec.except_:
                result -= self._term(text, year)
            found = frozenset(result)
            self._cache[key] = found
        return found

    def _term(self, text: str, year: int) -> frozenset[date]:
        key = (text, year)
        found = self._term_cache.get(key)
        if found is None:
            found = frozenset(self._evaluate(parse_term(text), year))
            self._term_cache[key] = found
        return found

    def _evaluate(self, term: Term, year: int) -> set[date]:
        days = _year_days(year)
        official = self.official
        match term.kind:
            case "daily":
                return set(days)
            case "weekdays":
                return {d for d in days if d.weekday() < 5}
            case "weekends":
                return {d for d in days if d.weekday() >= 5}
            case "weekday":
                return {d for d in days if d.weekday() == term.weekday}
            case "workday":
                return {d for d in days if official.is_workday(d)}
            case "restday":
                return {d for d in days if not official.is_workday(d)}
            case "makeup-workday":
                return {d for d in days if official.is_makeup_workday(d)}
            case "holiday":
                if term.name is None:
                    return {d for d in days if official.holiday(d) is not None}
                return {d for d in days if official.holiday(d) == term.name}
            case "dates":
                assert term.first is not None and term.last is not None
                return {d for d in days if term.first <= d <= term.last}
            case "season":
                assert term.season is not None
                (m1, d1), (m2, d2) = term.season
                if (m1, d1) <= (m2, d2):
                    return {d for d in days if (m1, d1) <= (d.month, d.day) <= (m2, d2)}
                return {d for d in days if (d.month, d.day) >= (m1, d1) or (d.month, d.day) <= (m2, d2)}
            case "set":
                assert term.name is not None
                if term.name not in self.named:
                    raise DaySetError(f"unknown day set {term.name!r}")
                return set(self.dates(self.named[term.name], year))
            case "lunar":
                assert term.start is not None
                found = (point_date(term.start, lunar_year) for lunar_year in range(year - 1, year + 2))
                return {d for d in found if d is not None and d.year == year}
            case "lunar-range":
                return self._lunar_range(term, year)
        raise DaySetError(f"unknown day term {term.text!r}")

    @staticmethod
    def _lunar_range(term: Term, year: int) -> set[date]:
        """Every day from an occurrence of ``start`` to the first occurrence of ``end`` on or after it."""
        assert term.start is not None and term.end is not None
        out: set[date] = set()
        ends = sorted(d for ly in range(year - 2, year + 3) if (d := point_date(term.end, ly)) is not None)
        for lunar_year in range(year - 2, year + 2):
            start = point_date(term.start, lunar_year)
            if start is None:
                continue
            end = next((d for d in ends if d >= start), None)
            if end is None:
                continue
            day = max(start, date(year, 1, 1))
            while day <= end and day.year <= year:
                if day.year == year:
                    out.add(day)
                day += timedelta(days=1)
        return out
