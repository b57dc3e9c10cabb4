# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One ARM action on one resource, followed to its end: the machinery every action shares.

read the resource -> decide (the subclass) -> POST the action -> follow the
operation the answer names, or the resource itself -> read the aftermath ->
conclude. The rules (docs/design.md, "An action"):

- a 2xx answer with Azure-AsyncOperation or Location is an operation and is
  followed, 204 included; a 2xx with neither proves nothing and the resource
  is read until it shows a settled state;
- the POST is sent again only when it got no answer and the resource, read
  SETTLE_READS times, never showed the action running; at most
  MAX_UNANSWERED_POSTS in one task; a 409 or a 5xx while it runs attaches;
- the operation decides, the resource's state corroborates: once the
  operation says Succeeded (or a bare 2xx was answered and the resource shows
  the action neither running nor over), the resource is read for at most
  confirm_timeout seconds to show the state the action leads to; if it does
  not, the task fails saying both (or, with trust_operation, succeeds with a
  warning). Only a state that shows the action running is waited for up to
  wait_timeout;
- conclude() alone sets the final status, from the last word of the service:
  Succeeded needs the operation or the resource to say "over" and neither to
  say "running".

A subclass says what the resource's state is, which states mean "running" and
"settled", and what to do before sending: decide() returns a Decision (attach,
skip, refuse, check, send), and act() is the one place that acts on it. Time
is one Deadline (_poller.py), given to the task once.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient, Response
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import (
    ArmError,
    HpcCacheError,
    OperationTimeout,
    TransportError,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import Poller, Reading
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import DEFAULT_API_VERSION

# How an action runs: the options of every module that sends one, with the rule each is checked
# against before any request. Documented by the azure_hpc.cache.action doc fragment.
ACTION_ARGSPEC: t.Dict[str, t.Dict[str, t.Any]] = {
    "api_version": {"type": "str", "default": DEFAULT_API_VERSION},
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 3600},
    "poll_interval": {"type": "int", "default": 10},
    "confirm_timeout": {"type": "int", "default": 120},
    "trust_operation": {"type": "bool", "default": False},
}
ACTION_RULES: t.Dict[str, t.Callable[[t.Any, str], t.Any]] = {
    "api_version": rules.api_version,
    "wait_timeout": rules.positive_int,
    "poll_interval": rules.positive_int,
    "confirm_timeout": rules.positive_int,
}


def action_argument_spec() -> t.Dict[str, t.Dict[str, t.Any]]:
    """A copy of ACTION_ARGSPEC, for a module's argument_spec."""
    return {name: dict(spec) for name, spec in ACTION_ARGSPEC.items()}


# At most this many requests of one action in one task: a request is only sent again after the one
# before got no answer and the resource, read SETTLE_READS times, never showed the action running.
MAX_UNANSWERED_POSTS = 3
SETTLE_READS = 3
# The longest pause between those reads (poll_interval when shorter).
SETTLE_DELAY = 5.0

if t.TYPE_CHECKING:  # types only: a module's target Python need not have typing.Literal
    #: A task's status, as the modules document it.
    Status = t.Literal["Succeeded", "InProgress", "Skipped", "Refused", "Unconfirmed", "Failed", "Canceled"]
    DecisionKind = t.Literal["attach", "skip", "refuse", "check", "send"]
    #: The result keys of the resource's state before and after (FlushTask: health_state; TargetAction: state_before).
    StateKey = t.Literal["state", "health_state", "state_before"]
    StateAfterKey = t.Literal["state_after", "health_state_after"]

    class ActionResult(t.TypedDict, total=False):
        """The result of one action (ActionTask.result), as a module returns it."""

        changed: bool
        failed: bool
        status: Status
        msg: str
        polls: int
        elapsed: float
        status_code: int
        operation_url: str
        completion: t.Dict[str, str]  # operation_status and the resource's state (completion_key), as last read
        warnings: t.List[str]
        state: str
        state_after: str
        health_state: str
        health_state_after: str
        state_before: str


@dataclass(frozen=True)
class Decision:
    """What decide() concludes from the resource as first read; ActionTask.act() alone acts on it.

    attach: the action already runs, follow it (nothing sent). skip: nothing to do, the task ends with
    ``status`` (Skipped, or Succeeded when the resource already reads the state the action leads to).
    refuse: the task fails with status Refused. check: check mode, nothing sent, ``changed`` as the
    real run would report. send: POST the action and follow it.
    """

    kind: DecisionKind
    msg: str = ""
    status: Status = "Succeeded"

    @classmethod
    def attach(cls) -> Decision:
        return cls("attach")

    @classmethod
    def skip(cls, msg: str, *, status: Status = "Skipped") -> Decision:
        return cls("skip", msg, status)

    @classmethod
    def refuse(cls, msg: str) -> Decision:
        return cls("refuse", msg, "Refused")

    @classmethod
    def check(cls, msg: str) -> Decision:
        return cls("check", msg)

    @classmethod
    def send(cls) -> Decision:
        return cls("send")


class ActionTask:
    """Base of one action on one resource; run() returns the task result."""

    #: What the action is called in messages ("flush"), the last segment of its URL, and the result keys
    #: of the state before and after.
    action = "action"
    action_path = "action"
    #: The resource's kind in messages ("cache"), and its key in the result's completion ("cache_state").
    subject_kind = "resource"
    completion_key = "state"
    state_key: StateKey = "state"
    state_after_key: StateAfterKey = "state_after"

    # A 409 while the resource shows the action taken means our own earlier request runs: attach to it. False
    # for a request sent whatever the resource reads (a forced resume): a 409 then only says another operation
    # runs, and the request was refused (TargetAction, force).
    attach_on_conflict = True

    def __init__(self, client: ArmClient, *, wait: bool, poll_interval: int, check_mode: bool,
                 deadline: t.Optional[Deadline] = None, wait_timeout: t.Optional[int] = None,
                 confirm_timeout: int = 120, trust_operation: bool = False) -> None:
        """deadline bounds the task (the steps of one longer task share it); every wait and pause reads its
        clock. wait_timeout, for a caller with no Deadline, makes one on the client's clock.

        confirm_timeout bounds how long the resource may take to show the state an action leads to once
        the service said the action is over; trust_operation accepts the service's word with a warning
        when it does not.
        """
        self.client = client
        self.poller = Poller(client)
        self.wait = wait
        self.poll_interval = poll_interval
        self.check_mode = check_mode
        self.confirm_timeout = confirm_timeout
        self.trust_operation = trust_operation
        self.deadline = task_deadline(client, deadline, wait_timeout)
        self.started = self.deadline.now()
        self.result: ActionResult = {"changed": False, "polls": 0}
        # The last word of the service on the action: None until read.
        self.operation_status: t.Optional[str] = None
        self.state: t.Optional[str] = None
        # True once the action's request went out (whatever came back).
        self.sent = False

    # What a subclass says -------------------------------------------------
    @property
    def name(self) -> str:
        """The resource's name, for messages."""
        raise NotImplementedError

    def resource_url(self, *path: str) -> str:
        raise NotImplementedError

    def state_of(self, body: t.Mapping[str, t.Any]) -> str:
        raise NotImplementedError

    def running(self, state: str) -> bool:
        """The state shows the action running."""
        raise NotImplementedError

    def settled(self, state: str) -> bool:
        """A known state that shows the action no longer runs; an unknown one proves nothing."""
        raise NotImplementedError

    def busy(self, state: str) -> bool:
        """The resource is busy with some change, maybe another's: after a request with no clear answer
        it is waited for before anything is judged. By default nothing is."""
        return False

    def decide(self, body: t.Mapping[str, t.Any], state: str) -> Decision:
        """Given the resource as first read: what to do (act() does it). No request, no result change."""
        raise NotImplementedError

    # The run ---------------------------------------------------------------
    def elapsed(self) -> float:
        return round(self.deadline.now() - self.started, 3)

    def run(self, body: t.Optional[t.Mapping[str, t.Any]] = None) -> ActionResult:
        """body: the resource as the caller has just read it, instead of a read of its own."""
        try:
            if body is None:
                body = self.client.get(self.resource_url(), deadline=self.deadline.at).json_object()
            state = self.state_of(body)
            self.result[self.state_key] = state
            self.act(self.decide(body, state), state)
        except HpcCacheError as exc:  # a failed wait's own reads add to what the task had read before it
            if isinstance(exc.result.get("polls"), int):
                exc.result["polls"] += self.result["polls"]
            raise
        finally:
            self.result["elapsed"] = self.elapsed()
        return self.result

    def act(self, decision: Decision, state: str) -> None:
        """The one place a decision is acted on, for every action."""
        if decision.kind == "attach":
            self.attach(state)
        elif decision.kind == "skip":
            self.state = state
            self.result.update({"status": decision.status, "msg": decision.msg})
        elif decision.kind == "refuse":
            self.result["status"] = "Refused"
            raise HpcCacheError(decision.msg)
        elif decision.kind == "check":
            self.result.update({"changed": True, "status": "Succeeded", "msg": decision.msg})
        else:
            self.send()

    def attach(self, state: str) -> None:
        """The action already runs: follow it, send nothing."""
        self.state = state
        self.follow_resource("The %s %s was already %s; no second %s was sent"
                             % (self.subject_kind, self.name, state.lower(), self.action))

    def send(self) -> None:
        """POST the action and follow it to its end (or, without wait, to its first answer)."""
        self.sent = True
        response = self._post()
        self.result["changed"] = True
        if response is None:
            self.follow_resource("The %s request of %s got no clear answer, but the %s is %s"
                                 % (self.action, self.name, self.subject_kind, (self.state or "").lower()))
            return
        self.result["status_code"] = response.status
        how = "The %s of %s was accepted (HTTP %d)" % (self.action, self.name, response.status)
        async_url = response.headers.get("Azure-AsyncOperation")
        location = response.headers.get("Location")
        operation_url = async_url or location
        if not operation_url:
            # 200 or 204 alone is no proof: the API describes 204 as "already in progress or has completed".
            self.follow_resource(how)
            return
        # Any 2xx with an operation header is an operation, 204 included: the service was recorded
        # answering a flush with 204 and Azure-AsyncOperation while it ran on.
        self.result["operation_url"] = operation_url
        self.operation_status = "InProgress"
        if not self.wait:
            self.conclude(how)
            return
        subject = "the %s operation" % self.action
        poll = self.poller.wait_operation(async_url=async_url, location_url=location, deadline=self.deadline,
                                          poll_interval=self.poll_interval, first_delay=response.retry_after(),
                                          subject=subject)
        self.result["polls"] += poll.polls
        self.operation_status = poll.status
        self.state = None  # what the resource reads now corroborates the operation's word (follow_resource)
        self.follow_resource(how)

    # Sending ---------------------------------------------------------------
    def _post(self) -> t.Optional[Response]:
        """Send the action; None when it got no clear answer but the resource shows it was taken.

        After a POST with no answer the service may need a moment to show the
        action: the resource is read SETTLE_READS times before the POST is sent
        again. A 409, or a 5xx the client did not resend, while the resource
        shows the action taken means it runs: it is attached to.
        """
        url = self.resource_url(self.action_path)
        last: t.Optional[TransportError] = None
        for _attempt in range(MAX_UNANSWERED_POSTS):
            try:
                return self.client.post_action(url, deadline=self.deadline.at)
            except TransportError as exc:
                last = exc
            except ArmError as exc:
                if ((exc.status == 409 and self.attach_on_conflict) or exc.status >= 500) and \
                        self._shows_taken(reads=1):
                    return None
                raise
            if self._shows_taken(reads=SETTLE_READS):
                return None  # the service took the unanswered POST
        raise HpcCacheError(
            "The %s request got no answer %d times and the %s never showed it running: %s"
            % (self.action, MAX_UNANSWERED_POSTS, self.subject_kind, last),
            request_id=last.request_id if last else None,
        )

    def taken(self, state: str) -> bool:
        """After a request with no clear answer: the state shows the service took it. By default: it runs."""
        return self.running(state)

    def _shows_taken(self, reads: int) -> bool:
        """After a request with no clear answer: a resource that reads busy (something runs, whose is not
        known) is waited for until it settles, and judged by what it reads then. Never a second request
        while it is busy."""
        delay = min(float(self.poll_interval), SETTLE_DELAY)
        for read in range(reads):
            if read and not self.deadline.pause(delay):
                break
            state = self._read_state()
            if self.busy(state):
                state = self._wait_while_busy(state)
            if self.taken(state):
                self.state = state
                return True
        return False

    def _wait_while_busy(self, state: str) -> str:
        def read() -> Reading:
            reading = self._read_until_settled()
            return Reading(not self.busy(reading.status), reading.retry_after, reading.status)

        poll = self.poller.wait_until(read, deadline=self.deadline, poll_interval=self.poll_interval,
                                      subject="the change the %s %s is busy with (it read %s)"
                                              % (self.subject_kind, self.name, state))
        self.result["polls"] += poll.polls
        return poll.status

    # Following -------------------------------------------------------------
    def _state_of_answer(self, response: Response) -> str:
        state = self.state_of(response.json_object())
        self.result[self.state_after_key] = state
        return state

    def _read_state(self, deadline: t.Optional[Deadline] = None) -> str:
        return self._state_of_answer(self.client.get(self.resource_url(), deadline=(deadline or self.deadline).at))

    def _read_until_settled(self, deadline: t.Optional[Deadline] = None) -> Reading:
        response = self.client.get(self.resource_url(), deadline=(deadline or self.deadline).at)
        self.state = self._state_of_answer(response)
        return Reading(self.settled(self.state), response.retry_after(), self.state)

    def follow_resource(self, how: str) -> None:
        """Read the resource until a settled state (with wait), then conclude.

        A state that shows the action (or some change: busy) running is waited
        for up to the task's deadline. Once the operation said Succeeded, or
        while the resource shows the action neither running nor over, it has
        confirm_timeout seconds to show the state the action leads to; reads
        that fail in that window count against it (see _unconfirmed).
        """
        operation_over = self.operation_status == "Succeeded"
        if self.state is None and not operation_over:
            self.state = self._read_state()
        if self.wait and not self.check_mode and (self.state is None or not self.settled(self.state)):
            if not self._corroborate(how, operation_over):
                return
        self.conclude(how)

    def _shows_running(self, state: t.Optional[str]) -> bool:
        return state is not None and (self.running(state) or self.busy(state))

    def _corroborate(self, how: str, operation_over: bool) -> bool:
        """Wait for the state the action leads to; False when the window closed without it (reported)."""
        clock = self.deadline.clock
        started = clock()
        window = {"end": started + self.confirm_timeout, "start": started}
        last_error: t.List[HpcCacheError] = []

        def limit() -> Deadline:
            if not operation_over and self._shows_running(self.state):
                return self.deadline
            return self.deadline.sooner(window["end"])

        def read() -> Reading:
            try:
                reading = self._read_until_settled(deadline=limit())
            except HpcCacheError as exc:
                last_error[:] = [exc]
                raise
            if reading.done:
                return reading
            if not operation_over and self._shows_running(reading.status):
                window["start"], window["end"] = clock(), clock() + self.confirm_timeout  # it runs: a new window
                return reading
            left = window["end"] - clock()
            if left <= 0:
                return Reading(True, status=reading.status)  # the window is over: nothing more to wait for
            return Reading(False, min(reading.retry_after or float(self.poll_interval), left), reading.status)

        if operation_over:  # the aftermath is read at once; failed reads count against the window
            try:
                self.state = self._read_state(deadline=limit())
            except HpcCacheError as exc:
                last_error[:] = [exc]
            if self.state is not None and self.settled(self.state):
                return True
        try:
            poll = self.poller.wait_until(read, deadline=self.deadline if not operation_over else limit(),
                                          poll_interval=self.poll_interval, first_delay=min(float(self.poll_interval), self.confirm_timeout),
                                          subject="the %s of %s" % (self.action, self.name))
            self.result["polls"] += poll.polls
        except HpcCacheError as exc:  # the window (or the task) ran out, or every read in it failed
            if not operation_over:
                raise
            self.result["polls"] += exc.result.get("polls", 0)
            if not isinstance(exc, OperationTimeout):
                last_error[:] = [exc]
        if self.state is not None and self.settled(self.state):
            return True
        bound = "wait_timeout" if window["end"] > self.deadline.at else "confirm_timeout"
        self._unconfirmed(how, clock() - window["start"], bound, last_error[0] if last_error else None)
        return False

    def _unconfirmed(self, how: str, waited: float, bound: str, error: t.Optional[HpcCacheError]) -> None:
        """The service said the action is over (or gave no operation) and the resource never showed it."""
        if self.operation_status:
            said = "the %s operation reported %s, but " % (self.action, self.operation_status)
        elif self.sent:
            said = "the service answered without an operation to follow, and "
        else:
            said = "it was found running, and "
        if self.state is None:
            seen = "the %s %s could not be read in %d s to confirm it: %s" % (
                self.subject_kind, self.name, round(waited), error or "no answer")
        else:
            seen = "the %s %s still reads %s after %d s (%s)" % (
                self.subject_kind, self.name, self.state, round(waited), bound)
        text = "%s: %s%s" % (how, said, seen)
        evidence = (("operation_status", self.operation_status), (self.completion_key, self.state))
        self.result["completion"] = {k: v for k, v in evidence if v is not None}
        if self.trust_operation and self.operation_status == "Succeeded":
            warning = text + "; accepted on the operation's word (trust_operation)"
            self.result.setdefault("warnings", []).append(warning)
            self.result.update({"status": "Succeeded", "msg": warning})
            return
        self.result["status"] = "Unconfirmed"
        raise HpcCacheError(text + "; the state it leads to never showed, so the %s is not reported done%s"
                            % (self.action, " (trust_operation: true accepts the operation's word)"
                               if self.operation_status == "Succeeded" else ""))

    def conclude(self, how: str) -> None:
        """The one place that sets the final status, from the service's last word on the action."""
        evidence = {"operation_status": self.operation_status, self.completion_key: self.state}
        self.result["completion"] = {k: v for k, v in evidence.items() if v is not None}
        said = "; ".join(
            ["the operation reported %s" % self.operation_status] * (self.operation_status is not None)
            + ["the %s reads %s" % (self.subject_kind, self.state)] * (self.state is not None)
        ) or "no status was read"
        over = self.operation_status in (None, "Succeeded") and (
            self.settled(self.state) if self.state is not None else self.operation_status == "Succeeded")
        if over:
            self.result.update({"status": "Succeeded", "msg": "%s and has finished (%s)" % (how, said)})
            return
        why = ("not waiting (wait=false)" if not self.wait else "check mode does not wait" if self.check_mode
               else "it still runs")
        self.result.update({"status": "InProgress", "msg": "%s; it runs on, %s (%s)" % (how, why, said)})


def task_deadline(client: ArmClient, deadline: t.Optional[Deadline], wait_timeout: t.Optional[int]) -> Deadline:
    """The given deadline; else wait_timeout from now on the clock the client's request bounds use."""
    if deadline is not None:
        return deadline
    if wait_timeout is None:
        raise TypeError("a task needs a deadline or a wait_timeout")
    return Deadline.after(wait_timeout, clock=client.clock, sleep=client.sleep)
