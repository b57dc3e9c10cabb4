# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider's throttling buckets for cache actions as the emulator answers them over raw HTTP (no module
involved): per subscription, FlushCache5Min (60 per 5 min) for flushes and StartOrStopCache1Min (60 per
minute) shared by stop and start, as recorded (../shared/reference/recorded-storage-targets.md); every answer
announces the remaining count in x-ms-ratelimit-remaining-resource ("Microsoft.Compute/FlushCache5Min;59",
as recorded); a spent bucket answers 429 with Retry-After until its window refills. Enforced only under a
scenario's throttle key; windows are a few seconds here and every wait is bounded."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from conftest import SUB  # pylint: disable=import-error

pytestmark = pytest.mark.stack_independent  # only the newest stack runs it (conftest.py)

OTHER = "11111111-1111-1111-1111-111111111111"
API = "?api-version=2026-01-01"
HEADER = "x-ms-ratelimit-remaining-resource"


def path(name, sub=SUB):
    return "/subscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/%s" % (sub, name)


def token(emulator):
    return json.loads(urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - loopback only
        emulator.url + "/_emulator/token", method="POST"), timeout=10).read())["access_token"]


def post(emulator, action, name, sub=SUB):
    """One POST on its own connection: (status, headers with lower-case names, parsed body or None)."""
    parts = urlsplit(emulator.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("POST", "%s/%s%s" % (path(name, sub), action, API),
                     headers={"Authorization": "Bearer " + token(emulator)})
        answer = conn.getresponse()
        body = answer.read()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, json.loads(body) if body else None
    finally:
        conn.close()


def remaining(headers, bucket):
    name, count = headers[HEADER].split(";")
    assert name == "Microsoft.Compute/" + bucket
    return int(count)


def caches(n, **extra):
    """n caches c0..c{n-1} in rg, flushes that run 60 s (each cache flushed once stays Flushing)."""
    return [dict({"name": "c%d" % i, "resource_group": "rg", "flush": {"duration": 60}}, **extra) for i in range(n)]


def test_without_a_throttle_key_the_flush_bucket_is_announced_and_never_enforced(emulator):
    emulator.load({"caches": caches(1)})
    counts = []
    for _request in range(62):
        status, headers, _body = post(emulator, "flush", "c0")
        assert status in (204, 409)  # the recorded 204 first, then "already flushing"
        counts.append(remaining(headers, "FlushCache5Min"))
    assert counts[:3] == [59, 58, 57] and counts[58:] == [1, 0, 0, 0]
    assert emulator.throttled() == 0 and emulator.state()["throttle"]["enforced"] is False
    bucket, = [b for b in emulator.buckets() if b["bucket"] == "FlushCache5Min"]
    assert (bucket["limit"], bucket["window"], bucket["used"], bucket["refused"]) == (60, 300.0, 62, 0)


def test_a_spent_flush_bucket_answers_429_with_retry_after_until_its_window_refills(emulator):
    emulator.load({"caches": caches(7), "throttle": {"flush": {"limit": 5, "window": 3}}})
    started = time.monotonic()
    counts = []
    for i in range(5):
        status, headers, _body = post(emulator, "flush", "c%d" % i)
        assert status == 204 and "retry-after" not in headers
        counts.append(remaining(headers, "FlushCache5Min"))
    assert counts == [4, 3, 2, 1, 0]
    status, headers, body = post(emulator, "flush", "c5")
    assert status == 429 and remaining(headers, "FlushCache5Min") == 0
    retry_after = int(headers["retry-after"])
    assert 1 <= retry_after <= 3
    error = body["error"]
    assert error["code"] == "OperationNotAllowed" and "too many requests" in error["message"]
    detail, = error["details"]
    assert (detail["code"], detail["target"]) == ("TooManyRequests", "FlushCache5Min")
    window = json.loads(detail["message"])
    assert (window["operationGroup"], window["allowedRequestCount"], window["measuredRequestCount"]) == \
        ("FlushCache5Min", 5, 6)
    assert window["startTime"] < window["endTime"]
    assert post(emulator, "flush", "c5")[0] == 429
    assert emulator.throttled() == 2 and emulator.throttled("FlushCache5Min") == 2
    assert emulator.throttled("StartOrStopCache1Min") == 0
    assert [c["flushes"] for c in emulator.state()["caches"] if c["name"] == "c5"] == [0]  # nothing was flushed
    entries = [e for e in emulator.log() if e.get("throttled")]
    assert [(e["kind"], e["cache"], e["status"], e["throttled"]) for e in entries] == \
        [("flush", "c5", 429, "FlushCache5Min")] * 2
    # the window refills whole once it ends: wait out Retry-After (bounded by the window itself)
    time.sleep(max(0.0, started + 3.1 - time.monotonic()))
    status, headers, _body = post(emulator, "flush", "c5")
    assert status == 204 and remaining(headers, "FlushCache5Min") == 4
    assert emulator.throttled() == 2


def test_stop_and_start_share_one_bucket_apart_from_the_flush_bucket(emulator):
    emulator.load({"caches": caches(3, stop={"duration": 30}), "throttle": {"start_stop": {"limit": 3, "window": 30}}})
    status, headers, _body = post(emulator, "stop", "c0")
    assert status == 202 and remaining(headers, "StartOrStopCache1Min") == 2
    status, headers, _body = post(emulator, "start", "c1")  # a running cache: 204, still counted
    assert status == 204 and remaining(headers, "StartOrStopCache1Min") == 1
    status, headers, _body = post(emulator, "start", "c0")  # refused (stopping): 409, still counted
    assert status == 409 and remaining(headers, "StartOrStopCache1Min") == 0
    status, headers, body = post(emulator, "stop", "c2")
    assert status == 429 and body["error"]["details"][0]["target"] == "StartOrStopCache1Min"
    assert 1 <= int(headers["retry-after"]) <= 30
    assert emulator.actions("c2")["stop"] == 0
    # the flush bucket is another (and its default, 60 per 300 s, applies under the throttle key)
    status, headers, _body = post(emulator, "flush", "c2")
    assert status == 204 and remaining(headers, "FlushCache5Min") == 59
    # the upgrade has no recorded bucket: not counted, never throttled, no header
    status, headers, _body = post(emulator, "upgrade", "c1")
    assert status == 204 and HEADER not in headers
    assert emulator.throttled() == 1 and emulator.throttled("StartOrStopCache1Min") == 1


def test_buckets_are_per_subscription(emulator):
    specs = caches(1) + [dict(c, subscription_id=OTHER) for c in caches(1)]
    emulator.load({"caches": specs, "throttle": {"flush": {"limit": 1, "window": 30}}})
    assert post(emulator, "flush", "c0")[0] == 204
    assert post(emulator, "flush", "c0")[0] == 429
    status, headers, _body = post(emulator, "flush", "c0", OTHER)
    assert status == 204 and remaining(headers, "FlushCache5Min") == 0
    assert post(emulator, "flush", "c0", OTHER)[0] == 429
    assert sorted(b["subscription_id"] for b in emulator.buckets()) == [SUB, OTHER]
    assert emulator.throttled() == 2


def test_a_request_for_a_cache_that_does_not_exist_is_counted_too(emulator):
    emulator.load({"caches": caches(1), "throttle": {"flush": {"limit": 1, "window": 30}}})
    status, headers, _body = post(emulator, "flush", "nope")
    assert status == 404 and remaining(headers, "FlushCache5Min") == 0
    assert post(emulator, "flush", "c0")[0] == 429


def test_a_scenario_load_starts_fresh_buckets(emulator):
    scenario = {"caches": caches(2), "throttle": {"flush": {"limit": 1, "window": 30}}}
    emulator.load(scenario)
    assert post(emulator, "flush", "c0")[0] == 204 and post(emulator, "flush", "c1")[0] == 429
    emulator.load(scenario)
    assert post(emulator, "flush", "c1")[0] == 204 and emulator.throttled() == 0


def test_the_429_code_may_be_set_by_the_scenario(emulator):
    emulator.load({"caches": caches(1), "throttle": {"code": "TooManyRequests", "flush": {"limit": 0}}})
    status, _headers, body = post(emulator, "flush", "c0")
    assert status == 429 and body["error"]["code"] == "TooManyRequests"


@pytest.mark.parametrize("bad", [{"flsuh": {"limit": 1}}, {"flush": {"limit": -1}}, {"flush": {"window": 0}},
                                 {"flush": {"limt": 5}}, {"start_stop": 5}, ["flush"]])
def test_a_bad_throttle_key_is_refused_and_changes_nothing(emulator, bad):
    emulator.load({"caches": caches(1, state="Stopped")})
    with pytest.raises(urllib.error.HTTPError) as refused:
        emulator.load({"caches": caches(1), "throttle": bad})
    assert refused.value.code == 400
    assert emulator.state()["caches"][0]["state"] == "Stopped"
