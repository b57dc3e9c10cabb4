# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cache's stop, start and upgrade as the emulator answers them over raw HTTP (no module involved), with
the recorded answers (../shared/reference/recorded-storage-targets.md, "Cache actions"): 202 with both
operation headers, the states each action shows while it runs and after, 204 for a start of a running cache
and for an upgrade with nothing pending, a stop refused from a state that does not allow it, an upgrade that
fails. Durations are the recorded ones times a small time_scale, or given; every wait is bounded."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from conftest import SUB, requests_of  # pylint: disable=import-error

pytestmark = pytest.mark.stack_independent  # only the newest stack runs it (conftest.py)

CACHE = "/subscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/c1" % SUB
API = "?api-version=2026-01-01"
OPERATION_HEADERS = {"location", "azure-asyncoperation", "retry-after"}
NO_DEADLINE = "0001-01-01T00:00:00Z"
BOUND = 20.0  # seconds any wait for an emulated action may take, far above its duration


def token(emulator):
    return json.loads(urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - loopback only
        emulator.url + "/_emulator/token", method="POST"), timeout=10).read())["access_token"]


def call(emulator, method, path):
    """One request on its own connection: (status, headers with lower-case names, raw body)."""
    parts = urlsplit(emulator.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, headers={"Authorization": "Bearer " + token(emulator)})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def post(emulator, action, path=CACHE):
    return call(emulator, "POST", "%s/%s%s" % (path, action, API))


def cache(emulator, path=CACHE):
    status, _headers, body = call(emulator, "GET", path + API)
    assert status == 200, body
    return json.loads(body)["properties"]


def health(emulator):
    props = cache(emulator)
    return props["health"]["state"], props["health"]["statusDescription"]


def local(url, emulator):
    return url[len(emulator.url):] if url.startswith(emulator.url) else url


def operation(emulator, headers):
    status, _headers, body = call(emulator, "GET", local(headers["azure-asyncoperation"], emulator))
    assert status == 200, body
    return json.loads(body)


def until_done(emulator, headers):
    """Poll the operation (bounded) until it ends; its last status body and the states the cache read
    meanwhile, in order and without repeats."""
    deadline, seen = time.monotonic() + BOUND, []
    while True:
        state = health(emulator)[0]
        if not seen or seen[-1] != state:
            seen.append(state)
        body = operation(emulator, headers)
        if body["status"] != "InProgress":
            return body, seen
        assert time.monotonic() < deadline, "the operation never ended: %s" % body
        time.sleep(0.05)


def load(emulator, time_scale=1.0, **spec):
    emulator.load({"caches": [dict({"name": "c1", "resource_group": "rg"}, **spec)], "time_scale": time_scale})


def assert_accepted(status, headers, body, emulator):
    """The recorded answer of stop and start (PS-C): 202, empty body, both URLs, no Retry-After."""
    assert status == 202 and body == b""
    assert "?monitor=true&api-version=2026-01-01" in headers["location"]
    assert "/ascOperations/" in headers["azure-asyncoperation"] and "retry-after" not in headers
    assert local(headers["location"], emulator).split("?")[0] == local(headers["azure-asyncoperation"],
                                                                       emulator).split("?")[0]


def test_stop_runs_the_recorded_time_scaled_reads_stopping_then_stopped(emulator):
    load(emulator, time_scale=0.01)  # the recorded 142 s: 1.42 s
    assert health(emulator) == ("Healthy", "The cache is in Running state")
    sent = time.monotonic()
    status, headers, body = post(emulator, "stop")
    assert_accepted(status, headers, body, emulator)
    assert headers["x-ms-ratelimit-remaining-resource"] == "Microsoft.Compute/StartOrStopCache1Min;59"
    assert health(emulator) == ("Stopping", "The cache is being stopped.")
    final, seen = until_done(emulator, headers)
    assert time.monotonic() - sent >= 1.4  # the operation ran its recorded duration, scaled
    assert final["status"] == "Succeeded" and final["properties"] == {"output": "success"} and final["endTime"]
    assert seen == ["Stopping"] or seen == ["Stopping", "Stopped"]
    assert health(emulator) == ("Stopped", "The Cache resources have been deallocated")
    assert cache(emulator)["provisioningState"] == "Succeeded"  # as recorded, throughout
    assert emulator.actions("c1") == {"stop": 1, "start": 0, "upgrade": 0}
    entry = requests_of(emulator, "cache_action")[-1]
    assert (entry["method"], entry["cache"], entry["action"], entry["status"]) == ("POST", "c1", "stop", 202)


def test_stop_at_the_recorded_duration_runs_until_ended_by_the_control_route(emulator):
    load(emulator)  # time_scale 1: the recorded 142 s
    status, headers, _body = post(emulator, "stop")
    assert status == 202
    time.sleep(0.3)
    assert operation(emulator, headers)["status"] == "InProgress" and health(emulator)[0] == "Stopping"
    assert emulator.finish("c1", action=True) == 1
    assert operation(emulator, headers)["status"] == "Succeeded" and health(emulator)[0] == "Stopped"


def test_start_of_a_stopped_cache_reads_transitioning_then_healthy(emulator):
    load(emulator, state="Stopped", status_description="The Cache resources have been deallocated",
         start={"duration": 1.0})
    status, headers, body = post(emulator, "start")
    assert_accepted(status, headers, body, emulator)
    assert headers["x-ms-ratelimit-remaining-resource"] == "Microsoft.Compute/StartOrStopCache1Min;59"
    assert health(emulator) == ("Transitioning", "The cache is being allocated.")
    final, seen = until_done(emulator, headers)
    assert final["status"] == "Succeeded" and seen[0] == "Transitioning"
    assert health(emulator) == ("Healthy", "The cache is in Running state")
    assert emulator.actions("c1")["start"] == 1


@pytest.mark.parametrize("state", ["Healthy", "Degraded", "Transitioning", "Flushing"])
def test_start_of_a_running_cache_answers_204_and_nothing_else(emulator, state):
    load(emulator, state=state)
    status, headers, body = post(emulator, "start")
    assert status == 204 and body == b"" and not OPERATION_HEADERS & set(headers)
    assert headers["x-ms-ratelimit-remaining-resource"] == "Microsoft.Compute/StartOrStopCache1Min;59"
    assert health(emulator)[0] == state and emulator.actions("c1")["start"] == 0


def test_a_stop_then_a_start_then_a_flush(emulator):
    load(emulator, stop={"duration": 0.3}, start={"duration": 0.3})
    status, headers, _body = post(emulator, "stop")
    assert status == 202
    # while it stops: another stop is 204 (stopped already), a start and a flush are refused
    assert post(emulator, "stop")[0] == 204
    assert post(emulator, "start")[0] == 409
    assert post(emulator, "flush")[0] == 409
    assert until_done(emulator, headers)[0]["status"] == "Succeeded" and health(emulator)[0] == "Stopped"
    assert post(emulator, "flush")[0] == 409  # a stopped cache is not flushed
    status, headers, _body = post(emulator, "start")
    assert status == 202 and until_done(emulator, headers)[0]["status"] == "Succeeded"
    assert health(emulator)[0] == "Healthy"
    assert post(emulator, "flush")[0] == 204  # the recorded flush answer
    assert emulator.actions("c1") == {"stop": 1, "start": 1, "upgrade": 0}


@pytest.mark.parametrize("state", ["Transitioning", "Flushing", "Upgrading", "Down", "StartFailed", "Unknown"])
def test_stop_is_refused_from_a_state_that_does_not_allow_it(emulator, state):
    load(emulator, state=state)
    status, headers, body = post(emulator, "stop")
    assert status == 409 and not OPERATION_HEADERS & set(headers)
    error = json.loads(body)["error"]
    assert error["code"] == "Conflict" and state in error["message"] and "Healthy or Degraded" in error["message"]
    assert headers["x-ms-ratelimit-remaining-resource"] == "Microsoft.Compute/StartOrStopCache1Min;59"
    assert health(emulator)[0] == state and emulator.actions("c1")["stop"] == 0


@pytest.mark.parametrize("already_204, status", [(True, 204), (False, 409)])
def test_stop_of_a_stopped_cache(emulator, already_204, status):
    load(emulator, state="Stopped", stop={"already_204": already_204})
    answer, headers, _body = post(emulator, "stop")
    assert answer == status and not OPERATION_HEADERS & set(headers)
    assert health(emulator)[0] == "Stopped" and emulator.actions("c1")["stop"] == 0


def test_upgrade_with_nothing_pending_answers_204_and_nothing_else(emulator):
    load(emulator)
    before = cache(emulator)["upgradeStatus"]
    status, headers, body = post(emulator, "upgrade")
    assert status == 204 and body == b"" and not OPERATION_HEADERS & set(headers)
    assert "x-ms-ratelimit-remaining-resource" not in headers  # no bucket recorded for the upgrade
    assert cache(emulator)["upgradeStatus"] == before and emulator.actions("c1")["upgrade"] == 0


def test_a_cache_whose_scenario_names_its_firmware_reads_the_recorded_shape(emulator):
    load(emulator, upgrade={"current": "2023.04.2"})
    assert cache(emulator)["upgradeStatus"] == {
        "currentFirmwareVersion": "2023.04.2", "firmwareUpdateStatus": "unavailable",
        "firmwareUpdateDeadline": NO_DEADLINE, "lastFirmwareUpdate": "2026-10-01T00:00:00.0000000Z",
        "pendingFirmwareVersion": ""}
    assert post(emulator, "upgrade")[0] == 204


def test_a_pending_upgrade_runs_reads_upgrading_then_healthy_on_the_new_firmware(emulator):
    load(emulator, upgrade={"current": "6.1.0", "pending": "6.2.1", "deadline": "2026-12-04T00:00:00Z",
                            "duration": 1.0})
    status = cache(emulator)["upgradeStatus"]
    assert status["firmwareUpdateStatus"] == "available" and status["pendingFirmwareVersion"] == "6.2.1"
    assert status["firmwareUpdateDeadline"] == "2026-12-04T00:00:00Z" and status["currentFirmwareVersion"] == "6.1.0"
    sent = time.time()
    answer, headers, body = post(emulator, "upgrade")
    assert_accepted(answer, headers, body, emulator)
    assert health(emulator) == ("Upgrading", "The cache is being upgraded.")
    assert cache(emulator)["upgradeStatus"]["pendingFirmwareVersion"] == "6.2.1"  # pending while it runs
    assert post(emulator, "upgrade")[0] == 409  # one at a time
    final, seen = until_done(emulator, headers)
    assert final["status"] == "Succeeded" and seen[0] == "Upgrading"
    props = cache(emulator)
    assert props["health"]["state"] == "Healthy"
    status = props["upgradeStatus"]
    assert (status["currentFirmwareVersion"], status["firmwareUpdateStatus"], status["pendingFirmwareVersion"],
            status["firmwareUpdateDeadline"]) == ("6.2.1", "unavailable", "", NO_DEADLINE)
    assert status["lastFirmwareUpdate"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sent - 5))
    assert post(emulator, "upgrade")[0] == 204  # nothing pending any more
    assert emulator.actions("c1")["upgrade"] == 1
    assert emulator.state()["caches"][0]["upgrade_status"]["currentFirmwareVersion"] == "6.2.1"


def test_a_pending_upgrade_that_fails(emulator):
    load(emulator, upgrade={"pending": "6.2.1", "duration": 0.5, "fails": True})
    status, headers, _body = post(emulator, "upgrade")
    assert status == 202
    final, _seen = until_done(emulator, headers)
    assert final["status"] == "Failed" and final["endTime"]
    assert final["error"]["code"] == "UpgradeFailed" and "6.2.1" in final["error"]["message"]
    props = cache(emulator)
    assert props["health"]["state"] == "UpgradeFailed"
    assert props["upgradeStatus"]["pendingFirmwareVersion"] == "6.2.1"  # still pending
    assert props["upgradeStatus"]["firmwareUpdateStatus"] == "available"
    # its Location URL answers the failure with the operation's error
    status, _headers, body = call(emulator, "GET", local(headers["location"], emulator))
    assert status == 500 and json.loads(body)["error"]["code"] == "UpgradeFailed"


def test_an_upgrade_failure_with_the_scenarios_own_error(emulator):
    error = {"code": "FirmwareUpgradeTimedOut", "message": "The upgrade did not finish in time."}
    load(emulator, upgrade={"pending": "6.2.1", "duration": 0.2, "result": "Failed", "error": error})
    status, headers, _body = post(emulator, "upgrade")
    assert status == 202
    assert until_done(emulator, headers)[0]["error"] == error and health(emulator)[0] == "UpgradeFailed"


@pytest.mark.parametrize("state", ["Stopped", "Transitioning", "Flushing"])
def test_a_pending_upgrade_is_refused_from_a_state_that_does_not_allow_it(emulator, state):
    load(emulator, state=state, upgrade={"pending": "6.2.1"})
    status, _headers, body = post(emulator, "upgrade")
    assert status == 409 and json.loads(body)["error"]["code"] == "Conflict"
    assert emulator.actions("c1")["upgrade"] == 0


def test_a_failed_start_reads_start_failed_and_may_be_started_again(emulator):
    load(emulator, state="Stopped", start={"duration": 0.2, "result": "Failed"})
    status, headers, _body = post(emulator, "start")
    assert status == 202
    final, _seen = until_done(emulator, headers)
    assert final["status"] == "Failed" and final["error"]["code"]
    assert health(emulator)[0] == "StartFailed"
    assert post(emulator, "start")[0] == 202


def test_actions_on_a_cache_that_does_not_exist(emulator):
    load(emulator)
    missing = CACHE.replace("/c1", "/nope")
    for action in ("stop", "start", "upgrade"):
        status, _headers, body = post(emulator, action, missing)
        assert status == 404 and json.loads(body)["error"]["code"] == "ResourceNotFound"


def test_a_bad_action_setting_is_refused_and_changes_nothing(emulator):
    load(emulator, state="Stopped")
    for bad in ({"stop": "fast"}, {"upgrade": ["6.2.1"]}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            emulator.load({"caches": [dict({"name": "c1", "resource_group": "rg"}, **bad)]})
        assert refused.value.code == 400
    assert emulator.state()["caches"][0]["state"] == "Stopped"


def test_a_processed_fault_starts_the_action_before_it_answers_in_its_place(emulator):
    emulator.load(dict(emulator_scenario(stop={"duration": 0.3}), faults=[
        {"on": "cache_action", "kind": "status", "status": 500, "processed": True}]))
    status, headers, _body = post(emulator, "stop")
    assert status == 500 and not OPERATION_HEADERS & set(headers)
    assert emulator.actions("c1")["stop"] == 1 and health(emulator)[0] == "Stopping"  # it was sent all the same
    deadline = time.monotonic() + BOUND
    while health(emulator)[0] != "Stopped":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert requests_of(emulator, "cache_action")[-1]["fault"] == "status:500"


@pytest.mark.parametrize("action, spec", [
    ("start", {}),  # a running cache: nothing to start (the recorded 204)
    ("stop", {"state": "Flushing"}),  # refused (409) on the normal path
    ("upgrade", {}),  # nothing pending
])
def test_a_processed_fault_starts_nothing_the_normal_path_would_not(emulator, action, spec):
    emulator.load(dict(emulator_scenario(**spec), faults=[
        {"on": "cache_action", "kind": "reset", "processed": True}]))
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        post(emulator, action)
    assert emulator.actions("c1") == {"stop": 0, "start": 0, "upgrade": 0}
    assert health(emulator)[0] == spec.get("state", "Healthy")


def emulator_scenario(**spec):
    return {"caches": [dict({"name": "c1", "resource_group": "rg"}, **spec)]}
