# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which targets a run suspends, and the suspend of each recorded one, every request behind the fence."""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.target_actions import Together, TargetTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import TargetRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.target import SUSPENDED, target_state
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError, failure_of
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.context import RunContext
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.hold import Hold
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stops import HoldLost, RunGone


# The suspend step leaves the hold with at most this many seconds less than the hold asked for, renewing it when a
# long flush used more (hold_until): the role's first backend task file then starts without a renewal of its own.
TOP_UP_SLACK = 60


class Suspension:
    """Choose the targets this run suspends (not those someone else suspended), and suspend those recorded
    for it: an entry names a target before its suspend may be sent (I1)."""

    def __init__(self, ctx: RunContext, hold: Hold) -> None:
        self.ctx, self.hold = ctx, hold

    def choose(self, targets: t.Sequence[str]) -> t.Tuple[t.List[str], t.List[t.Dict[str, str]]]:
        """Which of the targets this run will suspend: not those someone else suspended or is suspending."""
        ctx = self.ctx
        to_suspend: t.List[str] = []
        skipped: t.List[t.Dict[str, str]] = []
        for name in targets:
            ref = TargetRef(ctx.ref, name)
            state = ctx.wait_while_busy(ref, target_state(ctx.ops.get_target(ref, ctx.deadline.at)))
            if state is None:
                raise HpcCacheError("The storage target %s of cache %s is gone; nothing was suspended"
                                    % (name, ctx.ref.name))
            if state.strip().casefold() == SUSPENDED:
                skipped.append({"name": name, "state": state,
                                "why": "it was %s before the run" % state})
            else:
                to_suspend.append(name)
        return to_suspend, skipped

    def recorded(self) -> t.List[str]:
        """The storage targets recorded for this run, in the record's spelling."""
        ctx = self.ctx
        return sorted({n for _s, rec in ctx.stores() for n, run in rec.entries.items() if run == ctx.run_id})

    def suspend(self, targets: t.Sequence[str], flush: bool) -> t.Dict[str, t.Any]:
        """Flush (when asked) and suspend every target recorded for this run, together (Together: every flush
        sent, then followed; then every suspend), every request behind the fence. The first failure stops the
        rest; release resumes whatever was recorded."""
        ctx = self.ctx
        once: t.Dict[str, str] = {}
        for name in targets:  # each target once, however often (in any case) it is named
            once.setdefault(name.casefold(), name)
        targets = list(once.values())
        stores = ctx.stores()
        ctx.report(stores)
        recorded = {n.casefold(): n for _s, rec in stores for n, run in rec.entries.items() if run == ctx.run_id}
        rows: t.List[t.Dict[str, t.Any]] = []
        ctx.result["targets"] = rows
        if ctx.options.check_mode:
            for name in targets:
                rows.append({"name": name, "changed": True, "operations": [], "state_before": "Unknown", "flush": flush,
                             "msg": "check mode: it would be %ssuspended" % ("flushed and " if flush else "")})
            ctx.result["msg"] = "Check mode: %s would be suspended" % (", ".join(targets) or "nothing")
            return ctx.result
        ctx.store_of_hold(stores)
        missing = [n for n in targets if n.casefold() not in recorded]
        if missing:
            raise HpcCacheError("The storage targets %s are not recorded for run %s on the cache %s: nothing was "
                                "suspended (the record must name a target before its suspend is sent)"
                                % (", ".join(missing), ctx.run_id, ctx.ref.name))
        tasks = [TargetTask(ctx.ops, TargetRef(ctx.ref, recorded[name.casefold()]), options=ctx.action_options(),
                            deadline=ctx.deadline, state="suspended", flush=flush, dns_refresh=False)
                 for name in targets]
        # a stop of the run (its playbook gone, its hold lost) ends the step at once; any other failure, a record
        # that could not be read before a request (FenceFailed) included, sends nothing more but follows every
        # action already sent to its end first, so no suspend of this step still runs when the release starts
        together = Together(tasks, stop=(RunGone, HoldLost))
        try:
            with self.hold.fenced():
                together.run()
        except HpcCacheError as exc:
            for name, task in zip(targets, tasks):
                if task is together.failed:
                    rows.append(dict(task.result, name=name, failed=True, msg=failure_of(exc)[0]))
                elif "state_before" in task.result:
                    rows.append(dict(task.result, name=name))
            ctx.result["changed"] = ctx.result["changed"] or any(task.result.get("operations") for task in tasks)
            failed = next(("the storage target %s" % name for name, task in zip(targets, tasks)
                           if task is together.failed), "the storage targets")
            raise HpcCacheError("Suspending %s of cache %s failed: %s. Nothing more was suspended; the release "
                                "resumes every target this run recorded" % (failed, ctx.ref.name, failure_of(exc)[0]),
                                targets=rows) from None
        for name, task in zip(targets, tasks):
            rows.append(dict(task.result, name=name))
            ctx.result["changed"] = ctx.result["changed"] or bool(task.result.get("changed"))
        ctx.result["hold_until"] = self._top_up()
        ctx.result["msg"] = "Suspended: %s" % (", ".join(r["name"] for r in rows) or "none")
        return ctx.result

    def _top_up(self) -> int:
        """Once every target is suspended: the hold is renewed when it has TOP_UP_SLACK seconds less than the hold
        asked for left (a long flush used them), so the first backend task file starts with nearly a full hold and
        needs no renewal of its own (the role skips it while the hold still has that much). The hold's bound."""
        ctx = self.ctx
        store, holder = ctx.store_of_hold(ctx.stores())
        if holder.until - ctx.wall_clock() >= ctx.hold_seconds - TOP_UP_SLACK:
            return holder.until
        ctx.alive()
        until = ctx.until()
        self.hold.renew(store, holder)
        ctx.result["changed"] = True
        return until
