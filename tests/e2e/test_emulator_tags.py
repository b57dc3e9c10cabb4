# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ARM's Tags API on a cache, as the emulator answers it over raw HTTP (no module involved): Merge, Replace
and Delete, ARM's validation (a refused request changes nothing), the 50-tag limit, the policy and
permission denials, faults on tag reads and writes, and the control route that plants tags."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from conftest import SUB, requests_of, scenario  # pylint: disable=import-error

pytestmark = pytest.mark.stack_independent  # only the newest stack runs it (conftest.py)

CACHE = "/subscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/c1" % SUB
TAGS = CACHE + "/providers/Microsoft.Resources/tags/default"
API = "?api-version=2021-04-01"
CACHE_API = "?api-version=2026-01-01"  # the cache's own routes: Microsoft.StorageCache's api-versions
START = {"owner": "hpc", "env": "prod"}


def token(emulator):
    return json.loads(urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - loopback only
        emulator.url + "/_emulator/token", method="POST"), timeout=10).read())["access_token"]


def call(emulator, method, path, body=None, raw=None, auth=True):
    """One request on its own connection: (status, headers, parsed JSON body or None)."""
    parts = urlsplit(emulator.url)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Authorization": "Bearer " + token(emulator)} if auth else {}
    if data is not None:
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, body=data, headers=headers)
        answer = conn.getresponse()
        payload = answer.read()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, json.loads(payload) if payload else None
    finally:
        conn.close()


def patch(emulator, operation, tags, path=TAGS + API):
    return call(emulator, "PATCH", path, {"operation": operation, "properties": {"tags": tags}})


def get_tags(emulator):
    status, _headers, body = call(emulator, "GET", TAGS + API)
    assert status == 200, body
    return body["properties"]["tags"]


def cache_tags(emulator):
    """The tags as the cache's own GET and its listing show them (which must agree)."""
    status, _headers, cache = call(emulator, "GET", CACHE + "?api-version=2024-03-01")
    assert status == 200
    listing = call(emulator, "GET", "/subscriptions/%s/providers/Microsoft.StorageCache/caches"
                                    "?api-version=2024-03-01" % SUB)[2]["value"]
    # an untagged cache's GET has no tags key at all (recorded, docs/service-behaviour.md rule 37)
    assert [c.get("tags", {}) for c in listing if c["name"] == "c1"] == [cache.get("tags", {})]
    return cache.get("tags", {})


@pytest.fixture
def tagged(emulator):
    emulator.load(scenario(tags=dict(START)))
    return emulator


def test_read_the_tags_resource(tagged):
    status, headers, body = call(tagged, "GET", TAGS + API)
    assert status == 200
    assert body == {"id": TAGS, "name": "default", "type": "Microsoft.Resources/tags", "properties": {"tags": START}}
    assert headers["x-ms-ratelimit-remaining-subscription-reads"]
    entry = requests_of(tagged, "tags")[-1]
    assert (entry["method"], entry["cache"], entry["status"]) == ("GET", "c1", 200)


def test_merge_adds_and_updates_names_case_insensitively(tagged):
    status, headers, body = patch(tagged, "Merge", {"Owner": "storage", "env": "Prod", "window": "sun 02:00"})
    assert status == 200 and body["id"] == TAGS and body["type"] == "Microsoft.Resources/tags"
    after = {"Owner": "storage", "env": "Prod", "window": "sun 02:00"}  # the new spelling of owner, the new value
    assert body["properties"]["tags"] == after
    assert get_tags(tagged) == after and cache_tags(tagged) == after and tagged.tags("c1") == after
    assert "x-ms-ratelimit-remaining-subscription-writes" in headers
    entry = requests_of(tagged, "tags_write")[-1]
    assert (entry["method"], entry["cache"], entry["status"]) == ("PATCH", "c1", 200)
    # an empty Merge changes nothing
    assert patch(tagged, "Merge", {})[2]["properties"]["tags"] == after


def test_replace_replaces_the_whole_set(tagged):
    status, _headers, body = patch(tagged, "Replace", {"record": "v1"})
    assert status == 200 and body["properties"]["tags"] == {"record": "v1"} == cache_tags(tagged)
    assert patch(tagged, "Replace", {})[2]["properties"]["tags"] == {} == cache_tags(tagged)


def test_delete_matches_values_exactly_and_an_empty_value_deletes_whatever(tagged):
    tagged.set_tags("c1", {"owner": "hpc", "env": "prod", "window": "sun", "team": "a"})
    # a value that differs, even only in case, keeps the tag; a name absent is no error
    status, _headers, body = patch(tagged, "Delete", {"OWNER": "HPC", "env": "prod ", "absent": ""})
    assert status == 200 and body["properties"]["tags"] == {"owner": "hpc", "env": "prod", "window": "sun", "team": "a"}
    # the same value (the name in any case) deletes it; "" deletes whatever the value
    status, _headers, body = patch(tagged, "Delete", {"OWNER": "hpc", "Window": "", "team": "b"})
    assert status == 200 and body["properties"]["tags"] == {"env": "prod", "team": "a"} == cache_tags(tagged)


def test_the_operation_and_member_names_are_read_as_arm_reads_them(tagged):
    status, _headers, body = call(tagged, "PATCH", TAGS + API,
                                  {"Operation": "merge", "Properties": {"Tags": {"a": "1"}}})
    assert status == 200 and body["properties"]["tags"] == dict(START, a="1")


@pytest.mark.parametrize("tags, code", [
    ({"a<b": "x"}, "InvalidTagNameCharacters"),
    ({"a>b": "x"}, "InvalidTagNameCharacters"),
    ({"50%": "x"}, "InvalidTagNameCharacters"),
    ({"a&b": "x"}, "InvalidTagNameCharacters"),
    ({"a\\b": "x"}, "InvalidTagNameCharacters"),
    ({"a?b": "x"}, "InvalidTagNameCharacters"),
    ({"a/b": "x"}, "InvalidTagNameCharacters"),
    ({"a\nb": "x"}, "InvalidTagNameCharacters"),
    ({"n" * 513: "x"}, "InvalidTagNameLength"),
    ({"": "x"}, "InvalidTagNameLength"),
    ({"v": "x" * 257}, "InvalidTagValueLength"),
    ({"ok": "x", "v": "\U0001F600" * 129}, "InvalidTagValueLength"),  # 258 UTF-16 code units, as .NET counts
    ({"v": 1}, "InvalidRequestContent"),
    ({"v": None}, "InvalidRequestContent"),
    ({"Dup": "1", "dup": "2"}, "InvalidRequestContent"),
])
@pytest.mark.parametrize("operation", ["Merge", "Replace", "Delete"])
def test_an_invalid_tag_is_refused_and_changes_nothing(tagged, tags, code, operation):
    status, _headers, body = patch(tagged, operation, tags)
    assert status == 400 and body["error"]["code"] == code, body
    assert get_tags(tagged) == START == cache_tags(tagged)
    assert requests_of(tagged, "tags_write")[-1]["status"] == 400


@pytest.mark.parametrize("raw", [
    b"", b"not json", b"[]", b'"Merge"', b'{"operation": "Merge"}',
    b'{"operation": "Upsert", "properties": {"tags": {}}}',
    b'{"properties": {"tags": {"a": "1"}}}', b'{"operation": "Merge", "properties": {"tags": ["a"]}}',
    b'{"operation": "Merge", "properties": []}', b'{"operation": 1, "properties": {"tags": {}}}',
])
def test_a_body_not_of_the_tags_shape_is_refused_and_changes_nothing(tagged, raw):
    status, _headers, body = call(tagged, "PATCH", TAGS + API, raw=raw)
    assert status == 400 and body["error"]["code"] == "InvalidRequestContent", body
    assert get_tags(tagged) == START


def test_the_longest_name_and_value_are_accepted(tagged):
    tags = {"n" * 512: "v" * 256, "e": ""}
    status, _headers, body = patch(tagged, "Replace", tags)
    assert status == 200 and body["properties"]["tags"] == tags == cache_tags(tagged)


def test_the_50_tag_limit_counts_the_tags_already_there(tagged):
    planted = {"t%02d" % i: "v" for i in range(49)}
    tagged.set_tags("c1", planted)
    status, _headers, body = patch(tagged, "Merge", {"new1": "x", "new2": "x"})  # 51
    assert status == 400 and body["error"]["code"] == "TooManyTags"
    assert get_tags(tagged) == planted
    status, _headers, body = patch(tagged, "Merge", {"new1": "x", "T00": "w"})  # 50: one new, one renamed
    assert status == 200 and len(body["properties"]["tags"]) == 50 and body["properties"]["tags"]["T00"] == "w"
    status, _headers, body = patch(tagged, "Merge", {"one_more": "x"})
    assert status == 400 and body["error"]["code"] == "TooManyTags" and len(get_tags(tagged)) == 50
    fifty_one = {"r%02d" % i: "v" for i in range(51)}
    assert patch(tagged, "Replace", fifty_one)[2]["error"]["code"] == "TooManyTags"
    assert len(cache_tags(tagged)) == 50
    fifty = {"r%02d" % i: "v" for i in range(50)}
    assert patch(tagged, "Replace", fifty)[2]["properties"]["tags"] == fifty == cache_tags(tagged)


def test_a_write_denied_by_policy(emulator):
    emulator.load(scenario(tags=dict(START), tags_write="denied_by_policy"))
    status, _headers, body = patch(emulator, "Merge", {"record": "v1"})
    assert status == 403 and body["error"]["code"] == "RequestDisallowedByPolicy"
    assert body["error"]["message"].startswith("Resource 'c1' was disallowed by policy.")
    assert get_tags(emulator) == START == cache_tags(emulator)  # reads are not denied
    # ARM's validation answers first
    assert patch(emulator, "Merge", {"a/b": "x"})[2]["error"]["code"] == "InvalidTagNameCharacters"


def test_a_write_without_the_permission(emulator):
    emulator.load(scenario(tags=dict(START), tags_write="forbidden"))
    for operation in ("Merge", "Replace", "Delete"):
        status, _headers, body = patch(emulator, operation, {"owner": ""})
        assert status == 403 and body["error"]["code"] == "AuthorizationFailed"
        assert "'Microsoft.Resources/tags/write' over scope '%s'" % TAGS in body["error"]["message"]
    assert get_tags(emulator) == START == cache_tags(emulator)


def test_a_tags_write_setting_that_means_nothing_is_refused(emulator):
    emulator.load(scenario(tags=dict(START)))
    with pytest.raises(urllib.error.HTTPError) as refused:
        emulator.load(scenario(tags_write="denied"))
    assert refused.value.code == 400
    assert get_tags(emulator) == START  # the scenario before stands


def test_a_fault_on_a_tags_write_changes_nothing_and_is_used_up(emulator):
    emulator.load(scenario(tags=dict(START), faults=[
        {"on": "tags_write", "kind": "status", "status": 409, "code": "Conflict", "count": 1}]))
    status, _headers, body = patch(emulator, "Merge", {"record": "v1"})
    assert status == 409 and body["error"]["code"] == "Conflict"
    assert get_tags(emulator) == START
    assert patch(emulator, "Merge", {"record": "v1"})[0] == 200 and get_tags(emulator) == dict(START, record="v1")
    assert [(e["kind"], e.get("fault"), e["status"]) for e in requests_of(emulator, "tags_write")] == [
        ("tags_write", "status:409", 409), ("tags_write", None, 200)]


def test_a_processed_tags_write_whose_answer_is_lost(emulator):
    emulator.load(scenario(tags=dict(START), faults=[{"on": "tags_write", "kind": "reset", "processed": True}]))
    with pytest.raises((ConnectionError, http.client.HTTPException, socket.error)):
        patch(emulator, "Merge", {"record": "v1"})
    assert get_tags(emulator) == dict(START, record="v1")  # it landed all the same
    assert requests_of(emulator, "tags_write")[-1]["status"] == "reset"


def test_a_tags_write_answer_torn_mid_body(emulator):
    emulator.load(scenario(tags=dict(START), faults=[{"on": "tags_write", "kind": "midbody", "how": "close"}]))
    with pytest.raises(http.client.IncompleteRead):
        patch(emulator, "Merge", {"record": "v1"})
    assert get_tags(emulator) == START
    assert requests_of(emulator, "tags_write")[-1]["fault"] == "midbody:close"


def test_a_fault_on_a_tags_read_with_its_own_body(emulator):
    emulator.load(scenario(tags=dict(START), faults=[
        {"on": "tags", "kind": "status", "status": 429, "retry_after": 1, "body": {"error": {"code": "Throttled"}}},
        {"on": "tags", "kind": "headers", "headers": {"x-emulator": "yes"}, "cache": "c1"}]))
    status, headers, body = call(emulator, "GET", TAGS + API)
    assert status == 429 and headers["retry-after"] == "1" and body == {"error": {"code": "Throttled"}}
    status, headers, body = call(emulator, "GET", TAGS + API)
    assert status == 200 and headers["x-emulator"] == "yes" and body["properties"]["tags"] == START
    # a fault on tags reads leaves writes alone, and the other way round
    assert patch(emulator, "Merge", {"a": "1"})[0] == 200


def test_routes_api_version_missing_cache_and_method(tagged):
    lower = TAGS.lower().replace("microsoft.resources/tags/default", "MICROSOFT.RESOURCES/TAGS/DEFAULT")
    assert call(tagged, "GET", lower + API)[0] == 200
    status, _headers, body = call(tagged, "GET", TAGS)
    assert status == 400 and body["error"]["code"] == "MissingApiVersionParameter"
    status, _headers, body = patch(tagged, "Merge", {"a": "1"}, path=TAGS)
    assert status == 400 and body["error"]["code"] == "MissingApiVersionParameter"
    other = TAGS.replace("/caches/c1/", "/caches/nope/") + API
    status, _headers, body = call(tagged, "GET", other)
    assert status == 404 and body["error"]["code"] == "ResourceNotFound"
    status, _headers, body = patch(tagged, "Merge", {"a": "1"}, path=other)
    assert status == 404 and body["error"]["code"] == "ResourceNotFound"
    assert call(tagged, "PUT", TAGS + API, {"properties": {"tags": {}}})[0] == 405
    assert call(tagged, "PUT", CACHE + "?api-version=2026-01-01", {"tags": {}})[0] == 405  # no PUT of the cache
    # the cache's own PATCH (Caches_Update) without tags leaves them alone; the Tags API has no say there
    assert call(tagged, "PATCH", CACHE + "?api-version=2026-01-01", {"properties": {}})[0] == 200
    assert call(tagged, "PATCH", TAGS + API, {"operation": "Merge", "properties": {"tags": {"a": "1"}}},
                auth=False)[0] == 401
    assert get_tags(tagged) == START


def test_the_control_route_plants_tags_past_arm_limits(tagged):
    forged = {"t%02d" % i: "v" for i in range(55)}
    forged["long"] = "x" * 300
    assert tagged.set_tags("c1", forged) == 1
    assert cache_tags(tagged) == forged == get_tags(tagged) == tagged.tags("c1")
    assert [c["tags"] for c in tagged.state()["caches"]] == [forged]
    assert not requests_of(tagged, "tags_write")  # control traffic is not logged as ARM's
    with pytest.raises(urllib.error.HTTPError) as missing:
        tagged.set_tags("nope", {})
    assert missing.value.code == 404
    for bad in (None, [], {"a": 1}):
        request = urllib.request.Request(tagged.url + "/_emulator/tags?cache=c1", method="POST",
                                         data=json.dumps({"tags": bad}).encode())
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310 - loopback only
        assert refused.value.code == 400
    assert tagged.tags("c1") == forged


# The answers the Tags API may give that a cache's scope never was recorded giving (scenario options) -------
BOUND = 5.0  # seconds any wait below may take, far above the durations it waits for
OPERATION_RESULTS = "/subscriptions/%s/providers/Microsoft.Resources/operationresults/" % SUB


def until(check, bound=BOUND):
    """Poll check (bounded) until it returns something true; that value."""
    deadline = time.monotonic() + bound
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "never came true"
        time.sleep(0.05)


def local(url, emulator):
    assert url.startswith(emulator.url + "/subscriptions/"), url  # on the ARM origin, ARM's path family
    return url[len(emulator.url):]


def test_an_async_write_answers_202_and_lands_when_its_operation_ends(emulator):
    emulator.load(scenario(tags=dict(START), tags_write_mode="async", tags_write_duration=0.5))
    sent = time.monotonic()
    status, headers, body = patch(emulator, "Merge", {"record": "v1"})
    assert status == 202 and body is None and "retry-after" not in headers and "azure-asyncoperation" not in headers
    location = local(headers["location"], emulator)
    assert location.startswith(OPERATION_RESULTS) and location.endswith(API)
    assert get_tags(emulator) == START == cache_tags(emulator)  # not yet
    pending = emulator.state()["caches"][0]["tags_pending"]
    assert len(pending) == 1 and location.startswith(OPERATION_RESULTS + pending[0]["id"])
    status, headers, body = call(emulator, "GET", location)
    assert status == 202 and body is None and local(headers["location"], emulator) == location

    def landed():
        answer = call(emulator, "GET", location)
        return answer if answer[0] != 202 else None

    status, _headers, body = until(landed)
    assert time.monotonic() - sent >= 0.5
    after = dict(START, record="v1")
    assert status == 200 and body == {"id": TAGS, "name": "default", "type": "Microsoft.Resources/tags",
                                      "properties": {"tags": after}}
    assert get_tags(emulator) == after == cache_tags(emulator) == emulator.tags("c1")
    assert emulator.state()["caches"][0]["tags_pending"] == []
    assert call(emulator, "GET", location)[0] == 200  # and stays so
    polls = requests_of(emulator, "tags_operation")
    assert {e["cache"] for e in polls} == {"c1"} and polls[0]["status"] == 202 and polls[-1]["status"] == 200
    assert requests_of(emulator, "tags_write")[-1]["status"] == 202
    unknown = OPERATION_RESULTS + "00000000-0000-0000-0000-000000000001" + API
    assert call(emulator, "GET", unknown)[0] == 404


def test_an_async_write_with_retry_after(emulator):
    emulator.load(scenario(tags=dict(START), tags_write_mode="async", tags_write_duration=0.3,
                           tags_write_retry_after=1))
    status, headers, _body = patch(emulator, "Delete", {"owner": ""})
    assert status == 202 and headers["retry-after"] == "1"
    location = local(headers["location"], emulator)
    status, headers, _body = call(emulator, "GET", location)
    assert status == 202 and headers["retry-after"] == "1"
    status, headers, body = until(lambda: [a for a in [call(emulator, "GET", location)] if a[0] != 202])[0]
    assert status == 200 and "retry-after" not in headers and body["properties"]["tags"] == {"env": "prod"}


def test_an_async_write_is_refused_with_409_while_another_is_pending(emulator):
    emulator.load(scenario(tags=dict(START), tags_write_mode="async", tags_write_duration=0.5,
                           tags_conflict="while_busy"))
    assert patch(emulator, "Merge", {"record": "v1"})[0] == 202
    status, _headers, body = patch(emulator, "Merge", {"other": "x"})
    assert status == 409 and body["error"]["code"] == "AnotherOperationInProgress"
    assert body["error"]["message"].startswith("Another operation is in progress on the resource '%s'" % CACHE)
    assert requests_of(emulator, "tags_write")[-1]["conflict"] == "a tags write is in progress"
    until(lambda: get_tags(emulator) == dict(START, record="v1"))
    assert emulator.tags("c1") == dict(START, record="v1")  # the refused write changed nothing
    assert patch(emulator, "Merge", {"other": "x"})[0] == 202


def test_async_writes_without_conflicts_land_in_the_order_sent(emulator):
    planted = {"t%02d" % i: "v" for i in range(48)}
    emulator.load(scenario(tags=planted, tags_write_mode="async", tags_write_duration=0.3))
    first = local(patch(emulator, "Merge", {"a": "1"})[1]["location"], emulator)
    second = local(patch(emulator, "Merge", {"b": "2"})[1]["location"], emulator)
    third = local(patch(emulator, "Merge", {"c": "3"})[1]["location"], emulator)  # 51 once the others land
    status, _headers, body = until(lambda: [a for a in [call(emulator, "GET", third)] if a[0] != 202])[0]
    assert status == 400 and body["error"]["code"] == "TooManyTags"  # refused when it came to land
    assert call(emulator, "GET", first)[2]["properties"]["tags"] == dict(planted, a="1")
    assert call(emulator, "GET", second)[2]["properties"]["tags"] == dict(planted, a="1", b="2")
    assert get_tags(emulator) == dict(planted, a="1", b="2")


@pytest.mark.parametrize("busy", ["flush", "stop", "target"])
def test_a_write_is_refused_with_409_while_the_cache_is_busy_and_changes_nothing(emulator, busy):
    emulator.load(scenario(tags=dict(START), tags_conflict="while_busy", flush={"duration": 60},
                           stop={"duration": 60}, storage_targets=[{"name": "t1", "action": {"duration": 60}}]))
    path = CACHE + ("/storageTargets/t1/suspend" if busy == "target" else "/" + busy) + CACHE_API
    assert call(emulator, "POST", path)[0] in (202, 204)
    for operation in ("Merge", "Replace", "Delete"):
        status, _headers, body = patch(emulator, operation, {"owner": ""})
        assert status == 409 and body["error"]["code"] == "AnotherOperationInProgress", body
    assert get_tags(emulator) == START == emulator.tags("c1")
    reason = requests_of(emulator, "tags_write")[-1]["conflict"]
    assert reason == {"flush": "the cache is Flushing", "stop": "the cache is Stopping",
                      "target": "storage target t1: suspend in progress"}[busy]
    assert emulator.finish("c1", target="t1" if busy == "target" else None, action=busy == "stop") == 1
    status, _headers, body = patch(emulator, "Merge", {"record": "v1"})
    assert status == 200 and get_tags(emulator) == dict(START, record="v1")


def test_without_conflicts_a_write_lands_while_a_target_action_runs(emulator):
    emulator.load(scenario(tags=dict(START), storage_targets=[{"name": "t1", "action": {"duration": 60}}]))
    assert call(emulator, "POST", CACHE + "/storageTargets/t1/suspend" + CACHE_API)[0] == 202
    assert patch(emulator, "Merge", {"record": "v1"})[0] == 200 and get_tags(emulator) == dict(START, record="v1")


def test_reads_show_the_tags_before_a_change_for_the_read_lag(emulator):
    emulator.load(scenario(tags=dict(START), tags_read_lag=1.5))
    sent = time.monotonic()
    status, _headers, body = patch(emulator, "Merge", {"record": "v1"})
    assert status == 200 and body["properties"]["tags"] == dict(START, record="v1")  # the answer shows the write
    # a write applies to the true tags, whatever reads show
    status, _headers, body = patch(emulator, "Delete", {"record": "v1"})
    assert status == 200 and body["properties"]["tags"] == START
    status, _headers, body = patch(emulator, "Merge", {"record": "v2"})
    assert status == 200 and body["properties"]["tags"] == dict(START, record="v2")
    assert get_tags(emulator) == START == cache_tags(emulator)  # reads still show the tags before the changes
    state = emulator.state()["caches"][0]
    assert state["tags"] == dict(START, record="v2") and state["visible_tags"] == START
    until(lambda: get_tags(emulator) == dict(START, record="v2"))
    assert time.monotonic() - sent >= 1.5
    assert cache_tags(emulator) == dict(START, record="v2")
    # tags planted through the control route show at once
    emulator.set_tags("c1", {"planted": "yes"})
    assert get_tags(emulator) == {"planted": "yes"} == cache_tags(emulator)


def test_delete_ignoring_values(emulator):
    emulator.load(scenario(tags={"owner": "hpc", "env": "prod", "keep": "x"}, tags_delete="ignore_values"))
    status, _headers, body = patch(emulator, "Delete", {"OWNER": "someone else", "env": "", "absent": "z"})
    assert status == 200 and body["properties"]["tags"] == {"keep": "x"} == get_tags(emulator)


def test_a_throttled_write_changes_nothing_unless_processed(emulator):
    emulator.load(scenario(tags=dict(START), faults=[
        {"on": "tags_write", "status": 429, "retry_after": 2},
        {"on": "tags_write", "status": 429, "retry_after": 1, "processed": True}]))
    status, headers, body = patch(emulator, "Merge", {"record": "v1"})
    assert status == 429 and headers["retry-after"] == "2" and body["error"]["code"] == "TooManyRequests"
    assert get_tags(emulator) == START == emulator.tags("c1")
    status, headers, _body = patch(emulator, "Merge", {"record": "v2"})
    assert status == 429 and headers["retry-after"] == "1"
    assert get_tags(emulator) == dict(START, record="v2")  # landed before the 429 answered in its place
    assert patch(emulator, "Merge", {"record": "v3"})[0] == 200  # both faults used up


@pytest.mark.parametrize("bad", [
    {"tags_write_mode": "later"}, {"tags_write_mode": None}, {"tags_write_duration": -1},
    {"tags_write_duration": "soon"}, {"tags_write_duration": True}, {"tags_write_retry_after": -1},
    {"tags_write_retry_after": 1.5}, {"tags_write_retry_after": "1"}, {"tags_conflict": "always"},
    {"tags_read_lag": -0.5}, {"tags_read_lag": None}, {"tags_delete": "values"}, {"tags_lag": 1},
])
def test_a_tags_option_that_means_nothing_is_refused(emulator, bad):
    emulator.load(scenario(tags=dict(START)))
    with pytest.raises(urllib.error.HTTPError) as refused:
        emulator.load(scenario(**bad))
    assert refused.value.code == 400 and list(bad)[0] in refused.value.read().decode()
    assert get_tags(emulator) == START  # the scenario before stands
