"""Time as the project stores and shows it: integers of UTC milliseconds in the records, aware
datetimes in the installation's zone for people (ISO 8601 with its offset, e.g. ``+08:00``).

Every stored time goes through :func:`to_ms`; every time shown to a person or put in the API's JSON
goes through :func:`local` or :func:`iso_local`, so that no screen mixes zones.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, tzinfo


def now_ms() -> int:
    """The wall clock as UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000


def to_ms(value: datetime | float) -> int:
    """An aware datetime, or a ``time.time()`` float, as UTC epoch milliseconds."""
    if type(value) is float:  # the common case first: readings, a hundred thousand a second
        return round(value * 1000)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: a stored time needs its zone")
        return round(value.timestamp() * 1000)
    return round(value * 1000)


def from_ms(ms: int, zone: tzinfo = UTC) -> datetime:
    """UTC epoch milliseconds as an aware datetime in ``zone``."""
    return datetime.fromtimestamp(ms / 1000, zone)


def local(value: datetime | int | float, zone: tzinfo) -> datetime:
    """A time in the installation's zone: from an aware datetime, epoch ms (int) or seconds (float)."""
    if isinstance(value, datetime):
        return value.astimezone(zone)
    if isinstance(value, int):
        return from_ms(value, zone)
    return datetime.fromtimestamp(value, zone)


def iso_local(value: datetime | int | float | None, zone: tzinfo, timespec: str = "seconds") -> str | None:
    """ISO 8601 in the installation's zone, with its offset; None stays None."""
    if value is None:
        return None
    return local(value, zone).isoformat(timespec=timespec)
