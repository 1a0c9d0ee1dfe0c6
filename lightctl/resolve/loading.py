"""Loading an installation's config with every check, those that need it resolved included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightctl.config import loader
from lightctl.model.config import Config
from lightctl.resolve.checks import installation_checks


def load_config(path: str | Path) -> Config:
    """Read and validate a config file completely; raises ConfigError listing every problem."""
    return loader.read_config(path, checks=(installation_checks,))


def config_from_data(data: Any, *, source: str = "<config>") -> Config:
    """Validate already-parsed data completely (plain dicts give no line numbers)."""
    return loader.config_from_data(data, source=source, checks=(installation_checks,))
