"""Shared helpers of the schedule tests (no tests here): the test installation and instants."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ruamel.yaml import YAML

from lightctl.inventory.index import Inventory
from lightctl.model.config import Config
from schedules.builder import build
from schedules.engine import Schedule

DATA = Path(__file__).parent / "data"
CONFIG_FILE = DATA / "schedule_config.yaml"
TZ = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """``"2026-02-16 23:30"`` in Chongqing time."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def load_data(path: Path = CONFIG_FILE) -> Any:
    return YAML(typ="rt").load(path.read_text(encoding="utf-8"))


def installation_config(data: Any | None = None) -> Config:
    """Shape-validated config (layer 1); the protocol layer needs drivers this branch does not have."""
    return Config.model_validate(load_data() if data is None else data)


def schedule_of(config: Config) -> tuple[Schedule, Inventory]:
    inventory = Inventory(config)
    return build(config, inventory), inventory


def active_ids(schedule: Schedule, instant: datetime) -> list[str]:
    return [entry.reason.split(":")[0] for entry in schedule.active(instant)]
