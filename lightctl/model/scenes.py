"""Scenes and light shows as configured: ordered ``selector -> state`` rules, and cue timelines."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lightctl.model.colour import ColourError, parse_colour
from lightctl.model.installation import Frozen, Ident
from lightctl.model.values import Colour

HANDBACK_SCENE = "handback"
"""The built-in scene that hands back whatever selector it is applied to."""


class SceneRuleConfig(Frozen):
    """``target`` is a selector (lightctl.inventory.selectors); later rules of a scene win. ``colour`` is
    taken by the channels whose luminaires have colour (scenes.colour). ``handback: true`` hands
    the channels back to their owner instead of setting a state (lightctl.inventory.handback)."""

    target: str
    on: bool = True
    level: float = Field(default=100.0, ge=0, le=100)
    fade_s: float = Field(default=0.0, ge=0, le=3600)
    colour: Colour | None = None
    handback: bool = Field(default=False, description="the owner's own control runs these channels")

    @model_validator(mode="after")
    def _handback_has_no_state(self) -> SceneRuleConfig:
        given = self.model_fields_set & {"on", "level", "fade_s", "colour"}
        if self.handback and given:
            raise ValueError(f"a hand-back rule sets no state; remove {', '.join(sorted(given))}")
        return self

    @field_validator("colour", mode="before")
    @classmethod
    def _parse_colour(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse_colour(value)
        except ColourError as exc:
            raise ValueError(str(exc)) from None


class SceneConfig(Frozen):
    """A scene; with ``base`` it is that scene with these rules laid over it."""

    id: Ident
    name: str | None = None
    base: str | None = None
    rules: list[SceneRuleConfig] = []

    @model_validator(mode="after")
    def _has_rules(self) -> SceneConfig:
        if not self.rules and self.base is None:
            raise ValueError("a scene needs rules, or a base scene to build on")
        return self


class CueConfig(Frozen):
    """One beat of a show: at ``at_s`` into each loop, a scene (or inline rules) on ``target``
    (default: the show's target), with ``fade_s`` replacing the rules' own fades when given."""

    at_s: float = Field(ge=0)
    scene: str | None = None
    rules: list[SceneRuleConfig] = []
    target: str | None = None
    fade_s: float | None = Field(default=None, ge=0, le=600)

    @model_validator(mode="after")
    def _scene_or_rules(self) -> CueConfig:
        if (self.scene is None) == (not self.rules):
            raise ValueError("a cue needs either a scene or rules, not both")
        return self


class ShowConfig(Frozen):
    """A light show: cues on a timeline of ``duration_s``, played ``loops`` times; then the
    channels return to the scheduled scene (``end: schedule``) or keep the last cue (``hold``)."""

    id: Ident
    name: str | None = None
    target: str = "*"
    duration_s: float = Field(gt=0, le=6 * 3600)
    loops: int = Field(default=1, ge=1, le=1000)
    end: Literal["schedule", "hold"] = "schedule"
    schedule_entries: list[str] = Field(
        default=[], description="started by the schedule: once a night, when one of these entries comes into force"
    )
    cues: list[CueConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _timeline(self) -> ShowConfig:
        offsets = [cue.at_s for cue in self.cues]
        if offsets != sorted(offsets):
            raise ValueError("cues must be in time order (at_s ascending)")
        if offsets[-1] >= self.duration_s:
            raise ValueError(f"the last cue (at {offsets[-1]:g} s) must come before the end of the show ({self.duration_s:g} s)")
        return self


BUILTIN_SCENES: tuple[SceneConfig, ...] = (
    SceneConfig(id="all-on", name="全部开灯 all on", rules=[SceneRuleConfig(target="*", on=True, level=100)]),
    SceneConfig(id="all-off", name="全部关灯 all off", rules=[SceneRuleConfig(target="*", on=False, level=0)]),
    SceneConfig(id=HANDBACK_SCENE, name="交还业主 hand back to the owners' control",
                rules=[SceneRuleConfig(target="*", handback=True)]),
)
