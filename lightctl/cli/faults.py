"""``lightctl faults`` and ``lightctl workorders``: what is broken, where, since when, and the
crews' cases, through the running daemon's API. Every command takes ``--json``; ``export``
writes CSV."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from lightctl.cli.common import EXIT_OK, ApiError, UsageError, add_json, api, config_path

STEP_HELP = {
    "dispatch": "派遣: give a work order to a crew",
    "handle": "处置: the crew takes it on",
    "feedback": "反馈: the crew reports it done (note, photo)",
    "verify": "核查: check the work (--reject sends it back to the crew)",
    "close": "结案: close a verified work order (--reason while a fault is still active)",
    "defer": "延期: a new deadline with its reason",
}


def register(sub: Any) -> None:
    faults = sub.add_parser("faults", help="faults: list, acknowledge, shelve; lamp ages").add_subparsers(
        dest="faults_command", required=True
    )
    p = faults.add_parser("list", help="faults, newest first (--active: open ones, alarms first)")
    _fault_filters(p)
    add_json(p)
    p.set_defaults(func=cmd_faults_list)
    p = faults.add_parser("show", help="one fault with its transitions")
    p.add_argument("id", type=record_id)
    add_json(p)
    p.set_defaults(func=cmd_faults_show)
    p = faults.add_parser("ack", help="acknowledge a fault")
    p.add_argument("id", type=record_id)
    p.add_argument("--note")
    add_json(p)
    p.set_defaults(func=cmd_fault_action, action="ack")
    p = faults.add_parser("shelve", help="shelve a fault's point with a reason until an expiry (a bridge under repair)")
    p.add_argument("id", type=record_id)
    p.add_argument("--reason", required=True)
    expiry = p.add_mutually_exclusive_group(required=True)
    expiry.add_argument("--until", help="HH:MM or ISO 8601")
    expiry.add_argument("--hours", type=float)
    add_json(p)
    p.set_defaults(func=cmd_fault_action, action="shelve")
    p = faults.add_parser("unshelve", help="end a shelf now")
    p.add_argument("id", type=record_id)
    add_json(p)
    p.set_defaults(func=cmd_fault_action, action="unshelve")
    p = faults.add_parser("export", help="faults as CSV (to a file, or standard output)")
    _fault_filters(p)
    p.add_argument("-o", "--output", help="file (default: standard output)")
    p.set_defaults(func=cmd_export, what="faults")
    p = faults.add_parser("lamps", help="burning hours per channel against the lamps' rated life")
    p.add_argument("--due", action="store_true", help="only channels due for lamp replacement")
    p.add_argument("--limit", type=int, default=50)
    add_json(p)
    p.set_defaults(func=cmd_lamps)
    p = faults.add_parser("relamp", help="lamps replaced on a channel: its burning hours start again")
    p.add_argument("channel", help="CONTROLLER/CHANNEL")
    p.add_argument("--note")
    add_json(p)
    p.set_defaults(func=cmd_relamp)
    p = faults.add_parser("notifications", help="the webhook outbox: deliveries and their state")
    p.add_argument("--limit", type=int, default=20)
    add_json(p)
    p.set_defaults(func=cmd_notifications)

    orders = sub.add_parser("workorders", help="work orders: file, dispatch, handle, feedback, verify, close").add_subparsers(
        dest="workorders_command", required=True
    )
    p = orders.add_parser("list", help="work orders (--open: open ones, earliest deadline first)")
    _order_filters(p)
    add_json(p)
    p.set_defaults(func=cmd_orders_list)
    p = orders.add_parser("show", help="one work order with its faults and steps")
    p.add_argument("id", type=record_id)
    add_json(p)
    p.set_defaults(func=cmd_orders_show)
    p = orders.add_parser("file", help="立案: from faults, or a report (12319 hotline) with its place")
    p.add_argument("--fault", type=record_id, action="append", default=[], help="a fault it covers (repeat for related ones)")
    p.add_argument("--title")
    p.add_argument("--description")
    p.add_argument("--severity", choices=("emergency", "serious", "ordinary"))
    p.add_argument("--hotline", metavar="CASE", help="the 12319 hotline's case number")
    p.add_argument("--site")
    p.add_argument("--controller")
    p.add_argument("--channel")
    p.add_argument("--lat", type=float)
    p.add_argument("--lon", type=float)
    p.add_argument("--crew", help="dispatch to this crew at once")
    p.add_argument("--note")
    add_json(p)
    p.set_defaults(func=cmd_orders_file)
    for step, text in STEP_HELP.items():
        p = orders.add_parser(step, help=text)
        p.add_argument("id", type=record_id)
        p.add_argument("--note")
        if step == "dispatch":
            p.add_argument("--crew", required=True)
        elif step == "feedback":
            p.add_argument("--photo", type=Path, help="a JPEG, PNG or WebP file")
        elif step == "verify":
            p.add_argument("--reject", action="store_true", help="the work is not done: back to the crew")
        elif step == "close":
            p.add_argument("--reason", help="needed while one of its faults is still active")
        elif step == "defer":
            p.add_argument("--until", required=True, help="the new deadline: HH:MM or ISO 8601")
            p.add_argument("--reason", required=True)
        add_json(p)
        p.set_defaults(func=cmd_orders_step, step=step)
    p = orders.add_parser("export", help="work orders as CSV (to a file, or standard output)")
    _order_filters(p)
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_export, what="workorders")


def record_id(text: str) -> int | str:
    """A fault's or work order's id: a district's number, or at the city ``<district>:<number>``."""
    if text.isdigit() and int(text) >= 1:
        return int(text)
    district, _, number = text.rpartition(":")
    if district and number.isdigit() and int(number) >= 1:
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not a record id (a number, or at the city <district>:<number>)")


def _fault_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--active", action="store_true", help="open faults only")
    p.add_argument("--site")
    p.add_argument("--kind")
    p.add_argument("--since", help="opened at or after (HH:MM or ISO 8601)")
    p.add_argument("--limit", type=int)


def _order_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--open", action="store_true", help="open orders only, earliest deadline first")
    p.add_argument("--crew")
    p.add_argument("--site")
    p.add_argument("--state")
    p.add_argument("--limit", type=int)


def _query(args: argparse.Namespace, names: tuple[str, ...]) -> str:
    params: dict[str, str] = {}
    for name in names:
        value = getattr(args, name, None)
        if value is True:
            params[name] = "1"
        elif value not in (None, False):
            params[name] = str(value)
    return f"?{urlencode(params)}" if params else ""


FAULT_QUERY = ("active", "site", "kind", "since", "limit")
ORDER_QUERY = ("open", "crew", "site", "state", "limit")


def _out(args: argparse.Namespace, result: Any, text: str) -> int:
    print(json.dumps(result, ensure_ascii=False) if args.json else text)
    return EXIT_OK


def _place(loc: dict[str, Any]) -> str:
    parts = []
    if loc.get("controller"):
        point = loc["controller"]["id"]
        if loc.get("channel"):
            point += f"/{loc['channel']['id']}"
        parts.append(point)
    if loc.get("site"):
        parts.append(loc["site"]["name"])
    if loc.get("lat") is not None:
        parts.append(f"({loc['lat']:.4f}, {loc['lon']:.4f})")
    return " ".join(parts)


def _short(iso: str | None) -> str:
    return "" if not iso else iso[:16].replace("T", " ")


def fault_line(f: dict[str, Any]) -> str:
    flags = " chattering" if f.get("chattering") else ""
    under = f" under #{f['suppressed_by']}" if f.get("suppressed_by") else ""
    return (
        f"#{f['id']:<5} {f['severity']:<9} {f['status']:<14} {f['label']['zh']} {f['kind']}{flags}{under}  "
        f"{_place(f['location'])}  since {_short(f['first_seen'])}"
        + (f" x{f['occurrences']}" if f.get("occurrences", 1) > 1 else "")
        + f"  {f['evidence']}"
    )


def cmd_faults_list(args: argparse.Namespace) -> int:
    result = api(args, "GET", "/api/v1/faults" + _query(args, FAULT_QUERY))
    lines = [fault_line(f) for f in result["faults"]]
    return _out(args, result, "\n".join(lines) if lines else "none")


def cmd_faults_show(args: argparse.Namespace) -> int:
    f = api(args, "GET", f"/api/v1/faults/{args.id}")
    lines = [fault_line(f), f"  last seen {_short(f['last_seen'])}; luminaires {f['luminaires']} ({f['lighting']})"]
    if f.get("shelved"):
        lines.append(f"  shelved until {_short(f['shelved']['until'])} by {f['shelved']['by']}: {f['shelved']['reason']}")
    if f.get("work_orders"):
        lines.append("  work orders: " + ", ".join(f"#{o}" for o in f["work_orders"]))
    if f.get("children"):
        lines.append("  hides: " + ", ".join(f"#{c}" for c in f["children"]))
    for e in f.get("events", []):
        lines.append(f"  {_short(e['at'])} {e['event']}" + (f" by {e['person']}" if e["person"] else "") + (f": {e['note']}" if e["note"] else ""))
    return _out(args, f, "\n".join(lines))


def cmd_fault_action(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.action == "ack" and args.note:
        body["note"] = args.note
    if args.action == "shelve":
        body["reason"] = args.reason
        if args.until:
            body["until"] = args.until
        else:
            body["hours"] = args.hours
    f = api(args, "POST", f"/api/v1/faults/{args.id}/{args.action}", body)
    return _out(args, f, fault_line(f))


def cmd_lamps(args: argparse.Namespace) -> int:
    result = api(args, "GET", "/api/v1/maintenance/lamps" + _query(args, ("due", "limit")))
    lines = [
        f"{c['controller']}/{c['channel']:<12} {c['hours']:>9.1f} h of {c['rated_hours'] or 0:>7.0f} h"
        f" ({100 * (c['life_used'] or 0):5.1f}%){'  DUE' if c['due'] else ''}  {c['name']}"
        for c in result["channels"]
    ]
    return _out(args, result, "\n".join(lines) if lines else "none")


def cmd_relamp(args: argparse.Namespace) -> int:
    controller, sep, channel = args.channel.partition("/")
    if not sep or not channel:
        raise UsageError(f"give the channel as CONTROLLER/CHANNEL, not {args.channel!r}")
    result = api(args, "POST", "/api/v1/maintenance/relamp", {"controller": controller, "channel": channel, "note": args.note})
    return _out(args, result, f"{controller}/{channel}: burning hours start again (the old lamps had {result['hours_before']} h)")


def cmd_notifications(args: argparse.Namespace) -> int:
    result = api(args, "GET", f"/api/v1/notifications?limit={args.limit}")
    lines = [", ".join(f"{state} {n}" for state, n in sorted(result["summary"].items())) or "none"]
    for d in result["deliveries"]:
        lines.append(f"#{d['id']} {d['event']} to {d['webhook_id']}: {d['state']} after {d['attempts']} attempt(s)"
                     + (f"; last error: {d['last_error']}" if d["last_error"] else ""))
    return _out(args, result, "\n".join(lines))


def order_line(o: dict[str, Any]) -> str:
    due = o["due"]["deadline"]
    late = "  OVERDUE" if o["overdue"] else ""
    crew = f" crew {o['crew']}" if o["crew"] else ""
    evidence = "; ".join(f["evidence"] for f in o["faults"] if f.get("evidence"))
    return (
        f"#{o['id']:<5} {o['severity']:<9} {o['state']:<10} due {_short(due)}{late}{crew}  {o['title']}  "
        f"{_place(o['location'])}" + (f"  [{evidence}]" if evidence else "")
    )


def cmd_orders_list(args: argparse.Namespace) -> int:
    result = api(args, "GET", "/api/v1/workorders" + _query(args, ORDER_QUERY))
    lines = [order_line(o) for o in result["work_orders"]]
    return _out(args, result, "\n".join(lines) if lines else "none")


def _order_text(o: dict[str, Any]) -> str:
    lines = [order_line(o), f"  deadline: {o['due']['basis']}" + ("  (estimated calendar)" if o["due"]["estimated"] else "")]
    if o.get("reference"):
        lines.append(f"  reference: {o['reference']}")
    if o.get("deferred"):
        lines.append(f"  deferred until {_short(o['deferred']['until'])} by {o['deferred']['by']}: {o['deferred']['reason']}")
    for s in o["steps"]:
        lines.append(f"  {_short(s['at'])} {s['step']} by {s['person']}" + (f" ({s['crew']})" if s.get("crew") else "")
                     + (f": {s['note']}" if s.get("note") else "") + (f" [photo {s['photo'][:12]}]" if s.get("photo") else ""))
    return "\n".join(lines)


def cmd_orders_show(args: argparse.Namespace) -> int:
    o = api(args, "GET", f"/api/v1/workorders/{args.id}")
    return _out(args, o, _order_text(o))


def cmd_orders_file(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"faults": args.fault}
    for name in ("title", "description", "severity", "site", "controller", "channel", "lat", "lon", "crew", "note"):
        value = getattr(args, name)
        if value is not None:
            body[name] = value
    if args.hotline:
        body["source"], body["reference"] = "hotline", args.hotline
    o = api(args, "POST", "/api/v1/workorders", body)
    return _out(args, o, _order_text(o))


def cmd_orders_step(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.note:
        body["note"] = args.note
    step = args.step
    if step == "dispatch":
        body["crew"] = args.crew
    elif step == "feedback" and args.photo is not None:
        body["photo"] = _upload_photo(args, args.photo)
    elif step == "verify":
        body["ok"] = not args.reject
    elif step == "close" and args.reason:
        body["note"] = args.reason
    elif step == "defer":
        body["until"], body["note"] = args.until, args.reason
    o = api(args, "POST", f"/api/v1/workorders/{args.id}/{step}", body)
    return _out(args, o, _order_text(o))


PHOTO_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def _upload_photo(args: argparse.Namespace, path: Path) -> str:
    content_type = PHOTO_TYPES.get(path.suffix.lower())
    if content_type is None:
        raise UsageError(f"{path}: a photo is a .jpg, .png or .webp file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    status, payload = _raw(args, "POST", "/api/v1/photos", data, content_type)
    result = json.loads(payload)
    if status >= 400:
        raise ApiError(result.get("error") or f"HTTP {status}", status)
    digest: str = result["sha256"]
    return digest


def cmd_export(args: argparse.Namespace) -> int:
    names = FAULT_QUERY if args.what == "faults" else ORDER_QUERY
    status, payload = _raw(args, "GET", f"/api/v1/{args.what}.csv" + _query(args, names))
    if status >= 400:
        raise ApiError(json.loads(payload).get("error") or f"HTTP {status}", status)
    if args.output:
        Path(args.output).write_bytes(payload)
        print(f"{args.what} written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(payload.decode())
    return EXIT_OK


def _raw(args: argparse.Namespace, method: str, path: str, data: bytes | None = None, content_type: str | None = None) -> tuple[int, bytes]:
    """A request whose body or answer is not JSON (a photo, CSV), to the daemon and with the
    credential ``api`` would use."""
    import aiohttp  # start-up cost: only the commands that send or fetch files

    from lightctl.cli.apiclient import REQUEST_TIMEOUT_S, target
    from lightctl.config.loader import read_daemon_settings
    from lightctl.loop import run

    settings = read_daemon_settings(config_path(args))
    where = target(settings, url=args.url, token=args.token, cacert=args.cacert)
    headers = {"Authorization": f"Bearer {where.credential}"} if where.credential else {}
    if content_type is not None:
        headers["Content-Type"] = content_type

    async def go() -> tuple[int, bytes]:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session,
                session.request(method, where.url + path, data=data, headers=headers, ssl=where.ssl or True) as response,
            ):
                return response.status, await response.read()
        except aiohttp.ClientConnectionError as exc:
            raise ApiError(f"cannot reach the daemon at {where.url}: {exc}") from None
        except TimeoutError:
            raise ApiError(f"the daemon at {where.url} did not answer in {REQUEST_TIMEOUT_S:g} s") from None

    return run(go())
