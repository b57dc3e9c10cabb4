# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance protocol, one step per state of azure_hpc_cache_maintenance_record (docs/maintenance-protocol.md).

MaintenanceRecord is what the module and the simulator call: it builds the run's context and the rooms of
the protocol (preflight.py, hold.py, recovery.py, suspension.py, release.py) and orders the held step; the
steps themselves are in those rooms.
"""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.context import RunContext, iso
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.hold import Hold
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.identity import Identity
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.preflight import Preflight
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.recovery import Recovery
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.release import Release
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stores import FileStore
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.suspension import Suspension
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import MAX_HOLD


class MaintenanceRecord:
    """Check, take and give back the hold on one cache for one run; suspend the targets recorded for it;
    recover an interrupted run's targets. Every state-changing request goes through the fence (I2, I4).

    identity: who runs (Identity.here); deadline: the module's one Deadline, made after
    ``client.sleep = identity.watching(client.sleep)`` so that every wait stops once the playbook is gone."""

    def __init__(self, ops: CacheOperations, ref: CacheRef, *, run: str, identity: Identity, hold_seconds: int,
                 take_over: bool, local_record: t.Optional[str], options: ActionOptions, deadline: Deadline,
                 wall_clock: t.Callable[[], float]) -> None:
        self.ctx = RunContext(ops, ref, run=run, identity=identity, hold_seconds=hold_seconds, take_over=take_over,
                              local_record=local_record, options=options, deadline=deadline, wall_clock=wall_clock)
        self._preflight = Preflight(self.ctx)
        self._hold = Hold(self.ctx)
        self._recovery = Recovery(self.ctx, self._hold)
        self._suspension = Suspension(self.ctx, self._hold)
        self._release = Release(self.ctx, self._hold, self._recovery)

    @property
    def ops(self) -> CacheOperations:
        return self.ctx.ops

    @property
    def local(self) -> t.Optional[FileStore]:
        return self.ctx.local

    @property
    def result(self) -> t.Dict[str, t.Any]:
        return self.ctx.result

    # Before the hold (reads only) ---------------------------------------------------------------
    def gate(self, allowed_states: t.Sequence[str]) -> None:
        self._preflight.gate(allowed_states)

    def check(self) -> t.Dict[str, t.Any]:
        return self._preflight.check()

    def resolve(self, asked: t.Sequence[str]) -> t.List[str]:
        return self._preflight.resolve(asked)

    # The steps of a run -------------------------------------------------------------------------
    def hold(self, targets: t.Sequence[str]) -> t.Dict[str, t.Any]:
        """Take the hold, recover what an interrupted run left, and record the targets to suspend.

        The hold is taken and read back before anything else is sent, so two runs never recover or
        suspend at once. It is sized to cover the flush and suspend of every target (2 waits a target,
        and one more), and at least the hold asked for; the fence renews it before any request it would
        not cover.
        """
        ctx = self.ctx
        if targets:
            ctx.hold_seconds = min(MAX_HOLD, max(ctx.hold_seconds, ctx.options.wait_timeout * (2 * len(targets) + 1)))
        stores = ctx.stores()
        ctx.report(stores)
        ctx.refuse_live_holds(stores)
        if ctx.options.check_mode:  # what the run would do, read only
            self._recovery.recover(stores)
            to_suspend, skipped = self._suspension.choose(targets)
            ctx.result.update(to_suspend=to_suspend, not_ours=skipped,
                              msg="Check mode: the hold on %s would be taken" % ctx.ref.name)
            return ctx.result
        self._hold.check_room(len(targets))
        store = self._hold.take()  # a failed take drops nothing: the hold it read may be another run's by now
        try:
            self._recovery.recover(ctx.stores())
            to_suspend, skipped = self._suspension.choose(targets)
            ctx.result["not_ours"] = skipped
            if to_suspend:
                self._hold.record_targets(store, to_suspend)
        except BaseException:
            self._hold.drop_own()  # nothing of this run was suspended yet: its hold must not outlive the failure
            raise
        ctx.result.update(to_suspend=to_suspend, kept_in=store.where, changed=True,
                          msg="The cache %s is held by run %s until %s (%s); recorded for suspension: %s"
                              % (ctx.ref.name, ctx.run_id, iso(ctx.until()), store.where,
                                 ", ".join(to_suspend) or "none"))
        return ctx.result

    def recorded(self) -> t.List[str]:
        """The storage targets recorded for this run, in the record's spelling."""
        return self._suspension.recorded()

    def suspend(self, targets: t.Sequence[str], flush: bool) -> t.Dict[str, t.Any]:
        return self._suspension.suspend(targets, flush)

    def renew(self) -> t.Dict[str, t.Any]:
        """Extend this run's hold; it recovers nothing, and fails when the hold is no longer this run's."""
        ctx = self.ctx
        stores = ctx.stores()
        ctx.report(stores)
        if ctx.options.check_mode:  # check mode took no hold: there is nothing to renew
            ctx.result["msg"] = "Check mode: the hold on %s would be renewed" % ctx.ref.name
            return ctx.result
        self._hold.renew(*ctx.store_of_hold(stores))
        ctx.result["changed"] = True
        ctx.result["msg"] = "The hold on %s is renewed until %s" % (ctx.ref.name, iso(ctx.until()))
        return ctx.result

    def fence(self, _method: str = "POST", _url: str = "") -> None:
        self._hold.fence(_method, _url)

    def release(self, suspended: t.Sequence[str] = (), dns_refresh: bool = False,
                running: t.Optional[t.Mapping[str, str]] = None) -> t.Dict[str, t.Any]:
        return self._release.release(suspended, dns_refresh, running)
