"""One installation's config split into a config per district (1 + N: each district daemon runs
its own district), its scenes, shows and schedule kept as they are wherever they apply.

A selector written for the whole city names sites, tags and kinds a district may not have
(``site:jiangbeizui, tag:confluence`` in 渝中's daemon: an unknown site). In each district's
config a selector keeps the terms that name something there; a rule, cue or schedule entry
that then reaches nothing in the district is dropped where it can be, or given the selector
``!*`` (nothing) where the config needs it (a scene's only rule, a schedule entry a show
names); a show that reaches nothing in a district is not in its config. The district's
daemon then validates its config like any other.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from lightctl.config.loader import config_from_data
from lightctl.inventory.index import Inventory
from lightctl.inventory.selectors import SelectorError, Term, parse

NOTHING = "!*"
"""A selector that selects no channel (everything, taken away from everything)."""


def _text(term: Term) -> str:
    body = "*" if term.kind == "*" else f"{term.kind}:{term.value}"
    return f"!{body}" if term.exclude else body


def localize(selector: str, inventory: Inventory) -> str | None:
    """``selector`` with only the terms that name something in ``inventory``; None when it then
    selects nothing there."""
    kept: list[Term] = []
    included = False
    for term in parse(selector):
        included = included or not term.exclude
        try:
            found = inventory.select(_text(Term(term.kind, term.value)))
        except SelectorError:
            continue
        if found:
            kept.append(term)
    if included and not any(not t.exclude for t in kept):
        return None
    local = ", ".join(_text(t) for t in kept) or "*"
    return local if inventory.select(local) else None


def _rules(rules: list[dict[str, Any]], inventory: Inventory) -> list[dict[str, Any]]:
    out = []
    for rule in rules:
        target = localize(str(rule.get("target", "*")), inventory)
        if target is not None:
            out.append({**rule, "target": target})
    return out


def _faults(section: dict[str, Any], district: Mapping[str, Any]) -> dict[str, Any]:
    """The faults section as the district's daemon sees it: its own sites, the crews that work in
    it (with this district only), the webhooks of those crews."""
    sites = {str(site["id"]) for site in district.get("sites", [])}
    own = dict(section)
    if "sites" in own:
        own["sites"] = [s for s in own["sites"] if s.get("site") in sites]
    crews = []
    for crew in own.get("crews", []):
        if district["id"] in crew.get("districts", []):
            crews.append({**crew, "districts": [district["id"]]})
    if "crews" in own:
        own["crews"] = crews
    kept = {crew.get("id") for crew in crews}
    if "webhooks" in own:
        hooks = []
        for hook in own["webhooks"]:
            if not hook.get("crews"):
                hooks.append(hook)
            elif [c for c in hook["crews"] if c in kept]:
                hooks.append({**hook, "crews": [c for c in hook["crews"] if c in kept]})
        own["webhooks"] = hooks
    return own


def _district(data: Mapping[str, Any], district: Mapping[str, Any]) -> dict[str, Any]:
    own = copy.deepcopy(dict(data))
    own["districts"] = [copy.deepcopy(dict(district))]
    if "faults" in own:
        own["faults"] = _faults(own["faults"], district)
    bare = {k: v for k, v in own.items() if k not in ("scenes", "shows", "schedule", "federation")}
    inventory = Inventory(config_from_data(bare, source=f"<district {district['id']}>"))
    for scene in own.get("scenes", []):
        rules = _rules(scene.get("rules", []), inventory)
        if not rules and scene.get("rules") and scene.get("base") is None:
            rules = [{**scene["rules"][0], "target": NOTHING}]
        scene["rules"] = rules
    shows = []
    for show in own.get("shows", []):
        if localize(str(show.get("target", "*")), inventory) is None:
            continue
        show["target"] = localize(str(show.get("target", "*")), inventory)
        cues = []
        for cue in show.get("cues", []):
            if cue.get("target") is not None:
                cue["target"] = localize(str(cue["target"]), inventory) or NOTHING
            if cue.get("rules"):
                cue["rules"] = _rules(cue["rules"], inventory)
                if not cue["rules"]:
                    continue
            cues.append(cue)
        if cues:
            show["cues"] = cues
            shows.append(show)
    own["shows"] = shows
    for entry in own.get("schedule", {}).get("entries", []):
        if "target" in entry:
            entry["target"] = localize(str(entry["target"]), inventory) or NOTHING
    return own


def district_configs(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each district's config (as data, in the district's order), from the whole installation's."""
    return {str(d["id"]): _district(data, d) for d in data.get("districts", [])}
