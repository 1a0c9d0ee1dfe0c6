"""``lightctl``: the daemon, simulators, demo, and commands that talk to a running daemon."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from lightctl.cli import bacnet, dali, opcua, schedule
from lightctl.cli.apiclient import ApiError, call
from lightctl.config.problems import ConfigError
from lightctl.inventory.selectors import SelectorError
from lightctl.loop import run as run_loop
from lightctl.model.config import Config
from lightctl.resolve.loading import load_config
from lightctl.store import StoreError
from scenes.model import UnknownScene

DEFAULT_CONFIG = "config.yaml"
EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def load(args: argparse.Namespace) -> Config:
    return load_config(Path(args.config))


def cmd_config_check(args: argparse.Namespace) -> int:
    path = Path(args.file or args.config)
    config = load_config(path)
    from lightctl.inventory.index import Inventory

    inv = Inventory(config)
    luminaires = sum(b.count for b, *_ in inv.luminaire_batches())
    protocols = sorted({c.controller.protocol for c in inv.controllers.values()})
    print(
        f"{path}: valid: {len(inv.districts)} districts, {len(inv.sites)} sites, {len(inv.controllers)} controllers "
        f"({', '.join(protocols)}), {len(inv.channels)} channels, {len(inv.legacy)} legacy circuits, "
        f"{luminaires} luminaires, {len(config.all_scenes())} scenes"
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from lightctl.process.service import run_daemon

    run_loop(run_daemon(load(args)))
    return EXIT_OK


def cmd_sim(args: argparse.Namespace) -> int:
    from lightctl.process.service import run_simulators

    run_loop(run_simulators(load(args), Path(args.config), args.processes))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from lightctl.process.service import run_demo

    run_loop(run_demo(load(args), Path(args.config), args.processes))
    return EXIT_OK


def _print_outcome(result: dict[str, Any]) -> None:
    summary = result["summary"]
    what = "hand-back" if result["scene"] == "handback" else f"scene {result['scene']}"
    print(
        f"{what} on {result['target']}: {summary['confirmed']} confirmed, "
        f"{summary['unconfirmed']} unconfirmed, {summary['failed']} failed in {result['elapsed_s']:.3f} s "
        f"(command #{result['command_id']})"
    )
    for cid, outcome in result["controllers"].items():
        if outcome["status"] != "confirmed":
            print(f"  {cid}: {outcome['status']}: {outcome.get('error', '')}")


def _command(args: argparse.Namespace, path: str) -> int:
    """POST a command for ``--target`` ``--until``; exit 0 only if every controller confirmed."""
    body: dict[str, Any] = {"target": args.target, "until": args.until}
    result = run_loop(call(load(args), "POST", path, api=args.api, json=body))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        _print_outcome(result)
    all_confirmed = result["summary"]["unconfirmed"] == 0 and result["summary"]["failed"] == 0
    return EXIT_OK if all_confirmed else EXIT_INCOMPLETE


def cmd_scene_apply(args: argparse.Namespace) -> int:
    return _command(args, f"/api/v1/scenes/{args.name}/apply")


def cmd_handback(args: argparse.Namespace) -> int:
    return _command(args, "/api/v1/handback")


def cmd_override(args: argparse.Namespace) -> int:
    """Operators' overrides and hand-backs: list them, or end one (the schedule takes over)."""
    config = load(args)
    if args.override_command == "list":
        status = run_loop(call(config, "GET", "/api/v1/status", api=args.api))
        overrides = [o for o in status["overrides"] if o["kind"] == "override"]
        if args.json:
            print(json.dumps(overrides, ensure_ascii=False))
        for o in [] if args.json else overrides:
            until = f" until {o['until']}" if o["until"] else " until cleared"
            print(f"#{o['id']} {o['scene']} on {o['target']} by {o['user']}{until}")
        return EXIT_OK
    result = run_loop(call(config, "DELETE", f"/api/v1/overrides/{args.id}", api=args.api))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"override #{result['cleared']} cleared")
        if result["command"]:
            _print_outcome(result["command"])
    return EXIT_OK


def cmd_scene_list(args: argparse.Namespace) -> int:
    config = load(args)
    scenes = config.all_scenes()
    if args.json:
        print(json.dumps([{"id": s.id, "name": s.name, "rules": [r.model_dump() for r in s.rules]} for s in scenes.values()], ensure_ascii=False))
    else:
        for scene in scenes.values():
            print(f"{scene.id:24} {scene.name or ''}  ({len(scene.rules)} rule{'s' if len(scene.rules) != 1 else ''})")
    return EXIT_OK


def _scene_book(config: Config) -> Any:
    from lightctl.inventory.index import Inventory
    from scenes.model import SceneBook

    return SceneBook(config.all_scenes(), Inventory(config))


def cmd_scene_show(args: argparse.Namespace) -> int:
    book = _scene_book(load(args))
    scene = book.get(args.name)
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
    from lightctl.reconcile.explain import explain

    plan = explain(_scene_book(load(args)), args.name, args.target)
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
    config = load(args)
    if args.show_command == "list":
        result: Any = [{"id": s.id, "name": s.name, "target": s.target, "duration_s": s.duration_s, "loops": s.loops,
                        "cues": len(s.cues)} for s in config.shows]
        if not args.json:
            for show in result:
                print(f"{show['id']:24} {show['duration_s']:7g} s x{show['loops']}  {show['cues']} cues  {show['target']}  {show['name'] or ''}")
            return EXIT_OK
    elif args.show_command == "start":
        result = run_loop(call(config, "POST", f"/api/v1/shows/{args.name}/start", api=args.api))
    elif args.show_command == "stop":
        result = run_loop(call(config, "POST", "/api/v1/shows/stop", api=args.api))
    else:
        result = run_loop(call(config, "GET", "/api/v1/shows/status", api=args.api))
        result = result["run"]
    if args.json or result is None:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"show {result['show']} run #{result['run_id']}: {result['status']}, loop {result['loop'] + 1}/{result['loops']}, "
              f"cue {result['cue'] + 1}/{result['cues']}, {result['controllers']} controllers, {result['sent']} cue sends, "
              f"{result['failed']} failed, {result['skipped']} caught up")
    return EXIT_OK


def cmd_curtail(args: argparse.Namespace) -> int:
    config = load(args)
    if args.curtail_command == "apply":
        body: dict[str, Any] = {"target": args.target, "level": 0 if args.off else args.level, "until": args.until}
        result = run_loop(call(config, "POST", "/api/v1/curtailments", api=args.api, json=body))
        if not args.json:
            shed = result["shed"]
            print(f"curtailment #{result['curtailment_id']} on {args.target}: shed {shed['channels']} channels, "
                  f"{shed['luminaires']} luminaires, about {shed['kw']:.1f} kW")
            _print_outcome(result["command"])
    elif args.curtail_command == "list":
        result = run_loop(call(config, "GET", "/api/v1/curtailments", api=args.api))
        if not args.json:
            for row in result:
                print(f"#{row['id']} {row['target']} at most {row['cap']:g}% by {row['user']} since {row['created_at']}: "
                      f"{row['luminaires']} luminaires, {row['shed_kw']:.1f} kW shed")
    else:
        path = "/api/v1/curtailments" + (f"/{args.id}" if args.id is not None else "")
        result = run_loop(call(config, "DELETE", path, api=args.api))
        if not args.json:
            print(f"restored {result['restored']}")
            if result["command"]:
                _print_outcome(result["command"])
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    status = run_loop(call(load(args), "GET", "/api/v1/status", api=args.api))
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
        until = f" until {override['until']}" if override["until"] else ""
        print(f"  {override['kind']} #{override['id']}: {override['scene']} on {override['target']} by {override['user']}{until}")
    for cid, c in sorted(status["controllers"].items()):
        if c["link"] != "online" or c["pending"] or c["faults"]:
            print(f"  {cid:20} {c['link']:8} pending {c['pending']:3} {', '.join(c['faults'])} {c['last_error'] or ''}")
    return EXIT_OK


def cmd_bench_switch(args: argparse.Namespace) -> int:
    from lightctl.bench.runner import run_switch_bench

    return run_loop(run_switch_bench(args))


def cmd_bench_store(args: argparse.Namespace) -> int:
    from lightctl.bench.store import run_store_bench

    return run_loop(run_store_bench(args))


def cmd_bench_show(args: argparse.Namespace) -> int:
    from lightctl.bench.runner import run_show_bench

    return run_loop(run_show_bench(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightctl", description="Two Rivers Four Banks landscape lighting control")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    parser.add_argument("--api", help="daemon API base URL (default: from the config)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the controller daemon")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("sim", help="run simulators for every controller in the config")
    p.add_argument("--processes", type=int, default=1)
    p.set_defaults(func=cmd_sim)
    p = sub.add_parser("demo", help="simulators + daemon + console on 127.0.0.1")
    p.add_argument("--processes", type=int, default=1)
    p.set_defaults(func=cmd_demo)

    config = sub.add_parser("config", help="configuration").add_subparsers(dest="config_command", required=True)
    p = config.add_parser("check", help="validate a config file")
    p.add_argument("file", nargs="?")
    p.set_defaults(func=cmd_config_check)

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

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench_command", required=True)
    p = bench.add_parser("switch", help="time the one switch against simulators, with the floor")
    p.add_argument("--controllers", type=int, default=1000)
    p.add_argument("--protocol", default="modbus", help="modbus, opcua, dali, bacnet or mixed")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--processes", type=int, default=0, help="simulator processes (default: by size)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_switch)
    p = bench.add_parser("store", help="the store's writer: state changes, readings and command records per second")
    p.add_argument("--events", type=int, default=20_000, help="state-change events of 8 channels each")
    p.add_argument("--readings", type=int, default=50_000)
    p.add_argument("--controllers", type=int, default=1000, help="results per command record")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_store)
    p = bench.add_parser("show", help="a 10-cue show: spread of each cue's arrival across controllers")
    p.add_argument("--controllers", type=int, default=200)
    p.add_argument("--protocol", default="mixed", help="modbus, opcua, dali, bacnet, a comma-separated list of them, or mixed")
    p.add_argument("--processes", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_show)

    for module in (schedule, opcua, dali, bacnet):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"lightctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (UnknownScene, SelectorError) as exc:
        print(f"lightctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as exc:
        print(f"lightctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if exc.status is None else EXIT_INCOMPLETE
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
