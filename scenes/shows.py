"""Light shows compiled ahead of time: every cue becomes one batch per controller.

Compiling before the first beat keeps the beat itself cheap: at each cue the runner only hands
ready batches to the controllers' senders. A cue changes the channels it targets; the others keep
what earlier cues of the loop gave them (``accumulated``, which is the show's layer of the desired
state while it runs).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from lightctl.model.desired import ChannelKey
from lightctl.model.scenes import ShowConfig
from lightctl.model.values import ChannelId, ChannelState
from scenes.model import SceneBook


@dataclass(frozen=True, slots=True)
class CompiledCue:
    index: int
    at_s: float
    label: str
    batches: dict[str, dict[ChannelId, ChannelState]]
    """Per controller, the channels this cue changes."""
    accumulated: dict[ChannelKey, ChannelState]
    """Every show channel's state once this cue is in force."""


@dataclass(frozen=True, slots=True)
class CompiledShow:
    config: ShowConfig
    channels: frozenset[ChannelKey]
    cues: tuple[CompiledCue, ...]

    @property
    def controllers(self) -> set[str]:
        return {key[0] for key in self.channels}

    def gap_after(self, index: int) -> float:
        """Seconds from this cue to the next beat (the next cue, or the next loop's first)."""
        cues = self.cues
        if index + 1 < len(cues):
            return cues[index + 1].at_s - cues[index].at_s
        return self.config.duration_s - cues[index].at_s + cues[0].at_s


def compile_show(show: ShowConfig, scenes: SceneBook) -> CompiledShow:
    inventory = scenes.inventory
    channels = inventory.select(show.target)
    accumulated: dict[ChannelKey, ChannelState] = {}
    cues = []
    for index, cue in enumerate(show.cues):
        within = channels & inventory.select(cue.target) if cue.target is not None else channels
        compiled = scenes.compile(cue.scene, within) if cue.scene is not None else scenes.compile_rules(cue.rules, within)
        states = {key: state for key, state in compiled.items() if isinstance(state, ChannelState)}
        if len(states) < len(compiled):  # the config check refuses such a show first
            raise ValueError(f"show {show.id!r} cue {index}: a show's cues cannot hand channels back")
        if cue.fade_s is not None:
            states = {key: replace(state, fade_s=cue.fade_s) for key, state in states.items()}
        accumulated = {**accumulated, **states}
        batches: dict[str, dict[ChannelId, ChannelState]] = defaultdict(dict)
        for (controller_id, channel_id), state in states.items():
            batches[controller_id][channel_id] = state
        label = cue.scene or f"{len(cue.rules)} rule(s)"
        cues.append(CompiledCue(index, cue.at_s, label, dict(batches), accumulated))
    return CompiledShow(show, channels, tuple(cues))
