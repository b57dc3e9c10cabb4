# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage-target actions: the sequence each desired state needs, and the cache flush's rules on each action."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError, OperationFailed
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, TargetRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.target_actions import (
    TargetAction,
    TargetTask,
    Together,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.target import summarize_target, target_state
from ansible_collections.azure_hpc.cache.tests.unit.fakes import OP, REF, FakeRaw, RecordArm, TargetArm, reset

TARGET = TargetRef(REF, "filer-01")


def op_202():
    return FakeRaw(202, None, {"Azure-AsyncOperation": OP, "Location": OP + "&monitor=true"})


def done():
    return FakeRaw(200, {"status": "Succeeded"})


def run(make_client, arm, state, flush=True, dns_refresh=False, wait=True, check_mode=False, timeout=100, **confirm):
    client = make_client(arm)[0]
    task = TargetTask(CacheOperations(client, "v"), TARGET, state=state, flush=flush, dns_refresh=dns_refresh,
                      options=ActionOptions(wait=wait, wait_timeout=timeout, poll_interval=5, check_mode=check_mode, **confirm))
    return task, task.run


@pytest.mark.parametrize("desired, state, flush, dns, plan", [
    ("flushed", "Ready", True, False, ["flush"]),
    ("flushed", "Suspended", True, False, ["flush"]),
    ("suspended", "Ready", True, False, ["flush", "suspend"]),
    ("suspended", "Ready", False, False, ["suspend"]),
    ("suspended", "Flushing", False, False, ["flush", "suspend"]),  # a running flush is waited for first
    ("suspended", "Suspended", True, False, []),
    ("suspended", "suspended ", True, False, []),
    ("active", "Suspended", True, False, ["resume"]),
    ("active", "Suspended", True, True, ["resume", "dns_refresh"]),
    ("active", "Ready", True, True, []),
    ("active", "Busy", True, True, []),
])
def test_plan(make_client, desired, state, flush, dns, plan):
    task = run(make_client, TargetArm([state]), desired, flush=flush, dns_refresh=dns)[0]
    assert task.plan(state) == plan


def test_flush_then_suspend_each_followed_to_its_end(make_client):
    arm = TargetArm(["Ready", "Ready", "Ready", "Suspended"],
                    answers={"flush": [op_202()], "suspend": [op_202()]},
                    ops=[FakeRaw(200, {"status": "InProgress"}), done(), done()])
    result = run(make_client, arm, "suspended")[1]()
    assert arm.posts == ["flush", "suspend"]
    assert [o["action"] for o in result["operations"]] == ["flush", "suspend"]
    assert all(o["status"] == "Succeeded" and o["status_code"] == 202 and o["operation_url"] == OP
               for o in result["operations"])
    assert result["state_before"] == "Ready" and result["state_after"] == "Suspended"
    assert result["status"] == "Succeeded" and result["changed"] is True and result["polls"] == 3


def test_suspend_is_not_over_until_the_target_reads_suspended(make_client, clock):
    # the operation says Succeeded, the target still reads Ready: no "suspended" on the operation's word
    arm = TargetArm(["Ready", "Ready", "Ready", "Suspended"], answers={"suspend": [op_202()]}, ops=[done()])
    result = run(make_client, arm, "suspended", flush=False)[1]()
    assert result["status"] == "Succeeded" and result["state_after"] == "Suspended"
    assert result["polls"] == 3  # the operation once, then the target until it read Suspended


def test_suspend_that_never_shows_fails_within_the_confirm_window_naming_both(make_client, clock):
    # recorded: a suspend reported Succeeded, the target read Ready two minutes later (PS-T, 09:39:43)
    arm = TargetArm(["Ready"], answers={"suspend": [op_202()]}, ops=[done()])
    started = clock.now
    task, go = run(make_client, arm, "suspended", flush=False, timeout=3600)
    with pytest.raises(HpcCacheError) as err:
        go()
    assert "the suspend operation reported Succeeded, but the storage target filer-01 of cache c1 still reads " \
           "Ready after 120 s (confirm_timeout)" in err.value.message
    assert clock.now - started <= 126  # the window, not wait_timeout (0.3.0 waited the whole hour)
    assert task.result["status"] == "Unconfirmed" and task.result["state_after"] == "Ready"
    assert task.result["operations"] == [
        {"action": "suspend", "status_code": 202, "operation_url": OP, "status": "Unconfirmed"}]
    assert arm.posts == ["suspend"]


def test_the_confirm_window_is_an_option(make_client, clock):
    arm = TargetArm(["Ready"], answers={"suspend": [op_202()]}, ops=[done()])
    started = clock.now
    with pytest.raises(HpcCacheError, match="still reads Ready after 10 s"):
        run(make_client, arm, "suspended", flush=False, timeout=3600, confirm_timeout=10)[1]()
    assert clock.now - started <= 16


def test_trust_operation_accepts_the_operation_with_a_warning(make_client):
    arm = TargetArm(["Ready"], answers={"suspend": [op_202()]}, ops=[done()])
    result = run(make_client, arm, "suspended", flush=False, confirm_timeout=10, trust_operation=True)[1]()
    assert result["status"] == "Succeeded" and result["state_after"] == "Ready"
    assert len(result["warnings"]) == 1 and "reported Succeeded" in result["warnings"][0]
    assert "trust_operation" in result["warnings"][0]


def test_a_failed_operation_is_never_accepted_by_trust_operation(make_client):
    failed = FakeRaw(200, {"status": "Failed", "error": {"code": "X", "message": "no"}})
    arm = TargetArm(["Ready"], answers={"suspend": [op_202()]}, ops=[failed])
    with pytest.raises(OperationFailed):
        run(make_client, arm, "suspended", flush=False, trust_operation=True)[1]()


def test_a_resume_that_never_shows_ready_fails_within_the_window(make_client):
    arm = TargetArm(["Suspended"], answers={"resume": [op_202()]}, ops=[done()])
    with pytest.raises(HpcCacheError, match="resume operation reported Succeeded, but .* still reads Suspended"):
        run(make_client, arm, "active", timeout=3600)[1]()


def test_a_bare_answer_that_never_shows_fails_within_the_window(make_client, clock):
    arm = TargetArm(["Ready"], answers={"suspend": [FakeRaw(200)]})
    started = clock.now
    with pytest.raises(HpcCacheError, match="answered without an operation to follow, and .* still reads Ready"):
        run(make_client, arm, "suspended", flush=False, timeout=3600)[1]()
    assert clock.now - started <= 126


def test_a_busy_target_after_a_bare_answer_is_waited_for_past_the_window(make_client, clock):
    arm = TargetArm(["Ready"] + ["Busy"] * 40 + ["Suspended"], answers={"suspend": [FakeRaw(202)]})
    result = run(make_client, arm, "suspended", flush=False, timeout=3600)[1]()
    assert result["status"] == "Succeeded" and result["state_after"] == "Suspended"


def test_a_suspend_is_never_sent_while_the_target_flushes(make_client):
    # the flush this task sent is over; someone else's flush began before the suspend could go
    arm = TargetArm(["Ready", "Ready", "Flushing", "Flushing", "Ready", "Ready", "Suspended"],
                    answers={"flush": [op_202()], "suspend": [op_202()]}, ops=[done(), done()])
    result = run(make_client, arm, "suspended")[1]()
    assert arm.posts == ["flush", "suspend"] and result["status"] == "Succeeded"
    assert arm.read_before == ["Ready", "Ready"]  # 0.3.0 sent the suspend on the read of Flushing


def test_after_an_unanswered_suspend_a_busy_target_is_waited_for_then_judged(make_client):
    arm = TargetArm(["Ready", "Busy", "Busy", "Busy", "Suspended"], answers={"suspend": [reset()]})
    result = run(make_client, arm, "suspended", flush=False)[1]()
    assert arm.posts == ["suspend"] and result["status"] == "Succeeded"
    assert result["state_after"] == "Suspended"


def test_after_an_unanswered_suspend_a_busy_target_that_settles_ready_is_resent_once(make_client):
    arm = TargetArm(["Ready", "Busy", "Ready", "Ready", "Ready", "Suspended"],
                    answers={"suspend": [reset(), FakeRaw(204)]})
    result = run(make_client, arm, "suspended", flush=False)[1]()
    assert arm.posts == ["suspend", "suspend"] and result["status"] == "Succeeded"
    assert arm.read_before == ["Ready", "Ready"]  # never resent while it read Busy


def test_a_409_while_the_target_is_busy_waits_and_attaches_to_what_it_shows(make_client):
    conflict = FakeRaw(409, {"error": {"code": "Conflict", "message": "busy"}})
    arm = TargetArm(["Ready", "Busy", "Busy", "Suspended"], answers={"suspend": [conflict]})
    result = run(make_client, arm, "suspended", flush=False)[1]()
    assert arm.posts == ["suspend"] and result["status"] == "Succeeded"


def test_an_unexpected_error_after_a_post_keeps_the_operation_sent(make_client):
    arm = TargetArm(["Ready", ValueError("bug")], answers={"suspend": [op_202()]}, ops=[done()])
    task, go = run(make_client, arm, "suspended", flush=False)
    with pytest.raises(ValueError):
        go()
    assert task.result["operations"] == [
        {"action": "suspend", "status_code": 202, "operation_url": OP, "status": "Failed"}]
    assert task.result["changed"] is True


@pytest.mark.parametrize("answer", [FakeRaw(200), FakeRaw(204)])
def test_bare_2xx_is_judged_by_the_target_state(make_client, answer):
    arm = TargetArm(["Suspended", "Busy", "Ready"], answers={"resume": [answer]})
    result = run(make_client, arm, "active")[1]()
    assert result["status"] == "Succeeded" and result["state_after"] == "Ready" and result["polls"] == 1


def test_already_suspended_sends_nothing(make_client):
    arm = TargetArm(["Suspended"])
    result = run(make_client, arm, "suspended")[1]()
    assert arm.posts == [] and result["changed"] is False and result["operations"] == []
    assert result["status"] == "Succeeded" and "nothing to do" in result["msg"]


def test_check_mode_sends_nothing_and_says_what_would_change(make_client):
    arm = TargetArm(["Ready"])
    result = run(make_client, arm, "suspended", check_mode=True)[1]()
    assert arm.posts == [] and result["changed"] is True and result["operations"] == []
    assert result["state_after"] == "Ready" and "would get a flush" in result["msg"]


def test_without_wait_the_flush_before_a_suspend_is_still_waited_for(make_client):
    arm = TargetArm(["Ready", "Ready", "Ready"], answers={"flush": [op_202()], "suspend": [op_202()]},
                    ops=[FakeRaw(200, {"status": "InProgress"}), done()])
    result = run(make_client, arm, "suspended", wait=False)[1]()
    assert arm.posts == ["flush", "suspend"]
    assert [o["status"] for o in result["operations"]] == ["Succeeded", "InProgress"]
    assert result["status"] == "InProgress"


def test_failed_suspend_is_reported_with_the_operations_sent(make_client):
    failed = FakeRaw(200, {"status": "Failed", "error": {"code": "TargetBusy", "message": "filer busy"}})
    arm = TargetArm(["Ready"], answers={"suspend": [op_202()]}, ops=[failed])
    task, go = run(make_client, arm, "suspended", flush=False)
    with pytest.raises(OperationFailed, match="The suspend operation failed: TargetBusy: filer busy"):
        go()
    assert task.result["operations"] == [
        {"action": "suspend", "status_code": 202, "operation_url": OP, "status": "Failed"}]


def test_unanswered_suspend_is_resent_only_after_reads_show_it_not_taken(make_client):
    arm = TargetArm(["Ready"], answers={"suspend": [reset(), FakeRaw(204)]})
    arm.states = ["Ready", "Ready", "Ready", "Ready", "Ready", "Suspended"]
    result = run(make_client, arm, "suspended", flush=False)[1]()
    assert arm.posts == ["suspend", "suspend"] and result["state_after"] == "Suspended"


def test_unanswered_suspend_that_was_taken_is_not_resent(make_client):
    arm = TargetArm(["Ready", "Suspended"], answers={"suspend": [reset()]})
    result = run(make_client, arm, "suspended", flush=False)[1]()
    assert arm.posts == ["suspend"] and result["status"] == "Succeeded"
    assert "got no clear answer, but the storage target is suspended" in result["msg"]


def test_flush_found_running_is_attached_then_suspended(make_client):
    arm = TargetArm(["Flushing", "Flushing", "Flushing", "Ready", "Ready", "Suspended"], answers={"suspend": [op_202()]},
                    ops=[done()])
    result = run(make_client, arm, "suspended", flush=False)[1]()
    assert arm.posts == ["suspend"] and [o["action"] for o in result["operations"]] == ["suspend"]
    assert result["state_before"] == "Flushing" and result["state_after"] == "Suspended"


def test_busy_target_is_waited_for_before_anything_is_decided(make_client):
    arm = TargetArm(["Busy", "Busy", "Suspended"])
    result = run(make_client, arm, "suspended")[1]()
    assert arm.posts == [] and result["changed"] is False and result["polls"] == 2
    assert result["state_before"] == "Busy" and result["state_after"] == "Suspended"


@pytest.mark.parametrize("wait, check_mode", [(False, False), (True, True)])
def test_busy_target_without_wait_or_in_check_mode_gets_nothing(make_client, wait, check_mode):
    arm = TargetArm(["Busy"])
    result = run(make_client, arm, "suspended", wait=wait, check_mode=check_mode)[1]()
    assert arm.posts == [] and result["status"] == "InProgress" and result["changed"] is False
    assert "nothing was sent" in result["msg"]


def test_target_state_and_summary_from_hostile_bodies():
    assert target_state({}) == "Unknown" and target_state({"properties": {"state": " "}}) == "Unknown"
    assert target_state({"properties": []}) == "Unknown" and target_state({"properties": {"state": 3}}) == "Unknown"
    summary = summarize_target({"name": "t", "properties": {"targetType": "clfs", "state": "Busy", "junctions": [
        {"namespacePath": "/a", "targetPath": "/b", "nfsExport": "/e", "nfsAccessPolicy": "p"}, "junk"]}})
    assert summary["junctions"] == [{"namespace_path": "/a", "target_path": "/b", "nfs_export": "/e",
                                     "nfs_access_policy": "p"}]
    assert summary["target_type"] == "clfs" and summary["state"] == "Busy"
    assert summarize_target({"properties": {"junctions": {"x": 1}}})["junctions"] == []


def test_unknown_desired_state_is_refused(make_client):
    with pytest.raises(HpcCacheError, match="state"):
        run(make_client, TargetArm(["Ready"]), "gone")


def test_together_aligns_on_the_last_action_and_sends_each_round_before_following_it(make_client):
    # filer-02 is flushing (someone's flush): it is waited out first, alone; then both suspends go out together,
    # so filer-01 is not suspended while filer-02's flush runs
    arm = RecordArm(targets={"filer-01": ["Ready"], "filer-02": ["Flushing", "Flushing", "Ready"]})
    client = make_client(arm)[0]
    options = ActionOptions(wait_timeout=100, poll_interval=5)
    tasks = [TargetTask(CacheOperations(client, "v"), TargetRef(REF, name), state="suspended", flush=False,
                        dns_refresh=False, options=options) for name in ("filer-01", "filer-02")]
    Together(tasks).run()
    assert arm.log == ["suspend filer-01", "suspend filer-02", "status", "status"]
    assert [t.result["status"] for t in tasks] == ["Succeeded", "Succeeded"]
    assert [t.result["state_before"] for t in tasks] == ["Ready", "Flushing"]
    assert [[o["action"] for o in t.result["operations"]] for t in tasks] == [["suspend"], ["suspend"]]


def test_a_retry_after_date_of_an_action_finished_later_counts_from_its_answer(make_client, clock, monkeypatch):
    # answered with Retry-After as an HTTP-date 10 s ahead, followed 6 s later (the other targets' requests): the
    # first status read comes 4 s after the follow starts, 10 s after the answer, not at once (the date read again
    # at the follow already counts those 6 s; taking them off a second time would read early)
    from email.utils import formatdate  # pylint: disable=import-outside-toplevel

    from ansible_collections.azure_hpc.cache.plugins.module_utils._transport import response as response_module  # pylint: disable=import-outside-toplevel

    wall = 1_900_000_000.0
    # the HTTP-date is read against the wall clock: here the fake clock's
    monkeypatch.setattr(response_module.retry_after_seconds, "__defaults__", (lambda: wall + clock.now,))
    answer = FakeRaw(202, None, {"Azure-AsyncOperation": OP, "Retry-After": formatdate(wall + clock.now + 10, usegmt=True)})
    arm = TargetArm(["Ready", "Suspended"], answers={"suspend": [answer]}, ops=[done()])
    client = make_client(arm)[0]
    action = TargetAction(CacheOperations(client, "v"), TARGET, "suspend",
                          options=ActionOptions(wait=False, wait_timeout=100, poll_interval=5))
    action.run()
    clock.sleep(6.0)
    before = len(clock.sleeps)
    assert action.finish()["status"] == "Succeeded"
    assert clock.sleeps[before] == pytest.approx(4.0, abs=1.0)


def test_an_action_begun_without_wait_is_finished_as_a_waited_one(make_client):
    arm = TargetArm(["Ready", "Suspended"], answers={"suspend": [op_202()]},
                    ops=[FakeRaw(200, {"status": "InProgress"}), done()])
    client = make_client(arm)[0]
    action = TargetAction(CacheOperations(client, "v"), TARGET, "suspend",
                          options=ActionOptions(wait=False, wait_timeout=100, poll_interval=5))
    assert action.run()["status"] == "InProgress" and action.pending is not None
    result = action.finish()
    assert (result["status"], result["polls"], result["state_after"]) == ("Succeeded", 2, "Suspended")
    assert action.pending is None and action.finish() is result and arm.posts == ["suspend"]
