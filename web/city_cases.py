"""The city's faults and work orders: every district's, as their events last showed them, and
handled from the city by the district that owns each (lightctl.federation.cases). The paths and
answers are a district's (web.faults), with ids ``<district>:<number>``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from lightctl.federation.cases import STEPS, CaseRequest, split_id
from lightctl.federation.city import CityDaemon
from lightctl.model.times import to_ms
from lightctl.runtime.commands import CommandRefused, parse_until
from lightctl.services.access import Permission
from web.city_context import city_of
from web.context import body, caller_of, error, user_of
from web.routing import Route, path_parameter, query_parameter

MAX_SHELF_HOURS = 24 * 366
ID = "<district>:<number>, e.g. yuzhong:17"
FILTERS = (
    query_parameter("active", "boolean", "open ones only"),
    query_parameter("open", "boolean", "open ones only"),
    query_parameter("district", "string", "one district's"),
)


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes", "")


def _record(request: web.Request, key: str) -> tuple[str, int]:
    try:
        return split_id(request.match_info[key])
    except ValueError as exc:
        raise CommandRefused(str(exc)) from None


def _case(**fields: Any) -> CaseRequest:
    try:
        return CaseRequest(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CommandRefused(f"'{'.'.join(str(p) for p in first['loc'])}': {first['msg']}") from None


def _until(city: CityDaemon, value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CommandRefused(f"'{name}' must be HH:MM or an ISO 8601 time")
    try:
        parsed = parse_until(value, city.now())
    except (ValueError, OverflowError):
        raise CommandRefused(f"'{name}' {value!r} is not HH:MM or an ISO 8601 time") from None
    return None if parsed is None else to_ms(parsed)


async def list_faults(request: web.Request) -> web.Response:
    city = city_of(request)
    query = request.query
    views = city.cases.fault_list(open_only=_flag(query.get("active")) or _flag(query.get("open")), district=query.get("district"))
    return web.json_response({"faults": views, "count": len(views), "alarms": sum(1 for v in views if v.get("alarm"))})


def _fault_handler(action: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        return await _fault_action(request, action)

    handle.__name__ = f"fault_{action}"
    return handle


async def get_fault(request: web.Request) -> web.Response:
    found = city_of(request).cases.faults.get(request.match_info["fault_id"])
    if found is None:
        return error(404, f"no fault {request.match_info['fault_id']} reported by any district (ids: {ID})")
    return web.json_response(found)


async def get_order(request: web.Request) -> web.Response:
    found = city_of(request).cases.orders.get(request.match_info["order_id"])
    if found is None:
        return error(404, f"no work order {request.match_info['order_id']} reported by any district (ids: {ID})")
    return web.json_response(found)


async def _fault_action(request: web.Request, action: str) -> web.Response:
    city = city_of(request)
    district, local_id = _record(request, "fault_id")
    data = await body(request)
    if action == "shelve":
        until = _until(city, data.get("until"), "until")
        hours = data.get("hours")
        if hours is not None and (not isinstance(hours, int | float) or isinstance(hours, bool) or not 0 < hours <= MAX_SHELF_HOURS):
            raise CommandRefused(f"'hours' must be a number above 0 and at most {MAX_SHELF_HOURS}")
        if until is None and hours is not None:
            until = to_ms(city.now() + timedelta(hours=float(hours)))
        if until is None:
            raise CommandRefused("shelving needs an expiry: 'until' (HH:MM or ISO 8601) or 'hours'")
        case = _case(op="shelve", id=local_id, reason=data.get("reason"), until=until)
    else:
        case = _case(op=action, id=local_id, note=data.get("note"))
    return web.json_response(await city.case(district, case, user=user_of(request)))


async def list_orders(request: web.Request) -> web.Response:
    city = city_of(request)
    query = request.query
    views = city.cases.order_list(open_only=_flag(query.get("open")), district=query.get("district"))
    crew = query.get("crew")
    if crew == "mine":  # the caller's crew: a crew member's phone asks for its own queue
        crew = caller_of(request).crew
        if crew is None:
            raise CommandRefused(f"{caller_of(request).name} belongs to no crew (a user of the city is given one by an administrator)")
    if crew is not None:
        views = [v for v in views if v.get("crew") == crew]
    return web.json_response({"work_orders": views, "count": len(views), "overdue": sum(1 for v in views if v.get("overdue"))})


async def file_order(request: web.Request) -> web.Response:
    city = city_of(request)
    data = await body(request)
    ids = data.get("faults")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise CommandRefused("'faults' must be a list of the city's fault ids (<district>:<number>): "
                             "a work order of the city is for faults, filed in the district that owns them")
    try:
        found = [split_id(i) for i in ids]
    except ValueError as exc:
        raise CommandRefused(str(exc)) from None
    districts = sorted({d for d, _ in found})
    if len(districts) > 1:
        raise CommandRefused(f"the faults are in {len(districts)} districts ({', '.join(districts)}): "
                             "a work order belongs to one district; file one in each")
    case = _case(op="file", faults=[n for _, n in found], title=data.get("title"), description=data.get("description"),
                 severity=data.get("severity"), crew=data.get("crew"), note=data.get("note"))
    return web.json_response(await city.case(districts[0], case, user=user_of(request)))


async def order_step(request: web.Request) -> web.Response:
    city = city_of(request)
    district, local_id = _record(request, "order_id")
    step = request.match_info["step"]
    if step not in STEPS:
        raise web.HTTPNotFound()
    data = await body(request)
    if step == "verify":
        ok = data.get("ok", True)
        if not isinstance(ok, bool):
            raise CommandRefused("'ok' must be true or false")
        step = "verify" if ok else "reject"
    case = _case(op="step", id=local_id, step=step, note=data.get("note") or data.get("reason"), crew=data.get("crew"),
                 photo=data.get("photo"), until=_until(city, data.get("until"), "until"))
    return web.json_response(await city.case(district, case, user=user_of(request)))


async def list_crews(request: web.Request) -> web.Response:
    city = city_of(request)
    open_orders = city.cases.order_list(open_only=True)
    out = []
    for district, view in sorted(city.mirror.districts.items()):
        for crew in view.crews:
            mine = [o for o in open_orders if o["district_id"] == district and o.get("crew") == crew.get("id")]
            out.append({**crew, "district": district, "open": len(mine), "overdue": sum(1 for o in mine if o.get("overdue"))})
    return web.json_response({"crews": out})



ROUTES = (
    Route("GET", "/api/v1/faults", list_faults, Permission.READ, "Every district's faults, as each district last reported them",
          parameters=FILTERS),
    *(
        Route("POST", f"/api/v1/faults/{{fault_id}}/{action}", _fault_handler(action), Permission.MAINTAIN,
              f"{summary} a district's fault ({ID}): carried out by the district that owns it",
              parameters=[path_parameter("fault_id")],
              body={"type": "object", "properties": {"note": {"type": "string"}, "reason": {"type": "string"},
                                                     "until": {"type": "string"}, "hours": {"type": "number"}}},
              responses={"400": "refused by the city or the district (offline, no such fault, not active)"})
        for action, summary in (("ack", "Acknowledge"), ("shelve", "Shelve"), ("unshelve", "Unshelve"))
    ),
    Route("GET", "/api/v1/faults/{fault_id}", get_fault, Permission.READ, f"One district's fault as it last reported it ({ID})",
          parameters=[path_parameter("fault_id")], responses={"404": "no district reported it"}),
    Route("GET", "/api/v1/workorders/{order_id}", get_order, Permission.READ, f"One district's work order as it last reported it ({ID})",
          parameters=[path_parameter("order_id")], responses={"404": "no district reported it"}),
    Route("GET", "/api/v1/workorders", list_orders, Permission.READ, "Every district's work orders, as each last reported them",
          parameters=(*FILTERS, query_parameter("crew", "string", "one crew's"))),
    Route("POST", "/api/v1/workorders", file_order, Permission.MAINTAIN,
          "File a work order for faults of one district, in that district",
          body={"type": "object", "required": ["faults"], "properties": {
              "faults": {"type": "array", "items": {"type": "string"}}, "title": {"type": "string"},
              "description": {"type": "string"}, "severity": {"type": "string"}, "crew": {"type": "string"},
              "note": {"type": "string"}}},
          responses={"400": "refused by the city or the district"}),
    Route("POST", "/api/v1/workorders/{order_id}/{step}", order_step, Permission.MAINTAIN,
          f"A step of a district's work order ({ID}): dispatch, handle, feedback, verify, close, defer; taken by its district",
          parameters=[path_parameter("order_id"), path_parameter("step")],
          body={"type": "object", "properties": {"note": {"type": "string"}, "crew": {"type": "string"},
                                                 "photo": {"type": "string"}, "until": {"type": "string"},
                                                 "ok": {"type": "boolean"}}},
          responses={"400": "refused by the city or the district", "404": "no such step"}),
    Route("GET", "/api/v1/crews", list_crews, Permission.READ, "Every district's crews with their open and overdue work orders"),
)
