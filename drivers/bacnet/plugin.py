"""The BACnet plugin the registry finds (drivers.base.DriverPlugin)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from drivers.bacnet.profile import CHANNEL_KINDS, load_profile, profile_names
from drivers.bacnet.settings import BacnetSettings
from drivers.base import ConfigProblem, Driver, FloorClient
from lightctl.model.installation import RELEASE, ControllerConfig
from lightctl.model.values import ChannelState

if TYPE_CHECKING:
    from drivers.bacnet.sim import BacnetSimulatorHost


class BacnetPlugin:
    protocol = "bacnet"
    capabilities: frozenset[str] = frozenset({RELEASE})
    settings_model = BacnetSettings
    simulator_weight = 5.0
    """A simulated building costs bacpypes3 about 1.6 ms of CPU per request, several times a
    simulated Modbus cabinet: the benchmark gives BACnet simulators more processes."""

    def profile_names(self) -> Sequence[str]:
        return profile_names()

    def validate_controller(self, controller: ControllerConfig) -> list[ConfigProblem]:
        try:
            profile = load_profile(controller.profile)
        except KeyError:
            return [ConfigProblem(("profile",), f"unknown BACnet profile {controller.profile!r} "
                                  f"(known: {', '.join(profile_names())})")]
        problems: list[ConfigProblem] = []
        seen: dict[str, str] = {}
        fixed = {str(ref): what for what, ref in (("power", profile.power), ("energy", profile.energy)) if ref}
        for index, channel in enumerate(controller.channels):
            path: tuple[str | int, ...] = ("channels", index, "point")
            try:
                ref = profile.point_object(channel.point)
            except ValueError as exc:
                problems.append(ConfigProblem(path, str(exc)))
                continue
            if ref.kind not in CHANNEL_KINDS:
                problems.append(ConfigProblem(path, f"{ref.kind} cannot be commanded; channels are "
                                              f"{', '.join(sorted(CHANNEL_KINDS))}"))
            elif ref.kind == "multi-state-value" and not profile.scene_steps:
                problems.append(ConfigProblem(path, f"profile {profile.name!r} has no scene_steps for a "
                                              "multi-state-value channel"))
            key = str(ref)
            if ref.kind not in CHANNEL_KINDS:
                pass
            elif key in seen:
                problems.append(ConfigProblem(path, f"{key} is already channel {seen[key]!r}"))
            elif key in fixed:
                problems.append(ConfigProblem(path, f"{key} is the profile's {fixed[key]} object"))
            seen[key] = channel.id
        return problems

    def endpoint_key(self, controller: ControllerConfig) -> str:
        settings: BacnetSettings = controller.settings
        return f"{settings.host}:{settings.port}"

    def create_driver(self, controller: ControllerConfig) -> Driver[Any]:
        from drivers.bacnet.driver import BacnetDriver

        return BacnetDriver(controller)

    def create_simulator(self, controllers: Sequence[ControllerConfig], *, any_port: bool = False
                         ) -> BacnetSimulatorHost:
        from drivers.bacnet.sim import BacnetSimulatorHost

        return BacnetSimulatorHost(controllers, any_port=any_port)

    def create_floor_client(self, controller: ControllerConfig, states: Mapping[str, ChannelState]
                            ) -> FloorClient:
        from drivers.bacnet.floor import BacnetFloorClient

        return BacnetFloorClient(controller, states)


PLUGIN = BacnetPlugin()
