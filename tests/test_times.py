from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from lightctl.model.times import from_ms, iso_local, local, to_ms

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_stored_as_utc_milliseconds_and_shown_in_the_installations_zone() -> None:
    instant = datetime(2027, 1, 30, 20, 40, 0, 250_000, tzinfo=SHANGHAI)
    ms = to_ms(instant)
    assert ms == to_ms(datetime(2027, 1, 30, 12, 40, 0, 250_000, tzinfo=UTC))
    assert from_ms(ms, SHANGHAI) == instant
    assert iso_local(ms, SHANGHAI) == "2027-01-30T20:40:00+08:00"
    assert iso_local(ms / 1000.0, SHANGHAI, "milliseconds") == "2027-01-30T20:40:00.250+08:00"
    assert local(instant.astimezone(UTC), SHANGHAI).utcoffset() == instant.utcoffset()
    assert iso_local(None, SHANGHAI) is None


def test_a_naive_time_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_ms(datetime(2027, 1, 30, 20, 40))
