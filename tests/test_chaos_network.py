"""Network faults between the daemon and devices of all four protocols (issue 18): answers at twice
the timeout, silence, garbage bytes, the connection dropped mid-request, half a reply. Every time:
the others switched within their deadline, each failure reported with its reason, nothing held up
(another command and the polls go on), everything converged once the network is sound again."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest

from lightctl.model.values import ChannelState
from lightctl.reconcile.outcomes import EngineEvent, EngineSettings, ReadingEvent
from lightctl.simulation.chaos import Mode
from tests.chaos_support import (
    DEADLINE_S,
    HALF,
    MARGIN_S,
    ON,
    TIMEOUT_S,
    Field,
    assert_failures_named,
    assert_healthy_switched,
    mixed_field,
    wait_until,
)

Expect = dict[str, tuple[set[str], tuple[str, ...]]]
"""Per kind of endpoint: the error kinds the fault may be reported as, and words its message names."""

SILENCE: Expect = {
    "modbus": ({"timeout"}, ("no reply",)),
    "opcua": ({"timeout"}, ("no answer",)),
    # a second line's transaction on the new WebSocket the first one's timeout left: no handshake
    "dali-ws": ({"timeout"}, ("no answer", "no websocket session")),
    "daliserver": ({"timeout"}, ("no reply",)),
    "bacnet": ({"in_doubt"}, ("no answer", "may still be applied")),
}
EXPECTED: dict[Mode, Expect] = {
    Mode.DELAY: SILENCE,
    Mode.SILENT: SILENCE,
    Mode.GARBAGE: {
        "modbus": ({"protocol"}, ("malformed",)),
        "opcua": ({"timeout", "unreachable"}, ("no answer", "connection lost")),  # asyncua waits for the body its garbage header announces
        # garbage in a frame, or (on the reconnect for the other line) instead of the HTTP handshake
        "dali-ws": ({"protocol", "unreachable"}, ("undecodable", "bad status line")),
        "daliserver": ({"protocol"}, ("reply version", "unknown reply status")),
        "bacnet": ({"in_doubt"}, ("no answer",)),  # a datagram that is no BACnet is dropped: silence
    },
    Mode.CUT: {
        "modbus": ({"unreachable"}, ("connection closed", "connection lost")),
        "opcua": ({"unreachable"}, ("connection lost", "reset")),
        # the WebSocket cut, or (the other line's reconnect) its handshake cut
        "dali-ws": ({"unreachable"}, ("websocket closed", "during the websocket handshake")),
        "daliserver": ({"unreachable"}, ("session lost",)),
        "bacnet": ({"in_doubt"}, ("no answer",)),
    },
    Mode.HALF: {
        "modbus": ({"unreachable"}, ("connection closed",)),
        "opcua": ({"unreachable"}, ("connection lost",)),
        # one line's transaction lost with the WebSocket while the other line's went through on
        # a new one: that line's channels are reported refused, naming the closed WebSocket
        "dali-ws": ({"unreachable", "rejected"}, ("websocket closed", "during the websocket handshake")),
        "daliserver": ({"unreachable"}, ("session lost",)),
        "bacnet": ({"in_doubt"}, ("no answer",)),
    },
}


def endpoint_kind(field: Field, controller_id: str) -> str:
    ctrl = field.inventory.controllers[controller_id].controller
    if ctrl.protocol == "dali":
        return "daliserver" if ctrl.profile == "daliserver" else "dali-ws"
    return ctrl.protocol


@pytest.mark.parametrize("mode", [Mode.DELAY, Mode.SILENT, Mode.GARBAGE, Mode.CUT, Mode.HALF])
async def test_network_fault_on_one_controller_of_each_kind(make_farm: Any, mode: Mode) -> None:
    settings = EngineSettings(deadline_s=DEADLINE_S, retry_initial_s=0.2, retry_max_s=1.0, polling=True)
    async with mixed_field(make_farm, 12, settings=settings, poll_s=1.0) as field:
        kinds = {cid: endpoint_kind(field, cid) for cid in field.ids}
        faulty: dict[str, str] = {}
        for cid, kind in kinds.items():
            faulty.setdefault(kind, cid)
        faulty_ids = sorted(faulty.values())
        healthy = [cid for cid in field.ids if cid not in faulty_ids]
        assert len(faulty_ids) == 5 and len(healthy) == 7
        assert_healthy_switched(await field.switch(ON), field.ids)

        heard: dict[str, int] = defaultdict(int)

        def note(event: EngineEvent) -> None:
            if isinstance(event, ReadingEvent):
                heard[event.controller_id] += 1

        field.engine.listeners.append(note)
        for cid in faulty_ids:
            field.net.set(cid, mode, 2 * TIMEOUT_S)
        field.engine.set_desired(dict.fromkeys(field.keys(), HALF))
        loop = asyncio.get_running_loop()
        switching = asyncio.create_task(field.engine.command(field.keys()))
        await asyncio.sleep(0.05)
        other = await field.engine.command(field.keys(healthy))  # another command, meanwhile
        other_done = loop.time()
        outcome = await switching
        switching_done = loop.time()

        assert outcome.elapsed_s < DEADLINE_S + MARGIN_S
        assert_healthy_switched(outcome, healthy)
        assert_healthy_switched(other, healthy)
        for cid in faulty_ids:
            expected_kinds, words = EXPECTED[mode][kinds[cid]]
            assert_failures_named(outcome, [cid], expected_kinds, words)
        if mode in (Mode.DELAY, Mode.SILENT):  # the faulty ones take their timeout: the other command did not wait for it
            assert other_done < switching_done, (other.elapsed_s, outcome.elapsed_s)

        # The polls and pushes of the others go on while the fault lasts.
        heard.clear()
        await asyncio.sleep(2.5)
        assert all(heard[cid] for cid in healthy), {cid: heard[cid] for cid in healthy}

        # The network sound again: everything converges by itself, to what was last commanded.
        field.net.clear()
        def sound() -> bool:
            online = all(field.engine.runtimes[cid].link.state.value == "online" for cid in faulty_ids)
            return online and not field.engine.unconfirmed()

        # within the retry cap, a deadline, and (for a driver that polls by itself) its silence watchdog
        assert await wait_until(sound, 1.0 * 1.25 + DEADLINE_S + 3 * 1.0 + 2.0), (
            field.engine.unconfirmed(), {cid: field.engine.runtimes[cid].link.state.value for cid in faulty_ids})
        for cid in faulty_ids:
            rt = field.engine.runtimes[cid]
            assert all(isinstance(st, ChannelState) and st == HALF for st in rt.confirmed.values()), cid
            assert rt.link.state.value == "online", cid
