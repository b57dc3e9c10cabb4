# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest
import requests

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import (
    HpcCacheError,
    OperationFailed,
    OperationTimeout,
    OriginError,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import MIN_POLL_DELAY, Poller
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, FakeRaw

OP = ARM + "subscriptions/s/providers/Microsoft.StorageCache/locations/eastus/ascOperations/1?api-version=1"
LOC = OP + "&monitor=true"


def until(clock, at):
    """The Deadline at ``at`` on the fake clock."""
    return Deadline(at, clock=clock, sleep=clock.sleep)


def status(value, retry_after=None, error=None):
    body = {"id": "x", "name": "1", "status": value}
    if error:
        body["error"] = error
    return FakeRaw(200, body, {"Retry-After": retry_after} if retry_after else {})


def test_async_in_progress_then_succeeded(make_client, clock):
    client, session = make_client([status("InProgress", "3"), status("Running"), status("succeeded")])
    result = Poller(client).wait_operation(async_url=OP, location_url=LOC, poll_interval=10, deadline=until(clock, clock.now + 100), first_delay=2)
    assert result.status == "Succeeded" and result.polls == 3
    # first Retry-After of the POST, then the status's, then a third of the wait so far (5 s)
    assert clock.sleeps == [2, 3.0, pytest.approx(5.0 / 3)]
    assert all(c["url"] == OP for c in session.calls)  # Azure-AsyncOperation wins over Location


def test_location_only(make_client, clock):
    client, session = make_client([FakeRaw(202, None, {"Retry-After": "1"}), FakeRaw(202, None), FakeRaw(204, None)])
    result = Poller(client).wait_operation(async_url=None, location_url=LOC, poll_interval=5, deadline=until(clock, clock.now + 100))
    assert result.status == "Succeeded" and result.polls == 3
    assert clock.sleeps == [1.0, 1.0, 1.0]  # 1 s first; Retry-After 1; then a third of 2 s, at least 1 s
    assert session.calls[0]["url"] == LOC


def test_an_operation_followed_later_counts_its_first_pause_from_its_answer(make_client, clock):
    # begun with others, followed after them: the time since its answer is not waited again
    client, session = make_client([status("InProgress"), status("Succeeded")])
    answered = clock.now
    clock.sleep(0.75)  # the other targets' requests
    result = Poller(client).wait_operation(async_url=OP, location_url=None, poll_interval=10, since=answered,
                                           deadline=until(clock, clock.now + 100))
    assert result.polls == 2 and clock.sleeps == [0.75, 0.25, 1.0]  # 1 s after the answer; then 1 s waited so far
    client, session = make_client([status("Succeeded")])
    answered = clock.now
    clock.sleep(4.0)
    Poller(client).wait_operation(async_url=OP, location_url=None, poll_interval=10, since=answered,
                                  deadline=until(clock, clock.now + 100))
    assert clock.sleeps[-2:] == [4.0, 0.0]  # long since its answer: read at once


def test_location_200_is_done(make_client, clock):
    client, unused = make_client([FakeRaw(200, {"done": True})])
    assert Poller(client).wait_operation(async_url=None, location_url=LOC, poll_interval=1, deadline=until(clock, clock.now + 10)).status == "Succeeded"


def test_failed_with_error_code(make_client, clock):
    client, unused = make_client([status("Failed", error={"code": "FlushFailed", "message": "target unreachable"})])
    with pytest.raises(OperationFailed) as err:
        Poller(client).wait_operation(async_url=OP, location_url=None, poll_interval=1, deadline=until(clock, clock.now + 10))
    assert "failed: FlushFailed: target unreachable" in str(err.value)
    assert err.value.result["operation_url"] == OP
    assert err.value.result["error"]["code"] == "FlushFailed"


@pytest.mark.parametrize("value", ["Canceled", "CANCELLED"])
def test_canceled_without_error_still_says_canceled(make_client, clock, value):
    client, unused = make_client([status(value)])
    with pytest.raises(OperationFailed) as err:
        Poller(client).wait_operation(async_url=OP, location_url=None, poll_interval=1, deadline=until(clock, clock.now + 10), subject="the flush operation")
    assert str(err.value) == "The flush operation was canceled"
    assert err.value.result["status"] == "Canceled"


def test_timeout_carries_operation_url_and_never_sleeps_past_deadline(make_client, clock):
    client, session = make_client(lambda m, u: status("InProgress", "7"))
    start = clock.now
    with pytest.raises(OperationTimeout) as err:
        Poller(client).wait_operation(async_url=OP, location_url=LOC, poll_interval=7, deadline=until(clock, start + 20))
    assert err.value.result["operation_url"] == OP
    assert err.value.result["status"] == "InProgress"
    assert clock.now == start + 20
    assert clock.sleeps == [1.0, 7.0, 7.0, 5.0]  # 1 s first, then the status's Retry-After, cut at the deadline
    assert err.value.result["polls"] == len(session.calls) == 4


def test_unknown_status_is_running(make_client, clock):
    client, unused = make_client([status("Verifying"), status("Succeeded")])
    assert Poller(client).wait_operation(async_url=OP, location_url=None, poll_interval=1, deadline=until(clock, clock.now + 10)).polls == 2


@pytest.mark.parametrize("bad", [
    FakeRaw(404, {"error": {"code": "NotFound", "message": "gone"}}),
    FakeRaw(410, None),
    FakeRaw(500, {"error": {"code": "InternalError", "message": "x"}}),
    FakeRaw(200, raw=b""),
    FakeRaw(200, raw=b"{not json"),
    FakeRaw(200, {"no": "status"}),
    requests.exceptions.ConnectionError("reset"),
])
def test_transient_errors_on_the_status_url_are_failed_reads(make_client, clock, bad):
    answers = [bad, status("Succeeded")]
    client, unused = make_client(lambda m, u: answers.pop(0) if len(answers) > 1 else answers[0], attempts=1)
    assert Poller(client).wait_operation(async_url=OP, location_url=None, poll_interval=1, deadline=until(clock, clock.now + 10)).status == "Succeeded"


def test_failed_reads_are_bounded(make_client, clock):
    client, session = make_client(lambda m, u: FakeRaw(404, {"error": {"code": "NotFound", "message": "gone"}}),
                                  attempts=1)
    with pytest.raises(HpcCacheError) as err:
        Poller(client, max_failed_reads=4).wait_operation(async_url=OP, location_url=None, poll_interval=1, deadline=until(clock, clock.now + 1000))
    assert "failed 4 times in a row" in str(err.value) and "NotFound" in str(err.value)
    assert len(session.calls) == 4
    assert err.value.result["operation_url"] == OP


def test_foreign_status_url_is_refused_without_a_request(make_client, clock):
    client, session = make_client([])
    with pytest.raises(OriginError):
        Poller(client).wait_operation(async_url="https://evil.test/op", location_url=LOC, poll_interval=1, deadline=until(clock, clock.now + 10))
    assert session.calls == []


def test_202_without_status_urls(make_client, clock):
    client, unused = make_client([])
    with pytest.raises(HpcCacheError, match="no status URL"):
        Poller(client).wait_operation(async_url=None, location_url=None, poll_interval=1, deadline=until(clock, clock.now + 10))


def test_zero_retry_after_cannot_busy_loop(make_client, clock):
    # A simulated hour of "Retry-After: 0" answers: the floor bounds the requests, not the service's hint.
    client, session = make_client(lambda method, url: status("InProgress", "0"))
    with pytest.raises(OperationTimeout):
        Poller(client).wait_operation(async_url=OP, location_url=None, poll_interval=10, deadline=until(clock, clock.now + 3600), first_delay=0)
    assert len(session.calls) <= 3600 / MIN_POLL_DELAY + 1
    assert min(clock.sleeps[:-1]) >= MIN_POLL_DELAY  # between two reads; the last pause ends at the deadline


@pytest.mark.parametrize("code", [400, 404, 409, 500])
def test_location_error_answer_is_the_operation_failing(make_client, clock, code):
    error = {"error": {"code": "FlushFailed", "message": "target down"}}
    client, session = make_client([FakeRaw(202, None), FakeRaw(code, error)])
    with pytest.raises(OperationFailed) as err:
        Poller(client).wait_operation(async_url=None, location_url=LOC, poll_interval=5, deadline=until(clock, clock.now + 100))
    assert "FlushFailed: target down" in str(err.value) and err.value.result["status"] == "Failed"
    assert len(session.calls) == 2  # a final answer: not retried, not read again


@pytest.mark.parametrize("answer", [FakeRaw(503, None), FakeRaw(429, {"error": {"code": "TooMany", "message": "x"}}),
                                    FakeRaw(503, {"error": {"code": "ServiceUnavailable", "message": "x"}}),
                                    FakeRaw(500, {"error": {"code": "Busy", "message": "x"}}, {"Retry-After": "1"})])
def test_location_transient_answers_are_retried(make_client, clock, answer):
    client, session = make_client([answer, FakeRaw(204, None)])
    result = Poller(client).wait_operation(async_url=None, location_url=LOC, poll_interval=5, deadline=until(clock, clock.now + 100))
    assert result.status == "Succeeded" and len(session.calls) == 2
