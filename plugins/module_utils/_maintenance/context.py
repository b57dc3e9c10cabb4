# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every step of one maintenance module run shares, and how it reads and judges the record.

The protocol and its invariants are written down in docs/maintenance-protocol.md; in short:

I1 an entry leaves the record only after a resume of its target Succeeded;
I2 no state-changing request leaves unless, just before it, the record was
   read and the hold is this run's with time left to cover the request;
I3 another run is judged gone only by its bound (with room for clock skew),
   by a process identity that is certain (host, boot, PID namespace, pid,
   start time), or by the operator's take-over;
I4 a module whose playbook is gone sends no further state-changing request;
I5 a record write is never retried blindly: after any failure or delay the
   record is read again and the decision made again;
I6 release sends every resume before any cleanup, and one failed step never
   stops another target's resume.
"""

from __future__ import annotations

import dataclasses
import time
import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import Poller, Reading
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef, TargetRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.target import BUSY, FLUSHING, SUSPENDED, target_state
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ArmError, HpcCacheError
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.identity import Identity, PlaybookWatch
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stops import HoldLost, RunGone
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stores import FileStore, Store, TagStore
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import (
    MAX_HOLD,
    Holder,
    Record,
    cache_hash,
    read_record,
)

# A controller's clock may differ from Azure's (the Date of its answers) by at most this much; a run whose
# clock is further off refuses to hold. Two controllers are then within twice this of each other, so a hold
# is judged past its bound only STALE_MARGIN after its until, on any controller's clock.
MAX_SKEW = 60
STALE_MARGIN = 2 * MAX_SKEW
# The holder stops (never renews, never sends) once its hold has less than this left on its own clock: another
# controller, its clock up to 2 * MAX_SKEW ahead, may judge the hold past its bound from until on, and a write
# takes up to a request's bound (connect and read) to land.
RENEW_BOUND = 70
# After a write, the record is read until it shows the write (a read may show the old tags for a while).
STALE_READ_SECONDS = 15.0
# The states a target is read in before anyone decides whose it is: something runs on it.
BUSY_STATES = frozenset((BUSY, FLUSHING))
KNOWN = frozenset(("ready", BUSY, SUSPENDED, FLUSHING))

Stores = t.List[t.Tuple[Store, Record]]


class RunContext:
    """One module run of the protocol: the cache, the run, who runs it, its options, its one Deadline (made
    where the module starts; its sleep watches the playbook, I4), the stores, and the result it builds."""

    def __init__(self, ops: CacheOperations, ref: CacheRef, *, run: str, identity: Identity, hold_seconds: int,
                 take_over: bool, local_record: t.Optional[str], options: ActionOptions, deadline: Deadline,
                 wall_clock: t.Callable[[], float]) -> None:
        if identity.pid and not (isinstance(deadline.sleep, PlaybookWatch) and deadline.sleep.identity == identity):
            raise ValueError("the deadline's sleep must watch the playbook: identity.watching(client.sleep), "
                             "put on the client before the Deadline is made")
        self.ops, self.ref, self.run_id, self.identity = ops, ref, run, identity
        self.hold_seconds = min(hold_seconds, MAX_HOLD)
        self.take_over = take_over
        self.options, self.deadline, self.wall_clock = options, deadline, wall_clock
        self.cache = cache_hash(ref)
        self.tags = TagStore(ops, ref, deadline)
        self.local = FileStore(local_record, ref, deadline) if local_record else None
        self.result: t.Dict[str, t.Any] = {"changed": False, "recovered": [], "warnings": []}
        self.hold_values: t.List[str] = []  # the hold as the last read of the cache's tags showed it

    def action_options(self) -> ActionOptions:
        """The options of the actions the protocol sends: followed to their end, and never in check mode."""
        return dataclasses.replace(self.options, wait=True, check_mode=False)

    # Reading ------------------------------------------------------------------------------------
    def stores(self) -> Stores:
        stores: Stores = [(self.tags, read_record(self.tags.read(), self.cache))]
        self.hold_values = list(stores[0][1].holder_tag.values())
        self._check_clock()
        if self.local is not None:
            stores.append((self.local, read_record(self.local.read(), self.cache)))
        return stores

    def _check_clock(self) -> None:
        """Refuse to act on a hold's bound while this controller's clock is far from Azure's (I3)."""
        if self.tags.server_date is None:
            return
        skew = self.wall_clock() - self.tags.server_date
        if abs(skew) > MAX_SKEW:
            raise HpcCacheError(
                "This controller's clock is %d s %s Azure's (the Date of its answers); a maintenance hold's bound "
                "is only safe within %d s. Nothing was sent: set the clock right (NTP) and run again"
                % (abs(skew), "ahead of" if skew > 0 else "behind", MAX_SKEW), clock_skew=round(skew))

    def judge(self, holder: Holder) -> str:
        """ours, live (another run within its bound), stale (past it, with room for skew), dead (its process
        is certainly gone)."""
        if holder.run == self.run_id:
            return "ours"
        # past its bound only on a clock checked against Azure's (a Date read, within MAX_SKEW): without one,
        # no bound is judged passed (fail closed), and only a certain death or a take-over recovers the hold
        if self.tags.server_date is not None and self.wall_clock() >= holder.until + STALE_MARGIN:
            return "stale"
        if self.identity.judge(holder) is False:
            return "dead"
        return "live"

    def report(self, stores: Stores) -> None:
        holders = [(store, rec.holder) for store, rec in stores if rec.holder is not None]
        entries = {name: run for _store, rec in stores for name, run in rec.entries.items()}
        self.result["record"] = {
            "holder": dict(holders[0][1].describe(), state=self.judge(holders[0][1]), kept_in=holders[0][0].where)
            if holders else None,
            "storage_targets": sorted(entries),
            "ignored_tags": sorted(name for _store, rec in stores for name in rec.ignored),
        }
        for _store, rec in stores:
            if rec.ignored:
                self.result["warnings"].append(
                    "Ignored maintenance tags that name another cache or are malformed: %s" % ", ".join(rec.ignored))

    def refuse_live(self, holder: Holder) -> t.NoReturn:
        raise HpcCacheError(
            "The cache %s is held by another maintenance run (run %s on controller %s, pid %d, since %s, until %s): "
            "nothing was sent. Wait for it to end, or, if that run is gone (its job killed or its controller lost), "
            "rerun with cache_maintenance_take_over: true to recover what it suspended first"
            % (self.ref.name, holder.run, holder.host or "unknown", holder.pid, iso(holder.start), iso(holder.until)),
            record=self.result.get("record"))

    def refuse_live_holds(self, stores: Stores) -> None:
        """Refuse a live hold of another run (unless taken over); any other hold, and every entry of another
        run, is recovered once this run holds the cache."""
        for _store, rec in stores:
            if rec.holder is None or rec.holder.run == self.run_id:
                continue
            if self.judge(rec.holder) == "live" and not self.take_over:
                self.refuse_live(rec.holder)

    # Whose the hold is --------------------------------------------------------------------------
    def store_of_hold(self, stores: Stores) -> t.Tuple[Store, Holder]:
        """The store that holds this run's hold. A read that shows another hold, or none, is read again for up
        to STALE_READ_SECONDS (a read may show the tags as they were), then HoldLost."""
        waited, delay = 0.0, 1.0
        while True:
            mine = [(store, rec.holder) for store, rec in stores
                    if rec.holder is not None and rec.holder.run == self.run_id]
            if mine:
                return mine[0]
            if waited >= STALE_READ_SECONDS or not self.deadline.pause(delay):
                holder = next((rec.holder for _s, rec in stores if rec.holder is not None), None)
                raise HoldLost("The hold on %s is no longer this run's (%s): nothing more is sent by this run"
                               % (self.ref.name, "run %s holds it" % holder.run if holder else "it is gone"))
            waited += delay
            delay = min(delay * 2, 5.0)
            stores = self.stores()

    def still_ours(self, stores: Stores) -> None:
        """The decision behind a write of this run's record, made again: the hold is still this run's, and not
        so far past its bound that another run may be recovering it already."""
        _store, holder = self.store_of_hold(stores)
        self.within_bound(holder)

    def within_bound(self, holder: Holder) -> None:
        """This run's hold, as read, still has more than RENEW_BOUND left on this run's clock: else HoldLost (it is
        neither renewed nor acted under)."""
        if self.wall_clock() >= holder.until - RENEW_BOUND:
            raise HoldLost("The hold on %s ran out at %s (this run was paused or slow past its bound): another run "
                           "may be recovering it, so this run sends nothing more" % (self.ref.name, iso(holder.until)))

    def safely_ours(self) -> bool:
        """The hold reads as this run's with time left to act on it."""
        try:
            self.still_ours(self.stores())
        except HoldLost:
            return False
        return True

    def entries_of_mine(self) -> t.Dict[str, t.List[t.Tuple[Store, str]]]:
        """This run's entries as the record reads now: folded name -> (store, tag name) of each."""
        found: t.Dict[str, t.List[t.Tuple[Store, str]]] = {}
        for store, rec in self.stores():
            for name, run in rec.entries.items():
                if run == self.run_id:
                    found.setdefault(name.casefold(), []).append((store, rec.tag_names[name]))
        return found

    def alive(self) -> None:
        """RunGone once the playbook this module runs under has ended (I4)."""
        if not self.identity.run_alive():
            raise RunGone("The playbook of maintenance run %s has ended (a canceled job or a killed run): this "
                          "module sends nothing more; the record stays on the cache %s, and the next run resumes "
                          "what this one recorded" % (self.run_id, self.ref.name))

    # This run's hold ----------------------------------------------------------------------------
    def until(self) -> int:
        return int(self.wall_clock()) + self.hold_seconds

    def holder(self) -> Holder:
        ident = self.identity
        return Holder(self.run_id, ident.host, ident.boot, ident.pid, ident.pstart, int(self.wall_clock()),
                      self.until(), self.cache, ident.ns)

    # A target -----------------------------------------------------------------------------------
    def wait_while_busy(self, ref: TargetRef, state: str) -> t.Optional[str]:
        """Wait while a target reads Busy, Flushing or a state the API does not name; None once it is gone."""
        if state.strip().casefold() in KNOWN - BUSY_STATES:
            return state
        last: t.Dict[str, t.Optional[str]] = {"state": state}

        def read() -> Reading:
            try:
                body = self.ops.get_target(ref, self.deadline.at)
            except ArmError as exc:
                if exc.status == 404:
                    last["state"] = None
                    return Reading(True, status="Gone")
                raise
            now = target_state(body)
            last["state"] = now
            folded = now.strip().casefold()
            return Reading(folded in KNOWN and folded not in BUSY_STATES, status=now)

        Poller(self.ops.client).wait_until(
            read, deadline=self.deadline, poll_interval=self.options.poll_interval,
            subject="the storage target %s of cache %s (it read %s) to settle" % (ref.name, self.ref.name, state))
        return last["state"]


def iso(epoch: int) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    except (OverflowError, OSError, ValueError):
        return "%d (seconds since 1970)" % epoch
