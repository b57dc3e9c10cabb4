# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.modules import azure_hpc_cache_storage_target_info
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, SUB, FakeRaw, module_runner

TARGETS = "subscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/c1/storageTargets" % SUB


@pytest.fixture
def run_module(monkeypatch, capsys, make_client, tmp_path):
    return module_runner(monkeypatch, capsys, make_client, tmp_path, azure_hpc_cache_storage_target_info.main)


def test_lists_the_targets_of_a_cache_with_the_read_options(run_module):
    def arm(method, url):
        assert method == "GET" and url == ARM + TARGETS + "?api-version=2026-01-01"
        return FakeRaw(200, {"value": [{"name": "f1", "id": "/" + TARGETS.replace("storageTargets", "storagetargets") + "/f1",
                                        "properties": {"state": "Ready", "targetType": "nfs3"}}]})
    result, built = run_module({"cache_name": "c1", "resource_group": "rg", "subscription_id": SUB}, arm)
    assert result["changed"] is False and built == [1]
    assert [(t["name"], t["state"]) for t in result["storage_targets"]] == [("f1", "Ready")]


@pytest.mark.parametrize("args, fragment", [
    ({"cache_name": "c 1", "resource_group": "rg"}, "cache_name: 'c 1' must be 1 to 80 characters"),
    ({"cache_name": "c1", "resource_group": "rg", "name": "f 1"}, "name: 'f 1' must be"),
    ({"cache_name": "c1", "resource_group": "rg", "timeout": 0}, "timeout: 0 must be an integer greater than 0"),
    ({"cache_name": "c1", "resource_group": "rg", "api_version": "2026 01"}, "api_version: "),
    ({"resource_group": "rg"}, "missing required arguments: cache_name"),
])
def test_bad_input_fails_before_any_request(run_module, args, fragment):
    result, built = run_module(dict(args, subscription_id=SUB))
    assert result["failed"] is True and fragment in result["msg"] and built == []
