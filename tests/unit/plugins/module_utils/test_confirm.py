# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The confirm window and the busy rules of an action, under hostile sequences of answers: the wait
after an operation's Succeeded is bounded by confirm_timeout whatever the service's hints, nothing is
sent while a target is busy or flushing, and a failed step counts every read it made."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_flush import FlushTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, TargetRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.target_actions import TargetTask
from ansible_collections.azure_hpc.cache.tests.unit.fakes import OP, REF, Arm, FakeRaw, TargetArm, reset, target

TARGET = TargetRef(REF, "filer-01")


def op_202():
    return FakeRaw(202, None, {"Azure-AsyncOperation": OP})


def done():
    return FakeRaw(200, {"status": "Succeeded"})


def with_retry_after(raw, seconds="600"):
    raw.headers["Retry-After"] = seconds
    return raw


def task(make_client, arm, state, timeout=3600, poll=5, **kwargs):
    client = make_client(arm)[0]
    return TargetTask(CacheOperations(client, "v"), TARGET, state=state, flush=False, dns_refresh=False,
                      options=ActionOptions(wait=True, wait_timeout=timeout, poll_interval=poll, check_mode=False, **kwargs))


def test_no_second_suspend_while_the_target_reads_flushing_after_an_unanswered_one(make_client):
    arm = TargetArm(["Ready", "Flushing", "Flushing", "Flushing", "Suspended"],
                    answers={"suspend": [reset(), op_202()]}, ops=[done()])
    result = task(make_client, arm, "suspended").run()
    assert arm.posts == ["suspend"] and result["status"] == "Succeeded"  # it showed Suspended once settled


def test_reads_failing_after_succeeded_confirm_nothing(make_client):
    arm = TargetArm(["Ready"] + [reset()] * 4 + ["Ready"], answers={"suspend": [op_202()]}, ops=[done()])
    the_task = task(make_client, arm, "suspended")
    with pytest.raises(HpcCacheError, match="still reads Ready"):
        the_task.run()
    assert the_task.result["status"] == "Unconfirmed"


def test_retry_after_cannot_stretch_the_window_after_succeeded(make_client, clock):
    busy = [with_retry_after(FakeRaw(503, {"error": {"code": "ServerBusy", "message": "m"}})) for unused in range(40)]
    arm = TargetArm(["Ready", "Ready"] + busy, answers={"suspend": [op_202()]}, ops=[done()])
    started = clock.now
    with pytest.raises(HpcCacheError, match="reported Succeeded"):
        task(make_client, arm, "suspended").run()
    assert clock.now - started <= 125


@pytest.mark.parametrize("poll, hint", [(5, "600"), (600, None)])
def test_the_window_after_a_bare_answer_holds_whatever_the_hints(make_client, clock, poll, hint):
    reads = [target("Ready") if hint is None else with_retry_after(target("Ready"), hint) for unused in range(40)]
    arm = TargetArm([target("Ready")] + reads, answers={"suspend": [FakeRaw(204)]})
    started = clock.now
    with pytest.raises(HpcCacheError, match="still reads Ready after"):
        task(make_client, arm, "suspended", poll=poll).run()
    assert clock.now - started <= 125


def test_a_failed_step_counts_every_read(make_client):
    arm = TargetArm(["Ready", "Busy", "Busy", "Busy", "Busy", "Flushing"], answers={"flush": [reset()]})
    the_task = task(make_client, arm, "flushed", timeout=200)
    with pytest.raises(HpcCacheError):
        the_task.run()
    gets = sum(1 for call in the_task.ops.client.session.calls if call["method"] == "GET")
    assert the_task.result["polls"] >= gets - 2  # all but the first read and the one after the POST


def test_the_message_names_the_bound_that_ended_the_wait(make_client):
    arm = TargetArm(["Ready"], answers={"suspend": [op_202()]},
                    ops=[FakeRaw(200, {"status": "InProgress"})] * 5 + [done()])
    with pytest.raises(HpcCacheError, match=r"\(wait_timeout\)"):
        task(make_client, arm, "suspended", timeout=60).run()


def test_an_attached_flush_that_ends_unknown_says_it_was_found_running(make_client):
    arm = Arm(["Flushing", "Flushing", "Unknown"])
    client = make_client(arm)[0]
    the_task = FlushTask(CacheOperations(client, "v"), REF,
                         options=ActionOptions(wait=True, wait_timeout=3600, poll_interval=5, check_mode=False))
    with pytest.raises(HpcCacheError, match="it was found running, and the cache c1 still reads Unknown") as err:
        the_task.run()
    assert arm.post_count == 0 and "answered" not in err.value.message
