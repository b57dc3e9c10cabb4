# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The actions of backend maintenance on storage targets.

Each action (flush, suspend, resume, dnsRefresh) is an ActionTask (action.py),
so it has every rule of the cache flush: a 2xx with an operation header is
followed, a bare 2xx is judged by the target's state, no second POST without
proof that the first was not taken. TargetTask runs the sequence a desired
state needs (docs/design.md, "Storage targets"). What is particular to an
action is its TargetActionSpec (TARGET_ACTIONS): a new action is one entry there.
"""

from __future__ import annotations

import typing as t
from dataclasses import replace

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.action import ActionTask, task_deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.decision import Decision
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import Poller, Reading
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, TargetRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.target import (
    FLUSHING,
    READY,
    SUSPENDED,
    is_state,
    target_state,
)

DESIRED_STATES = ("flushed", "suspended", "active")
# The states a plan can start from; in any other (Busy, or one the API does not name) the target is
# busy with another change, and is waited for before anything is decided.
PLANNABLE = frozenset((READY, SUSPENDED, FLUSHING))


class TargetActionSpec(t.NamedTuple):
    """Everything particular to one storage-target action; TargetAction and TargetTask read nothing else."""

    path: str  # the last segment of the action's URL
    running: t.FrozenSet[str]  # states that show the action running
    over: t.FrozenSet[str]  # states that show it over; any other state proves nothing
    taken_when_over: bool  # after a request with no answer, an "over" state shows it was taken
    already_when_over: bool  # a target that already reads an "over" state gets nothing (unless forced)
    waits_for: t.FrozenSet[str] = frozenset()  # states of another change waited out before it is sent


# Suspend, resume and dnsRefresh have no state of their own while they run: only the state they
# lead to (Suspended, Ready) shows them over. A flush is over once the target no longer reads
# Flushing and reads a state it can be left in (Ready, or Suspended when it was suspended).
# A target already Suspended needs no suspend, an already Ready one no resume; a flush and a DNS
# refresh are sent whatever the target reads. A suspend is never sent mid-flush.
TARGET_ACTIONS: t.Dict[str, TargetActionSpec] = {
    "flush": TargetActionSpec("flush", running=frozenset((FLUSHING,)), over=frozenset((READY, SUSPENDED)),
                              taken_when_over=False, already_when_over=False),
    "suspend": TargetActionSpec("suspend", running=frozenset(), over=frozenset((SUSPENDED,)),
                                taken_when_over=True, already_when_over=True, waits_for=frozenset((FLUSHING,))),
    "resume": TargetActionSpec("resume", running=frozenset(), over=frozenset((READY,)),
                               taken_when_over=True, already_when_over=True),
    "dns_refresh": TargetActionSpec("dnsRefresh", running=frozenset(), over=frozenset((READY,)),
                                    taken_when_over=False, already_when_over=False),
}

if t.TYPE_CHECKING:  # types only: a module's target Python need not have typing.TypedDict
    from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.decision import Status

    class OperationRecord(t.TypedDict):
        """One action TargetTask sent, with its answer."""

        action: str
        status_code: t.Optional[int]
        operation_url: t.Optional[str]
        status: t.Optional[str]

    class TargetResult(t.TypedDict, total=False):
        """The result of TargetTask (the module azure_hpc_cache_storage_target)."""

        changed: bool
        failed: bool
        status: t.Optional[Status]
        msg: str
        polls: int
        elapsed: float
        state_before: str
        state_after: str
        operations: t.List[OperationRecord]
        warnings: t.List[str]


class TargetAction(ActionTask):
    """One action on one storage target."""

    subject_kind = "storage target"
    completion_key = "target_state"
    state_key = "state_before"
    state_after_key = "state_after"

    def __init__(self, ops: CacheOperations, ref: TargetRef, action: str, *, options: ActionOptions,
                 deadline: t.Optional[Deadline] = None, force: bool = False) -> None:
        """force: send the action even when the target already reads the state it leads to (a resume of
        a target this run suspended, whatever it reads: the service accepts it, and the state is no proof)."""
        super().__init__(ops.client, options=options, deadline=deadline)
        self.force = force
        self.attach_on_conflict = not force
        self.ops = ops
        self.ref = ref
        self.spec = TARGET_ACTIONS[action]
        self.action = action
        self.action_path = self.spec.path

    @property
    def name(self) -> str:
        return "%s of cache %s" % (self.ref.name, self.ref.cache.name)

    def resource_url(self, *path: str) -> str:
        return self.ops.target_url(self.ref, *path)

    def state_of(self, body: t.Mapping[str, t.Any]) -> str:
        return target_state(body)

    def running(self, state: str) -> bool:
        return state.strip().casefold() in self.spec.running

    def settled(self, state: str) -> bool:
        return state.strip().casefold() in self.spec.over

    def taken(self, state: str) -> bool:
        """A state that shows the request was taken. The state the action leads to shows it only when the
        target did not already read it before the request (a forced resume of a Ready target proves nothing)."""
        if self.force:
            # sent whatever the target reads (a resume of what a run recorded): no state proves it was taken,
            # since the service may never show the state a suspend leads to; only an answer does
            return False
        was_over = self.settled(str(self.result.get(self.state_key) or ""))
        return self.running(state) or (self.spec.taken_when_over and self.settled(state) and not was_over)

    def busy(self, state: str) -> bool:
        """Busy with another change, or with one the action waits for (a suspend: a flush): never sent to,
        waited for."""
        folded = state.strip().casefold()
        if self.running(state):
            return False
        return folded not in PLANNABLE or folded in self.spec.waits_for

    def decide(self, body: t.Mapping[str, t.Any], state: str) -> Decision:
        if self.running(state):
            return Decision.attach()
        if self.spec.already_when_over and self.settled(state) and not self.force:
            return Decision.skip("The storage target %s is already %s; no %s was sent"
                                 % (self.name, state, self.action), status="Succeeded")
        if self.check_mode:
            return Decision.check("Check mode: the storage target %s (%s) would get a %s"
                                  % (self.name, state, self.action))
        return Decision.send()


class TargetTask:
    """The actions that bring one storage target to a desired state, one after the other.

    flushed: flush (a running flush is attached to). suspended: nothing when it
    reads Suspended; else flush first (with flush, or whenever a flush runs),
    waited for even without wait, then suspend. active: resume only a target
    that reads Suspended, then dnsRefresh when asked; a target in any other
    state is not suspended and gets nothing. A target that reads Busy (or a
    state the API does not name) is first read until it leaves it (with wait;
    without, nothing is sent).
    """

    def __init__(self, ops: CacheOperations, ref: TargetRef, *, state: str, flush: bool, dns_refresh: bool,
                 options: ActionOptions, deadline: t.Optional[Deadline] = None) -> None:
        """deadline bounds every step (without one, options.wait_timeout makes one: task_deadline)."""
        if state not in DESIRED_STATES:
            raise HpcCacheError("state: %r must be one of %s" % (state, ", ".join(DESIRED_STATES)))
        self.ops = ops
        self.ref = ref
        self.desired = state
        self.flush = flush
        self.dns_refresh = dns_refresh
        self.options = options
        self.deadline = task_deadline(ops.client, deadline, options.wait_timeout)
        self.started = self.deadline.now()
        self.result: TargetResult = {"changed": False, "operations": [], "polls": 0}
        self.steps: t.List[str] = []  # the actions still to send (start() plans them)
        self._done: t.List[str] = []
        self._body: t.Optional[t.Mapping[str, t.Any]] = None  # the target as start() read it, for the first action
        self._step: t.Optional[TargetAction] = None  # the action begun, until it is finished
        self._nothing_begun = False  # begin() dropped its action (a flush that had ended): finish() has nothing to do

    def plan(self, state: str) -> t.List[str]:
        """The actions to send, in order, for a target read in this state."""
        if self.desired == "flushed":
            return ["flush"]
        if self.desired == "suspended":
            if is_state(state, SUSPENDED):
                return []
            return (["flush"] if self.flush or is_state(state, FLUSHING) else []) + ["suspend"]
        if not is_state(state, SUSPENDED):
            return []
        return ["resume"] + (["dns_refresh"] if self.dns_refresh else [])

    def run(self) -> TargetResult:
        try:
            if self.start():
                while self.steps:
                    self.begin()
                    self.finish()
        finally:
            self.result["elapsed"] = round(self.deadline.now() - self.started, 3)
        return self.result

    @staticmethod
    def ready_for(action: t.Optional[str], state: str) -> bool:
        """A state an action can be decided in: not busy with another change, and never a suspend while
        the target flushes (that flush is waited for first)."""
        folded = state.strip().casefold()
        return folded in PLANNABLE and not (action is not None and folded in TARGET_ACTIONS[action].waits_for)

    def _wait_while_busy(self, state: str, action: t.Optional[str] = None) -> t.Tuple[t.Mapping[str, t.Any], str]:
        """Read the target until it reads a state a plan (or the given action) can start from."""
        last: t.Dict[str, t.Any] = {}

        def read() -> Reading:
            response = self.ops.client.get(self.ops.target_url(self.ref), deadline=self.deadline.at)
            last["body"] = response.json_object()
            now = target_state(last["body"])
            return Reading(self.ready_for(action, now), response.retry_after(), now)

        poll = Poller(self.ops.client).wait_until(
            read, deadline=self.deadline, poll_interval=self.options.poll_interval,
            subject="the change the storage target %s of cache %s is busy with (it read %s)"
                    % (self.ref.name, self.ref.cache.name, state))
        self.result["polls"] += poll.polls
        return last["body"], poll.status

    def start(self) -> bool:
        """Read the target (waiting while it is busy with another change) and plan the actions. False when
        nothing is to be sent: the result is final."""
        body: t.Mapping[str, t.Any] = self.ops.get_target(self.ref, self.deadline.at)
        before = target_state(body)
        self.result.update({"state_before": before, "state_after": before})
        if before.strip().casefold() not in PLANNABLE:
            if not self.options.wait or self.options.check_mode:
                self.result.update({
                    "status": "InProgress",
                    "msg": "The storage target %s of cache %s reads %s, busy with another change: nothing was sent (%s)"
                           % (self.ref.name, self.ref.cache.name, before,
                              "check mode does not wait" if self.options.check_mode else "wait=false")})
                return False
            body, now = self._wait_while_busy(before)
            self.result["state_after"] = now
            before = now
        self.steps = self.plan(before)
        self._body = body
        if not self.steps:
            self.result.update({"status": "Succeeded",
                                "msg": "The storage target %s of cache %s is %s: nothing to do for state=%s"
                                       % (self.ref.name, self.ref.cache.name, before, self.desired)})
        return bool(self.steps)

    def stale(self) -> None:
        """The target as start() read it may be old by the next begin() (other targets' waits came between):
        every action is then decided on a fresh read."""
        self._body = None

    def begin(self) -> None:
        """Send the next action's request (a later action reads the target afresh, and waits while it is busy
        or flushing), without following it: finish() does."""
        action = self.steps[0]
        body, self._body = self._body, None
        if body is None:
            body = self._read_for(action)
            if action == "flush" and self.desired == "suspended" and not self.flush \
                    and not is_state(target_state(body), FLUSHING):
                # planned only to wait out the flush start() read running (flush=false): it has ended since, and
                # no flush was asked for, so none is sent; the next action is decided in its own round
                self.steps.pop(0)
                self._done.append("The flush the storage target %s read running has ended; no flush was sent"
                                  % self.ref.name)
                self._step, self._nothing_begun = None, True
                return
        step = self._step = TargetAction(self.ops, self.ref, action, options=replace(self.options, wait=False),
                                         deadline=self.deadline)
        self._follow(action, lambda: step.run(body))

    def finish(self) -> None:
        """Follow the action begun to its end (every action but the last even without wait); the sequence
        stops at an action that did not end Succeeded (only the last may: wait=false)."""
        if self._nothing_begun:
            self._nothing_begun = False
            return  # begin() sent nothing: the flush it would have waited for had ended
        action = self.steps.pop(0)
        step = self._begun()
        outcome = self._follow(action, step.finish) if self.options.wait or self.steps else step.result
        self._add_step(action, outcome, sent=step.sent)
        self._done.append(outcome["msg"])
        if outcome.get("status") != "Succeeded":
            self.steps = []
        if not self.steps:  # the sequence is over: its status and what each action said
            self.result["status"] = outcome.get("status")
            self.result["msg"] = ". ".join(self._done)

    def _begun(self) -> TargetAction:
        if self._step is None:
            raise HpcCacheError("A storage-target action was followed before it was begun (TargetTask.finish)")
        return self._step

    def _follow(self, action: str, call: t.Callable[[], t.Any]) -> t.Any:
        try:
            return call()
        except Exception as exc:  # pylint: disable=broad-exception-caught  # the request it sent is reported
            step = self._begun()
            learnt = exc.result if isinstance(exc, HpcCacheError) else {}
            self._add_step(action, dict(step.result, **learnt), sent=step.sent, failed=True)
            if step.result.get("status"):
                self.result["status"] = step.result["status"]
            raise

    def _read_for(self, action: str) -> t.Mapping[str, t.Any]:
        body: t.Mapping[str, t.Any] = self.ops.get_target(self.ref, self.deadline.at)
        state = target_state(body)
        if not self.options.check_mode and not self.ready_for(action, state):
            body = self._wait_while_busy(state, action)[0]
        return body

    def _add_step(self, action: str, outcome: t.Mapping[str, t.Any], sent: bool, failed: bool = False) -> None:
        self.result["polls"] += outcome.get("polls", 0)
        if outcome.get("warnings"):
            self.result.setdefault("warnings", []).extend(outcome["warnings"])
        self.result["changed"] = self.result["changed"] or bool(outcome.get("changed"))
        if not self.options.check_mode and outcome.get("state_after"):
            self.result["state_after"] = outcome["state_after"]
        if sent:  # check mode, "already there" and attaching send nothing
            self.result["operations"].append({
                "action": action, "status_code": outcome.get("status_code"),
                "operation_url": outcome.get("operation_url"),
                "status": outcome.get("status") or ("Failed" if failed else None),
            })


class Together:
    """Several targets of one cache brought to their desired states at once: in each round every task's next
    action is sent before any is followed (the service runs them side by side, so a round lasts about its
    longest action, not their sum), and the rounds are aligned on the last action, so every target's last
    action (its suspend, its resume) goes out with the others' and no target waits out another's flush in
    that state. Each action is decided on a read of its target made just before it (a round may wait long).
    The first failure stops the rest: nothing more is sent; the actions already sent are followed to their end
    (reads only, so each task's result says what was sent and how it ended, and nothing of this step still runs
    when the next one starts), unless the failure is one of `stop` (the caller's: the run must send and wait for
    nothing more); then it is raised, and `failed` is its task."""

    def __init__(self, tasks: t.Sequence[TargetTask],
                 stop: t.Tuple[t.Type[BaseException], ...] = ()) -> None:
        self.tasks = list(tasks)
        self.stop = stop
        self.failed: t.Optional[TargetTask] = None

    def run(self) -> None:
        started = [task for task in self.tasks if self._call(task, task.start)]
        for task in started:
            task.stale()
        for left in range(max((len(task.steps) for task in started), default=0), 0, -1):
            now = [task for task in started if len(task.steps) == left]
            begun: t.List[TargetTask] = []
            try:
                for task in now:
                    self._call(task, task.begin)
                    begun.append(task)
                for task in now:
                    begun.remove(task)
                    self._call(task, task.finish)
            except Exception as exc:
                if not isinstance(exc, self.stop):
                    self._follow_sent(begun)
                raise

    def _follow_sent(self, begun: t.Sequence[TargetTask]) -> None:
        """After a failure: follow every action already sent to its end, reads only; a failure of one is its own
        task's (reported in its result), and stops no other's following."""
        for task in begun:
            try:
                _timed(task, task.finish)
            except Exception as exc:  # pylint: disable=broad-exception-caught  # its result says how it failed
                if isinstance(exc, self.stop):
                    raise

    def _call(self, task: TargetTask, call: t.Callable[[], t.Any]) -> t.Any:
        try:
            return _timed(task, call)
        except BaseException:
            self.failed = task
            raise


def _timed(task: TargetTask, call: t.Callable[[], t.Any]) -> t.Any:
    """call(), the task's elapsed updated whatever happens."""
    try:
        return call()
    finally:
        task.result["elapsed"] = round(task.deadline.now() - task.started, 3)
