"""The city's one switch over its districts, as pure functions: what to ask each district, and
every controller's result from their answers (or from their absence).

A selector the city evaluates against the union of the districts' inventories may name what a
single district does not know (``district:江北`` in 渝中's daemon is an unknown district): each
district is sent a selector of its own that selects exactly its part, ``*`` when that is all of
it, the city's own selector when it means the same there, else its controllers and channels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from lightctl.inventory.index import Inventory
from lightctl.inventory.selectors import SelectorError
from lightctl.model.desired import ChannelKey
from lightctl.reconcile.outcomes import ControllerOutcome, Status

OFFLINE = "district_offline"
REFUSED = "refused"
NO_ANSWER = "no_answer"


def district_targets(target: str, selected: Collection[ChannelKey], inventories: Mapping[str, Inventory]) -> dict[str, str]:
    """For each district ``selected`` reaches, the selector that selects exactly its part there."""
    chosen = frozenset(selected)
    targets = {}
    for district, inventory in inventories.items():
        part = chosen & inventory.all_keys
        if not part:
            continue
        if part == inventory.all_keys:
            targets[district] = "*"
            continue
        try:
            same = inventory.select(target) == part
        except SelectorError:
            same = False
        targets[district] = target if same else explicit_selector(part, inventory)
    return targets


def explicit_selector(keys: Iterable[ChannelKey], inventory: Inventory) -> str:
    """Whole controllers as ``controller:ID``, the rest as ``channel:ID/CH``."""
    by_controller: dict[str, set[str]] = defaultdict(set)
    for controller, channel in keys:
        by_controller[controller].add(channel)
    terms = []
    for controller in sorted(by_controller):
        channels = by_controller[controller]
        every = {ch.id for ch in inventory.controllers[controller].controller.channels}
        if channels == every:
            terms.append(f"controller:{controller}")
        else:
            terms += [f"channel:{controller}/{ch}" for ch in sorted(channels)]
    return ", ".join(terms)


def outcome_from_json(controller_id: str, data: Mapping[str, Any]) -> ControllerOutcome:
    return ControllerOutcome(
        controller_id,
        Status(str(data.get("status", "failed"))),
        float(data.get("elapsed_s", 0.0)),
        int(data.get("operations", 0)),
        data.get("error_kind"),
        data.get("error"),
        int(data.get("channels", 0)),
    )


def outcomes_of_report(report: Mapping[str, Any] | None) -> dict[str, ControllerOutcome]:
    """Every controller's outcome in a district's command report (its ``as_json``)."""
    if not report:
        return {}
    return {cid: outcome_from_json(cid, data) for cid, data in report.get("controllers", {}).items()}


def unreached(controllers: Iterable[str], status: Status, kind: str, error: str, elapsed_s: float = 0.0) -> dict[str, ControllerOutcome]:
    """The same outcome for each controller a district did not carry the command to."""
    return {cid: ControllerOutcome(cid, status, elapsed_s, error_kind=kind, error=error) for cid in controllers}


def controllers_of(keys: Iterable[ChannelKey]) -> list[str]:
    return sorted({controller for controller, _ in keys})
