# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults injected by the emulator, end to end through ansible-playbook.

Each case asserts the outcome (retried, attached, failed clearly) and, from the
emulator's log, that no second flush was ever sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import PLAYBOOK_TIMEOUT, requests_of, scenario  # pylint: disable=import-error

RATE_HEADERS = {"x-ms-ratelimit-remaining-subscription-reads": "1",
                "x-ms-ratelimit-remaining-subscription-writes": "0"}


def posts(emu):
    return requests_of(emu, "flush", "POST")


def assert_clean_failure(result, *fragments):
    assert result["failed"] is True
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"]


@pytest.mark.stack_independent
@pytest.mark.parametrize("kind", ["get", "operation", "location"])
def test_429_bursts_with_retry_after_on_reads(runner, emulator, kind):
    mode = "location" if kind == "location" else "async"
    emulator.load(scenario(flush={"mode": mode, "duration": 1}, faults=[
        {"on": kind, "kind": "status", "status": 429, "count": 3, "retry_after": 1, "headers": RATE_HEADERS}]))
    r = runner.flush().result
    assert r["status"] == "Succeeded"
    assert [e["status"] for e in requests_of(emulator, kind)][:3] == [429, 429, 429]
    assert emulator.flushes("c1") == 1 and len(posts(emulator)) == 1


@pytest.mark.stack_independent
def test_ratelimit_headers_near_zero_are_harmless(runner, emulator):
    emulator.load(scenario(flush={"duration": 1}, faults=[{"on": "any", "kind": "headers", "count": -1,
                                                           "headers": RATE_HEADERS}]))
    assert runner.flush().result["status"] == "Succeeded"


# Every status the client retries (408, 429, 500, 502, 503, 504) is covered for every request by the unit tests
# (tests/unit/plugins/module_utils/test_client.py); here each kind of request meets the 5xx statuses spread
# over it, through a real module run against the emulator.
@pytest.mark.stack_independent
@pytest.mark.parametrize("kind, status", [("get", 500), ("get", 503), ("operation", 502), ("operation", 504),
                                          ("location", 503), ("location", 500)])
def test_5xx_on_reads_are_retried(runner, emulator, kind, status):
    mode = "location" if kind == "location" else "async"
    # On a Location URL an error answer with a CloudError is the operation's failure (ARM's rules);
    # a 5xx there without one is the endpoint's own trouble.
    fault = {"on": kind, "kind": "empty" if kind == "location" else "status", "status": status, "count": 2}
    emulator.load(scenario(flush={"mode": mode, "duration": 1}, faults=[fault]))
    r = runner.flush().result
    assert r["status"] == "Succeeded"
    assert emulator.flushes("c1") == 1


@pytest.mark.stack_independent
@pytest.mark.parametrize("status", [500, 503])
def test_5xx_with_retry_after_on_post_is_resent_once_taken(runner, emulator, status):
    emulator.load(scenario(flush={"duration": 1}, faults=[
        {"on": "flush", "kind": "status", "status": status, "count": 2, "retry_after": 1}]))
    r = runner.flush().result
    assert r["status"] == "Succeeded"
    assert [e["status"] for e in posts(emulator)] == [status, status, 204]
    assert emulator.flushes("c1") == 1


@pytest.mark.stack_independent
@pytest.mark.parametrize("status", [502, 504])
def test_5xx_without_retry_after_on_post_not_taken_fails_clearly(runner, emulator, status):
    emulator.load(scenario(faults=[{"on": "flush", "kind": "status", "status": status}]))
    r = runner.flush().result
    assert_clean_failure(r, "(HTTP %d)" % status)
    assert len(posts(emulator)) == 1 and emulator.flushes("c1") == 0


@pytest.mark.stack_independent
def test_reset_before_post_was_taken_is_resent(runner, emulator):
    emulator.load(scenario(flush={"duration": 1}, faults=[{"on": "flush", "kind": "reset"}]))
    r = runner.flush().result
    assert r["status"] == "Succeeded" and r["status_code"] == 204
    assert [e["status"] for e in posts(emulator)] == ["reset", 204]
    assert emulator.flushes("c1") == 1
    kinds = [e["kind"] for e in emulator.log() if e["kind"] in ("get", "flush")]
    # the cache was read TAKEN_READS (3) times, never flushing, before the second POST
    assert kinds[:6] == ["get", "flush", "get", "get", "get", "flush"]


@pytest.mark.stack_independent
def test_slow_answer_after_post_was_taken_attaches(runner, emulator):
    emulator.load(scenario(flush={"duration": 2}, faults=[
        {"on": "flush", "kind": "reset", "processed": True, "delay": 1}]))
    r = runner.flush().result
    assert r["status"] == "Succeeded" and "got no clear answer, but the cache is flushing" in r["msg"]
    assert emulator.flushes("c1") == 1 and len(posts(emulator)) == 1


@pytest.mark.stack_independent
def test_server_that_never_answers_is_bounded(runner, emulator):
    emulator.load(scenario(faults=[{"on": "get", "kind": "delay", "delay": 120, "count": -1}]))
    start = time.monotonic()
    r = runner.flush({"wait_timeout": 4}).result
    # the server would hold each answer 120 s: the task's own clock says the 4-s bound held; the wall clock,
    # which includes process start-up on a busy machine, only that the 120 s were not waited out
    assert r["elapsed"] < 15 and time.monotonic() - start < 100
    assert_clean_failure(r, "No complete answer from ARM")
    assert posts(emulator) == []


@pytest.mark.stack_independent
def test_slow_polls_past_the_timeout_fail_with_operation_url(runner, emulator):
    emulator.load(scenario(flush={"duration": 60}, faults=[
        {"on": "operation", "kind": "delay", "delay": 30, "count": -1}]))
    r = runner.flush({"wait_timeout": 5}).result
    assert_clean_failure(r, "Timed out")
    assert r["operation_url"] and r["elapsed"] < 15
    assert len(posts(emulator)) == 1


@pytest.mark.parametrize("fault", [
    {"kind": "status", "status": 404},
    {"kind": "status", "status": 410},
    {"kind": "empty"},
    {"kind": "malformed"},
    {"kind": "status", "status": 200, "body": {"status": "Verifying"}},
    {"kind": "status", "status": 200, "body": ["not", "an", "object"]},
])
@pytest.mark.stack_independent
def test_odd_status_answers_mid_flush(runner, emulator, fault):
    emulator.load(scenario(flush={"duration": 2}, faults=[dict(fault, on="operation", count=2)]))
    r = runner.flush().result
    assert r["status"] == "Succeeded"
    assert emulator.flushes("c1") == 1


@pytest.mark.stack_independent
def test_unknown_status_forever_is_bounded_by_timeout(runner, emulator):
    emulator.load(scenario(flush={"duration": 2}, faults=[
        {"on": "operation", "kind": "status", "status": 200, "body": {"status": "Verifying"}, "count": -1}]))
    r = runner.flush({"wait_timeout": 4}).result
    assert_clean_failure(r, "Timed out")


@pytest.mark.stack_independent
def test_status_url_gone_for_good_fails_clearly(runner, emulator):
    emulator.load(scenario(flush={"duration": 30}, faults=[
        {"on": "operation", "kind": "status", "status": 404, "count": -1, "code": "OperationNotFound"}]))
    r = runner.flush({"wait_timeout": 60}).result
    assert_clean_failure(r, "failed 10 times in a row", "OperationNotFound")
    assert r["operation_url"]


@pytest.mark.stack_independent
def test_token_endpoint_failing_once_is_retried(runner, emulator):
    emulator.load(scenario(flush={"mode": "sync204"}, faults=[{"on": "token", "kind": "status", "status": 500}]))
    r = runner.flush().result
    assert r["status"] == "Succeeded"
    assert [e["status"] for e in requests_of(emulator, "token")][:2] == [500, 200]


@pytest.mark.stack_independent
def test_token_endpoint_failing_for_good_fails_clearly(runner, emulator):
    emulator.load(scenario(faults=[{"on": "token", "kind": "status", "status": 500, "count": -1}]))
    start = time.monotonic()
    r = runner.flush().result
    assert_clean_failure(r, "Could not get a token with managed identity")
    assert time.monotonic() - start < 120
    assert requests_of(emulator, "get") == []


@pytest.mark.stack_independent
def test_401_once_refreshes_the_token(runner, emulator):
    emulator.load(scenario(flush={"mode": "sync204"}, faults=[
        {"on": "get", "kind": "status", "status": 401, "code": "ExpiredAuthenticationToken"}]))
    r = runner.flush().result
    assert r["status"] == "Succeeded"
    assert [e["status"] for e in requests_of(emulator, "get")][:2] == [401, 200]


@pytest.mark.stack_independent
def test_401_always_fails_clearly_after_one_refresh(runner, emulator):
    emulator.load(scenario(faults=[
        {"on": "get", "kind": "status", "status": 401, "count": -1, "code": "InvalidAuthenticationToken"}]))
    r = runner.flush().result
    assert_clean_failure(r, "InvalidAuthenticationToken (HTTP 401)")
    assert len(requests_of(emulator, "get")) == 2 and posts(emulator) == []


ONE_CACHE = {  # the same flush of c1 through each flush module, and how to read its result
    "azure_hpc.cache.azure_hpc_cache_flush": ({"name": "c1", "resource_group": "rg"}, lambda r: r),
    "azure_hpc.cache.azure_hpc_cache_flush_many": ({"caches": [{"name": "c1", "resource_group": "rg"}]},
                                                   lambda r: r["caches"][0]),
}


@pytest.mark.parametrize("module", sorted(ONE_CACHE))
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_wait_exits_promptly_and_rerun_attaches(runner, emulator, tmp_path, sig, module):
    # the flush ends when the test says, after the rerun has seen it running (not on a clock)
    emulator.load(scenario(flush={"duration": 600, "retry_after": 1}))
    args, result_of = ONE_CACHE[module]
    play = tmp_path / "long.yml"
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [{module: args}]}]))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % runner.python)
    proc = subprocess.Popen([runner.tool("ansible-playbook"), "-i", str(inventory), str(play)], env=runner.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not requests_of(emulator, "operation") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert requests_of(emulator, "operation"), "the flush never started polling"
        stopped = time.monotonic()
        os.killpg(proc.pid, sig)
        proc.wait(timeout=20)
        assert time.monotonic() - stopped < 10
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    reads_before = len(requests_of(emulator, "get"))
    rerun = {}
    thread = threading.Thread(target=lambda: rerun.update(run=runner.play([{module: dict(args, poll_interval=1)}])))
    thread.start()
    deadline = time.monotonic() + PLAYBOOK_TIMEOUT
    while len(requests_of(emulator, "get")) == reads_before and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert emulator.finish("c1") == 1  # the rerun has read the cache flushing; now the flush ends
    thread.join(PLAYBOOK_TIMEOUT)
    r = result_of(rerun["run"].result)
    assert r["status"] == "Succeeded" and r["changed"] is False and r["health_state"] == "Flushing"
    assert emulator.flushes("c1") == 1 and len(posts(emulator)) == 1


@pytest.mark.stack_independent
def test_many_caches_under_faults_each_flushed_once(runner, emulator):
    """One process, six caches, each with its own fault: every cache is flushed exactly once, or fails alone."""
    names = ["plain", "throttled", "taken-unanswered", "lost", "flaky-status", "slow-start"]
    emulator.load({
        "caches": [{"name": n, "resource_group": "rg", "flush": {"duration": 2, "retry_after": 1}} for n in names],
        "faults": [
            {"on": "flush", "cache": "throttled", "status": 429, "retry_after": 1, "count": 2},
            {"on": "flush", "cache": "taken-unanswered", "kind": "reset", "processed": True},
            {"on": "flush", "cache": "lost", "kind": "reset"},
            {"on": "operation", "cache": "flaky-status", "status": 500, "count": 2},
            {"on": "get", "cache": "slow-start", "status": 503, "retry_after": 1, "count": 1},
        ],
    })
    caches = [{"name": n, "resource_group": "rg"} for n in names] + [{"name": "missing", "resource_group": "rg"}]
    r = runner.play([{"azure_hpc.cache.azure_hpc_cache_flush_many": {
        "caches": caches, "poll_interval": 1, "max_concurrent": 4}}]).result
    assert_clean_failure(r, "1 of 7 caches failed: missing: ResourceNotFound (HTTP 404)")
    assert r["failed_caches"] == ["missing"]
    by_name = {c["name"]: c for c in r["caches"]}
    assert {n: by_name[n]["status"] for n in names} == dict.fromkeys(names, "Succeeded")
    assert all(by_name[n]["changed"] for n in names)
    assert {c["name"]: c["flushes"] for c in emulator.state()["caches"]} == dict.fromkeys(names, 1)
    assert len(requests_of(emulator, kind="token")) == 1  # one process, one token


def test_an_answer_trickling_in_is_cut_off_at_the_task_timeout(runner, emulator):
    # a byte a second: each socket read is quick, the answer never completes within the 5-s timeout
    emulator.load(dict(scenario(), faults=[{"on": "list", "kind": "trickle", "delay": 1, "count": -1,
                                            "body": {"value": [], "padding": "x" * 120}}]))
    start = time.monotonic()
    r = runner.play([{"azure_hpc.cache.azure_hpc_cache_info": {"resource_group": "rg", "timeout": 5}}]).result
    assert time.monotonic() - start < 60  # a 140-byte answer at a byte a second would take over two minutes
    assert_clean_failure(r, "No complete answer from ARM", "did not arrive in full within 5 s")
