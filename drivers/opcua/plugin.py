"""The OPC UA plugin object the registry finds as ``drivers.opcua.PLUGIN``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from drivers.base import ConfigProblem, Driver
from drivers.opcua.profile import UnknownProfile, load_profile, profile_names
from drivers.opcua.settings import OpcUaSettings
from lightctl.model.installation import ControllerConfig
from lightctl.model.values import ChannelId, ChannelState

if TYPE_CHECKING:  # asyncua is imported only when a driver or simulator is made
    from drivers.opcua.floor import OpcUaFloorClient
    from drivers.opcua.sim import OpcUaSimulator


class OpcUaPlugin:
    protocol = "opcua"
    capabilities: frozenset[str] = frozenset()
    settings_model = OpcUaSettings

    def profile_names(self) -> Sequence[str]:
        return profile_names()

    def validate_controller(self, controller: ControllerConfig) -> list[ConfigProblem]:
        try:
            profile = load_profile(controller.profile)
        except UnknownProfile as exc:
            return [ConfigProblem(("profile",), str(exc))]
        problems = []
        points = Counter(str(ch.point) for ch in controller.channels)
        for i, channel in enumerate(controller.channels):
            point = str(channel.point)
            if not isinstance(channel.point, str) or not point.strip() or "/" in point:
                problems.append(
                    ConfigProblem(("channels", i, "point"), "an OPC UA point is the zone's browse name, e.g. deck-east")
                )
            elif points[point] > 1:
                problems.append(ConfigProblem(("channels", i, "point"), f"two channels on zone {point!r}"))
            if channel.colour != "none" and channel.colour not in profile.zone_variables:
                problems.append(
                    ConfigProblem(
                        ("channels", i, "luminaires"),
                        f"{channel.colour.upper()} luminaires, but profile {profile.name} has no colour variable",
                    )
                )
        return problems

    def endpoint_key(self, controller: ControllerConfig) -> str:
        settings: OpcUaSettings = controller.settings
        parsed = urlparse(settings.url)
        host, port = settings.host_port
        return f"{host.lower()}:{port}{parsed.path}"

    def create_driver(self, controller: ControllerConfig) -> Driver[Any]:
        from drivers.opcua.driver import OpcUaDriver

        return OpcUaDriver(controller)

    def create_floor_client(
        self, controller: ControllerConfig, states: Mapping[ChannelId, ChannelState]
    ) -> OpcUaFloorClient:
        from drivers.opcua.floor import OpcUaFloorClient

        return OpcUaFloorClient(controller, states)

    def create_simulator(self, controllers: Sequence[ControllerConfig], *, any_port: bool = False) -> OpcUaSimulator:
        from drivers.opcua.sim import OpcUaSimulator

        return OpcUaSimulator(controllers, any_port=any_port)

