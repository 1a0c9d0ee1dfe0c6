"""What a district says of itself: its inventory (NBIRTH), each controller's config and facts
(DBIRTH, DDATA), and its layers in force, from its daemon."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lightctl.federation.vocabulary import ChannelFacts, ControllerFacts, reading_figures
from lightctl.model.installation import ControllerConfig
from lightctl.model.times import iso_local
from lightctl.reconcile.controller import Runtime
from lightctl.runtime.daemon import Daemon


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def controller_facts(rt: Runtime) -> ControllerFacts:
    """A controller as its runtime holds it: link, pending channels, last reading, desired state."""
    reading = rt.reading
    power, energy, faults, read_at = reading_figures(reading)
    channels = {
        ch.id: ChannelFacts.of(reading.channels.get(ch.id) if reading else None, rt.desired.get(ch.id))
        for ch in rt.info.controller.channels
    }
    return ControllerFacts(
        rt.link.state.value, rt.link.last_error, int(rt.link.since * 1000), len(rt.pending()), channels,
        power, energy, faults, read_at,
    )


class ConfigTexts:
    """Each controller's config as its DBIRTH says it (its protocol settings left out: addresses
    and credentials are the district's), encoded once while the config object is the same (a
    reload makes new ones)."""

    def __init__(self) -> None:
        self._texts: dict[str, tuple[tuple[ControllerConfig, str], str]] = {}

    def text(self, rt: Runtime) -> str:
        key = (rt.info.controller, rt.info.site.id)
        cached = self._texts.get(rt.id)
        if cached is None or cached[0] != key:
            text = _text({"site": rt.info.site.id, **rt.info.controller.model_dump(mode="json", exclude={"settings"})})
            cached = self._texts[rt.id] = (key, text)
        return cached[1]


def inventory_text(daemon: Daemon) -> str:
    """The district (its sites without their controllers), its tags, scenes, shows, and its
    controllers' ids (each described by its DBIRTH)."""
    config = daemon.config
    district = config.districts[0]
    sites = [site.model_dump(mode="json", exclude={"controllers"}) for site in district.sites]
    own: dict[str, Any] = {**district.model_dump(mode="json", exclude={"sites"}), "sites": sites}
    return _text({
        "district": own,
        "tags": list(config.tags),
        "timezone": config.installation.timezone,
        "scenes": [{"id": s.id, "name": s.name} for s in config.all_scenes().values()],
        "shows": [{"id": s.id, "name": s.name} for s in config.shows],
        "crews": [crew.model_dump(mode="json") for crew in config.faults.crews],
        "controllers": list(daemon.engine.runtimes),
    })


def overrides_text(daemon: Daemon, requests: Mapping[int, str]) -> str:
    """The layers in force, each with the city request that set it (if one did)."""
    zone = daemon.tz
    return _text([
        {"id": o.id, "kind": o.kind, "scene": o.scene, "target": o.target, "user": o.user,
         "until": iso_local(o.until, zone), "cap": o.cap, "request": requests.get(o.id)}
        for o in daemon.overrides
    ])
