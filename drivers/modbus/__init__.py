"""Modbus TCP cabinet controllers: the plugin the registry loads for ``protocol: modbus``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from drivers.base import ConfigProblem, Driver
from drivers.modbus.driver import ModbusDriver, modbus_settings
from drivers.modbus.profile import profiles, refused_profiles
from drivers.modbus.settings import ModbusSettings
from lightctl.model.values import ChannelId, ChannelState

if TYPE_CHECKING:
    from drivers.modbus.floor import ModbusFloorClient
    from drivers.modbus.sim import ModbusSimulator
    from lightctl.model.installation import ControllerConfig

__all__ = ["PLUGIN", "ModbusDriver", "ModbusPlugin", "ModbusSettings"]


class ModbusPlugin:
    protocol = "modbus"
    capabilities: frozenset[str] = frozenset()
    settings_model = ModbusSettings

    def profile_names(self) -> Sequence[str]:
        return sorted(profiles())

    def validate_controller(self, controller: ControllerConfig) -> list[ConfigProblem]:
        known = profiles()
        profile = known.get(controller.profile)
        if (refused := refused_profiles().get(controller.profile)) is not None:
            return [ConfigProblem(("profile",), refused)]
        if profile is None:
            return [
                ConfigProblem(
                    ("profile",),
                    f"unknown modbus profile {controller.profile!r} (known: {', '.join(sorted(known))})",
                )
            ]
        problems: list[ConfigProblem] = []
        circuits: list[tuple[int, int]] = []
        for index, channel in enumerate(controller.channels):
            path = ("channels", index, "point")
            point = channel.point
            if isinstance(point, str):
                point = int(point) if point.isdigit() else -1
            if not 1 <= point <= profile.circuits:
                problems.append(
                    ConfigProblem(path, f"circuit {channel.point!r} is not in profile {profile.id} "
                                  f"(circuits 1..{profile.circuits})")
                )
                continue
            circuits.append((point, index))
            if channel.dimmable and not profile.is_dimmable(point):
                problems.append(
                    ConfigProblem(
                        ("channels", index, "dimmable"),
                        f"circuit {point} of profile {profile.id} is relay-only: set dimmable: false",
                    )
                )
        uses = Counter(point for point, _ in circuits)
        first: dict[int, int] = {}
        for point, index in circuits:
            if uses[point] > 1:
                if point in first:
                    problems.append(
                        ConfigProblem(
                            ("channels", index, "point"),
                            f"circuit {point} is already used by channel {controller.channels[first[point]].id!r}",
                        )
                    )
                else:
                    first[point] = index
        return problems

    def endpoint_key(self, controller: ControllerConfig) -> str:
        settings = modbus_settings(controller)
        return f"{settings.host}:{settings.port}/{settings.unit}"

    def create_driver(self, controller: ControllerConfig) -> Driver[Any]:
        return ModbusDriver(controller)

    def create_simulator(
        self, controllers: Sequence[ControllerConfig], *, any_port: bool = False
    ) -> ModbusSimulator:
        from drivers.modbus.sim import ModbusSimulator

        return ModbusSimulator(controllers, any_port=any_port)

    def create_floor_client(
        self, controller: ControllerConfig, states: Mapping[ChannelId, ChannelState]
    ) -> ModbusFloorClient:
        from drivers.modbus.floor import ModbusFloorClient

        return ModbusFloorClient(controller, states)


PLUGIN = ModbusPlugin()
