"""``lightctl bench federation``: 1 + N on this machine, against a single daemon in the same run.

N district daemons (``lightctl run``, each its own process) with ``--controllers`` simulated
Modbus cabinets each, Mosquitto (TLS, a user per district, the ACL), and the city daemon in this
process with its records on a PostgreSQL server of its own (durable: fsync on). In the same run
and against the same simulators, a single daemon (also in this process) with every controller.

1. **The one switch**, ``--rounds`` times each way: the single daemon's ``apply_scene`` on ``*``
   over all N x controllers, and the city's over all districts, every controller's result
   gathered (alternating all-on and all-off so that each switch changes the field). Both are
   timed around the whole call, records included; the goal is city p50 <= 1.3 x single p50.
2. **Broker restarts**: the broker restarted, timed until every district is born again and the
   city's view is complete; goal <= 10 s.
3. **Broker restarts during switching** (``--restarts``): a city switch, and the broker killed
   (SIGKILL) and started again at a random moment during it; then every district's outbox is
   compared with what the city recorded: every event the districts sent is there once, in order
   (nothing lost, nothing duplicated), and each district carried out each request once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightctl.bench.runner import percentile, synthetic_config
from lightctl.federation.city import CityDaemon
from lightctl.federation.mqtt import read_password
from lightctl.federation.rollups import SUMMARISED
from lightctl.loop import settle_heap
from lightctl.process.mosquitto import Mosquitto
from lightctl.process.postgres import PostgresUnavailable, TemporaryPostgres
from lightctl.reconcile.outcomes import Status
from lightctl.resolve.loading import config_from_data
from lightctl.runtime.daemon import Daemon
from lightctl.simulation.farm import SimulatorFarm, raise_open_file_limit

GROUP = "lightctl"
CITY = "city"
BIRTH_TIMEOUT_S = 600.0
SETTLE_TIMEOUT_S = 120.0


def _districts(data: dict[str, Any], count: int) -> dict[str, dict[str, Any]]:
    """The synthetic installation's sites dealt to ``count`` districts, in order."""
    sites = data["districts"][0]["sites"]
    per = -(-len(sites) // count)
    return {
        f"d{n + 1}": {"id": f"d{n + 1}", "name": f"区{n + 1}", "name_en": f"District {n + 1}", "sites": sites[n * per : (n + 1) * per]}
        for n in range(count)
    }


def _with_endpoints(data: dict[str, Any], endpoints: dict[str, dict[str, Any]]) -> None:
    for district in data["districts"]:
        for site in district["sites"]:
            for controller in site["controllers"]:
                controller.update(endpoints.get(controller["id"], {}))


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="lightctl-bench-federation-"))
        self.broker: Mosquitto | None = None
        self.postgres: TemporaryPostgres | None = None
        self.farm: SimulatorFarm | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.city: CityDaemon | None = None
        self.single: Daemon | None = None
        self.store_kind = "PostgreSQL"

    async def start(self) -> None:
        args = self.args
        raise_open_file_limit()
        total = args.districts * args.controllers
        data = synthetic_config(["modbus"], total)
        data["daemon"].update({"concurrency": 2000, "deadline_s": 10.0})
        config = config_from_data(data, source="<bench>")
        processes = args.processes or max(1, min(os.cpu_count() or 2, -(-total // 500)))
        print(f"starting {total} simulated Modbus cabinets in {processes} process(es), Mosquitto, PostgreSQL and "
              f"{args.districts} district daemons...", flush=True)
        self.farm = SimulatorFarm(data, config, processes=processes, any_port=True)
        _with_endpoints(data, await self.farm.start())
        districts = _districts(data, args.districts)
        self.broker = Mosquitto(group=GROUP, city=CITY, districts=list(districts))
        await asyncio.to_thread(self.broker.start)
        try:
            self.postgres = TemporaryPostgres(durable=True)
            await asyncio.to_thread(self.postgres.start)
            city_database = await asyncio.to_thread(self.postgres.create_database, "city")
        except PostgresUnavailable as exc:
            print(f"PostgreSQL not available ({exc}); the city's records go to SQLite", flush=True)
            self.postgres, self.store_kind = None, "SQLite"
            city_database = str(self.work / "city.db")
        for name, district in districts.items():
            own = {**{k: v for k, v in data.items() if k != "districts"}, "districts": [district]}
            own["daemon"] = {**own["daemon"], "api_port": 0, "database": str(self.work / f"{name}.db")}
            own["federation"] = {"role": "district", "group": GROUP, "node": name, "host": CITY,
                                 "broker": self.broker.settings(name).model_dump(mode="json")}
            path = self.work / f"{name}.json"
            path.write_text(json.dumps(own, ensure_ascii=False), encoding="utf-8")
            log = (self.work / f"{name}.log").open("wb")
            self.processes[name] = subprocess.Popen(  # noqa: ASYNC220 (started once, before anything is timed)
                [sys.executable, "-m", "lightctl", "--config", str(path), "run"], stdout=log, stderr=subprocess.STDOUT,
                cwd=self.work,
            )
        city_data = {"installation": data["installation"], "daemon": {"database": city_database},
                     "federation": {"role": "city", "group": GROUP, "host": CITY, "districts": list(districts),
                                    "broker": self.broker.settings(CITY).model_dump(mode="json"), "command_timeout_s": 60}}
        city_config = config_from_data(city_data, source="<bench city>")
        self.city = CityDaemon(city_config, database=city_database, password=read_password(self.broker.settings(CITY)))
        await self.city.start()
        self.single = Daemon(config_from_data(data, source="<bench single>"), database=self.work / "single.db")
        await self.single.start(reconcile=False)
        started = time.monotonic()
        await self.until(self.complete, BIRTH_TIMEOUT_S, "every district born at the city")
        print(f"  every district born at the city in {time.monotonic() - started:.1f} s", flush=True)
        await self.single.engine.connect_all(timeout_s=60.0)
        settle_heap()

    def complete(self) -> bool:
        assert self.city is not None
        views = self.city.mirror.districts.values()
        return all(v.complete for v in views) and all(self.city.host.online(v.id) for v in views)

    async def until(self, check: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"district daemon {name} exited ({process.returncode}); see {self.work / name}.log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not in {timeout:.0f} s")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.single is not None:
            await self.single.stop()
        if self.city is not None:
            await self.city.stop()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                await asyncio.to_thread(process.wait, 60)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.farm is not None:
            await self.farm.stop()
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)

    # -- 1. the one switch -------------------------------------------------------------------

    async def switches(self) -> dict[str, Any]:
        assert self.city is not None and self.single is not None
        total = self.args.districts * self.args.controllers
        single_s: list[float] = []
        city_s: list[float] = []
        not_confirmed = 0
        for scene in ("all-off", "all-on"):  # untimed: sessions warm on every side
            await self.single.apply_scene(scene, "*", user="bench", until=None)
            await self.city.apply_scene(scene, "*", user="bench", until="none")
        for round_no in range(self.args.rounds):
            first, second = ("all-off", "all-on") if round_no % 2 == 0 else ("all-on", "all-off")
            started = time.perf_counter()
            report = await self.single.apply_scene(first, "*", user="bench", until=None)
            single_s.append(time.perf_counter() - started)
            not_confirmed += total - report.outcome.count(Status.CONFIRMED)
            started = time.perf_counter()
            report = await self.city.apply_scene(second, "*", user="bench", until="none")
            city_s.append(time.perf_counter() - started)
            not_confirmed += total - report.outcome.count(Status.CONFIRMED)
            print(f"  round {round_no + 1}: single {single_s[-1]:.3f} s, city {city_s[-1]:.3f} s", flush=True)
        s50, c50 = percentile(single_s, 50), percentile(city_s, 50)
        return {
            "rounds": self.args.rounds,
            "single_p50_s": round(s50, 3), "single_p90_s": round(percentile(single_s, 90), 3),
            "city_p50_s": round(c50, 3), "city_p90_s": round(percentile(city_s, 90), 3),
            "ratio_p50": round(c50 / s50, 2), "not_confirmed": not_confirmed,
        }

    # -- 2. and 3. broker restarts -----------------------------------------------------------

    async def restart_broker(self, *, crash: bool) -> float:
        """Restart the broker; seconds until every district is born again and complete at the city."""
        assert self.broker is not None and self.city is not None
        births = {d: v.births for d, v in self.city.mirror.districts.items()}
        started = time.monotonic()
        await asyncio.to_thread(self.broker.restart, crash=crash)
        city = self.city
        await self.until(lambda: self.complete() and all(city.mirror.districts[d].births > n for d, n in births.items()),
                         BIRTH_TIMEOUT_S, "every district born again")
        return time.monotonic() - started

    async def restarts(self) -> dict[str, Any]:
        views = [await self.restart_broker(crash=False) for _ in range(self.args.view_restarts)]
        print(f"  broker restarts: the city's view complete again in {', '.join(f'{v:.2f}' for v in views)} s", flush=True)
        return {"restarts": len(views), "complete_p50_s": round(percentile(views, 50), 2), "complete_max_s": round(max(views), 2)}

    async def restarts_while_switching(self) -> dict[str, Any]:
        assert self.city is not None
        rng = random.Random(self.args.seed)
        times: list[float] = []
        commands: list[int] = []
        for n in range(self.args.restarts):
            scene = "all-on" if n % 2 == 0 else "all-off"
            switch = asyncio.ensure_future(self.city.apply_scene(scene, "*", user="bench", until="none"))
            await asyncio.sleep(rng.uniform(0.0, 1.2))
            times.append(await self.restart_broker(crash=True))
            report = await switch
            commands.append(report.command_id)
            print(f"  restart {n + 1}/{self.args.restarts} during a switch: {report.outcome.count(Status.CONFIRMED)} confirmed "
                  f"at once; the city's view complete again in {times[-1]:.2f} s", flush=True)
        await self.until_settled()
        return {**await self.tally(commands), "restarts": len(times), "complete_p50_s": round(percentile(times, 50), 2),
                "complete_max_s": round(max(times), 2)}

    def _outboxes(self) -> dict[str, list[tuple[int, str, str]]]:
        out = {}
        for name in self.processes:
            db = sqlite3.connect(f"file:{self.work / name}.db?mode=ro", uri=True)
            try:
                out[name] = db.execute("SELECT id, kind, body FROM federation_outbox ORDER BY id").fetchall()
            finally:
                db.close()
        return out

    async def until_settled(self) -> None:
        """Until the city has recorded every event of every district's outbox."""
        assert self.city is not None
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            received = await self.city.store.federation.received()
            outboxes = await asyncio.to_thread(self._outboxes)
            if all(received.get(d, 0) == (rows[-1][0] if rows else 0) for d, rows in outboxes.items()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the city did not catch up with the districts in {SETTLE_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.2)

    async def tally(self, commands: Sequence[int]) -> dict[str, Any]:
        assert self.city is not None
        outboxes = await asyncio.to_thread(self._outboxes)
        sent = recorded = lost = duplicated = differing = 0
        for district, rows in outboxes.items():
            got = await self.city.store.read(
                "SELECT id, kind, body FROM federation_events WHERE district = ? ORDER BY id", [district]
            )
            ids = [r["id"] for r in got]
            sent += len(rows)
            recorded += len(got)
            duplicated += len(ids) - len(set(ids))
            lost += len({r[0] for r in rows} - set(ids))
            theirs = {r[0]: (r[1], r[2]) for r in rows}
            differing += sum(1 for r in got if theirs.get(r["id"]) != (r["kind"], r["body"])  # (roll-ups: recorded as a summary)
                             and not (r["kind"] in SUMMARISED and theirs.get(r["id"], ("",))[0] == r["kind"]))
        carried_out_twice = 0
        for name in self.processes:  # a district's commands from the city: one per request it took
            db = sqlite3.connect(f"file:{self.work / name}.db?mode=ro", uri=True)
            try:
                ran = db.execute("SELECT COUNT(*) FROM commands WHERE user_name LIKE '%(city)'").fetchone()[0]
                taken = db.execute("SELECT COUNT(*) FROM federation_inbox WHERE status = 'done'").fetchone()[0]
                carried_out_twice += max(0, ran - taken)
            finally:
                db.close()
        complete = 0
        total = self.args.districts * self.args.controllers
        for command_id in commands:
            results = await self.city.store.commands.results(command_id)
            complete += sum(1 for r in results if r.status == "confirmed") == total
        host = self.city.host.status()
        return {
            "events_sent": sent, "events_recorded": recorded, "lost": lost, "duplicated": duplicated,
            "recorded_differently": differing, "copies_dropped_on_receipt": host["events_received_again"],
            "received_after_a_gap": host["events_received_after_a_gap"], "requests_carried_out_twice": carried_out_twice,
            "switches_confirmed_in_full_after_amendments": f"{complete}/{len(commands)}",
        }


async def run_federation_bench(args: argparse.Namespace) -> int:
    bench = Bench(args)
    result: dict[str, Any] = {"districts": args.districts, "controllers_per_district": args.controllers}
    try:
        await bench.start()
        result["city_store"] = bench.store_kind
        result["switch"] = await bench.switches()
        result["broker_restart"] = await bench.restarts()
        result["restarts_during_switching"] = await bench.restarts_while_switching()
    finally:
        with contextlib.suppress(Exception):
            await bench.stop()
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        _print(result)
    s, r, w = result["switch"], result["broker_restart"], result["restarts_during_switching"]
    ok = (s["ratio_p50"] <= 1.3 and s["not_confirmed"] == 0 and r["complete_max_s"] <= 10.0 and w["complete_max_s"] <= 10.0
          and w["lost"] == 0 and w["duplicated"] == 0 and w["recorded_differently"] == 0 and w["requests_carried_out_twice"] == 0)
    return 0 if ok else 1


def _print(r: dict[str, Any]) -> None:
    s, b, w = r["switch"], r["broker_restart"], r["restarts_during_switching"]
    total = r["districts"] * r["controllers_per_district"]
    print(
        f"federation: {r['districts']} district daemons x {r['controllers_per_district']} Modbus cabinets, Mosquitto (TLS), "
        f"the city's records on {r['city_store']}\n"
        f"  the one switch over {total}, {s['rounds']} rounds each:\n"
        f"    single daemon:          p50 {s['single_p50_s']:.3f} s   p90 {s['single_p90_s']:.3f} s\n"
        f"    city over {r['districts']} districts: p50 {s['city_p50_s']:.3f} s   p90 {s['city_p90_s']:.3f} s\n"
        f"    ratio city/single at p50: {s['ratio_p50']:.2f} (goal <= 1.3); controllers not confirmed: {s['not_confirmed']}\n"
        f"  broker restart -> every district complete at the city: p50 {b['complete_p50_s']:.2f} s, "
        f"max {b['complete_max_s']:.2f} s over {b['restarts']} (goal <= 10 s)\n"
        f"  the broker killed during a switch, {w['restarts']} times; switches confirmed in full once late answers came: "
        f"{w['switches_confirmed_in_full_after_amendments']}\n"
        f"    view complete again: p50 {w['complete_p50_s']:.2f} s, max {w['complete_max_s']:.2f} s\n"
        f"    events sent by the districts {w['events_sent']}, recorded by the city {w['events_recorded']}: "
        f"lost {w['lost']}, duplicated {w['duplicated']}, recorded differently {w['recorded_differently']}\n"
        f"    copies dropped on receipt {w['copies_dropped_on_receipt']}, received after a gap (sent again) "
        f"{w['received_after_a_gap']}, requests carried out twice {w['requests_carried_out_twice']}"
    )
