# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""main() called as ansible-core calls it: arguments in, one JSON result out."""

from __future__ import annotations

import json

import pytest

from ansible_collections.azure_hpc.cache.plugins.modules import azure_hpc_cache_flush
from ansible_collections.azure_hpc.cache.tests.unit.fakes import SUB, Arm, FakeRaw, accepted, module_runner


@pytest.fixture
def run_module(monkeypatch, capsys, make_client, tmp_path):
    return module_runner(monkeypatch, capsys, make_client, tmp_path, azure_hpc_cache_flush.main)


BASE = {"name": "c1", "resource_group": "rg", "subscription_id": SUB, "api_version": "v"}


def test_flush_result_keys(run_module):
    result, unused = run_module(dict(BASE, poll_interval=1), Arm(["Healthy"], posts=[accepted()], ops=[
        FakeRaw(200, {"status": "Succeeded"})]))
    assert result["changed"] is True and result["status"] == "Succeeded" and result["status_code"] == 202
    assert set(result) >= {"status", "health_state", "status_code", "operation_url", "polls", "elapsed", "msg"}


def test_alias_cache_name(run_module):
    args = dict(BASE)
    args["cache_name"] = args.pop("name")
    result, unused = run_module(args, Arm(["Stopped"]))
    assert result["status"] == "Skipped"


@pytest.mark.parametrize("override,fragment", [
    ({"name": "bad name"}, "name: 'bad name' must be 1 to 80 characters"),
    ({"name": "x" * 81}, "name: "),
    ({"resource_group": "rg."}, "resource_group: 'rg.' must be 1 to 90 characters"),
    ({"subscription_id": "not-a-guid"}, "subscription_id: 'not-a-guid' must be a GUID"),
    ({"subscription_id": None}, "subscription_id: is required"),
    ({"api_version": ""}, "api_version: '' must be a non-empty string"),
    ({"wait_timeout": 0}, "wait_timeout: 0 must be an integer greater than 0"),
    ({"poll_interval": -1}, "poll_interval: -1 must be an integer greater than 0"),
])
def test_bad_input_fails_before_any_request(run_module, override, fragment):
    result, built = run_module(dict(BASE, **override))
    assert result["failed"] is True
    assert fragment in result["msg"]
    assert built == []
    assert "Traceback" not in result["msg"]


def test_failure_keeps_what_was_learnt(run_module):
    arm = Arm(["Healthy"], posts=[accepted("1")], ops=[FakeRaw(200, {"status": "InProgress"})] * 9)
    result = run_module(dict(BASE, wait_timeout=3, poll_interval=1), arm)[0]
    assert result["failed"] is True
    assert result["changed"] is True and result["status_code"] == 202
    assert result["operation_url"].startswith("https://management.example.test/")
    assert "Timed out" in result["msg"]


def test_unexpected_bug_has_no_traceback_in_msg(run_module, monkeypatch):
    from ansible_collections.azure_hpc.cache.plugins.module_utils._actions import cache_flush as _cache

    def boom(self, body, state):
        raise KeyError("secret-free bug")

    monkeypatch.setattr(_cache.FlushTask, "decide", boom)
    result, unused = run_module(BASE, Arm(["Healthy"]))
    assert result["failed"] is True
    assert result["msg"].startswith("Unexpected KeyError")
    assert "Traceback" not in result["msg"]
    assert "secret-free bug" in result["msg"]


def test_secret_is_never_echoed(run_module):
    result, unused = run_module(dict(BASE, secret="Sup3rS3cret!", name="bad name"))
    assert "Sup3rS3cret!" not in json.dumps(result)
