"""``/metrics``: the daemon's figures for the operations team, in the Prometheus text format
(prometheus-client).

Counted as they happen (a :class:`~lightctl.runtime.hooks.DaemonService`): commands and their
latency by source and outcome, readings and link changes taken. Read when scraped (a collector
over the daemon's state, so they are never stale): controllers by protocol and link state, the
store's queue depth, health and dropped records, the last show's cue spread. Other services add
their own collectors to :attr:`Telemetry.registry` (faults by severity, ...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lightctl.reconcile.engine import Engine
from lightctl.reconcile.outcomes import EngineEvent, LinkEvent, ReadingEvent
from lightctl.runtime.commands import CommandReport, Override
from lightctl.runtime.showrunner import ShowRunner
from lightctl.store import Store

COMMAND_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)


class _StateCollector(Collector):
    """Figures read from the daemon when Prometheus scrapes."""

    def __init__(self, engine: Engine, store: Store, shows: ShowRunner, overrides: Callable[[], list[Override]]) -> None:
        self.engine, self.store, self.shows, self.overrides = engine, store, shows, overrides

    def collect(self) -> Iterable[GaugeMetricFamily]:
        links = GaugeMetricFamily("lightctl_controllers", "Controllers by protocol and link state", labels=["protocol", "link"])
        counts: Counter[tuple[str, str]] = Counter()
        pending = 0
        for rt in self.engine.runtimes.values():
            counts[(rt.info.controller.protocol, rt.link.state.value)] += 1
            pending += len(rt.pending())
        for (protocol, link), n in sorted(counts.items()):
            links.add_metric([protocol, link], n)
        yield links
        yield GaugeMetricFamily("lightctl_channels_pending", "Channels whose desired state is not confirmed", value=pending)
        health = self.store.health()
        yield GaugeMetricFamily("lightctl_store_healthy", "1 when the store writes, 0 while its writes fail", value=int(health.healthy))
        yield GaugeMetricFamily("lightctl_store_queue_depth", "Write jobs queued for the store's writer", value=health.queued_writes)
        yield GaugeMetricFamily(
            "lightctl_store_observations_pending", "Observation records buffered, not yet written", value=health.observations_pending
        )
        yield GaugeMetricFamily(
            "lightctl_store_observations_dropped", "Observation records dropped since the store opened", value=health.observations_dropped
        )
        yield GaugeMetricFamily("lightctl_store_failed_batches", "Write batches that failed since the store opened", value=health.failed_batches)
        yield GaugeMetricFamily("lightctl_overrides", "Operator overrides and curtailments in force", value=len(self.overrides()))
        yield from self._show_spread()

    def _show_spread(self) -> Iterator[GaugeMetricFamily]:
        run = self.shows.current or self.shows.last
        spread = GaugeMetricFamily(
            "lightctl_show_cue_spread_ms",
            "How far from its beat each cue's send left, over the running or last show (quantiles)",
            labels=["show", "quantile"],
        )
        offsets = sorted(abs(r.sent_offset_ms) for r in (run.records if run else []) if r.sent_offset_ms is not None)
        if run is not None and offsets:
            for q in (0.5, 0.99, 1.0):
                spread.add_metric([run.show.config.id, f"{q:g}"], offsets[min(len(offsets) - 1, int(q * len(offsets)))])
        yield spread


class Telemetry:
    """The daemon's Prometheus registry, and the counters fed by its events (a DaemonService)."""

    name = "telemetry"

    def __init__(self, engine: Engine, store: Store, shows: ShowRunner, overrides: Callable[[], list[Override]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.commands = PromCounter(
            "lightctl_commands", "Commands carried out, by source, action and outcome", ["source", "action", "outcome"],
            registry=self.registry,
        )
        self.command_seconds = PromHistogram(
            "lightctl_command_seconds", "A command's time from dispatch to its last controller's result", ["source"],
            buckets=COMMAND_SECONDS_BUCKETS, registry=self.registry,
        )
        self.controller_results = PromCounter(
            "lightctl_controller_results", "Controllers' results in commands, by status", ["status"], registry=self.registry
        )
        self.readings = PromCounter("lightctl_readings", "Readings taken from controllers (polls and pushes)", registry=self.registry)
        self.link_changes = PromCounter("lightctl_link_changes", "Controllers going online or offline", ["state"], registry=self.registry)
        self.registry.register(_StateCollector(engine, store, shows, overrides))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def observe(self, event: EngineEvent) -> None:
        if isinstance(event, ReadingEvent):
            self.readings.inc()
        elif isinstance(event, LinkEvent):
            self.link_changes.labels(event.state.value).inc()

    def command_done(self, report: CommandReport) -> None:
        outcome = report.outcome
        statuses = Counter(o.status.value for o in outcome.controllers.values())
        label = "confirmed" if set(statuses) <= {"confirmed"} else "incomplete"
        self.commands.labels(report.source, report.action, label).inc()
        self.command_seconds.labels(report.source).observe(outcome.elapsed_s)
        for status, n in statuses.items():
            self.controller_results.labels(status).inc(n)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
