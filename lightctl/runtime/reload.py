"""A config reload's report, and what a reload can and cannot change while the daemon runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from lightctl.inventory.index import Inventory
from lightctl.inventory.selectors import SelectorError
from lightctl.model.config import Config
from lightctl.model.desired import ChannelKey, ScheduleSource
from lightctl.model.installation import DaemonSettings
from lightctl.reconcile.engine import Engine
from lightctl.runtime.commands import CommandReport, Override
from lightctl.runtime.hooks import DaemonService
from lightctl.runtime.showrunner import ShowRunner
from scenes.model import SceneBook, UnknownScene
from schedules.builder import build as build_schedule

log = logging.getLogger("lightctl.daemon")

RESTART_SETTINGS = (
    "api_host", "api_port", "sim_control_port", "database", "log_format", "tls_cert", "tls_key", "plain_http_beyond_loopback",
)
"""Daemon settings a running daemon cannot take: they are reported as waiting for a restart."""


class ReloadRefused(ValueError):
    """The new config cannot be taken now; the daemon keeps the old one."""


@runtime_checkable
class Reloadable(Protocol):
    """A daemon service that takes a new config when the daemon's is reloaded."""

    async def reload(self, config: Config) -> None: ...


@dataclass(frozen=True, slots=True)
class ReloadReport:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    kept: int
    scenes_changed: bool
    schedule_changed: bool
    needs_restart: tuple[str, ...]
    command_id: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "controllers": {"added": list(self.added), "removed": list(self.removed), "changed": list(self.changed),
                            "kept": self.kept},
            "scenes_changed": self.scenes_changed,
            "schedule_changed": self.schedule_changed,
            "needs_restart": list(self.needs_restart),
            "command_id": self.command_id,
        }


def needing_restart(old: DaemonSettings, new: DaemonSettings) -> tuple[str, ...]:
    return tuple(name for name in RESTART_SETTINGS if getattr(old, name) != getattr(new, name))


class ReloadHost(Protocol):
    """What a reload needs of the daemon."""

    config: Config
    inventory: Inventory
    scenes: SceneBook
    schedule: ScheduleSource | None
    engine: Engine
    shows: ShowRunner
    overrides: list[Override]
    services: list[DaemonService]
    command_lock: asyncio.Lock

    def run_schedule(self) -> None: ...

    async def reconcile(
        self, reason: str, *, source: str = ..., force: bool = ..., force_keys: Iterable[ChannelKey] = ...
    ) -> CommandReport | None: ...


async def reload_daemon(daemon: ReloadHost, config: Config) -> ReloadReport:
    """Take a new, already validated config while running: controllers whose config did not
    change keep their sessions, the others are closed, made anew or added, and the field is
    reconciled. Refused, keeping the old config, while a show runs or when an operator's
    override or curtailment would no longer resolve (naming it). Settings a running daemon
    cannot take (its address, its database) are reported as waiting for a restart."""
    run = daemon.shows.current
    if run is not None and run.status in ("starting", "running", "holding"):
        raise ReloadRefused(f"show {run.show.config.id!r} is {run.status}: stop it first, then reload")
    inventory = Inventory(config)
    scenes = SceneBook(config.all_scenes(), inventory)
    for o in daemon.overrides:
        try:
            inventory.select(o.target)
            if o.kind == "override":
                scenes.states(o.scene)
        except (SelectorError, UnknownScene) as exc:
            raise ReloadRefused(f"{o.kind} #{o.id} ({o.scene} on {o.target!r}) would no longer apply: {exc}; "
                                f"end it first, then reload") from None
    schedule = build_schedule(config, inventory) if daemon.schedule is not None else None
    async with daemon.command_lock:
        changes = await daemon.engine.reconfigure(inventory)
        old = daemon.config
        daemon.config, daemon.inventory, daemon.scenes = config, inventory, scenes
        daemon.engine.settings = replace(
            daemon.engine.settings, concurrency=config.daemon.concurrency, deadline_s=config.daemon.deadline_s,
            confirm_retries=config.daemon.confirm_retries,
        )
        if schedule is not None:
            daemon.schedule = schedule
    for service in daemon.services:
        if isinstance(service, Reloadable):
            await service.reload(config)
    if schedule is not None:
        daemon.run_schedule()
    fresh = {(cid, ch.id) for cid in (*changes.added, *changes.changed) for ch in inventory.controllers[cid].controller.channels}
    report = await daemon.reconcile("config reloaded", source="reload", force_keys=fresh)
    result = ReloadReport(
        changes.added, changes.removed, changes.changed, changes.kept,
        scenes_changed=old.scenes != config.scenes, schedule_changed=old.schedule != config.schedule,
        needs_restart=needing_restart(old.daemon, config.daemon) + (("access",) if old.access != config.access else ()),
        command_id=report.command_id if report is not None else None,
    )
    log.info("config reloaded: %s", result.as_json())
    return result
