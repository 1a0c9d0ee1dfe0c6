"""The whole configuration file as one frozen model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field

from lightctl.model.access import AccessSettings
from lightctl.model.faults import FaultsConfig
from lightctl.model.federation import FederationConfig
from lightctl.model.installation import ControllerConfig, DaemonSettings, District, Frozen, Installation, Tag
from lightctl.model.reports import ReportsConfig
from lightctl.model.scenes import BUILTIN_SCENES, SceneConfig, ShowConfig
from lightctl.model.schedule import ScheduleConfig


class Config(Frozen):
    installation: Installation
    daemon: DaemonSettings = DaemonSettings()
    tags: list[Tag] = Field(default=[], description="every tag used anywhere must be declared here")
    districts: list[District] = Field(
        default=[], description="at least one, except for a city daemon (federation.role: city), which has none"
    )
    scenes: list[SceneConfig] = []
    shows: list[ShowConfig] = []
    schedule: ScheduleConfig = ScheduleConfig()
    federation: FederationConfig | None = None
    faults: FaultsConfig = FaultsConfig()
    access: AccessSettings = AccessSettings()
    reports: ReportsConfig = ReportsConfig()

    def controllers(self) -> Iterable[ControllerConfig]:
        for district in self.districts:
            for site in district.sites:
                yield from site.controllers

    def all_scenes(self) -> dict[str, SceneConfig]:
        scenes = {scene.id: scene for scene in BUILTIN_SCENES}
        scenes.update({scene.id: scene for scene in self.scenes})
        return scenes

    def with_controller_settings(self, patches: Mapping[str, Mapping[str, Any]]) -> Config:
        """A copy with some controllers' protocol settings replaced (simulator endpoints)."""

        def patch(ctrl: ControllerConfig) -> ControllerConfig:
            extra = patches.get(ctrl.id)
            if not extra:
                return ctrl
            return ctrl.model_copy(update={"settings": ctrl.settings.model_copy(update=dict(extra))})

        districts = [
            d.model_copy(
                update={
                    "sites": [
                        s.model_copy(update={"controllers": [patch(c) for c in s.controllers]}) for s in d.sites
                    ]
                }
            )
            for d in self.districts
        ]
        return self.model_copy(update={"districts": districts})
