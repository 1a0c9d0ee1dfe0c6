"""The reports read the faults' and work orders' own records (issue 15 over issue 14): what a
fault leaves dark counts as out of service at an inspection, and the work orders due in a period
give the rates of cases handled and closed on time (deferred ones out of the denominator)."""

from __future__ import annotations

import asyncio

from conftest import StoreBackend
from test_faults_workorders import ON, at, reading, service_for

from lightctl.model.faults import Severity
from lightctl.model.values import ChannelReading, FaultKind
from lightctl.services.reports.fault_records import FaultRecords, WorkOrderCases
from lightctl.services.reports.groups import Places
from lightctl.services.reports.rates import CASE_FIGURES, case_counts
from lightctl.services.reports.sources import CaseCounts

K = FaultKind


async def test_a_tripped_circuit_is_out_of_service_while_its_fault_is_open(backend: StoreBackend) -> None:
    opened = at(2026, 3, 10, 20, 0)
    service, _desk, _published, store = await service_for(backend, opened)
    try:
        tripped = ChannelReading(on=False, level=100.0, power_w=0.0, faults=frozenset({K.BREAKER_TRIP}))
        lit = ChannelReading(on=True, level=100.0, power_w=400.0)
        service.reading("w0", reading(c1=tripped, c2=lit), {"c1": ON, "c2": ON}, False, opened)
        service.drain(opened)
        await service.flush(opened)
        records = FaultRecords(store, service.inventory)
        assert await records.faulty_luminaires(opened - 1) == {}  # before it opened
        assert await records.faulty_luminaires(opened + 60_000) == {("w0", "c1"): 10.0}  # its 10 lamps

        cleared = opened + 3_600_000
        healthy = ChannelReading(on=True, level=100.0, power_w=200.0)
        for step in range(40):  # readings until the clear hold-off has passed
            service.reading("w0", reading(c1=healthy, c2=lit), {"c1": ON, "c2": ON}, False, cleared + step * 10_000)
            service.tick(cleared + step * 10_000)
            service.drain(cleared + step * 10_000)
        await service.flush(cleared + 400_000)
        (fault,) = await store.read("SELECT kind, cleared_at FROM faults")
        assert fault["kind"] == "breaker_trip" and fault["cleared_at"] is not None
        assert await records.faulty_luminaires(opened + 60_000) == {("w0", "c1"): 10.0}  # then, still
        assert await records.faulty_luminaires(fault["cleared_at"] + 1) == {}
    finally:
        await asyncio.to_thread(store.close)


async def test_cases_due_in_a_period_handled_and_closed_on_time(backend: StoreBackend) -> None:
    now = at(2026, 3, 10, 9, 0)  # a working Tuesday; hotline reports are ordinary: 24 h
    service, desk, _published, store = await service_for(backend, now)
    try:
        async def report(site: str, crew: str, minute: int) -> int:
            order = await desk.file(by="热线", now=now + minute * 60_000, title="路灯不亮", severity=Severity.ORDINARY,
                                    reference=f"12319-{minute}", site=site, crew=crew)
            return order.id

        on_time = await report("site-0", "yuzhong-1", 0)
        late = await report("site-0", "yuzhong-1", 1)
        deferred = await report("site-0", "yuzhong-1", 2)
        await report("site-1", "jiangbei-1", 3)  # never handled
        for order, handled, closed in ((on_time, 20, 21), (late, 34, 40)):  # due the 11th at 09:00/09:01
            await desk.step(order, "handle", by="老王", now=at(2026, 3, 10, handled % 24, 0) + (handled // 24) * 86_400_000)
            await desk.step(order, "feedback", by="老王", now=at(2026, 3, 10, handled % 24, 30) + (handled // 24) * 86_400_000, note="修复")
            await desk.step(order, "verify", by="核查员", now=at(2026, 3, 10, closed % 24, 0) + (closed // 24) * 86_400_000)
            await desk.step(order, "close", by="核查员", now=at(2026, 3, 10, closed % 24, 10) + (closed // 24) * 86_400_000)
        await desk.step(deferred, "defer", by="调度", now=at(2026, 3, 10, 12, 0), note="封路施工", until=at(2026, 3, 20, 12, 0))

        cases = WorkOrderCases(store)
        counts = {(c.district_id, c.site_id): c for c in await cases.case_counts(at(2026, 3, 11, 0, 0), at(2026, 3, 12, 0, 0))}
        assert counts == {
            ("d1", "site-0"): CaseCounts("d1", "site-0", due=3, deferred=1, handled_on_time=1, closed_on_time=1, closed=2),
            ("d2", "site-1"): CaseCounts("d2", "site-1", due=1, deferred=0, handled_on_time=0, closed_on_time=0, closed=0),
        }
        assert await cases.case_counts(at(2026, 3, 12, 0, 0), at(2026, 3, 13, 0, 0)) == []  # none due then

        places = Places(service.inventory, None)
        summed = dict(case_counts(list(counts.values()), places))
        by_figure: dict[str, tuple[float, float]] = {}
        for _place, figures in case_counts(list(counts.values()), places):
            for key, (numerator, denominator) in figures.items():
                got = by_figure.get(key, (0.0, 0.0))
                by_figure[key] = (got[0] + numerator, got[1] + denominator)
        assert summed and {f.key for f in CASE_FIGURES} == set(by_figure)
        handled, closed_on_time, closed = (by_figure[f.key] for f in CASE_FIGURES)
        assert handled == (1.0, 3.0) and closed_on_time == (1.0, 3.0) and closed == (2.0, 3.0)  # of 4 due, 1 deferred
    finally:
        await asyncio.to_thread(store.close)
