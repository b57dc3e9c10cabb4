# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache's stop, start and software upgrade (plugins/module_utils/_actions/cache_actions.py), on a scripted ARM."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError, OperationFailed
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_actions import (
    CACHE_ACTIONS,
    CacheActionTask,
    UpgradeTask,
    firmware,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations
from ansible_collections.azure_hpc.cache.tests.unit.fakes import CACHE_PATH, OP, REF, FakeRaw

PENDING = {"currentFirmwareVersion": "6.1.0", "firmwareUpdateStatus": "available",
           "firmwareUpdateDeadline": "2026-12-04T00:00:00Z", "pendingFirmwareVersion": "6.2.1"}
CURRENT = {"currentFirmwareVersion": "6.1.0", "firmwareUpdateStatus": "unavailable",
           "firmwareUpdateDeadline": "0001-01-01T00:00:00Z", "pendingFirmwareVersion": ""}
UPGRADED = dict(CURRENT, currentFirmwareVersion="6.2.1")


def body(state, upgrade=None):
    props = {"health": {"state": state, "statusDescription": "said %s" % state}, "provisioningState": "Succeeded"}
    if upgrade is not None:
        props["upgradeStatus"] = upgrade
    return {"id": "/" + CACHE_PATH, "name": "c1", "properties": props}


def cache(state, upgrade=None):
    return FakeRaw(200, body(state, upgrade))


class LifecycleArm:  # pylint: disable=too-few-public-methods
    """GET cache -> reads in turn (the last repeats); POST <action> -> answers in turn; operations in turn."""

    def __init__(self, reads, posts=(), ops=()):
        self.reads, self.posts, self.ops = list(reads), list(posts), list(ops)
        self.sent = []

    def __call__(self, method, url):
        if method == "POST":
            self.sent.append(url.split("?")[0].rsplit("/", 1)[1])
            return self.posts.pop(0)
        if "ascOperations" in url:
            return self.ops.pop(0) if len(self.ops) > 1 else self.ops[0]
        read = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        return read if isinstance(read, FakeRaw) else cache(*read) if isinstance(read, tuple) else cache(read)


def accepted():
    return FakeRaw(202, None, {"Azure-AsyncOperation": OP, "Location": OP + "&monitor=true"})


def done(status="Succeeded", error=None):
    return FakeRaw(200, dict({"status": status}, **({"error": error} if error else {})))


def power(make_client, arm, action, check_mode=False, allowed=(), wait=True):
    client = make_client(arm)[0]
    return CacheActionTask(CacheOperations(client, "v"), REF, action,
                           options=ActionOptions(wait=wait, poll_interval=5, check_mode=check_mode), allowed_states=allowed,
                           deadline=Deadline.after(3600, clock=client.clock, sleep=client.sleep))


def upgrade(make_client, arm, flush=False, check_mode=False, wait=True):
    client = make_client(arm)[0]
    return UpgradeTask(CacheOperations(client, "v"), REF, flush=flush,
                       options=ActionOptions(wait=wait, poll_interval=5, check_mode=check_mode),
                       deadline=Deadline.after(3600, clock=client.clock, sleep=client.sleep))


# The table -----------------------------------------------------------------------------------------------
def test_every_cache_action_is_one_entry():
    assert set(CACHE_ACTIONS) == {"stop", "start", "upgrade"}
    assert CACHE_ACTIONS["stop"].sent_from == ("Healthy", "Degraded")  # Microsoft's "Manage your cache"
    assert "stopping" in CACHE_ACTIONS["stop"].running and "transitioning" in CACHE_ACTIONS["start"].running


# Stop ----------------------------------------------------------------------------------------------------
def test_a_stop_is_sent_and_followed_until_the_cache_reads_stopped(make_client):
    arm = LifecycleArm(["Healthy", "Stopped"], posts=[accepted()], ops=[done("InProgress"), done()])
    result = power(make_client, arm, "stop").run()
    assert arm.sent == ["stop"] and result["status"] == "Succeeded" and result["changed"] is True
    assert result["health_state"] == "Healthy" and result["health_state_after"] == "Stopped"


@pytest.mark.parametrize("action, state", [("stop", "Stopped"), ("stop", "stopped"), ("start", "Healthy"),
                                           ("start", "Degraded")])
def test_a_cache_already_there_gets_nothing(make_client, action, state):
    arm = LifecycleArm([state])
    result = power(make_client, arm, action).run()
    assert arm.sent == [] and result["changed"] is False and result["status"] == "Succeeded"
    assert "already" in result["msg"]


@pytest.mark.parametrize("action, state, after", [("stop", "Stopping", "Stopped"),
                                                  ("start", "Transitioning", "Healthy")])
def test_a_cache_on_its_way_is_waited_for_and_nothing_is_sent(make_client, action, state, after):
    arm = LifecycleArm([state, state, after])
    result = power(make_client, arm, action).run()
    assert arm.sent == [] and result["status"] == "Succeeded" and result["health_state_after"] == after
    assert result["changed"] is False


@pytest.mark.parametrize("action, state", [("stop", "Upgrading"), ("stop", "Flushing"), ("stop", "Down"),
                                           ("stop", "Unknown"), ("start", "Upgrading"), ("start", "Stopping")])
def test_a_state_the_action_is_not_sent_from_is_refused_before_anything_is_sent(make_client, action, state):
    arm = LifecycleArm([state])
    task = power(make_client, arm, action)
    with pytest.raises(HpcCacheError, match=r"Refusing to %s c1: its health state is %s \(said %s\); a %s is sent "
                                            r"only from" % (action, state, state, action)):
        task.run()
    assert arm.sent == [] and task.result["status"] == "Refused"


def test_allowed_states_widen_the_states_a_stop_is_sent_from(make_client):
    arm = LifecycleArm(["Down", "Stopped"], posts=[accepted()], ops=[done()])
    result = power(make_client, arm, "stop", allowed=["down"]).run()
    assert arm.sent == ["stop"] and result["status"] == "Succeeded"


def test_check_mode_sends_nothing_and_says_what_would_change(make_client):
    arm = LifecycleArm(["Healthy"])
    result = power(make_client, arm, "stop", check_mode=True).run()
    assert arm.sent == [] and result["changed"] is True and "would get a stop" in result["msg"]
    arm = LifecycleArm(["Stopped"])
    assert power(make_client, arm, "stop", check_mode=True).run()["changed"] is False


# Start ---------------------------------------------------------------------------------------------------
def test_a_start_is_followed_through_transitioning_to_healthy(make_client):
    arm = LifecycleArm(["Stopped", "Transitioning", "Healthy"], posts=[accepted()], ops=[done("InProgress"), done()])
    result = power(make_client, arm, "start").run()
    assert arm.sent == ["start"] and result["status"] == "Succeeded" and result["health_state_after"] == "Healthy"


def test_a_bare_204_to_a_start_proves_nothing_the_state_decides(make_client):
    # recorded: a start of a running cache is answered 204 with no headers
    arm = LifecycleArm(["Stopped", "Transitioning", "Healthy"], posts=[FakeRaw(204, None)])
    result = power(make_client, arm, "start").run()
    assert result["status"] == "Succeeded" and result["health_state_after"] == "Healthy"
    assert "operation_url" not in result


def test_a_start_that_ends_startfailed_fails_with_the_services_words(make_client):
    arm = LifecycleArm(["Stopped", "StartFailed"], posts=[FakeRaw(204, None)])
    task = power(make_client, arm, "start")
    with pytest.raises(HpcCacheError, match="The start of c1 ended with the cache reading StartFailed: said StartFailed"):
        task.run()
    assert task.result["status"] == "Failed"


def test_without_wait_the_operation_is_returned_in_progress(make_client):
    arm = LifecycleArm(["Stopped"], posts=[accepted()])
    result = power(make_client, arm, "start", wait=False).run()
    assert result["status"] == "InProgress" and result["operation_url"] == OP


# Upgrade -------------------------------------------------------------------------------------------------
def test_firmware_reads_the_upgrade_status():
    assert firmware(body("Healthy", PENDING)) == {"version": "6.1.0", "update_status": "available",
                                                  "deadline": "2026-12-04T00:00:00Z", "pending_version": "6.2.1",
                                                  "pending": True}
    assert firmware(body("Healthy", CURRENT))["deadline"] is None  # 0001-01-01: no deadline
    assert firmware(body("Healthy"))["pending"] is False


@pytest.mark.parametrize("status", [CURRENT, None, {"firmwareUpdateStatus": "Unavailable"}])
def test_nothing_pending_nothing_sent(make_client, status):
    arm = LifecycleArm([("Healthy", status)])
    task = upgrade(make_client, arm, flush=True)
    result = task.run()
    assert arm.sent == [] and result["changed"] is False and result["status"] == "Skipped"
    assert "no software upgrade pending" in result["msg"]


def test_a_pending_upgrade_is_sent_after_a_flush_and_followed_to_the_new_firmware(make_client):
    arm = LifecycleArm([("Healthy", PENDING), ("Healthy", PENDING), ("Healthy", PENDING),
                        ("Upgrading", PENDING), ("Healthy", UPGRADED)],
                       posts=[accepted(), accepted()], ops=[done(), done("InProgress"), done()])
    task = upgrade(make_client, arm, flush=True)
    result = task.run()
    assert arm.sent == ["flush", "upgrade"] and result["status"] == "Succeeded" and result["changed"] is True
    assert task.software_result() == {"firmware_before": "6.1.0", "firmware_after": "6.2.1",
                                      "firmware_update_status": "unavailable", "firmware_update_deadline": None,
                                      "pending_firmware": None}


def test_a_healthy_read_while_the_same_upgrade_is_still_pending_is_not_done(make_client):
    # a bare 204 (as recorded with nothing pending) and a cache that never shows the upgrade: never "done"
    arm = LifecycleArm([("Healthy", PENDING)], posts=[FakeRaw(204, None)])
    task = upgrade(make_client, arm)
    with pytest.raises(HpcCacheError, match="never showed, so the upgrade is not reported done"):
        task.run()
    assert task.result["status"] == "Unconfirmed"


def test_an_upgrading_cache_is_attached_to(make_client):
    arm = LifecycleArm([("Upgrading", PENDING), ("Upgrading", PENDING), ("Healthy", UPGRADED)])
    result = upgrade(make_client, arm).run()
    assert arm.sent == [] and result["status"] == "Succeeded" and result["changed"] is False


def test_a_failed_upgrade_fails_with_the_operations_words(make_client):
    arm = LifecycleArm([("Healthy", PENDING)], posts=[accepted()],
                       ops=[done("Failed", {"code": "UpgradeFailed", "message": "The firmware upgrade failed."})])
    with pytest.raises(OperationFailed, match="The firmware upgrade failed"):
        upgrade(make_client, arm).run()


def test_a_cache_that_ends_upgradefailed_fails(make_client):
    arm = LifecycleArm([("Upgrading", PENDING), ("UpgradeFailed", PENDING)])
    task = upgrade(make_client, arm)
    with pytest.raises(HpcCacheError, match="ended with the cache reading UpgradeFailed"):
        task.run()
    assert task.result["status"] == "Failed"


def test_an_upgrade_is_refused_on_a_cache_not_healthy_or_degraded(make_client):
    arm = LifecycleArm([("Stopped", PENDING)])
    with pytest.raises(HpcCacheError, match="Refusing to upgrade c1: its health state is Stopped"):
        upgrade(make_client, arm, flush=True).run()
    assert arm.sent == []


def test_a_flush_that_does_not_finish_stops_the_upgrade(make_client):
    arm = LifecycleArm([("Healthy", PENDING)], posts=[accepted()], ops=[done("InProgress")])
    client = make_client(arm)[0]
    task = UpgradeTask(CacheOperations(client, "v"), REF, flush=True,
                       options=ActionOptions(wait=True, poll_interval=5, check_mode=False),
                       deadline=Deadline.after(12, clock=client.clock, sleep=client.sleep))
    with pytest.raises(HpcCacheError):
        task.run()
    assert arm.sent == ["flush"]


def test_check_mode_names_both_versions(make_client):
    arm = LifecycleArm([("Healthy", PENDING)])
    result = upgrade(make_client, arm, flush=True, check_mode=True).run()
    assert arm.sent == [] and result["changed"] is True
    assert result["msg"] == "Check mode: the cache c1 (Healthy) would be flushed, then upgraded from 6.1.0 to 6.2.1"


# Found by review: a request with no answer is never sent twice --------------------------------------------
def timeout():
    import requests  # pylint: disable=import-outside-toplevel
    return requests.exceptions.ReadTimeout("read timed out")


def test_an_unanswered_upgrade_that_ran_at_once_is_not_sent_again(make_client):
    arm = LifecycleArm([("Healthy", PENDING), ("Healthy", UPGRADED)], posts=[timeout()])
    result = upgrade(make_client, arm).run()
    assert arm.sent == ["upgrade"] and result["status"] == "Succeeded"


def test_an_unanswered_start_that_failed_at_once_is_not_sent_again(make_client):
    arm = LifecycleArm(["Stopped", "StartFailed"], posts=[timeout()])
    task = power(make_client, arm, "start")
    with pytest.raises(HpcCacheError, match="ended with the cache reading StartFailed"):
        task.run()
    assert arm.sent == ["start"]


def test_a_failed_upgrade_operation_reports_what_the_cache_reads_after_it(make_client):
    arm = LifecycleArm([("Healthy", PENDING), ("UpgradeFailed", PENDING)], posts=[accepted()],
                       ops=[done("Failed", {"code": "UpgradeFailed", "message": "no"})])
    task = upgrade(make_client, arm)
    with pytest.raises(OperationFailed):
        task.run()
    assert task.result["health_state_after"] == "UpgradeFailed"


def test_an_upgrade_the_operation_calls_done_on_the_same_software_is_not_done(make_client):
    arm = LifecycleArm([("Healthy", PENDING), ("Healthy", CURRENT)], posts=[accepted()], ops=[done()])
    task = upgrade(make_client, arm)
    with pytest.raises(HpcCacheError, match="not reported done"):
        task.run()
    assert task.result["status"] == "Unconfirmed"


@pytest.mark.parametrize("status, deadline", [
    ({"firmwareUpdateStatus": "Available", "firmwareUpdateDeadline": "0001-01-01T00:00:00Z"}, None),
    ({"firmwareUpdateStatus": "available", "firmwareUpdateDeadline": 5}, None),
    ({"firmwareUpdateStatus": ["available"], "currentFirmwareVersion": {"x": 1}}, None),
])
def test_hostile_or_placeholder_software_fields_are_not_taken_for_values(status, deadline):
    got = firmware(body("Healthy", status))
    assert got["deadline"] is deadline and got["version"] is None
