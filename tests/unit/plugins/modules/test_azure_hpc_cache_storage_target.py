# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The storage-target modules' main(), as ansible-core calls them."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.modules import (
    azure_hpc_cache_storage_target,
    azure_hpc_cache_storage_target_info,
)
from ansible_collections.azure_hpc.cache.tests.unit.fakes import OP, SUB, FakeRaw, TargetArm, module_runner, target

BASE = {"cache_name": "c1", "resource_group": "rg", "name": "filer-01", "subscription_id": SUB, "api_version": "v",
        "poll_interval": 1}


@pytest.fixture
def run_target(monkeypatch, capsys, make_client, tmp_path):
    return module_runner(monkeypatch, capsys, make_client, tmp_path, azure_hpc_cache_storage_target.main)


@pytest.fixture
def run_info(monkeypatch, capsys, make_client, tmp_path):
    return module_runner(monkeypatch, capsys, make_client, tmp_path, azure_hpc_cache_storage_target_info.main)


def test_suspend_result_keys(run_target):
    arm = TargetArm(["Ready", "Suspended"], answers={"suspend": [FakeRaw(202, None, {"Azure-AsyncOperation": OP})]},
                    ops=[FakeRaw(200, {"status": "Succeeded"})])
    result, unused = run_target(dict(BASE, state="suspended", flush=False), arm)
    assert result["changed"] is True and result["status"] == "Succeeded"
    assert result["state_before"] == "Ready" and result["state_after"] == "Suspended"
    assert result["operations"] == [{"action": "suspend", "status_code": 202, "operation_url": OP, "status": "Succeeded"}]
    assert set(result) >= {"msg", "polls", "elapsed"}


def test_a_failure_keeps_the_operations_sent(run_target):
    arm = TargetArm(["Suspended"], answers={"resume": [FakeRaw(409, {"error": {"code": "Conflict", "message": "no"}})]})
    result, unused = run_target(dict(BASE, state="active"), arm)
    assert result["failed"] is True and result["msg"].startswith("Conflict (HTTP 409)")
    assert result["operations"] == [{"action": "resume", "status_code": 409, "operation_url": None, "status": "Failed"}]


@pytest.mark.parametrize("override, fragment", [
    ({"name": "bad/name"}, "name: 'bad/name' must be 1 to 80 characters"),
    ({"name": "x" * 81}, "name: "),
    ({"cache_name": "c 1"}, "cache_name: 'c 1' must be 1 to 80 characters"),
    ({"state": "gone"}, "value of state must be one of: flushed, suspended, active"),
    ({"wait_timeout": 0}, "wait_timeout: 0 must be an integer greater than 0"),
])
def test_bad_input_fails_before_any_request(run_target, override, fragment):
    result, built = run_target(dict(dict(BASE, state="suspended"), **override))
    assert result["failed"] is True and fragment in result["msg"] and built == []


def test_info_of_one_target(run_info):
    junction = {"namespacePath": "/p", "targetPath": "/t", "nfsExport": "/e"}
    arm = TargetArm([target("Busy", [junction])])
    args = {k: v for k, v in BASE.items() if k != "poll_interval"}
    result, unused = run_info(args, arm)
    [one] = result["storage_targets"]
    assert one["state"] == "Busy" and one["target_type"] == "nfs3"
    assert one["junctions"] == [{"namespace_path": "/p", "target_path": "/t", "nfs_export": "/e",
                                 "nfs_access_policy": None}]
