"""The forecast of a known schedule against a hand calculation, and the what-if of a curtailment."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from reports_support import by_key, channel, config_of, controller, installation, reports_for, site, store_for

from lightctl.inventory.index import Inventory
from lightctl.model.energy import DimmingCurve
from lightctl.model.values import OFF, ChannelState
from lightctl.services.reports.forecast import shed
from lightctl.services.reports.service import ReportError

PEAK, FLAT, VALLEY = 1.0, 0.6, 0.3


def data() -> dict[str, Any]:
    """One cabinet: c1 10 x 100 W landscape (dims), c2 10 x 200 W street lights (relay: full when on).
    Street lights 17:00-07:00; everything at full 19:00-21:00, at 30% 21:00-23:30."""
    d = installation([{"id": "d1", "name": "渝中", "name_en": "Yuzhong", "sites": [site("s1", [
        controller("f1", [channel("c1", 10, "landscape", watts=100), channel("c2", 10, "street", watts=200, dimmable=False)])
    ])]}])
    d["scenes"] = [
        {"id": "evening", "rules": [{"target": "*", "level": 100}]},
        {"id": "late", "rules": [{"target": "*", "level": 30}]},
    ]
    d["schedule"] = {"entries": [
        {"id": "street", "days": "daily", "start": "17:00", "end": "07:00", "scene": "all-on", "target": "kind:street", "priority": 5},
        {"id": "evening", "days": "daily", "start": "19:00", "end": "21:00", "scene": "evening", "priority": 10},
        {"id": "late", "days": "daily", "start": "21:00", "end": "23:30", "scene": "late", "priority": 10},
    ]}
    d["reports"] = {"energy": {"tariff": {"peak": PEAK, "flat": FLAT, "valley": VALLEY, "periods": [
        {"from": "18:00", "to": "23:00", "period": "peak"}, {"from": "23:00", "to": "07:00", "period": "valley"}]}}}
    return d


# By hand, one night: street lights 2 kW x 14 h = 28 kWh (17-18 flat: 2; 18-23 peak: 10; 23-07 valley: 16);
# landscape 1 kW x 2 h at full (peak: 2) + 2.5 h at 30% (21-23 peak: 0.6; 23-23:30 valley: 0.15).
NIGHT_KWH, NIGHT_PEAK, NIGHT_FLAT, NIGHT_VALLEY = 30.75, 12.6, 2.0, 16.15


async def test_the_forecast_of_a_known_schedule_matches_the_hand_calculation(tmp_path: Path) -> None:
    config = config_of(data())
    async with store_for(tmp_path / "f.db", config) as store:
        reports = reports_for(config, store, with_schedule=True)
        nights = reports.forecast(date(2027, 3, 1), 3, "night").as_json()
        districts = reports.forecast(date(2027, 3, 1), 3, "district").as_json()
        with pytest.raises(ReportError, match="--nights must be 1 to 400"):
            reports.forecast(date(2027, 3, 1), 0, "night")
    assert [r["bucket"] for r in nights["rows"]] == ["2027-03-01", "2027-03-02", "2027-03-03"]
    for row in nights["rows"]:
        assert row["kwh"] == pytest.approx(NIGHT_KWH)
        assert (row["peak_kwh"], row["flat_kwh"], row["valley_kwh"]) == pytest.approx((NIGHT_PEAK, NIGHT_FLAT, NIGHT_VALLEY))
        assert row["cost"] == pytest.approx(NIGHT_PEAK * PEAK + NIGHT_FLAT * FLAT + NIGHT_VALLEY * VALLEY, abs=0.01)
        assert row["peak_kw"] == pytest.approx(3.0)
    assert nights["total"]["kwh"] == pytest.approx(3 * NIGHT_KWH)
    d1 = by_key(districts["rows"], bucket="渝中 Yuzhong")
    assert d1["kwh"] == pytest.approx(3 * NIGHT_KWH) and d1["cost"] == pytest.approx(nights["total"]["cost"], abs=0.01)


def test_a_curtailment_sheds_each_channels_power_at_its_level_through_the_curve() -> None:
    curved = data()
    curved["reports"]["energy"]["dimming_curve"] = [[0, 0.0], [50, 0.6], [100, 1.0]]
    config = config_of(curved)
    inventory = Inventory(config)
    before = {("f1", "c1"): ChannelState(True, 100.0), ("f1", "c2"): ChannelState(True, 100.0)}
    after = {("f1", "c1"): ChannelState(True, 50.0), ("f1", "c2"): OFF}
    rows = shed(inventory, before, before, after, lambda key, state: state.output if isinstance(state, ChannelState) else 0.0,
                DimmingCurve.of(config.reports.energy))
    # c1: 1000 W at full, 600 W at 50% on this curve; c2 (2000 W) switched off.
    assert [(r.channel_id, r.level_before, r.level_after, r.shed_w) for r in rows] == [("c1", 100.0, 50.0, 400.0), ("c2", 100.0, 0.0, 2000.0)]
