from __future__ import annotations

import pytest

from drivers.dali import PLUGIN
from lightctl.model.values import ChannelState
from tests.test_dali_common import (
    GATEWAYS,
    controller,
    controller_data,
    no_leftover_tasks,
    running,
    with_endpoint,
)


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_floor_sends_what_the_driver_sends_in_steady_state(gateway: str) -> None:
    ctrl = controller(controller_data(gateway=gateway, lines=2, gear=64, groups=4))
    on = {ch.id: ChannelState(True, 100.0) for ch in ctrl.channels}
    async with running(ctrl) as (host, (driver,)):
        await driver.apply(on)  # learn fade times
        before = host.request_count(ctrl.id)
        await driver.apply(on)
        await driver.read(list(on))
        driver_frames = host.request_count(ctrl.id) - before
        floor = PLUGIN.create_floor_client(with_endpoint(ctrl, host), on)
        await floor.connect()
        try:
            before = host.request_count(ctrl.id)
            sent = await floor.run()
        finally:
            await floor.close()
        assert sent == host.request_count(ctrl.id) - before == driver_frames == 2 * (1 + 4)
    await no_leftover_tasks()
