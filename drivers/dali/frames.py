"""DALI vocabulary for the driver: python-dali command classes, as transactions on a line.

A :class:`Transaction` is one forward frame as the bus sees it: whether the standard wants it sent
twice (configuration commands, within 100 ms) and whether a backward frame is awaited. DT8 colour
commands are preceded by ``EnableDeviceType(8)`` here, because python-dali's sequences do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from dali import address
from dali.command import Command
from dali.frame import ForwardFrame
from dali.gear import colour, general

from drivers.dali.model import Point


class ReplyKind(Enum):
    NONE = "none"
    """No backward frame: "no" to a yes/no query, "nothing there" to others."""
    VALUE = "value"
    FRAMING_ERROR = "framing_error"
    """Several gear answered at once (or the answer was garbled): its own outcome, never a "no"."""


@dataclass(frozen=True, slots=True)
class Reply:
    kind: ReplyKind
    value: int | None = None

    @property
    def yes(self) -> bool:
        """For yes/no queries: any answer, garbled or not, means at least one gear said yes."""
        return self.kind is not ReplyKind.NONE


NO_REPLY = Reply(ReplyKind.NONE)
FRAMING_ERROR = Reply(ReplyKind.FRAMING_ERROR)


@dataclass(frozen=True, slots=True)
class Transaction:
    command: Command
    send_twice: bool
    expects_reply: bool

    @property
    def frame(self) -> ForwardFrame:
        frame: ForwardFrame = self.command.frame
        return frame

    def __str__(self) -> str:
        return f"{self.command}{' x2' if self.send_twice else ''}"


def tx(command: Command) -> Transaction:
    return Transaction(command, bool(command.sendtwice), command.response is not None)


def gear_address(point: Point) -> address.GearAddress:
    if point.kind == "bc":
        return address.GearBroadcast()
    if point.kind == "group":
        return address.GearGroup(point.number)
    return address.GearShort(point.number)


def short(addr: int) -> address.GearAddress:
    return address.GearShort(addr)


# --------------------------------------------------------------------------- commands


def arc_power(target: address.GearAddress, arc: int) -> Transaction:
    """DAPC: fade to ``arc`` (0 = off) with the gear's fade time."""
    return tx(general.DAPC(target, arc))


def off(target: address.GearAddress) -> Transaction:
    """OFF: immediately, without fading."""
    return tx(general.Off(target))


def recall_max(target: address.GearAddress) -> Transaction:
    return tx(general.RecallMaxLevel(target))


def recall_min(target: address.GearAddress) -> Transaction:
    return tx(general.RecallMinLevel(target))


def go_to_scene(target: address.GearAddress, scene: int) -> Transaction:
    return tx(general.GoToScene(target, scene))


def set_fade_time(target: address.GearAddress, code: int) -> list[Transaction]:
    return [tx(general.DTR0(code)), tx(general.SetFadeTime(target))]


def store_scene(target: address.GearAddress, scene: int, arc: int | None) -> list[Transaction]:
    """SET SCENE with DTR0 = arc; ``None`` removes the gear from the scene (stores MASK)."""
    if arc is None:
        return [tx(general.RemoveFromScene(target, scene))]
    return [tx(general.DTR0(arc)), tx(general.SetScene(target, scene))]


def colour_temperature(target: address.GearAddress, mirek: int) -> list[Transaction]:
    """DT8 Tc: DTR0/DTR1 = mirek (LSB/MSB), then SET TEMPORARY COLOUR TEMPERATURE and ACTIVATE, each
    right after ENABLE DEVICE TYPE 8."""
    low, high = mirek & 0xFF, (mirek >> 8) & 0xFF
    return [
        tx(general.DTR0(low)),
        tx(general.DTR1(high)),
        *dt8(colour.SetTemporaryColourTemperature(target)),
        *dt8(colour.Activate(target)),
    ]


def dt8(command: Command) -> Iterator[Transaction]:
    yield tx(general.EnableDeviceType(8))
    yield tx(command)


def query_colour_temperature(addr: int) -> list[Transaction]:
    """Reply of the QueryColourValue is the MSB; the LSB is then in DTR0 (IEC 62386-209 9.12)."""
    return [
        tx(general.DTR0(colour.QueryColourValueDTR.ColourTemperatureTC)),
        *dt8(colour.QueryColourValue(short(addr))),
        tx(general.QueryContentDTR0(short(addr))),
    ]


def query_level(addr: int) -> Transaction:
    return tx(general.QueryActualLevel(short(addr)))


def query_status(addr: int) -> Transaction:
    return tx(general.QueryStatus(short(addr)))


def query_lamp_failure(target: address.GearAddress) -> Transaction:
    return tx(general.QueryLampFailure(target))


def query_gear_failure(target: address.GearAddress) -> Transaction:
    return tx(general.QueryControlGearFailure(target))


def query_device_type(addr: int) -> Transaction:
    return tx(general.QueryDeviceType(short(addr)))


def query_power_on_level(addr: int) -> Transaction:
    return tx(general.QueryPowerOnLevel(short(addr)))


def query_present(addr: int) -> Transaction:
    return tx(general.QueryControlGearPresent(short(addr)))


def query_groups(addr: int) -> list[Transaction]:
    return [tx(general.QueryGroupsZeroToSeven(short(addr))), tx(general.QueryGroupsEightToFifteen(short(addr)))]


def query_scene_level(addr: int, scene: int) -> Transaction:
    return tx(general.QuerySceneLevel(short(addr), scene))


# status bits of QUERY STATUS (IEC 62386-102 table 15, python-dali QueryStatusResponse)
STATUS_GEAR_FAILURE = 0x01
STATUS_LAMP_FAILURE = 0x02
STATUS_LAMP_ON = 0x04
STATUS_FADE_RUNNING = 0x10


# --------------------------------------------------------------------------- cached by point
# Transactions are immutable once built; building python-dali commands is the costly part of
# compiling a batch, so the ones a line uses over and over are built once.


@lru_cache(maxsize=4096)
def arc_power_at(point: Point, arc: int) -> Transaction:
    return arc_power(gear_address(point), arc)


@lru_cache(maxsize=1024)
def fade_time_at(point: Point, code: int) -> tuple[Transaction, ...]:
    return tuple(set_fade_time(gear_address(point), code))


@lru_cache(maxsize=1024)
def colour_temperature_at(point: Point, mirek: int) -> tuple[Transaction, ...]:
    return tuple(colour_temperature(gear_address(point), mirek))


@lru_cache(maxsize=64)
def query_level_cached(addr: int) -> Transaction:
    return query_level(addr)
