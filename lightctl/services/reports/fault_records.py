"""The faults' and work orders' records (issue 14) as the reports' sources
(:mod:`lightctl.services.reports.sources`).

* Luminaires out of service at an instant: every channel a fault open then leaves dark as a whole
  (a tripped circuit, control gear not answering, a cabinet without supply or with its cable
  stolen, a site without supply). A lamp failure leaves part of a circuit dark; how much, only
  the reading can say, so the inspection keeps its own estimate from the measured power for it
  (:func:`lightctl.services.reports.lighting_on.inspect` takes the larger of the two).
* Cases due in a span, per district and site: every work order whose deadline fell in it; the
  deferred ones (a deferral with its reason) are out of the denominator, and of the others those
  handled and closed by their deadline, and closed at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lightctl.inventory.index import ChannelKey, Inventory
from lightctl.model.values import FaultKind
from lightctl.services.reports.sources import CaseCounts
from lightctl.store import Store

DARK_WHOLE = (FaultKind.BREAKER_TRIP, FaultKind.GEAR_FAILURE, FaultKind.SUPPLY_LOSS, FaultKind.CABLE_THEFT)
"""Fault kinds that leave every luminaire of what they name dark."""


class FaultRecords:
    def __init__(self, store: Store, inventory: Inventory) -> None:
        self.store, self.inventory = store, inventory

    async def faulty_luminaires(self, at_ms: int) -> Mapping[ChannelKey, float]:
        marks = ", ".join("?" for _ in DARK_WHOLE)
        rows = await self.store.read(
            f"SELECT site_id, controller_id, channel_id FROM faults WHERE kind IN ({marks}) "
            "AND opened_at <= ? AND (cleared_at IS NULL OR cleared_at > ?)",
            [*(k.value for k in DARK_WHOLE), at_ms, at_ms],
        )
        out: dict[ChannelKey, float] = {}
        for row in rows:
            for key in self._channels(row["site_id"], row["controller_id"], row["channel_id"]):
                out[key] = float(self.inventory.channels[key].channel.luminaire_count)
        return out

    def _channels(self, site_id: str, controller_id: str | None, channel_id: str | None) -> list[ChannelKey]:
        """What a fault names, as channels of the installation now (a fault on equipment since
        removed from the config names none)."""
        channels = self.inventory.channels
        if controller_id is not None and channel_id is not None:
            return [(controller_id, channel_id)] if (controller_id, channel_id) in channels else []
        if controller_id is not None:
            info = self.inventory.controllers.get(controller_id)
            return [] if info is None else [(controller_id, ch.id) for ch in info.controller.channels]
        site = self.inventory.sites.get(site_id)
        return [] if site is None else [(c.id, ch.id) for c in site.controllers for ch in c.channels]


class WorkOrderCases:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def case_counts(self, start_ms: int, end_ms: int) -> Sequence[CaseCounts]:
        rows = await self.store.read(
            "SELECT district_id, site_id, COUNT(*) AS due, "
            "SUM(CASE WHEN deferred_at IS NOT NULL THEN 1 ELSE 0 END) AS deferred, "
            "SUM(CASE WHEN deferred_at IS NULL AND handled_at IS NOT NULL AND handled_at <= due_at THEN 1 ELSE 0 END) AS handled_on_time, "
            "SUM(CASE WHEN deferred_at IS NULL AND closed_at IS NOT NULL AND closed_at <= due_at THEN 1 ELSE 0 END) AS closed_on_time, "
            "SUM(CASE WHEN deferred_at IS NULL AND closed_at IS NOT NULL THEN 1 ELSE 0 END) AS closed "
            "FROM work_orders WHERE due_at >= ? AND due_at < ? AND district_id IS NOT NULL "
            "GROUP BY district_id, site_id ORDER BY district_id, site_id",
            [start_ms, end_ms],
        )
        return [
            CaseCounts(row["district_id"], row["site_id"], int(row["due"]), int(row["deferred"]), int(row["handled_on_time"]),
                       int(row["closed_on_time"]), int(row["closed"]))
            for row in rows
        ]
