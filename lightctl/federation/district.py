"""A district daemon as a Sparkplug B edge node (a :class:`~lightctl.runtime.hooks.DaemonService`).

The district owns its controllers and keeps its schedule whatever the broker does: this service
only reports and takes requests, and the daemon never waits for it.

* **Session** (Sparkplug 3.0, with a primary host): connect with the NDEATH as will (its bdSeq,
  one more per connection, kept in the store), subscribe to NCMD/DCMD for this node and to the
  primary host's STATE, and publish nothing until the host is online. Then NBIRTH (the
  district's inventory, scenes, shows and layers in force), a DBIRTH per controller (its config
  and whole state), and the outbox. When the host goes offline: NDEATH, disconnect, and wait for
  it again; when the broker is unreachable: reconnect with capped backoff.
* **State** by exception: a controller whose channels, desired state, link or pending count
  changed gets a DDATA with what changed; a reading's figures (power, energy) at most every
  :data:`READING_INTERVAL_S`. Every message carries the node's sequence number; the city asks
  for a rebirth (NCMD ``Node Control/Rebirth``) when it finds one missing.
* **Events** (:mod:`lightctl.federation.events`) go through the outbox in the store first, then
  as NDATA in order; the city acknowledges them (NCMD ``Outbox/Acknowledged``) once recorded. What
  it has not acknowledged is sent again at the next session, or after ``resend_after_s``: the city
  drops what it already has. So nothing said while the broker or the city was away is lost, and
  nothing is taken twice.
* **Requests** of the city (NCMD ``Command/Request``) are carried out by
  :class:`~lightctl.federation.requests.RequestRunner` and answered through the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

import aiomqtt

from lightctl.federation import mqtt, vocabulary
from lightctl.federation.describe import ConfigTexts, controller_facts, inventory_text, overrides_text
from lightctl.federation.events import ANSWER, FORWARDED
from lightctl.federation.requests import Outcome, RequestError, RequestRunner, answer_text, parse_request
from lightctl.federation.rollups import RollupReporter
from lightctl.federation.schema import DataType
from lightctl.federation.sparkplug import (
    MessageType,
    Metric,
    Payload,
    Sequence256,
    SparkplugError,
    Topic,
    decode,
    encode,
    parse_state,
    state_topic,
)
from lightctl.federation.vocabulary import ControllerFacts
from lightctl.model.federation import FederationConfig
from lightctl.model.times import now_ms
from lightctl.reconcile.outcomes import ConvergedEvent, EngineEvent, LinkEvent, ReadingEvent
from lightctl.runtime.commands import CommandReport
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.events import Published
from lightctl.store import StoreError

log = logging.getLogger("lightctl.federation")

READING_INTERVAL_S = 60.0
"""A controller's power and energy are sent at most this often (its state, whenever it changes)."""
OUTBOX_PAGE = 200
RELAY_BATCH = 500
IDLE_WAKE_S = 1.0
HELD_WAKE_S = 0.05
STOP_TIMEOUT_S = 5.0


class HostOffline(Exception):
    """The primary host said it is offline: the session ends (Sparkplug: NDEATH, disconnect)."""


class DistrictNode:
    name = "federation"

    def __init__(self, daemon: Daemon, config: FederationConfig, *, password: str | None = None) -> None:
        if config.node is None:
            raise ValueError("a district node needs federation.node")
        self.daemon = daemon
        self.config = config
        self.node: str = config.node
        self.password = password
        self.records = daemon.store.federation
        self.runner = RequestRunner(daemon, self.records)
        self.state = "starting"
        """starting, connecting, waiting for the city, online."""
        self.sessions = 0
        self.births = 0
        self.last_error: str | None = None
        self._client: aiomqtt.Client | None = None
        self._bd_seq = 0
        self._host_timestamp = -1
        self._queue: deque[tuple[int, str, str | None, str]] = deque()
        self._queue_ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._outbox_more = True
        self._direct: list[dict[str, Any]] = []
        """Answers the store could not keep, sent once without an outbox id."""
        self._cursor = 0
        self._acked = 0
        self._unacked_since: float | None = None
        self._dirty: set[str] = set()
        self._published: dict[str, ControllerFacts] = {}
        self._reading_sent: dict[str, float] = {}
        self._overrides_sent: str | None = None
        self._layer_requests: dict[int, str] = {}
        self._rebirth = False
        self._configs = ConfigTexts()
        self._answering = 0
        """City requests being carried out and not yet answered: state reports wait for their answers."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: list[asyncio.Task[None]] = []
        self.rollups = RollupReporter(daemon.store, config.rollup_interval_s, self._outbox_added)

    def _topic(self, kind: MessageType, device: str | None = None) -> str:
        return str(Topic(kind, self.config.group, self.node, device))

    # -- the service -------------------------------------------------------------------------

    async def start(self) -> None:
        self._acked = self._cursor = await self.records.acknowledged()
        self._layer_requests = await self.records.inbox_requests_by_layer()
        self.daemon.subscribers.append(self._on_published)
        self._main = [
            asyncio.create_task(self._relay(), name=f"federation-relay:{self.node}"),
            asyncio.create_task(self._sessions(), name=f"federation-session:{self.node}"),
            asyncio.create_task(self.rollups.run(), name=f"federation-rollups:{self.node}"),
        ]

    async def stop(self) -> None:
        if self._on_published in self.daemon.subscribers:
            self.daemon.subscribers.remove(self._on_published)
        client, session = self._client, self._main[1] if self._main else None
        if client is not None and self.state == "online":
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT_S):  # a clean stop says so (the will is for a crash)
                    await client.publish(self._topic(MessageType.NDEATH), self._death(), qos=1, timeout=mqtt.ACK_TIMEOUT_S)
        for task in [*self._tasks, *([session] if session else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, *([session] if session else []), return_exceptions=True)
        with contextlib.suppress(TimeoutError, StoreError):
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await self._store_queued()  # what happened until the stop stays in the outbox
        for task in self._main:
            task.cancel()
        await asyncio.gather(*self._main, return_exceptions=True)

    def observe(self, event: EngineEvent) -> None:
        if isinstance(event, ReadingEvent):
            due = time.monotonic() - self._reading_sent.get(event.controller_id, 0.0) >= READING_INTERVAL_S
            if event.changed or due:
                self._mark(event.controller_id)
        elif isinstance(event, LinkEvent):
            self._mark(event.controller_id)
        elif isinstance(event, ConvergedEvent):
            self._mark(event.outcome.controller_id)

    def command_done(self, report: CommandReport) -> None:
        self._dirty.update(report.outcome.controllers)
        if report.source == "reload":  # the inventory may have changed: say it all again
            self._rebirth = True
        self._wake.set()

    def status(self) -> dict[str, Any]:
        return {
            "role": "district",
            "node": self.node,
            "state": self.state,
            "broker": f"{self.config.broker.host}:{self.config.broker.port}",
            "sessions": self.sessions,
            "births": self.births,
            "bd_seq": self._bd_seq,
            "outbox_sent_up_to": self._cursor,
            "outbox_acknowledged": self._acked,
            "outbox_queued": len(self._queue),
            "last_error": self.last_error,
        }

    def _mark(self, controller_id: str) -> None:
        self._dirty.add(controller_id)
        self._wake.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- events into the outbox --------------------------------------------------------------

    def _on_published(self, event: Published) -> None:
        kind = FORWARDED.get(event.message.get("type", ""))
        if kind is not None:
            self._queue.append((now_ms(), kind.kind, kind.controller(event.message), kind.body(event)))
            self._queue_ready.set()

    async def _relay(self) -> None:
        failing = False
        while True:
            await self._queue_ready.wait()
            self._queue_ready.clear()
            try:
                await self._store_queued()
            except StoreError as exc:  # kept in memory, tried again: nothing said is lost
                if not failing:
                    log.error("district %s: events for the city cannot be kept in the store (%s); retrying", self.node, exc)
                failing = True
                self._queue_ready.set()
                await asyncio.sleep(1.0)
                continue
            failing = False

    async def _store_queued(self) -> None:
        while self._queue:
            batch = [self._queue[i] for i in range(min(RELAY_BATCH, len(self._queue)))]
            await self.records.outbox_add(batch)
            for _ in batch:
                self._queue.popleft()
            self._outbox_more = True
            self._wake.set()

    def _outbox_added(self) -> None:
        self._outbox_more = True
        self._wake.set()

    async def _answer(self, outcome: Outcome) -> None:
        """Into the inbox and the outbox together; when the store cannot keep it, straight to the
        city (once, not kept: the city waits for it, and a district that cannot write has nothing
        else to say)."""
        body = outcome.answer
        try:
            await self.records.answer(
                body["request_id"], outcome.status, outcome.layers, (now_ms(), ANSWER, None, answer_text(body))
            )
        except StoreError as exc:
            log.error("district %s: the answer to request %s cannot be kept (%s); sent as it is", self.node, body["request_id"], exc)
            self._direct.append(body)
        else:
            self._outbox_more = True
        self._wake.set()

    # -- sessions ----------------------------------------------------------------------------

    async def _sessions(self) -> None:
        backoff = mqtt.reconnect_policy(self.config)
        failing = False
        while True:
            self.state = "connecting"
            online_before = self.births
            try:
                await self._session()
            except HostOffline:
                log.info("district %s: the city (%s) went offline; waiting for it", self.node, self.config.host)
                backoff.reset()
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc)
                if not failing:
                    log.warning("district %s: broker %s:%d unreachable (%s); the district runs on and keeps its events",
                                self.node, self.config.broker.host, self.config.broker.port, exc)
                failing = True
            if self.births > online_before:
                backoff.reset()
            self._client = None
            await asyncio.sleep(backoff.next_delay())

    async def _session(self) -> None:
        self._bd_seq = await self._birth_sequence()
        will = aiomqtt.Will(self._topic(MessageType.NDEATH), self._death(), qos=1, retain=False)
        identifier = f"{self.config.group}.{self.node}"
        async with mqtt.client(self.config, identifier, will, self.password) as client:
            self._client = client
            self.sessions += 1
            self.state = "waiting for the city"
            state = state_topic(self.config.host)
            await client.subscribe(
                [(self._topic(MessageType.NCMD), 1), (f"{self._topic(MessageType.DCMD, '+')}", 1), (state, 1)],
                timeout=mqtt.ACK_TIMEOUT_S,
            )
            publisher: asyncio.Task[None] | None = None
            try:
                async for message in client.messages:
                    topic = str(message.topic)
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    if topic == state:
                        publisher = await self._host_state(client, payload, publisher)
                    elif topic == self._topic(MessageType.NCMD):
                        self._on_command(payload)
            finally:
                if publisher is not None:
                    publisher.cancel()
                    await asyncio.gather(publisher, return_exceptions=True)
                if self.state == "online":
                    log.info("district %s: session with the broker ended", self.node)

    async def _host_state(
        self, client: aiomqtt.Client, payload: bytes, publisher: asyncio.Task[None] | None
    ) -> asyncio.Task[None] | None:
        try:
            online, timestamp = parse_state(payload)
        except SparkplugError as exc:
            log.warning("district %s: %s", self.node, exc)
            return publisher
        if timestamp < self._host_timestamp:
            return publisher  # an older STATE than one already seen
        self._host_timestamp = timestamp
        if online and publisher is None:
            return asyncio.create_task(self._publisher(client), name=f"federation-publisher:{self.node}")
        if not online and publisher is not None:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
            with contextlib.suppress(aiomqtt.MqttError):  # (the broker may be going down too: it sent the host's will)
                await client.publish(self._topic(MessageType.NDEATH), self._death(), qos=1, timeout=mqtt.ACK_TIMEOUT_S)
            raise HostOffline()
        return publisher

    async def _birth_sequence(self) -> int:
        try:
            return await self.records.next_birth_sequence()
        except StoreError:
            return (self._bd_seq + 1) % 256

    def _death(self) -> bytes:
        return encode(Payload(now_ms(), (Metric(vocabulary.BD_SEQ, DataType.Int64, self._bd_seq),)))

    # -- what the node publishes, in order ---------------------------------------------------

    async def _publisher(self, client: aiomqtt.Client) -> None:
        seq = Sequence256()
        await self._births(client, seq)
        while True:
            self._wake.clear()
            if self._rebirth:
                await self._births(client, seq)
            await self._send_outbox(client, seq)
            await self._send_direct(client, seq)
            await self._send_state(client, seq)
            await self._send_overrides(client, seq)
            if self._outbox_more or self._rebirth or (self._dirty and not self._state_held()):
                continue
            with contextlib.suppress(TimeoutError):  # (state held for a command: looked at again soon)
                async with asyncio.timeout(HELD_WAKE_S if self._dirty else IDLE_WAKE_S):
                    await self._wake.wait()

    async def _births(self, client: aiomqtt.Client, seq: Sequence256) -> None:
        self._rebirth = False
        self._dirty.clear()
        at = now_ms()
        overrides = overrides_text(self.daemon, self._layer_requests)
        node_metrics = (
            Metric(vocabulary.BD_SEQ, DataType.Int64, self._bd_seq),
            Metric(vocabulary.REBIRTH, DataType.Boolean, False),
            Metric(vocabulary.INVENTORY, DataType.String, inventory_text(self.daemon)),
            Metric(vocabulary.OVERRIDES, DataType.String, overrides),
            Metric(vocabulary.ACKNOWLEDGED, DataType.UInt64, self._acked),
        )
        await client.publish(self._topic(MessageType.NBIRTH), encode(Payload(at, node_metrics, seq.birth())))
        self._overrides_sent = overrides
        now = time.monotonic()
        for cid, rt in list(self.daemon.engine.runtimes.items()):
            facts = controller_facts(rt)
            metrics = (Metric(vocabulary.CONFIG, DataType.String, self._configs.text(rt)), *facts.metrics())
            await client.publish(self._topic(MessageType.DBIRTH, cid), encode(Payload(at, metrics, seq.next())))
            self._published[cid] = facts
            self._reading_sent[cid] = now
        self._cursor = self._acked  # everything not acknowledged goes again, after the births
        self._unacked_since = None
        self._outbox_more = True
        self.births += 1
        self.state = "online"
        log.info("district %s: born (bdSeq %d, %d controllers)", self.node, self._bd_seq, len(self._published))

    async def _send_outbox(self, client: aiomqtt.Client, seq: Sequence256) -> None:
        if self._unacked_since is not None and time.monotonic() - self._unacked_since > self.config.resend_after_s:
            log.info("district %s: events %d-%d not acknowledged in %.0f s; sending them again",
                     self.node, self._acked + 1, self._cursor, self.config.resend_after_s)
            self._cursor, self._unacked_since, self._outbox_more = self._acked, None, True
        if not self._outbox_more:
            return
        self._outbox_more = False  # (before the read: an event kept while it runs sets it again)
        events = await self.records.outbox_after(self._cursor, OUTBOX_PAGE)
        if len(events) == OUTBOX_PAGE:
            self._outbox_more = True
        topic = self._topic(MessageType.NDATA)
        historical_before = now_ms() - 5000
        for event in events:
            late = event.at < historical_before
            metrics = (
                Metric(vocabulary.OUTBOX_ID, DataType.UInt64, event.id, event.at, late),
                Metric(vocabulary.EVENT + event.kind, DataType.String, event.body, event.at, late),
            )
            await client.publish(topic, encode(Payload(now_ms(), metrics, seq.next())))
            if event.kind == ANSWER:
                log.debug("district %s: answer (event %d) published", self.node, event.id)
            self._cursor = event.id
            if self._unacked_since is None:
                self._unacked_since = time.monotonic()

    def _state_held(self) -> bool:
        return bool(self._answering) or self.daemon.command_lock.locked()

    async def _send_direct(self, client: aiomqtt.Client, seq: Sequence256) -> None:
        while self._direct:
            body = self._direct.pop(0)
            metric = Metric(vocabulary.EVENT + ANSWER, DataType.String, answer_text(body))
            await client.publish(self._topic(MessageType.NDATA), encode(Payload(now_ms(), (metric,), seq.next())))

    async def _send_state(self, client: aiomqtt.Client, seq: Sequence256) -> None:
        """The state of controllers that changed. Not while the daemon is switching, nor before
        the answer to a request of the city is out: the answer (every controller's result) goes
        first, the burst of state reports after it, coalesced."""
        if not self._dirty or self._state_held():
            return
        dirty, self._dirty = self._dirty, set()
        now = time.monotonic()
        runtimes = self.daemon.engine.runtimes
        for cid in dirty:
            rt = runtimes.get(cid)
            before = self._published.get(cid)
            if rt is None or before is None:
                self._rebirth = True  # a controller the city was not told of (a reload)
                continue
            facts = controller_facts(rt)
            with_reading = now - self._reading_sent.get(cid, 0.0) >= READING_INTERVAL_S or facts.faults != before.faults
            metrics = facts.metrics(before, with_reading=with_reading)
            if with_reading:
                self._reading_sent[cid] = now
            else:
                facts = facts.keeping_reading_of(before)
            self._published[cid] = facts
            if metrics:
                payload = encode(Payload(now_ms(), tuple(metrics), seq.next()))
                await client.publish(self._topic(MessageType.DDATA, cid), payload)

    async def _send_overrides(self, client: aiomqtt.Client, seq: Sequence256) -> None:
        text = overrides_text(self.daemon, self._layer_requests)
        if text == self._overrides_sent:
            return
        metrics = (Metric(vocabulary.OVERRIDES, DataType.String, text),)
        await client.publish(self._topic(MessageType.NDATA), encode(Payload(now_ms(), metrics, seq.next())))
        self._overrides_sent = text

    # -- what the city asks ------------------------------------------------------------------

    def _on_command(self, payload: bytes) -> None:
        try:
            metrics = decode(payload).metrics
        except SparkplugError as exc:
            log.warning("district %s: a command that is not Sparkplug B was ignored: %s", self.node, exc)
            return
        for metric in metrics:
            if metric.name == vocabulary.REBIRTH and metric.value is True:
                log.info("district %s: the city asked for a rebirth", self.node)
                self._rebirth = True
                self._wake.set()
            elif metric.name == vocabulary.ACKNOWLEDGED and isinstance(metric.value, int):
                self._spawn(self._acknowledge(metric.value), "federation-ack")
            elif metric.name == vocabulary.REQUEST and isinstance(metric.value, str):
                try:
                    request = parse_request(metric.value)
                except RequestError as exc:
                    log.warning("district %s: %s", self.node, exc)
                    continue
                self._spawn(self._request(request), f"federation-request:{request.request_id}")

    async def _acknowledge(self, up_to: int) -> None:
        if up_to <= self._acked:
            return
        self._acked = up_to
        self._unacked_since = None if up_to >= self._cursor else time.monotonic()
        with contextlib.suppress(StoreError):  # (lost: the city acknowledges again, and drops copies)
            await self.records.acknowledge(up_to)

    async def _request(self, request: Any) -> None:
        log.info("district %s: request %s from the city: %s", self.node, request.request_id, request.action)
        self._answering += 1
        started = time.perf_counter()
        try:
            outcome = await self.runner.run(request)
            if outcome is None:
                return
            ran = time.perf_counter() - started
            for layer in outcome.layers:
                self._layer_requests[layer] = request.request_id
            await self._answer(outcome)
            log.debug("district %s: request %s carried out in %.3f s, its answer kept %.3f s later",
                     self.node, request.request_id, ran, time.perf_counter() - started - ran)
        finally:
            self._answering -= 1
            self._wake.set()
