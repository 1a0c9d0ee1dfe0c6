"""The work-order loop with frozen time: filing from faults and from a 12319 report, deadlines in
working days across a weekend and a make-up working day, every step with its person and note,
closure refused while a fault is active without the verifier's reason, overdue told once."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import StoreBackend, build_config, installation_data, modbus_controller

from lightctl.inventory.index import Inventory
from lightctl.model.faults import Severity
from lightctl.model.maintenance import WorkOrderState
from lightctl.model.times import iso_local, to_ms
from lightctl.model.values import ChannelReading, ChannelState, ControllerReading, FaultKind
from lightctl.services.faults.desk import WorkOrderDesk
from lightctl.services.faults.service import FaultService
from lightctl.services.faults.workorders import WorkOrderRefused
from lightctl.store import Store

ZONE = ZoneInfo("Asia/Shanghai")
K = FaultKind
ON = ChannelState(True, 100.0)


def at(*args: int) -> int:
    return to_ms(datetime(*args, tzinfo=ZONE))  # type: ignore[misc]


def config_data() -> dict[str, Any]:
    data = installation_data([modbus_controller(f"w{i}", i, channels=2) for i in range(2)], per_site=1)
    data["faults"] = {
        "crews": [
            {"id": "yuzhong-1", "name": "渝中维护一班", "members": ["老王", "小李"], "districts": ["d1"]},
            {"id": "jiangbei-1", "name": "江北维护一班", "members": ["老张"], "districts": ["d2"]},
        ],
        "webhooks": [{"id": "duty", "url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef0123"}],
    }
    return data


async def service_for(backend: StoreBackend, now: int) -> tuple[FaultService, WorkOrderDesk, list[dict[str, Any]], Store]:
    """The fault service and work-order desk on a new database of ``backend`` (SQLite and
    PostgreSQL: the faults, work orders and outbox repositories on both)."""
    config = build_config(config_data())
    store = Store(backend.target("wo"))
    await asyncio.to_thread(store.open)
    published: list[dict[str, Any]] = []
    service = FaultService(config, Inventory(config), store, publish=published.append)
    await service.start(now)
    return service, WorkOrderDesk(service), published, store


def reading(**channels: ChannelReading) -> ControllerReading:
    return ControllerReading(0.0, channels, faults=frozenset(),
                             measurements={"voltage_l1_v": 226.0, "voltage_l2_v": 226.0, "voltage_l3_v": 226.0})


async def test_the_work_order_loop_across_a_weekend_and_a_make_up_working_day(backend: StoreBackend) -> None:
    friday = at(2025, 9, 26, 10, 0)  # Saturday 27 off; Sunday 28 a make-up working day before National Day
    service, desk, published, store = await service_for(backend, friday)
    try:
        tripped = ChannelReading(on=False, level=100.0, power_w=0.0, faults=frozenset({K.BREAKER_TRIP}))
        service.reading("w0", reading(c1=tripped, c2=ChannelReading(on=True, level=100.0, power_w=400.0)),
                        {"c1": ON, "c2": ON}, False, friday)
        service.drain(friday)
        (trip,) = service.tracker.by_id.values()
        assert trip.kind is K.BREAKER_TRIP and trip.severity.value == "serious"

        order = await desk.file(by="值班员", now=friday + 60_000, fault_ids=[trip.id], note="夜班巡查发现")
        assert order.state is WorkOrderState.FILED and order.source == "fault"
        assert (order.site_id, order.controller_id, order.channel_id) == ("site-0", "w0", "c1")
        # 3 working days: Friday's 14 h, the make-up Sunday, Monday, then Tuesday until 10:01
        assert iso_local(order.due_at, ZONE) == "2025-09-30T10:01:00+08:00"
        assert "make-up working days counted: 2025-09-28" in order.due_basis and not order.due_estimated
        with pytest.raises(WorkOrderRefused, match="already in open work order"):
            await desk.file(by="值班员", now=friday + 120_000, fault_ids=[trip.id])

        with pytest.raises(WorkOrderRefused, match="covers d2, not district 'd1'"):
            await desk.step(order.id, "dispatch", by="调度", now=friday + 300_000, crew="jiangbei-1")
        with pytest.raises(WorkOrderRefused, match="'handle' needs it dispatched"):
            await desk.step(order.id, "handle", by="老王", now=friday + 300_000)
        await desk.step(order.id, "dispatch", by="调度", now=friday + 300_000, crew="yuzhong-1", note="请尽快处理")
        await desk.step(order.id, "handle", by="老王", now=at(2025, 9, 28, 9, 0), note="到场")
        photo = await desk.store_photo(b"\xff\xd8\xff\xe0 jpeg bytes", "image/jpeg", "老王", at(2025, 9, 28, 11, 0))
        assert desk.photo_path(photo).read_bytes() == b"\xff\xd8\xff\xe0 jpeg bytes"
        await desk.step(order.id, "feedback", by="老王", now=at(2025, 9, 28, 11, 0), note="更换空开", photo=photo)
        await desk.step(order.id, "reject", by="核查员", now=at(2025, 9, 28, 12, 0), note="回路仍跳闸")
        await desk.step(order.id, "feedback", by="老王", now=at(2025, 9, 28, 15, 0), note="更换电缆接头", photo=photo)
        await desk.step(order.id, "verify", by="核查员", now=at(2025, 9, 29, 9, 0), note="现场核查")
        # the trip is still active: closure needs the verifier's reason
        with pytest.raises(WorkOrderRefused, match=f"fault #{trip.id} .* still active: closing needs the verifier's reason"):
            await desk.step(order.id, "close", by="核查员", now=at(2025, 9, 29, 9, 30))
        closed = await desk.step(order.id, "close", by="核查员", now=at(2025, 9, 29, 9, 30), note="控制器跳闸信号误报, 已另行报修")
        assert closed.state is WorkOrderState.CLOSED and closed.closed_with_active_fault and not closed.overdue(at(2025, 10, 9, 0, 0))

        again = await desk.get(order.id)
        assert [(s.step, s.person) for s in again.steps] == [
            ("file", "值班员"), ("dispatch", "调度"), ("handle", "老王"), ("feedback", "老王"), ("reject", "核查员"),
            ("feedback", "老王"), ("verify", "核查员"), ("close", "核查员"),
        ]
        assert again.steps[3].photo == photo and again.crew_id == "yuzhong-1" and again.handled_at == at(2025, 9, 28, 15, 0)
        assert again.closed_by == "核查员" and again.close_reason and again.handling_at == at(2025, 9, 28, 9, 0)

        # a citizen's report through the 12319 hotline: ordinary, 24 h, past due when not closed
        report = await desk.file(by="热线", now=at(2025, 9, 30, 20, 0), title="南滨路三盏路灯不亮", severity=Severity.ORDINARY,
                                 reference="12319-20250930-0042", site="site-1", crew="jiangbei-1")
        assert report.source == "hotline" and report.state is WorkOrderState.DISPATCHED
        assert (report.district_id, report.lat, report.lon) == ("d2", 29.56, 106.58)
        assert iso_local(report.due_at, ZONE) == "2025-10-01T20:00:00+08:00"
        assert await desk.check_overdue(at(2025, 10, 1, 19, 59)) == 0
        assert await desk.check_overdue(at(2025, 10, 1, 20, 1)) == 1
        assert await desk.check_overdue(at(2025, 10, 1, 20, 2)) == 0  # told once
        overdue = [m for m in published if m["type"] == "workorder" and m["event"] == "overdue"]
        assert len(overdue) == 1 and overdue[0]["workorder"]["overdue"] and overdue[0]["workorder"]["crew"] == "jiangbei-1"
        # a deferral: a new deadline with its reason (the reports count deferred cases apart)
        deferred = await desk.step(report.id, "defer", by="调度", now=at(2025, 10, 1, 21, 0), note="国庆期间封路",
                                   until=at(2025, 10, 9, 12, 0))
        assert deferred.deferred_until == at(2025, 10, 9, 12, 0) and not deferred.overdue(at(2025, 10, 2, 0, 0))
        outbox = await store.outbox.rows()
        assert {r["event"] for r in outbox} >= {"workorder.filed", "workorder.dispatched", "workorder.handled",
                                                "workorder.closed", "workorder.overdue", "workorder.deferred"}
    finally:
        await asyncio.to_thread(store.close)


async def test_an_emergency_files_and_dispatches_itself_and_a_deadline_in_an_unpublished_year_says_so(backend: StoreBackend) -> None:
    now = at(2027, 1, 29, 10, 0)
    service, desk, published, store = await service_for(backend, now)
    try:
        theft = ControllerReading(0.0, {"c1": ChannelReading(on=False, level=0.0, power_w=0.0)},
                                  faults=frozenset({K.CABLE_THEFT}))
        service.reading("w0", theft, {"c1": ChannelState(False, 0.0)}, False, now)
        service.drain(now)
        await service.flush(now)
        (order,) = await store.work_orders.query()
        assert order.source == "fault" and order.severity.value == "emergency" and order.crew_id == "yuzhong-1"
        assert order.state is WorkOrderState.DISPATCHED and order.due_at == now + 3_600_000
        assert [m["event"] for m in published if m["type"] == "workorder"] == ["filed"]
        serious = await desk.file(by="值班员", now=now, title="桥头灯杆倾斜", severity=Severity.SERIOUS, site="site-0")
        assert serious.due_estimated and "2027 holidays estimated" in serious.due_basis
    finally:
        await asyncio.to_thread(store.close)
