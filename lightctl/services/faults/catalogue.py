"""The fault vocabulary as data: each kind's scope, base severity, names, and the root-cause table
(which active fault explains, and so hides, which others).

Root cause first (ISA-18.2 state-based suppression): an offline controller explains everything
else on it; a cabinet without supply explains its dark circuits, its low phases and its refused
commands; a lost phase explains its low-voltage reading and its dark lamps; a tripped breaker
explains the lamp, gear and contactor faults behind it; a site whose every cabinet lost supply
at once is one fault. A hidden fault is kept, as a child of its cause, and is no alarm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from lightctl.model.faults import FaultsConfig, Importance, Severity
from lightctl.model.values import FaultKind

Scope = Literal["site", "controller", "channel"]
K = FaultKind


@dataclass(frozen=True, slots=True)
class KindSpec:
    kind: FaultKind
    scope: Scope
    severity: Severity
    zh: str
    en: str


KINDS: Mapping[FaultKind, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(K.COMM_LOST, "controller", Severity.SERIOUS, "通信中断", "communication lost"),
        KindSpec(K.SUPPLY_LOSS, "controller", Severity.EMERGENCY, "失电", "loss of supply"),
        KindSpec(K.BREAKER_TRIP, "channel", Severity.SERIOUS, "回路跳闸", "circuit trip"),
        KindSpec(K.PHASE_LOSS, "controller", Severity.SERIOUS, "缺相", "phase loss"),
        KindSpec(K.OVER_VOLTAGE, "controller", Severity.SERIOUS, "过压", "over-voltage"),
        KindSpec(K.UNDER_VOLTAGE, "controller", Severity.ORDINARY, "欠压", "under-voltage"),
        KindSpec(K.OVER_CURRENT, "controller", Severity.SERIOUS, "过流", "over-current"),
        KindSpec(K.DOOR_OPEN, "controller", Severity.SERIOUS, "箱门非法打开", "cabinet door opened"),
        KindSpec(K.CABLE_THEFT, "controller", Severity.EMERGENCY, "电缆被盗", "cable theft"),
        KindSpec(K.LEAKAGE, "controller", Severity.EMERGENCY, "漏电", "leakage"),
        KindSpec(K.LAMP_FAILURE, "channel", Severity.ORDINARY, "灯具故障", "lamp failure"),
        KindSpec(K.GEAR_FAILURE, "channel", Severity.ORDINARY, "控制装置无应答", "control gear not answering"),
        KindSpec(K.STUCK_CONTACTOR, "channel", Severity.SERIOUS, "白天亮灯/接触器粘连", "burning while commanded off"),
        KindSpec(K.DEVICE_FAULT, "channel", Severity.ORDINARY, "设备故障", "device fault"),
        KindSpec(K.UNCONFIRMED, "controller", Severity.ORDINARY, "指令未确认", "command unconfirmed"),
    )
}

CONTROLLER_FLAGS = frozenset(
    {K.DOOR_OPEN, K.CABLE_THEFT, K.PHASE_LOSS, K.OVER_VOLTAGE, K.UNDER_VOLTAGE, K.OVER_CURRENT, K.LEAKAGE, K.DEVICE_FAULT}
)
"""Flags a controller reports for itself. Channel kinds it reports as a summary of its channels
(a DALI gateway's lamp failures) are taken from the channels instead."""
CHANNEL_FLAGS = frozenset({K.BREAKER_TRIP, K.LAMP_FAILURE, K.GEAR_FAILURE, K.DEVICE_FAULT, K.STUCK_CONTACTOR})
TIMED = frozenset({K.COMM_LOST, K.UNCONFIRMED})
"""Kinds found by the passing of time (silence, a deadline), never judged absent by a reading."""

ELECTRICAL = frozenset({K.UNDER_VOLTAGE, K.OVER_CURRENT, K.BREAKER_TRIP, K.LAMP_FAILURE, K.GEAR_FAILURE,
                        K.STUCK_CONTACTOR, K.DEVICE_FAULT, K.UNCONFIRMED, K.PHASE_LOSS, K.OVER_VOLTAGE})


@dataclass(frozen=True, slots=True)
class Cause:
    """An active fault of ``kind`` hides, on ``where`` (the same controller, the same channel, or
    any controller of the same site), faults of the kinds in ``hides``."""

    kind: FaultKind
    scope: Scope
    where: Literal["controller", "channel", "site"]
    hides: frozenset[FaultKind]


CAUSES: tuple[Cause, ...] = (
    # in order: the first active cause found becomes a fault's parent
    Cause(K.SUPPLY_LOSS, "site", "site", frozenset({K.SUPPLY_LOSS, K.COMM_LOST}) | ELECTRICAL),
    Cause(K.COMM_LOST, "controller", "controller", frozenset(KINDS) - {K.COMM_LOST}),
    Cause(K.SUPPLY_LOSS, "controller", "controller", ELECTRICAL),
    Cause(K.PHASE_LOSS, "controller", "controller", frozenset({K.UNDER_VOLTAGE, K.LAMP_FAILURE, K.UNCONFIRMED, K.GEAR_FAILURE})),
    Cause(K.BREAKER_TRIP, "channel", "channel", frozenset({K.LAMP_FAILURE, K.GEAR_FAILURE, K.STUCK_CONTACTOR})),
    Cause(K.DEVICE_FAULT, "channel", "channel", frozenset({K.LAMP_FAILURE, K.STUCK_CONTACTOR})),
    # a channel fault already annunciated explains its controller's command that did not confirm
    Cause(K.BREAKER_TRIP, "channel", "controller", frozenset({K.UNCONFIRMED})),
    Cause(K.STUCK_CONTACTOR, "channel", "controller", frozenset({K.UNCONFIRMED})),
    Cause(K.GEAR_FAILURE, "channel", "controller", frozenset({K.UNCONFIRMED})),
    Cause(K.DEVICE_FAULT, "channel", "controller", frozenset({K.UNCONFIRMED})),
)


def severity_of(kind: FaultKind, importance: Importance, config: FaultsConfig) -> Severity:
    """The kind's severity (config over the table), one step higher at a key site."""
    base = config.severity.get(kind, KINDS[kind].severity)
    return base.raised() if importance == "key" else base


def label(kind: FaultKind | str) -> str:
    spec = KINDS.get(FaultKind(kind))
    return f"{spec.zh} {spec.en}" if spec is not None else str(kind)
