# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A change to the record: written once a try, decided again before every other try, and read back (I5)."""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ArmError, HpcCacheError, TransportError
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.context import (
    STALE_READ_SECONDS,
    RunContext,
    Stores,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stops import HoldLost
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stores import Store, WriteRefused
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import (
    HOLD_TAG,
    MAX_TAGS,
    Holder,
    Record,
    read_record,
)

# A record write answered 409, 429, 5xx or not at all: read again, decide again, write again, this many
# times at most (each after the service's Retry-After, or a growing pause).
MAX_WRITES = 8

Decide = t.Callable[[Stores], None]  # the decision behind a write, made again on a fresh read; raises when wrong
Shows = t.Callable[[Record], bool]  # the record read back shows the write
# The tags a write sends, or what makes them afresh for each try (a hold's start and bound count from the try)
Tags = t.Union[t.Mapping[str, str], t.Callable[[], t.Mapping[str, str]]]


class RecordWrites:
    """Writes of one run's record: each tried once, then, after a refusal and its wait, read again and decided
    again; read back until the record shows it. A hold replaced by this run's late write is put back."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def write(self, store: Store, operation: str, tags: Tags, what: str, decide: Decide,
              shows: Shows, lost: t.Optional[Shows] = None, read_back_after: float = 0.0) -> Store:
        """Write to the record and read it back until it shows the write (I5).

        Before every try but the first the record is read again and decide() judges again (it raises when
        the write is no longer right). A write answered 409, 429, 5xx or not at all is tried again after the
        service's Retry-After (or a growing pause), at most MAX_WRITES times. tags: a callable is called for every
        try, so a hold written after a long Retry-After counts its bound from that try, not from the first.
        read_back_after: seconds to wait before the first read back. A read that shows the old record is read
        again for up to STALE_READ_SECONDS; lost(record) says another run's write won. Where the cache's tags
        refuse the write for good, the opt-in local record takes it."""
        ctx = self.ctx
        refused: t.Optional[WriteRefused] = None
        for attempt in range(MAX_WRITES):
            if attempt:
                delay = refused.retry_after if refused and refused.retry_after else min(2.0 ** attempt, 30.0)
                if not ctx.deadline.pause(delay):
                    break
                decide(ctx.stores())
            foreign: t.List[str] = []
            sent = tags() if callable(tags) else tags
            try:
                if store is ctx.tags and operation == "Merge" and HOLD_TAG in sent:
                    ctx.tags.watch = self._watch_hold(foreign)
                store.merge(sent) if operation == "Merge" else store.delete(sent)
            except WriteRefused as exc:
                refused = exc
                continue
            except ArmError as exc:
                if store is not ctx.tags:
                    raise
                return self._write_locally(exc, operation, tags, what, decide, shows, lost)
            finally:
                ctx.tags.watch = None
            ctx.result["changed"] = True
            if foreign:
                self._put_back(foreign[-1])
            if read_back_after:
                ctx.ops.client.sleep(read_back_after)  # a run writing at the same moment has written by now
            self._read_back(store, what, shows, lost)
            return store
        raise HpcCacheError("The record of this run (%s) could not be written on the cache %s: %s. Nothing was "
                            "suspended or resumed by this step" % (what, ctx.ref.name,
                                                                   refused.message if refused else "no time left"))

    def _watch_hold(self, foreign: t.List[str]) -> t.Callable[[], None]:
        """While this run's write of its hold is pending (202), note every other run's hold that shows up: that
        run took the cache meanwhile, and this run's write, landing later, replaces its hold."""
        ctx = self.ctx
        known = set(ctx.hold_values)

        def watch() -> None:
            rec = read_record(ctx.tags.read(), ctx.cache)
            value = next(iter(rec.holder_tag.values()), None)
            if rec.holder is not None and rec.holder.run != ctx.run_id and value not in known:
                if value not in foreign:
                    foreign.append(str(value))

        return watch

    def _put_back(self, value: str) -> None:
        """Another run took the hold while this run's write of its hold was pending: put that run's hold back
        where this run's write replaced it, and send nothing more (a late write never takes a held cache)."""
        ctx = self.ctx
        other = Holder.parse(value)
        who = other.run if other else "another"
        outcome = "this run's hold could not be put right (the cache refused every write): it ends at its bound"
        landed = True  # this run's write landed (its operation said so): a read without it may be behind
        for attempt in range(MAX_WRITES):
            if attempt and not ctx.deadline.pause(min(2.0 ** attempt, 10.0)):
                break
            try:
                rec = self._read_mine(landed)
                if rec.holder is None or rec.holder.run != ctx.run_id:
                    outcome = "its hold is back"
                    break  # this run's hold is not there (any more): nothing to put back
                ctx.tags.merge({HOLD_TAG: value})
                landed = False  # the other run's hold is written back: a read without this run's is the truth
            except (WriteRefused, ArmError, TransportError):
                continue
        else:
            # it could not be put back: at least take this run's own hold away, so the other run is not refused
            # by a hold nobody works under (it then reads no hold, and stops or takes the cache again)
            try:
                rec = read_record(ctx.tags.read(), ctx.cache)
                if rec.holder is not None and rec.holder.run == ctx.run_id:
                    ctx.tags.delete(rec.holder_tag)
                    outcome = "its hold could not be put back, so this run's was removed"
            except HpcCacheError:
                pass
        raise HoldLost("run %s took the hold while this run's write of its own was pending; %s, and this run sends "
                       "nothing more" % (who, outcome))

    def _read_mine(self, landed: bool) -> Record:
        """The record, as _put_back judges it. Once this run's write of its hold has landed, a read that does not
        show it may show the tags as they were before it (a read behind): it is read again, for up to
        STALE_READ_SECONDS, before it is believed."""
        ctx = self.ctx
        waited, delay = 0.0, 1.0
        while True:
            rec = read_record(ctx.tags.read(), ctx.cache)
            if not landed or (rec.holder is not None and rec.holder.run == ctx.run_id) \
                    or waited >= STALE_READ_SECONDS or not ctx.deadline.pause(delay):
                return rec
            waited += delay
            delay = min(delay * 2, 5.0)

    def _write_locally(self, exc: ArmError, operation: str, tags: Tags, what: str, decide: Decide,
                       shows: Shows, lost: t.Optional[Shows]) -> Store:
        ctx = self.ctx
        if ctx.local is None:
            raise HpcCacheError(
                "The record of this run (%s) could not be written on the cache %s: %s. Nothing was suspended. "
                "Grant Microsoft.Resources/tags/write on the cache (and keep its tags under %d), or set "
                "cache_maintenance_local_record: true to keep the record on this controller only: a run on "
                "another controller (another AWX job) then cannot see it, so cannot wait for this run nor "
                "recover what it suspended if it is interrupted" % (what, ctx.ref.name, exc.message, MAX_TAGS))
        ctx.result["warnings"].append(
            "The record could not be written on the cache (%s); it is kept on this controller only (%s): a run "
            "on another controller cannot see it" % (exc.message, ctx.local.path))
        return self.write(ctx.local, operation, tags, what, decide, shows, lost)

    def _read_back(self, store: Store, what: str, shows: Shows, lost: t.Optional[Shows]) -> None:
        """Read the store until it shows the write; a read may show the old record for a while (bounded)."""
        ctx = self.ctx
        waited = 0.0
        delay = 1.0
        while True:
            rec = read_record(store.read(), ctx.cache)
            if lost is not None and lost(rec):
                holder = rec.holder
                other = holder if holder is not None and holder.run != ctx.run_id else None
                raise HoldLost("run %s on controller %s" % (other.run, other.host) if other
                               else "another run recorded its targets meanwhile")
            if shows(rec):
                return
            if waited >= STALE_READ_SECONDS or not ctx.deadline.pause(delay):
                raise HpcCacheError("The cache %s did not show the record of this run (%s) within %d s of writing "
                                    "it: nothing more was sent" % (ctx.ref.name, what, int(waited)))
            waited += delay
            delay = min(delay * 2, 5.0)
