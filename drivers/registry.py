"""The one map from a config's ``protocol:`` value to its driver plugin.

Adding a protocol adds a subpackage and one line here; nothing else in the core changes. Plugins
are imported on first use so that a daemon with only Modbus controllers never imports asyncua.
"""

from __future__ import annotations

import importlib
from functools import cache

from drivers.base import DriverPlugin

PLUGIN_MODULES: dict[str, str] = {
    "modbus": "drivers.modbus",
    "opcua": "drivers.opcua",
    "dali": "drivers.dali",
    "bacnet": "drivers.bacnet",
}


class UnknownProtocol(LookupError):
    pass


def known_protocols() -> list[str]:
    return sorted(PLUGIN_MODULES)


@cache
def get_plugin(protocol: str) -> DriverPlugin:
    module_name = PLUGIN_MODULES.get(protocol)
    if module_name is None:
        raise UnknownProtocol(f"unknown protocol {protocol!r} (known: {', '.join(known_protocols())})")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise UnknownProtocol(f"protocol {protocol!r} is not part of this build") from exc
        raise
    plugin: DriverPlugin | None = getattr(module, "PLUGIN", None)
    if plugin is None:
        raise UnknownProtocol(f"protocol {protocol!r} is not part of this build ({module_name} has no PLUGIN)")
    return plugin
