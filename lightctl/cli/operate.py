"""Operating commands, all through the running daemon's API except what only reads the config:
the one switch (``scene apply``), hand-back, overrides, light shows, curtailment and status."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from lightctl.cli.common import EXIT_INCOMPLETE, EXIT_OK, UsageError, api, full_config, print_outcome

if TYPE_CHECKING:
    from scenes.model import SceneBook


def register(sub: Any) -> None:
    scene = sub.add_parser("scene", help="scenes").add_subparsers(dest="scene_command", required=True)
    p = scene.add_parser("apply", help="apply a scene now (the one switch)")
    p.add_argument("name")
    p.add_argument("--target", default="*", help="selector (default: *)")
    p.add_argument(
        "--until", default="next",
        help="hold until: 'next' scheduled transition (default), 'none' (until cleared), HH:MM or ISO 8601",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_scene_apply)
    p = scene.add_parser("list", help="list scenes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_scene_list)
    p = scene.add_parser("show", help="a scene's rules and what it reaches")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_scene_show)
    p = scene.add_parser("explain", help="the operations a scene sends, per controller (nothing is sent)")
    p.add_argument("name")
    p.add_argument("--target", default="*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_scene_explain)

    p = sub.add_parser("handback", help="hand channels back to their owners' control (BACnet buildings)")
    p.add_argument("target", help="selector, e.g. site:jiangbeizui-towers or protocol:bacnet")
    p.add_argument(
        "--until", default="next",
        help="until: 'next' scheduled transition (default), 'none' (until a scene takes them back), HH:MM or ISO 8601",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_handback)

    override = sub.add_parser("override", help="operators' overrides and hand-backs").add_subparsers(
        dest="override_command", required=True
    )
    p = override.add_parser("list", help="overrides in force")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_override)
    p = override.add_parser("clear", help="end an override now: the schedule takes those channels back")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_override)

    show = sub.add_parser("show", help="light shows").add_subparsers(dest="show_command", required=True)
    for name, text in (("list", "configured shows"), ("start", "start a show"), ("stop", "stop the running show"),
                       ("status", "the running or last show")):
        p = show.add_parser(name, help=text)
        if name == "start":
            p.add_argument("name")
            p.add_argument("--anyway", action="store_true",
                           help="start although overrides or curtailments hold some of its channels (they keep them)")
            p.add_argument("--clear-overrides", action="store_true",
                           help="end the operator overrides on the show's channels first (curtailments stay)")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_show)

    curtail = sub.add_parser("curtail", help="emergency load shedding").add_subparsers(dest="curtail_command", required=True)
    p = curtail.add_parser("apply", help="switch off (--off) or dim (--level N) a selector, above everything")
    p.add_argument("--target", required=True)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--off", action="store_true")
    group.add_argument("--level", type=float)
    p.add_argument("--until", default="none", help="'none' (until restored, the default), 'next' transition, HH:MM or ISO 8601")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_curtail)
    p = curtail.add_parser("list", help="curtailments in force and what they shed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_curtail)
    p = curtail.add_parser("restore", help="end one curtailment, or all")
    p.add_argument("id", nargs="?", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_curtail)

    p = sub.add_parser("status", help="status of a running daemon")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)


def _command(args: argparse.Namespace, path: str) -> int:
    """POST a command for ``--target`` ``--until``; exit 0 only if every controller confirmed."""
    body: dict[str, Any] = {"target": args.target, "until": args.until}
    result = api(args, "POST", path, body)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_outcome(result)
    all_confirmed = result["summary"]["unconfirmed"] == 0 and result["summary"]["failed"] == 0
    return EXIT_OK if all_confirmed else EXIT_INCOMPLETE


def cmd_scene_apply(args: argparse.Namespace) -> int:
    return _command(args, f"/api/v1/scenes/{args.name}/apply")


def cmd_handback(args: argparse.Namespace) -> int:
    return _command(args, "/api/v1/handback")


def cmd_override(args: argparse.Namespace) -> int:
    """Operators' overrides and hand-backs: list them, or end one (the schedule takes over)."""
    if args.override_command == "list":
        status = api(args, "GET", "/api/v1/status")
        overrides = [o for o in status["overrides"] if o["kind"] == "override"]
        if args.json:
            print(json.dumps(overrides, ensure_ascii=False))
        elif not overrides:
            print("no overrides in force")
        for o in [] if args.json else overrides:
            until = f" until {o['until']}" if o["until"] else " until cleared"
            print(f"#{o['id']} {o['scene']} on {o['target']} by {o['user']}{until}")
        return EXIT_OK
    result = api(args, "DELETE", f"/api/v1/overrides/{args.id}")
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"override #{result['cleared']} cleared")
        if result["command"]:
            print_outcome(result["command"])
    return EXIT_OK


def cmd_scene_list(args: argparse.Namespace) -> int:
    config = full_config(args)
    scenes = config.all_scenes()
    if args.json:
        print(json.dumps([{"id": s.id, "name": s.name, "rules": [r.model_dump() for r in s.rules]} for s in scenes.values()], ensure_ascii=False))
    else:
        for scene in scenes.values():
            print(f"{scene.id:24} {scene.name or ''}  ({len(scene.rules)} rule{'s' if len(scene.rules) != 1 else ''})")
    return EXIT_OK


def _scene_book(args: argparse.Namespace) -> SceneBook:
    from lightctl.inventory.index import Inventory
    from scenes.model import SceneBook

    config = full_config(args)
    return SceneBook(config.all_scenes(), Inventory(config))


def cmd_scene_show(args: argparse.Namespace) -> int:
    from scenes.model import UnknownScene

    book = _scene_book(args)
    try:
        scene = book.get(args.name)
    except UnknownScene as exc:
        raise UsageError(str(exc)) from None
    states = book.desired(scene.id)
    commanded = book.states(scene.id)
    on = sum(1 for st in commanded.values() if st.on)
    handed_back = len(states) - len(commanded)
    if args.json:
        print(json.dumps({"id": scene.id, "name": scene.name, "base": scene.base,
                          "rules": [r.model_dump(mode="json") for r in scene.rules], "channels": len(states), "channels_on": on,
                          "channels_handed_back": handed_back},
                         ensure_ascii=False))
        return EXIT_OK
    print(f"{scene.id}: {scene.name or ''}" + (f" (builds on {scene.base})" if scene.base else ""))
    for rule in scene.rules:
        colour = f" colour {rule.colour}" if rule.colour else ""
        state = "handed back to the owner" if rule.handback else f"on {rule.level:g}%" if rule.on else "off"
        print(f"  {rule.target:40} {state}{colour}" + (f" fade {rule.fade_s:g} s" if rule.fade_s else ""))
    back = f", {handed_back} handed back" if handed_back else ""
    print(f"reaches {len(states)} channels on {len({k[0] for k in states})} controllers; {on} on{back}")
    return EXIT_OK


def cmd_scene_explain(args: argparse.Namespace) -> int:
    from lightctl.inventory.selectors import SelectorError
    from lightctl.reconcile.explain import explain
    from scenes.model import UnknownScene

    try:
        plan = explain(_scene_book(args), args.name, args.target)
    except (UnknownScene, SelectorError) as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(plan, ensure_ascii=False))
        return EXIT_OK
    total = 0
    for entry in plan:
        print(f"{entry['controller']} ({entry['protocol']}, {entry['channels']} channels)")
        for op in entry["operations"]:
            total += 1
            print(f"  {op['kind']:18} {op['target']:32} {op['detail']}")
    print(f"{total} operations on {len(plan)} controllers (read-back not shown: one per controller)")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    if args.show_command == "list":
        config = full_config(args)
        result: Any = [{"id": s.id, "name": s.name, "target": s.target, "duration_s": s.duration_s, "loops": s.loops,
                        "cues": len(s.cues)} for s in config.shows]
        if not args.json:
            for show in result:
                print(f"{show['id']:24} {show['duration_s']:7g} s x{show['loops']}  {show['cues']} cues  {show['target']}  {show['name'] or ''}")
            return EXIT_OK
    elif args.show_command == "start":
        body = {"anyway": args.anyway, "clear_overrides": args.clear_overrides}
        result = api(args, "POST", f"/api/v1/shows/{args.name}/start", body)
    elif args.show_command == "stop":
        result = api(args, "POST", "/api/v1/shows/stop")
    else:
        result = api(args, "GET", "/api/v1/shows/status")
        result = result["run"]
    if args.json or result is None:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"show {result['show']} run #{result['run_id']}: {result['status']}, loop {result['loop'] + 1}/{result['loops']}, "
              f"cue {result['cue'] + 1}/{result['cues']}, {result['controllers']} controllers, {result['sent']} cue sends, "
              f"{result['failed']} failed, {result['skipped']} caught up")
        for hold in result.get("held_back", []):
            print(f"  held back: {hold['description']}")
        for hold in result.get("capped", []):
            print(f"  capped: {hold['description']}")
    return EXIT_OK


def cmd_curtail(args: argparse.Namespace) -> int:
    if args.curtail_command == "apply":
        body: dict[str, Any] = {"target": args.target, "level": 0 if args.off else args.level, "until": args.until}
        result = api(args, "POST", "/api/v1/curtailments", body)
        if not args.json:
            shed = result["shed"]
            print(f"curtailment #{result['curtailment_id']} on {args.target}: shed {shed['channels']} channels, "
                  f"{shed['luminaires']} luminaires, about {shed['kw']:.1f} kW")
            print_outcome(result["command"])
    elif args.curtail_command == "list":
        result = api(args, "GET", "/api/v1/curtailments")
        if not args.json:
            if not result:
                print("no curtailments in force")
            for row in result:
                print(f"#{row['id']} {row['target']} at most {row['cap']:g}% by {row['user']} since {row['created_at']}: "
                      f"{row['luminaires']} luminaires, {row['shed_kw']:.1f} kW shed")
    else:
        path = "/api/v1/curtailments" + (f"/{args.id}" if args.id is not None else "")
        result = api(args, "DELETE", path)
        if not args.json:
            print(f"restored {result['restored']}")
            if result["command"]:
                print_outcome(result["command"])
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    status = api(args, "GET", "/api/v1/status")
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
        return EXIT_OK
    print(f"{status['installation']}  {status['now']}")
    print(f"controllers online {status['controllers_online']}/{status['controllers_total']}, channels pending {status['channels_pending']}, "
          f"handed back to their owners {status['channels_handed_back']}")
    store = status.get("store") or {}
    if store and not store["healthy"]:
        print(f"store UNHEALTHY since {store['unhealthy_since']}: {store['last_error']} "
              f"({store['failed_batches']} failed batches, {store['observations_pending']} observations waiting)")
    if store.get("observations_dropped") or store.get("observations_rejected"):
        print(f"store: {store['observations_dropped']} observation records dropped, "
              f"{store['observations_rejected']} refused, since the daemon started")
    for override in status["overrides"]:
        until = f" until {override['until']}" if override["until"] else " until cleared"
        if override["kind"] == "curtail":
            what = f"at most {override['cap']:g}%" if override["cap"] else "off"
            print(f"  curtailment #{override['id']}: {override['target']} {what} by {override['user']}{until}")
        else:
            print(f"  {override['kind']} #{override['id']}: {override['scene']} on {override['target']} by {override['user']}{until}")
    for cid, c in sorted(status["controllers"].items()):
        if c["link"] != "online" or c["pending"] or c["faults"]:
            print(f"  {cid:20} {c['link']:8} pending {c['pending']:3} {', '.join(c['faults'])} {c['last_error'] or ''}")
    return EXIT_OK
