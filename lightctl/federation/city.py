"""The city daemon (``federation.role: city``): no field controllers of its own. Its inventory is
the union of the districts' births (:class:`~lightctl.federation.mirror.Mirror`), its records
(commands, every district's events) are in its store (PostgreSQL at city scale), and the one
switch on any selector is sent to every district it reaches at once, each district answering
with every controller's result (:mod:`lightctl.federation.fanout`).

A district that is offline is reported so at once, never waited on, and the command is delivered
when it is born again; its own reconciler then brings its field there, and its answer amends the
city's record of the command. Records stay with their owner: overrides, curtailments, faults and
work orders are the district's; the city asks, the district carries out and reports.

It serves the same API as a district daemon (status, scenes and the one switch, overrides,
curtailments, shows, commands, the WebSocket), from the districts' data (web.city).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lightctl.federation import fanout
from lightctl.federation.cases import CaseBook, CaseRequest, city_id
from lightctl.federation.host import DistrictOffline, PrimaryHost
from lightctl.federation.mirror import DistrictView, Mirror
from lightctl.federation.requests import Action, Request
from lightctl.federation.rollups import RollupTaker
from lightctl.inventory.index import Inventory
from lightctl.inventory.selectors import SelectorError
from lightctl.model.config import Config
from lightctl.model.desired import ChannelKey, Released
from lightctl.model.energy import DimmingCurve
from lightctl.model.times import iso_local
from lightctl.reconcile.controller import matches
from lightctl.reconcile.outcomes import CommandOutcome, ControllerOutcome, Status
from lightctl.runtime.commands import CommandRefused, CommandReport
from lightctl.runtime.events import Published
from lightctl.services.reports.lighting_on import ControllerNow, InspectionSettings
from lightctl.services.reports.live import live_metrics
from lightctl.services.reports.service import Reports
from lightctl.store import ResultRow, Store
from lightctl.store.federation import OutboxEvent
from scenes.model import SceneBook

log = logging.getLogger("lightctl.federation")

ANSWER_MARGIN_S = 5.0
CASE_KINDS = ("fault", "workorder")
SHOW = "show"


class ShowNotRunning(CommandRefused):
    """A stop with no show running anywhere."""


@dataclass(frozen=True, slots=True)
class Part:
    """What a command asks of one district: its selector there, and the channels it reaches."""

    target: str
    keys: frozenset[ChannelKey]


@dataclass(frozen=True, slots=True)
class FanOut:
    report: CommandReport
    answers: Mapping[str, dict[str, Any]]
    """Each district's answer (those that answered)."""


class CityDaemon:
    def __init__(
        self,
        config: Config,
        *,
        database: str | Path | None = None,
        store: Store | None = None,
        password: str | None = None,
        config_path: str | Path | None = None,
    ) -> None:
        federation = config.federation
        if federation is None or federation.role != "city":
            raise ValueError("a city daemon needs federation.role: city in its config")
        self.config = config
        self.config_path = config_path
        self.federation = federation
        self.tz = ZoneInfo(config.installation.timezone)
        self.store = store or Store(database if database is not None else config.daemon.database, retention=config.reports.retention)
        self.mirror = Mirror(federation.districts, config)
        self.host = PrimaryHost(federation, self.mirror, self.store.federation, self, password=password)
        self.host.take = RollupTaker(config.installation.timezone)
        self.subscribers: list[Callable[[Published], None]] = []
        self.command_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        self._targets: dict[int, str] = {}
        """The selector of each city command whose layers the districts hold."""
        self.cases = CaseBook()
        """The districts' faults and work orders as their events last showed them."""
        self._reports: Reports | None = None
        self.show_runs: dict[str, dict[str, Any]] = {}
        """Each district's running (or last) light show, as its ``show`` events said."""

    async def start(self) -> None:
        await asyncio.to_thread(self.store.open)
        recorded = [(district, kind, json.loads(body)) for district, kind, body in await self.store.federation.bodies((*CASE_KINDS, SHOW))]
        self.cases.replay(r for r in recorded if r[1] in CASE_KINDS)
        for district, _, body in (r for r in recorded if r[1] == SHOW):
            self.show_runs[district] = {**body, "district": district}
        await self.host.start()

    async def stop(self) -> None:
        await self.host.stop()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.to_thread(self.store.close)

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        async def run() -> None:
            await coro

        task = asyncio.create_task(run(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def publish(self, message: dict[str, Any]) -> None:
        """An event for the WebSocket's subscribers, serialized once."""
        if not self.subscribers:
            return
        event = Published(message)
        for subscriber in list(self.subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("a subscriber failed")

    # -- what the host learns (lightctl.federation.host.HostListener) ------------------------

    def district_changed(self, view: DistrictView, what: str) -> None:
        self.publish({"type": "district", "district": view.id, "event": what, "online": view.online, "complete": view.complete})

    def controller_changed(self, district: str, controller: str) -> None:
        if not self.subscribers:
            return
        view = self.mirror.controllers.get(controller)
        if view is None:
            return
        self.publish({
            "type": "state", "district": district, "controller": controller, "link": view.link,
            "channels": {ch: {"on": c.on, "level": c.level, "released": c.released, "held_by": c.held_by}
                         for ch, c in view.channels.items()},
        })

    def event_received(self, district: str, event: OutboxEvent, body: dict[str, Any]) -> None:
        if event.kind == SHOW:
            self.show_runs[district] = {**body, "district": district}
        if event.kind in CASE_KINDS:
            view = self.cases.take(district, event.kind, body)
            if view is not None:  # the record as the city shows it (its id unique among districts)
                body = {**body, ("fault" if event.kind == "fault" else "workorder"): view}
        self.publish({**body, "type": event.kind, "district": district, "event_id": event.id})

    def late_answer(self, district: str, body: dict[str, Any]) -> None:
        self.spawn(self._amend(district, body), f"federation-amend:{district}")

    async def _amend(self, district: str, body: dict[str, Any]) -> None:
        request_id = str(body.get("request_id", ""))
        head = request_id.split("-", 1)[0]
        if not head.isdigit():
            return
        command_id = int(head)
        outcomes = fanout.outcomes_of_report(body.get("report"))
        if body.get("status") != "done":
            log.info("city: district %s answered request %s late: %s %s", district, request_id, body.get("status"), body.get("error"))
            return
        await self.store.commands.amend(command_id, _rows(outcomes.values()), detail=f"district {district} answered late")
        log.info("city: command #%d: district %s carried it out late (%d controllers)", command_id, district, len(outcomes))
        self.publish({"type": "command_amended", "command_id": command_id, "district": district,
                      "controllers": {cid: o.as_json() for cid, o in sorted(outcomes.items())}})

    # -- selection ---------------------------------------------------------------------------

    def inventory(self) -> Inventory:
        return self.mirror.inventory()

    def select(self, target: str) -> frozenset[ChannelKey]:
        """The channels a selector names among every district's; refused like a district's."""
        try:
            selected = self.inventory().select(target)
        except SelectorError as exc:
            raise CommandRefused(str(exc)) from None
        if not selected:
            raise CommandRefused(f"selector {target!r} matches no channel of any district: nothing would be switched")
        return selected

    def parts(self, target: str, selected: Iterable[ChannelKey] | None = None) -> dict[str, Part]:
        chosen = frozenset(selected) if selected is not None else self.select(target)
        inventories = {d: self.mirror.district_inventory(d) for d, v in self.mirror.districts.items() if v.district is not None}
        targets = fanout.district_targets(target, chosen, inventories)
        return {d: Part(t, chosen & inventories[d].all_keys) for d, t in targets.items()}

    # -- the one switch and the other commands -----------------------------------------------

    async def apply_scene(self, scene: str, target: str = "*", *, user: str, until: str | None = "next") -> CommandReport:
        """A scene on a selector in every district it reaches, now: each district holds it as
        an override until ``until`` (``next``: its own next schedule transition)."""
        parts = self.parts(target)
        knowing = [d for d in parts if scene in self.mirror.districts[d].scene_ids()]
        if not knowing:
            known = sorted({s for d in parts for s in self.mirror.districts[d].scene_ids()})
            raise CommandRefused(f"unknown scene {scene!r} in the districts {target!r} reaches (known: {', '.join(known)})")
        return (await self._fan_out("scene", target, parts, user=user, scene=scene, body={"scene": scene, "until": until})).report

    async def curtail(self, target: str, level: float, *, user: str, until: str | None = None) -> dict[str, Any]:
        if not 0 <= level < 100:
            raise CommandRefused(f"a curtailment level must be 0 (off) to 99 percent, got {level:g}")
        result = await self._fan_out(
            "curtail", target, self.parts(target), user=user, scene=f"curtail to {level:g}%", body={"level": level, "until": until}
        )
        shed = {"channels": 0, "luminaires": 0, "kw": 0.0}
        for answer in result.answers.values():
            for name in shed:
                shed[name] += answer.get("shed", {}).get(name, 0)
        shed["kw"] = round(shed["kw"], 3)
        return {"curtailment_id": result.report.command_id, "shed": shed, "command": result.report.as_json()}

    async def restore(self, command_ids: list[int] | None, *, user: str) -> CommandReport | None:
        """End curtailments: those the given city commands set (in every district holding them),
        or with None every curtailment of every district."""
        if command_ids is None:
            districts = [d for d, v in self.mirror.districts.items() if any(o["kind"] == "curtail" for o in v.overrides)]
            if not districts:
                raise CommandRefused("no curtailment is active in any district")
            return await self._layers_command("restore", districts, None, user=user, what="every curtailment")
        held = self._held_layers("curtail", command_ids)
        return await self._layers_command("restore", sorted(held), sorted({r for rs in held.values() for r in rs}), user=user,
                                          what=", ".join(f"#{i}" for i in command_ids))

    async def clear_override(self, command_id: int, *, user: str) -> CommandReport | None:
        held = self._held_layers("override", [command_id])
        return await self._layers_command("clear", sorted(held), sorted({r for rs in held.values() for r in rs}), user=user,
                                          what=f"#{command_id}")

    def _held_layers(self, kind: str, command_ids: list[int]) -> dict[str, set[str]]:
        """The districts holding layers of ``kind`` set by these city commands, with the requests."""
        held: dict[str, set[str]] = {}
        found: set[int] = set()
        for district, view in self.mirror.districts.items():
            for layer in view.overrides:
                command = _command_of(layer.get("request"))
                if layer.get("kind") == kind and command in command_ids:
                    held.setdefault(district, set()).add(str(layer["request"]))
                    found.add(command)
        missing = sorted(set(command_ids) - found)
        if missing:
            noun = "curtailment" if kind == "curtail" else "override"
            raise CommandRefused(f"no active city {noun} {', '.join(f'#{i}' for i in missing)} in any district")
        return held

    async def _layers_command(
        self, action: Action, districts: list[str], requests: list[str] | None, *, user: str, what: str
    ) -> CommandReport:
        parts = {d: Part("*", frozenset()) for d in districts}
        return (await self._fan_out(action, what, parts, user=user, scene=None, body={"requests": requests})).report

    async def start_show(self, show: str, *, user: str, anyway: bool = False, clear_overrides: bool = False) -> dict[str, Any]:
        districts = [d for d, v in self.mirror.districts.items() if show in v.show_ids()]
        if not districts:
            raise CommandRefused(f"no district has a show {show!r}")
        parts = {d: Part("*", frozenset()) for d in districts}
        result = await self._fan_out("show", show, parts, user=user, scene=None,
                                     body={"show": show, "anyway": anyway, "clear_overrides": clear_overrides})
        return {"show": show, "command_id": result.report.command_id,
                "districts": {d: result.answers.get(d, {"status": "offline"}) for d in districts}}

    def reports(self) -> Reports:
        """The reports over every district's roll-ups and inspections (copied into the city's
        records as they arrive: lightctl.federation.rollups), for the inventory of their births;
        the work-order figures over the orders the districts' events showed (CaseBook). No
        schedule: forecasts are each district's, over its own schedule."""
        inventory = self.inventory()
        if self._reports is None or self._reports.inventory is not inventory:
            self._reports = Reports(self.config, inventory, self.store, SceneBook({}, inventory), None, cases=self.cases)
        return self._reports

    def show_status(self) -> dict[str, Any]:
        """The show running in any district (or the last one to change), and each district's."""
        runs = sorted(self.show_runs.values(), key=lambda r: (r.get("status") == "running", r.get("started_at") or 0))
        return {"run": runs[-1] if runs else None, "districts": dict(sorted(self.show_runs.items()))}

    async def stop_show(self, *, user: str) -> dict[str, Any]:
        """Stop the show in every district running one."""
        districts = [d for d, run in self.show_runs.items() if run.get("status") == "running"]
        if not districts:
            raise ShowNotRunning("no show is running in any district")
        result = await self._fan_out("stop_show", "*", {d: Part("*", frozenset()) for d in districts}, user=user, scene=None, body={})
        return {"command_id": result.report.command_id,
                "districts": {d: result.answers.get(d, {"status": "offline"}) for d in sorted(districts)}}

    async def _fan_out(
        self, action: Action, target: str, parts: Mapping[str, Part], *, user: str, scene: str | None, body: dict[str, Any]
    ) -> FanOut:
        async with self.command_lock:
            return await self._send_to_districts(action, target, parts, user=user, scene=scene, body=body)

    async def _send_to_districts(
        self, action: Action, target: str, parts: Mapping[str, Part], *, user: str, scene: str | None, body: dict[str, Any]
    ) -> FanOut:
        started = time.perf_counter()
        command_id = await self.store.commands.started(user=user, source="operator", action=action, scene=scene, target=target)
        self._targets[command_id] = target
        request_id = f"{command_id}-{secrets.token_hex(4)}"
        requests = {
            d: Request(request_id=request_id, action=action, user=user, target=part.target if part.keys else None, **body)
            for d, part in parts.items()
        }
        offline = [d for d in parts if not self.host.online(d)]
        await self.store.federation.request_sent(
            request_id, command_id, action, json.dumps({d: r.text() for d, r in requests.items()}, ensure_ascii=False),
            layer_id=None, held_for=offline,
        )
        outcomes: dict[str, ControllerOutcome] = {}
        for district in offline:
            outcomes |= fanout.unreached(fanout.controllers_of(parts[district].keys), Status.FAILED, fanout.OFFLINE,
                                         f"{self._offline_text(district)}; the command is delivered when it returns")
        timeout = self.federation.command_timeout_s
        answers: dict[str, dict[str, Any]] = {}

        async def ask(district: str) -> None:
            controllers = fanout.controllers_of(parts[district].keys)
            try:
                answer = await self.host.request(district, requests[district], timeout)
            except DistrictOffline as exc:
                await self.store.federation.held(request_id, district)
                outcomes.update(fanout.unreached(controllers, Status.FAILED, fanout.OFFLINE,
                                                 f"{exc}; the command is delivered when it returns"))
                return
            except TimeoutError:
                outcomes.update(fanout.unreached(controllers, Status.UNCONFIRMED, fanout.NO_ANSWER,
                                                 f"no answer from district {district} in {timeout:g} s; its answer amends this record"))
                return
            answers[district] = answer
            if answer.get("status") == "done":
                outcomes.update(fanout.outcomes_of_report(answer.get("report")))
            else:
                kind = fanout.REFUSED if answer.get("status") == "refused" else "failed"
                outcomes.update(fanout.unreached(controllers, Status.FAILED, kind,
                                                 f"district {district}: {answer.get('error', 'refused')}"))

        await asyncio.gather(*(ask(d) for d in parts if d not in offline))
        outcome = CommandOutcome(time.perf_counter() - started, outcomes)
        detail = "; ".join(f"{d}: {answers[d].get('status') if d in answers else 'offline or silent'}" for d in sorted(parts))
        await self.store.commands.finished(command_id, outcome.elapsed_s, _rows(outcome.controllers.values()), detail)
        report = CommandReport(command_id, scene or action, target, outcome, "operator", action, user)
        log.info(
            "city command #%d %s on %s by %s: %d district(s), %d confirmed, %d unconfirmed, %d failed in %.3f s",
            command_id, scene or action, target, user, len(parts), outcome.count(Status.CONFIRMED),
            outcome.count(Status.UNCONFIRMED), outcome.count(Status.FAILED), outcome.elapsed_s,
        )
        self.publish({"type": "command", **report.as_json()})
        return FanOut(report, answers)

    async def case(self, district: str, case: CaseRequest, *, user: str) -> dict[str, Any]:
        """An action on one of ``district``'s faults or work orders (the ids in ``case`` are the
        district's own), carried out by the district that owns it; the record's new view."""
        if district not in self.mirror.districts:
            raise CommandRefused(f"no district {district!r} in this city")
        record_id = ", ".join(city_id(district, f) for f in case.faults) if case.op == "file" else city_id(district, case.id)
        request = Request(request_id=f"case-{secrets.token_hex(6)}", action="case", user=user, case=case)
        try:
            answer = await self.host.request(district, request, self.federation.command_timeout_s)
        except DistrictOffline:
            raise CommandRefused(
                f"{self._offline_text(district)}: it owns {record_id or 'the work order'}; nothing was changed, try again when it returns"
            ) from None
        except TimeoutError:
            raise CommandRefused(
                f"district {district} did not answer in {self.federation.command_timeout_s:g} s; "
                f"{record_id or 'the work order'} shows the outcome when the district reports it"
            ) from None
        if answer.get("status") != "done" or not isinstance(answer.get("view"), dict):
            raise CommandRefused(f"district {district}: {answer.get('error', 'refused')}")
        kind = "workorder" if case.op in ("file", "step") else "fault"
        view = self.cases.take(district, kind, {kind: answer["view"]})
        assert view is not None
        return view

    def _offline_text(self, district: str) -> str:
        view = self.mirror.districts.get(district)
        if view is None or view.births == 0:
            return f"district {district} has not been seen since the city started"
        return f"district {district} is offline since {iso_local(view.since, self.tz)}"

    # -- views -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        controllers: dict[str, Any] = {}
        online = pending = handed_back = 0
        for cid, c in sorted(self.mirror.controllers.items()):
            district = self.mirror.districts[c.district]
            link = c.link if district.online else "unknown"
            online += link == "online"
            pending += c.pending
            handed_back += c.handed_back
            controllers[cid] = {
                "protocol": c.config.protocol,
                "site": c.site,
                "district": c.district,
                "link": link,
                "since": c.link_since,
                "last_error": c.link_error if district.online else self._offline_text(c.district),
                "pending": c.pending,
                "handed_back": c.handed_back,
                "power_w": c.power_w,
                "energy_kwh": c.energy_kwh,
                "faults": list(c.faults),
            }
        return {
            "installation": self.config.installation.name,
            "timezone": self.config.installation.timezone,
            "now": self.now().isoformat(timespec="seconds"),
            "calendar_warnings": [],
            "controllers_total": len(controllers),
            "controllers_online": online,
            "channels_pending": pending,
            "channels_handed_back": handed_back,
            "overrides": self.city_overrides(),
            "controllers": controllers,
            "store": self.store.health().as_json(self.tz),
            "federation": self.host.status(),
            "districts": self.districts(),
        }

    def districts(self) -> dict[str, Any]:
        out = {}
        for d, view in sorted(self.mirror.districts.items()):
            born = [self.mirror.controllers[c] for c in view.expected if c in view.controllers]
            out[d] = {
                "name": view.district.name if view.district else None,
                "name_en": view.district.name_en if view.district else None,
                "online": view.online,
                "complete": view.complete,
                "since": iso_local(view.since, self.tz),
                "births": view.births,
                "bd_seq": view.bd_seq,
                "controllers": len(view.expected),
                "controllers_described": len(born),
                "controllers_online": sum(1 for c in born if view.online and c.link == "online"),
                "overrides": [o for o in view.overrides if not o.get("request")],
            }
        return out

    def city_overrides(self) -> list[dict[str, Any]]:
        """The layers city commands set in the districts, one entry per command (its id)."""
        grouped: dict[int, dict[str, Any]] = {}
        for district, view in sorted(self.mirror.districts.items()):
            for layer in view.overrides:
                command = _command_of(layer.get("request"))
                if command is None:
                    continue
                entry = grouped.setdefault(command, {
                    "id": command, "kind": layer.get("kind"), "scene": layer.get("scene"), "target": self._target_of(command),
                    "user": layer.get("user"), "until": layer.get("until"), "cap": layer.get("cap"), "districts": {},
                })
                entry["districts"][district] = {"id": layer.get("id"), "target": layer.get("target"), "until": layer.get("until")}
        return [grouped[k] for k in sorted(grouped)]

    def _target_of(self, command_id: int) -> str:
        """The selector a city command was given (read from its record the first time it is asked)."""
        target = self._targets.get(command_id)
        if target is None:
            self._targets[command_id] = target = "(per district)"
            self.spawn(self._fetch_target(command_id), f"federation-target:{command_id}")
        return target

    async def _fetch_target(self, command_id: int) -> None:
        command = await self.store.commands.get(command_id)
        if command is not None and command.target is not None:
            self._targets[command_id] = command.target

    def controller(self, controller_id: str) -> dict[str, Any] | None:
        view = self.mirror.controllers.get(controller_id)
        if view is None:
            return None
        channels: dict[str, Any] = {}
        for ch in view.config.channels:
            got = view.channels.get(ch.id)
            want = got.desired if got else None
            reported = got.reading() if got else None
            channels[ch.id] = {
                "name": ch.name,
                "luminaires": ch.luminaire_count,
                "rated_w": ch.rated_w,
                "desired": None if want is None else {"handed_back": True} if isinstance(want, Released)
                else {"on": want.on, "level": want.level},
                "control": "owner" if isinstance(want, Released) else "centre",
                "confirmed": want is not None and got is not None and matches(reported, want, 0.5),
                "reported": None if got is None or got.on is None else {
                    "on": got.on, "level": got.level, "power_w": got.power_w, "faults": [], "held_by": got.held_by,
                    "released": got.released,
                },
            }
        district = self.mirror.districts[view.district]
        return {
            "id": controller_id,
            "protocol": view.config.protocol,
            "site": view.site,
            "district": view.district,
            "link": view.link if district.online else "unknown",
            "last_error": view.link_error if district.online else self._offline_text(view.district),
            "power_w": view.power_w,
            "energy_kwh": view.energy_kwh,
            "measurements": {},
            "channels": channels,
        }

    def scenes(self) -> list[dict[str, Any]]:
        return _catalogue((d, v.scenes) for d, v in self.mirror.districts.items())

    def shows(self) -> list[dict[str, Any]]:
        return _catalogue((d, v.shows) for d, v in self.mirror.districts.items())

    def metrics(self) -> dict[str, Any]:
        """The action plan's figures over every district, from what they report, computed as a
        district computes its own (lightctl.services.reports.live)."""
        districts = self.mirror.districts
        observed = {
            cid: ControllerNow(view.desired, view.reading, view.link == "online" and districts[view.district].online)
            for cid, view in self.mirror.controllers.items()
        }
        reports = self.config.reports
        settings = InspectionSettings(
            time.time(), reports.inspections.stale_s, reports.energy.lamp_fault_below, DimmingCurve.of(reports.energy)
        )
        return live_metrics(self.inventory(), observed, self.config.installation.energy, settings)


def _catalogue(items: Iterable[tuple[str, Iterable[dict[str, Any]]]]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for district, entries in sorted(items):
        for entry in entries:
            item = found.setdefault(str(entry["id"]), {"id": entry["id"], "name": entry.get("name"), "districts": []})
            item["districts"].append(district)
    return [found[k] for k in sorted(found)]


def _command_of(request: Any) -> int | None:
    """The city command a request id belongs to (request ids are ``<command id>-<random>``)."""
    if not isinstance(request, str):
        return None
    head = request.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _rows(outcomes: Iterable[ControllerOutcome]) -> list[ResultRow]:
    return [ResultRow(o.controller_id, o.status.value, o.error_kind, o.error, o.operations, o.channels, o.elapsed_s) for o in outcomes]
