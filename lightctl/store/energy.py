"""Reading the energy roll-ups (written by :mod:`lightctl.store.rollups`) and pruning old ones.

Sums over a span of hours, days or months, per channel or per bucket, optionally for some
controllers only. Which table serves which part of a report's span is the reports' business
(``lightctl.services.reports.energy``); here each query reads one table over one span of its keys.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lightctl.store.readers import ReaderPool
from lightctl.store.sql import Connection

PRUNE_INTERVAL_S = 3600.0


class Grain(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"

    @property
    def table(self) -> str:
        return {"hour": "energy_hours", "day": "energy_days", "month": "energy_months"}[self.value]


SUMS = "SUM(kwh) AS kwh, SUM(metered_kwh) AS metered_kwh, SUM(peak_kwh) AS peak_kwh, SUM(valley_kwh) AS valley_kwh, SUM(covered_s) AS covered_s"
QUARTER_SUMS = "SUM(q0_kwh) AS q0, SUM(q1_kwh) AS q1, SUM(q2_kwh) AS q2, SUM(q3_kwh) AS q3"


@dataclass(frozen=True, slots=True)
class EnergySums:
    """kWh over a span: all, metered (the rest estimated), in the tariff's peak and valley periods
    (the rest flat), and seconds of channel state known."""

    kwh: float = 0.0
    metered_kwh: float = 0.0
    peak_kwh: float = 0.0
    valley_kwh: float = 0.0
    covered_s: float = 0.0

    @property
    def estimated_kwh(self) -> float:
        return max(0.0, self.kwh - self.metered_kwh)

    @property
    def flat_kwh(self) -> float:
        return max(0.0, self.kwh - self.peak_kwh - self.valley_kwh)

    def __add__(self, other: EnergySums) -> EnergySums:
        return EnergySums(
            self.kwh + other.kwh,
            self.metered_kwh + other.metered_kwh,
            self.peak_kwh + other.peak_kwh,
            self.valley_kwh + other.valley_kwh,
            self.covered_s + other.covered_s,
        )

    @classmethod
    def of(cls, row: dict[str, Any]) -> EnergySums:
        return cls(row["kwh"] or 0.0, row["metered_kwh"] or 0.0, row["peak_kwh"] or 0.0, row["valley_kwh"] or 0.0, row["covered_s"] or 0.0)


ChannelKey = tuple[str, str]


def _where(grain: Grain, start: int, end: int, controllers: Collection[str] | None) -> tuple[str, list[Any]]:
    clause = f"{grain.value} >= ? AND {grain.value} < ?"
    params: list[Any] = [start, end]
    if controllers is not None:
        ids = sorted(controllers)
        clause += f" AND controller_id IN ({','.join('?' * len(ids))})"
        params += ids
    return clause, params


class EnergyRecords:
    def __init__(self, readers: ReaderPool) -> None:
        self._readers = readers

    async def by_channel(
        self, grain: Grain, start: int, end: int, controllers: Collection[str] | None = None
    ) -> dict[ChannelKey, EnergySums]:
        """Per (controller, channel): the sums of the rows whose key is in [start, end)."""
        clause, params = _where(grain, start, end, controllers)
        rows = await self._readers.query(
            f"SELECT controller_id, channel_id, {SUMS} FROM {grain.table} WHERE {clause} GROUP BY controller_id, channel_id",
            params,
        )
        return {(r["controller_id"], r["channel_id"]): EnergySums.of(r) for r in rows}

    async def by_bucket(
        self, grain: Grain, start: int, end: int, controllers: Collection[str] | None = None
    ) -> dict[int, EnergySums]:
        """Per hour, day or month (its key, UTC ms of its local start): the sums over channels."""
        clause, params = _where(grain, start, end, controllers)
        rows = await self._readers.query(
            f"SELECT {grain.value} AS bucket, {SUMS} FROM {grain.table} WHERE {clause} GROUP BY {grain.value} ORDER BY {grain.value}",
            params,
        )
        return {r["bucket"]: EnergySums.of(r) for r in rows}

    async def quarters(self, start: int, end: int, controllers: Collection[str] | None = None) -> dict[int, tuple[float, ...]]:
        """Per hour in [start, end): the kWh of its four quarter hours, summed over channels."""
        clause, params = _where(Grain.HOUR, start, end, controllers)
        rows = await self._readers.query(
            f"SELECT hour, {QUARTER_SUMS} FROM energy_hours WHERE {clause} GROUP BY hour ORDER BY hour", params
        )
        return {r["hour"]: (r["q0"] or 0.0, r["q1"] or 0.0, r["q2"] or 0.0, r["q3"] or 0.0) for r in rows}


def prune_rollups(conn: Connection, grain: Grain, cutoff: int) -> bool:
    """Delete the oldest bucket of ``grain`` if it starts before ``cutoff``; True if one was."""
    oldest = conn.execute(f"SELECT MIN({grain.value}) FROM {grain.table}").fetchone()[0]
    if oldest is None or oldest >= cutoff:
        return False
    conn.execute(f"DELETE FROM {grain.table} WHERE {grain.value} = ?", [oldest])
    return True
