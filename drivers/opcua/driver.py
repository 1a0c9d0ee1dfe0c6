"""OPC UA driver: one client session per PLC, channels mapped through a profile.

Per session: the namespace index is looked up by URI and every browse path of the profile is
resolved in one TranslateBrowsePathsToNodeIds call; numeric node ids are never configured. A
batch is one Write service call (or one Call of the PLC's RecallScene when the batch is exactly
a stored scene); a confirmation read is one Read call. Values are written as a bare
``DataValue(Variant(v, type))``: no source timestamp, no status, which strict PLCs require.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from asyncua import Client, ua
from asyncua.ua.uaerrors import UaStatusCodeError

from drivers.base import (
    AccessDenied,
    ControllerUnreachable,
    Driver,
    DriverError,
    PreparedSend,
    settings_of,
)
from drivers.opcua.asyncua_internals import (
    encode_call,
    encode_write,
    ready_protocol,
    send_encoded,
    usable,
)
from drivers.opcua.errors import (
    CLIENT_TRUST_CODES,
    SessionLost,
    cancelled_from_outside,
    status_error,
    status_name,
    translate,
)
from drivers.opcua.nodes import NodeRef, Resolved, resolve
from drivers.opcua.profile import Profile, ZoneKey, load_profile
from drivers.opcua.requests import (
    VARIANT,
    Compiled,
    PreparedRequest,
    bare_value,
    int_to_rgb,
    partial_refusal,
    rgb_to_int,
)
from drivers.opcua.security import client_certificate_hint, configure_client_security
from drivers.opcua.settings import OpcUaSettings
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import (
    ApplyResult,
    ChannelId,
    ChannelReading,
    ChannelState,
    Colour,
    ControllerReading,
    PlannedOperation,
)

log = logging.getLogger(__name__)
if logging.getLogger("asyncua").level == logging.NOTSET:
    # asyncua logs every request at INFO: at a few hundred PLCs that is most of the CPU.
    logging.getLogger("asyncua").setLevel(logging.WARNING)

CONNECT_ROUNDTRIPS = 6
"""Connect = hello, secure channel, session, activation, namespace read, path translation:
its timeout is this many times the controller's ``timeout_s``."""
COMPILED_KEPT = 64
"""Compiled batches remembered per session (a show's cues, the day's scenes)."""
SESSION_TIMEOUT_MS = 600_000
"""Ten minutes, what most PLCs grant: a session the daemon forgot is gone in that time."""
CONFIRM_KEYS: tuple[ZoneKey, ...] = ("on", "level")
POLL_ZONE_KEYS: tuple[ZoneKey, ...] = ("on", "level", "rgb", "cct", "power_w", "faults")
"""What a full poll (and the subscription) covers per zone; ``output`` follows from power."""


class _Pushes:
    """asyncua subscription handler: data changes merged into the latest values (``note``),
    pushed once per notification message (``push``)."""

    def __init__(self, controller_id: str, note: Callable[[ua.NodeId, Any], None], push: Callable[[], None]) -> None:
        self.controller_id, self.note, self.push = controller_id, note, push
        self.pending = False

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.note(node.nodeid, val)
        if not self.pending:
            self.pending = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.pending = False
        self.push()

    def status_change_notification(self, status: Any) -> None:
        log.info("%s: subscription status %s", self.controller_id, status)


class OpcUaDriver(Driver[OpcUaSettings]):
    level_tolerance = 0.1

    def __init__(self, controller: ControllerConfig) -> None:
        super().__init__(controller, settings_of(controller, OpcUaSettings))
        self.profile: Profile = load_profile(controller.profile)
        self.resolved: Resolved | None = None
        self._client: Client | None = None
        self._lost = False
        self._lock = asyncio.Lock()
        self._on_reading: Callable[[ControllerReading], None] | None = None
        self._subscription: Any = None
        self._poller: asyncio.Task[None] | None = None
        self._values: dict[ua.NodeId, Any] = {}
        self._cache: dict[tuple[tuple[ChannelId, ChannelState], ...], Compiled] = {}
        self._cache_for: Resolved | None = None
        self.sessions = 0
        """Sessions opened so far (a reconnect opens a new one)."""
        self._pushes_paused = False
        """A show drives the PLC: its pushed readings are paused (see ``pause_pushes``)."""
        self.pushing: str | None = None
        """``subscription`` or ``poll`` once pushes run."""

    # ------------------------------------------------------------------ session

    async def connect(self) -> None:
        async with self._lock:
            if self._client is not None and not self._lost:
                return
            await self._drop()
            client = Client(
                self.settings.url, timeout=self.controller.timeout_s, watchdog_intervall=self.controller.poll_s
            )
            client.name = client.description = f"lightctl {self.controller_id}"
            client.application_uri = self.settings.application_uri
            client.session_timeout = SESSION_TIMEOUT_MS
            client.connection_lost_callback = self._connection_lost
            if self.settings.username is not None:
                client.set_user(self.settings.username)
                client.set_password(self.settings.resolved_password() or "")
            doing = f"connect to {self.settings.url}"
            try:
                async with asyncio.timeout(self.controller.timeout_s * CONNECT_ROUNDTRIPS):
                    if self.settings.secure:
                        await configure_client_security(client, self.settings, self.controller_id)
                    await client.connect()
                    self._client = client
                    self.resolved = await resolve(client, self.controller, self.profile)
            except BaseException as exc:
                if self._client is client:  # a session exists: close it politely
                    await _disconnect(client, self.controller.timeout_s)
                else:  # asyncua has already dropped the socket of a failed connect
                    with contextlib.suppress(Exception):
                        client.disconnect_socket()
                self._client = None
                if isinstance(exc, asyncio.CancelledError) and cancelled_from_outside():
                    raise
                error = translate(self.controller_id, exc, doing)
                if isinstance(exc, UaStatusCodeError) and exc.code in CLIENT_TRUST_CODES and self.settings.secure:
                    error = AccessDenied(self.controller_id, f"{error.detail}: {client_certificate_hint(self.settings)}")
                raise error from exc
            self._lost = False
            self.sessions += 1
            if self._on_reading is not None:
                await self._start_pushes()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def _drop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(BaseException):
                await self._poller
            self._poller = None
        self._subscription, self.pushing = None, None
        client, self._client = self._client, None
        self.resolved = None
        if client is not None:
            await _disconnect(client, self.controller.timeout_s)

    async def _connection_lost(self, exc: Exception) -> None:
        log.warning("%s: connection lost (%s); the next call reconnects", self.controller_id, exc)
        self._lost = True

    def holds_session(self, client: Client) -> bool:
        """``client`` is this driver's session, and it is not known to be lost."""
        return self._client is client and not self._lost

    async def _session(self) -> tuple[Client, Resolved]:
        if self._client is None or self._lost or self.resolved is None:
            await self.connect()
        assert self._client is not None and self.resolved is not None
        return self._client, self.resolved

    # ------------------------------------------------------------------ commands

    def _scene_for(self, states: Mapping[ChannelId, ChannelState]) -> int | None:
        if self.profile.recall_scene is None or set(states) != {ch.id for ch in self.controller.channels}:
            return None
        values = set(states.values())
        if len(values) != 1:
            return None
        state = next(iter(values))
        if state.colour is not None or state.fade_s:
            return None
        return self.profile.scene_for(state.on, state.level)

    def _write_items(self, channel_id: ChannelId, state: ChannelState) -> list[tuple[ZoneKey, Any]]:
        channel = self.controller.channel(channel_id)
        items: list[tuple[ZoneKey, Any]] = [("on", state.on)]
        if channel.dimmable:
            items.append(("level", float(state.level)))
        if "fade_s" in self.profile.zone_variables:
            items.append(("fade_s", float(state.fade_s)))
        if state.colour is not None:
            if state.colour.rgb is not None and channel.colour == "rgb":
                items.append(("rgb", rgb_to_int(state.colour.rgb)))
            if state.colour.cct_k is not None and channel.colour == "cct":
                items.append(("cct", int(state.colour.cct_k)))
        return [(k, v) for k, v in items if k in self.profile.zone_variables]

    def plan(self, states: Mapping[ChannelId, ChannelState]) -> Sequence[PlannedOperation]:
        """Also compiles the batch ahead when a session is open (shows plan their cues before
        the beat), so that ``apply`` then only sends."""
        if not states:
            return []
        if self.resolved is not None:
            self._compiled(states, self.resolved)
        scene = self._scene_for(states)
        if scene is not None:
            assert self.profile.recall_scene is not None
            return [
                PlannedOperation(
                    "Call", "/".join(self.profile.method_path()), tuple(states), f"RecallScene({scene})"
                )
            ]
        count = sum(len(self._write_items(cid, st)) for cid, st in states.items())
        points = ", ".join(str(self.controller.channel(cid).point) for cid in states)
        return [PlannedOperation("Write", f"{count} nodes in zones {points}", tuple(states))]

    def _compiled(self, states: Mapping[ChannelId, ChannelState], resolved: Resolved) -> Compiled:
        """``compile``, remembered per session for the batches seen last (node ids change only
        with a new session, which starts a new cache)."""
        if self._cache_for is not resolved:
            self._cache.clear()
            self._cache_for = resolved
        key = tuple(states.items())
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self.compile(states, resolved)
            if len(self._cache) >= COMPILED_KEPT:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = compiled
        return compiled

    def compile(self, states: Mapping[ChannelId, ChannelState], resolved: Resolved) -> Compiled:
        """The one request a batch becomes: a Call of RecallScene, or a Write of its nodes."""
        scene = self._scene_for(states)
        if scene is not None and resolved.method is not None and self.profile.recall_scene is not None:
            obj, method = resolved.method
            request = ua.CallMethodRequest(
                ObjectId=obj, MethodId=method.node,
                InputArguments=[ua.Variant(scene, VARIANT[self.profile.recall_scene.argument_type])],
            )
            return Compiled(call=request, call_ref=method, scene=scene, encoded=encode_call([request]))
        compiled = Compiled()
        for channel_id, state in states.items():
            nodes = resolved.zones.get(channel_id, {})
            for key, value in self._write_items(channel_id, state):
                ref = nodes.get(key)
                if ref is None:
                    continue
                compiled.writes.append(
                    ua.WriteValue(
                        NodeId=ref.node, AttributeId=ua.AttributeIds.Value,
                        Value=bare_value(value, self.profile.zone_variables[key].type),
                    )
                )
                compiled.owners.append((channel_id, ref))
        if compiled.writes:
            compiled.encoded = encode_write(compiled.writes)
        return compiled

    def read_params(self, channels: Collection[ChannelId] | None, resolved: Resolved) -> ua.ReadParameters:
        return ua.ReadParameters(
            NodesToRead=[
                ua.ReadValueId(NodeId=r.node, AttributeId=ua.AttributeIds.Value)
                for r in self._poll_refs(channels, resolved)
            ]
        )

    async def apply(self, states: Mapping[ChannelId, ChannelState]) -> ApplyResult:
        if not states:
            return ApplyResult(operations=0)
        client, resolved = await self._session()
        compiled = self._compiled(states, resolved)
        return await self.finish(states, client, compiled, self._send(client, compiled))

    def prepare(self, states: Mapping[ChannelId, ChannelState]) -> PreparedSend | None:
        """The batch compiled on the open session, its Write or Call encoded, for ``fire`` to
        send (drivers/opcua/asyncua_internals.py). None without a connected session (nothing is
        awaited here: ``apply`` connects) or where requests cannot be sent pre-encoded."""
        client, resolved = self._client, self.resolved
        if not states or client is None or self._lost or resolved is None:
            return None
        protocol = ready_protocol(client)
        if protocol is None:
            return None
        try:  # what fails here fails again in apply(), which raises it where the caller awaits errors
            compiled = self._compiled(states, resolved)
        except Exception as exc:
            log.warning("%s: batch not prepared, apply() will send it (%r)", self.controller_id, exc)
            return None
        return PreparedRequest(self, client, protocol, compiled, states) if compiled.encoded is not None else None

    async def finish(
        self, states: Mapping[ChannelId, ChannelState], client: Client, compiled: Compiled, sending: Awaitable[Any]
    ) -> ApplyResult:
        """The second half of ``apply``: await the response of the Write or Call on its way
        (``sending``) and check it. If the PLC says the session or its secure channel is gone
        (a session timeout, a runtime restart: TCP may well stay up), reconnect at once and send
        the batch once more."""
        try:
            return await self._complete(client, compiled, len(states), sending)
        except SessionLost as lost:
            log.warning("%s: %s; reconnecting and sending again", self.controller_id, lost.detail)
        client, resolved = await self._session()
        compiled = self._compiled(states, resolved)
        return await self._complete(client, compiled, len(states), self._send(client, compiled))

    async def _complete(self, client: Client, compiled: Compiled, channels: int, sending: Awaitable[Any]) -> ApplyResult:
        if compiled.call is not None:
            assert compiled.call_ref is not None
            (result,) = await self._call(client, "Call", sending)
            if not result.StatusCode.is_good():
                self._note_unknown(result.StatusCode.value)
                where = f"call {compiled.call_ref.path}({compiled.scene})"
                raise status_error(self.controller_id, result.StatusCode.value, where)
            return ApplyResult(operations=1)
        results = await self._call(client, "Write", sending)
        refused: dict[ChannelId, list[tuple[NodeRef, ua.StatusCode]]] = {}
        applied: dict[ChannelId, list[NodeRef]] = {}
        for (channel_id, ref), status in zip(compiled.owners, results, strict=True):
            if status.is_good():
                applied.setdefault(channel_id, []).append(ref)
            else:
                refused.setdefault(channel_id, []).append((ref, status))
                self._note_unknown(status.value)
        if not refused:
            return ApplyResult(operations=1)
        if not applied and len(refused) == channels:
            ref, status = next(iter(refused.values()))[0]
            raise status_error(self.controller_id, status.value, f"write {ref.path}")
        rejected = {ch: f"{items[0][0].path}: {items[0][1].name}" for ch, items in refused.items()}
        half_written = [ch for ch in refused if ch in applied]
        if half_written:
            after = await self._after_partial_write(client, half_written)
            for channel_id in half_written:
                rejected[channel_id] = partial_refusal(refused[channel_id], applied[channel_id], after.get(channel_id))
                log.warning("%s: %s half-written: %s", self.controller_id, channel_id, rejected[channel_id])
        return ApplyResult(operations=1, rejected=rejected)

    async def _after_partial_write(self, client: Client, channels: list[ChannelId]) -> dict[ChannelId, ChannelReading | str]:
        """What zones whose Write was only partly taken now hold (PLCs apply a Write's items one
        by one): read back, so that the refusal says what the zone is left doing."""
        resolved = self.resolved
        if resolved is None or not self.holds_session(client):
            return dict.fromkeys(channels, "the session is gone, nothing read back")
        try:
            reading = await self._read_on(client, resolved, channels)
        except DriverError as exc:
            return dict.fromkeys(channels, f"read-back failed: {exc.detail}")
        return dict(reading.channels)

    async def _send(self, client: Client, compiled: Compiled) -> Any:
        """The compiled Write or Call, pre-encoded where asyncua's internals are as expected
        (drivers/opcua/asyncua_internals.py), else through asyncua's own encoder."""
        protocol = usable(client) if compiled.encoded is not None else None
        if compiled.encoded is not None and protocol is not None:
            return await send_encoded(client, protocol, compiled.encoded)
        if compiled.call is not None:
            return await client.uaclient.call([compiled.call])
        return await client.uaclient.write(ua.WriteParameters(NodesToWrite=compiled.writes))

    async def _call(self, client: Client, service: str, request: Any) -> Any:
        try:
            async with asyncio.timeout(self.controller.timeout_s):
                return await request
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and cancelled_from_outside():
                raise
            error = translate(self.controller_id, exc, f"{service} to {self.settings.url}")
            if isinstance(exc, TimeoutError | ConnectionError | OSError | asyncio.CancelledError) or isinstance(error, SessionLost):
                self._lost = True
            raise error from exc

    def _note_unknown(self, code: int) -> None:
        if code in (ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNodeIdInvalid):
            self._lost = True  # the PLC program changed under us: resolve again on the next call

    # ------------------------------------------------------------------ observation

    def _poll_refs(self, channels: Collection[ChannelId] | None, resolved: Resolved) -> list[NodeRef]:
        keys = CONFIRM_KEYS if channels is not None else POLL_ZONE_KEYS
        wanted = channels if channels is not None else [ch.id for ch in self.controller.channels]
        refs = [resolved.zones[cid][k] for cid in wanted for k in keys if k in resolved.zones.get(cid, {})]
        if channels is None:
            refs += list(resolved.plc.values())
        return refs

    async def read(self, channels: Collection[ChannelId] | None = None) -> ControllerReading:
        unknown = [cid for cid in channels or () if cid not in {ch.id for ch in self.controller.channels}]
        if unknown:
            raise KeyError(f"{self.controller_id} has no channel(s) {', '.join(unknown)}")
        client, resolved = await self._session()
        try:
            return await self._read_on(client, resolved, channels)
        except SessionLost as lost:
            log.warning("%s: %s; reconnecting and reading again", self.controller_id, lost.detail)
        client, resolved = await self._session()
        return await self._read_on(client, resolved, channels)

    async def _read_on(
        self, client: Client, resolved: Resolved, channels: Collection[ChannelId] | None
    ) -> ControllerReading:
        refs = self._poll_refs(channels, resolved)
        params = self.read_params(channels, resolved)
        values = await self._call(client, "Read", client.uaclient.read(params))
        for ref, dv in zip(refs, values, strict=True):
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                self._note_unknown(dv.StatusCode.value)
                raise status_error(self.controller_id, dv.StatusCode.value, f"read {ref.path}")
            self._values[ref.node] = dv.Value.Value if dv.Value is not None else None
        return self._reading(channels)

    def _reading(self, channels: Collection[ChannelId] | None = None) -> ControllerReading:
        resolved = self.resolved
        assert resolved is not None
        values = self._values

        def get(ref: NodeRef | None) -> Any:
            return None if ref is None else values.get(ref.node)

        out: dict[ChannelId, ChannelReading] = {}
        for channel in self.controller.channels:
            if channels is not None and channel.id not in channels:
                continue
            nodes = resolved.zones.get(channel.id, {})
            rgb, cct, bits = get(nodes.get("rgb")), get(nodes.get("cct")), get(nodes.get("faults"))
            colour = Colour(rgb=int_to_rgb(rgb)) if rgb is not None else Colour(cct_k=cct) if cct is not None else None
            on, level, power = get(nodes.get("on")), get(nodes.get("level")), get(nodes.get("power_w"))
            out[channel.id] = ChannelReading(
                on=None if on is None else bool(on),
                level=None if level is None else round(float(level), 3),
                colour=colour,
                power_w=None if power is None else float(power),
                faults=self.profile.decode_faults(int(bits)) if bits is not None else frozenset(),
            )
        if channels is not None:
            return ControllerReading(at=time.time(), channels=out)
        plc_bits = get(resolved.plc.get("faults"))
        measurements: dict[str, float] = {}
        for key in ("voltage_v", "scene"):
            value = get(resolved.plc.get(key))  # type: ignore[call-overload]
            if value is not None:
                measurements[key] = float(value)
        power, energy = get(resolved.plc.get("power_w")), get(resolved.plc.get("energy_kwh"))
        return ControllerReading(
            at=time.time(),
            channels=out,
            power_w=None if power is None else float(power),
            energy_kwh=None if energy is None else float(energy),
            faults=self.profile.decode_faults(int(plc_bits)) if plc_bits is not None else frozenset(),
            measurements=measurements,
        )

    async def pause_pushes(self, paused: bool) -> None:
        """SetPublishingMode on the subscription: the PLC keeps sampling, and once publishing
        resumes it sends the latest values of whatever changed meanwhile."""
        self._pushes_paused = paused  # a session opened meanwhile, or polling, keeps to it
        subscription = self._subscription
        if subscription is None:
            return
        try:
            async with asyncio.timeout(self.controller.timeout_s):
                await subscription.set_publishing_mode(not paused)
        except Exception as exc:
            log.info("%s: could not %s data-change publishing: %r", self.controller_id, "pause" if paused else "resume", exc)

    def subscribe(self, on_reading: Callable[[ControllerReading], None]) -> bool:
        """Pushes from data-change notifications; if the PLC refuses a subscription (or
        ``subscribe: false``), the driver polls every ``poll_s`` and pushes those readings."""
        self._on_reading = on_reading
        return True

    async def _start_pushes(self) -> None:
        client, resolved = self._client, self.resolved
        assert client is not None and resolved is not None
        if self.settings.subscribe:
            try:
                async with asyncio.timeout(self.controller.timeout_s * 2):
                    sub = await client.create_subscription(self.settings.publishing_interval_ms, _Pushes(self.controller_id, self._values.__setitem__, self._push))
                    nodes = [client.get_node(r.node) for r in self._poll_refs(None, resolved)]
                    handles = await sub.subscribe_data_change(nodes, queuesize=1)
                bad = [h for h in handles if isinstance(h, ua.StatusCode)]
                if not bad:
                    self._subscription, self.pushing = sub, "subscription"
                    if self._pushes_paused:
                        await self.pause_pushes(True)
                    return
                log.warning("%s: %d monitored items refused; polling instead", self.controller_id, len(bad))
                with contextlib.suppress(Exception):
                    await sub.delete()
            except (TimeoutError, ua.UaError, ConnectionError, OSError, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and cancelled_from_outside():
                    raise
                log.warning("%s: no subscription (%s); polling every %.1f s", self.controller_id, exc,
                            self.controller.poll_s)
        self._poller = asyncio.create_task(self._poll_loop(), name=f"opcua-poll-{self.controller_id}")
        self.pushing = "poll"

    async def _poll_loop(self) -> None:
        """Pushes by polling this session; it ends with the session (it never reconnects: the
        next call from the core does, and starts a new loop)."""
        client, resolved = self._client, self.resolved
        assert client is not None and resolved is not None
        while not self._lost and self._client is client:
            if not self._pushes_paused:
                try:
                    reading = await self._read_on(client, resolved, None)
                except DriverError as exc:
                    log.info("%s: poll failed (%s); waiting for the next call to reconnect", self.controller_id, exc)
                    return
                if self._on_reading is not None and not self._pushes_paused:  # paused while reading
                    self._on_reading(reading)
            await asyncio.sleep(self.controller.poll_s)

    def _push(self) -> None:
        if self._on_reading is not None and self.resolved is not None:
            self._on_reading(self._reading())


async def _disconnect(client: Client, limit_s: float = 1.0) -> None:
    """Close politely if the PLC still answers, else just drop the socket; never raises."""
    try:
        async with asyncio.timeout(limit_s):
            await client.disconnect()
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError) and cancelled_from_outside():
            client.disconnect_socket()
            raise
        with contextlib.suppress(Exception):
            client.disconnect_socket()


__all__ = ["ControllerUnreachable", "OpcUaDriver", "PreparedRequest", "bare_value", "status_name"]
