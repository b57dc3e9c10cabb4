# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recorded behaviour of the real service (tests/fixtures/recorded), replayed through the client,
the poller and the flush decision. The service's clock runs on the fake clock, so the flush takes the
8.25 s it took when it was recorded, and no test waits for it."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._cache import FlushTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._resource import CacheOperations, CacheRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._errors import OperationFailed
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, SUB, FakeRaw

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "recorded", "hpc_cache_flush.json")
with open(FIXTURE, encoding="utf-8") as handle:
    RECORDED = json.load(handle)
OPERATION = "e42aa1f7-0000-4000-8000-000000000001"


def answer(entry, **values):
    text = json.dumps(entry.get("body")).replace("{operation}", OPERATION)
    headers = {k: v.format(arm=ARM, operation=OPERATION, api_version=RECORDED["api_version"], **values)
               for k, v in (entry.get("headers") or {}).items()}
    body = json.loads(text)
    return FakeRaw(entry["status"], raw=b"" if body is None else json.dumps(body).encode(), headers=headers)


class RecordedService:
    """Answers as the recorded service did; the flush runs flush_operation_seconds of the fake clock."""

    def __init__(self, clock, result="operation_succeeded"):
        self.clock = clock
        self.result = result
        self.posted_at = None
        self.calls = []

    def running(self):
        return self.clock.now - self.posted_at < RECORDED["timings"]["flush_operation_seconds"]

    def __call__(self, method, url):
        self.calls.append((method, self.clock.now, url))
        if method == "POST":
            self.posted_at = self.clock.now
            return answer(RECORDED["flush_post"])
        if "/ascOperations/" in url:
            return answer(RECORDED["operation_in_progress"] if self.running() else RECORDED[self.result])
        cache = json.loads(json.dumps(RECORDED["cache_get"]))
        if self.posted_at is not None and self.running():
            cache["body"]["properties"]["health"] = {"state": "Flushing", "statusDescription": "The cache is flushing"}
        return answer(cache)


def flush(make_client, service, wait=True, poll_interval=2):
    client = make_client(service)[0]
    task = FlushTask(CacheOperations(client, RECORDED["api_version"]), CacheRef(SUB, "rg", "c1"), wait=wait,
                     wait_timeout=600, poll_interval=poll_interval, check_mode=False)
    return task


def test_the_recorded_204_with_azure_asyncoperation_is_followed_to_its_end(make_client, clock):
    service = RecordedService(clock)
    result = flush(make_client, service).run()
    assert result["status"] == "Succeeded" and result["status_code"] == 204 and result["changed"] is True
    assert result["operation_url"].endswith("/ascOperations/%s?api-version=2019-11-01" % OPERATION)
    polls = [c for c in service.calls if "/ascOperations/" in c[2]]
    assert len(polls) == result["polls"] == 5  # 2 s apart over the 8.25 s the operation ran
    assert clock.now - service.posted_at >= RECORDED["timings"]["flush_operation_seconds"]
    assert result["completion"] == {"operation_status": "Succeeded", "cache_state": "Healthy"}
    assert result["health_state_after"] == "Healthy"


def test_the_recorded_204_without_wait_is_in_progress(make_client, clock):
    service = RecordedService(clock)
    result = flush(make_client, service, wait=False).run()
    assert result["status"] == "InProgress" and result["operation_url"] and result["polls"] == 0
    assert "Succeeded" not in result["msg"] and result["completion"] == {"operation_status": "InProgress"}


def test_the_recorded_failure_answers_200_with_status_failed(make_client, clock):
    task = flush(make_client, RecordedService(clock, result="operation_failed"))
    with pytest.raises(OperationFailed) as err:
        task.run()
    assert "ErrorReadingNfs3Exports" in str(err.value) and err.value.result["status"] == "Failed"
    assert task.result["changed"] is True


def test_no_retry_after_means_poll_interval(make_client, clock):
    service = RecordedService(clock)
    flush(make_client, service, poll_interval=3).run()
    assert set(clock.sleeps) == {3}


def test_the_recorded_cache_read_is_summarized(make_client, clock):
    body = RECORDED["cache_get"]["body"]
    from ansible_collections.azure_hpc.cache.plugins.module_utils._cache import summarize

    item = summarize(body)
    assert item["health_state"] == "Healthy" and item["resource_group"] == "rg"
    assert item["health_description"] == "The cache is in Running state"
    assert item["upgrade_status"]["firmwareUpdateStatus"] == "unavailable"


def test_a_stopped_cache_as_recorded_is_skipped(make_client, clock):
    cache = json.loads(json.dumps(RECORDED["cache_get"]))
    cache["body"]["properties"]["health"] = RECORDED["stopped_health"]
    client = make_client(lambda method, url: answer(cache))[0]
    task = FlushTask(CacheOperations(client, "v"), CacheRef(SUB, "rg", "c1"), wait=True, wait_timeout=60,
                     poll_interval=2, check_mode=False)
    assert task.run()["status"] == "Skipped"
