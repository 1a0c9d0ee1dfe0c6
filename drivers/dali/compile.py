"""Compilation of a batch on one DALI line into the fewest frames.

Per line, each gear gets a :class:`Target` from the channel that reaches it. Candidate plans:

* group and short-address frames only: every declared group whose members all share one target
  costs one frame, the rest one frame per gear;
* when the batch reaches every gear of the line: one broadcast with the most common target, then
  groups and short addresses for the gear that differ;
* GoToScene (broadcast) of a scene stored in the gear whose stored levels equal the targets of all
  its members (learned from the gear by the sweep), then the rest as above.

The cheapest in bus frames wins (a send-twice command counts two). A fade time or colour temperature
the gear are not known to hold already costs its setup frames before the level frame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from drivers.dali import frames
from drivers.dali.frames import Transaction
from drivers.dali.levels import MASK, fade_code, kelvin_to_mirek, percent_to_arc
from drivers.dali.model import LineTopology, Point
from lightctl.model.values import ChannelId, ChannelState


@dataclass(frozen=True, slots=True)
class Target:
    arc: int
    fade: int
    mirek: int | None = None


def target_of(state: ChannelState, colour_capable: bool) -> Target:
    mirek = None
    if colour_capable and state.colour is not None and state.colour.cct_k:
        mirek = kelvin_to_mirek(state.colour.cct_k)
    return Target(percent_to_arc(state.output), fade_code(state.fade_s), mirek)


@dataclass
class LineKnowledge:
    """What the driver knows the gear of a line hold; anything unknown is set before use."""

    fade: dict[int, int] = field(default_factory=dict)
    mirek: dict[int, int] = field(default_factory=dict)
    scenes: dict[int, dict[int, int]] = field(default_factory=dict)
    """DALI scene number -> {short address: stored arc level or MASK}, read from the gear."""
    scenes_read_at: float = 0.0
    gear_levels: dict[int, int | None] = field(default_factory=dict)
    """Last answer of each gear to QueryActualLevel (None: it did not answer), from the sweep."""
    lamp_failed: dict[int, bool] = field(default_factory=dict)
    gear_failed: dict[int, bool] = field(default_factory=dict)
    level_cursor: int = 0
    scene_cursor: int = 0
    version: int = 0
    """Changes whenever what compilation reads changes (fade, mirek, scenes): a compiled batch is
    good for as long as the version it was compiled at. Change those fields through the methods
    below, or call ``changed()``."""

    def changed(self) -> None:
        self.version += 1

    def forget(self) -> None:
        if self.fade or self.mirek:
            self.fade.clear()
            self.mirek.clear()
            self.changed()

    def set_scene_level(self, scene: int, addr: int, arc: int | None) -> None:
        """What the sweep read of one gear's scene table entry (None: no answer)."""
        table = self.scenes.setdefault(scene, {})
        if table.get(addr) == arc and (arc is not None or addr not in table):
            return
        if arc is None:
            table.pop(addr, None)
        else:
            table[addr] = arc
        self.changed()


@dataclass(frozen=True, slots=True)
class LineOp:
    line: int
    kind: str
    point: Point
    gear: frozenset[int]
    target: Target
    channels: tuple[ChannelId, ...]
    transactions: tuple[Transaction, ...]

    @property
    def frames(self) -> int:
        return sum(2 if t.send_twice else 1 for t in self.transactions)


Unit = tuple[Point, frozenset[int], Target]
T = TypeVar("T", bound=Hashable)


def _cover(topo: LineTopology, wanted: Mapping[int, T]) -> list[tuple[Point, frozenset[int], T]]:
    units: list[tuple[Point, frozenset[int], T]] = []
    left = dict(wanted)
    for group, members in sorted(topo.groups.items(), key=lambda item: (-len(item[1]), item[0])):
        if len(members) < 2 or not members <= left.keys():
            continue
        targets = {left[a] for a in members}
        if len(targets) == 1:
            units.append((Point(topo.line, "group", group), members, targets.pop()))
            for addr in members:
                del left[addr]
    for addr in sorted(left):
        units.append((Point(topo.line, "short", addr), frozenset([addr]), left[addr]))
    return units


def cover_line(topo: LineTopology, wanted: Mapping[int, T]) -> list[tuple[Point, frozenset[int], T]]:
    """Fewest addressed frames giving each gear its value: groups and short addresses, or, when
    every gear of the line is wanted, a broadcast of the commonest value first."""
    best = _cover(topo, wanted)
    if set(wanted) == set(topo.gear):
        common, _ = Counter(wanted.values()).most_common(1)[0]
        rest = {a: t for a, t in wanted.items() if t != common}
        with_bc = [(Point(topo.line, "bc"), frozenset(topo.gear), common), *_cover(topo, rest)]
        if len(with_bc) < len(best):
            return with_bc
    return best


def _unit_ops(topo: LineTopology, units: list[Unit], know: LineKnowledge, owners: Mapping[int, ChannelId]) -> list[LineOp]:
    """The units' frames in order, each unit's set-up judged by what the units before it set."""
    fade, mirek = dict(know.fade), dict(know.mirek)
    ops = []
    for point, gear, target in units:
        txs: list[Transaction] = []
        if any(fade.get(a) != target.fade for a in gear):
            txs += frames.fade_time_at(point, target.fade)
        if target.mirek is not None and any(mirek.get(a) != target.mirek for a in gear):
            txs += frames.colour_temperature_at(point, target.mirek)
        txs.append(frames.arc_power_at(point, target.arc))
        channels = tuple(sorted({owners[a] for a in gear if a in owners}))
        ops.append(LineOp(topo.line, f"DAPC {point.kind}", point, gear, target, channels, tuple(txs)))
        fade.update(dict.fromkeys(gear, target.fade))
        if target.mirek is not None:
            mirek.update(dict.fromkeys(gear, target.mirek))
    return ops


def compile_line(
    topo: LineTopology, states: Mapping[ChannelId, ChannelState], know: LineKnowledge
) -> list[LineOp]:
    """The cheapest sequence of frames that puts every gear of the batch's channels on this line
    at its channel's state, leaving gear of other channels alone."""
    wanted: dict[int, Target] = {}
    owners: dict[int, ChannelId] = {}
    for channel_id, state in states.items():
        if channel_id not in topo.members:
            continue
        members = topo.members[channel_id]
        target = target_of(state, bool(set(members) & topo.colour_gear))
        for addr in members:
            wanted[addr] = target
            owners[addr] = channel_id
    if not wanted:
        return []
    plans = [_unit_ops(topo, _cover(topo, wanted), know, owners)]
    every = set(wanted) == set(topo.gear)
    if every:
        common, _ = Counter(wanted.values()).most_common(1)[0]
        rest = {a: t for a, t in wanted.items() if t != common}
        units = [(Point(topo.line, "bc"), frozenset(topo.gear), common), *_cover(topo, rest)]
        plans.append(_unit_ops(topo, units, know, owners))
    for number, stored in sorted(know.scenes.items()):
        scene_plan = _scene_plan(topo, number, stored, wanted, know, owners)
        if scene_plan is not None:
            plans.append(scene_plan)
    return min(plans, key=lambda ops: (sum(op.frames for op in ops), len(ops)))


def _scene_plan(
    topo: LineTopology, number: int, stored: Mapping[int, int], wanted: Mapping[int, Target],
    know: LineKnowledge, owners: Mapping[int, ChannelId],
) -> list[LineOp] | None:
    if set(stored) != set(topo.gear):
        return None  # not every gear's scene table is known
    members = frozenset(a for a, arc in stored.items() if arc != MASK)
    if not members or not members <= wanted.keys():
        return None
    fades = {wanted[a].fade for a in members}
    if len(fades) != 1:
        return None
    fade = fades.pop()
    for addr in members:
        target = wanted[addr]
        if target.arc != stored[addr]:
            return None
        if target.mirek is not None and know.mirek.get(addr) != target.mirek:
            return None
    point = Point(topo.line, "bc")
    address = frames.gear_address(point)
    channels = tuple(sorted({owners[a] for a in members}))
    ops = []
    if any(know.fade.get(a) != fade for a in members):
        # GoToScene fades with the gear's own fade time: set it on the whole line first
        everyone = frozenset(topo.gear)
        ops.append(
            LineOp(topo.line, "SetFadeTime broadcast", point, everyone, Target(MASK, fade), channels,
                   tuple(frames.set_fade_time(address, fade)))
        )
    ops.append(
        LineOp(topo.line, "GoToScene broadcast", point, members, wanted[min(members)], channels,
               (frames.go_to_scene(address, number),))
    )
    rest = {a: t for a, t in wanted.items() if a not in members}
    after = LineKnowledge(fade=dict(know.fade), mirek=know.mirek)
    if ops[0].kind.startswith("SetFade"):
        after.fade.update(dict.fromkeys(topo.gear, fade))
    return [*ops, *_unit_ops(topo, _cover(topo, rest), after, owners)]


def learn(op: LineOp, know: LineKnowledge) -> None:
    """After an op went out: the gear now hold its fade time and colour temperature."""
    if op.kind.startswith("GoToScene"):
        return
    fade, mirek = op.target.fade, op.target.mirek
    if all(know.fade.get(a) == fade for a in op.gear) and (
        mirek is None or all(know.mirek.get(a) == mirek for a in op.gear)
    ):
        return  # nothing new: compiled batches stay good
    for addr in op.gear:
        know.fade[addr] = fade
        if mirek is not None:
            know.mirek[addr] = mirek
    know.changed()
