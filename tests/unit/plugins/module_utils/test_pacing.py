# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pacer: the throttling headers read defensively, one probe while nothing is known or the budget is
spent, the budget announced and never exceeded (answers in any order), a 429's hold shared by every POST
of its subscription, first asked first sent, every wait bounded by the deadline with a clear message, reads
never held; and a fleet larger than the budget, through the client, gets about one 429 per refill."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.response import Response
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.retry import RetryPolicy
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ArmError, HpcCacheError
from ansible_collections.azure_hpc.cache.plugins.module_utils._fleet.pacing import (
    PROBE_CAP,
    PROBE_START,
    Pacer,
    remaining_of,
    subscription_of,
)
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, CLOUD, SUB, FakeClock, FakeRaw, FakeSession, FakeTokens

HEADER = "x-ms-ratelimit-remaining-resource"
OTHER = "11111111-1111-1111-1111-111111111111"
THROTTLED = {"error": {"code": "OperationNotAllowed", "message": "too many requests"}}


def url(name, sub=SUB):
    return "%ssubscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/%s/flush?api-version=v" % (
        ARM, sub, name)


def answer(status=204, left=None, retry_after=None):
    headers = {}
    if left is not None:
        headers[HEADER] = "Microsoft.Compute/FlushCache5Min;%d" % left
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(status, FakeRaw(status, None, headers).headers, b"", "u", "r")


# The headers --------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("Microsoft.Compute/FlushCache5Min;59", {"Microsoft.Compute/FlushCache5Min": 59}),
    (" Microsoft.Compute/HighCostGet3Min;107,Microsoft.Compute/HighCostGet30Min;827 ",
     {"Microsoft.Compute/HighCostGet3Min": 107, "Microsoft.Compute/HighCostGet30Min": 827}),
    ("Microsoft.Compute/FlushCache5Min;0", {"Microsoft.Compute/FlushCache5Min": 0}),
    ("A;3,garbage,B;x,;4,C;-1,D;1e3,E;\u00b2,F;5", {"A": 3, "F": 5}),
    ("", {}), ("59", {}), ("Microsoft.Compute/FlushCache5Min", {}), ("A;1234567890", {}),
    ("A;" + "9" * 3000, {}),
])
def test_the_remaining_count_is_read_defensively(value, expected):
    assert remaining_of({HEADER: value}) == expected


def test_arms_own_write_budget_is_a_bucket_too():
    assert remaining_of({"x-ms-ratelimit-remaining-subscription-writes": "1197", HEADER: "A;4"}) == {
        "subscription-writes": 1197, "A": 4}
    assert remaining_of({"x-ms-ratelimit-remaining-subscription-writes": "lots"}) == {}
    assert remaining_of({}) == {}


def test_the_subscription_is_that_of_the_path():
    assert subscription_of(url("c1", SUB.upper())) == SUB
    assert subscription_of(ARM + "x?next=/subscriptions/nope/") == ""


# The rules, one step at a time (a fake clock; the deadline is that of each call) -------------------------
@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def pacer(clock):
    return Pacer(clock=clock, sleep=clock.sleep, step=0.01)


def send(pacer, ticket, deadline=None):
    pacer.before(ticket, deadline)


def blocked(pacer, ticket, clock):
    """True when the ticket may not go now (the deadline is now: it fails at once, and leaves the line)."""
    try:
        pacer.before(ticket, clock())
    except HpcCacheError:
        return True
    return False


def test_one_probe_first_then_as_many_as_the_answer_announces(pacer, clock):
    tickets = [pacer.ticket(url("c%d" % i)) for i in range(5)]
    send(pacer, tickets[0])
    assert blocked(pacer, tickets[1], clock)  # nothing is known while the probe is out
    pacer.after(tickets[0], answer(left=2))
    pacer.done(tickets[0])
    send(pacer, tickets[1])
    send(pacer, tickets[2])
    assert blocked(pacer, tickets[3], clock)  # two left, two out
    pacer.after(tickets[1], answer(left=1))
    pacer.done(tickets[1])
    assert blocked(pacer, tickets[3], clock)  # one left, one out
    pacer.after(tickets[2], answer(left=0))
    pacer.done(tickets[2])
    send(pacer, tickets[3])  # spent, nothing out: one probe
    assert blocked(pacer, tickets[4], clock)  # the others wait on it
    assert clock.sleeps == [] and pacer.sent == 4


def test_answers_in_any_order_the_least_left_counts(pacer, clock):
    first, a, b, c, d = (pacer.ticket(url("c%d" % i)) for i in range(5))
    send(pacer, first)
    pacer.after(first, answer(left=3))
    for ticket in (a, b, c):
        send(pacer, ticket)
    pacer.after(b, answer(left=1))  # the service counted b (and one of a, c) before a's answer came
    pacer.after(a, answer(left=2))  # older news: 1 still stands
    assert blocked(pacer, d, clock)  # 1 left, c out
    pacer.after(c, answer(left=0))
    send(pacer, d)  # the probe


def test_a_probes_answer_is_the_news_of_a_refill(pacer, clock):
    tickets = [pacer.ticket(url("c%d" % i)) for i in range(4)]
    send(pacer, tickets[0])
    pacer.after(tickets[0], answer(left=0))
    send(pacer, tickets[1])  # the probe: the window refilled meanwhile
    pacer.after(tickets[1], answer(left=4))
    send(pacer, tickets[2])
    send(pacer, tickets[3])


def test_a_429_holds_every_post_of_the_subscription_until_its_retry_after(pacer, clock):
    probe, waiting, elsewhere = pacer.ticket(url("a")), pacer.ticket(url("b")), pacer.ticket(url("c", OTHER))
    send(pacer, probe)
    pacer.after(probe, answer(429, left=0, retry_after=7))
    assert pacer.throttled == 1 and probe.throttled == 1
    send(pacer, elsewhere)  # another subscription, another budget
    with pytest.raises(HpcCacheError) as failed:
        send(pacer, waiting, deadline=clock() + 5)  # the hold ends after the deadline: at once, no sleep
    assert "spent for 7 s more" in str(failed.value) and "the flush request was not sent" in str(failed.value)
    assert "subscription %s" % SUB in str(failed.value) and clock.sleeps == []
    send(pacer, probe, deadline=clock() + 100)  # the one answered 429 is first in line after the hold
    assert clock.sleeps == [7.0]
    assert blocked(pacer, waiting, clock)  # it probes; the others wait on it


def test_the_post_answered_429_keeps_its_place(pacer, clock):
    first, second = pacer.ticket(url("a")), pacer.ticket(url("b"))
    send(pacer, first)
    pacer.after(first, answer(429, retry_after=2))
    clock.now += 2  # the hold has passed
    with pytest.raises(HpcCacheError) as failed:  # not its turn, and the deadline is now
        send(pacer, second, deadline=clock())
    assert "held back behind the other requests" in str(failed.value)
    send(pacer, first, deadline=clock() + 3)


def test_a_wait_on_others_is_bounded_by_the_deadline_even_on_a_clock_that_stands(pacer, clock):
    first, second = pacer.ticket(url("a")), pacer.ticket(url("b"))
    send(pacer, first)  # the probe, never answered
    started = time.monotonic()
    with pytest.raises(HpcCacheError):
        send(pacer, second, deadline=clock() + 0.2)
    assert time.monotonic() - started < 5


def test_a_429_without_retry_after_holds_for_a_bounded_doubling_probe_interval(pacer, clock):
    ticket = pacer.ticket(url("a"))
    for _attempt in range(3):
        send(pacer, ticket, deadline=clock() + 1000)
        pacer.after(ticket, answer(429))
    send(pacer, ticket, deadline=clock() + 1000)
    assert clock.sleeps == [PROBE_START, PROBE_START * 2, PROBE_START * 4]
    for _attempt in range(10):
        pacer.after(ticket, answer(429))
        send(pacer, ticket, deadline=clock() + 1000)
    assert max(clock.sleeps) == PROBE_CAP


def test_a_deadline_passing_while_answered_429_says_so(pacer, clock):
    ticket = pacer.ticket(url("a"))
    send(pacer, ticket)
    pacer.after(ticket, answer(429, left=0, retry_after=40))
    with pytest.raises(HpcCacheError) as failed:
        send(pacer, ticket, deadline=clock() + 10)
    text = str(failed.value)
    assert text.startswith("Held back and past the task's deadline: the flush request was answered 429")
    assert "1 time and not sent again" in text and "Microsoft.Compute/FlushCache5Min" in text
    assert "for 40 s more" in text and "comes in 10 s" in text and "Raise wait_timeout" in text


def test_answers_that_announce_no_budget_are_not_paced(pacer, clock):
    tickets = [pacer.ticket(url("c%d" % i)) for i in range(4)]
    send(pacer, tickets[0])
    pacer.after(tickets[0], answer(202))
    for ticket in tickets[1:]:
        send(pacer, ticket)


def test_a_server_error_without_the_header_teaches_nothing(pacer, clock):
    tickets = [pacer.ticket(url("c%d" % i)) for i in range(3)]
    send(pacer, tickets[0])
    pacer.after(tickets[0], answer(503))
    send(pacer, tickets[1])  # still one at a time
    assert blocked(pacer, tickets[2], clock)


def test_no_answer_teaches_nothing_and_done_leaves_the_line(pacer, clock):
    first, second, third = (pacer.ticket(url("c%d" % i)) for i in range(3))
    send(pacer, first)
    pacer.after(first, None)
    pacer.done(first)
    send(pacer, second)
    pacer.done(second)  # given up while out (an error the client raised)
    send(pacer, third)


# Through the client: reads are never held; the client's own wait after a 429 is the pacer's ---------------
def paced_client(script, clock, attempts=6):
    session = FakeSession(script)
    client = ArmClient(CLOUD, FakeTokens(), session=session, policy=RetryPolicy(attempts=attempts),
                       sleep=clock.sleep, clock=clock, rng=lambda: 1.0)
    client.pacer = Pacer(clock=clock, sleep=clock.sleep, step=0.01)
    return client, session


def test_reads_are_not_held_back(clock):
    client, session = paced_client(lambda m, u: FakeRaw(429, THROTTLED, {"Retry-After": "30"})
                                   if m == "POST" else FakeRaw(200, {}), clock, attempts=1)
    with pytest.raises(ArmError):
        client.post_action(url("a"), deadline=clock() + 100)
    client.get(url("a").replace("/flush", ""), deadline=clock() + 100)
    assert [c["method"] for c in session.calls] == ["POST", "GET"] and clock.sleeps == []


def test_the_client_waits_a_429_out_once_through_the_pacer(clock):
    client, session = paced_client([FakeRaw(429, THROTTLED, {"Retry-After": "3", HEADER: "A;0"}),
                                    FakeRaw(202, None, {HEADER: "A;4"})], clock)
    assert client.post_action(url("a"), deadline=clock() + 100).status == 202
    assert clock.sleeps == [3.0] and len(session.calls) == 2


def test_a_hold_past_the_deadline_fails_the_post_with_a_clear_message(clock):
    client, session = paced_client([FakeRaw(429, THROTTLED, {"Retry-After": "300", HEADER: "A;0"})], clock)
    with pytest.raises(HpcCacheError) as failed:
        client.post_action(url("a"), deadline=clock() + 60)
    assert not isinstance(failed.value, ArmError)  # not an answer: the caller must not look for a flush
    assert "answered 429 (too many requests: not taken) 1 time and not sent again" in str(failed.value)
    assert len(session.calls) == 1 and clock.sleeps == []


# A fleet larger than the budget, in real time (a fixed window as the service keeps it) ------------------
class Throttled:
    """limit POSTs per window seconds, per subscription: 204 with the header, else 429 with Retry-After."""

    def __init__(self, limit, window):
        self.limit, self.window = limit, window
        self.lock = threading.Lock()
        self.opened = None
        self.count = 0
        self.answers = []

    def __call__(self, method, target):
        with self.lock:
            now = time.monotonic()
            if self.opened is None or now - self.opened >= self.window:
                self.opened, self.count = now, 0
            name = target.split("/caches/")[1].split("/")[0]
            if self.count >= self.limit:
                self.answers.append((name, 429))
                return FakeRaw(429, THROTTLED, {"Retry-After": "%.3f" % (self.opened + self.window - now + 0.001),
                                                HEADER: "Microsoft.Compute/FlushCache5Min;0"})
            self.count += 1
            self.answers.append((name, 204))
            return FakeRaw(204, None, {HEADER: "Microsoft.Compute/FlushCache5Min;%d" % (self.limit - self.count)})


def run_fleet(paced, caches=16, limit=5, window=1.0):
    service = Throttled(limit, window)
    client = ArmClient(CLOUD, FakeTokens(), session=FakeSession(service), policy=RetryPolicy(attempts=8))
    if paced:
        client.pacer = Pacer(clock=client.clock, sleep=client.sleep)
    failures = []

    def flush(name):
        try:
            client.post_action(url(name), deadline=time.monotonic() + 60)
        except HpcCacheError as exc:  # pragma: no cover - reported by the assertion below
            failures.append((name, str(exc)))

    started = time.monotonic()
    threads = [threading.Thread(target=flush, args=("c%02d" % i,), daemon=True) for i in range(caches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return service, failures, time.monotonic() - started


def test_a_fleet_larger_than_the_budget_gets_about_one_429_per_refill():
    service, failures, elapsed = run_fleet(paced=True)
    assert failures == []
    taken = [name for name, status in service.answers if status == 204]
    assert sorted(taken) == ["c%02d" % i for i in range(16)]  # each once
    windows = 4  # 16 POSTs, 5 a window
    assert sum(1 for _url, status in service.answers if status == 429) <= windows
    assert elapsed < (windows - 1) * 1.0 + 1.0 + 5.0  # within a refill of the minimum (and a slow machine's margin)


def test_without_a_pacer_every_waiting_post_retries_at_once():
    service, failures, unused = run_fleet(paced=False)
    assert failures == []
    assert sum(1 for _url, status in service.answers if status == 429) > 5  # the herd pacing is for
