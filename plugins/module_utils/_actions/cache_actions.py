# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache's other actions of a maintenance window: stop, start, and the software upgrade.

Each is one CacheAction entry: the states that show it running, over or failed, those in which
nothing needs sending, and those it is sent from by default. CacheActionTask runs any of them with
every rule of an action (action.py); UpgradeTask adds what is particular to the upgrade: nothing
is pending -> nothing is sent, an optional flush first, and the firmware before and after.

What the service was recorded doing (docs/service-behaviour.md, rows 31-34): stop, start and
upgrade are answered 202 with both operation headers; a start of a running cache and an upgrade
with nothing pending are answered 204 with no headers, which proves nothing: the cache's state
(and, for the upgrade, its firmware) decides.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, replace

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.action import ActionTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.decision import Decision
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_flush import FlushTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.cache import firmware, health_state, summarize
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError, OperationFailed
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef


@dataclass(frozen=True)
class CacheAction:
    """Everything particular to one cache action (states compared without case)."""

    path: str  # the last segment of its URL
    running: t.FrozenSet[str]  # the cache shows it running
    over: t.FrozenSet[str]  # the cache shows it over, as asked
    failed: t.FrozenSet[str]  # the cache shows it over, failed
    already: t.FrozenSet[str]  # the cache already reads what it leads to: nothing is sent
    sent_from: t.Tuple[str, ...]  # the states it is sent from by default (allowed_states overrides)
    done: str  # what the cache is once it is over, for messages


HEALTHY, DEGRADED = "healthy", "degraded"
CACHE_ACTIONS: t.Dict[str, CacheAction] = {
    "stop": CacheAction("stop", running=frozenset(("stopping",)), over=frozenset(("stopped",)),
                        failed=frozenset(), already=frozenset(("stopped",)), sent_from=("Healthy", "Degraded"),
                        done="stopped"),
    "start": CacheAction("start", running=frozenset(("transitioning",)), over=frozenset((HEALTHY, DEGRADED)),
                         failed=frozenset(("startfailed",)), already=frozenset((HEALTHY, DEGRADED)),
                         sent_from=("Stopped", "StartFailed"), done="started"),
    "upgrade": CacheAction("upgrade", running=frozenset(("upgrading",)), over=frozenset((HEALTHY, DEGRADED)),
                           failed=frozenset(("upgradefailed",)), already=frozenset(),
                           sent_from=("Healthy", "Degraded"), done="upgraded"),
}
POWER_ACTIONS = {"started": "start", "stopped": "stop"}


class CacheActionTask(ActionTask):
    """One stop, start or upgrade of one cache."""

    subject_kind = "cache"
    completion_key = "cache_state"
    state_key = "health_state"
    state_after_key = "health_state_after"

    def __init__(self, ops: CacheOperations, ref: CacheRef, action: str, *, options: ActionOptions,
                 deadline: t.Optional[Deadline] = None, allowed_states: t.Sequence[str] = ()) -> None:
        super().__init__(ops.client, options=options, deadline=deadline)
        self.ops = ops
        self.ref = ref
        self.rule = CACHE_ACTIONS[action]
        self.action = self.action_path = self.rule.path
        self.allowed_states = [s.strip() for s in allowed_states] or list(self.rule.sent_from)
        self.description: t.Optional[str] = None

    @property
    def name(self) -> str:
        return self.ref.name

    def resource_url(self, *path: str) -> str:
        return self.ops.cache_url(self.ref, *path)

    def state_of(self, body: t.Mapping[str, t.Any]) -> str:
        self.description = summarize(body)["health_description"]
        return health_state(body)

    def running(self, state: str) -> bool:
        return state.strip().casefold() in self.rule.running

    def settled(self, state: str) -> bool:
        """Over, as asked or failed: either ends the wait; conclude() tells them apart."""
        folded = state.strip().casefold()
        return folded in self.rule.over or folded in self.rule.failed

    def taken(self, state: str) -> bool:
        """After a request with no clear answer: running, or over (as asked or failed) when it was not before."""
        before = str(self.result.get(self.state_key) or "").strip().casefold()
        folded = state.strip().casefold()
        ended = (folded in self.rule.over and before not in self.rule.over) or (
            folded in self.rule.failed and before not in self.rule.failed)
        return self.running(state) or ended

    def send(self) -> None:
        """As any action; when its operation fails, the cache is read once more (best effort), so the result
        says what the cache reads after the failure, not before it."""
        try:
            super().send()
        except OperationFailed:
            try:
                self._read_state(deadline=self.deadline.sooner(self.deadline.now() + 30))
            except HpcCacheError:
                pass
            raise

    def decide(self, body: t.Mapping[str, t.Any], state: str) -> Decision:
        folded = state.strip().casefold()
        if self.running(state):
            return Decision.attach()
        if folded in self.rule.already:
            return Decision.skip("The cache %s is already %s; no %s was sent" % (self.name, state, self.action),
                                 status="Succeeded")
        if folded not in [a.casefold() for a in self.allowed_states]:
            return Decision.refuse(
                "Refusing to %s %s: its health state is %s%s; a %s is sent only from %s (option allowed_states)"
                % (self.action, self.name, state, " (%s)" % self.description if self.description else "",
                   self.action, ", ".join(self.allowed_states)))
        if self.check_mode:
            return Decision.check("Check mode: the cache %s (%s) would get a %s" % (self.name, state, self.action))
        return Decision.send()

    def conclude(self, how: str) -> None:
        """A cache that ends in the action's failed state fails the task with the service's words."""
        if self.state is not None and self.state.strip().casefold() in self.rule.failed:
            self.result["status"] = "Failed"
            raise HpcCacheError("The %s of %s ended with the cache reading %s%s" % (
                self.action, self.name, self.state, ": %s" % self.description if self.description else ""))
        super().conclude(how)


class UpgradeTask(CacheActionTask):
    """Apply a pending software upgrade: nothing pending, nothing sent; a flush first when asked."""

    def __init__(self, ops: CacheOperations, ref: CacheRef, *, flush: bool, options: ActionOptions,
                 deadline: t.Optional[Deadline] = None) -> None:
        super().__init__(ops, ref, "upgrade", options=options, deadline=deadline)
        self.flush_first = flush
        self.software: t.Dict[str, t.Any] = {}
        self.before: t.Dict[str, t.Any] = {}

    def state_of(self, body: t.Mapping[str, t.Any]) -> str:
        self.software = firmware(body)
        if not self.before:
            self.before = dict(self.software)
        return super().state_of(body)

    def settled(self, state: str) -> bool:
        """Over once the cache reads a settled state with no upgrade pending any more and other software than
        before (a 204, or a Healthy read with the same upgrade still available or the same version, proves
        nothing)."""
        folded = state.strip().casefold()
        if folded in self.rule.failed:
            return True
        return folded in self.rule.over and not self.software.get("pending") and self._software_changed()

    def _software_changed(self) -> bool:
        before, now = self.before.get("version"), self.software.get("version")
        return before is None or now != before  # a cache that never named its version: the pending flag decides

    def taken(self, state: str) -> bool:
        """An upgrade is sent only while one is pending: after a request with no clear answer, a cache that
        runs it, ended it (failed, or with nothing pending or other software) shows the service took it."""
        folded = state.strip().casefold()
        if self.running(state) or folded in self.rule.failed:
            return True
        changed = self.before.get("version") is not None and self.software.get("version") != self.before.get("version")
        return folded in self.rule.over and (not self.software.get("pending") or changed)

    def decide(self, body: t.Mapping[str, t.Any], state: str) -> Decision:
        if self.running(state):
            return Decision.attach()
        if not self.software.get("pending"):
            version = self.software.get("version") or "unknown"
            status = self.software.get("update_status") or "unknown"
            return Decision.skip("The cache %s has no software upgrade pending (firmware %s, update status %s); "
                                 "nothing was sent" % (self.name, version, status))
        decision = super().decide(body, state)
        if decision.kind == "check":
            return Decision.check("Check mode: the cache %s (%s) would be %supgraded from %s to %s" % (
                self.name, state, "flushed, then " if self.flush_first else "",
                self.software.get("version") or "unknown", self.software.get("pending_version") or "the pending version"))
        return decision

    def send(self) -> None:
        if self.flush_first:
            flush = FlushTask(self.ops, self.ref, options=replace(self.options, wait=True, check_mode=False),
                              deadline=self.deadline, allowed_states=self.allowed_states)
            try:
                done = flush.run()
            finally:
                self.result["polls"] += flush.result.get("polls", 0)
            if done.get("status") != "Succeeded":
                raise HpcCacheError("The flush before the upgrade of %s did not finish (%s): no upgrade was sent"
                                    % (self.name, done.get("msg")))
            self.result["changed"] = bool(done.get("changed"))
        super().send()

    def software_result(self) -> t.Dict[str, t.Any]:
        """The firmware before and after, and the update status and deadline as last read."""
        return {
            "firmware_before": self.before.get("version"),
            "firmware_after": self.software.get("version"),
            "firmware_update_status": self.software.get("update_status"),
            "firmware_update_deadline": self.software.get("deadline"),
            "pending_firmware": self.software.get("pending_version"),
        }
