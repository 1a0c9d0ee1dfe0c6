"""Commissioning for crews: scan a line for gear, store the configured scenes in the gear.

Both run through the driver's transport and per-line arbitration, with command priority.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from drivers.dali import frames
from drivers.dali.compile import cover_line
from drivers.dali.driver import DaliDriver
from drivers.dali.frames import Reply, ReplyKind
from drivers.dali.levels import MASK, arc_to_percent, percent_to_arc
from drivers.dali.model import MAX_GEAR
from lightctl.model.values import ChannelId, ChannelState

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class GearInfo:
    line: int
    address: int
    device_type: int | None
    groups: tuple[int, ...]
    level: float | None
    power_on_level: float | None
    lamp_failure: bool
    gear_failure: bool


def _value(reply: Reply) -> int | None:
    return reply.value if reply.kind is ReplyKind.VALUE else None


async def scan_line(driver: DaliDriver, line: int, progress: Progress | None = None) -> list[GearInfo]:
    """Ask every short address whether gear is there, then what it is. A framing error to
    "present?" (two gear sharing the address) counts as present: the crew must see it."""
    found: list[GearInfo] = []
    for addr in range(MAX_GEAR):
        present = await driver.transact(line, frames.query_present(addr))
        if present.yes:
            dtype = _value(await driver.transact(line, frames.query_device_type(addr)))
            low_q, high_q = frames.query_groups(addr)
            low = _value(await driver.transact(line, low_q)) or 0
            high = _value(await driver.transact(line, high_q)) or 0
            arc = _value(await driver.transact(line, frames.query_level(addr)))
            power_on = _value(await driver.transact(line, frames.query_power_on_level(addr)))
            status = _value(await driver.transact(line, frames.query_status(addr))) or 0
            mask = low | (high << 8)
            found.append(
                GearInfo(
                    line, addr, dtype, tuple(g for g in range(16) if mask >> g & 1),
                    None if arc is None or arc == MASK else arc_to_percent(arc),
                    None if power_on is None or power_on == MASK else arc_to_percent(power_on),
                    bool(status & frames.STATUS_LAMP_FAILURE), bool(status & frames.STATUS_GEAR_FAILURE),
                )
            )
        if progress is not None:
            progress(addr + 1, MAX_GEAR)
    return found


def scene_tables(
    driver: DaliDriver, scenes: Mapping[int, Mapping[ChannelId, ChannelState]]
) -> dict[int, dict[int, dict[int, int]]]:
    """Per line, per DALI scene number, the arc level (or MASK) each gear must store."""
    out: dict[int, dict[int, dict[int, int]]] = {}
    for number, topo in driver.lines.items():
        for scene, states in scenes.items():
            table = dict.fromkeys(topo.gear, MASK)
            for channel_id, state in states.items():
                for addr in topo.members.get(channel_id, ()):
                    table[addr] = percent_to_arc(state.output)
            out.setdefault(number, {})[scene] = table
    return out


async def store_scenes(driver: DaliDriver, scenes: Mapping[int, Mapping[ChannelId, ChannelState]]) -> int:
    """Write scene levels into the gear with the fewest frames (broadcast/group SET SCENE where
    gear share a level; REMOVE FROM SCENE for gear the scene does not reach), then read them back
    so the driver may use GoToScene. Returns the frames written (the read-back not counted)."""
    written = 0
    for number, tables in scene_tables(driver, scenes).items():
        topo = driver.lines[number]
        for scene, table in tables.items():
            for point, _gear, arc in cover_line(topo, table):
                address = frames.gear_address(point)
                for transaction in frames.store_scene(address, scene, None if arc == MASK else arc):
                    await driver.transact(number, transaction)
                    written += 2 if transaction.send_twice else 1
        await driver.read_scenes(number, tables)
    return written
