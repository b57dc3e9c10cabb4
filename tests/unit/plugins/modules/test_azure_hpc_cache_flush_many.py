# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""main() of the many-caches module called as ansible-core calls it."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ConfigurationError
from ansible_collections.azure_hpc.cache.plugins.modules import azure_hpc_cache_flush_many
from ansible_collections.azure_hpc.cache.tests.unit.fakes import SUB, FakeRaw, FakeTokens, FleetArm, module_runner


@pytest.fixture
def run_many(monkeypatch, capsys, make_client, tmp_path):
    return module_runner(monkeypatch, capsys, make_client, tmp_path, azure_hpc_cache_flush_many.main)


def caches(*names, **extra):
    return [dict({"name": name, "resource_group": "rg"}, **extra) for name in names]


def test_every_cache_flushed_with_a_summary(run_many):
    arm = FleetArm({"a": "Healthy", "b": "Stopped"})
    result, built = run_many({"caches": caches("a", "b"), "subscription_id": SUB, "api_version": "v",
                              "max_concurrent": 5}, arm)
    assert result["changed"] is True and "failed" not in result
    assert [(c["label"], c["status"]) for c in result["caches"]] == [("a", "Succeeded"), ("b", "Skipped")]
    assert result["failed_caches"] == [] and result["msg"] == "2 caches: 1 Skipped, 1 Succeeded"
    assert built == [2]  # the connection pool is sized for the caches, not for max_concurrent


def test_the_task_fails_when_a_cache_fails_and_still_reports_all(run_many):
    missing = FakeRaw(404, {"error": {"code": "ResourceNotFound", "message": "gone"}})
    arm = FleetArm({"a": "Healthy", "x": missing})
    result, unused = run_many({"caches": caches("a", "x"), "subscription_id": SUB, "api_version": "v"}, arm)
    assert result["failed"] is True and result["failed_caches"] == ["x"]
    assert result["msg"].startswith("1 of 2 caches failed: x: ResourceNotFound (HTTP 404): gone")
    assert result["caches"][0]["status"] == "Succeeded" and result["changed"] is True
    assert "Traceback" not in result["msg"]


def test_each_entry_may_name_its_subscription(run_many):
    arm = FleetArm({"a": "Healthy"})
    result, unused = run_many({"caches": caches("a", subscription_id=SUB), "api_version": "v"}, arm)
    assert result["caches"][0]["subscription_id"] == SUB and result["caches"][0]["status"] == "Succeeded"


@pytest.mark.parametrize("args,fragment", [
    ({"caches": caches("bad name"), "subscription_id": SUB}, "1 of 1 caches failed: bad name: caches[0].name: "
                                                             "'bad name' must be 1 to 80"),
    ({"caches": caches("ok", resource_group="rg."), "subscription_id": SUB}, "1 of 1 caches failed: ok: "
                                                                             "caches[0].resource_group: 'rg.'"),
    ({"caches": caches("ok")}, "1 of 1 caches failed: ok: caches[0].subscription_id: is required"),
    ({"caches": caches("ok", subscription_id="nope")}, "1 of 1 caches failed: ok: caches[0].subscription_id: "
                                                       "'nope' must be a GUID"),
    ({"caches": caches("ok", allowed_states=[""]), "subscription_id": SUB}, "1 of 1 caches failed: ok: "
                                                                            "caches[0].allowed_states: "),
    ({"caches": caches("ok"), "subscription_id": SUB, "max_concurrent": 0}, "max_concurrent: 0 must be an integer"),
    ({"caches": caches("ok"), "subscription_id": SUB, "max_concurrent": 101}, "max_concurrent: 101 must be at most 100"),
    ({"caches": caches("ok"), "subscription_id": SUB, "wait_timeout": 0}, "wait_timeout: 0 must be an integer"),
])
def test_bad_input_fails_before_any_request(run_many, args, fragment):
    result, built = run_many(args)  # building a client would fail the test
    assert result["failed"] is True and result["msg"].startswith(fragment), result["msg"]
    assert built == []


def test_one_bad_entry_fails_alone_and_the_others_are_flushed(run_many):
    # One host of a play batch with bad input (an empty resource group) must not stop the others' flush.
    arm = FleetArm({"a": "Healthy", "b": "Healthy"})
    entries = caches("a") + [{"name": "x", "resource_group": "", "label": "host-x"}] + caches("b")
    result, unused = run_many({"caches": entries, "subscription_id": SUB, "api_version": "v"}, arm)
    assert result["failed"] is True and result["failed_caches"] == ["host-x"]
    assert [r["failed"] for r in result["caches"]] == [False, True, False]
    assert result["caches"][1]["msg"].startswith("caches[1].resource_group:")
    assert arm.posts == {"a": 1, "b": 1}


def test_an_empty_list_changes_nothing_and_connects_to_nothing(run_many):
    result, built = run_many({"caches": []})
    assert result["changed"] is False and result["caches"] == [] and built == [] and result["elapsed"] == 0.0


def test_a_credential_problem_fails_once_before_any_cache(run_many, monkeypatch):
    def no_token(self, force_refresh=False, rejected=None):
        raise ConfigurationError("Could not get a token with managed identity: no endpoint")

    monkeypatch.setattr(FakeTokens, "token", no_token)
    arm = FleetArm({"a": "Healthy", "b": "Healthy"})
    result, unused = run_many({"caches": caches("a", "b"), "subscription_id": SUB}, arm)
    assert result["failed"] is True and result["msg"] == "Could not get a token with managed identity: no endpoint"
    assert "caches" not in result and arm.posts == {} and arm.most_active == 0
