# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many flushes from one process: order, isolation, de-duplication, the bound, per-cache counts."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._fleet import FleetFlush, FleetItem
from ansible_collections.azure_hpc.cache.plugins.module_utils._resource import CacheOperations, CacheRef
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, SUB, FakeRaw, FleetArm


def item(name, label=None, allowed=()):
    return FleetItem(label or name, CacheRef(SUB, "rg", name), tuple(allowed))


def flush(make_client, arm, items, max_concurrent=4, check_mode=False):
    client = make_client(arm)[0]
    return FleetFlush(CacheOperations(client, "v"), items, wait=True, wait_timeout=100, poll_interval=5,
                      check_mode=check_mode, max_concurrent=max_concurrent).run()


def test_one_result_per_entry_in_order_with_its_label(make_client):
    arm = FleetArm({"a": "Healthy", "b": "Stopped", "c": "Healthy"})
    results = flush(make_client, arm, [item("a", "host-a"), item("b"), item("c", "host-c")])
    assert [(r["label"], r["name"], r["status"]) for r in results] == [
        ("host-a", "a", "Succeeded"), ("b", "b", "Skipped"), ("host-c", "c", "Succeeded")]
    assert [r["changed"] for r in results] == [True, False, True]
    assert all(r["failed"] is False and r["subscription_id"] == SUB and r["resource_group"] == "rg" for r in results)
    assert arm.posts == {"a": 1, "c": 1}


def test_a_cache_listed_twice_is_flushed_once(make_client):
    arm = FleetArm({"a": "Healthy", "A": "Healthy"})
    results = flush(make_client, arm, [item("a", "one"), FleetItem("two", CacheRef(SUB.upper(), "RG", "A"))])
    assert sum(arm.posts.values()) == 1
    assert [r["label"] for r in results] == ["one", "two"]
    assert results[0]["status"] == results[1]["status"] == "Succeeded"
    assert results[1]["name"] == "A"  # each entry reports the cache as it was given


def test_a_failed_cache_does_not_touch_the_others(make_client):
    missing = FakeRaw(404, {"error": {"code": "ResourceNotFound", "message": "no cache x"}})
    arm = FleetArm({"a": "Healthy", "x": missing, "b": "Healthy"})
    results = flush(make_client, arm, [item("a"), item("x"), item("b")])
    assert [r["failed"] for r in results] == [False, True, False]
    assert results[1]["msg"].startswith("ResourceNotFound (HTTP 404): no cache x")
    assert results[1]["error"]["code"] == "ResourceNotFound" and results[1]["changed"] is False
    assert arm.posts == {"a": 1, "b": 1}


def test_an_unexpected_error_is_one_line_without_a_traceback(make_client):
    arm = FleetArm({"a": "Healthy", "b": ValueError("boom\nTraceback (most recent call last):")})
    results = flush(make_client, arm, [item("a"), item("b")])
    assert results[0]["failed"] is False
    assert results[1]["failed"] is True and results[1]["msg"].startswith("Unexpected ValueError: boom")


def test_each_cache_has_its_own_interlock(make_client):
    arm = FleetArm({"a": "Degraded", "b": "Degraded"})
    results = flush(make_client, arm, [item("a", allowed=["Healthy"]), item("b", allowed=["Healthy", "Degraded"])])
    assert results[0]["failed"] is True and results[0]["status"] == "Refused"
    assert "allowed states are Healthy" in results[0]["msg"]
    assert results[1]["status"] == "Succeeded" and arm.posts == {"b": 1}


def test_check_mode_sends_no_flush(make_client):
    arm = FleetArm({"a": "Healthy", "b": "Healthy"})
    results = flush(make_client, arm, [item("a"), item("b")], check_mode=True)
    assert [r["changed"] for r in results] == [True, True] and arm.posts == {}


@pytest.mark.parametrize("bound", [1, 3])
def test_no_more_than_max_concurrent_at_a_time(make_client, bound):
    arm = FleetArm({"c%d" % n: "Healthy" for n in range(8)}, hold=0.02)
    results = flush(make_client, arm, [item("c%d" % n) for n in range(8)], max_concurrent=bound)
    assert all(r["status"] == "Succeeded" for r in results) and sum(arm.posts.values()) == 8
    assert arm.most_active == bound  # bounded, and the bound is used


def test_status_requests_are_counted_per_cache(make_client):
    accepted = FakeRaw(202, None, {"Azure-AsyncOperation": ARM + "subscriptions/%s/providers/Microsoft.StorageCache/"
                                   "locations/eastus/ascOperations/1?api-version=v" % SUB, "Retry-After": "1"})
    arm = FleetArm({"c%d" % n: "Healthy" for n in range(6)}, flush=lambda name: accepted, hold=0.05)
    results = flush(make_client, arm, [item("c%d" % n) for n in range(6)], max_concurrent=6)
    assert [r["polls"] for r in results] == [1] * 6  # not the requests of the other threads
