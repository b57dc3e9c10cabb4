# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""azure_hpc_cache_storage_target and _info through ansible-playbook against the emulator.

The emulator answers storage-target actions as the service was recorded answering them (202 with both
headers and signed status URLs: tests/fixtures/recorded/storage_target_actions.json, and
test_recorded_targets.py); every other answer the API allows (200, 202 with either or both headers,
204 with or without a header) is tried too.
"""

from __future__ import annotations

import pytest

from conftest import requests_of, scenario  # pylint: disable=import-error

MODES = ["recorded_202", "async", "location", "recorded", "bare204", "sync200", "sync204"]


def targets(*specs, **cache):
    """Cache c1 in rg with storage targets filer-01 and blob-01, or the given specs; the recorded
    durations a tenth as long (a flush 0.8 s, a dnsRefresh 3.3 s) unless time_scale says otherwise."""
    cache.setdefault("time_scale", 0.1)
    return scenario(storage_targets=list(specs) or [{"name": "filer-01"}, {"name": "blob-01", "target_type": "blobNfs"}],
                    **cache)


def target_task(runner, args=None, run_args=(), module="azure_hpc_cache_storage_target"):
    task = {"cache_name": "c1", "resource_group": "rg"}
    if module == "azure_hpc_cache_storage_target":
        task.update(name="filer-01", state="suspended", poll_interval=1)
    task.update(args or {})
    return runner.play([{"azure_hpc.cache." + module: task}], args=run_args)


def actions_sent(emulator, target="filer-01"):
    return [e["action"] for e in requests_of(emulator, "target_action", "POST") if e.get("target") == target]


def test_info_lists_every_target_with_its_junctions(runner, emulator):
    emulator.load(dict(targets(*({"name": "t-%02d" % i} for i in range(5))), page_size=2))
    r = target_task(runner, module="azure_hpc_cache_storage_target_info").result
    assert [t["name"] for t in r["storage_targets"]] == ["t-%02d" % i for i in range(5)]
    first = r["storage_targets"][0]
    assert first["state"] == "Ready" and first["target_type"] == "nfs3" and first["provisioning_state"] == "Succeeded"
    assert first["junctions"] == [{"namespace_path": "/t-00", "target_path": "/", "nfs_export": "/exports/t-00",
                                   "nfs_access_policy": "default"}]
    assert first["properties"]["nfs3"]["target"] == "10.0.0.30"
    assert len(requests_of(emulator, "targets")) == 3  # three pages, nextLink followed


def test_info_of_one_target_and_of_a_missing_one(runner, emulator):
    emulator.load(targets())
    one, missing = runner.play([
        {"azure_hpc.cache.azure_hpc_cache_storage_target_info": {"cache_name": "c1", "resource_group": "rg",
                                                                 "name": "blob-01"}},
        {"azure_hpc.cache.azure_hpc_cache_storage_target_info": {"cache_name": "c1", "resource_group": "rg",
                                                                 "name": "nope"}},
    ]).results
    assert [t["target_type"] for t in one["storage_targets"]] == ["blobNfs"]
    assert missing["failed"] is True and missing["msg"].startswith("NotFound (HTTP 404)")


def test_suspend_flushes_first_then_suspends_and_a_rerun_changes_nothing(runner, emulator):
    emulator.load(targets())
    first, second = runner.play([
        {"azure_hpc.cache.azure_hpc_cache_storage_target": {"cache_name": "c1", "resource_group": "rg",
                                                            "name": "filer-01", "state": "suspended",
                                                            "poll_interval": 1}}] * 2).results
    assert first["changed"] is True and first["status"] == "Succeeded"
    assert first["state_before"] == "Ready" and first["state_after"] == "Suspended"
    assert [(o["action"], o["status"], o["status_code"]) for o in first["operations"]] == [
        ("flush", "Succeeded", 202), ("suspend", "Succeeded", 202)]
    assert all(o["operation_url"] for o in first["operations"])
    assert second["changed"] is False and second["operations"] == [] and second["state_before"] == "Suspended"
    # the emulator answers 409 to a suspend sent while the flush runs: none was
    assert actions_sent(emulator) == ["flush", "suspend"]
    assert emulator.target("c1", "filer-01")["state"] == "Suspended"
    assert emulator.target("c1", "blob-01")["sent"] == {"flush": 0, "suspend": 0, "resume": 0, "dnsRefresh": 0}


def test_resume_with_dns_refresh_and_a_rerun_changes_nothing(runner, emulator):
    emulator.load(targets({"name": "filer-01", "state": "Suspended"}))
    task = {"cache_name": "c1", "resource_group": "rg", "name": "filer-01", "state": "active", "dns_refresh": True,
            "poll_interval": 1}
    first, second = runner.play([{"azure_hpc.cache.azure_hpc_cache_storage_target": task}] * 2).results
    assert [o["action"] for o in first["operations"]] == ["resume", "dns_refresh"]
    assert first["changed"] is True and first["state_after"] == "Ready"
    assert second["changed"] is False and second["operations"] == []
    assert actions_sent(emulator) == ["resume", "dnsRefresh"]


@pytest.mark.parametrize("mode", MODES)
def test_every_answer_the_api_allows_ends_suspended_with_one_request_each(runner, emulator, mode):
    emulator.load(targets({"name": "filer-01", "action": {"mode": mode, "duration": 2}}))
    r = target_task(runner).result
    assert r["status"] == "Succeeded" and r["state_after"] == "Suspended", r
    assert actions_sent(emulator) == ["flush", "suspend"]


def test_operation_over_before_the_target_shows_it_is_waited_for(runner, emulator):
    emulator.load(targets({"name": "filer-01", "actions": {"suspend": {"duration": 1, "lag": 3}}}))
    r = target_task(runner, {"flush": False}).result
    assert r["status"] == "Succeeded" and r["state_after"] == "Suspended"
    assert r["polls"] >= 3  # the operation, then the target until it read Suspended


def test_check_mode_sends_nothing(runner, emulator):
    emulator.load(targets())
    r = target_task(runner, run_args=["--check"]).result
    assert r["changed"] is True and r["operations"] == [] and r["state_after"] == "Ready"
    assert requests_of(emulator, "target_action") == []


def test_without_wait_the_flush_is_waited_for_and_the_suspend_is_in_progress(runner, emulator):
    emulator.load(targets({"name": "filer-01", "action": {"duration": 2}}))
    r = target_task(runner, {"wait": False}).result
    assert r["status"] == "InProgress" and [o["status"] for o in r["operations"]] == ["Succeeded", "InProgress"]
    assert r["operations"][1]["operation_url"]
    again = target_task(runner).result  # a rerun sends nothing more once the target reads Suspended
    assert again["status"] == "Succeeded" and again["state_after"] == "Suspended"
    assert actions_sent(emulator) == ["flush", "suspend"]


def test_a_failed_suspend_fails_the_task_with_the_service_error(runner, emulator):
    emulator.load(targets({"name": "filer-01", "actions": {"suspend": {
        "duration": 1, "result": "Failed", "error": {"code": "TargetUnreachable", "message": "filer down"}}}}))
    r = target_task(runner).result
    assert r["failed"] is True and "The suspend operation failed: TargetUnreachable: filer down" in r["msg"]
    assert [(o["action"], o["status"]) for o in r["operations"]] == [("flush", "Succeeded"), ("suspend", "Failed")]
    assert r["state_after"] == "Ready"


def test_reset_suspend_not_taken_is_sent_once_more(runner, emulator):
    emulator.load(dict(targets(), faults=[{"on": "target_action", "kind": "reset", "after": 1}]))
    r = target_task(runner).result
    assert r["status"] == "Succeeded" and r["state_after"] == "Suspended"
    statuses = [e["status"] for e in requests_of(emulator, "target_action", "POST")]
    assert statuses == [202, "reset", 202] and emulator.target("c1", "filer-01")["sent"]["suspend"] == 1


BAD_INPUT = [
    ("name", "bad/name", "pattern ^[-0-9a-zA-Z_]{1,80}$"),
    ("name", "x" * 81, "1 to 80 characters"),
    ("cache_name", "c 1", "pattern ^[-0-9a-zA-Z_]{1,80}$"),
    ("resource_group", "rg/..", "must be 1 to 90 characters"),
    ("wait_timeout", 0, "greater than 0"),
]


def test_bad_input_is_refused_before_any_request(runner, emulator):
    # one playbook, a task per bad input (each its own module run, failing on its own)
    emulator.load(targets())
    base = {"cache_name": "c1", "resource_group": "rg", "name": "filer-01", "state": "suspended", "poll_interval": 1}
    run = runner.play([{"azure_hpc.cache.azure_hpc_cache_storage_target": dict(base, **{option: value})}
                       for option, value, _rule in BAD_INPUT])
    assert len(run.results) == len(BAD_INPUT), run.output
    for (option, _value, rule), r in zip(BAD_INPUT, run.results):
        assert r["failed"] is True and r["msg"].startswith(option + ":") and rule in r["msg"], (option, r)
    assert requests_of(emulator, "target") == [] and requests_of(emulator, "target_action") == []
