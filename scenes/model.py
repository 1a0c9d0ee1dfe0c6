"""Scenes: ordered ``selector -> state`` rules; later rules win (ARCHITECTURE.md section 5).

A scene with a ``base`` is the base scene's states with its own rules laid over them, so a festival
scene is the nightly scene plus overlays. Colour is mapped onto what each channel's luminaires can
do (scenes.colour); a channel that cannot dim takes full output whenever a rule turns it on. A
``handback`` rule leaves its channels to their owner (lightctl.model.desired.RELEASED).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

from lightctl.inventory.index import Inventory
from lightctl.model.colour import for_capability
from lightctl.model.desired import RELEASED, ChannelKey, Desired
from lightctl.model.scenes import SceneConfig, SceneRuleConfig
from lightctl.model.values import ChannelState


class UnknownScene(KeyError):
    def __init__(self, scene_id: str, known: Iterable[str]) -> None:
        names = sorted(known)
        close = difflib.get_close_matches(scene_id, names, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown scene {scene_id!r}{hint} (known: {', '.join(names)})")
        self.scene_id = scene_id

    def __str__(self) -> str:
        return str(self.args[0])


class SceneBook:
    """The scenes of an installation, compiled against its inventory (cached per scene)."""

    def __init__(self, scenes: Mapping[str, SceneConfig], inventory: Inventory) -> None:
        self.scenes = dict(scenes)
        self.inventory = inventory
        self._cache: dict[str, dict[ChannelKey, Desired]] = {}
        self._commanded: dict[str, dict[ChannelKey, ChannelState]] = {}

    def ids(self) -> list[str]:
        return sorted(self.scenes)

    def get(self, scene_id: str) -> SceneConfig:
        scene = self.scenes.get(scene_id)
        if scene is None:
            raise UnknownScene(scene_id, self.scenes)
        return scene

    def states(self, scene_id: str) -> dict[ChannelKey, ChannelState]:
        """Every channel the scene (with its bases) sets to a state, and that state."""
        cached = self._commanded.get(scene_id)
        if cached is None:
            desired = self.desired(scene_id)
            cached = {key: state for key, state in desired.items() if isinstance(state, ChannelState)}
            self._commanded[scene_id] = cached
        return cached

    def desired(self, scene_id: str) -> dict[ChannelKey, Desired]:
        """Every channel the scene (with its bases) reaches: its state, or RELEASED where the
        scene hands it back to its owner."""
        cached = self._cache.get(scene_id)
        if cached is not None:
            return cached
        scene = self.get(scene_id)
        out = dict(self.desired(scene.base)) if scene.base is not None else {}
        self._lay(scene.rules, out)
        self._cache[scene_id] = out
        return out

    def compile_rules(self, rules: Sequence[SceneRuleConfig], within: frozenset[ChannelKey]) -> dict[ChannelKey, Desired]:
        """Rules that are no scene of their own (a show cue's inline rules), restricted to
        ``within``. They are never registered: an operator cannot apply them by name."""
        out: dict[ChannelKey, Desired] = {}
        self._lay(rules, out)
        return {key: state for key, state in out.items() if key in within}

    def _lay(self, rules: Sequence[SceneRuleConfig], out: dict[ChannelKey, Desired]) -> None:
        """Lay rules over ``out`` in order (later rules win)."""
        channels = self.inventory.channels
        for rule in rules:
            if rule.handback:
                out.update(dict.fromkeys(self.inventory.select(rule.target), RELEASED))
                continue
            on = rule.on and rule.level > 0
            by_capability: dict[tuple[bool, str], ChannelState] = {}
            for key in self.inventory.select(rule.target):
                channel = channels[key].channel
                variant = (channel.dimmable, channel.colour)
                state = by_capability.get(variant)
                if state is None:
                    level = rule.level if channel.dimmable or not on else 100.0
                    colour = for_capability(rule.colour, channel.colour) if on else None
                    state = ChannelState(on, level if on else 0.0, colour, rule.fade_s)
                    by_capability[variant] = state
                out[key] = state

    def compile(self, scene_id: str, within: frozenset[ChannelKey]) -> dict[ChannelKey, Desired]:
        """The scene's states restricted to ``within`` (the selector it is applied to)."""
        states = self.desired(scene_id)
        if len(within) > len(states):
            return {key: states[key] for key in states.keys() & within}
        return {key: states[key] for key in within if key in states}
