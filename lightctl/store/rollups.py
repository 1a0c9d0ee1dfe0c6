"""Energy roll-ups, computed in the store's writer as observations land, committed in the same
transaction as the rows they come from (:class:`lightctl.store.writer.RowObserver`).

**What a channel used.** Every observation of a channel (a reading, a state change) says what it
draws from then on: its measured power where the device measures it per channel, else its
luminaires' rated watts through the dimming curve at its level
(:func:`lightctl.model.energy.channel_watts`). That holds until the next observation, for at most
``hold`` (the installation's ``reports.energy.hold_s``, at least two polls of the controller);
an interval longer than that, or one after the controller went offline, is not covered: nothing is
made up for it, and ``covered_s`` says how much of each hour was known.

**Meters.** A controller's energy counter (or, without one, its measured total power held between
readings) gives the energy between two of its readings. That energy is shared among its channels
in proportion to what their observations say each used over the same interval, and counts as
metered. When the channels were not all observed throughout (a gap, an offline spell, a restart:
the step from the last meter point kept in ``meter_marks``), the metered energy goes to channel
``''`` of the controller, spread over the interval by time, and the channels' own estimates are
dropped (the meter is the truth of the total). A counter that steps back (the device was replaced
or restarted) or forward by more than the controller's rated power could draw in the time
(``meter_margin``, ``meter_slack_kwh``) is no energy: that interval is estimated, and counting
starts again from the new value. No interval ever yields negative energy.

**Buckets.** Energy is split at quarter hours and rolled into local hours (with their four
quarters), days and months, each row's share in the tariff's peak and valley periods kept. Rows
are added to (``ON CONFLICT ... DO UPDATE``), one upsert per touched row and transaction, so a
burst of readings costs a quarter of a row per reading, not three.

The work of a transaction is done on copies of the controllers' tracks and adopted when it
commits: a failed batch is retried later from the same starting point.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from lightctl.model.config import Config
from lightctl.model.energy import QUARTER_MS, DimmingCurve, LocalCalendar, watts_at
from lightctl.model.reports import EnergySettings
from lightctl.model.values import ChannelReading, ControllerReading
from lightctl.store.sql import Connection
from lightctl.store.writer import RowSink

log = logging.getLogger("lightctl.store")

WMS_PER_KWH = 3.6e9
"""Energy is accumulated in watt-milliseconds (watts x ms) and turned into kWh once."""
BACKSTEP_LOG_S = 600.0
"""Observations going back in time are logged at most this often (a clock step moves them all)."""
RECENT_HOURS = 2048
"""The hours (and their quarters) whose place in the calendar is kept between transactions."""
BACKSTEP_MS = 60_000
"""An observation this much older than the last one of its controller means the clock went back."""
UNATTRIBUTED = ""
"""The channel id of metered energy no channel's observed state accounts for."""
HOURS_SQL = (
    "INSERT INTO energy_hours (hour, controller_id, channel_id, kwh, metered_kwh, peak_kwh, valley_kwh,"
    " q0_kwh, q1_kwh, q2_kwh, q3_kwh, covered_s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (hour, controller_id, channel_id) DO UPDATE SET"
    " kwh = energy_hours.kwh + excluded.kwh, metered_kwh = energy_hours.metered_kwh + excluded.metered_kwh,"
    " peak_kwh = energy_hours.peak_kwh + excluded.peak_kwh, valley_kwh = energy_hours.valley_kwh + excluded.valley_kwh,"
    " q0_kwh = energy_hours.q0_kwh + excluded.q0_kwh, q1_kwh = energy_hours.q1_kwh + excluded.q1_kwh,"
    " q2_kwh = energy_hours.q2_kwh + excluded.q2_kwh, q3_kwh = energy_hours.q3_kwh + excluded.q3_kwh,"
    " covered_s = energy_hours.covered_s + excluded.covered_s"
)

CHANGED_SQL = (
    "INSERT INTO energy_hours_changed (hour, version) VALUES (?, 1)"
    " ON CONFLICT (hour) DO UPDATE SET version = energy_hours_changed.version + 1"
)


def _period_sql(table: str, key: str) -> str:
    return (
        f"INSERT INTO {table} ({key}, controller_id, channel_id, kwh, metered_kwh, peak_kwh, valley_kwh, covered_s)"
        " VALUES (?,?,?,?,?,?,?,?)"
        f" ON CONFLICT ({key}, controller_id, channel_id) DO UPDATE SET"
        f" kwh = {table}.kwh + excluded.kwh, metered_kwh = {table}.metered_kwh + excluded.metered_kwh,"
        f" peak_kwh = {table}.peak_kwh + excluded.peak_kwh, valley_kwh = {table}.valley_kwh + excluded.valley_kwh,"
        f" covered_s = {table}.covered_s + excluded.covered_s"
    )


DAYS_SQL = _period_sql("energy_days", "day")
MONTHS_SQL = _period_sql("energy_months", "month")
MARKS_SQL = (
    "INSERT INTO meter_marks (controller_id, at, energy_kwh, power_w) VALUES (?,?,?,?)"
    " ON CONFLICT (controller_id) DO UPDATE SET at = excluded.at, energy_kwh = excluded.energy_kwh, power_w = excluded.power_w"
)


# --------------------------------------------------------------------------- the installation


@dataclass(frozen=True, slots=True)
class ControllerModel:
    channels: Mapping[str, tuple[float, bool]]
    """Channel id -> (rated watts of its luminaires, whether it dims)."""
    rated_w: float
    hold_ms: int


class RollupModel:
    """What the roll-ups need of the installation: each controller's channels, how long an
    observation holds, the dimming curve, the tariff's periods and the local calendar."""

    def __init__(
        self, controllers: Mapping[str, ControllerModel], settings: EnergySettings, zone: tzinfo, *, note_changes: bool = False
    ) -> None:
        self.controllers = dict(controllers)
        self.note_changes = note_changes
        """Note each hour written in energy_hours_changed (a district: what it sends the city)."""
        self.settings = settings
        self.curve = DimmingCurve.of(settings)
        self.calendar = LocalCalendar(zone)
        self.hold_ms = round(settings.hold_s * 1000)
        self.periods = settings.tariff.quarter_periods()

    @classmethod
    def from_config(cls, config: Config) -> RollupModel:
        settings = config.reports.energy
        controllers = {
            ctrl.id: ControllerModel(
                {ch.id: (ch.rated_w, ch.dimmable) for ch in ctrl.channels},
                sum(ch.rated_w for ch in ctrl.channels),
                round(max(settings.hold_s, 2 * ctrl.poll_s + 60) * 1000),
            )
            for ctrl in config.controllers()
        }
        district = config.federation is not None and config.federation.role == "district"
        return cls(controllers, settings, ZoneInfo(config.installation.timezone), note_changes=district)


# --------------------------------------------------------------------------- per-controller state

ChannelTrack = tuple[int, float | None, bool, ChannelReading | None]
"""(since when, in UTC ms; watts drawn from then on, None when unknown; whether measured; the
reading that said so, so that the same reading seen again costs nothing)."""
Pending = list[tuple[int, str, float, float, int]]
"""(quarter, channel, energy in W·ms, of which measured, covered ms) since the last settling: one
entry per span a channel was integrated over (appending is cheaper than keeping them summed; the
hours they go to sum them)."""


class Track:
    """A controller as the roll-ups follow it: its channels' last states, its last meter point,
    and the channels' energy since that point, waiting to be settled against the meter."""

    __slots__ = ("channels", "gap", "last_at", "meter_at", "meter_kwh", "meter_w", "pending", "warned")

    def __init__(self) -> None:
        self.last_at = 0
        """The latest time of an observation rolled up (a much earlier one means the clock went back)."""
        self.channels: dict[str, ChannelTrack] = {}
        self.pending: Pending = []
        self.meter_at: int | None = None
        self.meter_kwh: float | None = None
        self.meter_w: float | None = None
        self.gap = False
        """Some channel was not observed throughout since the last meter point."""
        self.warned = False

    def copy(self) -> Track:
        other = Track()
        other.channels = dict(self.channels)
        other.pending = list(self.pending)
        other.meter_at, other.meter_kwh, other.meter_w = self.meter_at, self.meter_kwh, self.meter_w
        other.gap, other.warned, other.last_at = self.gap, self.warned, self.last_at
        return other


Event = tuple[int, int, str, Any]
"""(UTC ms, kind, controller id, payload), sorted by time before they are rolled up."""
LINK, CHANGES, READING = 0, 1, 2
NO_MODEL = ControllerModel({}, 0.0, 0)


class EnergyRollup:
    """The writer's observer of readings, state changes and link events (see the module's docstring)."""

    name = "energy roll-ups"

    def __init__(self, model: RollupModel, *, readings: RowSink, state_changes: RowSink, link_events: RowSink) -> None:
        self.model = model
        self.readings_sink, self.state_changes_sink, self.link_events_sink = readings, state_changes, link_events
        self.tracks: dict[str, Track] = {}
        self._inbox: list[Event] = []
        self._readings: list[tuple[str, ControllerReading]] = []
        self._work: dict[str, Track] = {}
        self._hours: dict[tuple[int, str, str], list[float]] = {}
        """(hour, controller, channel) -> [kWh, metered, q0, q1, q2, q3, covered ms] of this transaction."""
        self._buckets: dict[int, tuple[int, int]] = {}
        """Quarter -> (its hour, its place in the hour)."""
        self._hour_info: dict[int, tuple[int, int, tuple[float, ...], tuple[float, ...]]] = {}
        """Hour -> (its day, its month, which of its quarters are peak (1.0) and which valley)."""
        self._marks: set[str] = set()
        self._backsteps = 0
        self._backstep_logged = -BACKSTEP_LOG_S
        self._margin = model.settings.meter_margin / WMS_PER_KWH
        self._slack = model.settings.meter_slack_kwh

    # -- the writer's side -------------------------------------------------------------------

    def load(self, conn: Connection) -> None:
        """The meter points rolled up before the last stop (at open, before the writer starts)."""
        for controller_id, at, energy_kwh, power_w in conn.execute("SELECT controller_id, at, energy_kwh, power_w FROM meter_marks"):
            track = self.tracks.setdefault(controller_id, Track())
            track.meter_at, track.meter_kwh, track.meter_w = at, energy_kwh, power_w
            track.gap = True  # nothing is known of its channels since

    def landed(self, sink: RowSink, rows: Sequence[Any]) -> None:
        if sink is self.readings_sink:
            self._readings.extend(rows)
        elif sink is self.state_changes_sink:
            self._inbox.extend((at, CHANGES, cid, changes) for cid, at, changes in rows)
        elif sink is self.link_events_sink:
            self._inbox.extend((at, LINK, cid, state) for at, cid, state, _error in rows)

    def stage(self, conn: Connection) -> None:
        """Roll up the transaction's observations in time order (a burst of readings alone, the
        usual case, in the order they came: each controller's come in its own time order)."""
        readings, self._readings = self._readings, []
        inbox, self._inbox = self._inbox, []
        reading = self._reading
        if not inbox:
            for controller_id, got in readings:
                reading(controller_id, round(got.at * 1000), got)  # to_ms, inlined
        else:
            inbox.extend((round(got.at * 1000), READING, controller_id, got) for controller_id, got in readings)
            inbox.sort(key=itemgetter(0))
            changes, link = self._changes, self._link
            for at, kind, controller_id, payload in inbox:
                if kind == READING:
                    reading(controller_id, at, payload)
                elif kind == CHANGES:
                    changes(controller_id, at, payload)
                else:
                    link(controller_id, at, payload)
        self._write(conn)

    def committed(self) -> None:
        self.tracks.update(self._work)
        self._work = {}
        self._inbox = []
        self._readings = []

    def abandoned(self) -> None:
        self._work = {}
        self._inbox = []
        self._readings = []
        self._hours = {}
        self._marks = set()

    # -- following a controller --------------------------------------------------------------

    def _track(self, controller_id: str) -> Track:
        track = self._work.get(controller_id)
        if track is None:
            kept = self.tracks.get(controller_id)
            track = self._work[controller_id] = kept.copy() if kept is not None else Track()
        return track

    def _model(self, controller_id: str) -> ControllerModel:
        return self.model.controllers.get(controller_id) or NO_MODEL

    def _reading(self, controller_id: str, at: int, reading: ControllerReading) -> None:
        # The hot path of a burst of readings: kept flat on purpose (see lightctl bench report).
        track = self._work.get(controller_id) or self._track(controller_id)
        if at < track.last_at - BACKSTEP_MS:
            self._restart(controller_id, track, at)
        elif at > track.last_at:
            track.last_at = at
        model = self.model.controllers.get(controller_id, NO_MODEL)
        hold = model.hold_ms or self.model.hold_ms
        channels = track.channels
        pending = track.pending
        for channel_id, state in channels.items():
            since, watts, measured, got = state
            if at <= since:
                continue
            if watts is None or at - since > hold:
                channels[channel_id] = (at, None, False, None)
                track.gap = True
                continue
            quarter = since // QUARTER_MS
            if at > (quarter + 1) * QUARTER_MS:
                self._advance(track, channel_id, state, at, hold)
                continue
            channels[channel_id] = (at, watts, measured, got)
            energy = watts * (at - since)
            pending.append((quarter, channel_id, energy, energy if measured else 0.0, at - since))
        counter, meter_at, last_counter = reading.energy_kwh, track.meter_at, track.meter_kwh
        if counter is not None and meter_at is not None and last_counter is not None and at > meter_at and model is not NO_MODEL:
            # The common case, a counter that stepped within bounds: the general path is _meter.
            step = counter - last_counter
            if 0 <= step <= model.rated_w * (at - meter_at) * self._margin + self._slack:
                track.meter_at, track.meter_kwh, track.meter_w = at, counter, reading.power_w
                self._marks.add(controller_id)
                self._settle(controller_id, track, step, meter_at, at)
            else:
                self._settle_meter(controller_id, track, model, at, reading, hold)
        else:
            self._settle_meter(controller_id, track, model, at, reading, hold)
        known = model.channels
        for channel_id, got in reading.channels.items():
            kept = channels.get(channel_id)
            if kept is not None and (kept[0] > at or kept[3] is got):
                continue  # older than what is known, or the very reading it holds
            self._observe(track, known, channel_id, got, at)

    def _settle_meter(
        self, controller_id: str, track: Track, model: ControllerModel, at: int, reading: ControllerReading, hold: int
    ) -> None:
        settle, metered_kwh, since = self._meter(controller_id, track, model, at, reading, hold)
        if settle:
            self._settle(controller_id, track, metered_kwh, since, at)

    def _observe(self, track: Track, known: Mapping[str, tuple[float, bool]], channel_id: str, got: ChannelReading, at: int) -> None:
        """What the channel draws from ``at`` on, as ``got`` says."""
        if got.power_w is not None:
            track.channels[channel_id] = (at, got.power_w, True, got)
            return
        spec = known.get(channel_id)
        watts = watts_at(spec[0], spec[1], got.on, got.level, self.model.curve) if spec is not None else None
        track.channels[channel_id] = (at, watts, False, got)
        if watts is None:
            track.gap = True

    def _restart(self, controller_id: str, track: Track, at: int) -> None:
        """Observations went back in time (the daemon's clock was stepped back): what is known is
        rolled up as it stands and the controller is followed afresh from ``at``."""
        now = time.monotonic()
        self._backsteps += 1
        if now >= self._backstep_logged + BACKSTEP_LOG_S:
            log.warning(
                "observations went back in time (the clock was stepped back?): %d controller(s) so far, e.g. %s by %.0f s; "
                "their energy is counted afresh from there", self._backsteps, controller_id, (track.last_at - at) / 1000,
            )
            self._backstep_logged = now
            self._backsteps = 0
        self._settle(controller_id, track, None, at, at)
        track.channels = {}
        track.meter_at = track.meter_kwh = track.meter_w = None
        track.gap = False
        track.last_at = at
        self._marks.add(controller_id)

    def _changes(self, controller_id: str, at: int, changes: Mapping[str, ChannelReading]) -> None:
        track = self._track(controller_id)
        if at < track.last_at - BACKSTEP_MS:
            self._restart(controller_id, track, at)
        elif at > track.last_at:
            track.last_at = at
        model = self._model(controller_id)
        hold = model.hold_ms or self.model.hold_ms
        channels = track.channels
        for channel_id, got in changes.items():
            kept = channels.get(channel_id)
            if kept is not None:
                if kept[0] > at:
                    continue
                self._advance(track, channel_id, kept, at, hold)
            self._observe(track, model.channels, channel_id, got, at)

    def _link(self, controller_id: str, at: int, state: str) -> None:
        if state != "offline":
            return
        track = self._track(controller_id)
        model = self._model(controller_id)
        hold = model.hold_ms or self.model.hold_ms
        for channel_id, got in track.channels.items():
            self._advance(track, channel_id, got, at, hold)
        track.channels = {channel_id: (max(state[0], at), None, False, None) for channel_id, state in track.channels.items()}
        track.gap = True

    @staticmethod
    def _advance(track: Track, channel_id: str, state: ChannelTrack, at: int, hold: int) -> None:
        """The channel's energy from its last observation up to ``at``, into the pending."""
        since, watts, measured, got = state
        if at <= since:
            return
        if watts is None or at - since > hold:
            track.channels[channel_id] = (at, None, False, None)
            track.gap = True
            return
        track.channels[channel_id] = (at, watts, measured, got)
        pending = track.pending
        start = since
        while start < at:
            quarter = start // QUARTER_MS
            end = min(at, (quarter + 1) * QUARTER_MS)
            energy = watts * (end - start)
            pending.append((quarter, channel_id, energy, energy if measured else 0.0, end - start))
            start = end

    def _meter(
        self, controller_id: str, track: Track, model: ControllerModel, at: int, reading: ControllerReading, hold: int
    ) -> tuple[bool, float | None, int]:
        """(whether to settle now, the metered kWh since the last meter point or None, that point)."""
        since = track.meter_at
        counter, power = reading.energy_kwh, reading.power_w
        if counter is None and power is None:
            # No meter in this reading: settle now only if the controller has no meter point to wait for.
            if since is not None and at - since > hold:
                track.meter_at = track.meter_kwh = track.meter_w = None
                self._marks.add(controller_id)
                since = None
            return since is None, None, at
        if since is not None and at <= since:
            return False, None, at  # an older reading than the meter point: nothing to say
        metered: float | None = None
        if since is not None:
            if counter is not None and track.meter_kwh is not None:
                step = counter - track.meter_kwh
                bound = self._bound(model, at - since)
                if 0 <= step <= bound:
                    metered = step
                elif not track.warned:
                    track.warned = True
                    log.warning(
                        "controller %s: energy counter went from %.3f to %.3f kWh in %.0f s (%s): "
                        "counted as estimated, counting again from the new value",
                        controller_id, track.meter_kwh, counter, (at - since) / 1000,
                        "reset or replaced" if step < 0 else f"more than the {bound:.3f} kWh it can draw",
                    )
            elif counter is None and track.meter_w is not None and at - since <= hold:
                metered = track.meter_w * (at - since) / WMS_PER_KWH
        track.meter_at, track.meter_kwh, track.meter_w = at, counter, power
        self._marks.add(controller_id)
        return True, metered, since if since is not None else at

    def _bound(self, model: ControllerModel, span_ms: int) -> float:
        settings = self.model.settings
        if model is NO_MODEL:
            return float("inf")
        return model.rated_w * span_ms / WMS_PER_KWH * settings.meter_margin + settings.meter_slack_kwh

    def _settle(self, controller_id: str, track: Track, metered_kwh: float | None, since: int, at: int) -> None:
        """The pending energy into the roll-ups: as estimated (and measured) without a meter, scaled
        to the meter when every channel was observed throughout, else the meter's energy to
        channel '' over the interval."""
        pending = track.pending
        if pending:
            track.pending = []
        if metered_kwh is None:
            scale, attribute = 1.0 / WMS_PER_KWH, False
        else:
            total = 0.0
            for entry in pending:
                total += entry[2]
            attribute = not track.gap and total > 0
            scale = metered_kwh / total if attribute else 0.0
        track.gap = False
        hours, buckets = self._hours, self._buckets
        for quarter, channel_id, energy, measured, covered in pending:
            bucket = buckets.get(quarter) or self._bucket(quarter)
            key = (bucket[0], controller_id, channel_id)
            row = hours.get(key)
            if row is None:
                row = hours[key] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
            kwh = energy * scale
            row[0] += kwh
            row[1] += kwh if metered_kwh is not None else measured / WMS_PER_KWH
            row[2 + bucket[1]] += kwh
            row[6] += covered
        if metered_kwh is not None and not attribute and metered_kwh > 0:
            self._spread(controller_id, metered_kwh, since, at)

    def _spread(self, controller_id: str, kwh: float, since: int, at: int) -> None:
        span = at - since
        if span <= 0:
            return
        start = since
        while start < at:
            quarter = start // QUARTER_MS
            end = min(at, (quarter + 1) * QUARTER_MS)
            share = kwh * (end - start) / span
            bucket = self._buckets.get(quarter) or self._bucket(quarter)
            key = (bucket[0], controller_id, UNATTRIBUTED)
            row = self._hours.get(key)
            if row is None:
                row = self._hours[key] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
            row[0] += share
            row[1] += share
            row[2 + bucket[1]] += share
            start = end

    def _bucket(self, quarter: int) -> tuple[int, int]:
        place = self.model.calendar.place(quarter)
        found = self._buckets[quarter] = (place.hour, place.index)
        if place.hour not in self._hour_info:
            periods = self.model.periods
            first = place.of_day - place.index
            self._hour_info[place.hour] = (
                place.day, place.month,
                tuple(float(periods[(first + i) % 96] == "peak") for i in range(4)),
                tuple(float(periods[(first + i) % 96] == "valley") for i in range(4)),
            )
        return found

    # -- writing -----------------------------------------------------------------------------

    def _write(self, conn: Connection) -> None:
        """Hours (their peak and valley shares from their quarters), then the days and months
        they add up to, then the meter points."""
        hours, self._hours = self._hours, {}
        marks, self._marks = self._marks, set()
        info = self._hour_info
        hour_rows: list[tuple[Any, ...]] = []
        days: dict[tuple[int, str, str], list[float]] = {}
        months: dict[tuple[int, str, str], list[float]] = {}
        for (hour, controller_id, channel_id), (kwh, metered, q0, q1, q2, q3, covered_ms) in hours.items():
            day, month, (p0, p1, p2, p3), (v0, v1, v2, v3) = info[hour]
            on_peak = q0 * p0 + q1 * p1 + q2 * p2 + q3 * p3
            on_valley = q0 * v0 + q1 * v1 + q2 * v2 + q3 * v3
            covered = covered_ms / 1000
            hour_rows.append((hour, controller_id, channel_id, kwh, metered, on_peak, on_valley, q0, q1, q2, q3, covered))
            for table, key in ((days, (day, controller_id, channel_id)), (months, (month, controller_id, channel_id))):
                total = table.get(key)
                if total is None:
                    table[key] = [kwh, metered, on_peak, on_valley, covered]
                else:
                    total[0] += kwh
                    total[1] += metered
                    total[2] += on_peak
                    total[3] += on_valley
                    total[4] += covered
        if len(info) > RECENT_HOURS:  # a year of them would be walked by every full garbage collection
            info.clear()
            self._buckets.clear()
        if hour_rows:
            conn.executemany(HOURS_SQL, hour_rows)
            conn.executemany(DAYS_SQL, [(*key, *row) for key, row in days.items()])
            conn.executemany(MONTHS_SQL, [(*key, *row) for key, row in months.items()])
            if self.model.note_changes:
                conn.executemany(CHANGED_SQL, [(hour,) for hour in {row[0] for row in hour_rows}])
        if marks:
            tracks = self._work
            kept = [(cid, t.meter_at, t.meter_kwh, t.meter_w) for cid in marks if (t := tracks[cid]).meter_at is not None]
            gone = [(cid,) for cid in marks if tracks[cid].meter_at is None]
            conn.executemany(MARKS_SQL, kept)
            if gone:
                conn.executemany("DELETE FROM meter_marks WHERE controller_id = ?", gone)
