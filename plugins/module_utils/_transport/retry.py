# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When a request is tried again: the policy (attempts, backoff, timeouts), the wait before the next try,
and the decisions table (docs/design.md, "Retries") as one judge per kind of request.

  * reads (GET) are retried on 408, 429, 500, 502, 503, 504, on connection
    errors and timeouts, and on a success answer whose JSON cannot be read;
  * an action (POST) is resent only where the service says it did not take
    it: 429, or a retryable status carrying Retry-After, or a connection that
    was never made. Any other failure after the request may have been sent
    raises TransportError(sent=True) and the caller decides what happened;
  * an idempotent write (PATCH) is retried like a read.
A judge(response, failure) returns the Response to hand back, returns the error
to retry after (honouring Retry-After), or raises to stop at once.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ArmError, TransportError
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.response import (
    Response,
    error_from,
    retry_after_seconds,
)

RETRYABLE_STATUS = frozenset((408, 429, 500, 502, 503, 504))

Judge = t.Callable[[t.Optional[Response], t.Optional[TransportError]], t.Any]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # requests in all, the first included
    backoff: float = 1.0  # first backoff, doubled each time
    backoff_cap: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


if t.TYPE_CHECKING:  # types only: what the client asks of a pacer (_fleet/pacing.Pacer is one)

    class Pacing(t.Protocol):
        def ticket(self, url: str) -> t.Any:
            """A place in line for one action (all its tries)."""

        def before(self, ticket: t.Any, deadline: t.Optional[float]) -> None:
            """Return when this try may be sent; raise HpcCacheError (nothing sent) when not before deadline."""

        def after(self, ticket: t.Any, response: t.Optional[Response]) -> None:
            """The answer to this try (None: it got none)."""

        def done(self, ticket: t.Any) -> None:
            """The client is done with this action."""


def backoff_delay(policy: RetryPolicy, attempt: int, response: t.Optional[Response],
                  rng: t.Callable[[], float]) -> float:
    """The wait after try number attempt: the answer's Retry-After, else exponential backoff with jitter."""
    if response is not None:
        delay = retry_after_seconds(response.headers)
        if delay is not None:
            return delay
    base = min(policy.backoff * (2 ** (attempt - 1)), policy.backoff_cap)
    return float(base * (0.5 + rng() / 2.0))


def read_judge(secrets: t.Iterable[str], ok: t.Collection[int] = (200,),
               final: t.Optional[t.Callable[[Response], bool]] = None) -> Judge:
    """A read (GET): an answer whose status is in ok (or that final() marks as the answer sought) and whose
    body reads; retried on transient answers, on any failure to get an answer and on an unreadable body."""

    def judge(response: t.Optional[Response], failure: t.Optional[TransportError]) -> t.Any:
        if response is None:
            return failure
        if response.status in ok or (final is not None and final(response)):
            try:
                response.json()
            except ArmError as exc:  # a torn or garbled body: read again
                return exc
            return response
        if response.status in RETRYABLE_STATUS:
            return error_from(response, secrets)
        raise error_from(response, secrets)

    return judge


def action_judge(secrets: t.Iterable[str]) -> Judge:
    """An action (POST): a 2xx answer; resent only when the service did not take it."""

    def judge(response: t.Optional[Response], failure: t.Optional[TransportError]) -> t.Any:
        if response is None:
            if failure is not None and failure.sent:
                raise failure  # it may have been processed: the caller looks before sending again
            return failure
        if 200 <= response.status < 300:
            return response
        error = error_from(response, secrets)
        not_taken = response.status == 429 or (
            response.status in RETRYABLE_STATUS and retry_after_seconds(response.headers) is not None
        )
        if not_taken:
            return error
        raise error

    return judge


def write_judge(secrets: t.Iterable[str]) -> Judge:
    """An idempotent write (PATCH): a 2xx answer; retried like a read, on transient answers and on any failure."""

    def judge(response: t.Optional[Response], failure: t.Optional[TransportError]) -> t.Any:
        if response is None:
            return failure
        if 200 <= response.status < 300:
            return response
        if response.status in RETRYABLE_STATUS:
            return error_from(response, secrets)
        raise error_from(response, secrets)

    return judge
