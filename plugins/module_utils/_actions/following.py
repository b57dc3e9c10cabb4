# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""After the request (or none, when the action already ran): follow it, confirm it, conclude.

docs/design.md, "An action", rules 2 to 4: a 2xx with Azure-AsyncOperation or Location is an operation,
followed to its end, 204 included; a 2xx with neither proves nothing and the resource is read until it
shows a settled state. The operation decides, the resource's state corroborates: once the operation says
Succeeded (or a bare 2xx was answered and the resource shows the action neither running nor over), the
resource is read for at most confirm_timeout seconds to show the state the action leads to; if it does
not, the task fails saying both (or, with trust_operation, succeeds with a warning). Only a state that
shows the action running is waited for up to wait_timeout. conclude() alone sets the final status.
"""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import Reading
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError, OperationTimeout

if t.TYPE_CHECKING:
    from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.action import ActionTask
    from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
    from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.response import Response


class Follower:
    """Follows one task's action to its end and concludes it.

    It keeps nothing of its own: the service's last word (operation_status, state) and the result are
    the task's. The end is the task's conclude() (a subclass may add to it); conclude() here is its rule.
    """

    def __init__(self, task: ActionTask) -> None:
        self.task = task

    def follow_answer(self, response: Response, answered: t.Optional[float] = None,
                      hint: t.Optional[float] = None) -> None:
        """The request was answered: follow the operation it names, or (with none) the resource. Without
        wait, the task's finish() follows it later (answered: when the answer came, on the task's clock; hint:
        the Retry-After it asked for then, counted from then, as an HTTP-date is counted from the moment read)."""
        task = self.task
        if answered is None:
            answered, hint = task.deadline.now(), response.retry_after()
        task.result["status_code"] = response.status
        how = "The %s of %s was accepted (HTTP %d)" % (task.action, task.name, response.status)
        async_url = response.headers.get("Azure-AsyncOperation")
        location = response.headers.get("Location")
        operation_url = async_url or location
        if not operation_url:
            # 200 or 204 alone is no proof: the API describes 204 as "already in progress or has completed".
            self.follow_resource(how)
            return
        # Any 2xx with an operation header is an operation, 204 included: the service was recorded
        # answering a flush with 204 and Azure-AsyncOperation while it ran on.
        task.result["operation_url"] = operation_url
        task.operation_status = "InProgress"
        if not task.wait:
            task.pending = lambda: self.follow_answer(response, answered, hint)
            task.conclude(how)
            return
        subject = "the %s operation" % task.action
        poll = task.poller.wait_operation(async_url=async_url, location_url=location, deadline=task.deadline,
                                          poll_interval=task.poll_interval, first_delay=hint,
                                          subject=subject, since=answered)
        task.result["polls"] += poll.polls
        task.operation_status = poll.status
        task.state = None  # what the resource reads now corroborates the operation's word (follow_resource)
        self.follow_resource(how)

    def follow_resource(self, how: str) -> None:
        """Read the resource until a settled state (with wait), then conclude.

        A state that shows the action (or some change: busy) running is waited
        for up to the task's deadline. Once the operation said Succeeded, or
        while the resource shows the action neither running nor over, it has
        confirm_timeout seconds to show the state the action leads to; reads
        that fail in that window count against it (see _unconfirmed).
        """
        task = self.task
        operation_over = task.operation_status == "Succeeded"
        if task.state is None and not operation_over:
            task.state = task._read_state()
        if not task.check_mode and (task.state is None or not task.settled(task.state)):
            if not task.wait:
                task.pending = lambda: self.follow_resource(how)
            elif not self._corroborate(how, operation_over):
                return
        task.conclude(how)

    def _shows_running(self, state: t.Optional[str]) -> bool:
        return state is not None and (self.task.running(state) or self.task.busy(state))

    def _corroborate(self, how: str, operation_over: bool) -> bool:
        """Wait for the state the action leads to; False when the window closed without it (reported)."""
        task = self.task
        clock = task.deadline.clock
        started = clock()
        window = {"end": started + task.confirm_timeout, "start": started}
        last_error: t.List[HpcCacheError] = []

        def limit() -> Deadline:
            if not operation_over and self._shows_running(task.state):
                return task.deadline
            return task.deadline.sooner(window["end"])

        def read() -> Reading:
            try:
                reading = task._read_until_settled(deadline=limit())
            except HpcCacheError as exc:
                last_error[:] = [exc]
                raise
            if reading.done:
                return reading
            if not operation_over and self._shows_running(reading.status):
                window["start"], window["end"] = clock(), clock() + task.confirm_timeout  # it runs: a new window
                return reading
            left = window["end"] - clock()
            if left <= 0:
                return Reading(True, status=reading.status)  # the window is over: nothing more to wait for
            return Reading(False, reading.retry_after, reading.status, most=left)

        if operation_over:  # the aftermath is read at once; failed reads count against the window
            try:
                task.state = task._read_state(deadline=limit())
            except HpcCacheError as exc:
                last_error[:] = [exc]
            if task.state is not None and task.settled(task.state):
                return True
        try:
            poll = task.poller.wait_until(read, deadline=task.deadline if not operation_over else limit(),
                                          poll_interval=task.poll_interval,
                                          subject="the %s of %s" % (task.action, task.name))
            task.result["polls"] += poll.polls
        except HpcCacheError as exc:  # the window (or the task) ran out, or every read in it failed
            if not operation_over:
                raise
            task.result["polls"] += exc.result.get("polls", 0)
            if not isinstance(exc, OperationTimeout):
                last_error[:] = [exc]
        if task.state is not None and task.settled(task.state):
            return True
        bound = "wait_timeout" if window["end"] > task.deadline.at else "confirm_timeout"
        self._unconfirmed(how, clock() - window["start"], bound, last_error[0] if last_error else None)
        return False

    def _unconfirmed(self, how: str, waited: float, bound: str, error: t.Optional[HpcCacheError]) -> None:
        """The service said the action is over (or gave no operation) and the resource never showed it."""
        task = self.task
        if task.operation_status:
            said = "the %s operation reported %s, but " % (task.action, task.operation_status)
        elif task.sent:
            said = "the service answered without an operation to follow, and "
        else:
            said = "it was found running, and "
        if task.state is None:
            seen = "the %s %s could not be read in %d s to confirm it: %s" % (
                task.subject_kind, task.name, round(waited), error or "no answer")
        else:
            seen = "the %s %s still reads %s after %d s (%s)" % (
                task.subject_kind, task.name, task.state, round(waited), bound)
        text = "%s: %s%s" % (how, said, seen)
        evidence = (("operation_status", task.operation_status), (task.completion_key, task.state))
        task.result["completion"] = {k: v for k, v in evidence if v is not None}
        if task.trust_operation and task.operation_status == "Succeeded":
            warning = text + "; accepted on the operation's word (trust_operation)"
            task.result.setdefault("warnings", []).append(warning)
            task.result.update({"status": "Succeeded", "msg": warning})
            return
        task.result["status"] = "Unconfirmed"
        raise HpcCacheError(text + "; the state it leads to never showed, so the %s is not reported done%s"
                            % (task.action, " (trust_operation: true accepts the operation's word)"
                               if task.operation_status == "Succeeded" else ""))

    def conclude(self, how: str) -> None:
        """ActionTask.conclude's rule: the final status from the service's last word on the action."""
        task = self.task
        evidence = {"operation_status": task.operation_status, task.completion_key: task.state}
        task.result["completion"] = {k: v for k, v in evidence.items() if v is not None}
        said = "; ".join(
            ["the operation reported %s" % task.operation_status] * (task.operation_status is not None)
            + ["the %s reads %s" % (task.subject_kind, task.state)] * (task.state is not None)
        ) or "no status was read"
        over = task.operation_status in (None, "Succeeded") and (
            task.settled(task.state) if task.state is not None else task.operation_status == "Succeeded")
        if over:
            task.result.update({"status": "Succeeded", "msg": "%s and has finished (%s)" % (how, said)})
            return
        why = ("not waiting (wait=false)" if not task.wait else "check mode does not wait" if task.check_mode
               else "it still runs")
        task.result.update({"status": "InProgress", "msg": "%s; it runs on, %s (%s)" % (how, why, said)})
