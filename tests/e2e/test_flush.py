# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""azure_hpc_cache_flush through ansible-playbook against the emulator, one documented behaviour each."""

from __future__ import annotations

import pytest

from conftest import SUB, requests_of, scenario  # pylint: disable=import-error


def posts(emu):
    return requests_of(emu, "flush", "POST")


@pytest.mark.parametrize("mode,code", [("sync200", 200), ("sync204", 204)])
def test_synchronous_flush(runner, emulator, mode, code):
    emulator.load(scenario(flush={"mode": mode}))
    r = runner.flush().result
    assert r["changed"] is True and r["status"] == "Succeeded" and r["status_code"] == code
    assert r["health_state"] == "Healthy" and "operation_url" not in r
    assert emulator.flushes("c1") == 1


def test_async_operation_is_polled_to_success(runner, emulator):
    emulator.load(scenario(flush={"mode": "async", "duration": 2.5, "retry_after": 1}))
    r = runner.flush().result
    assert r["status"] == "Succeeded" and r["status_code"] == 202
    assert "/ascOperations/" in r["operation_url"] and "monitor=true" not in r["operation_url"]
    polls = requests_of(emulator, "operation")
    assert len(polls) == r["polls"] and 2 <= r["polls"] <= 4  # 2.5 s polled each 1 s
    assert not requests_of(emulator, "location")
    assert all(e["token"] == "valid" for e in emulator.log() if e["kind"] in ("get", "flush", "operation"))


def test_location_only_operation(runner, emulator):
    emulator.load(scenario(flush={"mode": "location", "duration": 1.5, "retry_after": 1}))
    r = runner.flush().result
    assert r["status"] == "Succeeded" and "monitor=true" in r["operation_url"]
    assert len(requests_of(emulator, "location")) == r["polls"] >= 2


def test_failed_operation_reports_code_and_message(runner, emulator):
    emulator.load(scenario(flush={"duration": 1, "result": "Failed",
                                  "error": {"code": "StorageTargetUnreachable", "message": "NFS target down"}}))
    r = runner.flush().result
    assert r["failed"] is True and r["changed"] is True
    assert "StorageTargetUnreachable: NFS target down" in r["msg"]
    assert r["error"]["code"] == "StorageTargetUnreachable"


def test_canceled_operation_without_error(runner, emulator):
    emulator.load(scenario(flush={"duration": 1, "result": "Canceled"}))
    r = runner.flush().result
    assert r["failed"] is True and r["msg"] == "The flush operation was canceled" and r["status"] == "Canceled"


def test_no_wait_then_rerun_attaches(runner, emulator):
    # the flush runs 3 s from the second run's first read, however late that process starts
    emulator.load(scenario(flush={"duration": 3, "retry_after": 1, "runs_from": "first_read"}))
    first = runner.flush({"wait": False}).result
    assert first["status"] == "InProgress" and first["changed"] is True and first["operation_url"]
    second = runner.flush().result
    assert second["changed"] is False and second["status"] == "Succeeded"
    assert second["health_state"] == "Flushing" and second["health_state_after"] == "Healthy"
    assert len(posts(emulator)) == 1 and emulator.flushes("c1") == 1


def test_timeout_fails_with_operation_url(runner, emulator):
    emulator.load(scenario(flush={"duration": 60, "retry_after": 1}))
    r = runner.flush({"wait_timeout": 3}).result
    assert r["failed"] is True and "Timed out" in r["msg"]
    assert "/ascOperations/" in r["operation_url"] and r["status"] == "InProgress"
    assert 2.5 <= r["elapsed"] <= 6


def test_already_flushing_is_waited_for_not_flushed(runner, emulator):
    emulator.load(scenario(state="Flushing", flushing_for=2))
    r = runner.flush().result
    assert r["changed"] is False and r["status"] == "Succeeded" and r["health_state"] == "Flushing"
    assert posts(emulator) == []


@pytest.mark.parametrize("state", ["Stopped", "Stopping"])
def test_stopped_cache_is_skipped(runner, emulator, state):
    emulator.load(scenario(state=state))
    r = runner.flush().result
    assert r["changed"] is False and r["status"] == "Skipped" and state in r["msg"]
    assert posts(emulator) == []


def test_not_found_names_arm_code(runner, emulator):
    emulator.load(scenario())
    r = runner.flush({"name": "missing"}).result
    assert r["failed"] is True and r["msg"].startswith("ResourceNotFound (HTTP 404): The Resource")
    assert r["request_id"] and r["request_id"] in r["msg"]
    assert posts(emulator) == []


def test_conflict_on_post_is_reported_not_retried(runner, emulator):
    emulator.load(scenario(faults=[{"on": "flush", "kind": "status", "status": 409, "code": "Conflict"}]))
    r = runner.flush().result
    assert r["failed"] is True and r["msg"].startswith("Conflict (HTTP 409)")
    assert len(posts(emulator)) == 1 and emulator.flushes("c1") == 0


def test_429_then_success_flushes_exactly_once(runner, emulator):
    emulator.load(scenario(flush={"duration": 1}, faults=[
        {"on": "flush", "kind": "status", "status": 429, "count": 2, "retry_after": 1}]))
    r = runner.flush().result
    assert r["status"] == "Succeeded" and r["changed"] is True
    assert [e["status"] for e in posts(emulator)] == [429, 429, 204]
    assert emulator.flushes("c1") == 1


def test_5xx_on_polls_are_retried(runner, emulator):
    emulator.load(scenario(flush={"duration": 2}, faults=[
        {"on": "operation", "kind": "status", "status": 503, "count": 2},
        {"on": "operation", "kind": "status", "status": 500, "count": 1}]))
    r = runner.flush().result
    assert r["status"] == "Succeeded"
    statuses = [e["status"] for e in requests_of(emulator, "operation")]
    assert statuses[:3] == [503, 503, 500] and statuses[-1] == 200
    # the client resent the 5xx answers within one status read: polls counts reads, each ended by a 200
    assert r["polls"] == statuses.count(200) < len(statuses)


def test_token_expiring_during_a_long_wait_is_renewed(runner, emulator):
    emulator.load(scenario(token_lifetime=3, flush={"duration": 8, "retry_after": 1}))
    r = runner.flush().result
    assert r["status"] == "Succeeded"
    assert len(emulator.state()["tokens_issued"]) >= 3
    assert not [e for e in emulator.log() if e["status"] == 401]


def test_check_mode_sends_no_post(runner, emulator):
    emulator.load(scenario())
    run = runner.flush(args=["--check"])
    r = run.result
    assert r["changed"] is True and r["status"] == "Succeeded" and "Check mode" in r["msg"]
    assert posts(emulator) == [] and emulator.flushes("c1") == 0
    assert [e["kind"] for e in emulator.log() if e["kind"] != "token"] == ["metadata", "get"]


BAD_INPUT = [
    ({"name": "../../x"}, "name: '../../x' must be"),
    ({"name": "c" * 81}, "name: "),
    ({"resource_group": "rg."}, "resource_group: 'rg.'"),
    ({"resource_group": "rg/../other"}, "resource_group: "),
    ({"subscription_id": "nope"}, "subscription_id: 'nope' must be a GUID"),
    ({"wait_timeout": 0}, "wait_timeout: 0 must be an integer greater than 0"),
    ({"poll_interval": 0}, "poll_interval: 0"),
    ({"api_version": " "}, "api_version: ' '"),
]


def test_bad_input_sends_no_request(runner, emulator):
    # one playbook, a task per bad input (each its own module run, failing on its own)
    emulator.load(scenario())
    base = {"name": "c1", "resource_group": "rg", "poll_interval": 1}
    run = runner.play([{"azure_hpc.cache.azure_hpc_cache_flush": dict(base, **args)} for args, _rule in BAD_INPUT])
    assert len(run.results) == len(BAD_INPUT), run.output
    for (args, fragment), r in zip(BAD_INPUT, run.results):
        assert r["failed"] is True and fragment in r["msg"], (args, r)
    assert emulator.log() == []


@pytest.mark.parametrize("base", ["foreign", "https", "userinfo", "localhost", "imds"])
def test_status_url_off_the_arm_origin_is_refused(runner, emulator, foreign, base):
    port = emulator.url.rsplit(":", 1)[1]
    status_base = {"foreign": foreign.url,  # a live server on another port: it must see nothing
                   "https": "https://127.0.0.1:" + port,  # another scheme
                   "userinfo": "http://user:pass@127.0.0.1:" + port,
                   "localhost": "http://localhost:" + port,  # another host name for the same address
                   "imds": "http://169.254.169.254"}[base]  # refused before any packet is sent
    foreign.load(scenario())
    emulator.load(scenario(flush={"duration": 1, "status_base": status_base}))
    r = runner.flush().result
    assert r["failed"] is True and "Refusing" in r["msg"]
    assert r["operation_url"].startswith(status_base)
    assert foreign.log() == []
    assert requests_of(emulator, "operation") == [] and requests_of(emulator, "location") == []
    assert emulator.flushes("c1") == 1 and len(posts(emulator)) == 1


def test_reset_after_accepted_post_attaches(runner, emulator):
    emulator.load(scenario(flush={"duration": 2}, faults=[{"on": "flush", "kind": "reset", "processed": True}]))
    r = runner.flush().result
    assert r["status"] == "Succeeded" and r["changed"] is True and "got no clear answer" in r["msg"]
    assert emulator.flushes("c1") == 1 and len(posts(emulator)) == 1


def test_server_error_after_the_flush_started_attaches(runner, emulator):
    emulator.load(scenario(flush={"duration": 2}, faults=[
        {"on": "flush", "kind": "status", "status": 500, "processed": True}]))
    r = runner.flush().result
    assert r["status"] == "Succeeded" and r["changed"] is True
    assert emulator.flushes("c1") == 1 and len(posts(emulator)) == 1


def test_module_defaults_group_sets_auth_once(runner, emulator):
    emulator.load(scenario(flush={"mode": "sync204"}))
    run = runner.play([{"azure_hpc.cache.azure_hpc_cache_flush": {"name": "c1", "resource_group": "rg"},
                        "module_defaults": {"group/azure_hpc.cache.all": {
                            "subscription_id": SUB, "auth_source": "msi",
                            "cloud_environment": emulator.url}}}],
                      env={"AZURE_SUBSCRIPTION_ID": None, "AZURE_CLOUD_ENVIRONMENT": None})
    assert run.result["status_code"] == 204


def test_metadata_2022_list_fallback(runner, emulator):
    emulator.load(scenario(metadata="2022-list", flush={"mode": "sync204"}))
    r = runner.flush().result
    assert r["status_code"] == 204
    versions = [e["query"] for e in requests_of(emulator, "metadata")]
    assert versions == ["api-version=2015-01-01", "api-version=2022-09-01"]


def test_auto_with_no_credentials_fails_fast_and_says_what_it_tried(runner, emulator):
    emulator.load(scenario())
    r = runner.flush(env={"IDENTITY_ENDPOINT": None, "IDENTITY_HEADER": None, "PATH": "/usr/bin:/bin",
                          # aim the instance-metadata probe at a closed loopback port
                          "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9"}).result
    assert r["failed"] is True and "no Azure credentials found; tried" in r["msg"]
    assert requests_of(emulator, "get") == []
