"""API routes for faults, work orders, crews, photos, lamp ages and the notification outbox.

Reads need ``read``, every change ``maintain``; the person of each step is the caller
(``web.context.user_of``). JSON is complete per row (place with coordinates, evidence, deadlines
with ``overdue``, times in the installation's zone), so a crew's phone needs one request per
screen. ``.csv`` variants export the same rows.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from aiohttp import web

from lightctl.model.faults import Severity
from lightctl.model.times import iso_local, to_ms
from lightctl.runtime.commands import CommandRefused, parse_until
from lightctl.runtime.faults import Faults
from lightctl.services.access import Permission
from lightctl.services.faults.desk import MAX_PHOTO_BYTES
from lightctl.services.faults.service import FaultActionRefused
from lightctl.services.faults.views import FAULT_CSV_COLUMNS, ORDER_CSV_COLUMNS, fault_csv_row, order_csv_row
from lightctl.services.faults.workorders import STEP_RULES, WorkOrderRefused
from web import fault_schemas as schema
from web.context import DAEMON, MAX_ID, body, caller_of, error, path_id, user_of
from web.routing import Route, path_parameter, query_parameter

FAULT_ID = path_parameter("fault_id", "integer")
ORDER_ID = path_parameter("order_id", "integer")
STEPS = ("dispatch", "handle", "feedback", "verify", "close", "defer")


def faults_of(request: web.Request) -> Faults:
    for service in request.app[DAEMON].services:
        if isinstance(service, Faults):
            return service
    raise web.HTTPServiceUnavailable(reason="the fault service is not running in this daemon")


def _now(request: web.Request) -> int:
    return to_ms(request.app[DAEMON].now())


MAX_LIMIT = 100_000
PHOTO_CHUNK = 256 * 1024
MAX_SHELF_HOURS = 24 * 366


def _limit(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except ValueError:
        raise CommandRefused(f"'limit' must be a whole number, got {value!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise CommandRefused(f"'limit' must be 1 to {MAX_LIMIT}")
    return limit


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes", "")


def _time(request: web.Request, value: Any, name: str) -> int | None:
    """An instant given as HH:MM (next), an ISO 8601 time, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CommandRefused(f"'{name}' must be HH:MM or an ISO 8601 time")
    try:
        parsed = parse_until(value, request.app[DAEMON].now())
    except (ValueError, OverflowError):
        raise CommandRefused(f"'{name}' {value!r} is not HH:MM or an ISO 8601 time") from None
    return None if parsed is None else to_ms(parsed)


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise CommandRefused(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise CommandRefused(f"'{name}' must be a string")
    return value


def _csv(columns: tuple[str, ...], rows: list[list[Any]], name: str) -> web.Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return web.Response(
        text=out.getvalue(), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --------------------------------------------------------------------------- faults


async def _fault_rows(request: web.Request, default_limit: int = 1000) -> list[Any]:
    faults = faults_of(request)
    query = request.query
    active = _flag(query.get("active"))
    site, kind = query.get("site"), query.get("kind")
    if active:
        now = _now(request)
        return [r for r in faults.service.active(now) if (site is None or r.site_id == site) and (kind is None or r.kind == kind)]
    return await request.app[DAEMON].store.faults.query(
        site=site, kind=kind, since=_time(request, query.get("since"), "since"),
        until=_time(request, query.get("until"), "until"), limit=_limit(query.get("limit"), default_limit),
    )


async def list_faults(request: web.Request) -> web.Response:
    faults = faults_of(request)
    now = _now(request)
    rows = await _fault_rows(request)
    orders = await request.app[DAEMON].store.work_orders.orders_of_faults(r.id for r in rows)
    views = []
    for rec in rows:
        view = faults.service.fault_view(rec, now)
        view["work_orders"] = orders.get(rec.id, [])
        views.append(view)
    alarms = sum(1 for v in views if v["alarm"])
    return web.json_response({"faults": views, "count": len(views), "alarms": alarms})


async def export_faults(request: web.Request) -> web.Response:
    zone = faults_of(request).service.zone
    now = _now(request)
    rows = await _fault_rows(request, MAX_LIMIT)
    return _csv(FAULT_CSV_COLUMNS, [fault_csv_row(r, zone, now) for r in rows], "faults.csv")


async def get_fault(request: web.Request) -> web.Response:
    faults = faults_of(request)
    fault_id = path_id(request, "fault_id", "fault")
    try:
        rec = await faults.service.fault(fault_id)
    except FaultActionRefused as exc:
        return error(404, str(exc))
    now = _now(request)
    store = request.app[DAEMON].store
    view = faults.service.fault_view(rec, now)
    view["work_orders"] = (await store.work_orders.orders_of_faults([fault_id])).get(fault_id, [])
    zone = faults.service.zone
    view["events"] = [
        {"at": iso_local(e.at, zone), "event": e.event, "person": e.person, "note": e.note}
        for e in await store.faults.events(fault_id)
    ]
    view["children"] = [r.id for r in faults.service.tracker.by_id.values() if r.parent_id == fault_id]
    return web.json_response(view)


async def _fault_action(request: web.Request, action: str) -> web.Response:
    faults = faults_of(request)
    fault_id = path_id(request, "fault_id", "fault")
    user = user_of(request)
    data = await body(request)
    now = _now(request)
    service = faults.service
    try:
        if action == "ack":
            rec = await service.acknowledge(fault_id, user, now, _text(data, "note"))
        elif action == "shelve":
            reason = _text(data, "reason", required=True) or ""
            until = _time(request, data.get("until"), "until")
            hours = data.get("hours")
            if hours is not None and (not isinstance(hours, int | float) or isinstance(hours, bool)
                                      or not 0 < hours <= MAX_SHELF_HOURS):
                raise CommandRefused(f"'hours' must be a number above 0 and at most {MAX_SHELF_HOURS}")
            if until is None and hours is not None:
                until = to_ms(request.app[DAEMON].now() + timedelta(hours=float(hours)))
            if until is None:
                raise CommandRefused("shelving needs an expiry: 'until' (HH:MM or ISO 8601) or 'hours'")
            rec = await service.shelve(fault_id, user, reason, until, now)
        else:
            rec = await service.unshelve(fault_id, user, now)
    except FaultActionRefused as exc:
        return error(404 if str(exc).startswith("no fault") else 400, str(exc))
    return web.json_response(service.fault_view(rec, now))


async def ack_fault(request: web.Request) -> web.Response:
    return await _fault_action(request, "ack")


async def shelve_fault(request: web.Request) -> web.Response:
    return await _fault_action(request, "shelve")


async def unshelve_fault(request: web.Request) -> web.Response:
    return await _fault_action(request, "unshelve")


# --------------------------------------------------------------------------- work orders


async def _order_rows(request: web.Request, default_limit: int = 1000) -> list[Any]:
    query = request.query
    crew = query.get("crew")
    if crew == "mine":  # the caller's crew: a crew member's phone asks for its own queue
        crew = _my_crew(request)
    return await request.app[DAEMON].store.work_orders.query(
        open_only=_flag(query.get("open")), crew=crew, site=query.get("site"), state=query.get("state"),
        since=_time(request, query.get("since"), "since"), until=_time(request, query.get("until"), "until"),
        limit=_limit(query.get("limit"), default_limit),
    )


def _my_crew(request: web.Request) -> str:
    caller = caller_of(request)
    crews = faults_of(request).desk.crews_of(caller.name, caller.crew)
    if not crews:
        raise CommandRefused(f"{caller.name} belongs to no crew")
    return crews[0]


async def list_orders(request: web.Request) -> web.Response:
    faults = faults_of(request)
    orders = await _order_rows(request)
    views = await faults.desk.views(orders, _now(request))
    return web.json_response({"work_orders": views, "count": len(views), "overdue": sum(1 for v in views if v["overdue"])})


async def export_orders(request: web.Request) -> web.Response:
    zone = faults_of(request).service.zone
    now = _now(request)
    orders = await _order_rows(request, MAX_LIMIT)
    return _csv(ORDER_CSV_COLUMNS, [order_csv_row(o, zone, now) for o in orders], "workorders.csv")


async def get_order(request: web.Request) -> web.Response:
    faults = faults_of(request)
    try:
        order = await faults.desk.get(path_id(request, "order_id", "work order"))
    except WorkOrderRefused as exc:
        return error(404, str(exc))
    (view,) = await faults.desk.views([order], _now(request))
    return web.json_response(view)


async def file_order(request: web.Request) -> web.Response:
    faults = faults_of(request)
    data = await body(request)
    ids = data.get("faults", [])
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ID for i in ids):
        raise CommandRefused("'faults' must be a list of fault ids")
    severity = _text(data, "severity")
    if severity is not None and severity not in set(Severity):
        raise CommandRefused(f"'severity' must be one of {', '.join(Severity)}")
    coords = {}
    for name in ("lat", "lon"):
        value = data.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or not -180 <= value <= 180):
            raise CommandRefused(f"'{name}' must be a number of degrees")
        coords[name] = None if value is None else float(value)
    now = _now(request)
    try:
        order = await faults.desk.file(
            by=user_of(request), now=now, fault_ids=ids, title=_text(data, "title"),
            description=_text(data, "description"), severity=Severity(severity) if severity else None,
            source=_text(data, "source"), reference=_text(data, "reference"), site=_text(data, "site"),
            controller=_text(data, "controller"), channel=_text(data, "channel"), lat=coords["lat"], lon=coords["lon"],
            crew=_text(data, "crew"), note=_text(data, "note"),
        )
    except WorkOrderRefused as exc:
        return error(400, str(exc))
    (view,) = await faults.desk.views([order], now)
    return web.json_response(view)


def _step_handler(step: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        faults = faults_of(request)
        data = await body(request)
        now = _now(request)
        name = step
        if step == "verify":
            ok = data.get("ok", True)
            if not isinstance(ok, bool):
                raise CommandRefused("'ok' must be true or false")
            name = "verify" if ok else "reject"
        try:
            order = await faults.desk.step(
                path_id(request, "order_id", "work order"), name, by=user_of(request), now=now,
                note=_text(data, "note") or _text(data, "reason"), crew=_text(data, "crew"), photo=_text(data, "photo"),
                until=_time(request, data.get("until"), "until"),
            )
        except WorkOrderRefused as exc:
            return error(404 if str(exc).startswith("no work order") else 400, str(exc))
        (view,) = await faults.desk.views([order], now)
        return web.json_response(view)

    handle.__name__ = f"order_{step}"
    return handle


async def list_crews(request: web.Request) -> web.Response:
    faults = faults_of(request)
    now = _now(request)
    orders = await request.app[DAEMON].store.work_orders.query(open_only=True, limit=100_000)
    out = []
    for crew in faults.service.config.crews:
        mine = [o for o in orders if o.crew_id == crew.id]
        out.append({
            "id": crew.id, "name": crew.name, "members": crew.members, "districts": crew.districts, "phone": crew.phone,
            "open": len(mine), "overdue": sum(1 for o in mine if o.overdue(now)),
        })
    return web.json_response({"crews": out})


async def crew_queue(request: web.Request) -> web.Response:
    """A crew's open work orders, earliest deadline first."""
    faults = faults_of(request)
    crew = request.match_info["crew_id"]
    if all(c.id != crew for c in faults.service.config.crews):
        return error(404, f"unknown crew {crew!r}")
    orders = await request.app[DAEMON].store.work_orders.query(open_only=True, crew=crew)
    views = await faults.desk.views(orders, _now(request))
    return web.json_response({"crew": crew, "work_orders": views, "count": len(views)})


# --------------------------------------------------------------------------- photos, lamps, outbox


async def upload_photo(request: web.Request) -> web.Response:
    faults = faults_of(request)
    content_type = request.content_type
    if request.content_length is not None and request.content_length > MAX_PHOTO_BYTES:
        return error(413, f"a photo is at most {MAX_PHOTO_BYTES / 1e6:.0f} MB")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(PHOTO_CHUNK):  # read() gives what has arrived, not all
        size += len(chunk)
        if size > MAX_PHOTO_BYTES:
            return error(413, f"a photo is at most {MAX_PHOTO_BYTES / 1e6:.0f} MB")
        chunks.append(chunk)
    data = b"".join(chunks)
    if request.content_length is not None and len(data) != request.content_length:
        return error(400, f"the photo arrived incomplete ({len(data)} of {request.content_length} bytes)")
    try:
        digest = await faults.desk.store_photo(data, content_type, user_of(request), _now(request))
    except WorkOrderRefused as exc:
        return error(400, str(exc))
    return web.json_response({"sha256": digest, "bytes": len(data), "content_type": content_type})


async def get_photo(request: web.Request) -> web.StreamResponse:
    faults = faults_of(request)
    digest = request.match_info["sha256"]
    try:
        path = faults.desk.photo_path(digest)
    except WorkOrderRefused as exc:
        return error(400, str(exc))
    record = await request.app[DAEMON].store.work_orders.photo(digest)
    if record is None or not path.exists():
        return error(404, f"no photo {digest}")
    return web.FileResponse(path, headers={"Content-Type": record["content_type"]})


async def lamp_ages(request: web.Request) -> web.Response:
    faults = faults_of(request)
    service = faults.service
    maintenance = service.config.maintenance
    ages = service.hours.due(maintenance) if _flag(request.query.get("due")) else service.hours.ages(maintenance)
    limit = _limit(request.query.get("limit"), 1000)
    zone = service.zone
    out = []
    for age in ages[:limit]:
        spec = service.specs.get(age.controller_id)
        ch = spec.channels.get(age.channel_id) if spec is not None else None
        out.append({
            "controller": age.controller_id, "channel": age.channel_id, "name": ch.name if ch else age.channel_id,
            "site": spec.site_id if spec else None, "lat": spec.lat if spec else None, "lon": spec.lon if spec else None,
            "luminaires": ch.luminaires if ch else None, "hours": round(age.hours, 1), "rated_hours": age.rated_hours,
            "life_used": None if age.life_used is None else round(age.life_used, 4),
            "due": age.life_used is not None and age.life_used >= maintenance.replacement_due_ratio,
            "since": iso_local(age.since, zone) if age.since else None,
        })
    return web.json_response({"channels": out, "replacement_due_ratio": maintenance.replacement_due_ratio})


async def relamp(request: web.Request) -> web.Response:
    faults = faults_of(request)
    data = await body(request)
    controller = _text(data, "controller", required=True) or ""
    channel = _text(data, "channel", required=True) or ""
    service = faults.service
    if controller not in service.specs or channel not in service.specs[controller].channels:
        return error(404, f"unknown channel {controller}/{channel}")
    hours = await service.relamp(controller, channel, user_of(request), _now(request), _text(data, "note"))
    return web.json_response({"controller": controller, "channel": channel, "hours_before": round(hours, 1)})


async def notifications(request: web.Request) -> web.Response:
    store = request.app[DAEMON].store
    zone = faults_of(request).service.zone
    rows = await store.outbox.rows(_limit(request.query.get("limit"), 100))
    for row in rows:
        for key in ("created_at", "delivered_at", "next_attempt_at"):
            value = row.get(key)
            row[key] = iso_local(value, zone) if isinstance(value, int) else value
    return web.json_response({"summary": await store.outbox.summary(), "deliveries": rows})


BAD_PARAMETER = {"400": "a parameter that cannot be used: the message says which"}
FAULT_FILTERS = (
    query_parameter("active", "boolean", "open faults only (alarms first, then shelved and suppressed)"),
    query_parameter("site"), query_parameter("kind"),
    query_parameter("since", description="opened at or after (HH:MM or ISO 8601)"),
    query_parameter("until", description="opened before"), query_parameter("limit", "integer", f"1-{MAX_LIMIT}"),
)
ORDER_FILTERS = (
    query_parameter("open", "boolean", "open orders only, earliest deadline first"),
    query_parameter("crew", description="a crew's id, or 'mine': the caller's crew"),
    query_parameter("site"), query_parameter("state"), query_parameter("since"), query_parameter("until"),
    query_parameter("limit", "integer", f"1-{MAX_LIMIT}"),
)
NOTE_BODY = {"type": "object", "properties": {"note": {"type": "string"}}}
STEP_BODIES: dict[str, dict[str, Any]] = {
    "dispatch": {"type": "object", "required": ["crew"], "properties": {"crew": {"type": "string"}, "note": {"type": "string"}}},
    "handle": NOTE_BODY,
    "feedback": {"type": "object", "properties": {"note": {"type": "string"}, "photo": {"type": "string", "description": "SHA-256 from POST /api/v1/photos"}}},
    "verify": {"type": "object", "properties": {"ok": {"type": "boolean", "description": "false: back to the crew"}, "note": {"type": "string"}}},
    "close": {"type": "object", "properties": {"reason": {"type": "string", "description": "required while a fault of the order is still active"}}},
    "defer": {"type": "object", "required": ["reason", "until"], "properties": {"reason": {"type": "string"}, "until": {"type": "string"}}},
}
STEP_SUMMARIES = {
    "dispatch": "派遣: give a work order to a crew", "handle": "处置: the crew takes it on",
    "feedback": "反馈: the crew reports it done, with a note and a photo", "verify": "核查: the verifier checks the work (ok: false sends it back)",
    "close": "结案: close a verified work order", "defer": "延期: a new deadline, with its reason",
}
assert set(STEP_BODIES) == set(STEPS) and set(STEPS) <= set(STEP_RULES)
FAULT_ID_PARAMETER = (FAULT_ID,)
NO_FAULT = {"404": "no such fault"}
NO_ORDER = {"404": "no such work order"}

ROUTES = (
    Route("GET", "/api/v1/faults", list_faults, Permission.READ, "Faults (open or past) with place, evidence and status",
          parameters=FAULT_FILTERS, responses=BAD_PARAMETER, response=schema.FAULT_LIST),
    Route("GET", "/api/v1/faults.csv", export_faults, Permission.READ, "Faults as CSV", parameters=FAULT_FILTERS,
          content_type="text/csv", response=schema.CSV, responses=BAD_PARAMETER),
    Route("GET", "/api/v1/faults/{fault_id}", get_fault, Permission.READ, "One fault with its transitions and children",
          parameters=FAULT_ID_PARAMETER, responses={**NO_FAULT, "400": "not a fault id"}, response=schema.FAULT),
    Route("POST", "/api/v1/faults/{fault_id}/ack", ack_fault, Permission.MAINTAIN, "Acknowledge a fault",
          parameters=FAULT_ID_PARAMETER, body=NOTE_BODY, responses=NO_FAULT, response=schema.FAULT),
    Route("POST", "/api/v1/faults/{fault_id}/shelve", shelve_fault, Permission.MAINTAIN,
          "Shelve an active fault's point, with a reason, until an expiry", parameters=FAULT_ID_PARAMETER,
          body={"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}, "until": {"type": "string"}, "hours": {"type": "number"}}},
          responses=NO_FAULT, response=schema.FAULT),
    Route("POST", "/api/v1/faults/{fault_id}/unshelve", unshelve_fault, Permission.MAINTAIN, "End a shelf now",
          parameters=FAULT_ID_PARAMETER, responses=NO_FAULT, response=schema.FAULT),
    Route("GET", "/api/v1/workorders", list_orders, Permission.READ, "Work orders with place, faults, steps and deadline",
          parameters=ORDER_FILTERS, responses=BAD_PARAMETER, response=schema.WORK_ORDER_LIST),
    Route("GET", "/api/v1/workorders.csv", export_orders, Permission.READ, "Work orders as CSV", parameters=ORDER_FILTERS,
          content_type="text/csv", response=schema.CSV, responses=BAD_PARAMETER),
    Route("POST", "/api/v1/workorders", file_order, Permission.MAINTAIN,
          "立案: file a work order from faults, or for a report (12319 hotline) with its place",
          body={"type": "object", "properties": {
              "faults": {"type": "array", "items": {"type": "integer"}}, "title": {"type": "string"},
              "description": {"type": "string"}, "severity": {"type": "string", "enum": list(Severity)},
              "source": {"type": "string", "enum": ["fault", "hotline", "manual"]}, "reference": {"type": "string"},
              "site": {"type": "string"}, "controller": {"type": "string"}, "channel": {"type": "string"},
              "lat": {"type": "number"}, "lon": {"type": "number"}, "crew": {"type": "string"}, "note": {"type": "string"}}},
          response=schema.WORK_ORDER),
    Route("GET", "/api/v1/workorders/{order_id}", get_order, Permission.READ, "One work order", parameters=(ORDER_ID,),
          responses={**NO_ORDER, "400": "not a work order id"}, response=schema.WORK_ORDER),
    *(
        Route("POST", f"/api/v1/workorders/{{order_id}}/{step}", _step_handler(step), Permission.MAINTAIN, STEP_SUMMARIES[step],
              parameters=(ORDER_ID,), body=STEP_BODIES[step], responses=NO_ORDER, response=schema.WORK_ORDER)
        for step in STEPS
    ),
    Route("GET", "/api/v1/crews", list_crews, Permission.READ, "Crews with their open and overdue work orders", response=schema.CREWS),
    Route("GET", "/api/v1/crews/{crew_id}/queue", crew_queue, Permission.READ, "A crew's open work orders, earliest deadline first",
          parameters=(path_parameter("crew_id"),), responses={"404": "no such crew"}, response=schema.WORK_ORDER_LIST),
    Route("POST", "/api/v1/photos", upload_photo, Permission.MAINTAIN, "Keep a photo (JPEG, PNG or WebP body) by its SHA-256",
          responses={"413": "too large"}, response=schema.PHOTO),
    Route("GET", "/api/v1/photos/{sha256}", get_photo, Permission.READ, "A photo by its SHA-256",
          parameters=(path_parameter("sha256"),), content_type="image/jpeg", response={"type": "string", "format": "binary"},
          responses={"404": "no such photo", "400": "not a SHA-256"}),
    Route("GET", "/api/v1/maintenance/lamps", lamp_ages, Permission.READ,
          "Burning hours per channel against the lamps' rated life; due=1: due for replacement",
          parameters=(query_parameter("due", "boolean"), query_parameter("limit", "integer", f"1-{MAX_LIMIT}")),
          responses=BAD_PARAMETER, response=schema.LAMPS),
    Route("POST", "/api/v1/maintenance/relamp", relamp, Permission.MAINTAIN, "Lamps replaced: burning hours start again",
          body={"type": "object", "required": ["controller", "channel"], "properties": {
              "controller": {"type": "string"}, "channel": {"type": "string"}, "note": {"type": "string"}}},
          responses={"404": "no such channel"}, response=schema.RELAMPED),
    Route("GET", "/api/v1/notifications", notifications, Permission.READ, "The webhook outbox: deliveries and their state",
          parameters=(query_parameter("limit", "integer", f"1-{MAX_LIMIT}"),), responses=BAD_PARAMETER, response=schema.OUTBOX),
)
