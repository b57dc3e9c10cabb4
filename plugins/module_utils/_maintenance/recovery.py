# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resuming recorded targets and forgetting their entries: recovery of the entries another run left, and the
resume (409s waited out, a bounded number of times), the gone-confirmation and the forget release uses too."""

from __future__ import annotations

import typing as t
from dataclasses import replace

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import Poller
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.target_actions import TargetAction
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import TargetRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.target import target_state
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import (
    ArmError,
    HpcCacheError,
    OperationTimeout,
    failure_of,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.context import (
    BUSY_STATES,
    KNOWN,
    RunContext,
    Stores,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.hold import Hold
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stops import HoldLost, RunGone, Stopped
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stores import Store, WriteRefused
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import entry_value

# A target is gone only when two reads this far apart answer 404 and the cache's list of targets lacks it.
GONE_CONFIRM_SECONDS = 10.0
# A record delete after a resume, refused (409, 429, 5xx), is tried this many times before it is left to the next run.
MAX_FORGETS = 3
# A resume answered 409 (another operation on the target): waited for and sent again, this many times at most.
MAX_RESUME_CONFLICTS = 30


class Recovery:
    """Resume what the record names, whatever the target reads, and forget an entry only once its resume
    Succeeded (I1); one failure stops no other (I6)."""

    def __init__(self, ctx: RunContext, hold: Hold) -> None:
        self.ctx, self.hold = ctx, hold

    def recover(self, stores: Stores) -> None:
        """Resume every target another run recorded, whatever it reads (after waiting while it is busy), and
        forget each entry only once its resume Succeeded (I1). One failure stops no other (I6)."""
        ctx = self.ctx
        failed: t.List[t.Dict[str, t.Any]] = []
        with self.hold.fenced():
            for store, rec in stores:
                others = {n: run for n, run in rec.entries.items() if run != ctx.run_id}
                for name, run in sorted(others.items()):
                    row = self._recover_one(name, run)
                    ctx.result["recovered"].append(row)
                    if row["outcome"] in ("resumed", "gone") and not ctx.options.check_mode:
                        self.forget(store, rec.tag_names[name], entry_value(run, ctx.cache), row)
                    elif row["outcome"] == "failed":
                        failed.append(row)
        if failed:
            raise HpcCacheError(
                "Recovering the storage targets %s of cache %s, left by an interrupted run, failed: %s. They stay "
                "recorded, nothing was suspended, and the next run resumes them first"
                % (", ".join(r["name"] for r in failed), ctx.ref.name,
                   "; ".join("%s (it read %s): %s" % (r["name"], r.get("state_before", "Unknown"), r["msg"])
                             for r in failed)), recovered=ctx.result["recovered"])

    def _recover_one(self, name: str, run: str) -> t.Dict[str, t.Any]:
        ctx = self.ctx
        ref = TargetRef(ctx.ref, name)
        row: t.Dict[str, t.Any] = {"name": name, "run": run}
        try:
            first = target_state(ctx.ops.get_target(ref, ctx.deadline.at))
            row["state_before"] = first
            state = ctx.wait_while_busy(ref, first)
        except ArmError as exc:
            if exc.status != 404:
                return dict(row, outcome="failed", msg=exc.message)
            state = None
        except HpcCacheError as exc:
            return dict(row, outcome="failed", msg=failure_of(exc)[0])
        if state is None and not self.gone(ref):
            return dict(row, outcome="failed", msg="the target answered 404 once, but the cache still lists it")
        if state is None:
            ctx.result["warnings"].append("The storage target %s recorded by run %s no longer exists" % (name, run))
            return dict(row, outcome="gone", msg="the target no longer exists")
        if ctx.options.check_mode:
            return dict(row, outcome="would resume", msg="check mode: it would be resumed (it reads %s)" % state)
        return dict(row, **self.resume(ref))

    def gone(self, ref: TargetRef) -> bool:
        """A target is gone only when a second read, GONE_CONFIRM_SECONDS later, answers 404 too and the cache,
        read fine, no longer lists it: one 404 (a replica behind, a proxy) never drops an entry."""
        ctx = self.ctx
        if not ctx.deadline.pause(GONE_CONFIRM_SECONDS):
            return False
        try:
            ctx.ops.get_target(ref, ctx.deadline.at)
            return False
        except ArmError as exc:
            if exc.status != 404:
                return False
        try:
            listed = ctx.ops.list_targets(ctx.ref, ctx.deadline.at)
        except HpcCacheError:
            return False
        return not any(isinstance(t_, dict) and str(t_.get("name", "")).casefold() == ref.name.casefold()
                       for t_ in listed)

    def resume_all(self, refs: t.Sequence[TargetRef],
                   running: t.Optional[t.Mapping[str, str]] = None) -> t.List[t.Dict[str, t.Any]]:
        """Resume several targets at once: every resume is sent before any is followed (the service runs them
        side by side), then each is followed to its end as resume() does; one failure stops no other (I6). A
        target that reads Busy, Flushing or a state the API does not name (a suspend or flush of this run still
        runs: a killed module's, or one a failure left), or whose suspend or flush this run's suspend step left
        running (running: its operation's status URL, by target name), is waited for first, after the others'
        resumes are sent, so its resume comes after that operation (I1)."""
        awaited = {name.casefold(): url for name, url in (running or {}).items()}
        urls = [awaited.get(ref.name.casefold()) for ref in refs]
        bodies = [self._read(ref) for ref in refs]
        states = [None if body is None else target_state(body) for body in bodies]
        begun = [None if url or _busy(state) else self._begin(ref, body)
                 for ref, body, state, url in zip(refs, bodies, states, urls)]
        rows: t.Dict[int, t.Dict[str, t.Any]] = {}
        # the resumes sent are followed first; only then is a busy target waited for (that wait may be long)
        for index in sorted(range(len(refs)), key=lambda i: begun[i] is None):
            if begun[index] is None:
                url = urls[index]
                still = self._await(refs[index], url) if url else None
                if still is not None:
                    rows[index] = {"outcome": "failed", "sent": False, "state_after": states[index],
                                   "msg": "the operation this run's suspend step sent it may still run (%s): no resume "
                                          "was sent, so that none goes out before it ends" % still}
                    continue
                if states[index] is not None:
                    self._settle(refs[index], str(states[index]))
            rows[index] = self.resume(refs[index], begun=begun[index])
        return [rows[index] for index in range(len(refs))]

    def _await(self, ref: TargetRef, url: str) -> t.Optional[str]:
        """Follow an operation this run's suspend step sent to the target and left running (a suspend that
        outlived wait_timeout) to its end: a target may read Ready while its suspend runs, and a resume sent then
        may be answered without doing anything. None once it ended, or when its status cannot be read (the
        target's state and the resume's own answer decide then); else why it may still run."""
        ctx = self.ctx
        try:
            Poller(ctx.ops.client).wait_operation(
                async_url=url, location_url=None, deadline=ctx.deadline, poll_interval=ctx.options.poll_interval,
                subject="the operation this run sent to the storage target %s" % ref.name)
        except (RunGone, HoldLost):
            raise
        except OperationTimeout as exc:
            return failure_of(exc)[0]
        except HpcCacheError:
            return None  # ended (Failed, Canceled), or its status URL cannot be read: decided as any target is
        return None

    def _read(self, ref: TargetRef) -> t.Optional[t.Mapping[str, t.Any]]:
        """The target as it reads now; None when the read failed (that says nothing: the resume is sent, reading
        the target itself, and its answer judged)."""
        try:
            return self.ctx.ops.get_target(ref, self.ctx.deadline.at)
        except Stopped:
            raise
        except HpcCacheError:
            return None

    def _settle(self, ref: TargetRef, state: str) -> None:
        """Wait while the target is busy; a failed wait is left to the resume's own answer (409: waited again)."""
        try:
            self.ctx.wait_while_busy(ref, state)
        except Stopped:
            raise
        except HpcCacheError:
            pass

    def _begin(self, ref: TargetRef,
               body: t.Optional[t.Mapping[str, t.Any]]) -> t.Tuple[TargetAction, t.Optional[HpcCacheError]]:
        """Send a resume without following it (body: the target as just read, or None to read it); a failure is
        kept for resume() to judge."""
        ctx = self.ctx
        action = TargetAction(ctx.ops, ref, "resume", options=replace(ctx.action_options(), wait=False),
                              deadline=ctx.deadline, force=True)
        try:
            action.run(body)
        except (RunGone, HoldLost):
            raise
        except HpcCacheError as exc:  # FenceFailed too: this target's resume was not sent; the others' still are
            return action, exc
        return action, None

    def resume(self, ref: TargetRef,
               begun: t.Optional[t.Tuple[TargetAction, t.Optional[HpcCacheError]]] = None) -> t.Dict[str, t.Any]:
        """Resume a target whatever it reads (the state is no proof, and the service accepts a resume of a
        target that is not suspended); a 409 (another operation on it) is waited for and sent again, at most
        MAX_RESUME_CONFLICTS times. begun: a resume already sent without following (_begin), and how it
        failed: followed (or judged) first."""
        ctx = self.ctx
        sent = False
        for _conflict in range(MAX_RESUME_CONFLICTS):
            error: t.Optional[HpcCacheError] = None
            if begun is not None:
                (action, error), begun = begun, None
                follow = action.finish
            else:
                action = TargetAction(ctx.ops, ref, "resume", options=ctx.action_options(), deadline=ctx.deadline,
                                      force=True)
                follow = action.run
            try:
                if error is not None:
                    raise error
                outcome = follow()
            except (RunGone, HoldLost):
                raise
            except ArmError as exc:
                sent = sent or action.sent
                if exc.status == 404 and self.gone(ref):
                    ctx.result["warnings"].append("The storage target %s no longer exists" % ref.name)
                    return {"outcome": "gone", "msg": "the target no longer exists", "sent": sent}
                if exc.status == 409 and ctx.deadline.pause(min(float(ctx.options.poll_interval), 10.0)):
                    continue
                return {"outcome": "failed", "msg": exc.message, "sent": sent, "state_after": last_state(action)}
            except HpcCacheError as exc:
                return {"outcome": "failed", "msg": failure_of(exc)[0], "sent": sent or action.sent,
                        "state_after": last_state(action)}
            ctx.result["changed"] = ctx.result["changed"] or bool(outcome.get("changed"))
            if outcome.get("status") != "Succeeded":
                return {"outcome": "failed", "msg": outcome.get("msg") or "the resume did not succeed",
                        "sent": True, "state_after": outcome.get("state_after")}
            return {"outcome": "resumed", "msg": outcome.get("msg"), "sent": True,
                    "state_after": outcome.get("state_after"), "operation_url": outcome.get("operation_url"),
                    "seconds": outcome.get("elapsed", 0.0)}
        return {"outcome": "failed", "msg": "another operation kept the target busy (409) %d times"
                % MAX_RESUME_CONFLICTS, "sent": sent}

    def forget(self, store: Store, tag: str, value: str, row: t.Dict[str, t.Any]) -> bool:
        """Remove an entry whose target was resumed, while the hold is still this run's (read before every try),
        trying a refused delete (409, 429, 5xx) a few times; a failure is reported on its row and in a warning,
        never raised (I6). False once the hold is no longer this run's: nothing more is removed (an entry left
        is harmless: the next run resumes its target again)."""
        ctx = self.ctx
        try:
            for attempt in range(MAX_FORGETS):
                ctx.still_ours(ctx.stores())
                try:
                    store.delete({tag: value})
                    break
                except WriteRefused as refused:
                    pause = refused.retry_after or 2.0 * (attempt + 1)
                    if attempt == MAX_FORGETS - 1 or not ctx.deadline.pause(pause):
                        raise
            ctx.result["changed"] = True
            row["forgotten"] = True
            return True
        except HpcCacheError as exc:
            row["forget_failed"] = failure_of(exc)[0]
            ctx.result["warnings"].append(
                "The storage target %s was resumed, but its entry could not be removed from the record (%s): the "
                "next run resumes it again, which is harmless" % (row["name"], failure_of(exc)[0]))
            return not isinstance(exc, Stopped)


def last_state(action: TargetAction) -> t.Optional[str]:
    """What the target read last in an action that failed."""
    state = action.result.get("state_after") or action.result.get("state_before")
    return str(state) if state else None


def _busy(state: t.Optional[str]) -> bool:
    """A state read that shows an operation running (Busy, Flushing, or one the API does not name)."""
    return state is not None and state.strip().casefold() not in KNOWN - BUSY_STATES
