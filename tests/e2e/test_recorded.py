# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service as it was recorded (tests/fixtures/recorded): the emulator answers in those shapes by
default, and the flush, the many-caches module and the role report a flush done only once it is."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest
from conftest import ROOT, fleet, maintenance, requests_of, scenario  # pylint: disable=import-error

pytestmark = pytest.mark.stack_independent  # only the newest stack runs it (conftest.py)


with open(os.path.join(ROOT, "tests", "fixtures", "recorded", "hpc_cache_flush.json"), encoding="utf-8") as handle:
    RECORDED = json.load(handle)


def raw(emulator, method, path):
    """One request to the emulator with a token, its status, headers and body as sent."""
    token = json.loads(urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - loopback only
        emulator.url + "/_emulator/token", method="POST"), timeout=10).read())["access_token"]
    request = urllib.request.Request(emulator.url + path, method=method, data=b"" if method == "POST" else None,
                                     headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback only
        return answer.status, answer.headers, answer.read()


def test_emulator_answers_in_the_recorded_shapes(emulator):
    emulator.load(scenario(flush={"duration": 2}))
    base = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.StorageCache"
    status, headers, body = raw(emulator, "POST", base + "/caches/c1/flush?api-version=2026-01-01")
    post = RECORDED["flush_post"]
    assert status == post["status"] and body == b""
    names = {name.lower() for name in headers.keys()}
    assert "azure-asyncoperation" in names and "x-ms-ratelimit-remaining-subscription-writes" in names
    assert not names & {"location", "retry-after", "content-type"}
    assert "azure-asyncoperation" in headers.keys()  # the recorded (lower) case: clients must not care
    operation = headers["azure-asyncoperation"].replace(emulator.url, "")
    status, headers, body = raw(emulator, "GET", operation)
    assert status == 200 and "retry-after" not in {n.lower() for n in headers.keys()}
    assert list(json.loads(body)) == list(RECORDED["operation_in_progress"]["body"])


def test_recorded_204_flush_is_followed_until_the_operation_ends(runner, emulator):
    emulator.load(scenario(flush={"mode": "recorded", "duration": 4}))
    r = runner.flush().result
    assert r["status"] == "Succeeded" and r["status_code"] == 204 and r["changed"] is True
    assert "/ascOperations/" in r["operation_url"] and r["polls"] >= 2 and r["elapsed"] >= 4
    assert r["completion"] == {"operation_status": "Succeeded", "cache_state": "Healthy"}
    assert requests_of(emulator, "operation")[-1]["status"] == 200
    assert emulator.flushes("c1") == 1


def test_recorded_204_flush_without_wait_is_in_progress(runner, emulator):
    emulator.load(scenario(flush={"mode": "recorded", "duration": 30}))
    r = runner.flush({"wait": False}).result
    assert r["status"] == "InProgress" and r["status_code"] == 204 and r["operation_url"]
    assert requests_of(emulator, "operation") == []


def test_bare_204_while_the_cache_reads_flushing_is_waited_out(runner, emulator):
    emulator.load(scenario(flush={"mode": "bare204", "duration": 3}))
    r = runner.flush().result
    assert r["status"] == "Succeeded" and r["status_code"] == 204 and r["elapsed"] >= 3
    assert r["health_state_after"] == "Healthy" and r["completion"] == {"cache_state": "Healthy"}
    assert "operation_url" not in r and emulator.flushes("c1") == 1


def test_flush_many_follows_the_recorded_204(runner, emulator):
    emulator.load({"caches": [{"name": "a", "resource_group": "rg", "flush": {"mode": "recorded", "duration": 3}},
                              {"name": "b", "resource_group": "rg", "flush": {"mode": "bare204", "duration": 3}}]})
    r = runner.play([{"azure_hpc.cache.azure_hpc_cache_flush_many": {
        "caches": [{"name": "a", "resource_group": "rg"}, {"name": "b", "resource_group": "rg"}],
        "poll_interval": 1}}]).result
    assert [c["status"] for c in r["caches"]] == ["Succeeded", "Succeeded"]
    assert all(c["elapsed"] >= 3 for c in r["caches"]) and r["caches"][0]["operation_url"]


def test_role_reports_flushed_only_once_the_recorded_flush_is_over(runner, emulator, tmp_path):
    emulator.load(fleet(2, mode="recorded", duration=3, retry_after=None))
    summary = tmp_path / "summary.json"
    run = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_summary_file=%s" % summary)
    assert run.returncode == 0, run.stdout
    caches = json.loads(summary.read_text())["caches"]
    assert {c["outcome"] for c in caches} == {"flushed"} and all(float(c["seconds"]) >= 3 for c in caches)
    started = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_wait=false",
                          "-e", "cache_maintenance_summary_file=%s" % summary)
    assert started.returncode == 0, started.stdout
    assert {c["outcome"] for c in json.loads(summary.read_text())["caches"]} == {"started"}
