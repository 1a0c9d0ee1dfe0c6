"""The installation's checks that need it resolved: selectors name what exists, hand-backs reach
only what can be handed back, and the schedule is coherent (schedules.checks). They run after
lightctl.config's own layers have passed, so the model they look at is whole.
"""

from __future__ import annotations

from lightctl.config.problems import Locator, Path_, Problem, problem_at
from lightctl.inventory.handback import cannot_release
from lightctl.inventory.handback import refusal as handback_refusal
from lightctl.inventory.index import Inventory
from lightctl.inventory.selectors import SelectorError
from lightctl.model.config import Config
from lightctl.model.desired import released_keys
from scenes.model import SceneBook
from schedules.checks import check_schedule


def installation_checks(config: Config, file: str, locate: Locator) -> list[Problem]:
    """Every problem of this layer, in order: selectors first (the later checks select)."""
    problems: list[Problem] = []
    inventory = Inventory(config)
    selectors: list[tuple[str, Path_]] = []
    for si, scene in enumerate(config.scenes):
        selectors += [(rule.target, ("scenes", si, "rules", ri, "target")) for ri, rule in enumerate(scene.rules)]
    for si, show in enumerate(config.shows):
        selectors.append((show.target, ("shows", si, "target")))
        for ci, cue in enumerate(show.cues):
            if cue.target is not None:
                selectors.append((cue.target, ("shows", si, "cues", ci, "target")))
            selectors += [(r.target, ("shows", si, "cues", ci, "rules", ri, "target")) for ri, r in enumerate(cue.rules)]
    for selector, path in selectors:
        try:
            inventory.select(selector)
        except SelectorError as exc:
            problems.append(problem_at(file, locate, path, str(exc)))
    if problems:
        return problems
    problems += _handback_problems(config, file, locate, inventory)
    if problems:
        return problems
    return check_schedule(config, file, locate, inventory)


def _handback_problems(config: Config, file: str, locate: Locator, inventory: Inventory) -> list[Problem]:
    """A hand-back rule reaches only channels that can be handed back (lightctl.inventory.handback), and
    shows hand nothing back: their cues are sent without a read-back."""
    problems: list[Problem] = []
    for si, scene in enumerate(config.scenes):
        for ri, rule in enumerate(scene.rules):
            refused = cannot_release(inventory, inventory.select(rule.target)) if rule.handback else {}
            if refused:
                what = f"the hand-back rule on {rule.target!r} of scene {scene.id!r}"
                problems.append(problem_at(file, locate, ("scenes", si, "rules", ri, "target"), handback_refusal(what, refused)))
    book = SceneBook(config.all_scenes(), inventory)
    no_show = "a show's cues cannot hand channels back (they are sent without a read-back); let the schedule do it after the show"
    for si, show in enumerate(config.shows):
        for ci, cue in enumerate(show.cues):
            if cue.scene is not None and released_keys(book.desired(cue.scene)):
                problems.append(problem_at(file, locate, ("shows", si, "cues", ci, "scene"), f"scene {cue.scene!r}: {no_show}"))
            for ri, rule in enumerate(cue.rules):
                if rule.handback:
                    problems.append(problem_at(file, locate, ("shows", si, "cues", ci, "rules", ri, "handback"), no_show))
    return problems


