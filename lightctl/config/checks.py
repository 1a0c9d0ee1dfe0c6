"""Layers 2 and 3 of config validation: protocol settings, then cross-field checks.

What needs the inventory resolved (selectors, hand-backs, the schedule) is checked a layer up,
by lightctl.resolve.checks, once these pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, ValidationError

from drivers.registry import UnknownProtocol, get_plugin
from lightctl.config.problems import Locator, Path_, Problem, format_path, problem_at, pydantic_problems
from lightctl.model.config import Config
from lightctl.model.installation import ControllerConfig
from lightctl.model.scenes import HANDBACK_SCENE


def validate_protocol_settings(config: Config, file: str, locate: Locator, problems: list[Problem]) -> Config:
    """Replace each controller's raw ``settings`` dict by its protocol's validated model.

    Controllers are taken by their place in the file, not their id: two entries with one id (a
    problem reported by ``cross_check``) keep their own settings, so no other problem is invented
    between them."""
    districts = []
    for di, district in enumerate(config.districts):
        sites = []
        for si, site in enumerate(district.sites):
            controllers = []
            for ci, ctrl in enumerate(site.controllers):
                path: Path_ = ("districts", di, "sites", si, "controllers", ci)
                controllers.append(_with_protocol_settings(ctrl, path, file, locate, problems))
            sites.append(site.model_copy(update={"controllers": controllers}))
        districts.append(district.model_copy(update={"sites": sites}))
    return config.model_copy(update={"districts": districts})


def _with_protocol_settings(
    ctrl: ControllerConfig, path: Path_, file: str, locate: Locator, problems: list[Problem]
) -> ControllerConfig:
    try:
        plugin = get_plugin(ctrl.protocol)
    except UnknownProtocol as exc:
        problems.append(problem_at(file, locate, (*path, "protocol"), str(exc)))
        return ctrl
    try:
        settings = plugin.settings_model.model_validate(ctrl.settings or {})
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, file, locate, (*path, "settings")))
        return ctrl
    return ctrl.model_copy(update={"settings": settings, "capabilities": plugin.capabilities})


def _duplicates(items: Iterable[tuple[str, Path_]], what: str, file: str, locate: Locator) -> list[Problem]:
    items = list(items)
    counts = Counter(value for value, _ in items)
    first: dict[str, Path_] = {}
    problems = []
    for value, path in items:
        if counts[value] > 1:
            if value in first:
                where = format_path(first[value])
                problems.append(problem_at(file, locate, path, f"duplicate {what} {value!r} (first used at {where})"))
            else:
                first[value] = path
    return problems


def cross_check(config: Config, file: str, locate: Locator) -> list[Problem]:
    problems: list[Problem] = []
    declared_tags = set(config.tags)
    districts, sites, controllers, legacy, endpoints = [], [], [], [], []
    tag_uses: list[tuple[str, Path_]] = []
    for di, district in enumerate(config.districts):
        dpath: Path_ = ("districts", di)
        districts.append((district.id, (*dpath, "id")))
        tag_uses += [(t, (*dpath, "tags", i)) for i, t in enumerate(district.tags)]
        for si, site in enumerate(district.sites):
            spath: Path_ = (*dpath, "sites", si)
            sites.append((site.id, (*spath, "id")))
            tag_uses += [(t, (*spath, "tags", i)) for i, t in enumerate(site.tags)]
            distance = config.installation.location.distance_km(site.location)
            if distance > config.installation.max_site_distance_km:
                problems.append(
                    problem_at(
                        file, locate, (*spath, "location"),
                        f"bad coordinate: {distance:.0f} km from the installation's location "
                        f"(limit {config.installation.max_site_distance_km:.0f} km; are lat and lon swapped?)",
                    )
                )
            for li, circuit in enumerate(site.legacy):
                legacy.append((circuit.id, (*spath, "legacy", li, "id")))
                tag_uses += [(t, (*spath, "legacy", li, "tags", i)) for i, t in enumerate(circuit.tags)]
            for ci, ctrl in enumerate(site.controllers):
                cpath: Path_ = (*spath, "controllers", ci)
                controllers.append((ctrl.id, (*cpath, "id")))
                tag_uses += [(t, (*cpath, "tags", i)) for i, t in enumerate(ctrl.tags)]
                problems += _duplicates(
                    ((ch.id, (*cpath, "channels", chi, "id")) for chi, ch in enumerate(ctrl.channels)),
                    "channel id", file, locate,
                )
                for chi, ch in enumerate(ctrl.channels):
                    tag_uses += [(t, (*cpath, "channels", chi, "tags", i)) for i, t in enumerate(ch.tags)]
                if not isinstance(ctrl.settings, BaseModel):
                    continue  # its protocol or settings were refused by layer 2, already reported
                plugin = get_plugin(ctrl.protocol)
                for found in plugin.validate_controller(ctrl):
                    problems.append(problem_at(file, locate, (*cpath, *found.path), found.message))
                endpoints.append((f"{ctrl.protocol}://{plugin.endpoint_key(ctrl)}", (*cpath, "id")))
    problems += _duplicates(districts, "district id", file, locate)
    problems += _duplicates(sites, "site id", file, locate)
    problems += _duplicates(controllers, "controller id", file, locate)
    problems += _duplicates(legacy, "legacy circuit id", file, locate)
    problems += _duplicates(endpoints, "controller endpoint", file, locate)
    problems += _duplicates(
        ((s.id, ("scenes", i, "id")) for i, s in enumerate(config.scenes)), "scene id", file, locate
    )
    for i, scene in enumerate(config.scenes):
        if scene.id == HANDBACK_SCENE:  # `lightctl handback` and the API rely on what it does
            message = f"scene id {HANDBACK_SCENE!r} is the built-in hand-back scene; give this scene another id"
            problems.append(problem_at(file, locate, ("scenes", i, "id"), message))
    for tag, path in tag_uses:
        if tag not in declared_tags:
            problems.append(problem_at(file, locate, path, f"unknown tag {tag!r}: declare it under 'tags:'"))
    problems += _scene_bases(config, file, locate)
    problems += _federation(config, file, locate)
    problems += _faults_section(config, file, locate)
    problems += _api_transport(config, file, locate)
    problems += _duplicates(((s.id, ("shows", i, "id")) for i, s in enumerate(config.shows)), "show id", file, locate)
    scene_ids = config.all_scenes()
    entry_ids = {entry.id for entry in config.schedule.entries}
    for si, show in enumerate(config.shows):
        for ei, entry in enumerate(show.schedule_entries):
            if entry not in entry_ids:
                problems.append(problem_at(file, locate, ("shows", si, "schedule_entries", ei), f"unknown schedule entry {entry!r}"))
        for ci, cue in enumerate(show.cues):
            if cue.scene is not None and cue.scene not in scene_ids:
                problems.append(
                    problem_at(file, locate, ("shows", si, "cues", ci, "scene"), f"unknown scene {cue.scene!r} (known: {', '.join(sorted(scene_ids))})")
                )
    return problems


def _scene_bases(config: Config, file: str, locate: Locator) -> list[Problem]:
    """Every base scene exists, and no scene builds on itself through its bases."""
    scenes = config.all_scenes()
    index = {scene.id: i for i, scene in enumerate(config.scenes)}
    problems = []
    for scene in config.scenes:
        if scene.base is None:
            continue
        path: Path_ = ("scenes", index[scene.id], "base")
        if scene.base not in scenes:
            problems.append(problem_at(file, locate, path, f"unknown base scene {scene.base!r} (known: {', '.join(sorted(scenes))})"))
            continue
        seen = [scene.id]
        base: str | None = scene.base
        while base is not None and base in scenes:
            if base in seen:
                chain = " -> ".join([*seen, base])
                problems.append(problem_at(file, locate, path, f"scene bases form a cycle: {chain}"))
                break
            seen.append(base)
            base = scenes[base].base
    return problems


def _federation(config: Config, file: str, locate: Locator) -> list[Problem]:
    """A district daemon runs its one district, named by its node id; the city daemon has no field
    controllers of its own (its inventory is the districts' births); every other daemon needs a
    district."""
    federation = config.federation
    ids = [d.id for d in config.districts]
    if (federation is None or federation.role == "district") and not ids:
        return [problem_at(file, locate, ("districts",), "at least one district is needed (only a city daemon, federation.role: city, has none)")]
    if federation is None:
        return []
    if federation.role == "district":
        if federation.node is None:
            return [problem_at(file, locate, ("federation", "role"), "a district daemon needs its node id: federation.node, its district's id")]
        if ids != [federation.node]:
            return [problem_at(
                file, locate, ("federation", "node"),
                f"a district daemon runs its own district only: federation.node {federation.node!r} with districts {ids}",
            )]
        if federation.districts:
            return [problem_at(file, locate, ("federation", "districts"), "only the city daemon lists the districts it expects")]
        return []
    if ids:
        return [problem_at(
            file, locate, ("districts",),
            "a city daemon (federation.role: city) has no field controllers of its own: its inventory is the districts' "
            "births; put each district in its district daemon's config",
        )]
    if federation.node is not None:
        return [problem_at(file, locate, ("federation", "node"), "the city is the primary host (federation.host), not a node")]
    return []
def _faults_section(config: Config, file: str, locate: Locator) -> list[Problem]:
    """The ``faults:`` section names sites, districts and crews that exist, each once."""
    section = config.faults
    sites = {site.id for district in config.districts for site in district.sites}
    districts = {district.id for district in config.districts}
    crews = {crew.id for crew in section.crews}
    problems = _duplicates(((s.site, ("faults", "sites", i, "site")) for i, s in enumerate(section.sites)), "site", file, locate)
    problems += _duplicates(((c.id, ("faults", "crews", i, "id")) for i, c in enumerate(section.crews)), "crew id", file, locate)
    problems += _duplicates(((w.id, ("faults", "webhooks", i, "id")) for i, w in enumerate(section.webhooks)), "webhook id", file, locate)
    for i, site in enumerate(section.sites):
        if site.site not in sites:
            problems.append(problem_at(file, locate, ("faults", "sites", i, "site"), f"unknown site {site.site!r}"))
    for i, crew in enumerate(section.crews):
        for j, district in enumerate(crew.districts):
            if district not in districts:
                message = f"unknown district {district!r} (known: {', '.join(sorted(districts))})"
                problems.append(problem_at(file, locate, ("faults", "crews", i, "districts", j), message))
    for i, hook in enumerate(section.webhooks):
        for j, crew_id in enumerate(hook.crews):
            if crew_id not in crews:
                message = f"unknown crew {crew_id!r} (known: {', '.join(sorted(crews)) or 'none'})"
                problems.append(problem_at(file, locate, ("faults", "webhooks", i, "crews", j), message))
    return problems


def _api_transport(config: Config, file: str, locate: Locator) -> list[Problem]:
    """TLS needs both its files; plain HTTP stays on loopback unless the config says otherwise
    (passwords and session cookies must not cross a network in clear)."""
    daemon = config.daemon
    problems = []
    if (daemon.tls_cert is None) != (daemon.tls_key is None):
        missing = "tls_key" if daemon.tls_key is None else "tls_cert"
        given = "tls_cert" if missing == "tls_key" else "tls_key"
        problems.append(problem_at(file, locate, ("daemon", given), f"{given} needs {missing} too (HTTPS needs both)"))
    elif not daemon.tls and not daemon.api_on_loopback and not daemon.plain_http_beyond_loopback:
        problems.append(problem_at(
            file, locate, ("daemon", "api_host"),
            f"api_host {daemon.api_host!r} is not loopback and the API has no TLS: passwords and session cookies "
            "would cross the network in clear. Set tls_cert and tls_key, or plain_http_beyond_loopback: true "
            "if a TLS-terminating proxy on this machine's network is the only way in",
        ))
    access = config.access
    if access.lockout_max_s < access.lockout_first_s:
        problems.append(problem_at(
            file, locate, ("access", "lockout_max_s"),
            f"lockout_max_s {access.lockout_max_s:g} is shorter than lockout_first_s {access.lockout_first_s:g}",
        ))
    return problems
