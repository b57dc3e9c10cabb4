# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action's request, and no second one without proof (docs/design.md, "An action", rule 5).

The client resends a POST only when the service says it did not take it. After a request that got no
answer, the resource is read TAKEN_READS times, a few seconds apart, for a state that shows the service
took it (ActionTask.taken); only if it never does is the request sent again, at most MAX_UNANSWERED_POSTS
in one task. A 409 (with ActionTask.attach_on_conflict), or a 5xx the client did not resend, while the
resource shows the action taken attaches to it. A resource that reads busy at such a read is waited for
until it no longer does, and judged by what it reads then: never a second request while it is busy.
"""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import Reading
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ArmError, HpcCacheError, TransportError

if t.TYPE_CHECKING:
    from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.action import ActionTask
    from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.response import Response

# At most this many requests of one action in one task: a request is only sent again after the one
# before got no answer and the resource, read TAKEN_READS times, never showed the action taken.
MAX_UNANSWERED_POSTS = 3
TAKEN_READS = 3
# The longest pause between those reads (poll_interval when shorter).
TAKEN_READ_PAUSE = 5.0


class RequestSender:
    """Sends one task's request; after one with no clear answer, reads the resource for proof it was taken.

    It keeps nothing of its own: what it reads goes to the task (state, result).
    """

    def __init__(self, task: ActionTask) -> None:
        self.task = task

    def post(self) -> t.Optional[Response]:
        """Send the action; None when it got no clear answer but the resource shows it was taken.

        After a POST with no answer the service may need a moment to show the
        action: the resource is read TAKEN_READS times before the POST is sent
        again. A 409, or a 5xx the client did not resend, while the resource
        shows the action taken means it runs: it is attached to.
        """
        task = self.task
        url = task.resource_url(task.action_path)
        last: t.Optional[TransportError] = None
        for _attempt in range(MAX_UNANSWERED_POSTS):
            try:
                return task.client.post_action(url, deadline=task.deadline.at)
            except TransportError as exc:
                last = exc
            except ArmError as exc:
                if ((exc.status == 409 and task.attach_on_conflict) or exc.status >= 500) and \
                        self.shows_taken(reads=1):
                    return None
                raise
            if self.shows_taken(reads=TAKEN_READS):
                return None  # the service took the unanswered POST
        raise HpcCacheError(
            "The %s request got no answer %d times and the %s never showed it running: %s"
            % (task.action, MAX_UNANSWERED_POSTS, task.subject_kind, last),
            request_id=last.request_id if last else None,
        )

    def shows_taken(self, reads: int) -> bool:
        """After a request with no clear answer: a resource that reads busy (something runs, whose is not
        known) is waited for until it no longer does, and judged by what it reads then. Never a second
        request while it is busy."""
        task = self.task
        pause = min(float(task.poll_interval), TAKEN_READ_PAUSE)
        for read in range(reads):
            if read and not task.deadline.pause(pause):
                break
            state = task._read_state()
            if task.busy(state):
                state = self.wait_while_busy(state)
            if task.taken(state):
                task.state = state
                return True
        return False

    def wait_while_busy(self, state: str) -> str:
        """Read the resource until it no longer reads busy (within the task's deadline); what it reads then."""
        task = self.task

        def read() -> Reading:
            reading = task._read_until_settled()
            return Reading(not task.busy(reading.status), reading.retry_after, reading.status)

        poll = task.poller.wait_until(read, deadline=task.deadline, poll_interval=task.poll_interval,
                                      subject="the change the %s %s is busy with (it read %s)"
                                              % (task.subject_kind, task.name, state))
        task.result["polls"] += poll.polls
        return poll.status
