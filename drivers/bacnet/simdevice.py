"""One simulated building controller: a bacpypes3 application with the profile's objects.

The device checks what a real controller checks before storing a write (ranges, states,
writable properties, priority 6), keeps a real 16-level priority array on every commanded
object, fades Lighting Outputs (present-value is the target, tracking-value the output), and
derives power and energy from the outputs. Faults are injected per device.

Strict where real controllers on other stacks were found to be: a Who-Is framed as an
Original-Unicast-NPDU that arrives on the broadcast address is dropped (only an
Original-Broadcast-NPDU is a broadcast); a device whose profile lacks ReadPropertyMultiple
rejects it; a paused device (its application task stalled) answers nothing but keeps what
arrives, and works through it, in order, when it resumes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bacpypes3.basetypes import (
    EngineeringUnits,
    LightingCommand,
    LightingInProgress,
    LightingOperation,
    PriorityValue,
    PropertyIdentifier,
    Reliability,
    Scale,
)
from bacpypes3.constructeddata import Any as AnyValue
from bacpypes3.errors import ExecutionError
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.primitivedata import Null, ObjectIdentifier, Real, Unsigned

from drivers.bacnet import bacpypes3_internals as internals
from drivers.bacnet.client import bound
from drivers.bacnet.frames import ORIGINAL_UNICAST, bvlc_function, is_write_request
from drivers.bacnet.profile import ObjectRef, Profile
from drivers.bacnet.simapp import SimApplication
from drivers.bacnet.simobjects import (
    AnalogInputObject,
    AnalogOutputObject,
    BinaryOutputObject,
    SimAccumulator,
    SimLightingOutput,
    SimMultiStateValue,
)
from drivers.simphysics import Ramp
from drivers.simturns import turns
from lightctl.model.installation import ChannelConfig, ControllerConfig

WRITABLE: dict[str, frozenset[str]] = {
    "lighting-output": frozenset({"presentValue", "lightingCommand"}),
    "analog-output": frozenset({"presentValue"}),
    "binary-output": frozenset({"presentValue"}),
    "multi-state-value": frozenset({"presentValue"}),
}
"""Properties a client may write, per object type; anything else is write-access-denied."""


@dataclass(slots=True)
class _Channel:
    config: ChannelConfig
    ref: ObjectRef
    obj: Any
    fade: Ramp = field(default_factory=Ramp)
    lamp_failed: float = 0.0
    tripped: bool = False


def _output(ch: _Channel, profile: Profile, now: float) -> float:
    """Output in percent of the channel's luminaires."""
    if ch.tripped:
        return 0.0
    kind = ch.ref.kind
    if kind == "lighting-output":
        return ch.fade.level(now)
    if kind == "analog-output":
        return float(ch.obj.presentValue)
    if kind == "binary-output":
        return 100.0 if int(ch.obj.presentValue) == 1 else 0.0
    return profile.scene_level(int(ch.obj.presentValue))


_FADING = LightingInProgress(LightingInProgress.fadeActive)
_IDLE = LightingInProgress(LightingInProgress.idle)


_NULL = PriorityValue(null=())


def _relinquished() -> list[PriorityValue]:
    """An empty priority array. The slots share one NULL value: a command replaces a slot and
    never changes a value in place, and building 16 NULLs per object dominated start-up."""
    return [_NULL] * 16


_VALUES: dict[tuple[type, Any], PriorityValue] = {}


def _priority_value(value: Any) -> PriorityValue:
    """A priority-array slot for ``value``, shared like the NULLs above (constructing one costs
    more than the rest of a write)."""
    key = (type(value), value)
    slot = _VALUES.get(key)
    if slot is None:
        if len(_VALUES) > 10_000:
            _VALUES.clear()
        slot = _VALUES[key] = PriorityValue(value)
    return slot


_store = internals.store_quietly


class SimBuilding:
    """The model of one building's controller; ``start()`` binds it to its address."""

    def __init__(self, controller: ControllerConfig, profile: Profile, address: str) -> None:
        self.controller = controller
        self.profile = profile
        self.address = address
        self.requests = 0
        self.by_service: dict[str, int] = {}
        self.write_times: deque[float] = deque(maxlen=10_000)
        """Arrival instants (time.monotonic) of write requests at the device's socket, for
        measuring a show's beat."""
        self.offline = False
        self.slow_s = 0.0
        self.error = False
        self.paused = False
        self.held_back: list[tuple[internals.DatagramHandler, bytes, Any]] = []
        """What arrived while paused, in order, with the socket handler that takes it on resume."""
        self.cov_refused: set[str] = set()
        """Channels whose objects refuse SubscribeCOV (a device with COV on some objects only)."""
        self.commands: dict[str, int] = {}
        """Per channel, the writes the device has applied (a repeated write restarts a fade)."""
        self.app: SimApplication | None = None
        self.delayed: set[asyncio.Task[Any]] = set()
        self.max_in_progress = 0
        """Most requests held at once by a 'slow' fault: how many a client had in flight."""
        self.channels: dict[str, _Channel] = {}
        self.by_object: dict[tuple[str, int], _Channel] = {}
        self.power_obj: Any = None
        self.energy_obj: Any = None
        self.energy_kwh = 0.0
        self._last = time.monotonic()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        settings = self.controller.settings
        device = DeviceObject(
            objectIdentifier=("device", settings.device_instance),
            objectName=self.controller.name or self.controller.id,
            vendorIdentifier=self.profile.vendor_id,
            vendorName=self.profile.vendor_name,
            modelName=self.profile.model_name,
            maxApduLengthAccepted=self.profile.max_apdu,
            segmentationSupported="noSegmentation",
            description=self.profile.description,
        )
        port = NetworkPortObject(
            f"{self.address.split(':')[0]}/8:{self.address.split(':')[1]}",
            objectIdentifier=("network-port", 1),
            objectName="NetworkPort-1",
            networkNumber=0,
            networkNumberQuality="unknown",
        )
        objects: list[Any] = [device, port, *self._make_objects()]
        app = SimApplication.from_object_list(objects)
        app.building = self
        self.app = app
        await bound(app)
        local = internals.local_endpoint(app)
        if local is not None:
            local.intercept(self._arrivals)
        broadcasts = internals.broadcast_endpoint(app)
        if broadcasts is not None:
            broadcasts.intercept(self._broadcasts)

    def _arrivals(self, received: internals.DatagramHandler) -> internals.DatagramHandler:
        """Note when each write request arrives at the device's socket, and hand it to bacpypes3
        in its turn among the simulated devices of this process (drivers/simturns.py)."""

        def datagram_received(data: bytes, addr: Any) -> None:
            if not self.offline and is_write_request(data):
                self.write_times.append(time.monotonic())
            self._take(received, data, addr)

        return datagram_received

    def _broadcasts(self, received: internals.DatagramHandler) -> internals.DatagramHandler:
        """What arrives on the broadcast address: a unicast frame there is dropped, as the
        BACnet/IP stacks of real controllers drop it (bacpypes3 would answer it)."""

        def datagram_received(data: bytes, addr: Any) -> None:
            if bvlc_function(data) != ORIGINAL_UNICAST:
                self._take(received, data, addr)

        return datagram_received

    def _take(self, received: internals.DatagramHandler, data: bytes, addr: Any) -> None:
        if self.paused and not self.offline:
            self.held_back.append((received, data, addr))
        else:
            turns().call(partial(self._deliver, received, data, addr))

    def set_paused(self, paused: bool) -> None:
        """Stall the device's application (nothing answered, everything kept), or resume it:
        what arrived meanwhile is then worked through in order."""
        self.paused = paused
        if not paused:
            held, self.held_back = self.held_back, []
            for received, data, addr in held:
                turns().call(partial(self._deliver, received, data, addr))

    def _deliver(self, received: Any, data: bytes, addr: Any) -> None:
        if self.app is not None:  # a device stopped meanwhile drops what it had queued
            received(data, addr)

    def cov_subscriptions(self) -> list[internals.CovSubscription]:
        """The COV subscriptions the device holds now."""
        return [] if self.app is None else internals.live_cov_subscriptions(self.app)

    async def stop(self) -> None:
        for task in list(self.delayed):  # requests held back by a 'slow' fault die with the device
            task.cancel()
        await asyncio.gather(*self.delayed, return_exceptions=True)
        if self.app is not None:
            self.app.close()
            self.app = None

    def _make_objects(self) -> list[Any]:
        objects: list[Any] = []
        for ch in self.controller.channels:
            ref = self.profile.point_object(ch.point)
            obj = self._make_channel_object(ref, ch)
            channel = _Channel(ch, ref, obj)
            self.channels[ch.id] = channel
            self.by_object[(ref.kind, ref.instance)] = channel
            objects.append(obj)
        if self.profile.power is not None:
            self.power_obj = AnalogInputObject(
                objectIdentifier=("analog-input", self.profile.power.instance),
                objectName="facade lighting power",
                presentValue=0.0,
                units=EngineeringUnits.kilowatts if self.profile.power_scale_w == 1000 else EngineeringUnits.watts,
                covIncrement=1.0,
            )
            objects.append(self.power_obj)
        energy = self.profile.energy
        if energy is not None and energy.kind == "accumulator":
            self.energy_obj = SimAccumulator(
                objectIdentifier=("accumulator", energy.instance),
                objectName="facade lighting energy",
                presentValue=0,
                scale=Scale(floatScale=self.profile.energy_scale_kwh),
                units=EngineeringUnits.kilowattHours,
                maxPresValue=4_294_967_295,
                statusFlags=[0, 0, 0, 0],
                eventState="normal",
                outOfService=False,
            )
            objects.append(self.energy_obj)
        elif energy is not None:
            self.energy_obj = AnalogInputObject(
                objectIdentifier=("analog-input", energy.instance),
                objectName="facade lighting energy",
                presentValue=0.0,
                units=EngineeringUnits.kilowattHours,
                covIncrement=1.0,
            )
            objects.append(self.energy_obj)
        return objects

    def _make_channel_object(self, ref: ObjectRef, ch: ChannelConfig) -> Any:
        ident = (ref.kind, ref.instance)
        name = ch.name or ch.id
        if ref.kind == "lighting-output":
            return SimLightingOutput(
                priorityArray=_relinquished(), objectIdentifier=ident, objectName=name, presentValue=0.0, trackingValue=0.0,
                relinquishDefault=0.0, inProgress="idle", outOfService=False, blinkWarnEnable=False,
                egressTime=0, egressActive=False, defaultFadeTime=0, defaultRampRate=100.0,
                defaultStepIncrement=1.0, lightingCommandDefaultPriority=16, covIncrement=1.0,
                reliability="noFaultDetected", power=ch.rated_w / 1000.0, instantaneousPower=0.0,
            )
        if ref.kind == "analog-output":
            return AnalogOutputObject(
                priorityArray=_relinquished(), objectIdentifier=ident, objectName=name, presentValue=0.0, relinquishDefault=0.0,
                units=EngineeringUnits.percent, covIncrement=1.0, minPresValue=0.0, maxPresValue=100.0,
                reliability="noFaultDetected",
            )
        if ref.kind == "binary-output":
            return BinaryOutputObject(
                priorityArray=_relinquished(), objectIdentifier=ident, objectName=name, presentValue="inactive", relinquishDefault="inactive",
                polarity="normal", reliability="noFaultDetected",
            )
        states = self.profile.scene_states or ["off", "on"]
        return SimMultiStateValue(
            priorityArray=_relinquished(), objectIdentifier=ident, objectName=name, presentValue=1, relinquishDefault=1,
            numberOfStates=len(states), stateText=states,
            outOfService=False, eventState="normal", reliability="noFaultDetected",
        )

    # ------------------------------------------------------------------ behaviour

    def tick(self) -> None:
        """Advance fades, power and energy to now (called before each request is served).
        Values are stored only when they change, and without bacpypes3's casting and monitor
        machinery (nobody subscribes to them), which would otherwise dominate a request."""
        now = time.monotonic()
        total_w = 0.0
        for ch in self.channels.values():
            level = _output(ch, self.profile, now)
            watts = ch.config.rated_w * level / 100.0 * (1.0 - ch.lamp_failed)
            total_w += watts
            if ch.ref.kind == "lighting-output":
                _store(ch.obj, "trackingValue", Real(level))
                _store(ch.obj, "inProgress", _FADING if ch.fade.active(now) else _IDLE)
                _store(ch.obj, "instantaneousPower", Real(watts / 1000.0))
        self.energy_kwh += total_w / 1000.0 * (now - self._last) / 3600.0
        self._last = now
        if self.power_obj is not None:
            _store(self.power_obj, "presentValue", Real(total_w / self.profile.power_scale_w))
        if self.energy_obj is not None:
            if isinstance(self.energy_obj, SimAccumulator):
                _store(self.energy_obj, "presentValue",
                       Unsigned(int(self.energy_kwh / self.profile.energy_scale_kwh)))
            else:
                _store(self.energy_obj, "presentValue", Real(self.energy_kwh / self.profile.energy_scale_kwh))

    def power_w(self) -> float:
        self.tick()
        return sum(
            ch.config.rated_w * _output(ch, self.profile, time.monotonic()) / 100.0 * (1 - ch.lamp_failed)
            for ch in self.channels.values()
        )

    def write(self, objid: ObjectIdentifier, prop: PropertyIdentifier, value: AnyValue,
              index: int | None, priority: int | None) -> None:
        """Check and apply one write, as a controller would; raise ExecutionError to refuse it."""
        kind = str(objid[0])
        channel = self.by_object.get((kind, int(objid[1])))
        if channel is None:
            if self.app is not None and self.app.get_object_id(objid) is not None:
                raise ExecutionError("property", "writeAccessDenied")
            raise ExecutionError("object", "unknownObject")
        attr = PropertyIdentifier(prop).attr
        if attr not in WRITABLE.get(kind, frozenset()):
            raise ExecutionError("property", "writeAccessDenied")
        if index is not None:
            raise ExecutionError("property", "propertyIsNotAnArray")
        obj = channel.obj
        if attr == "lightingCommand":
            command = value.cast_out(LightingCommand)
            self._lighting_command(channel, command)
            return
        if priority is None:
            priority = 16
        if not 1 <= priority <= 16:
            raise ExecutionError("services", "parameterOutOfRange")
        if priority == 6:
            raise ExecutionError("property", "writeAccessDenied")
        prop_type = obj.get_property_type("presentValue")
        try:
            decoded = value.cast_out(prop_type, null=True)
        except Exception as exc:
            raise ExecutionError("property", "invalidDataType") from exc
        if isinstance(decoded, Null):
            self._command(channel, priority, PriorityValue(null=()), 0.0)
            return
        if kind in ("lighting-output", "analog-output"):
            level = float(decoded)
            if not 0.0 <= level <= 100.0:
                raise ExecutionError("property", "valueOutOfRange")
        elif kind == "multi-state-value" and not 1 <= int(decoded) <= int(obj.numberOfStates):
            raise ExecutionError("property", "valueOutOfRange")
        self._command(channel, priority, _priority_value(decoded), 0.0)

    def _lighting_command(self, channel: _Channel, command: LightingCommand) -> None:
        if not self.profile.fade:
            raise ExecutionError("property", "optionalFunctionalityNotSupported")
        operation = command.operation
        priority = command.priority if command.priority is not None else 16
        if not 1 <= priority <= 16 or priority == 6:
            raise ExecutionError("property", "valueOutOfRange")
        if operation == LightingOperation.stop:
            now = time.monotonic()
            level = channel.fade.level(now)
            channel.fade = Ramp(level, level, now, 0.0)
            return
        if operation not in (LightingOperation.fadeTo, LightingOperation.rampTo):
            raise ExecutionError("property", "optionalFunctionalityNotSupported")
        target = command.targetLevel
        if target is None or not 0.0 <= float(target) <= 100.0:
            raise ExecutionError("property", "valueOutOfRange")
        fade_s = (command.fadeTime or 0) / 1000.0
        if operation == LightingOperation.rampTo:
            rate = command.rampRate or 100.0
            fade_s = abs(float(target) - channel.fade.level(time.monotonic())) / float(rate)
        self._command(channel, priority, _priority_value(Real(float(target))), fade_s)

    def _command(self, channel: _Channel, priority: int, value: PriorityValue, fade_s: float) -> None:
        self.commands[channel.config.id] = self.commands.get(channel.config.id, 0) + 1
        now = time.monotonic()
        before = channel.fade.level(now)
        channel.obj.priorityArray[priority - 1] = value
        if channel.ref.kind == "lighting-output":
            channel.fade = Ramp(before, float(channel.obj.presentValue), now, fade_s)

    # ------------------------------------------------------------------ faults

    def set_lamp_failure(self, channel_id: str | None, fraction: float) -> None:
        for ch in self._targets(channel_id):
            ch.lamp_failed = fraction
            ch.obj.reliability = Reliability.lampFailure if fraction > 0 else Reliability.noFaultDetected

    def set_breaker_trip(self, channel_id: str | None, tripped: bool) -> None:
        for ch in self._targets(channel_id):
            ch.tripped = tripped
            ch.obj.reliability = Reliability.tripped if tripped else Reliability.noFaultDetected

    def set_device_fault(self, channel_id: str | None, failed: bool) -> None:
        """A fault the device finds in itself (an output module, its wiring): reliability
        unreliable-other."""
        for ch in self._targets(channel_id):
            ch.obj.reliability = Reliability.unreliableOther if failed else Reliability.noFaultDetected

    def _targets(self, channel_id: str | None) -> list[_Channel]:
        if channel_id is None:
            return list(self.channels.values())
        return [self.channels[channel_id]]

    def level(self, channel_id: str) -> float:
        """The channel's output now, in percent (for tests and the demo)."""
        return _output(self.channels[channel_id], self.profile, time.monotonic())

    def priority_slot(self, channel_id: str, priority: int) -> Any:
        slot = self.channels[channel_id].obj.priorityArray[priority - 1]
        return None if slot.null is not None else internals.chosen(slot)

    def command(self, channel_id: str, priority: int, value: float | int | None) -> None:
        """Command a channel locally, as the building's own operator would (tests, the demo)."""
        channel = self.channels[channel_id]
        if value is None:
            pv = PriorityValue(null=())
        elif channel.ref.kind == "multi-state-value":
            pv = PriorityValue(Unsigned(int(value)))
        elif channel.ref.kind == "binary-output":
            pv = PriorityValue(channel.obj.get_property_type("presentValue")("active" if value else "inactive"))
        else:
            pv = PriorityValue(Real(float(value)))
        self._command(channel, priority, pv, 0.0)

