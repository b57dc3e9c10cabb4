# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import (
    MAX_PAGES,
    CacheOperations,
    CacheRef,
    TargetRef,
    resource_group_of,
)
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, SUB, FakeRaw

CACHE = "subscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/c1" % SUB


def test_urls_of_a_cache_its_actions_and_its_storage_targets(make_client):
    ops = CacheOperations(make_client([])[0], "2026-01-01")
    ref = CacheRef(SUB, "rg", "c1")
    assert ops.cache_url(ref) == ARM + CACHE + "?api-version=2026-01-01"
    assert ops.cache_url(ref, "flush") == ARM + CACHE + "/flush?api-version=2026-01-01"
    target = TargetRef(ref, "filer-01")
    assert ops.target_url(target, "dnsRefresh") == ARM + CACHE + "/storageTargets/filer-01/dnsRefresh?api-version=2026-01-01"


def test_no_name_can_change_the_path(make_client):
    ops = CacheOperations(make_client([])[0], "v")
    url = ops.target_url(TargetRef(CacheRef(SUB, "rg", "c1"), "../../x?y#z"))
    assert url.endswith("/storageTargets/..%2F..%2Fx%3Fy%23z?api-version=v")


def test_listing_storage_targets_follows_next_link(make_client):
    client, session = make_client([FakeRaw(200, {"value": [{"name": "a"}], "nextLink": ARM + "page2"}),
                                   FakeRaw(200, {"value": [{"name": "b"}, "junk"]})])
    names = [t["name"] for t in CacheOperations(client, "v").list_targets(CacheRef(SUB, "rg", "c1"))]
    assert names == ["a", "b"]
    assert session.calls[0]["url"] == ARM + CACHE + "/storageTargets?api-version=v"


def endless_pages():
    """Each page links to a new one: the page bound, not the repeat check, must end the listing."""
    counter = {"n": 0}

    def answer(method, url):
        counter["n"] += 1
        return FakeRaw(200, {"value": [], "nextLink": ARM + "page%d" % counter["n"]})

    return answer


def test_a_listing_that_never_ends_is_refused(make_client):
    client, session = make_client(endless_pages())
    with pytest.raises(HpcCacheError, match="exceeds %d pages" % MAX_PAGES):
        CacheOperations(client, "v").list_targets(CacheRef(SUB, "rg", "c1"))
    assert len(session.calls) == MAX_PAGES


@pytest.mark.parametrize("resource_id, group", [
    ("/subscriptions/s/resourceGroups/rg-1/providers/Microsoft.StorageCache/caches/c", "rg-1"),
    ("/subscriptions/s/resourcegroups/RG/providers/x", "RG"),
    ("", None),
    ("/subscriptions/s", None),
])
def test_resource_group_of(resource_id, group):
    assert resource_group_of(resource_id) == group
