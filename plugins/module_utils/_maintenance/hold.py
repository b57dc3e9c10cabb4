# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This run's hold on the cache: taken (written, read back, a replaced hold put back), its targets recorded,
renewed, checked before every state-changing request (the fence, I2 and I4), and given back."""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError, failure_of
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.context import (
    STALE_READ_SECONDS,
    RunContext,
    Stores,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.identity import PlaybookWatch
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stops import FenceFailed, HoldLost, Stopped
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stores import Store
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import (
    HOLD_TAG,
    Holder,
    MAX_TAGS,
    TARGET_TAG,
    Record,
    entry_value,
    read_record,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.writes import RecordWrites

# After writing the hold, wait this long and read it back: two runs writing at once both read the last
# writer's hold, and only that one goes on.
RIVAL_WRITE_SECONDS = 2.0
# A state-changing request leaves only while the hold has at least this long to run (I2): the request's own
# bound (connect and read timeouts) with room to spare; the hold is renewed first when it has less.
FENCE_COVER = 120
# While a fenced step waits on the service (a slow suspend or resume), its hold is renewed once it has less than
# FENCE_COVER + KEEP_MARGIN seconds left, so a live run's hold never runs out under one of its waits; a look that
# failed (the record unreadable) is tried again after KEEP_RETRY seconds.
KEEP_MARGIN = 60
KEEP_RETRY = 30.0


class Hold:
    """Take, renew, fence and give back the hold of one run; write the entries of the targets it suspends."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.writes = RecordWrites(ctx)
        self.kept_until: t.Optional[int] = None  # the hold's bound as last read by keep(); None: read it
        self.keep_retry: t.Optional[float] = None
        self.keeping = False

    # Taking -------------------------------------------------------------------------------------
    def check_room(self, targets: int) -> None:
        """Refuse before writing anything when the cache's tags have no room for the record."""
        ctx = self.ctx
        existing = ctx.tags.read()
        ours = sum(1 for k in existing if k.casefold() == HOLD_TAG or k.casefold().startswith(TARGET_TAG))
        needed = 1 + targets
        if ctx.local is None and len(existing) - ours + needed > MAX_TAGS:
            raise HpcCacheError(
                "The cache %s has %d tags; the record of this run needs %d more and ARM allows %d. Nothing was "
                "written or suspended: remove tags, or set cache_maintenance_local_record: true"
                % (ctx.ref.name, len(existing), needed, MAX_TAGS))

    def take(self) -> Store:
        """Write this run's hold and read it back. Where the cache's tags refuse it, the opt-in local record."""
        ctx = self.ctx
        before: t.Dict[str, t.Optional[str]] = {}
        runs: t.Set[str] = set()  # the runs with entries in the record as read before this run wrote

        def decide(stores: Stores) -> None:
            ctx.refuse_live_holds(stores)  # read again, judged again (I5)
            before.clear()
            before.update({store.where: next(iter(rec.holder_tag.values()), None) for store, rec in stores})
            runs.clear()
            runs.update(run for _s, rec in stores for run in rec.entries.values())

        def shows(rec: Record) -> bool:
            return rec.holder is not None and rec.holder.run == ctx.run_id

        def lost(rec: Record) -> bool:
            # another run's hold that is not the one read before this run wrote: it wrote at the same moment; or
            # entries of a run not recorded before: another run took the cache and went on while this run's write
            # was on its way (this run's hold then replaced that run's)
            value = next(iter(rec.holder_tag.values()), None)
            if rec.holder is not None and rec.holder.run != ctx.run_id and value not in before.values():
                return True
            return any(run not in runs and run != ctx.run_id for run in rec.entries.values())

        decide(ctx.stores())
        try:
            return self.writes.write(ctx.tags, "Merge", lambda: {HOLD_TAG: ctx.holder().encode()}, "its hold", decide,
                                     shows, lost=lost, read_back_after=RIVAL_WRITE_SECONDS)
        except HoldLost as exc:
            self._drop_hold_if_ours()
            raise HpcCacheError("Another maintenance run took the hold on %s at the same moment (%s); nothing was "
                                "suspended" % (ctx.ref.name, exc.message)) from None

    def _drop_hold_if_ours(self) -> None:
        """Remove this run's hold where it replaced a run that went on (that run then reads no hold, stops, and
        takes the cache again to resume what it recorded): never another run's."""
        ctx = self.ctx
        try:
            rec = read_record(ctx.tags.read(), ctx.cache)
            if rec.holder is not None and rec.holder.run == ctx.run_id:
                ctx.tags.delete(rec.holder_tag)
        except HpcCacheError:
            pass

    def record_targets(self, store: Store, names: t.Sequence[str]) -> None:
        """Write an entry of this run for each target, before any suspend of it may be sent (I1)."""
        ctx = self.ctx
        entries = {TARGET_TAG + name: entry_value(ctx.run_id, ctx.cache) for name in names}
        self.writes.write(store, "Merge", entries, "the storage targets it suspends", ctx.still_ours,
                          lambda rec: all(rec.entries.get(n) == ctx.run_id for n in names))

    def drop_own(self) -> None:
        """Remove this run's hold and entries after a failed take, before anything of it was suspended."""
        ctx = self.ctx
        try:
            stores = ctx.stores()
        except HpcCacheError:
            return  # the failure that brought us here is the one to report
        for store, rec in stores:
            mine = {rec.tag_names[n]: entry_value(ctx.run_id, ctx.cache) for n, run in rec.entries.items()
                    if run == ctx.run_id}
            if rec.holder is not None and rec.holder.run == ctx.run_id:
                mine.update(rec.holder_tag)
            if mine:
                try:
                    store.delete(mine)
                except HpcCacheError:
                    pass  # the failure that brought us here is the one to report

    # Keeping ------------------------------------------------------------------------------------
    def renew(self, store: Store, holder: Holder) -> None:
        """Write this run's hold (holder: as just read) with a new bound, counted from the try that is sent (a try
        after a long Retry-After never writes the bound the first try would have: it could be past already), and
        read it back. A hold read with RENEW_BOUND or less left is not renewed (HoldLost): another run may be
        recovering it already."""
        ctx = self.ctx
        ctx.within_bound(holder)
        written: t.Dict[str, int] = {}

        def hold() -> t.Dict[str, str]:
            holder = ctx.holder()
            written["until"] = holder.until
            return {HOLD_TAG: holder.encode()}

        self.writes.write(store, "Merge", hold, "its hold", ctx.still_ours,
                          lambda rec: rec.holder is not None and rec.holder.run == ctx.run_id
                          and rec.holder.until >= written["until"])

    def fence(self, _method: str = "POST", _url: str = "") -> None:
        """Just before a state-changing request: the playbook still runs, and the record, read now, shows
        this run's hold with at least FENCE_COVER seconds left (renewed first when it has less). A read that
        fails stops the request (FenceFailed): it is never taken for the request's own answer."""
        ctx = self.ctx
        ctx.alive()
        keeping, self.keeping = self.keeping, True  # the fence renews for itself: no keep inside its waits
        try:
            stores = ctx.stores()
            ctx.still_ours(stores)
            store, holder = ctx.store_of_hold(stores)
            if holder.until - ctx.wall_clock() < FENCE_COVER:
                ctx.hold_seconds = max(ctx.hold_seconds, 2 * FENCE_COVER)
                ctx.alive()
                self.renew(store, holder)  # read back until it shows the new bound, or HoldLost
        except Stopped:
            raise
        except HpcCacheError as exc:
            raise FenceFailed("The record on %s could not be read before a request that changes a storage target "
                              "(%s): the request was not sent" % (ctx.ref.name, failure_of(exc)[0])) from None
        finally:
            self.keeping = keeping
        ctx.alive()

    def keep(self) -> None:
        """Called at every step of a fenced step's waits (PlaybookWatch.keep, at least every 2 s): once the hold,
        as last read, has less than FENCE_COVER + KEEP_MARGIN left, the record is read and the hold renewed as
        the fence does. A hold lost stops the wait (HoldLost); a record that cannot be read is looked at again
        after KEEP_RETRY seconds (the fence before the next request still stops it)."""
        ctx = self.ctx
        if self.keeping or (self.keep_retry is not None and ctx.deadline.clock() < self.keep_retry):
            return
        if self.kept_until is not None and self.kept_until - ctx.wall_clock() > FENCE_COVER + KEEP_MARGIN:
            return
        self.keeping = True  # the reads and writes below wait too: no look inside a look
        try:
            store, holder = ctx.store_of_hold(ctx.stores())
            self.kept_until = holder.until
            if holder.until - ctx.wall_clock() <= FENCE_COVER + KEEP_MARGIN:
                ctx.hold_seconds = max(ctx.hold_seconds, 2 * (FENCE_COVER + KEEP_MARGIN))
                ctx.alive()
                self.renew(store, holder)
                self.kept_until = None  # read the new bound at the next look
            self.keep_retry = None
        except Stopped:
            raise
        except HpcCacheError:
            self.keep_retry = ctx.deadline.clock() + KEEP_RETRY
        finally:
            self.keeping = False

    def fenced(self) -> "Fenced":
        return Fenced(self)

    # Giving back --------------------------------------------------------------------------------
    def give_back(self, done: t.Set[str], kept: t.Collection[str] = ()) -> t.Tuple[str, t.List[str]]:
        """Delete this run's hold once nothing of it is recorded (a read that still shows a removed entry is read
        again, bounded); read first, so another run's hold is never deleted. ("given", []) once deleted;
        ("kept", []) when it stays to its bound; ("none", []) when no hold is this run's; ("kept", names) when
        entries of this run not resumed yet show up (a read before was behind): those are resumed first."""
        ctx = self.ctx
        waited, delay = 0.0, 1.0
        while True:
            stores = ctx.stores()
            mine = sorted({n for _s, rec in stores for n, run in rec.entries.items() if run == ctx.run_id})
            more = [n for n in mine if n.casefold() not in done]
            if more:
                return "kept", more
            if not mine:
                break
            if {n.casefold() for n in mine} <= set(kept) or waited >= STALE_READ_SECONDS or \
                    not ctx.deadline.pause(delay):
                ctx.result["warnings"].append(
                    "Entries of this run are still recorded on %s (their removal failed or is not yet seen): the "
                    "hold stays to its bound, and the next run resumes them again, which is harmless" % ctx.ref.name)
                return "kept", []
            waited += delay
            delay = min(delay * 2, 5.0)
        given = "none"
        for store, rec in stores:
            if rec.holder is not None and rec.holder.run == ctx.run_id:
                try:
                    store.delete(rec.holder_tag)
                    ctx.result["changed"] = True
                    given = "given"
                except HpcCacheError as exc:
                    given = "kept"
                    ctx.result["warnings"].append("The hold on %s could not be given back (%s): it ends at its "
                                                  "bound" % (ctx.ref.name, failure_of(exc)[0]))
        return given, []


class Fenced:
    """While in effect, every action (POST) the client sends first passes the hold's fence, and every wait keeps
    the hold (Hold.keep)."""

    def __init__(self, hold: Hold) -> None:
        self.hold = hold
        self.saved: t.Optional[t.Callable[[str, str], None]] = None
        self.saved_keep: t.Optional[t.Callable[[], None]] = None

    def __enter__(self) -> "Fenced":
        client = self.hold.ctx.ops.client
        self.saved = client.guard
        client.guard = self.hold.fence
        watch = self.hold.ctx.deadline.sleep
        if isinstance(watch, PlaybookWatch):
            self.saved_keep, watch.keep = watch.keep, self.hold.keep
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.hold.ctx.ops.client.guard = self.saved
        watch = self.hold.ctx.deadline.sleep
        if isinstance(watch, PlaybookWatch):
            watch.keep = self.saved_keep
