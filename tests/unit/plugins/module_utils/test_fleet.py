# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many flushes from one process: order, isolation, de-duplication, the bound, per-cache counts; and the task
of azure_hpc_cache_flush_many: its options, each entry checked alone, the summary."""

from __future__ import annotations

import threading

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_flush import FLUSH_OPTIONS
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ValidationError
from ansible_collections.azure_hpc.cache.plugins.module_utils._fleet.flush_many import (
    FLEET_OPTIONS,
    MAX_CONCURRENT,
    FleetFlush,
    FleetItem,
    concurrency,
    flush_fleet,
    invalid_result,
    items_of,
    summary_of,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, SUB, FakeRaw, FleetArm

HEADER = "x-ms-ratelimit-remaining-resource"


def item(name, label=None, allowed=()):
    return FleetItem(label or name, CacheRef(SUB, "rg", name), tuple(allowed))


def flush(make_client, arm, items, max_concurrent=4, check_mode=False):
    client = make_client(arm)[0]
    return FleetFlush(CacheOperations(client, "v"), items,
                      options=ActionOptions(wait=True, wait_timeout=100, poll_interval=5, check_mode=check_mode),
                      max_concurrent=max_concurrent).run()


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


class Budget:
    """The service's flush budget on the test's clock: limit flushes per window, 204 with the header, else 429."""

    def __init__(self, clock, limit, window, retry_after=None):
        self.clock, self.limit, self.window, self.retry_after = clock, limit, window, retry_after
        self.lock = threading.Lock()
        self.opened = None
        self.count = 0
        self.answers = []

    def __call__(self, name):
        with self.lock:
            now = self.clock()
            if self.opened is None or now - self.opened >= self.window:
                self.opened, self.count = now, 0
            if self.count >= self.limit:
                self.answers.append((name, 429))
                wait = self.retry_after or "%.3f" % (self.opened + self.window - now + 0.001)
                return FakeRaw(429, {"error": {"code": "OperationNotAllowed", "message": "too many requests"}},
                               {"Retry-After": wait, HEADER: "Microsoft.Compute/FlushCache5Min;0"})
            self.count += 1
            self.answers.append((name, 204))
            return FakeRaw(204, None, {HEADER: "Microsoft.Compute/FlushCache5Min;%d" % (self.limit - self.count)})

    def statuses(self, status):
        return sorted(name for name, answered in self.answers if answered == status)


def paced(make_client, arm, items, wait_timeout, pacing=True):
    client = make_client(arm, attempts=6)[0]
    return FleetFlush(CacheOperations(client, "v"), items,
                      options=ActionOptions(wait=True, wait_timeout=wait_timeout, poll_interval=5, check_mode=False),
                      max_concurrent=len(items), pacing=pacing).run()


def test_the_flushes_of_a_subscription_are_paced_by_its_budget(make_client, clock):
    budget = Budget(clock, limit=4, window=10.0)
    names = ["c%02d" % n for n in range(12)]
    arm = FleetArm(dict.fromkeys(names, "Healthy"), flush=budget)
    results = paced(make_client, arm, [item(n) for n in names], wait_timeout=100000)
    assert all(r["status"] == "Succeeded" for r in results), [r.get("msg") for r in results]
    assert budget.statuses(204) == names  # each flushed once
    assert len(budget.statuses(429)) <= 3  # three windows: a probe at most per refill


def test_a_flush_held_past_the_deadline_fails_alone_and_says_so(make_client, clock):
    budget = Budget(clock, limit=2, window=600.0, retry_after="600")
    names = ["c%d" % n for n in range(5)]
    arm = FleetArm(dict.fromkeys(names, "Healthy"), flush=budget)
    results = paced(make_client, arm, [item(n) for n in names], wait_timeout=100)
    held = [r for r in results if r["failed"]]
    assert len(held) == 3 and len(budget.statuses(204)) == 2 and len(budget.statuses(429)) == 1
    assert all(r["msg"].startswith("Held back and past the task's deadline") for r in held)
    assert sum("answered 429" in r["msg"] for r in held) == 1  # the probe; the others were never sent
    assert all(r["changed"] is False for r in held) and max(arm.posts.values()) == 1
    assert not any(r.get("status") == "Unconfirmed" for r in held)  # a 429 is not taken: nothing to look for


def test_a_run_leaves_the_client_as_it_found_it(make_client):
    client = make_client(FleetArm({"a": "Healthy"}))[0]
    FleetFlush(CacheOperations(client, "v"), [item("a")],
               options=ActionOptions(wait=True, wait_timeout=100, poll_interval=5, check_mode=False), max_concurrent=1).run()
    assert client.pacer is None


# The task of azure_hpc_cache_flush_many ------------------------------------


def test_the_options_are_the_flush_options_the_caches_and_the_bound_each_time_a_fresh_copy():
    spec = FLEET_OPTIONS.argument_spec()
    assert set(spec) == set(FLUSH_OPTIONS) | {"caches", "max_concurrent"}
    assert set(spec["caches"]["options"]) == {"name", "resource_group", "subscription_id", "allowed_states", "label"}
    assert spec["max_concurrent"] == {"type": "int", "default": 20}
    spec["wait"]["default"] = False
    spec["caches"]["options"]["name"]["required"] = False
    again = FLEET_OPTIONS.argument_spec()
    assert again["wait"]["default"] is True and again["caches"]["options"]["name"]["required"] is True
    assert FLUSH_OPTIONS["wait"].default is True
    ruled = {name for name, option in FLEET_OPTIONS.items() if option.rule is not None}
    assert ruled == {name for name, option in FLUSH_OPTIONS.items() if option.rule is not None} | {"max_concurrent"}


@pytest.mark.parametrize("value, message", [
    (0, "max_concurrent: 0 must be an integer greater than 0"),
    (MAX_CONCURRENT + 1, "max_concurrent: 101 must be at most 100"),
    (True, "max_concurrent: True must be an integer"),
])
def test_the_bound_is_1_to_100(value, message):
    assert concurrency(1, "max_concurrent") == 1 and concurrency(MAX_CONCURRENT, "max_concurrent") == MAX_CONCURRENT
    with pytest.raises(ValidationError) as caught:
        concurrency(value, "max_concurrent")
    assert str(caught.value).startswith(message)


def test_each_entry_is_checked_alone_and_named_by_its_index():
    other = "11111111-1111-1111-1111-111111111111"
    entries = [
        {"name": "a", "resource_group": "rg", "label": "host-a"},
        {"name": "b c", "resource_group": "rg"},
        {"name": "d", "resource_group": "rg", "subscription_id": other, "allowed_states": ["Degraded"]},
        {"name": "e", "resource_group": "rg."},
        {"name": "f", "resource_group": "rg", "allowed_states": [" "]},
    ]
    checked = items_of(entries, SUB, ["Healthy"])
    assert checked[0] == FleetItem("host-a", CacheRef(SUB, "rg", "a"), ("Healthy",))
    assert checked[2] == FleetItem("d", CacheRef(other, "rg", "d"), ("Degraded",))
    assert [str(c).partition(":")[0] for c in checked if isinstance(c, ValidationError)] == [
        "caches[1].name", "caches[3].resource_group", "caches[4].allowed_states"]


def test_an_entry_without_a_subscription_fails_only_when_the_module_has_none():
    entries = [{"name": "a", "resource_group": "rg"}, {"name": "b", "resource_group": "rg", "subscription_id": SUB}]
    checked = items_of(entries, None, [])
    assert str(checked[0]).startswith("caches[0].subscription_id: is required when the module's subscription_id")
    assert checked[1] == FleetItem("b", CacheRef(SUB, "rg", "b"), ())


def test_an_invalid_entry_has_a_failed_result_of_its_own():
    error = ValidationError("caches[0].name", "'b c' must be 1 to 80 characters")
    result = invalid_result({"name": "b c", "resource_group": "rg"}, error)
    assert result == {"label": "b c", "name": "b c", "resource_group": "rg", "subscription_id": None,
                      "changed": False, "failed": True, "polls": 0, "elapsed": 0.0, "msg": str(error)}
    assert invalid_result({"label": "host-x"}, error)["label"] == "host-x"


def test_the_summary_counts_statuses_and_prefixes_warnings_with_labels():
    results = [{"label": "a", "failed": False, "changed": True, "status": "Succeeded", "warnings": ["slow"]},
               {"label": "b", "failed": False, "changed": False, "status": "Skipped"},
               {"label": "c", "failed": False, "changed": True, "status": "Succeeded"}]
    summary, failure = summary_of(results, 1.5)
    assert failure is None and summary["msg"] == "3 caches: 1 Skipped, 2 Succeeded"
    assert summary["changed"] is True and summary["failed_caches"] == [] and summary["elapsed"] == 1.5
    assert summary["warnings"] == ["a: slow"] and summary["caches"] is results


def test_the_failure_names_the_first_five_and_counts_the_others():
    results = [{"label": "c%d" % n, "failed": n != 3, "changed": False, "msg": "m%d" % n} for n in range(8)]
    summary, failure = summary_of(results, 0.0)
    assert summary["failed_caches"] == ["c0", "c1", "c2", "c4", "c5", "c6", "c7"] and "msg" not in summary
    assert failure == "7 of 8 caches failed: c0: m0; c1: m1; c2: m2; c4: m4; c5: m5; and 2 more (see caches)"
    assert summary_of(results[:2], 0.0)[1] == "2 of 2 caches failed: c0: m0; c1: m1"


def fleet_task(make_client, arm, entries, clock, **params):
    built = []

    def connect(timeout=None, concurrency=1):
        built.append((timeout, concurrency))
        return make_client(arm)[0]

    values = dict({"subscription_id": SUB, "allowed_states": [], "api_version": "v", "wait_timeout": 100,
                   "poll_interval": 5, "confirm_timeout": 10, "max_concurrent": params.pop("max_concurrent", 20),
                   "caches": entries, "wait": True, "trust_operation": False}, **params)
    summary, failure = flush_fleet(values, options=ActionOptions.of(values, check_mode=False), connect=connect,
                                   started=clock(), clock=clock, redact=lambda text: text.replace("secret", "********"))
    return summary, failure, built


def test_the_task_flushes_the_valid_entries_from_one_client_sized_for_them(make_client, clock):
    missing = FakeRaw(404, {"error": {"code": "ResourceNotFound", "message": "no secret cache"}})
    arm = FleetArm({"a": "Healthy", "b": "Healthy", "x": missing})
    entries = [{"name": n, "resource_group": rg} for n, rg in (("a", "rg"), ("bad", ""), ("b", "rg"), ("x", "rg"))]
    summary, failure, built = fleet_task(make_client, arm, entries, clock, max_concurrent=2)
    assert built == [(100, 2)] and arm.posts == {"a": 1, "b": 1}
    assert [r["failed"] for r in summary["caches"]] == [False, True, False, True]
    assert summary["failed_caches"] == ["bad", "x"] and summary["changed"] is True
    assert summary["caches"][3]["msg"].startswith("ResourceNotFound (HTTP 404): no ******** cache")
    assert failure.startswith("2 of 4 caches failed: bad: caches[1].resource_group: ")


def test_the_task_connects_to_nothing_without_a_valid_entry(make_client, clock):
    summary, failure, built = fleet_task(make_client, None, [], clock)
    assert (summary, failure, built) == ({"changed": False, "caches": [], "failed_caches": [],
                                          "msg": "No cache to flush", "elapsed": 0.0}, None, [])
    summary, failure, built = fleet_task(make_client, None, [{"name": "a b", "resource_group": "rg"}], clock)
    assert built == [] and failure.startswith("1 of 1 caches failed: a b: caches[0].name:")
