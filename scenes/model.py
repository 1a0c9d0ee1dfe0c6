"""Scenes: ordered ``selector -> state`` rules; later rules win (ARCHITECTURE.md section 5)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from drivers.base import ChannelState
from lightctl.config import SceneConfig
from lightctl.inventory import ChannelKey, Inventory


class UnknownScene(KeyError):
    def __init__(self, scene_id: str, known: Iterable[str]) -> None:
        super().__init__(f"unknown scene {scene_id!r} (known: {', '.join(sorted(known))})")
        self.scene_id = scene_id

    def __str__(self) -> str:
        return str(self.args[0])


class SceneBook:
    """The scenes of an installation, compiled against its inventory."""

    def __init__(self, scenes: Mapping[str, SceneConfig], inventory: Inventory) -> None:
        self.scenes = dict(scenes)
        self.inventory = inventory
        self._cache: dict[str, dict[ChannelKey, ChannelState]] = {}

    def ids(self) -> list[str]:
        return sorted(self.scenes)

    def states(self, scene_id: str) -> dict[ChannelKey, ChannelState]:
        """Every channel the scene's rules reach, with its state (later rules win)."""
        cached = self._cache.get(scene_id)
        if cached is not None:
            return cached
        scene = self.scenes.get(scene_id)
        if scene is None:
            raise UnknownScene(scene_id, self.scenes)
        out: dict[ChannelKey, ChannelState] = {}
        for rule in scene.rules:
            state = ChannelState(on=rule.on and rule.level > 0, level=rule.level, fade_s=rule.fade_s)
            for key in self.inventory.select(rule.target):
                dimmable = self.inventory.channels[key].channel.dimmable
                out[key] = state if dimmable or not state.on else ChannelState(True, 100.0, None, rule.fade_s)
        self._cache[scene_id] = out
        return out

    def compile(self, scene_id: str, within: frozenset[ChannelKey]) -> dict[ChannelKey, ChannelState]:
        """The scene's states restricted to ``within`` (the selector it is applied to)."""
        states = self.states(scene_id)
        if len(within) > len(states):
            return {key: states[key] for key in states.keys() & within}
        return {key: states[key] for key in within if key in states}
