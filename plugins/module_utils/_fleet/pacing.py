# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Actions paced per subscription: the service's throttling budget, shared by every worker of a process.

The provider throttles cache actions per subscription (FlushCache5Min: 60 flushes per 5 minutes;
StartOrStopCache1Min: 60 a minute) and announces what is left on every answer, as
``x-ms-ratelimit-remaining-resource: Microsoft.Compute/FlushCache5Min;59`` (several buckets may be
listed, comma-separated). A spent bucket answers 429 with Retry-After. A fleet whose workers each
retried on their own sent one 429 per waiting worker at every refill (a thundering herd).

A Pacer is shared by the workers of one process; the client asks it before each POST (before())
and tells it each answer (after()). Per subscription, in the order the POSTs were first asked for:

  * nothing known yet (no answer yet): one POST at a time, a probe, until an answer says how
    much is left;
  * answers announce R left (the least any of them announced: they come back in any order): at
    most R POSTs are out at once;
  * the budget is spent (R is 0): one probe once nothing else is out; the others wait on it, and
    its answer, whatever it announces, is the budget from then on;
  * a 429: every POST of the subscription waits until its Retry-After has passed (a bounded probe
    interval, doubling, when it gives none), then one probes;
  * answers that announce no budget: no pacing.

So a fleet larger than the budget gets about one 429 per refill. A POST answered 429 keeps its place
(the first in line after the refill): a 429 means the service did not take it, and the client sends
that same request again; nothing here sends a second request for anything. Every wait is bounded
by the caller's deadline: a POST that cannot be sent before it fails with a message saying so, and
was never sent (or only answered 429). Reads are not paced.
"""

from __future__ import annotations

import re
import threading
import time
import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.response import Response, retry_after_seconds
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError

REMAINING_HEADERS = ("x-ms-ratelimit-remaining-resource", "x-ms-ratelimit-remaining-subscription-writes")
# A 429 without a usable Retry-After: the next probe after this, doubled each time, at most PROBE_CAP.
PROBE_START = 5.0
PROBE_CAP = 60.0
# How long a waiting worker sleeps at most before it looks again (an answer wakes it sooner).
WAIT_STEP = 0.5
# A header longer than this is not read (it is not a budget).
MAX_HEADER = 2000
_COUNT = re.compile(r"[0-9]{1,9}")
_SUBSCRIPTION = re.compile(r"/subscriptions/([^/?#]+)", re.IGNORECASE)


def remaining_of(headers: t.Mapping[str, str]) -> t.Dict[str, int]:
    """{bucket: requests left} from the throttling headers of an answer; what cannot be read is left out.

    ``Microsoft.Compute/FlushCache5Min;59`` or several such, comma-separated; ARM's own budget
    (``x-ms-ratelimit-remaining-subscription-writes: 1197``) is the bucket ``subscription-writes``.
    """
    found: t.Dict[str, int] = {}
    for header in REMAINING_HEADERS:
        value = headers.get(header)
        if value is None:
            continue
        text = str(value)
        if len(text) > MAX_HEADER:
            continue
        if header != REMAINING_HEADERS[0]:
            count = text.strip()
            if _COUNT.fullmatch(count):
                found["subscription-writes"] = int(count)
            continue
        for part in text.split(","):
            name, sep, count = part.strip().rpartition(";")
            name, count = name.strip(), count.strip()
            if sep and name and _COUNT.fullmatch(count):
                found[name] = min(int(count), found.get(name, int(count)))
    return found


def subscription_of(url: str) -> str:
    """The subscription a URL is under, lower case; "" when it names none (all such share one budget)."""
    match = _SUBSCRIPTION.search(url.split("?", 1)[0])
    return match.group(1).lower() if match else ""


class Ticket:
    """One POST, from the first time it is asked for until the client is done with it (all its tries)."""

    def __init__(self, number: int, subscription: str, action: str) -> None:
        self.number = number
        self.subscription = subscription
        self.action = action
        self.seq = 0  # the send of the try out now (0: none out)
        self.throttled = 0  # tries answered 429


class _Budget:
    """What is known of one subscription's budget.

    Within a window the budget only goes down, and answers come back in any order: the least left
    that any answer announced, less every POST still out (counted by the service or not yet), is
    what may be sent without a 429. A probe's answer (nothing else was out) is the news of a refill.
    """

    def __init__(self) -> None:
        self.sends = 0  # POSTs sent, numbered from 1
        self.known = False  # False: nothing known (no answer yet, or a 429's hold has passed since)
        self.remaining: t.Optional[int] = None  # the least left announced; None: the answers announce no budget
        self.buckets: t.Dict[str, int] = {}
        self.hold_until = float("-inf")  # no POST before this (a 429's Retry-After)
        self.misses = 0  # 429s in a row without a usable Retry-After
        self.waiting: t.List[Ticket] = []  # in the order first asked for
        self.out: t.Dict[int, bool] = {}  # ticket number -> sent as a probe, for the POSTs not yet answered

    def may_send(self, ticket: Ticket) -> t.Optional[bool]:
        """None: not now; else whether it goes as a probe (the one POST out, to learn the budget)."""
        if not self.waiting or self.waiting[0] is not ticket:
            return None  # first asked, first sent
        if self.known and (self.remaining is None or self.remaining - len(self.out) > 0):
            return False
        return None if self.out else True  # nothing known, or spent: one probe, once nothing else is out


class Pacer:
    """The budgets of every subscription a process sends actions to; shared by its threads.

    clock and sleep are the client's (the deadlines given are on its clock).
    """

    def __init__(self, clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep,
                 step: float = WAIT_STEP) -> None:
        self.clock = clock
        self.sleep = sleep
        self.step = step
        self._cond = threading.Condition()
        self._budgets: t.Dict[str, _Budget] = {}
        self._numbers = 0
        self.sent = 0  # POSTs sent through the pacer
        self.throttled = 0  # of them answered 429
        self.held = 0.0  # seconds workers spent held back, summed

    def _budget(self, subscription: str) -> _Budget:
        if subscription not in self._budgets:
            self._budgets[subscription] = _Budget()
        return self._budgets[subscription]

    def ticket(self, url: str) -> Ticket:
        """A place in line for one POST to url (all its tries)."""
        path = url.split("?", 1)[0].rstrip("/")
        with self._cond:
            self._numbers += 1
            return Ticket(self._numbers, subscription_of(url), path.rsplit("/", 1)[-1] or "action")

    def before(self, ticket: Ticket, deadline: t.Optional[float]) -> None:
        """Return when this try may be sent; HpcCacheError (nothing sent) when that cannot be before deadline."""
        started = self.clock()
        idle = 0.0  # real seconds spent waiting on others: bounded by the deadline even on a clock that stands
        with self._cond:
            budget = self._budget(ticket.subscription)
            if ticket not in budget.waiting:
                budget.waiting.append(ticket)
                budget.waiting.sort(key=lambda item: item.number)
            try:
                while True:
                    now = self.clock()
                    hold = budget.hold_until - now
                    probe = budget.may_send(ticket) if hold <= 0 else None
                    if probe is not None:
                        budget.waiting.remove(ticket)
                        budget.sends += 1
                        ticket.seq = budget.sends
                        budget.out[ticket.number] = probe
                        self.sent += 1
                        self._cond.notify_all()  # the next in line may go too
                        return
                    left = None if deadline is None else min(deadline - now, deadline - started - idle)
                    if left is not None and (left <= 0 or hold >= left):
                        budget.waiting.remove(ticket)
                        self._cond.notify_all()
                        raise HpcCacheError(self._refusal(ticket, budget, hold, left))
                    if hold > 0:
                        # The injected sleep, outside the lock: it is the clock's (a test's clock advances).
                        self._cond.release()
                        try:
                            self.sleep(hold)
                        finally:
                            self._cond.acquire()
                    else:  # waiting for an answer of a POST that is out, or for those ahead: they wake us
                        waited = time.monotonic()
                        self._cond.wait(self.step if left is None else max(min(self.step, left), 0.001))
                        idle += time.monotonic() - waited
            finally:
                self.held += max(self.clock() - started, 0.0)

    def after(self, ticket: Ticket, response: t.Optional[Response]) -> None:
        """The answer to this try (None: it got none, nothing is learnt)."""
        with self._cond:
            budget = self._budget(ticket.subscription)
            probe = budget.out.pop(ticket.number, None)
            ticket.seq = 0
            if probe is not None and response is not None:
                self._learn(budget, ticket, probe, response)
                if response.status == 429 and ticket not in budget.waiting:
                    # Not taken, and sent again after the hold: it keeps its place, first in line.
                    budget.waiting.append(ticket)
                    budget.waiting.sort(key=lambda item: item.number)
            self._cond.notify_all()

    def done(self, ticket: Ticket) -> None:
        """The client is done with this POST (answered, failed, or given up)."""
        with self._cond:
            budget = self._budget(ticket.subscription)
            budget.out.pop(ticket.number, None)
            if ticket in budget.waiting:
                budget.waiting.remove(ticket)
            self._cond.notify_all()

    def _learn(self, budget: _Budget, ticket: Ticket, probe: bool, response: Response) -> None:
        if response.status == 429:
            ticket.throttled += 1
            self.throttled += 1
            delay = retry_after_seconds(response.headers)
            if delay is None:
                delay = min(PROBE_START * 2 ** min(budget.misses, 16), PROBE_CAP)
                budget.misses += 1
            else:
                budget.misses = 0
            budget.hold_until = max(budget.hold_until, self.clock() + delay)
            budget.known, budget.remaining = True, 0  # spent: after the hold, one probe
            budget.buckets = remaining_of(response.headers) or budget.buckets
            return
        budget.misses = 0
        buckets = remaining_of(response.headers)
        fresh = probe or not budget.known
        if buckets:
            left = min(buckets.values())
            if not fresh and budget.remaining is not None:
                left = min(left, budget.remaining)
            budget.known, budget.remaining, budget.buckets = True, left, buckets
        elif fresh and response.status < 500:  # the service announces no budget: none is kept
            budget.known, budget.remaining, budget.buckets = True, None, {}

    def _refusal(self, ticket: Ticket, budget: _Budget, hold: float, left: t.Optional[float]) -> str:
        where = "subscription %s" % ticket.subscription if ticket.subscription else "the subscription"
        spent = [name for name, count in sorted(budget.buckets.items()) if count == 0]
        what = "the %s request was not sent" % ticket.action
        if ticket.throttled:
            what = ("the %s request was answered 429 (too many requests: not taken) %d time%s and not sent again"
                    % (ticket.action, ticket.throttled, "" if ticket.throttled == 1 else "s"))
        if hold > 0:
            why = "the service's throttling budget of %s%s is spent for %.0f s more" % (
                where, " (%s)" % ", ".join(spent) if spent else "", hold)
        else:
            why = "it was still held back behind the other requests of %s within the service's throttling budget" % where
        return ("Held back and past the task's deadline: %s; %s, and the deadline %s. Raise wait_timeout, or "
                "send fewer actions to the subscription at once" % (
                    what, why, "has passed" if left is None or left <= 0 else "comes in %.0f s" % left))
