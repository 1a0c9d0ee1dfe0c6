# mypy: disallow-subclassing-any=False
"""The asyncua server side of the simulator, made to behave like a PLC and to start fast.

Two things the stock asyncua ``Server`` does not do:

* **Start-up cost.** ``Server.init()`` builds the standard address space (about 6,000 nodes of
  namespace 0) for every server: ~1.6 s of CPU each, minutes for a simulator of 200 PLCs. Here
  it is built once per process (:func:`standard_space`) and each server gets a copy-on-access
  view of it: a namespace-0 node is copied into the server's own dict the first time that
  server touches it, so no server ever sees another's state, and a server that is only asked
  for its own nodes copies a few dozen. This relies on ``AddressSpace._nodes`` being a mapping
  that every service goes through (true for asyncua 2.x; checked by the tests).
* **Strictness.** asyncua stores a Write that carries a SourceTimestamp or a status code;
  spec-strict servers (open62541, most PLCs) answer ``BadWriteNotSupported``. The decoded
  ``DataValue`` no longer tells whether those fields were sent (absent status decodes as Good),
  so the request body's encoding masks are read before asyncua decodes it. A session the PLC
  has ended (:meth:`PlcServer.end_sessions`: a session timeout, a runtime restart) is answered
  ``BadSessionIdInvalid`` on its still open connection and secure channel, as PLC stacks answer;
  asyncua would say ``BadSessionNotActivated``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any
from urllib.parse import ParseResult, urlparse

from asyncua import Server, ua
from asyncua.common.utils import Buffer
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.security_policies import SecurityPolicyNone
from asyncua.server.address_space import AttributeValue, NodeData, ViewService
from asyncua.server.binary_server_asyncio import BinaryServer, OPCUAProtocol
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession, SessionState
from asyncua.server.uaprocessor import UaProcessor
from asyncua.ua.ua_binary import nodeid_from_binary, struct_from_binary, variant_from_binary

from drivers.opcua.sim_load import install_cheap_value_copies, lift_process_session_cap
from drivers.simturns import turns

DATAVALUE_STATUS_BIT = 0x02
DATAVALUE_SOURCE_TIMESTAMP_BIT = 0x04
DATAVALUE_SOURCE_PICOSECONDS_BIT = 0x10
FORBIDDEN_WRITE_BITS = DATAVALUE_STATUS_BIT | DATAVALUE_SOURCE_TIMESTAMP_BIT | DATAVALUE_SOURCE_PICOSECONDS_BIT

_WRITE_REQUEST = ua.NodeId(ua.ObjectIds.WriteRequest_Encoding_DefaultBinary)
_SESSION_STARTS = frozenset(
    ua.NodeId(getattr(ua.ObjectIds, f"{name}Request_Encoding_DefaultBinary"))
    for name in ("CreateSession", "CloseSecureChannel", "GetEndpoints", "FindServers", "FindServersOnNetwork")
)
"""Requests that need no session (or start one)."""
_COMMANDS = frozenset({_WRITE_REQUEST, ua.NodeId(ua.ObjectIds.CallRequest_Encoding_DefaultBinary)})
WRITE_TIMES_KEPT = 5000
_DISCOVERY = frozenset(
    ua.NodeId(getattr(ua.ObjectIds, f"{name}Request_Encoding_DefaultBinary"))
    for name in ("GetEndpoints", "FindServers", "FindServersOnNetwork")
)
_SERVICE_NAMES = {
    ua.NodeId(getattr(ua.ObjectIds, f"{name}Request_Encoding_DefaultBinary")): name
    for name in (
        "Read", "Write", "Call", "Browse", "TranslateBrowsePathsToNodeIds", "CreateSession",
        "ActivateSession", "CloseSession", "CreateSubscription", "CreateMonitoredItems", "Publish",
        "DeleteSubscriptions", "GetEndpoints", "RegisterNodes",
    )
}

# --------------------------------------------------------------------------- shared namespace 0

_template: dict[ua.NodeId, NodeData] | None = None
_template_lock = asyncio.Lock()


async def standard_space() -> dict[ua.NodeId, NodeData]:
    """Namespace 0, built once per process; never handed out, only copied from."""
    global _template
    async with _template_lock:
        if _template is None:
            builder = InternalServer()
            await builder.load_standard_address_space()
            _template = dict(builder.aspace._nodes)
    return _template


def _copy_node(src: NodeData) -> NodeData:
    """The node's own attribute slots and reference list. The DataValues themselves are shared:
    asyncua replaces a DataValue on write, it never changes one in place."""
    node = NodeData(src.nodeid)
    for attr, value in src.attributes.items():
        fresh = AttributeValue(value.value)
        fresh.value_callback = value.value_callback
        node.attributes[attr] = fresh
    node.references = list(src.references)
    node.call = src.call
    return node


class CopyOnAccessNodes(MutableMapping[ua.NodeId, NodeData]):
    """A server's node dict over the shared namespace 0: reading a template node copies it."""

    def __init__(self, template: dict[ua.NodeId, NodeData]) -> None:
        self._template = template
        self._own: dict[ua.NodeId, NodeData] = {}
        self._deleted: set[ua.NodeId] = set()

    def __getitem__(self, key: ua.NodeId) -> NodeData:
        try:
            return self._own[key]
        except KeyError:
            if key in self._deleted:
                raise
            node = self._own[key] = _copy_node(self._template[key])
            return node

    def get(self, key: ua.NodeId, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: ua.NodeId, value: NodeData) -> None:
        self._deleted.discard(key)
        self._own[key] = value

    def __delitem__(self, key: ua.NodeId) -> None:
        if key not in self:
            raise KeyError(key)
        self._own.pop(key, None)
        if key in self._template:
            self._deleted.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self._own or (key in self._template and key not in self._deleted)

    def __iter__(self) -> Iterator[ua.NodeId]:
        yield from self._own
        for key in self._template:
            if key not in self._own and key not in self._deleted:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def copied(self) -> int:
        return len(self._own)


# --------------------------------------------------------------------------- PLC behaviour hooks


class PlcHooks:
    """What the PLC model decides for each service request; the server below asks it."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.write_times: deque[float] = deque(maxlen=WRITE_TIMES_KEPT)
        """``time.monotonic()`` at the arrival of each Write or Call (what changes outputs): when
        its bytes were read from the PLC's connection, not when this process, which simulates
        many PLCs, got round to processing it."""
        self.delay_s = 0.0
        self.error_status: int | None = None
        """When set, every Read value, Write and Call result carries this Bad status."""
        self.users: dict[str, str] | None = None
        self.secure_only = False
        """Over an unsecured channel only discovery is answered (a PLC with security on)."""
        self.refuse_write: Callable[[ua.WriteValue], int | None] = lambda _item: None
        self.after_write: Callable[[list[ua.WriteValue]], Awaitable[None]] = _nothing
        self.before_read: Callable[[], Awaitable[None]] = _nothing_to_prepare


async def _nothing(_items: list[ua.WriteValue]) -> None:
    return None


async def _nothing_to_prepare() -> None:
    return None


class _PlcSession(InternalSession):
    hooks: PlcHooks
    write_masks: list[int] | None = None

    async def read(self, params: ua.ReadParameters) -> list[ua.DataValue]:
        if self.hooks.error_status is not None:
            return [ua.DataValue(StatusCode=ua.StatusCode(self.hooks.error_status)) for _ in params.NodesToRead]
        await self.hooks.before_read()
        values: list[ua.DataValue] = await super().read(params)
        return values

    async def write(self, params: ua.WriteParameters) -> list[ua.StatusCode]:
        masks, self.write_masks = self.write_masks or [], None
        results: list[ua.StatusCode | None] = []
        allowed: list[ua.WriteValue] = []
        for i, item in enumerate(params.NodesToWrite):
            mask = masks[i] if i < len(masks) else 0
            refused: int | None
            if self.hooks.error_status is not None:
                refused = self.hooks.error_status
            elif item.AttributeId == ua.AttributeIds.Value and mask & FORBIDDEN_WRITE_BITS:
                refused = ua.StatusCodes.BadWriteNotSupported
            else:
                refused = self.hooks.refuse_write(item)
            if refused is None:
                results.append(None)
                allowed.append(item)
            else:
                results.append(ua.StatusCode(refused))
        done = await super().write(ua.WriteParameters(NodesToWrite=allowed)) if allowed else []
        accepted = [item for item, status in zip(allowed, done, strict=True) if status.is_good()]
        if accepted:
            await self.hooks.after_write(accepted)
        it = iter(done)
        return [r if r is not None else next(it) for r in results]

    async def call(self, params: list[ua.CallMethodRequest]) -> list[ua.CallMethodResult]:
        if self.hooks.error_status is not None:
            return [ua.CallMethodResult(StatusCode=ua.StatusCode(self.hooks.error_status)) for _ in params]
        results: list[ua.CallMethodResult] = await super().call(params)
        return results


class _PasswordUsers:
    """A PLC's user list: a known user with the right password, nobody else."""

    def __init__(self, hooks: PlcHooks) -> None:
        self.hooks = hooks

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        users = self.hooks.users
        if users is None:
            return User(role=UserRole.User)
        if username is not None and users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


_ANONYMOUS = User(role=UserRole.Anonymous)


class _PlcViewService(ViewService):
    """asyncua walks the whole reference-type tree for every reference it looks at when a browse
    path says "HierarchicalReferences and subtypes" (about 0.5 ms each): 200 PLCs resolving at once
    took longer than a timeout. The type tree does not change at run time, so it is cached."""

    def __init__(self, aspace: Any) -> None:
        super().__init__(aspace)
        self._subtypes: dict[ua.NodeId, frozenset[ua.NodeId]] = {}

    def _suitable_reftype(self, ref1: ua.NodeId, ref2: ua.NodeId, subtypes: bool) -> bool:
        if ref1 in (_NULL, ref2):
            return True
        if not subtypes:
            return False
        known = self._subtypes.get(ref1)
        if known is None:
            known = self._subtypes[ref1] = frozenset(self._get_sub_ref(ref1))
        return ref2 in known


_NULL = ua.NodeId(ua.ObjectIds.Null)


class _PlcInternalServer(InternalServer):
    def __init__(self, hooks: PlcHooks, template: dict[ua.NodeId, NodeData]) -> None:
        self.hooks = hooks
        self._template = template
        super().__init__(user_manager=_PasswordUsers(hooks))  # type: ignore[arg-type]
        self.view_service = _PlcViewService(self.aspace)

    async def load_standard_address_space(self, shelf_file: Any = None) -> None:
        self.aspace._nodes = CopyOnAccessNodes(self._template)  # type: ignore[assignment]

    def create_session(
        self, name: str, user: User = _ANONYMOUS, external: bool = False
    ) -> InternalSession:
        session = _PlcSession(self, self.aspace, self.subscription_service, name, user=user, external=external)
        session.hooks = self.hooks
        return session


class _PlcProcessor(UaProcessor):
    hooks: PlcHooks
    arrived_at: float | None = None
    """When the message being processed was read from the connection (set by _PlcProtocol)."""

    async def process_message(self, seqhdr: Any, body: Buffer) -> Any:
        peek = body.copy()
        typeid = nodeid_from_binary(peek)
        if typeid in _COMMANDS:
            self.hooks.write_times.append(self.arrived_at or time.monotonic())
        self.hooks.counts[_SERVICE_NAMES.get(typeid, str(typeid))] += 1
        if self.hooks.delay_s > 0:
            await asyncio.sleep(self.hooks.delay_s)
        session = self.session
        if typeid not in _SESSION_STARTS and session is not None and session.state is SessionState.Closed:
            return self._fault(peek, seqhdr, ua.StatusCodes.BadSessionIdInvalid)
        if (
            self.hooks.secure_only
            and typeid not in _DISCOVERY
            and isinstance(self._connection.security_policy, SecurityPolicyNone)
        ):
            return self._fault(peek, seqhdr, ua.StatusCodes.BadSecurityPolicyRejected)
        if typeid == _WRITE_REQUEST and isinstance(self.session, _PlcSession):
            self.session.write_masks = _write_masks(peek)
        return await super().process_message(seqhdr, body)

    def _fault(self, body: Buffer, seqhdr: Any, status: int) -> bool:
        """Answer the request (``body`` past its type id) with a ServiceFault."""
        header = struct_from_binary(ua.RequestHeader, body.copy())
        fault = ua.ServiceFault()
        fault.ResponseHeader.ServiceResult = ua.StatusCode(status)
        self.send_response(header.RequestHandle, seqhdr, fault)
        return True


def _write_masks(body: Buffer) -> list[int]:
    """The DataValue encoding mask of each WriteValue in a WriteRequest body (after the type id).
    Node ids and scalar values are skipped by their length (asyncua decodes the request anyway)."""
    struct_from_binary(ua.RequestHeader, body)
    data = bytes(body)
    count = int.from_bytes(data[0:4], "little", signed=True)
    pos, masks = 4, []
    for _ in range(max(count, 0)):
        pos = _skip_nodeid(data, pos) + 4  # NodeId, AttributeId
        length = int.from_bytes(data[pos : pos + 4], "little", signed=True)
        pos += 4 + max(length, 0)  # IndexRange
        mask = data[pos]
        masks.append(mask)
        pos += 1
        if mask & 0x01:
            kind = data[pos]
            size = _SCALAR_SIZES.get(kind)
            if size is None:  # an array, a string, a structure: let asyncua measure it
                rest = Buffer(data, pos)
                variant_from_binary(rest)
                pos = rest.cur_pos
            else:
                pos += 1 + size
        pos += sum(size for bit, size in _DATAVALUE_FIELDS if mask & bit)
    return masks


_SCALAR_SIZES = {0: 0, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 4, 8: 8, 9: 8, 10: 4, 11: 8, 13: 8, 19: 4}
"""Variant encoding byte (scalar) -> size of its value: Null, Boolean .. Double, DateTime, StatusCode."""
_DATAVALUE_FIELDS = ((0x02, 4), (0x04, 8), (0x10, 2), (0x08, 8), (0x20, 2))


def _skip_nodeid(data: bytes, pos: int) -> int:
    kind = data[pos]
    pos += 1
    base = kind & 0x3F
    if base == 0:
        pos += 1
    elif base == 1:
        pos += 3
    elif base == 2:
        pos += 6
    elif base == 4:
        pos += 18
    else:  # String or ByteString identifier
        pos += 2
        length = int.from_bytes(data[pos : pos + 4], "little", signed=True)
        pos += 4 + max(length, 0)
    if kind & 0x80:  # namespace URI
        length = int.from_bytes(data[pos : pos + 4], "little", signed=True)
        pos += 4 + max(length, 0)
    if kind & 0x40:  # server index
        pos += 4
    return pos


class _PlcProtocol(OPCUAProtocol):
    """asyncua queues each complete message of a connection for a task to process; with many
    PLCs in one process, a message can wait there behind the others' work. Its arrival instant is
    taken when its bytes are read, and handed to the processor with the message (see drivers/simturns.py)."""

    hooks: PlcHooks

    processor: UaProcessor | None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.arrivals: deque[float] = deque()
        super().connection_made(transport)
        if self.processor is not None:
            processor = _PlcProcessor(self.iserver, transport, self.limits)  # type: ignore[arg-type]
            processor.hooks = self.hooks
            processor.set_policies(self.policies)
            self.processor = processor

    def data_received(self, data: bytes) -> None:
        now, queued = time.monotonic(), self.messages.qsize()
        super().data_received(data)
        self.arrivals.extend([now] * (self.messages.qsize() - queued))

    async def _process_one_msg(self, header: Any, buf: Buffer) -> bool:
        await turns().wait()
        if isinstance(self.processor, _PlcProcessor):
            self.processor.arrived_at = self.arrivals.popleft() if self.arrivals else None
        processed: bool = await super()._process_one_msg(header, buf)
        return processed


class _PlcBinaryServer(BinaryServer):
    hooks: PlcHooks

    def _make_protocol(self) -> OPCUAProtocol:
        protocol = _PlcProtocol(
            iserver=self.iserver, policies=self._policies, clients=self.clients,
            closing_tasks=self.closing_tasks, limits=self.limits,
        )
        protocol.hooks = self.hooks
        return protocol


class PlcServer(Server):
    """An asyncua server with the PLC hooks, the shared namespace 0, and port 0 made usable:
    it binds first and then advertises the port it got."""

    def __init__(self, hooks: PlcHooks, template: dict[ua.NodeId, NodeData]) -> None:
        install_cheap_value_copies()
        lift_process_session_cap()
        super().__init__(iserver=_PlcInternalServer(hooks, template))
        self.endpoint: ParseResult = self.endpoint
        self.bserver: BinaryServer | None = None
        self.hooks = hooks
        self.disable_clock()

    async def start(self) -> None:
        host, port = self.endpoint.hostname, self.endpoint.port
        bserver = _PlcBinaryServer(self.iserver, host or "127.0.0.1", port or 0, self.limits)
        bserver.hooks = self.hooks
        await bserver.start()
        self.bserver = bserver
        self.endpoint = urlparse(f"opc.tcp://{bserver.hostname}:{bserver.port}{self.endpoint.path}")
        try:
            await self._setup_server_nodes()
            await self.iserver.start()
        except BaseException:
            await bserver.stop()
            raise
        bserver.set_policies(self._policies)

    async def stop(self) -> None:
        """Stop like a PLC losing power: sessions end with it. (asyncua keeps a session with
        subscriptions alive after its connection closes, for the client to take over.)"""
        await super().stop()
        sessions = list(self.iserver._external_sessions.values())
        for session in sessions:
            await session.close_session(True)
        watchdogs = [s._timeout_task for s in sessions if s._timeout_task is not None]
        await asyncio.gather(*watchdogs, return_exceptions=True)

    def own_ids_from(self, namespace: int, first: int) -> None:
        """Ids asyncua makes itself in ``namespace`` (a method's argument properties) start at
        ``first``, past the PLC's own, so that it does not scan the whole address space for the
        highest id in the namespace."""
        self.iserver.aspace._nodeid_counter[namespace] = first

    async def end_sessions(self) -> None:
        """End every session as a PLC does on a session timeout or a runtime restart, its
        subscriptions with it, leaving the connections and secure channels open."""
        for session in list(self.iserver._external_sessions.values()):
            await session.close_session(True)

    @property
    def port(self) -> int:
        return self.endpoint.port or 0

    async def go_offline(self) -> None:
        """Stop listening and drop every connection, keeping the address space (power loss of
        the network switch, not of the PLC)."""
        if self.bserver is not None:
            await self.bserver.stop()
            self.bserver = None

    async def go_online(self) -> None:
        if self.bserver is not None:
            return
        bserver = _PlcBinaryServer(self.iserver, self.endpoint.hostname or "127.0.0.1", self.port, self.limits)
        bserver.hooks = self.hooks
        bserver.set_policies(self._policies)
        await bserver.start()
        self.bserver = bserver

