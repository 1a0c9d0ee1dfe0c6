"""The pure schedule engine: which entries are in force at an instant, and when that next changes.

Each entry yields at most one window per operating day (noon to noon) and place, so ``active()``
looks at one day's windows only. Windows are computed once per day and cached.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from lightctl.model.desired import ActiveEntry
from lightctl.model.schedule import DaySetSpec, ParsedEvent
from schedules.calendars import OfficialCalendar
from schedules.daysets import DaySets
from schedules.events import Place, event_instant, operating_day

LOOKAHEAD_DAYS = 400
"""next_change() gives up (returns None) when nothing changes within this many days."""
_EPSILON = timedelta(microseconds=1)
_CACHE_DAYS = 1024
OFFICIAL_TERMS = ("workday", "restday", "holiday", "makeup-workday")


@dataclass(frozen=True, slots=True)
class PlacedTarget:
    place: Place
    target: str
    note: str  # "" or " (site X's own sun times)"


@dataclass(frozen=True, slots=True)
class CompiledEntry:
    id: str
    order: int
    priority: int
    scene: str
    target: str
    days: DaySetSpec
    start: ParsedEvent
    end: ParsedEvent
    targets: tuple[PlacedTarget, ...]


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    entry: CompiledEntry
    placed: PlacedTarget
    active: ActiveEntry

    @classmethod
    def of(cls, start: datetime, end: datetime, entry: CompiledEntry, placed: PlacedTarget) -> Window:
        reason = f"{entry.id}: {entry.start.text} to {entry.end.text}{placed.note}"
        return cls(start, end, entry, placed, ActiveEntry(entry.scene, placed.target, entry.priority, reason, entry.id))

    def sort_key(self) -> tuple[int, int, str]:
        return (self.entry.priority, self.entry.order, self.placed.target)


@dataclass(frozen=True, slots=True)
class Transition:
    """An entry starting or ending (what the preview lists)."""

    at: datetime
    action: str  # "start" or "end"
    scene: str
    target: str
    priority: int
    entry: str
    event: str
    estimated: bool = False
    """The night's holidays are estimated from the statutory rules (no published arrangement for
    its year): a holiday, a make-up working day or a bridging day may make it otherwise."""

    @property
    def reason(self) -> str:
        return f"{self.entry}: {self.event}"


class Schedule:
    """A ``lightctl.model.desired.ScheduleSource``: pure, no I/O, cheap to call on every reconcile."""

    def __init__(
        self,
        entries: Sequence[CompiledEntry],
        day_sets: DaySets,
        official: OfficialCalendar,
        zone: ZoneInfo,
    ) -> None:
        self.entries = tuple(entries)
        self.day_sets = day_sets
        self.official = official
        self.zone = zone
        self._windows: dict[date, tuple[Window, ...]] = {}

    # ------------------------------------------------------------------ windows

    def windows(self, day: date) -> tuple[Window, ...]:
        """Windows of operating day ``day`` (noon ``day`` to noon the day after), by priority."""
        found = self._windows.get(day)
        if found is None:
            out: list[Window] = []
            for entry in self.entries:
                if not self.day_sets.contains(entry.days, day):
                    continue
                for placed in entry.targets:
                    start = event_instant(entry.start, day, placed.place, self.zone)
                    end = event_instant(entry.end, day, placed.place, self.zone)
                    if start < end:
                        out.append(Window.of(start, end, entry, placed))
            out.sort(key=Window.sort_key)
            found = tuple(out)
            if len(self._windows) >= _CACHE_DAYS:
                self._windows.clear()
            self._windows[day] = found
        return found

    def _in_force(self, instant: datetime, *, just_before: bool = False) -> tuple[ActiveEntry, ...]:
        if just_before:
            day = operating_day(instant - _EPSILON, self.zone)
            hits = (w for w in self.windows(day) if w.start < instant <= w.end)
        else:
            day = operating_day(instant, self.zone)
            hits = (w for w in self.windows(day) if w.start <= instant < w.end)
        return tuple(w.active for w in hits)

    # ------------------------------------------------------------------ ScheduleSource

    def active(self, instant: datetime) -> Sequence[ActiveEntry]:
        """Entries in force at ``instant``, lowest priority first (ties: config order)."""
        _require_aware(instant)
        return self._in_force(instant)

    def next_change(self, after: datetime) -> datetime | None:
        """The first instant after ``after`` at which ``active()`` differs from just before it."""
        _require_aware(after)
        if not self.entries:
            return None
        first = operating_day(after, self.zone)
        for i in range(LOOKAHEAD_DAYS):
            bounds = {
                b for w in self.windows(first + timedelta(days=i)) for b in (w.start, w.end) if b > after
            }
            for bound in sorted(bounds):
                if self._in_force(bound) != self._in_force(bound, just_before=True):
                    return bound
        return None

    # ------------------------------------------------------------------ preview

    def transitions(self, start: datetime, end: datetime) -> Iterator[Transition]:
        """Every entry start and end in [start, end), in time order (ends before starts at a tie)."""
        _require_aware(start)
        _require_aware(end)
        day = operating_day(start, self.zone) - timedelta(days=1)
        last = operating_day(end, self.zone)
        official = self.uses_official_calendar()
        while day <= last:
            estimated = official and self.official.estimated(day)
            found: list[tuple[datetime, int, int, Transition]] = []
            for w in self.windows(day):
                e = w.entry
                for at, action, event, rank in ((w.start, "start", e.start, 1), (w.end, "end", e.end, 0)):
                    if start <= at < end:
                        transition = Transition(
                            at.astimezone(self.zone),
                            action,
                            e.scene,
                            w.placed.target,
                            e.priority,
                            e.id,
                            event.text + w.placed.note,
                            estimated,
                        )
                        found.append((at, rank, e.priority, transition))
            found.sort(key=lambda item: item[:3])
            yield from (item[3] for item in found)
            day += timedelta(days=1)

    def uses_official_calendar(self) -> bool:
        specs = [entry.days for entry in self.entries]
        seen: set[str] = set()
        while specs:
            spec = specs.pop()
            for term in spec.terms():
                if term.kind in OFFICIAL_TERMS:
                    return True
                if term.kind == "set" and term.name is not None and term.name not in seen:
                    seen.add(term.name)
                    specs.append(self.day_sets.named[term.name])
        return False

    def calendar_warnings(self, first: date, last: date) -> list[str]:
        """Why some days in [first, last] may be wrong: years the official calendar does not know."""
        if not self.uses_official_calendar():
            return []
        return [
            self.official.missing_message(year)
            for year in range(first.year, last.year + 1)
            if year not in self.official.years
        ]


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"schedule times must be timezone-aware, got {instant!r}")
