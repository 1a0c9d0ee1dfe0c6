"""``lightctl dali scan`` and ``lightctl dali store-scenes``: commissioning for crews."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from typing import IO, TYPE_CHECKING, Any

from lightctl.config.problems import ConfigError

if TYPE_CHECKING:
    from drivers.dali.commissioning import GearInfo
    from lightctl.model.config import Config
    from lightctl.model.installation import ControllerConfig
    from lightctl.model.values import ChannelId, ChannelState

DEFAULT_CONFIG = "config.yaml"
DEVICE_TYPES = {0: "fluorescent", 1: "emergency", 2: "HID", 3: "halogen", 4: "incandescent", 5: "0-10V",
                6: "LED", 7: "switch", 8: "colour (DT8)", 254: "none", 255: "several"}


def register(subparsers: Any) -> None:
    dali = subparsers.add_parser("dali", help="DALI commissioning: scan lines, store scenes in gear")
    sub = dali.add_subparsers(dest="dali_command", required=True)
    scan = sub.add_parser("scan", help="list the gear found on a controller's lines")
    scan.add_argument("controller", help="controller id (protocol: dali)")
    scan.add_argument("--line", type=int, help="only this line")
    scan.add_argument("--config", default=argparse.SUPPRESS, help="config file (also accepted before 'dali')")
    scan.add_argument("--json", action="store_true", help="machine-readable output")
    scan.set_defaults(func=scan_main)
    store = sub.add_parser("store-scenes", help="write the configured scenes into the gear (for GoToScene)")
    store.add_argument("controllers", nargs="*", help="controller ids (default: every DALI controller with scenes)")
    store.add_argument("--config", default=argparse.SUPPRESS, help="config file (also accepted before 'dali')")
    store.set_defaults(func=store_main)


def _controller(config: Config, controller_id: str) -> ControllerConfig:
    for ctrl in config.controllers():
        if ctrl.id == controller_id:
            if ctrl.protocol != "dali":
                raise SystemExit(f"{controller_id} is a {ctrl.protocol} controller, not DALI")
            return ctrl
    raise SystemExit(f"no controller {controller_id!r} in the configuration")


class ProgressBar:
    """A scan's progress, redrawn in place on a terminal; elsewhere (a log, a pipe) only the
    finished line is written, so that captured output holds no carriage-return frames."""

    def __init__(self, out: IO[str], label: str, width: int = 32) -> None:
        self.out, self.label, self.width = out, label, width
        self.live = out.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.live and done != total:
            return
        filled = self.width * done // total
        start = "\r" if self.live else ""
        self.out.write(f"{start}{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}")
        if done == total:
            self.out.write("\n")
        self.out.flush()


def format_gear(found: list[GearInfo]) -> str:
    lines = [f"{'line':>4} {'addr':>4}  {'device type':<13} {'groups':<20} {'level':>7} {'power-on':>8}  lamp"]
    for gear in found:
        dtype = DEVICE_TYPES.get(gear.device_type, str(gear.device_type)) if gear.device_type is not None else "?"
        groups = ",".join(str(g) for g in gear.groups) or "-"
        level = "?" if gear.level is None else f"{gear.level:.1f}%"
        power_on = "?" if gear.power_on_level is None else f"{gear.power_on_level:.1f}%"
        lamp = "FAILED" if gear.lamp_failure else "ok"
        if gear.gear_failure:
            lamp += " (gear failure)"
        lines.append(f"{gear.line:>4} {gear.address:>4}  {dtype:<13} {groups:<20} {level:>7} {power_on:>8}  {lamp}")
    return "\n".join(lines)


async def run_scan(controller: ControllerConfig, line: int | None, out: IO[str], err: IO[str], as_json: bool) -> int:
    from drivers.base import DriverError  # the DALI driver and python-dali: when the command runs
    from drivers.dali.commissioning import scan_line
    from drivers.dali.driver import DaliDriver

    driver = DaliDriver(controller)
    lines = [line] if line is not None else sorted(driver.lines)
    unknown = [n for n in lines if n not in driver.lines]
    if unknown:
        err.write(f"{controller.id} has no line {unknown[0]} (lines: {sorted(driver.lines)})\n")
        return 2
    found: list[GearInfo] = []
    try:
        await driver.connect()
        for number in lines:
            found += await scan_line(driver, number, ProgressBar(err, f"{controller.id} line {number}"))
    except DriverError as exc:
        err.write(f"\nscan failed: {exc.kind}: {exc}\n")
        return 1
    finally:
        await driver.close()
    if as_json:
        json.dump([asdict(g) for g in found], out, ensure_ascii=False, indent=1)
        out.write("\n")
    else:
        out.write(format_gear(found) + "\n")
        out.write(f"{len(found)} gear found on {controller.id} line(s) {', '.join(map(str, lines))}\n")
    return 0


def configured_scenes(config: Config, controller: ControllerConfig) -> dict[int, Mapping[ChannelId, ChannelState]]:
    """The config's scenes named in the controller's ``scenes:`` (DALI number -> scene id),
    resolved against the inventory as the daemon resolves them."""
    from lightctl.inventory.index import Inventory
    from scenes.model import SceneBook

    book = SceneBook(config.all_scenes(), Inventory(config))
    out: dict[int, Mapping[ChannelId, ChannelState]] = {}
    for number, scene_id in controller.settings.scenes.items():
        states = book.states(scene_id)
        out[number] = {ch: state for (cid, ch), state in states.items() if cid == controller.id}
    return out


async def run_store(config: Config, controllers: list[ControllerConfig], out: IO[str], err: IO[str]) -> int:
    from drivers.base import DriverError  # the DALI driver and python-dali: when the command runs
    from drivers.dali.commissioning import store_scenes
    from drivers.dali.driver import DaliDriver

    failed = 0
    for controller in controllers:
        try:
            scenes = configured_scenes(config, controller)
        except KeyError as exc:  # scenes.model.UnknownScene
            err.write(f"{controller.id}: {exc}\n")
            failed += 1
            continue
        if not scenes:
            continue
        driver = DaliDriver(controller)
        try:
            await driver.connect()
            sent = await store_scenes(driver, scenes)
            names = ", ".join(f"{n}={controller.settings.scenes[n]}" for n in sorted(scenes))
            out.write(f"{controller.id}: stored scenes {names} in {sent} frame(s)\n")
        except DriverError as exc:
            err.write(f"{controller.id}: {exc.kind}: {exc}\n")
            failed += 1
        finally:
            await driver.close()
    return 1 if failed else 0


def _load(path: str) -> Config:
    from lightctl.resolve.loading import load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None


def _config_path(args: argparse.Namespace) -> str:
    return str(getattr(args, "config", DEFAULT_CONFIG))


def scan_main(args: argparse.Namespace) -> int:
    config = _load(_config_path(args))
    controller = _controller(config, args.controller)
    return asyncio.run(run_scan(controller, args.line, sys.stdout, sys.stderr, args.json))


def store_main(args: argparse.Namespace) -> int:
    config = _load(_config_path(args))
    if args.controllers:
        controllers = [_controller(config, cid) for cid in args.controllers]
    else:
        controllers = [c for c in config.controllers() if c.protocol == "dali" and c.settings.scenes]
    return asyncio.run(run_store(config, controllers, sys.stdout, sys.stderr))
