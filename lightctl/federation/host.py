"""The city daemon as the Sparkplug B primary host application.

* **Session**: connect with its STATE ``online: false`` as will (retained, QoS 1), subscribe to
  the group's topics, publish STATE ``online: true`` (retained) with the same timestamp: the
  districts publish nothing until they see it. On a lost connection every district is offline
  (the city cannot know) until it is born again; reconnect with capped backoff.
* **Sequence**: every message of a district after its NBIRTH must carry the next sequence number;
  a message out of turn (one was lost, as across a broker restart) or from a district the city has
  no birth of makes the city ask it for a rebirth (NCMD ``Node Control/Rebirth``) and drop what it
  sends until then. An NDEATH whose bdSeq is not its last birth's is an older session's: ignored.
* **Events** of a district's outbox are recorded once each, in the district's order, before they
  are acted on (:meth:`lightctl.store.federation.FederationRecords.receive`), then acknowledged.
* **Requests** (the one switch) go to a district as NCMD ``Command/Request``; its answer comes
  back as an event. A district that is offline is answered for at once (:class:`DistrictOffline`),
  and what it was asked is delivered when it is born again (its deliveries).

Messages are taken from the broker in order by one task; births and state go into the
:class:`~lightctl.federation.mirror.Mirror` there and then, events to one task per district.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import aiomqtt

from lightctl.federation import mqtt, vocabulary
from lightctl.federation.events import ANSWER
from lightctl.federation.mirror import DistrictView, Mirror
from lightctl.federation.requests import Request
from lightctl.federation.schema import DataType
from lightctl.federation.sparkplug import (
    NAMESPACE,
    MessageType,
    Metric,
    Payload,
    SparkplugError,
    Topic,
    decode,
    encode,
    follows,
    state_payload,
    state_topic,
)
from lightctl.model.federation import FederationConfig
from lightctl.model.times import now_ms
from lightctl.store import StoreError
from lightctl.store.federation import FederationRecords, OutboxEvent, Taker

log = logging.getLogger("lightctl.federation")

ACK_DELAY_S = 0.05
"""Events are acknowledged this long after they are recorded, together."""
REBIRTH_REPEAT_S = 5.0
"""A rebirth asked for and not given is asked again after this."""
STOP_TIMEOUT_S = 5.0


class DistrictOffline(Exception):
    """The district is offline (or went offline before answering)."""


class HostListener(Protocol):
    """What the city daemon does with what the host learns (called on the event loop)."""

    def district_changed(self, view: DistrictView, what: str) -> None:
        """``born``, ``offline``, ``state`` (``what`` says which)."""
        ...

    def controller_changed(self, district: str, controller: str) -> None: ...

    def event_received(self, district: str, event: OutboxEvent, body: dict[str, Any]) -> None:
        """An event of a district's outbox, recorded (answers to requests are the host's)."""
        ...

    def late_answer(self, district: str, body: dict[str, Any]) -> None:
        """An answer nobody waits for any more (a delivery, or after the wait ended)."""
        ...


@dataclass(eq=False)
class _Inbox:
    """A district's events waiting to be recorded, in order."""

    queue: asyncio.Queue[tuple[str, Any]]
    task: asyncio.Task[None]


class PrimaryHost:
    def __init__(
        self, config: FederationConfig, mirror: Mirror, records: FederationRecords, listener: HostListener,
        *, password: str | None = None,
    ) -> None:
        self.config = config
        self.mirror = mirror
        self.records = records
        self.listener = listener
        self.password = password
        self.take: Taker | None = None
        """What the city writes of a district's event with its record (its reports' copies)."""
        self.state = "starting"
        self.sessions = 0
        self.last_error: str | None = None
        self.dropped = 0
        """Messages dropped while a district was waiting for its rebirth."""
        self.copies = 0
        """Events received again (sent again after a lost acknowledgement): dropped, already recorded."""
        self.early = 0
        """Events received after a gap in a district's outbox ids: not recorded, the district sends them again."""
        self._client: aiomqtt.Client | None = None
        self._waiting: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}
        self._inboxes: dict[str, _Inbox] = {}
        self._rebirth_asked: dict[str, float] = {}
        self._ack_due: dict[str, int] = {}
        self._ack_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[None] | None = None
        self._prefix = f"{NAMESPACE}/{config.group}/"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._main = asyncio.create_task(self._sessions(), name="federation-host")

    async def stop(self) -> None:
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT_S):  # (the will is for a crash)
                    await client.publish(state_topic(self.config.host), state_payload(False, now_ms()), qos=1, retain=True,
                                         timeout=mqtt.ACK_TIMEOUT_S)
        tasks = [t for t in (self._main, self._ack_task) if t is not None]
        tasks += [inbox.task for inbox in self._inboxes.values()] + list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def status(self) -> dict[str, Any]:
        return {
            "role": "city",
            "host": self.config.host,
            "state": self.state,
            "broker": f"{self.config.broker.host}:{self.config.broker.port}",
            "sessions": self.sessions,
            "messages_dropped_waiting_for_rebirth": self.dropped,
            "events_received_again": self.copies,
            "events_received_after_a_gap": self.early,
            "requests_waiting": len(self._waiting),
            "last_error": self.last_error,
        }

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the session -------------------------------------------------------------------------

    async def _sessions(self) -> None:
        backoff = mqtt.reconnect_policy(self.config)
        failing = False
        while True:
            self.state = "connecting"
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc)
                if not failing:
                    log.warning("city: broker %s:%d unreachable (%s)", self.config.broker.host, self.config.broker.port, exc)
                failing = True
            finally:
                self._lost()
            if self.state == "online":
                backoff.reset()
                failing = False
            await asyncio.sleep(backoff.next_delay())

    async def _session(self) -> None:
        timestamp = now_ms()
        topic = state_topic(self.config.host)
        will = aiomqtt.Will(topic, state_payload(False, timestamp), qos=1, retain=True)
        async with mqtt.client(self.config, f"{self.config.group}.{self.config.host}", will, self.password) as client:
            await client.subscribe(f"{self._prefix}#", qos=0, timeout=mqtt.ACK_TIMEOUT_S)
            await client.publish(topic, state_payload(True, timestamp), qos=1, retain=True, timeout=mqtt.ACK_TIMEOUT_S)
            self._client = client
            self.sessions += 1
            self.state = "online"
            log.info("city: primary host %s online (group %s)", self.config.host, self.config.group)
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                try:
                    self._dispatch(str(message.topic), payload)
                except SparkplugError as exc:
                    log.warning("city: %s", exc)

    def _lost(self) -> None:
        if self._client is not None:
            log.warning("city: the connection to the broker was lost; every district is offline until it is born again")
        self._client = None
        self.mirror.host_disconnected()
        for (_, district), future in list(self._waiting.items()):
            if not future.done():
                future.set_exception(DistrictOffline(f"the city lost the broker before district {district} answered"))
        for view in self.mirror.districts.values():
            self.listener.district_changed(view, "offline")

    # -- what comes in -----------------------------------------------------------------------

    def _dispatch(self, topic_text: str, payload: bytes) -> None:
        topic = Topic.parse(topic_text)
        if topic.kind in (MessageType.NCMD, MessageType.DCMD):
            return
        data = decode(payload)
        district = topic.node
        view = self.mirror.district(district)
        if topic.kind is MessageType.NDEATH:
            bd_seq = data.by_name().get(vocabulary.BD_SEQ)
            if self.mirror.node_death(district, bd_seq.value if bd_seq is not None and isinstance(bd_seq.value, int) else None):
                log.info("city: district %s offline (NDEATH)", district)
                self._district_gone(district)
                self.listener.district_changed(view, "offline")
            return
        if topic.kind is MessageType.NBIRTH:
            self._rebirth_asked.pop(district, None)
            self.mirror.node_birth(district, data)
            log.info("city: district %s born (bdSeq %s, %d controllers)", district, view.bd_seq, len(view.expected))
            self._inbox(district).queue.put_nowait(("birth", view.acknowledged))
            self.listener.district_changed(view, "born")
            return
        if view.stale or view.seq is None or data.seq is None or not follows(view.seq, data.seq):
            if not view.stale:
                log.warning("city: district %s: message %s after %s (one was lost); asking for a rebirth", district, data.seq, view.seq)
                view.stale = True
            self.dropped += 1
            self._ask_rebirth(district)
            return
        view.seq = data.seq
        if topic.kind is MessageType.DBIRTH and topic.device is not None:
            self.mirror.device_birth(district, topic.device, data)
            self.listener.controller_changed(district, topic.device)
            if view.complete:
                self.listener.district_changed(view, "complete")
        elif topic.kind is MessageType.DDATA and topic.device is not None:
            if self.mirror.device_data(district, topic.device, data) is not None:
                self.listener.controller_changed(district, topic.device)
        elif topic.kind is MessageType.NDATA:
            self.mirror.node_data(district, data)
            outbox_id, events = vocabulary.events_of(data.metrics)
            if outbox_id is not None and events:
                kind, body = events[0]
                at = next((m.timestamp for m in data.metrics if m.name == vocabulary.OUTBOX_ID and m.timestamp), data.timestamp)
                self._inbox(district).queue.put_nowait(("event", OutboxEvent(outbox_id, at or data.timestamp, kind, None, body)))
            elif events:  # not kept by the district (its store failed): acted on, not recorded
                self._inbox(district).queue.put_nowait(("transient", events))
            else:
                self.listener.district_changed(view, "state")

    def _ask_rebirth(self, district: str) -> None:
        now = time.monotonic()
        if now - self._rebirth_asked.get(district, -REBIRTH_REPEAT_S) < REBIRTH_REPEAT_S:
            return
        self._rebirth_asked[district] = now
        metric = Metric(vocabulary.REBIRTH, DataType.Boolean, True)
        self._spawn(self._command(district, (metric,)), f"federation-rebirth:{district}")

    async def _command(self, district: str, metrics: tuple[Metric, ...]) -> None:
        client = self._client
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(str(Topic(MessageType.NCMD, self.config.group, district)), encode(Payload(now_ms(), metrics)))

    def _district_gone(self, district: str) -> None:
        for (_, where), future in list(self._waiting.items()):
            if where == district and not future.done():
                future.set_exception(DistrictOffline(f"district {district} went offline before answering"))

    # -- a district's events, recorded in order ----------------------------------------------

    def _inbox(self, district: str) -> _Inbox:
        inbox = self._inboxes.get(district)
        if inbox is None:
            queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            task = asyncio.create_task(self._record(district, queue), name=f"federation-inbox:{district}")
            inbox = self._inboxes[district] = _Inbox(queue, task)
        return inbox

    async def _record(self, district: str, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        while True:
            what, item = await queue.get()
            batch = [(what, item)]
            while not queue.empty():
                batch.append(queue.get_nowait())
            events = [e for w, e in batch if w == "event"]
            for w, item in batch:
                if w == "birth":
                    await self._reborn(district, item)
                elif w == "transient":
                    await self._transient(district, item)
            if events:
                await self._take(district, events)

    async def _reborn(self, district: str, acknowledged: int) -> None:
        """After a birth: catch up with the district's acknowledgements, deliver what waits for it."""
        try:
            last = (await self.records.received()).get(district, 0)
            if acknowledged > last:
                log.warning("city: district %s says events up to %d were acknowledged, the city has up to %d: "
                            "the city's records of %d-%d are lost", district, acknowledged, last, last + 1, acknowledged)
                await self.records.receive_from(district, acknowledged)
            self._acknowledge(district, max(acknowledged, last))
            for delivery in await self.records.deliveries(district):
                log.info("city: delivering request %s (%s) to district %s, back online", delivery.request_id, delivery.action, district)
                await self._send(district, json.loads(delivery.body)[district])
        except StoreError as exc:
            log.error("city: district %s reborn, but the city's records failed: %s", district, exc)

    async def _take(self, district: str, events: list[OutboxEvent]) -> None:
        try:
            taken, last = await self.records.receive(district, events, self.take)
        except StoreError as exc:  # not acknowledged: the district sends them again
            log.error("city: events of district %s could not be recorded: %s", district, exc)
            return
        ahead = sum(1 for e in events if e.id > last)
        self.early += ahead
        self.copies += len(events) - len(taken) - ahead
        self._acknowledge(district, last)
        for event in taken:
            try:
                body = json.loads(event.body)
            except ValueError:
                log.warning("city: district %s event %d (%s) is not JSON", district, event.id, event.kind)
                continue
            if event.kind == ANSWER:
                await self._answered(district, body)
            else:
                self.listener.event_received(district, event, body)

    async def _transient(self, district: str, events: list[tuple[str, str]]) -> None:
        for kind, text in events:
            try:
                body = json.loads(text)
            except ValueError:
                continue
            if kind == ANSWER:
                await self._answered(district, body)

    async def _answered(self, district: str, body: dict[str, Any]) -> None:
        request_id = str(body.get("request_id"))
        with contextlib.suppress(StoreError):
            await self.records.answered(request_id, district)
        future = self._waiting.pop((request_id, district), None)
        log.debug("city: answer of district %s to %s recorded", district, request_id)
        if future is not None and not future.done():
            future.set_result(body)
        else:
            self.listener.late_answer(district, body)

    def _acknowledge(self, district: str, up_to: int) -> None:
        if up_to <= 0:
            return
        self._ack_due[district] = max(up_to, self._ack_due.get(district, 0))
        if self._ack_task is None or self._ack_task.done():
            self._ack_task = asyncio.create_task(self._send_acks(), name="federation-acks")

    async def _send_acks(self) -> None:
        await asyncio.sleep(ACK_DELAY_S)
        due, self._ack_due = self._ack_due, {}
        for district, up_to in due.items():
            await self._command(district, (Metric(vocabulary.ACKNOWLEDGED, DataType.UInt64, up_to),))

    # -- requests ----------------------------------------------------------------------------

    async def _send(self, district: str, request_text: str) -> None:
        client = self._client
        if client is None:
            raise DistrictOffline("the city is not connected to the broker")
        metric = Metric(vocabulary.REQUEST, DataType.String, request_text)
        try:
            await client.publish(str(Topic(MessageType.NCMD, self.config.group, district)), encode(Payload(now_ms(), (metric,))))
        except aiomqtt.MqttError as exc:
            raise DistrictOffline(f"the request could not be sent: {exc}") from exc

    def online(self, district: str) -> bool:
        view = self.mirror.districts.get(district)
        return self._client is not None and view is not None and view.online and not view.stale

    async def request(self, district: str, request: Request, timeout_s: float) -> dict[str, Any]:
        """Send a request to an online district and wait for its answer; raises
        :class:`DistrictOffline` at once when it is (or goes) offline, TimeoutError after
        ``timeout_s`` (its answer, if it comes later, is a late answer)."""
        if not self.online(district):
            raise DistrictOffline(f"district {district} is offline")
        key = (request.request_id, district)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        try:
            await self._send(district, request.text())
            async with asyncio.timeout(timeout_s):
                return await future
        finally:
            if self._waiting.get(key) is future:
                del self._waiting[key]
            if future.done() and not future.cancelled():
                future.exception()  # the broker lost while sending: the caller has that error, not this one too

