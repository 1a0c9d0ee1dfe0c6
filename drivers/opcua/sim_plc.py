"""One simulated bridge lighting PLC: its asyncua server, address space and physics.

The PLC exposes its profile's address space (zones with level, colour, output, power, fault
flags; PLC totals, energy, scene number, the RecallScene method) under numeric node ids that
change with every restart, as a rebuilt PLC program's do. Output follows the level with the
commanded fade, power is luminaires x rated watts x output, energy integrates power.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from asyncua import ua
from asyncua.common.utils import ServiceError

from drivers.base import Fault
from drivers.opcua.profile import WRITABLE_ZONE_KEYS, PlcKey, Profile, ZoneKey, load_profile
from drivers.opcua.security import application_uris, generate_certificate, load_certificate, untrusted_reason
from drivers.opcua.settings import OpcUaSettings
from drivers.opcua.sim_server import PlcHooks, PlcServer, standard_space
from lightctl.model.installation import ChannelConfig, ControllerConfig
from lightctl.model.values import FaultKind

log = logging.getLogger(__name__)
if logging.getLogger("asyncua").level == logging.NOTSET:
    # asyncua logs every request at INFO: at a few hundred PLCs that is most of the CPU.
    logging.getLogger("asyncua").setLevel(logging.WARNING)

SUPPLY_V = 231.0
NO_SCENE = 0xFFFF
FAULT_KINDS = frozenset(
    {"offline", "slow", "error", "zone_failure", "lamp_failure", "breaker_trip", "door_open", "session_closed",
     "level_floor"}
)
"""Besides the common ones: ``session_closed`` (the PLC ends every session, as on a session timeout
or a runtime restart, while TCP and the secure channel stay up), ``level_floor`` (value = the lowest
level in % a zone accepts, 10 if unset: a Write of a lower Level is refused ``BadOutOfRange``, and
the other items of that Write still take effect, as PLC stacks apply a Write's items one by one)."""
DEFAULT_LEVEL_FLOOR = 10.0


@dataclass(frozen=True, slots=True)
class PlcStack:
    """How the PLC's OPC UA stack answers where stacks differ."""

    name: str
    untrusted_client_certificate: int


COMMON_STACK = PlcStack("open62541 / S7-1500 / most PLCs", ua.StatusCodes.BadSecurityChecksFailed)
"""What most PLC stacks answer a client certificate they do not trust: nothing more telling."""
ASYNCUA_STACK = PlcStack("asyncua", ua.StatusCodes.BadCertificateUntrusted)
VARIANT = {
    "Boolean": ua.VariantType.Boolean, "Byte": ua.VariantType.Byte, "UInt16": ua.VariantType.UInt16,
    "UInt32": ua.VariantType.UInt32, "Int32": ua.VariantType.Int32, "Float": ua.VariantType.Float,
    "Double": ua.VariantType.Double,
}
_UNSET = object()
_WRITABLE = ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.CurrentWrite.mask
_READONLY = ua.AccessLevel.CurrentRead.mask


@dataclass
class Zone:
    channel: ChannelConfig
    nodes: dict[ZoneKey, ua.NodeId] = field(default_factory=dict)
    on: bool = False
    level: float = 0.0
    fade_s: float = 0.0
    rgb: int = 0xFFFFFF
    cct: int = 3000
    output: float = 0.0
    fade_from: float = 0.0
    fade_start: float = 0.0
    breaker: bool = False
    failed: bool = False
    lamp_failure: float = 0.0
    rated_w: float = 0.0

    def __post_init__(self) -> None:
        self.rated_w = self.channel.rated_w

    def target(self) -> float:
        return self.level if self.on and not self.breaker and not self.failed else 0.0

    def retarget(self, now: float) -> None:
        self.fade_from, self.fade_start = self.output, now

    def advance(self, now: float) -> None:
        target = self.target()
        if self.fade_s <= 0 or self.failed or self.breaker:
            self.output = target
            return
        progress = min(1.0, (now - self.fade_start) / self.fade_s)
        self.output = self.fade_from + (target - self.fade_from) * progress

    def power_w(self) -> float:
        return self.rated_w * self.output / 100.0 * (1.0 - self.lamp_failure)

    def faults(self) -> set[FaultKind]:
        kinds = set()
        if self.breaker:
            kinds.add(FaultKind.BREAKER_TRIP)
        if self.lamp_failure > 0:
            kinds.add(FaultKind.LAMP_FAILURE)
        if self.failed:
            kinds.add(FaultKind.DEVICE_FAULT)
        return kinds


class BridgePlc:
    """One PLC: its server, its zones, its physics."""

    def __init__(
        self, controller: ControllerConfig, host: str, port: int, pki_dir: Path | None, stack: PlcStack = COMMON_STACK
    ) -> None:
        self.controller = controller
        self.stack = stack
        self.level_floor = 0.0
        self.settings: OpcUaSettings = controller.settings
        self.profile: Profile = load_profile(controller.profile)
        self.host, self.port, self.pki_dir = host, port, pki_dir
        self.hooks = PlcHooks()
        self.hooks.refuse_write = self._refuse_write
        self.hooks.after_write = self._after_write
        self.hooks.before_read = self.refresh  # a read sees the outputs of this instant, mid-fade too
        self.zones = {str(ch.point): Zone(ch) for ch in controller.channels}
        self.by_node: dict[ua.NodeId, tuple[Zone, ZoneKey]] = {}
        self.plc_nodes: dict[PlcKey, ua.NodeId] = {}
        self.energy_kwh = 0.0
        self.scene = NO_SCENE
        self.door_open = False
        self.generation = 0
        self.server: PlcServer | None = None
        self._last_tick = time.monotonic()
        self._written: dict[ua.NodeId, Any] = {}

    @property
    def url(self) -> str:
        path = urlparse(self.settings.url).path or f"/lightctl/{self.controller.id}"
        return f"opc.tcp://{self.host}:{self.port}{path}"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        server = PlcServer(self.hooks, await standard_space())
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name(f"Bridge lighting PLC {self.controller.id} (simulated)")
        await server.set_application_uri(f"urn:lightctl:sim:{self.controller.id}")
        await self._configure_security(server)
        await self._build(server)
        await server.start()
        self.port = server.port
        self.server = server
        self._written.clear()
        self._last_tick = time.monotonic()
        await self.refresh()

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            with contextlib.suppress(Exception):
                await server.stop()

    async def restart(self) -> None:
        """A cold restart: new program build (new node ids), outputs off, same port."""
        await self.stop()
        self.generation += 1
        for zone in self.zones.values():
            zone.on, zone.level, zone.output = False, 0.0, 0.0
        self.scene = NO_SCENE
        await self.start()

    async def _configure_security(self, server: PlcServer) -> None:
        s = self.settings
        tokens: list[type] = [ua.UserNameIdentityToken] if s.username else [ua.AnonymousIdentityToken]
        self.hooks.users = {s.username: s.resolved_password() or ""} if s.username else None
        if not s.secure:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            server.set_identity_tokens(tokens)
            return
        self.hooks.secure_only = True
        policy = (
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt
            if s.security_mode == "SignAndEncrypt" else ua.SecurityPolicyType.Basic256Sha256_Sign
        )
        server.set_security_policy([policy])
        server.set_identity_tokens(tokens)
        pki = self.pki_dir or Path("var/opcua-sim-pki")
        cert, key = pki / f"{self.controller.id}-server.der", pki / f"{self.controller.id}-server.key.pem"
        if not (cert.is_file() and key.is_file()):
            generate_certificate(
                pki, f"{self.controller.id}-server", application_uri=server.get_application_uri(), server=True
            )
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
        trusted = []
        if s.certificate is not None and s.certificate.is_file():
            trusted.append(load_certificate(s.certificate))  # commissioned with the configured client
        extra = pki / f"{self.controller.id}-trusted"
        if extra.is_dir():
            trusted += [load_certificate(p) for p in sorted(extra.iterdir()) if p.is_file()]

        async def validate(certificate: Any, app: ua.ApplicationDescription) -> None:
            if untrusted_reason(certificate, trusted) is not None:
                raise ServiceError(self.stack.untrusted_client_certificate)
            if app.ApplicationUri not in application_uris(certificate):
                raise ServiceError(ua.StatusCodes.BadCertificateUriInvalid)

        server.set_certificate_validator(validate)

    async def _build(self, server: PlcServer) -> None:
        # A vendor namespace ahead of ours on odd generations: the index moves, the URI does not.
        if self.generation % 2:
            await server.register_namespace("urn:vendor:plc:system-diagnostics")
        idx = await server.register_namespace(self.profile.namespace_uri)
        next_id = iter(range(5000 + 7919 * self.generation, 10**9))
        server.own_ids_from(idx, 900_000_000)

        def nid() -> ua.NodeId:
            return ua.NodeId(next(next_id), idx)

        items: list[ua.AddNodesItem] = []
        parent = ua.NodeId(ua.ObjectIds.ObjectsFolder)
        for name in self.profile.root:
            node = nid()
            items.append(_object(node, parent, name, idx, organizes=parent.NamespaceIndex == 0))
            parent = node
        root = parent
        zones_folder = nid()
        items.append(_object(zones_folder, root, self.profile.zones, idx, organizes=True, folder=True))
        self.by_node.clear()
        for point, zone in self.zones.items():
            zone_node = nid()
            items.append(_object(zone_node, zones_folder, point, idx, organizes=True))
            zone.nodes.clear()
            for key, spec in self.profile.zone_variables.items():
                if key in ("rgb", "cct") and zone.channel.colour == "none":
                    continue
                node = nid()
                writable = key in WRITABLE_ZONE_KEYS
                items.append(_variable(node, zone_node, spec.name, idx, VARIANT[spec.type],
                                       self._zone_value(zone, key), writable))
                zone.nodes[key] = node
                self.by_node[node] = (zone, key)
        self.plc_nodes.clear()
        for pkey, spec in self.profile.plc_variables.items():
            node = nid()
            items.append(_variable(node, root, spec.name, idx, VARIANT[spec.type], self._plc_value(pkey), False))
            self.plc_nodes[pkey] = node
        for result in await server.iserver.isession.add_nodes(items):
            result.StatusCode.check()
        method = self.profile.recall_scene
        if method is not None:
            await server.get_node(root).add_method(
                nid(), ua.QualifiedName(method.name, idx), self._recall_scene, [VARIANT[method.argument_type]], []
            )

    # ------------------------------------------------------------------ values

    def _zone_value(self, zone: Zone, key: ZoneKey) -> Any:
        if key == "output":
            return zone.output
        if key == "power_w":
            return zone.power_w()
        if key == "faults":
            return self.profile.encode_faults(zone.faults())
        return {"on": zone.on, "level": zone.level, "fade_s": zone.fade_s, "rgb": zone.rgb, "cct": zone.cct}[key]

    def _plc_faults(self) -> set[FaultKind]:
        kinds: set[FaultKind] = set()
        for zone in self.zones.values():
            kinds |= zone.faults()
        if self.door_open:
            kinds.add(FaultKind.DOOR_OPEN)
        return kinds

    def _plc_value(self, key: PlcKey) -> Any:
        if key == "energy_kwh":
            return self.energy_kwh
        if key == "scene":
            return self.scene
        if key == "faults":
            return self.profile.encode_faults(self._plc_faults())
        total = sum(z.power_w() for z in self.zones.values())
        return total if key == "power_w" else SUPPLY_V - total / 1000.0 * 0.05

    def _refuse_write(self, item: ua.WriteValue) -> int | None:
        code: int | None = self._refusal(item)
        return code

    def _refusal(self, item: ua.WriteValue) -> Any:
        target = self.by_node.get(item.NodeId)
        if target is None:
            return None  # asyncua answers: unknown node, or not writable
        zone, key = target
        spec = self.profile.zone_variables[key]
        variant = item.Value.Value if item.Value is not None else None
        if variant is None or variant.VariantType != VARIANT[spec.type]:
            return ua.StatusCodes.BadTypeMismatch
        if key == "level" and not max(0.0, self.level_floor) <= float(variant.Value) <= 100.0:
            return ua.StatusCodes.BadOutOfRange
        if zone.failed:
            return ua.StatusCodes.BadDeviceFailure
        return None

    async def _after_write(self, items: list[ua.WriteValue]) -> None:
        now = time.monotonic()
        self.advance(now)
        touched = set()
        for item in items:
            target = self.by_node.get(item.NodeId)
            if target is None or item.Value is None or item.Value.Value is None:
                continue
            zone, key = target
            value = item.Value.Value.Value
            if key == "on":
                zone.on = bool(value)
            elif key == "level":
                zone.level = float(value)
            elif key == "fade_s":
                zone.fade_s = max(0.0, float(value))
            elif key == "rgb":
                zone.rgb = int(value)
            elif key == "cct":
                zone.cct = int(value)
            self._written[item.NodeId] = value
            touched.add(id(zone))
        for zone in self.zones.values():
            if id(zone) in touched:
                zone.retarget(now)
        if touched:
            self.scene = NO_SCENE
        await self.refresh()

    async def _recall_scene(self, parent: ua.NodeId, number: ua.Variant | int) -> list[ua.Variant]:
        value = number.Value if isinstance(number, ua.Variant) else number
        spec = self.profile.recall_scene
        assert spec is not None
        scene = spec.scenes.get(int(value))
        if scene is None:
            raise ServiceError(ua.StatusCodes.BadOutOfRange)
        now = time.monotonic()
        self.advance(now)
        for zone in self.zones.values():
            if zone.failed:
                continue
            zone.on, zone.level = scene.on, scene.level
            zone.retarget(now)
        self.scene = int(value)
        await self.refresh(setpoints=True)
        return []

    def advance(self, now: float) -> None:
        dt = max(0.0, now - self._last_tick)
        total = sum(z.power_w() for z in self.zones.values())
        self.energy_kwh += total * dt / 3.6e6
        self._last_tick = now
        for zone in self.zones.values():
            zone.advance(now)

    async def refresh(self, *, setpoints: bool = False) -> None:
        """Write every value that changed into the address space (subscriptions see them).
        Called on each tick, after each accepted write and before each read: keep it cheap."""
        server = self.server
        if server is None:
            return
        self.advance(time.monotonic())
        keys: tuple[ZoneKey, ...] = ("output", "power_w", "faults")
        if setpoints:
            keys += ("on", "level")
        types = self.profile.zone_variables
        for zone in self.zones.values():
            for key in keys:
                node = zone.nodes.get(key)
                if node is not None:
                    await self._set(server, node, self._zone_value(zone, key), types[key].type)
        plc_types = self.profile.plc_variables
        for pkey, node in self.plc_nodes.items():
            await self._set(server, node, self._plc_value(pkey), plc_types[pkey].type)

    async def _set(self, server: PlcServer, node: ua.NodeId, value: Any, type_name: str) -> None:
        if type(value) is float:
            value = round(value, 3)
        if self._written.get(node, _UNSET) == value:
            return
        self._written[node] = value
        await server.write_attribute_value(node, ua.DataValue(ua.Variant(value, VARIANT[type_name])))

    # ------------------------------------------------------------------ faults

    def inject(self, fault: Fault) -> list[asyncio.Task[None]]:
        zones = [self.zones[self._point(fault.channel)]] if fault.channel else list(self.zones.values())
        if fault.kind == "offline":
            if self.server is not None:
                return [asyncio.ensure_future(self.server.go_offline())]
        elif fault.kind == "slow":
            self.hooks.delay_s = fault.value if fault.value is not None else 2.0
        elif fault.kind == "error":
            self.hooks.error_status = ua.StatusCodes.BadDeviceFailure
        elif fault.kind == "zone_failure":
            for zone in zones:
                zone.failed = True
        elif fault.kind == "lamp_failure":
            for zone in zones:
                zone.lamp_failure = min(1.0, fault.value if fault.value is not None else 0.1)
        elif fault.kind == "breaker_trip":
            for zone in zones:
                zone.breaker = True
        elif fault.kind == "door_open":
            self.door_open = True
        elif fault.kind == "session_closed":
            if self.server is not None:
                return [asyncio.ensure_future(self.server.end_sessions())]
        elif fault.kind == "level_floor":
            self.level_floor = DEFAULT_LEVEL_FLOOR if fault.value is None else fault.value
        else:
            raise ValueError(f"unknown fault kind {fault.kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
        return [asyncio.ensure_future(self.refresh())]

    def clear(self, kind: str | None) -> list[asyncio.Task[None]]:
        tasks = []
        if kind in (None, "offline") and self.server is not None:
            tasks.append(asyncio.ensure_future(self.server.go_online()))
        if kind in (None, "slow"):
            self.hooks.delay_s = 0.0
        if kind in (None, "error"):
            self.hooks.error_status = None
        for zone in self.zones.values():
            if kind in (None, "zone_failure"):
                zone.failed = False
            if kind in (None, "lamp_failure"):
                zone.lamp_failure = 0.0
            if kind in (None, "breaker_trip"):
                zone.breaker = False
            zone.retarget(time.monotonic())
        if kind in (None, "door_open"):
            self.door_open = False
        if kind in (None, "level_floor"):
            self.level_floor = 0.0
        tasks.append(asyncio.ensure_future(self.refresh()))
        return tasks

    def _point(self, channel_id: str) -> str:
        return str(self.controller.channel(channel_id).point)


def _object(
    node: ua.NodeId, parent: ua.NodeId, name: str, idx: int, *, organizes: bool, folder: bool = False
) -> ua.AddNodesItem:
    attrs = ua.ObjectAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.EventNotifier = 0
    return ua.AddNodesItem(
        ParentNodeId=parent,
        ReferenceTypeId=ua.NodeId(ua.ObjectIds.Organizes if organizes else ua.ObjectIds.HasComponent),
        RequestedNewNodeId=node,
        BrowseName=ua.QualifiedName(name, idx),
        NodeClass=ua.NodeClass.Object,
        NodeAttributes=attrs,
        TypeDefinition=ua.NodeId(ua.ObjectIds.FolderType if folder else ua.ObjectIds.BaseObjectType),
    )


def _variable(
    node: ua.NodeId, parent: ua.NodeId, name: str, idx: int, vtype: ua.VariantType, value: Any, writable: bool
) -> ua.AddNodesItem:
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Value = ua.Variant(value, vtype)
    attrs.DataType = ua.NodeId(vtype.value)
    attrs.ValueRank = ua.ValueRank.Scalar
    attrs.AccessLevel = attrs.UserAccessLevel = _WRITABLE if writable else _READONLY
    return ua.AddNodesItem(
        ParentNodeId=parent,
        ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasComponent),
        RequestedNewNodeId=node,
        BrowseName=ua.QualifiedName(name, idx),
        NodeClass=ua.NodeClass.Variable,
        NodeAttributes=attrs,
        TypeDefinition=ua.NodeId(ua.ObjectIds.BaseDataVariableType),
    )
