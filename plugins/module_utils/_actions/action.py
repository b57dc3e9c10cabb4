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
  TAKEN_READS times, never showed the action running; at most
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
is one Deadline (_base/deadline.py), given to the task once.

The rooms of an action: here the task (what a subclass says; read -> decide ->
act); decision.py: Decision and the result types; sending.py: the request, and
no second one without proof (RequestSender); following.py: following the
operation or the resource, confirming the state, concluding (Follower).
"""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.decision import Decision
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.following import Follower
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import Poller, Reading
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.sending import RequestSender
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions

if t.TYPE_CHECKING:  # types only: a module's target Python need not have typing.Literal
    from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.decision import (
        ActionResult,
        StateAfterKey,
        StateKey,
    )
    from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.response import Response


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

    def __init__(self, client: ArmClient, *, options: ActionOptions, deadline: t.Optional[Deadline] = None) -> None:
        """options: how the action runs (_actions/options.py), one value for the whole task. deadline bounds the
        task (the steps of one longer task share it); every wait and pause reads its clock. Without one,
        options.wait_timeout makes one on the client's clock.
        """
        self.client = client
        self.poller = Poller(client)
        self.options = options
        self.wait, self.poll_interval, self.check_mode = options.wait, options.poll_interval, options.check_mode
        self.confirm_timeout, self.trust_operation = options.confirm_timeout, options.trust_operation
        self.deadline = task_deadline(client, deadline, options.wait_timeout)
        self.started = self.deadline.now()
        self.result: ActionResult = {"changed": False, "polls": 0}
        # The last word of the service on the action: None until read.
        self.operation_status: t.Optional[str] = None
        self.state: t.Optional[str] = None
        # True once the action's request went out (whatever came back).
        self.sent = False
        # Without wait: what following the action to its end still takes (finish() does it), or None.
        self.pending: t.Optional[t.Callable[[], None]] = None

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

        def first() -> None:
            nonlocal body
            if body is None:
                body = self.client.get(self.resource_url(), deadline=self.deadline.at).json_object()
            state = self.state_of(body)
            self.result[self.state_key] = state
            self.act(self.decide(body, state), state)

        return self._counted(first)

    def finish(self) -> ActionResult:
        """Follow an action run without wait to its end, as run() with wait would have: the operation its
        answer named (the first read counts from the answer), or the resource. Several actions are begun
        this way and then finished one after the other, so the service runs them side by side."""
        pending, self.pending = self.pending, None
        if pending is None:
            return self.result
        self.wait = True
        for said in ("status", "msg"):  # what the run without wait concluded ("it runs on") is concluded again
            self.result.pop(said, None)  # type: ignore[misc]
        return self._counted(pending)

    def _counted(self, call: t.Callable[[], None]) -> ActionResult:
        """call(), then the result; a failed wait's own reads add to what the task had read before it."""
        try:
            call()
        except HpcCacheError as exc:
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
        Follower(self).follow_resource("The %s %s was already %s; no second %s was sent"
                                       % (self.subject_kind, self.name, state.lower(), self.action))

    def send(self) -> None:
        """POST the action and follow it to its end (or, without wait, to its first answer)."""
        self.sent = True
        response = RequestSender(self).post()
        self.result["changed"] = True
        if response is None:
            Follower(self).follow_resource("The %s request of %s got no clear answer, but the %s is %s"
                                           % (self.action, self.name, self.subject_kind, (self.state or "").lower()))
            return
        Follower(self).follow_answer(response)

    def taken(self, state: str) -> bool:
        """After a request with no clear answer: the state shows the service took it. By default: it runs."""
        return self.running(state)

    def conclude(self, how: str) -> None:
        """The one place that sets the final status, from the service's last word on the action (Follower.conclude).
        A subclass may judge first (CacheActionTask: a state that shows the action failed fails the task)."""
        Follower(self).conclude(how)

    # Reading the resource ----------------------------------------------------
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


def task_deadline(client: ArmClient, deadline: t.Optional[Deadline], wait_timeout: int) -> Deadline:
    """The given deadline; else wait_timeout (ActionOptions.wait_timeout) from now on the clock the client's
    request bounds use."""
    if deadline is not None:
        return deadline
    return Deadline.after(wait_timeout, clock=client.clock, sleep=client.sleep)
