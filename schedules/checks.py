"""Checks of the ``schedule:`` section, run with the installation's other checks
(lightctl.resolve.checks): scenes exist, selectors resolve, day sets resolve, entry ids are
unique, hand-backs reach only what can be handed back, and no two entries of equal priority are
in force at once on a shared channel.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta

from lightctl.config.problems import Locator, Path_, Problem, problem_at
from lightctl.inventory.handback import cannot_release, refusal
from lightctl.inventory.index import Inventory
from lightctl.inventory.selectors import SelectorError
from lightctl.model.config import Config
from lightctl.model.desired import ChannelKey, released_keys
from scenes.model import SceneBook
from schedules.builder import build
from schedules.calendars import OfficialCalendar
from schedules.daysets import DaySetError, DaySets
from schedules.engine import Window

_WindowsOf = Callable[[date], tuple[Window, ...]]


def check_schedule(
    config: Config, file: str, locate: Locator, inventory: Inventory, today: date | None = None
) -> list[Problem]:
    section = config.schedule
    problems: list[Problem] = []
    scenes = config.all_scenes()
    seen: dict[str, int] = {}
    try:
        named = DaySets(section.day_sets, official=OfficialCalendar(section.official_years, log_missing=False))
    except DaySetError as exc:
        problems.append(problem_at(file, locate, ("schedule", "day_sets"), str(exc)))
        return problems
    for i, entry in enumerate(section.entries):
        path: Path_ = ("schedule", "entries", i)
        if entry.id in seen:
            where = f"{file}:{_line(locate, ('schedule', 'entries', seen[entry.id]))}"
            problems.append(
                problem_at(file, locate, (*path, "id"), f"duplicate entry id {entry.id!r} (first at {where})")
            )
        seen.setdefault(entry.id, i)
        if entry.scene not in scenes:
            problems.append(
                problem_at(
                    file,
                    locate,
                    (*path, "scene"),
                    f"unknown scene {entry.scene!r} (known: {', '.join(sorted(scenes))})",
                )
            )
        try:
            inventory.select(entry.target)
        except SelectorError as exc:
            problems.append(problem_at(file, locate, (*path, "target"), str(exc)))
        try:
            named.check(entry.days)
        except DaySetError as exc:
            problems.append(problem_at(file, locate, (*path, "days"), str(exc)))
    if section.default_scene is not None and section.default_scene not in scenes:
        problems.append(
            problem_at(
                file, locate, ("schedule", "default_scene"),
                f"unknown scene {section.default_scene!r} (known: {', '.join(sorted(scenes))})",
            )
        )
    if problems:
        return problems
    problems += _handbacks(config, file, locate, inventory)
    if problems:
        return problems
    return _overlaps(config, file, locate, inventory, build(config, inventory, log_missing=False).windows, today or date.today())


def _handbacks(config: Config, file: str, locate: Locator, inventory: Inventory) -> list[Problem]:
    """What the default scene and each entry hand back can be handed back (lightctl.inventory.handback)."""
    book = SceneBook(config.all_scenes(), inventory)
    section = config.schedule
    uses: list[tuple[str, str, Path_, str]] = [
        (entry.scene, entry.target, ("schedule", "entries", i, "target"), f"entry {entry.id!r} ({entry.scene} on {entry.target!r})")
        for i, entry in enumerate(section.entries)
    ]
    if section.default_scene is not None:
        uses.append((section.default_scene, "*", ("schedule", "default_scene"), f"the default scene {section.default_scene!r}"))
    problems = []
    for scene, target, path, what in uses:
        refused = cannot_release(inventory, released_keys(book.compile(scene, inventory.select(target))))
        if refused:
            problems.append(problem_at(file, locate, path, refusal(what, refused)))
    return problems


def _overlaps(
    config: Config, file: str, locate: Locator, inventory: Inventory, windows_of: _WindowsOf, today: date
) -> list[Problem]:
    entries = config.schedule.entries
    channels = [inventory.select(entry.target) for entry in entries]
    by_priority: dict[int, list[int]] = defaultdict(list)
    for i, entry in enumerate(entries):
        by_priority[entry.priority].append(i)
    pairs = {
        (a, b): shared
        for group in by_priority.values()
        for n, a in enumerate(group)
        for b in group[n + 1 :]
        if (shared := channels[a] & channels[b])
    }
    if not pairs:
        return []
    index = {entry.id: i for i, entry in enumerate(entries)}
    problems: list[Problem] = []
    reported: set[tuple[int, int]] = set()
    day = date(today.year, 1, 1)
    last = date(today.year + config.schedule.check_years, 12, 31)
    while day <= last and len(reported) < len(pairs):
        windows = windows_of(day)
        for n, first in enumerate(windows):
            for second in windows[n + 1 :]:
                a, b = sorted((index[first.entry.id], index[second.entry.id]))
                if (a, b) not in pairs or (a, b) in reported:
                    continue
                start, end = max(first.start, second.start), min(first.end, second.end)
                if start < end:
                    reported.add((a, b))
                    problems.append(
                        _overlap_problem(file, locate, a, b, config, pairs[(a, b)], day, start, end)
                    )
        day += timedelta(days=1)
    return problems


def _overlap_problem(
    file: str,
    locate: Locator,
    a: int,
    b: int,
    config: Config,
    shared: frozenset[ChannelKey],
    day: date,
    start: datetime,
    end: datetime,
) -> Problem:
    entries = config.schedule.entries
    first, second = entries[a], entries[b]
    example = "/".join(sorted(shared)[0])
    when = f"{start:%H:%M} to {end:%H:%M}"
    message = (
        f"entries {first.id!r} ({file}:{_line(locate, ('schedule', 'entries', a))}, target {first.target!r}) and "
        f"{second.id!r} ({file}:{_line(locate, ('schedule', 'entries', b))}, target {second.target!r}) both have "
        f"priority {first.priority} and are in force together on {len(shared)} channel(s) (e.g. {example}), "
        f"first on the night of {day}, {when}: give one a higher priority, or narrow its days or target"
    )
    return problem_at(file, locate, ("schedule", "entries", b, "priority"), message)


def _line(locate: Locator, path: Path_) -> str:
    line = locate.line(path)
    return str(line) if line else "?"
