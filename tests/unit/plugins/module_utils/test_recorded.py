# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recorded behaviour of the real service (tests/fixtures/recorded), replayed through the client,
the poller and the flush decision. The service's clock runs on the fake clock, so the flush takes the
8.25 s it took when it was recorded, and no test waits for it."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_flush import FlushTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import OperationFailed
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
    task = FlushTask(CacheOperations(client, RECORDED["api_version"]), CacheRef(SUB, "rg", "c1"),
                     options=ActionOptions(wait=wait, wait_timeout=600, poll_interval=poll_interval, check_mode=False))
    return task


def test_the_recorded_204_with_azure_asyncoperation_is_followed_to_its_end(make_client, clock):
    service = RecordedService(clock)
    result = flush(make_client, service).run()
    assert result["status"] == "Succeeded" and result["status_code"] == 204 and result["changed"] is True
    assert result["operation_url"].endswith("/ascOperations/%s?api-version=2019-11-01" % OPERATION)
    polls = [c for c in service.calls if "/ascOperations/" in c[2]]
    # after 1, 2, 3, 4, 6, 8 and 10 s (1 s, then a third of the wait so far, at least 1 s, up to poll_interval 2)
    # over the 8.25 s it ran
    assert len(polls) == result["polls"] == 7
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


def test_no_retry_after_means_pauses_that_follow_the_operation(make_client, clock):
    service = RecordedService(clock)
    flush(make_client, service, poll_interval=3).run()
    # 1 s first, then a third of the wait so far (at least 1 s), up to poll_interval
    assert clock.sleeps == pytest.approx([1, 1, 1, 1, 4 / 3, 16 / 9, 64 / 27]), clock.sleeps  # over 8.25 s


def test_the_recorded_cache_read_is_summarized(make_client, clock):
    body = RECORDED["cache_get"]["body"]
    from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.cache import summarize

    item = summarize(body)
    assert item["health_state"] == "Healthy" and item["resource_group"] == "rg"
    assert item["health_description"] == "The cache is in Running state"
    assert item["upgrade_status"]["firmwareUpdateStatus"] == "unavailable"


def test_a_stopped_cache_as_recorded_is_skipped(make_client, clock):
    cache = json.loads(json.dumps(RECORDED["cache_get"]))
    cache["body"]["properties"]["health"] = RECORDED["stopped_health"]
    client = make_client(lambda method, url: answer(cache))[0]
    task = FlushTask(CacheOperations(client, "v"), CacheRef(SUB, "rg", "c1"),
                     options=ActionOptions(wait=True, wait_timeout=60, poll_interval=2, check_mode=False))
    assert task.run()["status"] == "Skipped"


# Storage-target actions as the service was recorded answering them (storage_target_actions.json) -----------
TARGET_FIXTURE = os.path.join(os.path.dirname(FIXTURE), "storage_target_actions.json")
with open(TARGET_FIXTURE, encoding="utf-8") as handle:
    TARGETS = json.load(handle)


def _signature(url):
    """'&t=...&c=...&s=...&h=...': what follows api-version in a signed URL."""
    return "&" + url.split("api-version=", 1)[1].split("&", 1)[1]


VALUES = {
    "arm": ARM, "subscription": SUB, "location": "eastus", "operation": OPERATION,
    "api_version": TARGETS["api_version"], "resource_group": "rg", "cache": "c1", "target": "filer-01",
    "signature_async": _signature(TARGETS["signed_urls"]["example"]["Azure-AsyncOperation"]),
    "signature_location": _signature(TARGETS["signed_urls"]["example"]["Location"]),
}


def fill(text):
    for key, value in VALUES.items():
        text = text.replace("{%s}" % key, value)
    return text


class RecordedTargetService:
    """Replays one recorded exchange step by step, each request checked byte for byte (signed URLs are
    requested exactly as given); the target reads the given states in turn (no recording read it)."""

    def __init__(self, exchange, states):
        self.steps = list(TARGETS["exchanges"][exchange]["steps"])
        self.states = list(states)
        self.requests = []

    def __call__(self, method, url):
        self.requests.append((method, url))
        if method == "GET" and "/ascOperations/" not in url:
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return FakeRaw(200, {"name": "filer-01", "properties": {"state": state, "targetType": "nfs3"}})
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        assert (method, url) == (step["request"]["method"], fill(step["request"]["url"]))
        answer_ = step["answer"]
        headers = {k: fill(v) for k, v in (answer_.get("headers") or {}).items()}
        if "body_raw" in answer_:
            return FakeRaw(answer_["status"], raw=answer_["body_raw"].encode(), headers=headers)
        body = answer_.get("body")
        raw = b"" if body is None else fill(json.dumps(body)).encode()
        return FakeRaw(answer_["status"], raw=raw, headers=headers)


def target_task(make_client, service, state, **kwargs):
    from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import TargetRef
    from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.target_actions import TargetTask

    client = make_client(service)[0]
    return TargetTask(CacheOperations(client, TARGETS["api_version"]), TargetRef(CacheRef(SUB, "rg", "c1"), "filer-01"),
                      state=state, flush=False, dns_refresh=False,
                      options=ActionOptions(wait=True, wait_timeout=3600, poll_interval=2, check_mode=False, **kwargs))


def test_recorded_target_suspend_is_followed_through_its_signed_status_url(make_client, clock):
    service = RecordedTargetService("suspend", ["Ready", "Suspended"])
    result = target_task(make_client, service, "suspended").run()
    assert result["status"] == "Succeeded" and result["state_after"] == "Suspended"
    url = fill(TARGETS["exchanges"]["suspend"]["steps"][0]["answer"]["headers"]["Azure-AsyncOperation"])
    assert "&t=" in url and "&c=" in url and "&s=" in url and "&h=" in url and len(url) > 2500
    assert result["operations"] == [{"action": "suspend", "status_code": 202, "operation_url": url,
                                     "status": "Succeeded"}]
    assert [r for r in service.requests if "/ascOperations/" in r[1]] == [("GET", url)] * 2  # as given, twice
    assert clock.sleeps == [1, 1]  # no Retry-After was recorded: 1 s, then a third of the wait so far (at least 1 s)


def test_recorded_target_suspend_whose_target_keeps_reading_ready_fails_in_the_window(make_client, clock):
    from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError

    service = RecordedTargetService("suspend", ["Ready"])  # PS-T 09:39:43: Ready after a Succeeded suspend
    started = clock.now
    task = target_task(make_client, service, "suspended")
    with pytest.raises(HpcCacheError, match="reported Succeeded, but the storage target filer-01 of cache c1 "
                                            "still reads Ready after 120 s"):
        task.run()
    assert clock.now - started < 130 and task.result["status"] == "Unconfirmed"


def test_recorded_target_flush_is_followed_to_its_end(make_client, clock):
    service = RecordedTargetService("flush", ["Ready"])
    result = target_task(make_client, service, "flushed").run()
    assert result["status"] == "Succeeded" and [o["action"] for o in result["operations"]] == ["flush"]


def test_recorded_resume_of_a_ready_target_is_accepted_by_the_poller_and_not_sent_by_the_module(make_client):
    from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import Poller
    from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline

    service = RecordedTargetService("resume_never_suspended", ["Ready"])
    client = make_client(service)[0]
    post = client.post_action(fill(TARGETS["exchanges"]["resume_never_suspended"]["steps"][0]["request"]["url"]))
    poll = Poller(client).wait_operation(async_url=post.headers["Azure-AsyncOperation"],
                                         location_url=post.headers["Location"], poll_interval=2,
                                         deadline=Deadline.after(60, clock=client.clock, sleep=client.sleep))
    assert post.status == 202 and poll.status == "Succeeded" and poll.polls == 1
    result = target_task(make_client, RecordedTargetService("resume_never_suspended", ["Ready"]), "active").run()
    assert result["operations"] == [] and result["changed"] is False  # the module sends nothing to a Ready target


def test_recorded_location_success_is_a_finished_operation(make_client):
    from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import Poller
    from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline

    service = RecordedTargetService("location_final", ["Ready"])
    client = make_client(service)[0]
    post = client.post_action(fill(TARGETS["exchanges"]["location_final"]["steps"][0]["request"]["url"]))
    poll = Poller(client).wait_operation(async_url=None, location_url=post.headers["Location"], poll_interval=2,
                                         deadline=Deadline.after(60, clock=client.clock, sleep=client.sleep))
    assert poll.status == "Succeeded" and poll.body == "success"


def test_recorded_fixture_cites_a_source_for_every_fact():
    for name, fact in TARGETS.items():
        if isinstance(fact, dict) and name not in ("sources", "placeholders", "exchanges", "emulator"):
            assert fact.get("source"), name
            keys = [s["key"] if isinstance(s, dict) else s for s in fact["source"]]
            assert set(keys) <= set(TARGETS["sources"]), name
