"""Simulated DALI control gear on a simulated line, as IEC 62386-102/-209 describe them.

Every forward frame is decoded with python-dali's ``Command.from_frame`` (with the device type
enabled by the frame before it) and dispatched by command class through a table, so a frame the
driver encodes wrongly is refused here the way real gear would ignore it. Levels fade linearly in
arc steps over the gear's fade time and are evaluated lazily, so 12,800 idle gear cost nothing.
Send-twice commands act only when the identical frame arrives twice within 100 ms.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from dali import address
from dali.command import Command
from dali.frame import ForwardFrame
from dali.gear import colour, general

from drivers.dali.frames import FRAMING_ERROR, NO_REPLY, Reply, ReplyKind
from drivers.dali.levels import ARC_MAX, MASK, arc_to_percent, fade_time_s

SEND_TWICE_WINDOW_S = 0.1
DEVICE_TYPE_LED = 6
DEVICE_TYPE_COLOUR = 8


class Gear:
    __slots__ = (
        "address", "device_type", "dtr0", "dtr1", "dtr2", "fade_code", "fade_from", "fade_s", "fade_start",
        "gear_failure", "groups", "lamp_failure", "max_level", "min_level", "missing", "power_on_level",
        "scenes", "target", "tc_mirek", "temp_tc", "watts",
    )

    def __init__(self, addr: int, *, groups: int = 0, device_type: int = DEVICE_TYPE_LED, watts: float = 0.0) -> None:
        self.address = addr
        self.groups = groups
        self.device_type = device_type
        self.watts = watts
        self.scenes = [MASK] * 16
        self.dtr0 = self.dtr1 = self.dtr2 = 0
        self.fade_code = 0
        self.min_level, self.max_level, self.power_on_level = 1, ARC_MAX, ARC_MAX
        self.target = 0
        self.fade_from = 0
        self.fade_start = 0.0
        self.fade_s = 0.0
        self.lamp_failure = self.gear_failure = self.missing = False
        self.tc_mirek = self.temp_tc = 250 if device_type == DEVICE_TYPE_COLOUR else 0

    def level(self, now: float) -> int:
        if self.fade_s <= 0 or now >= self.fade_start + self.fade_s:
            return self.target
        done = (now - self.fade_start) / self.fade_s
        return round(self.fade_from + (self.target - self.fade_from) * done)

    def fading(self, now: float) -> bool:
        return self.fade_s > 0 and now < self.fade_start + self.fade_s and self.target != self.fade_from

    def go(self, arc: int, now: float, *, fade: bool = True) -> None:
        if arc == MASK:  # stop fading where it is
            self.target, self.fade_s = self.level(now), 0.0
            return
        if arc != 0:
            arc = max(self.min_level, min(self.max_level, arc))
        self.fade_from = self.level(now)
        self.target = arc
        self.fade_start = now
        self.fade_s = fade_time_s(self.fade_code) if fade else 0.0

    def status(self, now: float) -> int:
        lit = self.level(now) > 0 and not self.lamp_failure
        return (
            (0x01 if self.gear_failure else 0)
            | (0x02 if self.lamp_failure else 0)
            | (0x04 if lit else 0)
            | (0x10 if self.fading(now) else 0)
        )

    def power_w(self, now: float) -> float:
        if self.lamp_failure or self.missing:
            return 0.0
        return self.watts * arc_to_percent(self.level(now)) / 100.0


Handler = Callable[["SimLine", Gear, Command, float], int | bool | None]
"""Acts on one addressed gear; returns the answer (int 0-255, True = YES) or None for no answer."""


def _yes(flag: bool) -> bool | None:
    return True if flag else None


def _dapc(line: SimLine, gear: Gear, cmd: Command, now: float) -> None:
    gear.go(cmd.power, now)


def _scene(line: SimLine, gear: Gear, cmd: Command, now: float) -> None:
    stored = gear.scenes[cmd.param]
    if stored != MASK:
        gear.go(stored, now)


def _set_tc(line: SimLine, gear: Gear, cmd: Command, now: float) -> None:
    gear.temp_tc = (line.dtr1 << 8) | line.dtr0


def _activate(line: SimLine, gear: Gear, cmd: Command, now: float) -> None:
    gear.tc_mirek = gear.temp_tc


def _colour_value(line: SimLine, gear: Gear, cmd: Command, now: float) -> int | None:
    if line.dtr0 != colour.QueryColourValueDTR.ColourTemperatureTC:
        return MASK
    line.dtr0 = gear.tc_mirek & 0xFF  # the standard puts the LSB in DTR0
    return (gear.tc_mirek >> 8) & 0xFF


def _groups(low: int) -> Handler:
    def answer(line: SimLine, gear: Gear, cmd: Command, now: float) -> int:
        return (gear.groups >> low) & 0xFF

    return answer


HANDLERS: dict[type[Command], Handler] = {
    general.DAPC: _dapc,
    general.Off: lambda line, g, c, now: g.go(0, now, fade=False),
    general.RecallMaxLevel: lambda line, g, c, now: g.go(g.max_level, now, fade=False),
    general.RecallMinLevel: lambda line, g, c, now: g.go(g.min_level, now, fade=False),
    general.GoToScene: _scene,
    general.SetFadeTime: lambda line, g, c, now: setattr(g, "fade_code", min(line.dtr0, 15)),
    general.SetScene: lambda line, g, c, now: g.scenes.__setitem__(c.param, line.dtr0),
    general.RemoveFromScene: lambda line, g, c, now: g.scenes.__setitem__(c.param, MASK),
    general.AddToGroup: lambda line, g, c, now: setattr(g, "groups", g.groups | (1 << c.param)),
    general.RemoveFromGroup: lambda line, g, c, now: setattr(g, "groups", g.groups & ~(1 << c.param)),
    general.SetPowerOnLevel: lambda line, g, c, now: setattr(g, "power_on_level", line.dtr0),
    general.SetMaxLevel: lambda line, g, c, now: setattr(g, "max_level", max(g.min_level, min(ARC_MAX, line.dtr0))),
    general.SetMinLevel: lambda line, g, c, now: setattr(g, "min_level", max(1, min(g.max_level, line.dtr0))),
    general.QueryStatus: lambda line, g, c, now: g.status(now),
    general.QueryControlGearPresent: lambda line, g, c, now: True,
    general.QueryLampFailure: lambda line, g, c, now: _yes(g.lamp_failure),
    general.QueryLampPowerOn: lambda line, g, c, now: _yes(g.level(now) > 0 and not g.lamp_failure),
    general.QueryControlGearFailure: lambda line, g, c, now: _yes(g.gear_failure),
    general.QueryActualLevel: lambda line, g, c, now: g.level(now),
    general.QueryMaxLevel: lambda line, g, c, now: g.max_level,
    general.QueryMinLevel: lambda line, g, c, now: g.min_level,
    general.QueryPhysicalMinimum: lambda line, g, c, now: 1,
    general.QueryPowerOnLevel: lambda line, g, c, now: g.power_on_level,
    general.QueryDeviceType: lambda line, g, c, now: g.device_type,
    general.QueryVersionNumber: lambda line, g, c, now: 8,  # 2.0 (DALI-2)
    general.QueryFadeTimeFadeRate: lambda line, g, c, now: (g.fade_code << 4) | 7,
    general.QuerySceneLevel: lambda line, g, c, now: g.scenes[c.param],
    general.QueryGroupsZeroToSeven: _groups(0),
    general.QueryGroupsEightToFifteen: _groups(8),
    general.QueryContentDTR0: lambda line, g, c, now: line.dtr0,
    general.QueryContentDTR1: lambda line, g, c, now: line.dtr1,
    colour.SetTemporaryColourTemperature: _set_tc,
    colour.Activate: _activate,
    colour.QueryColourValue: _colour_value,
}
"""Commands the simulated gear understands; any other frame is ignored, as real gear does."""

OUTPUT_COMMANDS: frozenset[type[Command]] = frozenset(
    {general.DAPC, general.Off, general.RecallMaxLevel, general.RecallMinLevel, general.GoToScene, colour.Activate}
)
"""Commands that change what the gear put out (their instants are kept for show timing)."""
WRITE_TIMES_KEPT = 5000


@dataclass
class SimLine:
    """One DALI line: its gear and the bus-wide registers (DTR0-2 and the enabled device type
    are per gear in the standard; every gear sees every DTR frame, so one copy serves all)."""

    number: int
    gear: dict[int, Gear]
    dtr0: int = 0
    dtr1: int = 0
    dtr2: int = 0
    enabled_dt: int = 0
    frames: int = 0
    decoded: list[str] = field(default_factory=list)
    record: bool = False
    write_times: deque[float] = field(default_factory=lambda: deque(maxlen=WRITE_TIMES_KEPT))
    """``time.monotonic()`` of each frame that changed outputs, as it went on the bus."""
    _last_twice: tuple[int, float] | None = None

    def members(self, target: address.Address | None) -> list[Gear]:
        gear = [g for g in self.gear.values() if not g.missing]
        if isinstance(target, address.GearBroadcast):
            return gear
        if isinstance(target, address.GearGroup):
            bit = 1 << target.group
            return [g for g in gear if g.groups & bit]
        if isinstance(target, address.GearShort):
            found = self.gear.get(target.address)
            return [found] if found is not None and not found.missing else []
        return []

    def execute(self, frame: ForwardFrame, now: float | None = None) -> Reply:
        """One forward frame on the wire; returns what the bus carries back."""
        now = time.monotonic() if now is None else now
        self.frames += 1
        devicetype, self.enabled_dt = self.enabled_dt, 0
        command = Command.from_frame(frame, devicetype=devicetype)
        if self.record:
            self.decoded.append(str(command))
        if command.sendtwice:
            if not self._second_of_pair(frame, now):
                return NO_REPLY
        else:
            self._last_twice = None
        if isinstance(command, general.DTR0):
            self.dtr0 = command.param
        elif isinstance(command, general.DTR1):
            self.dtr1 = command.param
        elif isinstance(command, general.DTR2):
            self.dtr2 = command.param
        elif isinstance(command, general.EnableDeviceType):
            self.enabled_dt = command.param
        handler = HANDLERS.get(type(command))
        if handler is None:
            return NO_REPLY
        if type(command) in OUTPUT_COMMANDS:
            self.write_times.append(now)
        answers: list[int] = []
        for gear in self.members(getattr(command, "destination", None)):
            if command.devicetype and gear.device_type != command.devicetype:
                continue
            answer = handler(self, gear, command, now)
            if answer is not None and command.response is not None:
                answers.append(MASK if answer is True else int(answer) & 0xFF)
        if not answers:
            return NO_REPLY
        if len(answers) > 1:
            return FRAMING_ERROR
        return Reply(ReplyKind.VALUE, answers[0])

    def _second_of_pair(self, frame: ForwardFrame, now: float) -> bool:
        last = self._last_twice
        if last is not None and last[0] == frame.as_integer and now - last[1] <= SEND_TWICE_WINDOW_S:
            self._last_twice = None
            return True
        self._last_twice = (frame.as_integer, now)
        return False

    def power_w(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return sum(g.power_w(now) for g in self.gear.values())
