"""A simulator process killed during a light show and started again (issue 18): the show goes on
for every controller the other process runs, the killed ones are reported at each cue they miss
(never as done), the show ends as it should, and once the devices are back (state as at power-on)
they are brought to what the schedule wants again, within the retry cap."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from test_shows import reach, show_data, until, wait_for_show

from lightctl.model.values import OFF
from lightctl.runtime.daemon import Daemon


async def test_a_simulator_process_killed_during_a_show_and_started_again(make_farm: Any, tmp_path: Path) -> None:
    farm, config = await make_farm(show_data(6, loops=4), processes=2)
    daemon = Daemon(config, database=tmp_path / "killed.db")
    await daemon.start()
    try:
        run = await daemon.shows.start("beat", user="test")
        await reach(run, (0, 1))
        killed = farm.kill_process("s0")
        alive = [f"s{i}" for i in range(6) if f"s{i}" not in killed]
        assert killed and alive
        killed_at = (run.loop, run.cue)
        await reach(run, (1, 2))
        after = {(r.loop, r.cue, r.controller_id): r.status for r in run.records if (r.loop, r.cue) > killed_at}
        # the others had every cue; the killed ones none, each missed cue on record as not sent
        assert all(status == "sent" for (_l, _c, cid), status in after.items() if cid in alive), after
        missed = {status for (_l, _c, cid), status in after.items() if cid in killed}
        assert missed and missed <= {"failed", "unconfirmed", "skipped"}, missed

        await farm.restart_process("s0")
        back = time.monotonic()
        restarted_at = (run.loop, run.cue)
        await until(lambda: any(r.controller_id in killed and r.status == "sent" and (r.loop, r.cue) > restarted_at for r in run.records),
                    "the restarted controllers never rejoined the show", timeout=15)
        await wait_for_show(daemon)
        assert daemon.shows.current is not None and daemon.shows.current.status == "done"

        # after the show, the schedule's state (off) everywhere, the restarted devices included
        await until(lambda: not daemon.engine.unconfirmed(), f"not converged: {daemon.engine.unconfirmed()}", timeout=15)
        assert time.monotonic() - back < 15
        for cid in killed:
            rt = daemon.engine.runtimes[cid]
            assert rt.link.state.value == "online", cid
            assert all(rt.confirmed.get(ch) == OFF for ch in rt.desired), (cid, rt.confirmed)
        assert all(state == OFF for state in daemon.desired_now()[0].values())
    finally:
        await daemon.stop()
