# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage-target actions as the real service was recorded answering them
(tests/fixtures/recorded/storage_target_actions.json): the emulator answers in those shapes by default
(202 with both headers, signed status URLs, a Location that ends with "success", the recorded
durations), and azure_hpc_cache_storage_target reaches its end through them, through a suspend that
Succeeded while the target still reads Ready, and through answers torn mid-body.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request

import pytest
from hpc_cache_emulator.state import DEFAULT_TARGET_ACTION, RECORDED_TARGET_SECONDS

from conftest import ROOT, requests_of, scenario  # pylint: disable=import-error

pytestmark = pytest.mark.stack_independent  # only the newest stack runs it (conftest.py)

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "recorded", "storage_target_actions.json")
with open(FIXTURE, encoding="utf-8") as handle:
    RECORDED = json.load(handle)

BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
BOUND = 60  # seconds any task of this file may take (Ansible's task timeout); the module's own bounds are lower
TARGET_PATH = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.StorageCache"
               "/caches/c1/storageTargets/filer-01")


def targets(*specs, time_scale=None, faults=()):
    """Cache c1 in rg with storage target filer-01 (or the given specs), the emulator's recorded defaults."""
    extra = {} if time_scale is None else {"time_scale": time_scale}
    return scenario(storage_targets=list(specs) or [{"name": "filer-01"}], faults=list(faults), **extra)


def suspend(runner, **args):
    task = {"cache_name": "c1", "resource_group": "rg", "name": "filer-01", "state": "suspended", "poll_interval": 1}
    task.update(args)
    return runner.play([{"azure_hpc.cache.azure_hpc_cache_storage_target": task, "timeout": BOUND}])


def target_posts(emulator):
    return requests_of(emulator, "target_action", "POST")


def status_reads(emulator):
    return [e for e in emulator.log() if e["kind"] in ("operation", "location")]


def torn(emulator):
    return [e for e in emulator.log() if str(e.get("fault", "")).startswith("midbody")]


# The emulator's answers against the fixture (no module involved) ----------------------------------
def raw(emulator, method, path_and_query):
    """One request with a token; (status, headers as sent, body bytes), an error answer included."""
    token = json.loads(urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - loopback only
        emulator.url + "/_emulator/token", method="POST"), timeout=10).read())["access_token"]
    request = urllib.request.Request(emulator.url + path_and_query, method=method,
                                     data=b"" if method == "POST" else None,
                                     headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback only
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def local(url, emulator):
    assert url.startswith(emulator.url + "/"), url
    return url[len(emulator.url):]


def signature(url):
    """The query parameters after api-version, in order, as (name, value) pairs."""
    query = url.split("?", 1)[1].split("&")
    names = [part.split("=", 1)[0] for part in query]
    return names, [tuple(part.split("=", 1)) for part in query[names.index("api-version") + 1:]]


def test_the_emulator_defaults_are_the_recorded_facts():
    settings = RECORDED["emulator"]["settings"]
    assert {k: DEFAULT_TARGET_ACTION[k] for k in settings} == settings
    durations = RECORDED["durations_seconds"]
    assert RECORDED_TARGET_SECONDS == durations["emulator_defaults"]
    for action, seconds in RECORDED_TARGET_SECONDS.items():
        recorded = durations["recorded"][action]
        low, high = (recorded, recorded) if isinstance(recorded, (int, float)) else recorded
        assert low <= seconds <= high, action


def test_a_target_action_answers_as_recorded_with_signed_status_urls(emulator):
    # the recorded 1-s suspend made 600 s long: it runs until the test ends it (finish), not on a clock
    emulator.load(dict(RECORDED["emulator"]["scenario"], time_scale=600))
    status, headers, body = raw(emulator, "POST", TARGET_PATH + "/suspend?api-version=" + RECORDED["api_version"])
    post = RECORDED["action_post"]
    assert status == post["status"] and body == b""
    names = list(headers.keys())
    assert "Location" in names and "Azure-AsyncOperation" in names  # the recorded canonical case, as sent
    assert not {n.lower() for n in names} & set(post["absent_headers"])
    async_url, location_url = headers["Azure-AsyncOperation"], headers["Location"]
    assert "/ascOperations/" in async_url and "?api-version=%s&t=" % RECORDED["api_version"] in async_url
    assert "?monitor=true&api-version=%s&t=" % RECORDED["api_version"] in location_url
    shapes = RECORDED["signed_urls"]["example"]["lengths"]
    signatures = []
    for url in (async_url, location_url):
        names, pairs = signature(url)
        assert [name for name, _value in pairs] == RECORDED["signed_urls"]["parameters"]  # t, c, s, h after api-version
        values = dict(pairs)
        assert values["t"].isdigit() and len(values["t"]) == shapes["t"]
        assert all(BASE64URL.fullmatch(values[k]) for k in "csh")
        assert 2000 < len(values["c"]) < 3000 and len(values["s"]) == shapes["s"] and len(values["h"]) == shapes["h"]
        signatures.append(values)
    assert all(signatures[0][k] != signatures[1][k] for k in "csh")  # other values in the two URLs

    # running: {startTime, status, name}; the Location URL 202 (not recorded)
    status, _headers, body = raw(emulator, "GET", local(async_url, emulator))
    assert status == 200 and list(json.loads(body)) == list(RECORDED["operation_in_progress"]["body"])
    assert json.loads(body)["status"] == "InProgress"
    status, headers, body = raw(emulator, "GET", local(location_url, emulator))
    assert status == RECORDED["location_final"]["while_running"]["emulator"]["status"] and body == b""
    assert "retry-after" not in {n.lower() for n in headers.keys()}
    assert emulator.finish("c1", "filer-01") == 1
    # done: {startTime, endTime, status, properties.output "success", name}; the Location URL 200 "success"
    status, _headers, body = raw(emulator, "GET", local(async_url, emulator))
    done = json.loads(body)
    assert status == 200 and list(done) == list(RECORDED["operation_succeeded"]["body"])
    assert done["status"] == "Succeeded" and done["properties"] == {"output": "success"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00", done["endTime"])
    status, headers, body = raw(emulator, "GET", local(location_url, emulator))
    final = RECORDED["location_final"]
    assert status == final["status"] and body == final["body_raw"].encode() and len(body) == final["content_length"]
    assert headers["Content-Length"] == "9"
    assert [e.get("signature") for e in status_reads(emulator)] == ["intact"] * 4


def reencode(query):
    """The first '-' or '_' of the certificate percent-encoded: the same value once decoded, another query."""
    head, cert = query.split("&c=", 1)
    at = min(i for i in (cert.find("-"), cert.find("_")) if i >= 0)
    return head + "&c=" + cert[:at] + {"-": "%2D", "_": "%5F"}[cert[at]] + cert[at + 1:]


def tamper(url):
    """Ways a client can spoil a signed URL: a parameter missing, changed, reordered or re-encoded."""
    path, query = url.split("?", 1)
    parts = query.split("&")
    first_s = [p for p in parts if p.startswith("s=")][0]
    changed_s = "s=" + ("A" if first_s[2] != "A" else "B") + first_s[3:]
    return {
        "missing": path + "?" + "&".join(p for p in parts if not p.startswith("h=")),
        "changed": path + "?" + "&".join(changed_s if p == first_s else p for p in parts),
        "reordered": path + "?" + "&".join(parts[:-2] + [parts[-1], parts[-2]]),
        "re-encoded": path + "?" + reencode(query),
        "no signature": path + "?" + "&".join(p for p in parts if p.split("=")[0] in ("api-version", "monitor")),
    }


@pytest.mark.parametrize("which", ["Azure-AsyncOperation", "Location"])
def test_a_status_url_not_requested_exactly_as_given_is_refused(emulator, which):
    emulator.load(RECORDED["emulator"]["scenario"])
    _status, headers, _body = raw(emulator, "POST", TARGET_PATH + "/suspend?api-version=" + RECORDED["api_version"])
    url = local(headers[which], emulator)
    assert "-" in url.split("&c=")[1] or "_" in url.split("&c=")[1]  # something to re-encode
    for how, spoiled in tamper(url).items():
        status, _headers, body = raw(emulator, "GET", spoiled)
        assert status == 403, how
        assert json.loads(body)["error"]["code"] == "InvalidOperationSignature", how
    status, _headers, _body = raw(emulator, "GET", url)
    assert status in (200, 202)  # the URL as given still works
    assert [e.get("signature") for e in status_reads(emulator)] == ["refused"] * 5 + ["intact"]


def test_the_resume_of_a_target_never_suspended_is_accepted_as_recorded(emulator):
    case = RECORDED["resume_never_suspended"]
    emulator.load(targets({"name": "filer-01", "state": case["target_state_before"]}))
    status, headers, _body = raw(emulator, "POST", TARGET_PATH + "/resume?api-version=" + RECORDED["api_version"])
    assert status == case["post"]["status"] and all(h in headers.keys() for h in case["post"]["headers"])
    assert emulator.finish("c1", "filer-01") == 1
    status, _headers, body = raw(emulator, "GET", local(headers["Azure-AsyncOperation"], emulator))
    assert json.loads(body)["status"] == case["operation"]["status"]
    assert emulator.target("c1", "filer-01")["state"] == case["target_state_after"]


# The module against the recorded defaults ----------------------------------------------------------
def test_a_suspend_through_signed_urls_sends_one_post_and_keeps_every_signature(runner, emulator):
    emulator.load(targets())
    run = suspend(runner, flush=False)
    r = run.result
    assert r.get("failed") is not True, r
    assert r["status"] == "Succeeded" and r["state_after"] == "Suspended"
    assert [(o["action"], o["status"], o["status_code"]) for o in r["operations"]] == [("suspend", "Succeeded", 202)]
    assert "&t=" in r["operations"][0]["operation_url"]
    assert [e["action"] for e in target_posts(emulator)] == ["suspend"]
    reads = status_reads(emulator)
    seen = [(e["query"][:80], e.get("signature")) for e in reads]
    assert reads and all(signature == "intact" for _query, signature in seen), seen


def test_a_flush_then_a_suspend_with_recorded_answers(runner, emulator):
    emulator.load(targets(time_scale=0.25))  # the recorded 8-s flush in 2 s, the suspend in 0.25 s
    r = suspend(runner).result
    assert r.get("failed") is not True, r
    assert r["status"] == "Succeeded" and r["state_before"] == "Ready" and r["state_after"] == "Suspended"
    assert [(o["action"], o["status"], o["status_code"]) for o in r["operations"]] == [
        ("flush", "Succeeded", 202), ("suspend", "Succeeded", 202)]
    assert [e["action"] for e in target_posts(emulator)] == ["flush", "suspend"]
    assert all(e.get("signature") == "intact" for e in status_reads(emulator))
    assert emulator.target("c1", "filer-01")["state"] == "Suspended"


def shows_ready():
    """The recorded case (PS-T 09:39:43): the suspend Succeeded, the target reads Ready."""
    return targets({"name": "filer-01", "actions": {"suspend": {"shows": False}}})


def test_a_suspend_that_succeeded_while_the_target_reads_ready_fails_within_the_confirmation_window(runner, emulator):
    emulator.load(shows_ready())
    r = suspend(runner, flush=False, wait_timeout=600, confirm_timeout=5).result
    assert r["failed"] is True, r
    assert "Succeeded" in r["msg"] and "Ready" in r["msg"], r["msg"]
    assert r["elapsed"] < 30  # not the whole wait_timeout
    assert [e["action"] for e in target_posts(emulator)] == ["suspend"]
    assert emulator.target("c1", "filer-01")["state"] == "Ready"


def test_trusting_the_operation_accepts_that_suspend_with_a_warning(runner, emulator):
    emulator.load(shows_ready())
    run = suspend(runner, flush=False, wait_timeout=600, confirm_timeout=5, trust_operation=True)
    r = run.result
    assert r.get("failed") is not True, r
    assert r["status"] == "Succeeded"
    assert r.get("warnings") or "[WARNING]" in run.output
    assert [e["action"] for e in target_posts(emulator)] == ["suspend"]


# Answers torn mid-body -----------------------------------------------------------------------------
HOWS = [pytest.param({"how": "reset"}, id="reset"), pytest.param({"how": "close"}, id="close"),
        pytest.param({"how": "stall", "delay": 2}, id="stall")]


@pytest.mark.parametrize("how", HOWS)
def test_a_cache_flush_survives_a_status_poll_torn_mid_body(runner, emulator, how):
    emulator.load(scenario(flush={"duration": 3}, faults=[dict(how, on="operation", kind="midbody", count=1)]))
    r = runner.play([{"azure_hpc.cache.azure_hpc_cache_flush": {"name": "c1", "resource_group": "rg",
                                                                "poll_interval": 1}, "timeout": BOUND}]).result
    assert r.get("failed") is not True, r
    assert r["status"] == "Succeeded"
    assert len(requests_of(emulator, "flush", "POST")) == 1 and emulator.flushes("c1") == 1
    assert len(torn(emulator)) == 1 and torn(emulator)[0]["kind"] == "operation"


@pytest.mark.parametrize("how", HOWS)
def test_a_target_suspend_survives_a_status_poll_torn_mid_body(runner, emulator, how):
    emulator.load(targets({"name": "filer-01", "actions": {"suspend": {"duration": 3}}},
                          faults=[dict(how, on="operation", kind="midbody", count=1)]))
    r = suspend(runner, flush=False).result
    assert r.get("failed") is not True, r
    assert r["status"] == "Succeeded" and r["state_after"] == "Suspended"
    assert [e["action"] for e in target_posts(emulator)] == ["suspend"]
    assert len(torn(emulator)) == 1 and torn(emulator)[0]["kind"] == "operation"


@pytest.mark.parametrize("how", HOWS)
def test_a_target_suspend_survives_a_target_read_torn_mid_body(runner, emulator, how):
    # the first read of the target is whole; the next one, after the POST, is torn
    emulator.load(targets({"name": "filer-01", "actions": {"suspend": {"duration": 3}}},
                          faults=[dict(how, on="target", kind="midbody", after=1, count=1)]))
    r = suspend(runner, flush=False).result
    assert r.get("failed") is not True, r
    assert r["status"] == "Succeeded" and r["state_after"] == "Suspended"
    assert [e["action"] for e in target_posts(emulator)] == ["suspend"]
    assert len(torn(emulator)) == 1 and torn(emulator)[0]["kind"] == "target"
    assert emulator.target("c1", "filer-01")["state"] == "Suspended"


def test_the_recorded_durations_are_scaled_by_time_scale(emulator):
    """The recorded defaults times time_scale; a duration the scenario gives stands as it is."""
    emulator.load(targets({"name": "filer-01"}, {"name": "filer-02", "actions": {"suspend": {"duration": 30}}},
                          time_scale=0.001))
    urls = {}
    for name in ("filer-01", "filer-02"):
        path = TARGET_PATH.replace("filer-01", name) + "/suspend?api-version=" + RECORDED["api_version"]
        urls[name] = local(raw(emulator, "POST", path)[1]["Azure-AsyncOperation"], emulator)
    deadline = time.monotonic() + 10
    first = raw(emulator, "GET", urls["filer-01"])  # starts the first_read clock: 1 s x 0.001
    while json.loads(first[2])["status"] == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.05)
        first = raw(emulator, "GET", urls["filer-01"])
    assert json.loads(first[2])["status"] == "Succeeded"
    assert json.loads(raw(emulator, "GET", urls["filer-02"])[2])["status"] == "InProgress"  # 30 s, not 0.03 s
