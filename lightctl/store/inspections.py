"""Lighting-on inspections: what the daemon found lit at an instant, per site and lighting class
(migration 0022). Taken by ``lightctl.runtime.reports``; read back as sums over a span, per
group, or per inspection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lightctl.store.readers import ReaderPool, Row
from lightctl.store.sql import Connection
from lightctl.store.writer import Writer


@dataclass(frozen=True, slots=True)
class ClassRow:
    """One site's luminaires of one lighting class (arterial, other, landscape) at an inspection."""

    site_id: str
    district_id: str
    region: str
    lighting_class: str
    luminaires: int
    should_be_lit: int
    lit: float
    not_reported: int
    faulty: float


@dataclass(frozen=True, slots=True)
class SiteRow:
    site_id: str
    district_id: str
    region: str
    controllers: int
    online: int


@dataclass(frozen=True, slots=True)
class Inspection:
    at: int
    instant: str
    source: str
    classes: Sequence[ClassRow]
    sites: Sequence[SiteRow]


CLASS_SUMS = (
    "SUM(luminaires) AS luminaires, SUM(should_be_lit) AS should_be_lit, SUM(lit) AS lit,"
    " SUM(not_reported) AS not_reported, SUM(faulty) AS faulty, COUNT(DISTINCT inspection_id) AS inspections"
)


class Inspections:
    def __init__(self, writer: Writer, readers: ReaderPool) -> None:
        self._writer = writer
        self._readers = readers

    async def add(self, inspection: Inspection) -> int:
        def write(conn: Connection) -> int:
            cur = conn.execute(
                "INSERT INTO lighting_inspections (at, instant, source) VALUES (?,?,?)",
                [inspection.at, inspection.instant, inspection.source],
            )
            inspection_id = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT INTO lighting_inspection_rows (inspection_id, site_id, district_id, region, lighting_class,"
                " luminaires, should_be_lit, lit, not_reported, faulty) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (inspection_id, r.site_id, r.district_id, r.region, r.lighting_class, r.luminaires,
                     r.should_be_lit, r.lit, r.not_reported, r.faulty)
                    for r in inspection.classes
                ],
            )
            conn.executemany(
                "INSERT INTO lighting_inspection_sites (inspection_id, site_id, district_id, region, controllers, online)"
                " VALUES (?,?,?,?,?,?)",
                [(inspection_id, s.site_id, s.district_id, s.region, s.controllers, s.online) for s in inspection.sites],
            )
            return inspection_id

        return await self._writer.write(write)

    async def class_sums(self, start: int, end: int) -> list[Row]:
        """Per site, district, region and class: the sums over the inspections taken in [start, end)."""
        return await self._readers.query(
            f"SELECT r.site_id, r.district_id, r.region, r.lighting_class, {CLASS_SUMS}"
            " FROM lighting_inspection_rows r JOIN lighting_inspections i ON i.id = r.inspection_id"
            " WHERE i.at >= ? AND i.at < ? GROUP BY r.site_id, r.district_id, r.region, r.lighting_class",
            [start, end],
        )

    async def site_sums(self, start: int, end: int) -> list[Row]:
        """Per site: controllers and those online, summed over the inspections in [start, end)."""
        return await self._readers.query(
            "SELECT s.site_id, s.district_id, s.region, SUM(s.controllers) AS controllers, SUM(s.online) AS online,"
            " COUNT(DISTINCT s.inspection_id) AS inspections"
            " FROM lighting_inspection_sites s JOIN lighting_inspections i ON i.id = s.inspection_id"
            " WHERE i.at >= ? AND i.at < ? GROUP BY s.site_id, s.district_id, s.region",
            [start, end],
        )

    async def listed(self, start: int, end: int, district: str | None = None) -> list[Row]:
        """Each inspection in [start, end), oldest first, with its sums per class (of one district)."""
        params: list[Any] = [start, end]
        only = ""
        if district is not None:
            only = " AND r.district_id = ?"
            params.append(district)
        return await self._readers.query(
            f"SELECT i.id, i.at, i.instant, i.source, r.lighting_class, {CLASS_SUMS}"
            " FROM lighting_inspections i JOIN lighting_inspection_rows r ON r.inspection_id = i.id"
            f" WHERE i.at >= ? AND i.at < ?{only} GROUP BY i.id, i.at, i.instant, i.source, r.lighting_class"
            " ORDER BY i.at, i.id, r.lighting_class",
            params,
        )


def prune_inspections(conn: Connection, cutoff: int) -> bool:
    """Delete the oldest inspection if taken before ``cutoff``; True if one was."""
    row = conn.execute("SELECT id FROM lighting_inspections WHERE at < ? ORDER BY at LIMIT 1", [cutoff]).fetchone()
    if row is None:
        return False
    conn.execute("DELETE FROM lighting_inspection_rows WHERE inspection_id = ?", [row[0]])
    conn.execute("DELETE FROM lighting_inspection_sites WHERE inspection_id = ?", [row[0]])
    conn.execute("DELETE FROM federation_inspection_copies WHERE inspection_id = ?", [row[0]])  # (the city's: whose copy it was)
    conn.execute("DELETE FROM lighting_inspections WHERE id = ?", [row[0]])
    return True
