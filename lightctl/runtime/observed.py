"""What the engine holds of each controller, as the reports take it (``ControllerNow``): its
desired states, its last reading, whether it is online."""

from __future__ import annotations

from lightctl.model.values import LinkState
from lightctl.reconcile.engine import Engine
from lightctl.services.reports.lighting_on import ControllerNow


def observed_now(engine: Engine) -> dict[str, ControllerNow]:
    return {
        controller_id: ControllerNow(dict(rt.desired), rt.reading, rt.link.state == LinkState.ONLINE)
        for controller_id, rt in engine.runtimes.items()
    }
