# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest
import requests

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_flush import FlushTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.cache import summarize
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, resource_group_of
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import (
    ArmError,
    HpcCacheError,
    OperationFailed,
    OperationTimeout,
)
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, OP, REF, SUB, Arm, FakeRaw, accepted, reset


def run(make_client, arm, wait=True, timeout=100, check_mode=False, allowed=()):
    client = make_client(arm)[0]
    task = FlushTask(CacheOperations(client, "v"), REF,
                     options=ActionOptions(wait=wait, wait_timeout=timeout, poll_interval=5, check_mode=check_mode),
                     allowed_states=allowed)
    return task, task.run


@pytest.mark.parametrize("code", [200, 204])
def test_sync_flush(make_client, code):
    arm = Arm(["Healthy"], posts=[FakeRaw(code, None)])
    unused, go = run(make_client, arm)
    result = go()
    assert result["changed"] is True and result["status"] == "Succeeded" and result["status_code"] == code
    assert result["health_state"] == "Healthy" and result["polls"] == 0
    assert result["health_state_after"] == "Healthy"
    assert arm.post_count == 1 and [seen[0] for seen in arm.seen] == ["GET", "POST", "GET"]


@pytest.mark.parametrize("state,status", [("Healthy", "Succeeded"), ("Flushing", "InProgress"),
                                          ("Unknown", "InProgress")])
def test_bare_2xx_without_wait_reads_the_cache_once(make_client, state, status):
    # 204 alone means "already in progress or has completed": only the cache can tell which.
    arm = Arm(["Healthy", state], posts=[FakeRaw(204, None)])
    result = run(make_client, arm, wait=False)[1]()
    assert result["status"] == status and result["health_state_after"] == state
    assert [seen[0] for seen in arm.seen] == ["GET", "POST", "GET"]
    assert result["completion"] == {"cache_state": state}


def test_bare_204_while_the_cache_flushes_is_waited_out(make_client, clock):
    arm = Arm(["Healthy", "Flushing", "Flushing", " flushing ", "Healthy"], posts=[FakeRaw(204, None)])
    result = run(make_client, arm)[1]()
    assert result["status"] == "Succeeded" and result["polls"] == 3 and result["changed"] is True
    # no operation to follow: the cache is read after 1 s, then a third of the wait so far (at least 1 s)
    assert result["health_state_after"] == "Healthy" and clock.sleeps == [1, 1, 1]
    assert result["completion"] == {"cache_state": "Healthy"} and "the cache reads Healthy" in result["msg"]


def test_bare_204_whose_aftermath_cannot_be_read_fails(make_client):
    # No operation to ask and no cache state: nothing says the flush is over.
    arm = Arm(["Healthy", FakeRaw(403, {"error": {"code": "AuthorizationFailed", "message": "x"}})],
              posts=[FakeRaw(204, None)])
    task, go = run(make_client, arm)
    with pytest.raises(ArmError):
        go()
    assert task.result["changed"] is True and task.result["status_code"] == 204 and "status" not in task.result


def _unreadable_after_the_operation():
    return Arm(["Healthy", FakeRaw(403, {"error": {"code": "AuthorizationFailed", "message": "x"}})],
               posts=[FakeRaw(204, None, {"Azure-AsyncOperation": OP})], ops=[FakeRaw(200, {"status": "Succeeded"})])


def test_a_cache_unreadable_after_a_finished_operation_leaves_it_unconfirmed(make_client, clock):
    # 0.3.0 reported Succeeded on the operation's word alone; the state now corroborates it (0.3.1)
    started = clock.now
    task, go = run(make_client, _unreadable_after_the_operation(), timeout=3600)
    with pytest.raises(HpcCacheError, match="reported Succeeded, but the cache c1 could not be read .* "
                                            "AuthorizationFailed"):
        go()
    assert task.result["status"] == "Unconfirmed" and clock.now - started <= 126


def test_trust_operation_accepts_a_finished_operation_whose_cache_cannot_be_read(make_client):
    client = make_client(_unreadable_after_the_operation())[0]
    task = FlushTask(CacheOperations(client, "v"), REF, options=ActionOptions(
        wait=True, wait_timeout=3600, poll_interval=5, check_mode=False, trust_operation=True))
    result = task.run()
    assert result["status"] == "Succeeded" and "health_state_after" not in result
    assert result["completion"] == {"operation_status": "Succeeded"} and "could not be read" in result["warnings"][0]


@pytest.mark.parametrize("code", [200, 202, 204])
@pytest.mark.parametrize("header", ["Azure-AsyncOperation", "azure-asyncoperation", "LOCATION"])
def test_any_2xx_with_an_operation_header_is_followed(make_client, code, header):
    url = OP if header.lower() != "location" else OP + "&monitor=true"
    follow = FakeRaw(200, {"status": "Succeeded"}) if header.lower() != "location" else FakeRaw(204, None)
    arm = Arm(["Healthy"], posts=[FakeRaw(code, None, {header: url})],
              ops=[FakeRaw(200, {"status": "InProgress"}) if header.lower() != "location" else FakeRaw(202, None),
                   follow])
    result = run(make_client, arm)[1]()
    assert result["status"] == "Succeeded" and result["status_code"] == code and result["operation_url"] == url
    assert result["polls"] == 2


@pytest.mark.parametrize("code", [200, 202, 204])
def test_any_2xx_with_an_operation_header_without_wait_is_in_progress(make_client, code):
    arm = Arm(["Healthy"], posts=[FakeRaw(code, None, {"Azure-AsyncOperation": OP})])
    result = run(make_client, arm, wait=False)[1]()
    assert result["status"] == "InProgress" and result["operation_url"] == OP and result["changed"] is True
    assert len(arm.seen) == 2 and result["completion"] == {"operation_status": "InProgress"}


def test_operation_succeeded_but_cache_still_flushing_is_waited_for(make_client):
    arm = Arm(["Healthy", "Flushing", "Healthy"], posts=[FakeRaw(204, None, {"Azure-AsyncOperation": OP})],
              ops=[FakeRaw(200, {"status": "Succeeded"})])
    result = run(make_client, arm)[1]()
    assert result["status"] == "Succeeded" and result["health_state_after"] == "Healthy"
    assert result["completion"] == {"operation_status": "Succeeded", "cache_state": "Healthy"}
    assert result["polls"] == 2  # the operation once, the cache once more after the aftermath read


def test_operation_succeeded_but_cache_flushing_past_the_window_fails_naming_both(make_client, clock):
    arm = Arm(["Healthy", "Flushing"], posts=[FakeRaw(204, None, {"Azure-AsyncOperation": OP})],
              ops=[FakeRaw(200, {"status": "Succeeded"})])
    started = clock.now
    task, go = run(make_client, arm, timeout=3600)
    with pytest.raises(HpcCacheError, match="the flush operation reported Succeeded, but the cache c1 still reads "
                                            "Flushing after 120 s"):
        go()
    assert clock.now - started <= 126 and task.result["status"] == "Unconfirmed"
    assert arm.post_count == 1


def test_async_flush_waits(make_client, clock):
    arm = Arm(["Healthy"], posts=[accepted("2")], ops=[FakeRaw(200, {"status": "InProgress"}),
                                                       FakeRaw(200, {"status": "Succeeded"})])
    result = run(make_client, arm)[1]()
    assert result["status"] == "Succeeded" and result["polls"] == 2 and result["operation_url"] == OP
    assert clock.sleeps == [2.0, 1.0]  # the POST's Retry-After, then a third of the wait so far, at least 1 s
    assert result["elapsed"] == 3.0


def test_location_fallback_url_is_reported(make_client):
    arm = Arm(["Healthy"], posts=[FakeRaw(202, None, {"Location": OP + "&monitor=true"})])
    result = run(make_client, arm, wait=False)[1]()
    assert result["operation_url"] == OP + "&monitor=true"
    assert result["status"] == "InProgress" and result["changed"] is True


def test_already_flushing_is_attached_not_posted(make_client):
    arm = Arm(["Flushing", "Flushing", "Flushing", "Healthy"])
    result = run(make_client, arm)[1]()
    assert arm.post_count == 0
    assert result["changed"] is False and result["status"] == "Succeeded" and result["polls"] == 3
    assert result["health_state"] == "Flushing" and result["health_state_after"] == "Healthy"


def test_already_flushing_without_wait(make_client):
    arm = Arm(["flushing"])
    result = run(make_client, arm, wait=False)[1]()
    assert (result["changed"], result["status"], arm.post_count) == (False, "InProgress", 0)


@pytest.mark.parametrize("state", ["Stopped", "Stopping"])
def test_stopped_is_skipped(make_client, state):
    arm = Arm([state])
    result = run(make_client, arm)[1]()
    assert (result["changed"], result["status"], arm.post_count) == (False, "Skipped", 0)
    assert "holds no dirty data" in result["msg"]


@pytest.mark.parametrize("state,changed", [("Healthy", True), ("Degraded", True), ("SomeNewState", True),
                                           ("Flushing", False), ("Stopped", False)])
def test_check_mode_sends_no_post_and_predicts_changed(make_client, state, changed):
    arm = Arm([state])
    result = run(make_client, arm, check_mode=True)[1]()
    assert arm.post_count == 0
    assert result["changed"] is changed
    assert all(seen[0] == "GET" for seen in arm.seen) and len(arm.seen) == 1


@pytest.mark.parametrize("check_mode", [False, True])
def test_state_not_allowed_is_refused_before_any_post(make_client, check_mode):
    arm = Arm(["Unhealthy"])
    task, go = run(make_client, arm, check_mode=check_mode, allowed=["Healthy", "degraded"])
    with pytest.raises(HpcCacheError, match="Refusing to flush c1: its health state is Unhealthy .d.; allowed states "
                                            "are Healthy, degraded"):
        go()
    assert arm.post_count == 0 and task.result["status"] == "Refused" and task.result["changed"] is False


@pytest.mark.parametrize("state,status", [("Degraded", "Succeeded"), ("Flushing", "Succeeded"), ("Stopped", "Skipped")])
def test_allowed_and_passing_states(make_client, state, status):
    arm = Arm([state, "Healthy"], posts=[FakeRaw(204, None)])
    assert run(make_client, arm, allowed=["Healthy", "DEGRADED"])[1]()["status"] == status


def test_not_found_fails_with_arm_code(make_client):
    arm = Arm([FakeRaw(404, {"error": {"code": "ResourceNotFound", "message": "The Resource was not found."}})])
    with pytest.raises(ArmError, match="ResourceNotFound.*was not found"):
        run(make_client, arm)[1]()


def test_conflict_on_post_fails_once(make_client):
    arm = Arm(["Healthy"], posts=[FakeRaw(409, {"error": {"code": "Conflict", "message": "upgrading"}})])
    task, go = run(make_client, arm)
    with pytest.raises(ArmError, match="Conflict"):
        go()
    assert arm.post_count == 1 and task.result["changed"] is False


def test_reset_after_post_attaches_when_flushing(make_client):
    arm = Arm(["Healthy", "Flushing", "Flushing", "Healthy"], posts=[reset()])
    result = run(make_client, arm)[1]()
    assert arm.post_count == 1
    assert result["changed"] is True and result["status"] == "Succeeded"
    assert "got no clear answer, but the cache is flushing" in result["msg"]


def test_server_error_on_a_taken_post_attaches(make_client):
    arm = Arm(["Healthy", "Flushing", "Healthy"], posts=[FakeRaw(500, {"error": {"code": "InternalError", "message": "x"}})])
    result = run(make_client, arm)[1]()
    assert arm.post_count == 1 and result["status"] == "Succeeded" and result["changed"] is True


def test_server_error_on_a_post_not_taken_fails_without_resending(make_client):
    arm = Arm(["Healthy"], posts=[FakeRaw(502, {"error": {"code": "BadGateway", "message": "x"}}), FakeRaw(204, None)])
    with pytest.raises(ArmError, match="BadGateway"):
        run(make_client, arm)[1]()
    assert arm.post_count == 1


def test_timeout_after_post_resends_when_not_flushing(make_client):
    arm = Arm(["Healthy", "Healthy"], posts=[requests.exceptions.ReadTimeout("t"), FakeRaw(204, None)])
    result = run(make_client, arm)[1]()
    assert arm.post_count == 2 and result["status_code"] == 204


def test_unanswered_posts_are_bounded(make_client):
    arm = Arm(["Healthy"], posts=[reset(), reset(), reset(), FakeRaw(204, None)])
    with pytest.raises(HpcCacheError, match="got no answer 3 times"):
        run(make_client, arm)[1]()
    assert arm.post_count == 3


def test_failed_operation(make_client):
    arm = Arm(["Healthy"], posts=[accepted()], ops=[FakeRaw(200, {"status": "Failed", "error": {
        "code": "StorageTargetUnreachable", "message": "nfs down"}})])
    task, go = run(make_client, arm)
    with pytest.raises(OperationFailed, match="StorageTargetUnreachable: nfs down"):
        go()
    assert task.result["changed"] is True and task.result["status_code"] == 202


def test_timeout_keeps_operation_url(make_client):
    arm = Arm(["Healthy"], posts=[accepted("4")], ops=[FakeRaw(200, {"status": "InProgress"})] * 10)
    task, go = run(make_client, arm, timeout=10)
    with pytest.raises(OperationTimeout) as err:
        go()
    assert err.value.result["operation_url"] == OP
    assert task.result["operation_url"] == OP and task.result["elapsed"] == 10.0


def test_summarize_and_resource_group():
    item = summarize({"id": "/subscriptions/s/resourceGroups/RG-1/providers/Microsoft.StorageCache/caches/c",
                      "name": "c", "location": "eastus",
                      "properties": {"health": {"state": "Healthy", "statusDescription": "ok"},
                                     "provisioningState": "Succeeded", "upgradeStatus": {"x": 1}}})
    assert item["resource_group"] == "RG-1" and item["health_state"] == "Healthy"
    assert item["upgrade_status"] == {"x": 1} and item["properties"]["provisioningState"] == "Succeeded"
    assert summarize({"name": "x"})["health_state"] == "Unknown"
    assert resource_group_of("") is None


def test_list_follows_next_link(make_client):
    pages = [FakeRaw(200, {"value": [{"name": "a"}], "nextLink": ARM + "page2"}), FakeRaw(200, {"value": [{"name": "b"}]})]
    client, session = make_client(pages)
    names = [c["name"] for c in CacheOperations(client, "v").list(SUB, "rg")]
    assert names == ["a", "b"]
    assert session.calls[0]["url"] == ARM + "subscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches" \
                                            "?api-version=v" % SUB


def test_list_refuses_looping_next_link(make_client):
    client, unused = make_client(lambda m, u: FakeRaw(200, {"value": [], "nextLink": ARM + "same"}))
    with pytest.raises(HpcCacheError, match="nextLink repeats"):
        CacheOperations(client, "v").list(SUB)


def test_summarize_gives_the_software_and_a_deadline_only_while_an_upgrade_is_pending():
    pending = {"properties": {"upgradeStatus": {"currentFirmwareVersion": "6.1.0", "firmwareUpdateStatus": "available",
                                                "firmwareUpdateDeadline": "2026-12-04T00:00:00Z"}}}
    got = summarize(pending)
    assert (got["firmware_version"], got["firmware_update_status"], got["firmware_update_deadline"]) == (
        "6.1.0", "available", "2026-12-04T00:00:00Z")
    none = {"properties": {"upgradeStatus": {"currentFirmwareVersion": "6.2.1", "firmwareUpdateStatus": "unavailable",
                                             "firmwareUpdateDeadline": "0001-01-01T00:00:00Z"}}}
    assert summarize(none)["firmware_update_deadline"] is None
    assert summarize({"properties": {"upgradeStatus": "hostile"}})["firmware_version"] is None
