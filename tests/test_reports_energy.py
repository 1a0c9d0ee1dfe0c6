"""Energy: a day with known levels, metered and estimated, worked out by hand; a meter replaced
mid-night; and the roll-ups summing to the raw readings whatever the batching (property test)."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from astral import Observer
from astral.sun import sun
from conftest import StoreBackend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reports_support import (
    LOCATION,
    by_key,
    channel,
    config_of,
    controller,
    installation,
    reports_for,
    site,
    store_for,
)

from lightctl.model.values import ChannelReading, ControllerReading
from lightctl.services.reports.period import Period
from lightctl.store.connection import connect_writer
from lightctl.store.migrate import migrate
from lightctl.store.observations import Observations
from lightctl.store.readers import ReaderPool
from lightctl.store.rollups import EnergyRollup, RollupModel
from lightctl.store.writer import Writer

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2027, 1, 15)
PEAK, FLAT, VALLEY = 1.0, 0.6, 0.3


def data() -> dict[str, Any]:
    """``met``: 10 x 100 W dimmable with an energy counter; ``est``: 10 x 50 W, no meter."""
    d = installation([{"id": "d1", "name": "渝中", "name_en": "Yuzhong", "sites": [site("s1", [
        controller("met", [channel("c1", 10, "landscape", watts=100)], poll_s=5),
        controller("est", [channel("c1", 10, "landscape", watts=50)], port=1503, poll_s=5),
    ])]}])
    d["reports"] = {"energy": {"tariff": {"peak": PEAK, "flat": FLAT, "valley": VALLEY, "periods": [
        {"from": "18:00", "to": "23:00", "period": "peak"}, {"from": "23:00", "to": "07:00", "period": "valley"}]}}}
    return d


def level_at(hour: float) -> float:
    """The day: full until 06:00, off until 18:00, half until 22:00, full to midnight."""
    if hour < 6:
        return 100.0
    if hour < 18:
        return 0.0
    return 50.0 if hour < 22 else 100.0


def local(day: date, minutes: int) -> float:
    return (datetime.combine(day, datetime.min.time(), tzinfo=ZONE) + timedelta(minutes=minutes)).timestamp()


def state(level: float) -> dict[str, ChannelReading]:
    return {"c1": ChannelReading(on=level > 0, level=level)}


async def feed_day(store: Any) -> None:
    counter = 0.0
    for step in range(0, 24 * 12 + 1):  # every 5 minutes, 00:00 to 24:00
        minutes = step * 5
        if step:
            counter += 1000 * level_at((minutes - 5) / 60) / 100 * (5 / 60) / 1000  # kWh of the last 5 minutes
        level = level_at(minutes / 60) if minutes < 24 * 60 else 100.0
        at = local(DAY, minutes)
        store.observations.record_reading("met", ControllerReading(at, state(level), 1000 * level / 100, round(counter, 6)))
        store.observations.record_reading("est", ControllerReading(at, state(level)))
    await store.flush()


async def test_a_day_of_known_levels_metered_and_estimated(backend: StoreBackend) -> None:
    config = config_of(data())
    async with store_for(backend.target("e"), config) as store:  # the roll-ups and their reports on both databases
        await feed_day(store)
        reports = reports_for(config, store)
        period = Period(DAY, DAY, ZONE)
        by_controller = (await reports.energy(period, "controller")).as_json()
        by_hour = (await reports.energy(period, "hour")).as_json()
        quarters = (await reports.energy(period, "15min")).as_json()
        by_month = (await reports.energy(Period(DAY.replace(day=1), DAY.replace(day=31), ZONE), "month")).as_json()
    met = by_key(by_controller["rows"], group="met")
    # 1 kW x (6 h at full + 4 h at half + 2 h at full) = 10 kWh, all from the counter.
    assert (met["kwh"], met["metered_kwh"], met["estimated_kwh"], met["basis"]) == (10.0, 10.0, 0.0, "metered")
    # Peak 18:00-23:00: 4 h at 0.5 kW + 1 h at 1 kW; valley 23:00-07:00: 1 h + 6 h at 1 kW.
    assert (met["peak_kwh"], met["flat_kwh"], met["valley_kwh"]) == (3.0, 0.0, 7.0)
    assert met["cost"] == round(3.0 * PEAK + 7.0 * VALLEY, 2)
    assert met["coverage"] == 1.0
    est = by_key(by_controller["rows"], group="est")
    assert (est["kwh"], est["metered_kwh"], est["estimated_kwh"], est["basis"]) == (5.0, 0.0, 5.0, "estimated")
    assert (est["peak_kwh"], est["valley_kwh"], est["cost"]) == (1.5, 3.5, round(1.5 * PEAK + 3.5 * VALLEY, 2))
    total = by_controller["total"]
    assert (total["kwh"], total["basis"]) == (15.0, "mixed")
    # The baseline: both channels (1.5 kW) at full from sunset to sunrise, within the day.
    observer = Observer(LOCATION["lat"], LOCATION["lon"])
    rise, fall = sun(observer, date=DAY, tzinfo=ZONE)["sunrise"], sun(observer, date=DAY, tzinfo=ZONE)["sunset"]
    midnight = datetime.combine(DAY, datetime.min.time(), tzinfo=ZONE)
    dark_h = ((rise - midnight) + (midnight + timedelta(days=1) - fall)).total_seconds() / 3600
    assert total["baseline_kwh"] == pytest.approx(1.5 * dark_h, abs=0.01)
    assert total["saved_kwh"] == pytest.approx(1.5 * dark_h - 15.0, abs=0.01)
    assert total["saved_co2_kg"] == pytest.approx((1.5 * dark_h - 15.0) * 0.5306, abs=0.01)
    assert total["saved_coal_kg"] == pytest.approx((1.5 * dark_h - 15.0) * 0.1229, abs=0.01)
    # Hour by hour: 1.5 kWh before 06:00, nothing by day, 0.75 from 18:00, 1.5 from 22:00.
    hours = {row["bucket"][11:16]: row["kwh"] for row in by_hour["rows"]}
    assert len(hours) == 24
    assert all(hours[f"{h:02d}:00"] == 1.5 for h in (0, 5, 22, 23))
    assert all(hours[f"{h:02d}:00"] == 0.0 for h in range(6, 18))
    assert all(hours[f"{h:02d}:00"] == 0.75 for h in range(18, 22))
    assert by_key(by_hour["rows"], bucket="2027-01-15T19:00+08:00")["basis"] == "mixed"
    quarter = by_key(quarters["rows"], bucket="2027-01-15T21:45+08:00")  # 0.75 kW for 15 minutes, on peak
    assert len(quarters["rows"]) == 96 and quarter["kwh"] == quarter["peak_kwh"] == pytest.approx(0.1875, abs=0.001)
    assert [r["bucket"] for r in by_month["rows"]] == ["2027-01"] and by_month["total"]["kwh"] == 15.0


async def test_a_meter_reset_or_jump_is_estimated_never_negative_or_huge(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = config_of(data())
    async with store_for(tmp_path / "reset.db", config) as store:
        counter = 1000.0
        start = local(DAY, 19 * 60)
        # 1 kW for 4 hours, a reading every 10 minutes; the meter is replaced after the first hour
        # (its counter starts again at 0.2) and, 2 hours in, steps by 900 kWh in 10 minutes.
        for step in range(25):
            if step:
                counter += 1000 * (10 / 60) / 1000
            if step == 6:
                counter = 0.2
            if step == 12:
                counter += 900.0
            store.observations.record_reading("met", ControllerReading(start + step * 600, state(100.0), 1000.0, counter))
        await store.flush()
        rows = await store.read("SELECT * FROM energy_hours WHERE controller_id = 'met'")
        day = (await reports_for(config, store).energy(Period(DAY, DAY, ZONE), "controller")).as_json()
    assert all(r[k] >= 0 for r in rows for k in ("kwh", "metered_kwh", "peak_kwh", "valley_kwh"))
    met = by_key(day["rows"], group="met")
    # 24 intervals of 1/6 kWh: 22 from the counter, the reset's and the jump's from the channel's level.
    assert met["kwh"] == pytest.approx(4.0, abs=0.001)
    assert met["metered_kwh"] == pytest.approx(22 / 6, abs=0.001)
    assert met["estimated_kwh"] == pytest.approx(2 / 6, abs=0.001)
    assert sum("energy counter went from" in r.getMessage() for r in caplog.records) == 1  # said once, not every time


def test_dimming_curve_and_unknown_states_estimate_as_configured(tmp_path: Path) -> None:
    curved = data()
    curved["reports"]["energy"]["dimming_curve"] = [[0, 0.1], [50, 0.4], [100, 1.0]]
    model = RollupModel.from_config(config_of(curved))
    assert model.curve.share(25) == pytest.approx(0.25) and model.curve.share(75) == pytest.approx(0.7)
    assert model.controllers["met"].channels["c1"] == (1000.0, True)


# --------------------------------------------------------------------------- property


def rollup_db() -> tuple[sqlite3.Connection, EnergyRollup, Observations]:
    conn = connect_writer(":memory:")
    migrate(conn, ":memory:")
    # the sinks write on the connection they are given; the pool is never asked for a reader
    observations = Observations(Writer(":memory:"), ReaderPool(":memory:", lambda: conn, lambda _: None))
    rollup = EnergyRollup(
        RollupModel.from_config(config_of(data())),
        readings=observations.readings_sink, state_changes=observations.state_changes_sink, link_events=observations.link_events_sink,
    )
    return conn, rollup, observations


def write(conn: sqlite3.Connection, rollup: EnergyRollup, observations: Observations, rows: list[tuple[str, ControllerReading]]) -> None:
    conn.execute("BEGIN")
    observations.readings_sink.insert(conn, rows)
    rollup.landed(observations.readings_sink, rows)
    rollup.stage(conn)
    conn.execute("COMMIT")
    rollup.committed()


steps = st.lists(
    st.tuples(
        st.integers(min_value=1_000, max_value=1_500_000),  # ms to the next reading (some beyond the 15-minute hold)
        st.sampled_from([0.0, 10.0, 35.5, 80.0, 100.0]),  # level from then on
        st.booleans(),  # a transaction ends after this reading
    ),
    min_size=2,
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, offset=st.integers(min_value=0, max_value=86_400_000))
def test_rollups_sum_to_the_raw_readings_however_batched(steps: list[tuple[int, float, bool]], offset: int) -> None:
    conn, rollup, observations = rollup_db()
    hold = rollup.model.controllers["est"].hold_ms
    assert hold == 900_000  # reports.energy.hold_s: two polls of 5 s are less
    at = 1_798_000_000_000 + offset  # mid-January 2027, any time of day
    counter = 50.0
    level = 100.0
    expected_met = 0.0
    expected_est = 0.0
    batch: list[tuple[str, ControllerReading]] = []
    for number, (gap, next_level, cut) in enumerate(steps):
        if number:
            kwh = 1000 * level / 100 * gap / 3.6e9
            counter += kwh
            expected_met += kwh  # a meter counts across any gap
            if gap <= hold:
                expected_est += 500 * level / 100 * gap / 3.6e9  # an estimate only within the hold
            at += gap
            level = next_level
        batch.append(("met", ControllerReading(at / 1000, state(level), 1000 * level / 100, counter)))
        batch.append(("est", ControllerReading(at / 1000, state(level))))
        if cut:
            write(conn, rollup, observations, batch)
            batch = []
    if batch:
        write(conn, rollup, observations, batch)
    sums = {
        table: dict(conn.execute(f"SELECT controller_id, SUM(kwh) FROM {table} GROUP BY controller_id").fetchall())
        for table in ("energy_hours", "energy_days", "energy_months")
    }
    for table, got in sums.items():
        assert got.get("met", 0.0) == pytest.approx(expected_met, rel=1e-9, abs=1e-9), table
        assert got.get("est", 0.0) == pytest.approx(expected_est, rel=1e-9, abs=1e-9), table
    for kwh, metered, peak, valley, q0, q1, q2, q3 in conn.execute(
        "SELECT kwh, metered_kwh, peak_kwh, valley_kwh, q0_kwh, q1_kwh, q2_kwh, q3_kwh FROM energy_hours"
    ):
        assert min(kwh, metered, peak, valley, q0, q1, q2, q3) >= 0
        assert q0 + q1 + q2 + q3 == pytest.approx(kwh, abs=1e-9)
        assert peak + valley <= kwh + 1e-9 and metered <= kwh + 1e-9
    conn.close()


async def test_a_restart_keeps_the_meter_point_and_counts_the_energy_between(backend: StoreBackend) -> None:
    config = config_of(data())
    path = backend.target("restart")
    start = local(DAY, 19 * 60)
    async with store_for(path, config) as store:
        for step in range(7):  # 1 kW for an hour
            store.observations.record_reading("met", ControllerReading(start + step * 600, state(100.0), 1000.0, 10.0 + step / 6))
        await store.flush()
    async with store_for(path, config) as store:  # 40 minutes from the last reading, the lights on all along
        for step in range(10, 13):
            store.observations.record_reading("met", ControllerReading(start + step * 600, state(100.0), 1000.0, 10.0 + step / 6))
        await store.flush()
        rows = await store.read("SELECT channel_id, SUM(kwh) AS kwh, SUM(metered_kwh) AS metered FROM energy_hours GROUP BY channel_id")
    got = {r["channel_id"]: (r["kwh"], r["metered"]) for r in rows}
    # The hour before and the 20 minutes after on the channel; the 40 minutes between, when nothing
    # was seen of the channel, to the cabinet's unattributed energy: the counter's 2 kWh in all.
    assert got["c1"] == pytest.approx((1 + 2 / 6, 1 + 2 / 6))
    assert got[""] == pytest.approx((4 / 6, 4 / 6))


async def test_observations_going_back_in_time_start_the_count_afresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = config_of(data())
    async with store_for(tmp_path / "back.db", config) as store:
        later, earlier = local(DAY, 20 * 60), local(DAY, 19 * 60)
        for at in (later, later + 600, earlier, earlier + 600):  # the clock stepped back an hour
            store.observations.record_reading("est", ControllerReading(at, state(100.0)))
        await store.flush()
        rows = await store.read("SELECT hour, kwh FROM energy_hours WHERE controller_id = 'est' ORDER BY hour")
    assert [round(r["kwh"], 6) for r in rows] == [round(500 * 600 / 3.6e6, 6)] * 2  # 10 minutes at 500 W in each hour
    assert sum("the clock was stepped back" in r.getMessage() for r in caplog.records) == 1
