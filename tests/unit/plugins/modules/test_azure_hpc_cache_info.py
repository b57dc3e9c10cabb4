# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.modules import azure_hpc_cache_info
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, SUB, FakeRaw, module_runner

LIST = "subscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches" % SUB


@pytest.fixture
def run_module(monkeypatch, capsys, make_client, tmp_path):
    return module_runner(monkeypatch, capsys, make_client, tmp_path, azure_hpc_cache_info.main)


def test_lists_a_resource_group_and_summarizes(run_module):
    def arm(method, url):
        assert method == "GET" and url == ARM + LIST + "?api-version=2026-01-01"
        return FakeRaw(200, {"value": [{"name": "c1", "id": "/" + LIST + "/c1",
                                        "properties": {"health": {"state": "Healthy"}}}]})
    result, unused = run_module({"resource_group": "rg", "subscription_id": SUB}, arm)
    assert result["changed"] is False
    assert [(c["name"], c["resource_group"], c["health_state"]) for c in result["caches"]] == [("c1", "rg", "Healthy")]


def test_a_resource_group_that_does_not_exist_lists_nothing(run_module):
    missing = FakeRaw(404, {"error": {"code": "ResourceGroupNotFound", "message": "gone"}})
    result, unused = run_module({"resource_group": "rg", "subscription_id": SUB}, lambda m, u: missing)
    assert result["caches"] == [] and "failed" not in result


def test_a_named_cache_that_does_not_exist_fails(run_module):
    missing = FakeRaw(404, {"error": {"code": "ResourceNotFound", "message": "no c9"}})
    result, unused = run_module({"name": "c9", "resource_group": "rg", "subscription_id": SUB}, lambda m, u: missing)
    assert result["failed"] is True and result["msg"].startswith("ResourceNotFound (HTTP 404): no c9")


@pytest.mark.parametrize("args, fragment", [
    ({"name": "c1"}, "missing parameter(s) required by 'name': resource_group"),
    ({"name": "c 1", "resource_group": "rg"}, "name: 'c 1' must be 1 to 80 characters"),
    ({"resource_group": "rg", "timeout": 0}, "timeout: 0 must be an integer greater than 0"),
])
def test_bad_input_fails_before_any_request(run_module, args, fragment):
    result, built = run_module(dict(args, subscription_id=SUB))
    assert result["failed"] is True and fragment in result["msg"] and built == []
