# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for ARM long-running operations, and for any condition read over ARM.

The poller knows ARM's async-operation contract (Azure-AsyncOperation status
bodies, Location 202/200/204), not what a cache is. Every wait is bounded by
a Deadline (the one clock and sleep of a task, injected once), sleeps Retry-After when the
service sends it; otherwise the pauses follow the operation (follow_pause): the first read
comes after MIN_POLL_DELAY, and each pause is a third of the wait so far, up to poll_interval.
Never less than MIN_POLL_DELAY (so one wait
sends at most wait_timeout / MIN_POLL_DELAY + 1 status requests, whatever the service's
hints), and never past the deadline.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.response import Response
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import (
    ArmError,
    HpcCacheError,
    OperationFailed,
    OperationTimeout,
    TransportError,
)

TERMINAL = {"succeeded": "Succeeded", "failed": "Failed", "canceled": "Canceled", "cancelled": "Canceled"}
MAX_FAILED_READS = 10
# The shortest pause between two status requests of one wait, whatever Retry-After says.
MIN_POLL_DELAY = 1.0
# With no Retry-After, each pause is this share of the wait so far (follow_pause).
FOLLOW_SHARE = 1.0 / 3.0


def _location_failure(response: Response) -> bool:
    """A Location URL reports a failed operation with an error answer carrying a CloudError.

    408, 429, the gateway's 502, 503 and 504 and any answer with Retry-After
    are the status endpoint's own trouble (retried); so is a 5xx with no
    error body.
    """
    if response.status < 400 or response.status in (408, 429, 502, 503, 504):
        return False
    if response.retry_after() is not None:
        return False
    try:
        body = response.json()
    except ArmError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


@dataclass
class Reading:
    """One look at the thing waited for: finished or not, how long the service asks us to wait, and the
    longest the next pause may be (``most``: a window of the reader's own that closes sooner)."""

    done: bool
    retry_after: t.Optional[float] = None
    status: str = "InProgress"
    body: t.Any = None
    most: t.Optional[float] = None


def follow_pause(waited: float, poll_interval: float) -> float:
    """The pause before the next read when the service names none: a third of the wait so far (FOLLOW_SHARE), at
    least MIN_POLL_DELAY and at most poll_interval (reads after 1, 2, 3, 4, 5.3, 7.1, 9.5, 12.6 s ... then every
    poll_interval). An action is seen ended within a third of its duration after it ended (within 1 s for a
    suspend or a resume, which the service ends in 0.5-1.7 s; about 2 s for a 10.5-s cache flush); an operation
    of an hour costs about ten reads more than one every poll_interval, all in its first minute."""
    return min(max(waited * FOLLOW_SHARE, MIN_POLL_DELAY), max(float(poll_interval), MIN_POLL_DELAY))


@dataclass
class PollResult:
    status: str
    polls: int
    body: t.Any = None


class Poller:
    def __init__(self, client: ArmClient, *, max_failed_reads: int = MAX_FAILED_READS) -> None:
        self.client = client
        self.max_failed_reads = max_failed_reads

    def wait_until(
        self,
        read: t.Callable[[], Reading],
        *,
        deadline: Deadline,
        poll_interval: float,
        first_delay: t.Optional[float] = None,
        operation_url: t.Optional[str] = None,
        subject: str = "the operation",
        since: t.Optional[float] = None,
    ) -> PollResult:
        """Call read() until it reports done; raise OperationTimeout at the deadline.

        since: when (on the deadline's clock) the thing waited for was last read or answered, if before
        this call (an action begun, then followed later with others): the first pause counts from then.

        A read that fails (HTTP error, no answer, unreadable body) is a failed
        read, not a failed operation: it is tried again, up to
        max_failed_reads times in a row.
        """
        clock, sleep = deadline.clock, deadline.sleep
        reads = 0  # this wait's own status reads: a client shared by threads counts theirs too
        now = clock()
        started = now if since is None else min(since, now)
        ahead = now - started  # already waited before this call: taken off the first pause
        delay = follow_pause(ahead, poll_interval) if first_delay is None else first_delay
        failures = 0
        last_error: t.Optional[HpcCacheError] = None
        last_status: t.Optional[str] = None
        while True:
            remaining = deadline.at - clock()
            if remaining <= 0:
                text = "Timed out waiting for %s to finish after %d status reads" % (subject, reads)
                if last_status:
                    text += "; it last reported %s" % last_status
                if last_error is not None:
                    text += "; last status read failed: %s" % last_error
                if operation_url:
                    text += "; rerun the task (it attaches to a running operation) or look at operation_url"
                raise OperationTimeout(text, operation_url=operation_url, polls=reads, status="InProgress")
            sleep(max(min(max(delay, MIN_POLL_DELAY) - ahead, remaining), 0.0))
            ahead = 0.0
            reads += 1
            try:
                reading = read()
            except (ArmError, TransportError) as exc:
                failures += 1
                last_error = exc
                if failures >= self.max_failed_reads:
                    raise HpcCacheError(
                        "Reading the status of %s failed %d times in a row; last error: %s" % (subject, failures, exc),
                        operation_url=operation_url,
                        polls=reads,
                        status="InProgress",
                    )
                delay = poll_interval
                continue
            failures = 0
            last_error = None
            last_status = reading.status
            if reading.done:
                return PollResult(reading.status, reads, reading.body)
            if reading.retry_after is None:
                delay = follow_pause(clock() - started, poll_interval)
            else:
                delay = reading.retry_after
            if reading.most is not None:
                delay = min(delay, reading.most)

    # ARM's async-operation contract --------------------------------------
    def read_async_operation(self, url: str, *, deadline: Deadline) -> Reading:
        response = self.client.get(url, deadline=deadline.at, ok=(200, 201, 202))
        body = response.json()
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, str) or not status.strip():
            raise ArmError(response.status, "InvalidResponse", "the operation status has no 'status'",
                           request_id=response.request_id)
        terminal = TERMINAL.get(status.strip().lower())
        return Reading(terminal is not None, response.retry_after(), terminal or status.strip(), body)

    def read_location(self, url: str, *, deadline: Deadline) -> Reading:
        """ARM's Location rules: 202 running; 200, 201, 204 done; an error answer with a CloudError failed."""
        response = self.client.get(url, deadline=deadline.at, ok=(200, 201, 202, 204), final=_location_failure)
        if response.status == 202:
            return Reading(False, response.retry_after())
        if response.status >= 400:
            return Reading(True, status="Failed", body=response.json())
        return Reading(True, status="Succeeded", body=response.json())

    def wait_operation(
        self,
        *,
        async_url: t.Optional[str],
        location_url: t.Optional[str],
        deadline: Deadline,
        poll_interval: float,
        first_delay: t.Optional[float] = None,
        subject: str = "the operation",
        since: t.Optional[float] = None,
    ) -> PollResult:
        """Poll Azure-AsyncOperation when given, else Location; Failed/Canceled raise OperationFailed.
        since: when the operation was answered, if before this call (Poller.wait_until)."""
        if async_url:
            url = self.client.absolute(async_url)
            result = self.wait_until(lambda: self.read_async_operation(url, deadline=deadline), deadline=deadline,
                                     poll_interval=poll_interval, first_delay=first_delay, operation_url=async_url,
                                     subject=subject, since=since)
        elif location_url:
            url = self.client.absolute(location_url)
            result = self.wait_until(lambda: self.read_location(url, deadline=deadline), deadline=deadline,
                                     poll_interval=poll_interval, first_delay=first_delay,
                                     operation_url=location_url, subject=subject, since=since)
        else:
            raise HpcCacheError("The service gave no status URL to follow for %s" % subject)
        if result.status != "Succeeded":
            error = result.body.get("error") if isinstance(result.body, dict) else None
            error = error if isinstance(error, dict) else {}
            raise OperationFailed(
                result.status, error.get("code"), error.get("message"), subject=subject,
                operation_url=async_url or location_url, polls=result.polls,
            )
        return result
