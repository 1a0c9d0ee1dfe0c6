"""DALI through Ethernet gateways (daliserver v2 over TCP, Lunatone-style WebSocket raw frames)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drivers.base import ConfigProblem, Driver, FloorClient, SimulatorHost
from drivers.dali.model import DaliSettings, dali_settings, load_profiles
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelId, ChannelState


class DaliPlugin:
    protocol = "dali"
    capabilities: frozenset[str] = frozenset()
    settings_model = DaliSettings

    def profile_names(self) -> Sequence[str]:
        return sorted(load_profiles())

    def validate_controller(self, controller: ControllerConfig) -> list[ConfigProblem]:
        from drivers.dali.model import validate

        return validate(controller)

    def endpoint_key(self, controller: ControllerConfig) -> str:
        settings = dali_settings(controller)
        if settings.gateway == "daliserver":
            from drivers.dali.model import line_port

            profile = load_profiles().get(controller.profile)
            ports = ",".join(str(line_port(settings, profile, line)) for line in settings.lines)
            return f"{settings.host}:{ports}"
        return f"{settings.host}:{settings.port or ''}{settings.path}"

    def create_driver(self, controller: ControllerConfig) -> Driver[Any]:
        from drivers.dali.driver import DaliDriver

        return DaliDriver(controller)

    def create_floor_client(self, controller: ControllerConfig, states: Mapping[ChannelId, ChannelState]) -> FloorClient:
        from drivers.dali.floor import DaliFloorClient

        return DaliFloorClient(controller, states)

    def create_simulator(self, controllers: Sequence[ControllerConfig], *, any_port: bool = False) -> SimulatorHost:
        from drivers.dali.sim import DaliSimulatorHost

        return DaliSimulatorHost(controllers, any_port=any_port)


PLUGIN = DaliPlugin()
