"""Every use of bacpypes3's internals in lightctl, in one module, written for bacpypes3 0.0.110.

bacpypes3 has no public API for any of what follows. Each use was kept because it was measured
to pay (``lightctl bench switch --protocol bacnet --controllers 200 --rounds 5``, with and without,
in one sitting, 4 Dec 2026; CPU per building and switch, one write and one read):

* **cached lookups**: the class half of bacpypes3's ``inspect.getattr_static`` calls cached (it
  calls it for every element a ``Sequence`` is built without, and on every read and write of a local
  object). Engine 0.53-0.63 -> 0.65-0.81 ms without it, simulators 1.43-1.61 -> 2.13-2.38 ms.
* **decode memo**: a repeated ReadPropertyMultiple or WritePropertyMultiple request, or
  ReadPropertyMultiple ack, decoded once per content. Engine -> 0.98-1.08 ms without it,
  simulators -> 2.15-2.28 ms.
* **direct writes**: write requests framed once and sent on the client's own socket, their replies
  taken off it, outside bacpypes3's client layers, with invoke ids from bacpypes3's own table
  (drivers/bacnet/direct.py). Engine 0.61-0.64 -> 0.65-0.71 ms without it (500 buildings), and a
  show's cue reaches 50 buildings 3-6 ms after the beat instead of 7-23 ms.

Besides those, the client and the simulators need a link layer's sockets (to widen their receive
buffers, to stamp arrivals, to send a broadcast), the request a late reply answers, the value a
``Choice`` holds, an array's element type and a simulated device's live COV subscriptions.

``install()`` is called once by whatever starts bacpypes3 (the driver's shared client, the
simulator host). It checks the version and each fast path's assumptions, turns on those that hold
and says in the log which it turned off and why: the driver is then correct, only slower.
tests/test_bacnet_internals.py checks every assumption made here and fails (never skips) when
bacpypes3 moves one, or when the installed version is not the one this module was written for.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import importlib.metadata
import inspect
import logging
import socket
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

from bacpypes3.apdu import APCISequence, ComplexAckPDU, ConfirmedRequestPDU, ConfirmedServiceChoice
from bacpypes3.app import Application

log = logging.getLogger(__name__)

WRITTEN_FOR = "0.0.110"
"""The bacpypes3 version whose internals this module was written against and checked with."""

CACHED_LOOKUPS = "cached lookups"
DECODE_MEMO = "decode memo"
DIRECT_WRITES = "direct writes"
FAST_PATHS = (CACHED_LOOKUPS, DECODE_MEMO, DIRECT_WRITES)


def installed_version() -> str:
    return importlib.metadata.version("bacpypes3")


# --------------------------------------------------------------------------- cached lookups

LOOKUP_MODULES = ("bacpypes3.constructeddata", "bacpypes3.local.object", "bacpypes3.service.object")
"""The bacpypes3 modules whose ``inspect`` name is pointed at the cached lookup (the standard
library's module itself is left alone)."""

_sentinel: Any = getattr(inspect, "_sentinel", None)
_check_class: Any = getattr(inspect, "_check_class", None)
_check_instance: Any = getattr(inspect, "_check_instance", None)
_shadowed_dict: Any = getattr(inspect, "_shadowed_dict", None)

_class_lookups: dict[tuple[type, str], tuple[Any, bool, bool]] = {}
"""(class, attribute) -> (the class's answer or _sentinel, whether the instance dict counts,
whether the class's answer is a data descriptor and so wins over the instance dict)."""


def _class_lookup(klass: type, attr: str) -> tuple[Any, bool, bool]:
    key = (klass, attr)
    found = _class_lookups.get(key)
    if found is None:
        dict_attr = _shadowed_dict(klass)
        instance_dict_counts = dict_attr is _sentinel or type(dict_attr) is types.MemberDescriptorType
        result = _check_class(klass, attr)
        data_descriptor = False
        if result is not _sentinel:
            kind = type(result)
            data_descriptor = _check_class(kind, "__get__") is not _sentinel and (
                _check_class(kind, "__set__") is not _sentinel or _check_class(kind, "__delete__") is not _sentinel
            )
        found = _class_lookups[key] = (result, instance_dict_counts, data_descriptor)
    return found


def getattr_static(obj: Any, attr: str, default: Any = _sentinel) -> Any:
    """``inspect.getattr_static`` with the class half of the lookup cached: the same answer for
    every object that is not itself a class (classes go to ``inspect`` unchanged), provided
    classes get no new attributes after their first lookup (bacpypes3 builds its classes at
    import, and its ``SequenceOf``/``ArrayOf`` classes once per signature). On Python 3.11 each
    uncached call walks the class's MRO twice."""
    if isinstance(obj, type):
        return inspect.getattr_static(obj, attr, default)
    klass_result, instance_dict_counts, data_descriptor = _class_lookup(type(obj), attr)
    if instance_dict_counts and not data_descriptor:
        instance_result = _check_instance(obj, attr)
        if instance_result is not _sentinel:
            return instance_result
    if klass_result is not _sentinel:
        return klass_result
    if default is not _sentinel:
        return default
    raise AttributeError(attr)


class _InspectWithCachedLookups(types.ModuleType):
    """``inspect`` as the patched bacpypes3 modules see it: everything as is, but ``getattr_static``."""

    getattr_static = staticmethod(getattr_static)

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)


def _lookups_problem() -> str | None:
    if None in (_sentinel, _check_class, _check_instance, _shadowed_dict):
        return "this Python's inspect lacks _sentinel, _check_class, _check_instance or _shadowed_dict"
    for name in LOOKUP_MODULES:
        module = importlib.import_module(name)
        if not isinstance(getattr(module, "inspect", None), types.ModuleType):
            return f"{name} no longer imports inspect as a module"
    return None


def _install_lookups() -> None:
    shim = _InspectWithCachedLookups("inspect")
    for name in LOOKUP_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "inspect", None) is inspect:
            module.__dict__["inspect"] = shim


# --------------------------------------------------------------------------- decode memo

MEMOISED = frozenset(
    {
        (ConfirmedRequestPDU.pduType, ConfirmedServiceChoice.readPropertyMultiple),
        (ConfirmedRequestPDU.pduType, ConfirmedServiceChoice.writePropertyMultiple),
        (ComplexAckPDU.pduType, ConfirmedServiceChoice.readPropertyMultiple),
    }
)
"""(APDU type, service) decoded once per content: what a switch repeats to and from every building."""
MEMO_SIZE = 1024
"""Distinct PDUs kept (each at most one APDU of 1,476 octets and some kB of its decoded form);
the memo starts over when full."""

_memo: dict[tuple[int, int, bytes], APCISequence] = {}
_decode: Any = None
"""bacpypes3's own ``APCISequence.decode`` (the function under the classmethod), once replaced."""


def _decode_function() -> Any:
    found = APCISequence.__dict__.get("decode")
    return found.__func__ if isinstance(found, classmethod) else None


def plain_decode(apdu: Any) -> APCISequence:
    """bacpypes3's own decoding, memo or not."""
    decode = _decode if _decode is not None else _decode_function()
    result: APCISequence = decode(APCISequence, apdu)
    return result


def memo_decode(cls: type[APCISequence], apdu: Any) -> APCISequence:
    """``APCISequence.decode`` memoised for the kinds in MEMOISED: the first decode of given bytes
    is bacpypes3's own, later ones a shallow copy of it with the header (source, invoke id) of
    the PDU at hand. The copies share their nested values with the memo, so they are only read,
    never changed in place: true of bacpypes3's service handlers and of the driver."""
    kind = (apdu.apduType, apdu.apduService)
    if kind not in MEMOISED:
        result: APCISequence = _decode(cls, apdu)
        return result
    key = (*kind, bytes(apdu.pduData))
    template = _memo.get(key)
    if template is None:
        template = _decode(cls, apdu)
        if len(_memo) >= MEMO_SIZE:
            _memo.clear()
        _memo[key] = template
    decoded = copy.copy(template)
    decoded.update(apdu)
    return decoded


def memo_size() -> int:
    return len(_memo)


def _memo_problem() -> str | None:
    if _decode is None and _decode_function() is None:
        return "APCISequence.decode is no longer a classmethod"
    return None


def _install_memo() -> None:
    global _decode
    if _decode is None:
        _decode = _decode_function()
        APCISequence.decode = classmethod(memo_decode)  # type: ignore[assignment,method-assign]


# --------------------------------------------------------------------------- the client's request table


def _request_table_problem() -> str | None:
    probe = Application.__new__(Application)
    Application.__init__(probe)
    if not isinstance(getattr(probe, "_requests", None), dict) or not isinstance(
        getattr(probe, "next_invoke_id", None), int
    ):
        return "Application keeps no _requests table or next_invoke_id counter"
    if not callable(getattr(Application, "_request_done", None)):
        return "Application has no _request_done"
    return None


def claim_invoke_id(
    app: Any, request: ConfirmedRequestPDU, future: asyncio.Future[Any], busy: Callable[[int], bool]
) -> int | None:
    """Give ``request`` an invoke id that no request in flight to its destination holds (in
    bacpypes3's table, or ``busy`` says so), from bacpypes3's own counter, and enter it with
    ``future`` in that table as ``Application.request`` does: bacpypes3's requests and ours then
    never hand a device one id twice, and the entry goes when the future is done. None, with
    nothing entered, when all 256 ids to that device are in use."""
    destination = request.pduDestination
    in_use = {pdu.apduInvokeID for pdu, _ in app._requests.get(destination, ())}
    invoke: int = app.next_invoke_id
    for _ in range(256):
        if invoke not in in_use and not busy(invoke):
            break
        invoke = (invoke + 1) % 256
    else:
        return None
    app.next_invoke_id = (invoke + 1) % 256
    request.apduInvokeID = invoke
    app._requests.setdefault(destination, []).append((request, future))
    future.add_done_callback(partial(app._request_done, request))
    return invoke


def given_up(app: Any, apdu: Any) -> bool:
    """Is ``apdu`` the reply to a request whose future is already done (its caller's timeout
    cancelled it, and bacpypes3 has not yet taken it out of its table)? bacpypes3 would set
    that future's result and log InvalidStateError."""
    return any(
        request.apduInvokeID == apdu.apduInvokeID and future.done()
        for request, future in app._requests.get(apdu.pduSource, ())
    )


# --------------------------------------------------------------------------- link-layer sockets

DatagramHandler = Callable[[bytes, Any], None]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One UDP socket of a bacpypes3 BACnet/IP link layer."""

    transport: asyncio.DatagramTransport
    protocol: asyncio.DatagramProtocol

    def intercept(self, wrap: Callable[[DatagramHandler], DatagramHandler]) -> None:
        """Put ``wrap(bacpypes3's handler)`` in front of every datagram this socket receives."""
        protocol: Any = self.protocol
        protocol.datagram_received = wrap(protocol.datagram_received)

    @property
    def socket(self) -> socket.socket | None:
        found: socket.socket | None = self.transport.get_extra_info("socket")
        return found


def _server(app: Any) -> Any:
    layers = list(app.link_layers.values())
    return getattr(layers[0], "server", None) if len(layers) == 1 else None


async def link_bound(app: Any) -> None:
    """Wait until bacpypes3 has bound the application's sockets (it binds them in tasks of its
    own, and sends nothing before they are done)."""
    for layer in app.link_layers.values():
        server: Any = getattr(layer, "server", None)
        tasks = getattr(server, "_transport_tasks", None)
        if tasks:
            await asyncio.gather(*tasks)
            server._transport_tasks = []


def endpoints(app: Any) -> list[Endpoint]:
    """Every bound socket of the application's BACnet/IP link layers (local and broadcast)."""
    found = []
    for layer in app.link_layers.values():
        server = getattr(layer, "server", None)
        for which in ("local", "broadcast"):
            transport = getattr(server, f"{which}_transport", None)
            protocol = getattr(server, f"{which}_protocol", None)
            if transport is not None and protocol is not None:
                found.append(Endpoint(transport, protocol))
    return found


def local_endpoint(app: Any) -> Endpoint | None:
    """The socket of the application's one plain BACnet/IP link layer, bound to its own address;
    None for anything else (several link layers, a foreign device, IPv6)."""
    server = _server(app)
    transport = getattr(server, "local_transport", None)
    protocol = getattr(server, "local_protocol", None)
    return None if transport is None or protocol is None else Endpoint(transport, protocol)


def broadcast_endpoint(app: Any) -> Endpoint | None:
    """The socket on which the application's link layer hears its subnet's broadcasts, if any."""
    server = _server(app)
    transport = getattr(server, "broadcast_transport", None)
    protocol = getattr(server, "broadcast_protocol", None)
    if transport is None or protocol is None or transport is getattr(server, "local_transport", None):
        return None
    return Endpoint(transport, protocol)


# --------------------------------------------------------------------------- constructed values


def chosen(choice: Any) -> Any:
    """The value of the element a ``Choice`` holds (a priority-array slot's value, or its NULL)."""
    return getattr(choice, choice._choice)


def element_type(array_class: Any) -> Any:
    """The type of an ``ArrayOf`` class's elements."""
    return array_class._subtype


@cache
def stored_elements(cls: type) -> frozenset[str]:
    """The elements of a local object class that are values stored on the instance (not
    properties computed by a getter)."""
    return frozenset(
        name for name in getattr(cls, "_elements", {})
        if not isinstance(inspect.getattr_static(cls, name, None), property)
    )


def store_quietly(obj: Any, attr: str, value: Any) -> None:
    """Set a stored element of a local object without bacpypes3's casting and change monitors
    (for values nobody subscribes to, which a simulated device refreshes before every request);
    only when it changes."""
    if obj.__dict__.get(attr) != value:
        object.__setattr__(obj, attr, value)


@dataclass(frozen=True, slots=True)
class CovSubscription:
    monitored: str
    """``type,instance`` of the object."""
    subscriber: str
    process_id: int
    lifetime_s: int


def live_cov_subscriptions(app: Any) -> list[CovSubscription]:
    """The COV subscriptions a (simulated) device holds now."""
    return [
        CovSubscription(f"{cov.obj_id[0]},{cov.obj_id[1]}", str(cov.client_addr), int(cov.proc_id), int(cov.lifetime))
        for detection in app._cov_detections.values()
        for cov in detection.cov_subscriptions
    ]


# --------------------------------------------------------------------------- install

_PROBLEMS: dict[str, Callable[[], str | None]] = {
    CACHED_LOOKUPS: _lookups_problem,
    DECODE_MEMO: _memo_problem,
    DIRECT_WRITES: _request_table_problem,
}
_INSTALLERS: dict[str, Callable[[], None]] = {CACHED_LOOKUPS: _install_lookups, DECODE_MEMO: _install_memo}
_state: dict[str, bool] | None = None


def problems(version: str) -> dict[str, str | None]:
    """Why each fast path cannot be used with bacpypes3 ``version`` as installed (None: it can)."""
    if version != WRITTEN_FOR:
        reason = (f"bacpypes3 {version} is installed; {__name__} was written for {WRITTEN_FOR} "
                  "(check it with tests/test_bacnet_internals.py, then update WRITTEN_FOR)")
        return dict.fromkeys(FAST_PATHS, reason)
    return {name: check() for name, check in _PROBLEMS.items()}


def turn_on(found: dict[str, str | None]) -> dict[str, bool]:
    """Install the fast paths that ``problems`` found nothing against; log each one left off,
    and why. Returns which are on."""
    state = {}
    for name, problem in found.items():
        if problem is not None:
            log.warning("bacpypes3 fast path %r is off: %s", name, problem)
        elif name in _INSTALLERS:
            _INSTALLERS[name]()
        state[name] = problem is None
    return state


def install() -> dict[str, bool]:
    """Turn on the fast paths whose assumptions hold with the installed bacpypes3, once per
    process (later calls return the first answer). Returns which are on."""
    global _state
    if _state is None:
        _state = turn_on(problems(installed_version()))
    return dict(_state)


def enabled(name: str) -> bool:
    """Whether ``install()`` turned this fast path on."""
    return _state is not None and _state.get(name, False)
