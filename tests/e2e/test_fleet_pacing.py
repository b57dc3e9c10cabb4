# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""azure_hpc_cache_flush_many paces itself against the service's flush budget (the emulator's throttle
scenario key: a fixed window per subscription, x-ms-ratelimit-remaining-resource on every answer, 429 with
Retry-After when spent; docs/service-behaviour.md rows 35-36): a fleet larger than the budget is flushed
whole, each cache once, with about one 429 per refill, in about the time the budget allows.

Time is asserted only against the window (the module's own elapsed, not process start-up), with a margin
for a slow, busy machine; counts are exact where the design makes them so."""

from __future__ import annotations

import math

import pytest
from conftest import requests_of  # pylint: disable=import-error

pytestmark = pytest.mark.stack_independent  # only the newest stack runs it (conftest.py)

BUCKET = "FlushCache5Min"


def throttled_fleet(names, limit, window):
    return {"caches": [{"name": n, "resource_group": "rg", "flush": {"duration": 1, "retry_after": 1}} for n in names],
            "throttle": {"flush": {"limit": limit, "window": window}}}


def flush_many(runner, names, **extra):
    return runner.play([{"azure_hpc.cache.azure_hpc_cache_flush_many": dict({
        "caches": [{"name": n, "resource_group": "rg"} for n in names], "poll_interval": 1,
        "max_concurrent": 20, "wait_timeout": 600}, **extra)}]).result


def test_sixteen_caches_against_five_flushes_per_10_s(runner, emulator):
    # the service's bucket is 60 per 5 minutes; a short window keeps the test short, the pacing is the same
    names = ["c%02d" % i for i in range(16)]
    limit, window = 5, 10.0
    emulator.load(throttled_fleet(names, limit, window))
    r = flush_many(runner, names)
    assert not r.get("failed"), r.get("msg")
    assert {c["name"]: c["status"] for c in r["caches"]} == dict.fromkeys(names, "Succeeded")
    assert {c["name"]: c["flushes"] for c in emulator.state()["caches"]} == dict.fromkeys(names, 1)
    throttled = emulator.throttled(BUCKET)
    assert throttled <= 5, "%d answers were 429" % throttled  # about one a refill (3 by design), not a herd
    posts = requests_of(emulator, method="POST")
    assert len([p for p in posts if p.get("kind") != "token"]) == len(names) + throttled
    # The 16th flush can go no sooner than the fourth window, three refills after the first POST; the module's
    # elapsed also holds its reads, its token and the last flush (1 s) and its poll.
    minimum = (math.ceil(len(names) / limit) - 1) * window
    print("16 caches, %d per %.0f s: %d flushed once, %d answered 429, elapsed %.1f s (minimum %.0f s)"
          % (limit, window, len(names), throttled, r["elapsed"], minimum))
    assert minimum - 1 <= r["elapsed"] <= minimum + window, r["elapsed"]


def test_a_batch_after_a_spent_budget_probes_first_instead_of_sending_all(runner, emulator):
    # The role flushes a play batch per module run: the next batch's process knows nothing of the budget the
    # last one spent. Its first flush is a probe; the others wait on its 429 instead of each getting one.
    first, second = ["a0", "a1"], ["b0", "b1", "b2", "b3"]
    limit, window = 2, 8.0
    emulator.load(throttled_fleet(first + second, limit, window))
    task = {"poll_interval": 1, "max_concurrent": 20, "wait_timeout": 600}
    run = runner.play([{"azure_hpc.cache.azure_hpc_cache_flush_many": dict(
        task, caches=[{"name": n, "resource_group": "rg"} for n in names])} for names in (first, second)])
    spent, r = run.results
    assert not spent.get("failed") and not r.get("failed"), (spent.get("msg"), r.get("msg"))
    assert {c["name"]: c["flushes"] for c in emulator.state()["caches"]} == dict.fromkeys(first + second, 1)
    throttled = emulator.throttled(BUCKET)
    print("a batch of 4 after one that spent the budget (%d per %.0f s): %d answered 429, elapsed %.1f s"
          % (limit, window, throttled, r["elapsed"]))
    # Unpaced, the four would get a 429 at once, and the two left again at the refill (6); paced, one a refill
    # (the second batch spans two or three windows).
    assert throttled <= 3
    assert r["elapsed"] <= 2 * window + window
