"""The long-running commands and the config check: ``run``, ``sim``, ``demo``, ``config check``."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from lightctl.cli.common import EXIT_OK, UsageError, api, config_path, full_config

if TYPE_CHECKING:
    from lightctl.model.config import Config


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the controller daemon")
    p.add_argument("--port", type=_port, help="API port (default: daemon.api_port of the config; 0 takes any free one)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("sim", help="run simulators for every controller in the config")
    p.add_argument("--processes", type=int, default=1)
    p.set_defaults(func=cmd_sim)
    p = sub.add_parser("demo", help="simulators + daemon + console on 127.0.0.1")
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--federated", action="store_true",
                   help="Mosquitto, a district daemon per district of the config and the city daemon with its console")
    p.add_argument("--port", type=_port, help="API and console port (default: daemon.api_port of the config)")
    p.set_defaults(func=cmd_demo)

    config = sub.add_parser("config", help="configuration").add_subparsers(dest="config_command", required=True)
    p = config.add_parser("check", help="validate a config file")
    p.add_argument("file", nargs="?")
    p.set_defaults(func=cmd_config_check)
    p = config.add_parser("reload", help="make the running daemon read its config file again (validated first)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_config_reload)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port {text!r}: a number 0-65535") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"bad port {port}: 0-65535")
    return port


def _with_port(config: Config, port: int | None) -> Config:
    if port is None:
        return config
    return config.model_copy(update={"daemon": config.daemon.model_copy(update={"api_port": port})})


def cmd_config_check(args: argparse.Namespace) -> int:
    from lightctl.inventory.index import Inventory
    from lightctl.resolve.loading import load_config

    path = args.file or args.config
    config = load_config(path)
    inv = Inventory(config)
    luminaires = sum(b.count for b, *_ in inv.luminaire_batches())
    protocols = sorted({c.controller.protocol for c in inv.controllers.values()})
    print(
        f"{path}: valid: {len(inv.districts)} districts, {len(inv.sites)} sites, {len(inv.controllers)} controllers "
        f"({', '.join(protocols)}), {len(inv.channels)} channels, {len(inv.legacy)} legacy circuits, "
        f"{luminaires} luminaires, {len(config.all_scenes())} scenes"
    )
    return EXIT_OK


def cmd_config_reload(args: argparse.Namespace) -> int:
    result = api(args, "POST", "/api/v1/config/reload")
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return EXIT_OK
    c = result["controllers"]
    print(f"config reloaded: controllers {len(c['added'])} added, {len(c['removed'])} removed, {len(c['changed'])} changed, "
          f"{c['kept']} kept with their sessions; scenes {'changed' if result['scenes_changed'] else 'unchanged'}, "
          f"schedule {'changed' if result['schedule_changed'] else 'unchanged'}")
    if result["needs_restart"]:
        waiting = [name if name == "access" else f"daemon.{name}" for name in result["needs_restart"]]
        print(f"  waiting for a restart: {', '.join(waiting)}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from lightctl.federation.mqtt import FederationSetupError
    from lightctl.loop import run
    from lightctl.process.federated import is_city, run_city
    from lightctl.process.service import run_daemon
    from lightctl.store import StoreError
    from web.app import TlsSetupError

    config = _with_port(full_config(args), args.port)
    try:
        if is_city(config):
            run(run_city(config, verbose=args.verbose, config_path=config_path(args)))
        else:
            run(run_daemon(config, verbose=args.verbose, config_path=config_path(args)))
    except (StoreError, TlsSetupError, FederationSetupError) as exc:  # a database, certificate or broker password it cannot use: said plainly
        raise UsageError(str(exc)) from None
    return EXIT_OK


def cmd_sim(args: argparse.Namespace) -> int:
    from lightctl.loop import run
    from lightctl.process.service import run_simulators

    run(run_simulators(full_config(args), config_path(args), args.processes))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from lightctl.loop import run
    from lightctl.process.federated import run_federated_demo
    from lightctl.process.service import run_demo

    demo = run_federated_demo if args.federated else run_demo
    run(demo(_with_port(full_config(args), args.port), config_path(args), args.processes, verbose=args.verbose))
    return EXIT_OK
