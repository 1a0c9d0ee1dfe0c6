"""The city's requests to a district (NCMD ``Command/Request``) and how a district carries them
out: through its own daemon, the same engine, records and refusals as a local operator's
command, each request once (its inbox), answered with every controller's result.

Actions: ``scene`` (an override on a selector, held until ``until``: ``next`` is the district's
own next schedule transition), ``curtail`` (cap a selector's level), ``restore`` (end the
curtailments the given city requests set here, or all of them), ``clear`` (end the overrides the
given requests set here), ``show`` (start a light show), ``stop_show`` (stop the one running), ``case`` (an action on one of the
district's faults or work orders: :mod:`lightctl.federation.cases`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lightctl.federation import cases
from lightctl.federation.cases import CaseRequest
from lightctl.runtime.commands import CommandRefused, CommandReport, parse_until
from lightctl.runtime.daemon import Daemon
from lightctl.runtime.showrunner import ShowHeld, ShowRefused
from lightctl.store import StoreWriteFailed
from lightctl.store.federation import FederationRecords

log = logging.getLogger("lightctl.federation")

Action = Literal["scene", "curtail", "restore", "clear", "show", "stop_show", "case"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(min_length=1, max_length=100)
    action: Action
    user: str = Field(min_length=1, max_length=100)
    target: str | None = None
    """The selector as it applies to this district (the city rewrites its own for each)."""
    scene: str | None = None
    until: str | None = None
    """``next``, ``none``, HH:MM or ISO 8601, read in the district's zone."""
    level: float | None = None
    show: str | None = None
    anyway: bool = False
    clear_overrides: bool = False
    requests: list[str] | None = None
    """restore, clear: the city requests whose layers to end (restore: None is every curtailment)."""
    case: CaseRequest | None = None

    def text(self) -> str:
        return self.model_dump_json(exclude_none=True)


class RequestError(ValueError):
    pass


def parse_request(text: str) -> Request:
    try:
        return Request.model_validate_json(text)
    except ValidationError as exc:
        raise RequestError(f"not a lightctl request: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None


def answer(request_id: str, status: str, *, error: str | None = None, **extra: Any) -> dict[str, Any]:
    """A district's answer: ``done``, ``refused`` (nothing was done: the message says why) or
    ``failed`` (it could not be carried out or recorded)."""
    out: dict[str, Any] = {"request_id": request_id, "status": status}
    if error is not None:
        out["error"] = error
    out.update(extra)
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    answer: dict[str, Any]
    layers: tuple[int, ...]
    """The overrides or curtailments it set in the district."""

    @property
    def status(self) -> str:
        return str(self.answer["status"])


class RequestRunner:
    """Carries out the city's requests through ``daemon``, each once (``records``' inbox)."""

    def __init__(self, daemon: Daemon, records: FederationRecords) -> None:
        self.daemon = daemon
        self.records = records
        self._running: set[str] = set()

    async def run(self, request: Request) -> Outcome | None:
        """What came of it, or None for a request already answered (its answer is in the
        outbox). The caller records the outcome in the inbox with the answer (one transaction:
        :meth:`lightctl.store.federation.FederationRecords.answer`)."""
        if request.request_id in self._running:
            return None
        try:
            seen = await self.records.inbox_claim(request.request_id, request.action, request.text())
        except StoreWriteFailed as exc:  # nothing done: the city may ask again
            return Outcome(answer(request.request_id, "failed", error=f"the district could not record it: {exc}"), ())
        if seen is not None:
            if seen.status == "running":  # taken by a run of this daemon that stopped before answering
                return Outcome(answer(request.request_id, "failed", error="the district daemon stopped while carrying it out"), ())
            return None
        self._running.add(request.request_id)
        try:
            result, layers = await self._carry_out(request)
        except (CommandRefused, ShowRefused) as exc:
            result, layers = answer(request.request_id, "refused", error=str(exc), **_held(exc)), []
        except StoreWriteFailed as exc:
            result, layers = answer(request.request_id, "failed", error=f"the district could not record it: {exc}"), []
        except Exception as exc:
            log.exception("request %s from the city failed", request.request_id)
            result, layers = answer(request.request_id, "failed", error=f"{type(exc).__name__}: {exc}"), []
        finally:
            self._running.discard(request.request_id)
        return Outcome(result, tuple(layers))

    async def _carry_out(self, request: Request) -> tuple[dict[str, Any], list[int]]:
        daemon, rid = self.daemon, request.request_id
        user = f"{request.user} (city)"
        if request.action == "scene":
            report = await daemon.apply_scene(_need(request.scene, "scene"), _need(request.target, "target"), user=user,
                                              until=self._until(request.until, "next"))
            return _done(rid, report), [] if report.layer_id is None else [report.layer_id]
        if request.action == "curtail":
            until = self._until(request.until, "none")
            curtailed = await daemon.curtail(_need(request.target, "target"), _need(request.level, "level"), user=user,
                                             until=None if until == "next" else until)
            shed = curtailed.as_json()["shed"]
            return _done(rid, curtailed.command, shed=shed), [curtailed.override_id]
        if request.action == "restore":
            active = [o.id for o in daemon.overrides if o.kind == "curtail"]
            ids = active if request.requests is None else await self._layers(request.requests, active)
            if not ids:
                return answer(rid, "done", report=None), []
            restored = await daemon.restore(ids, user=user)
            return _done(rid, restored), []
        if request.action == "clear":
            active = [o.id for o in daemon.overrides if o.kind == "override"]
            ids = await self._layers(request.requests or [], active)
            if not ids:
                return answer(rid, "done", report=None), []
            await daemon.clear_overrides(ids, user=user, reason="cleared from the city")
            cleared = await daemon.reconcile(f"override(s) {', '.join(f'#{i}' for i in ids)} cleared by {user}", source="operator")
            return _done(rid, cleared), []
        if request.action == "stop_show":
            stopped = await daemon.shows.stop(user=user)
            return answer(rid, "done", show=stopped.as_json()), []
        if request.action == "case":
            view = await cases.carry_out(daemon, _need(request.case, "case"), user)
            return answer(rid, "done", view=view), []
        run = await daemon.shows.start(_need(request.show, "show"), user=user, anyway=request.anyway,
                                       clear_overrides=request.clear_overrides)
        return answer(rid, "done", show=run.as_json()), []

    async def _layers(self, requests: list[str], active: list[int]) -> list[int]:
        found = await self.records.inbox_layers(requests)
        return [layer for layers in found.values() for layer in layers if layer in active]

    def _until(self, text: str | None, default: str) -> datetime | Literal["next"] | None:
        raw = text or default
        if raw == "next":
            return "next"
        if raw == "none":
            return None
        try:
            return parse_until(raw, self.daemon.now())
        except ValueError:
            raise CommandRefused(f"'until' {raw!r} is not 'next', 'none', HH:MM or an ISO 8601 time") from None


def _need(value: Any, name: str) -> Any:
    if value is None:
        raise CommandRefused(f"the request has no {name!r}")
    return value


def _done(request_id: str, report: CommandReport | None, **extra: Any) -> dict[str, Any]:
    return answer(request_id, "done", report=None if report is None else report.as_json(), **extra)


def _held(exc: Exception) -> dict[str, Any]:
    return {"held": exc.as_json()} if isinstance(exc, ShowHeld) else {}


def answer_text(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
