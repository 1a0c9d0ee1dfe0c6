"""The alarm state machine: conditions in, faults out (no I/O; every call takes ``now`` in ms).

* A condition present opens a fault (one open fault per key), or refreshes the open one.
* A condition judged absent starts the clearing hold-off; present again within it, the fault
  stays open and counts another occurrence. ``tick`` clears faults whose hold-off has run out.
* A key that opened more than ``chatter_per_hour`` times in the last hour opens *chattering*,
  and then needs ``chatter_stable_s`` of calm before it clears.
* Root cause (``catalogue.CAUSES``): a fault whose cause is active is opened as that cause's
  child and is no alarm; when its cause clears it is annunciated (or re-parented). Every cabinet
  of a site without supply at once (two or more) is one site fault over the cabinets' faults.
* Shelving is by key, so that a fault reopening while its point is shelved (a bridge under
  repair) stays shelved until the shelf expires.

Every change is appended to ``changes`` (drained by the service, which records, publishes and
notifies), and the faults it touched are in ``dirty`` until recorded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lightctl.model.desired import Desired
from lightctl.model.faults import FaultsConfig
from lightctl.model.maintenance import FaultRecord, fault_key
from lightctl.model.values import ControllerReading, FaultKind
from lightctl.services.faults.catalogue import CAUSES, TIMED, severity_of
from lightctl.services.faults.rules import Findings, Key, judges
from lightctl.services.faults.spec import ControllerSpec

HOUR_MS = 3_600_000
SEEN_SAVED_EVERY_MS = 60_000
"""An open fault's ``last_seen`` is recorded at most this often (the rest is in memory)."""


@dataclass(frozen=True, slots=True)
class Change:
    fault: FaultRecord
    event: str
    """opened, cleared, acknowledged, shelved, unshelved, suppressed, annunciated, chattering."""
    person: str | None = None
    note: str | None = None


class UnknownFault(KeyError):
    pass


class Tracker:
    def __init__(self, specs: Mapping[str, ControllerSpec], config: FaultsConfig, next_id: int = 1) -> None:
        self.specs = specs
        self.config = config
        self.open: dict[str, FaultRecord] = {}
        """Open faults by key."""
        self.by_id: dict[int, FaultRecord] = {}
        self.by_controller: dict[str, dict[Key, FaultRecord]] = {}
        self.site_faults: dict[str, FaultRecord] = {}
        self.clearing: set[int] = set()
        self.shelved: set[int] = set()
        self.opens: dict[str, deque[int]] = {}
        self.shelves: dict[str, tuple[int, str, str]] = {}
        """Shelves by key: (until, by, reason)."""
        self.metered: dict[str, set[str]] = {}
        """Per site, the cabinets that report their supply voltage."""
        self.changes: list[Change] = []
        self.dirty: set[int] = set()
        self.next_id = next_id

    # -- restart ---------------------------------------------------------------------------

    def load(self, records: Iterable[FaultRecord], shelves: Mapping[str, tuple[int, str, str]] = {}) -> None:
        """Take the open faults the store kept: a restart judges them again, never duplicates."""
        for rec in records:
            self._index(rec)
            self.next_id = max(self.next_id, rec.id + 1)
            if rec.shelved_until is not None:
                self.shelved.add(rec.id)
        self.shelves.update(shelves)

    # -- conditions ------------------------------------------------------------------------

    def observe(
        self, cid: str, findings: Findings, desired: Mapping[str, Desired], reading: ControllerReading, held: bool, now: int
    ) -> None:
        """One complete reading's conditions for controller ``cid``."""
        here = self.by_controller.get(cid)
        present = findings.present
        if not here and not present:
            return
        spec = self.specs[cid]
        for (kind, channel), evidence in present.items():
            rec = here.get((kind, channel)) if here else None
            if rec is None:
                self._open(spec, kind, channel, evidence, now)
            else:
                self._seen(rec, evidence, now)
        if here:
            for key, rec in list(here.items()):
                if key not in present and rec.clear_since is None and judges(spec, desired, reading, held, key):
                    rec.clear_since = now
                    self.clearing.add(rec.id)

    def condition(self, cid: str, kind: FaultKind, evidence: str | None, now: int) -> None:
        """A timed condition of a controller (communication lost, unconfirmed): present with its
        evidence, or gone (None)."""
        here = self.by_controller.get(cid)
        rec = here.get((kind, None)) if here else None
        if evidence is not None:
            if rec is None:
                self._open(self.specs[cid], kind, None, evidence, now)
            else:
                self._seen(rec, evidence, now)
        elif rec is not None and rec.clear_since is None:
            rec.clear_since = now
            self.clearing.add(rec.id)

    def note_metered(self, cid: str) -> None:
        spec = self.specs[cid]
        self.metered.setdefault(spec.site_id, set()).add(cid)

    def _seen(self, rec: FaultRecord, evidence: str, now: int) -> None:
        rec.last_seen = now
        if rec.clear_since is not None:
            rec.clear_since = None
            self.clearing.discard(rec.id)
            rec.occurrences += 1
            self.dirty.add(rec.id)
        if evidence != rec.evidence:
            rec.evidence = evidence
            self.dirty.add(rec.id)
        elif now - rec.saved_seen >= SEEN_SAVED_EVERY_MS:
            self.dirty.add(rec.id)

    # -- opening and clearing --------------------------------------------------------------

    def _open(self, spec: ControllerSpec, kind: FaultKind, channel: str | None, evidence: str, now: int) -> FaultRecord:
        key = fault_key(kind, spec.id, channel)
        ch = spec.channels.get(channel) if channel is not None else None
        rec = FaultRecord(
            id=self._new_id(),
            key=key,
            kind=kind,
            severity=severity_of(kind, spec.importance, self.config),
            district_id=spec.district_id,
            site_id=spec.site_id,
            controller_id=spec.id,
            channel_id=channel,
            lat=spec.lat,
            lon=spec.lon,
            lighting=ch.lighting if ch is not None else spec.lighting,
            luminaires=ch.luminaires if ch is not None else spec.luminaires,
            opened_at=now,
            last_seen=now,
            evidence=evidence,
        )
        self._start(rec, now)
        if kind is FaultKind.SUPPLY_LOSS:
            self._site_supply(spec.site_id, now)
        return rec

    def _start(self, rec: FaultRecord, now: int) -> None:
        history = self.opens.get(rec.key)
        if history is None:
            history = self.opens[rec.key] = deque(maxlen=self.config.chatter_per_hour + 1)
        history.append(now)
        if len(history) > self.config.chatter_per_hour and now - history[0] <= HOUR_MS:
            rec.chattering = True
        shelf = self.shelves.get(rec.key)
        if shelf is not None and shelf[0] > now:
            rec.shelved_until, rec.shelved_by, rec.shelve_reason = shelf
            self.shelved.add(rec.id)
        self._index(rec)
        cause = self._cause_of(rec)
        rec.parent_id = cause.id if cause is not None else None
        self._changed(rec, "opened")
        if rec.chattering:
            self._changed(rec, "chattering")
        self._adopt(rec)

    def _close(self, rec: FaultRecord, now: int, how: str) -> None:
        rec.cleared_at = now
        rec.cleared_how = how
        self._unindex(rec)
        self._changed(rec, "cleared", note=how)
        for other in self._neighbours(rec):
            self._reparent(other)
        if rec.kind is FaultKind.SUPPLY_LOSS and rec.controller_id is not None:
            self._site_supply(rec.site_id, now)

    def tick(self, now: int) -> None:
        """Clear what stayed clear through its hold-off; end expired shelves; forget old history."""
        holdoff = round(self.config.clear_holdoff_s * 1000)
        stable = round(self.config.chatter_stable_s * 1000)
        due = []
        for fid in list(self.clearing):
            rec = self.by_id.get(fid)
            if rec is None or rec.clear_since is None:
                self.clearing.discard(fid)
            elif now - rec.clear_since >= (stable if rec.chattering else holdoff):
                due.append(rec)
        # children first: a cause and its effects gone together is no alarm for the effects
        for rec in sorted(due, key=self._depth, reverse=True):
            self.clearing.discard(rec.id)
            if rec.active:
                self._close(rec, now, "condition gone" if not rec.chattering else "stable again after chattering")
        for fid in list(self.shelved):
            rec = self.by_id.get(fid)
            if rec is None:
                self.shelved.discard(fid)
            elif rec.shelved_until is not None and rec.shelved_until <= now:
                self.shelved.discard(fid)
                self._changed(rec, "unshelved", note="shelf expired")
        for key in [k for k, shelf in self.shelves.items() if shelf[0] <= now]:
            del self.shelves[key]

    def _depth(self, rec: FaultRecord) -> int:
        depth, parent = 0, rec.parent_id
        while parent is not None and depth < len(CAUSES):
            depth += 1
            found = self.by_id.get(parent)
            parent = found.parent_id if found is not None else None
        return depth

    def retire(self, now: int) -> int:
        """Clear the open faults of controllers and sites the inventory no longer has (a config
        reload removed them): nobody will judge them again. How many."""
        sites = {spec.site_id for spec in self.specs.values()}
        gone = [r for r in self.by_id.values() if (r.controller_id is not None and r.controller_id not in self.specs)
                or (r.controller_id is None and r.site_id not in sites)]
        for rec in gone:
            if rec.active:
                self._close(rec, now, "removed from the configuration")
        return len(gone)

    def forget_history(self, now: int) -> int:
        """Drop the opening history of keys quiet for an hour (memory stays flat); how many."""
        stale = [key for key, history in self.opens.items() if key not in self.open and (not history or now - history[-1] > HOUR_MS)]
        for key in stale:
            del self.opens[key]
        return len(stale)

    # -- operators -------------------------------------------------------------------------

    def get(self, fault_id: int) -> FaultRecord:
        rec = self.by_id.get(fault_id)
        if rec is None:
            raise UnknownFault(fault_id)
        return rec

    def acknowledge(self, fault_id: int, by: str, now: int, note: str | None = None) -> FaultRecord:
        rec = self.get(fault_id)
        if rec.acked_at is None:
            rec.acked_at, rec.acked_by = now, by
            self._changed(rec, "acknowledged", by, note)
        return rec

    def shelve(self, fault_id: int, by: str, reason: str, until: int, now: int) -> FaultRecord:
        rec = self.get(fault_id)
        rec.shelved_until, rec.shelved_by, rec.shelve_reason = until, by, reason
        self.shelves[rec.key] = (until, by, reason)
        self.shelved.add(rec.id)
        self._changed(rec, "shelved", by, reason)
        return rec

    def unshelve(self, fault_id: int, by: str, now: int) -> FaultRecord:
        rec = self.get(fault_id)
        self.shelves.pop(rec.key, None)
        self.shelved.discard(rec.id)
        if rec.shelved_until is not None:
            rec.shelved_until = None
            self._changed(rec, "unshelved", by)
        return rec

    # -- root cause ------------------------------------------------------------------------

    def _cause_of(self, rec: FaultRecord) -> FaultRecord | None:
        cid, channel = rec.controller_id, rec.channel_id
        for cause in CAUSES:
            if rec.kind not in cause.hides:
                continue
            found: FaultRecord | None = None
            if cause.scope == "site":
                # only the dark cabinets' faults: one whose supply is back is its own again
                if cid is not None and (
                    (rec.kind is FaultKind.SUPPLY_LOSS and channel is None)
                    or fault_key(FaultKind.SUPPLY_LOSS, cid, None) in self.open
                ):
                    found = self.site_faults.get(rec.site_id)
            elif cid is None:
                continue
            elif cause.scope == "controller":
                found = self.open.get(fault_key(cause.kind, cid, None))
            elif cause.where == "channel":
                if channel is not None:
                    found = self.open.get(fault_key(cause.kind, cid, channel))
            else:
                here = self.by_controller.get(cid, {})
                found = next((r for (kind, ch), r in here.items() if kind is cause.kind and ch is not None), None)
            if found is not None and found is not rec:
                return found
        return None

    def _neighbours(self, rec: FaultRecord) -> list[FaultRecord]:
        """Open faults a change of ``rec`` may re-parent: its controller's, or its site's."""
        if rec.controller_id is None:
            return [r for cid in self.metered.get(rec.site_id, ()) for r in self.by_controller.get(cid, {}).values()]
        return list(self.by_controller.get(rec.controller_id, {}).values())

    def _adopt(self, cause: FaultRecord) -> None:
        for rec in self._neighbours(cause):
            if rec is not cause:
                self._reparent(rec)

    def _reparent(self, rec: FaultRecord) -> None:
        cause = self._cause_of(rec)
        parent = cause.id if cause is not None else None
        if parent == rec.parent_id:
            return
        was = rec.parent_id
        rec.parent_id = parent
        if parent is None:
            self._changed(rec, "annunciated", note="its cause cleared")
        elif was is None:
            self._changed(rec, "suppressed", note=f"under fault #{parent}")
        else:
            self.dirty.add(rec.id)

    def _site_supply(self, site_id: str, now: int) -> None:
        """Open, update or clear the site's supply fault from its cabinets' (see module doc)."""
        cabinets = self.metered.get(site_id, set())
        dark = [cid for cid in cabinets if fault_key(FaultKind.SUPPLY_LOSS, cid, None) in self.open]
        site = self.site_faults.get(site_id)
        if site is None:
            if len(cabinets) >= 2 and len(dark) == len(cabinets):
                any_spec = self.specs[dark[0]]
                rec = FaultRecord(
                    id=self._new_id(),
                    key=fault_key(FaultKind.SUPPLY_LOSS, f"site:{site_id}", None),
                    kind=FaultKind.SUPPLY_LOSS,
                    severity=severity_of(FaultKind.SUPPLY_LOSS, any_spec.importance, self.config),
                    district_id=any_spec.district_id,
                    site_id=site_id,
                    controller_id=None,
                    channel_id=None,
                    lat=any_spec.lat,
                    lon=any_spec.lon,
                    lighting=_lighting(self.specs[c].lighting for c in cabinets),
                    luminaires=sum(self.specs[c].luminaires for c in cabinets),
                    opened_at=now,
                    last_seen=now,
                    evidence=f"all {len(cabinets)} cabinets of the site without supply",
                )
                self._start(rec, now)
            return
        if not dark:
            self._close(site, now, "supply back at every cabinet")
            return
        evidence = f"{len(dark)} of {len(cabinets)} cabinets of the site without supply"
        if evidence != site.evidence:
            site.evidence, site.last_seen = evidence, now
            self.dirty.add(site.id)

    # -- bookkeeping -----------------------------------------------------------------------

    def _new_id(self) -> int:
        fid = self.next_id
        self.next_id += 1
        return fid

    def _index(self, rec: FaultRecord) -> None:
        self.open[rec.key] = rec
        self.by_id[rec.id] = rec
        if rec.controller_id is None:
            self.site_faults[rec.site_id] = rec
        else:
            self.by_controller.setdefault(rec.controller_id, {})[(rec.kind, rec.channel_id)] = rec

    def _unindex(self, rec: FaultRecord) -> None:
        self.open.pop(rec.key, None)
        self.by_id.pop(rec.id, None)
        self.clearing.discard(rec.id)
        self.shelved.discard(rec.id)
        if rec.controller_id is None:
            self.site_faults.pop(rec.site_id, None)
        else:
            here = self.by_controller.get(rec.controller_id)
            if here is not None:
                here.pop((rec.kind, rec.channel_id), None)
                if not here:
                    del self.by_controller[rec.controller_id]

    def _changed(self, rec: FaultRecord, event: str, person: str | None = None, note: str | None = None) -> None:
        self.dirty.add(rec.id)
        self.changes.append(Change(rec, event, person, note))

    def drain(self) -> list[Change]:
        changes, self.changes = self.changes, []
        return changes

    def alarms(self, now: int) -> list[FaultRecord]:
        return [rec for rec in self.by_id.values() if rec.alarm(now)]

    def timed_open(self, cid: str, kind: FaultKind) -> bool:
        assert kind in TIMED
        here = self.by_controller.get(cid)
        return here is not None and (kind, None) in here


def _lighting(kinds: Iterable[str]) -> str:
    found = set(kinds)
    return found.pop() if len(found) == 1 else "mixed"
