# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ARM's Tags API on a cache, as the emulator answers it over raw HTTP (no module involved): Merge, Replace
and Delete, ARM's validation (a refused request changes nothing), the 50-tag limit, the policy and
permission denials, faults on tag reads and writes, and the control route that plants tags."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from conftest import SUB, requests_of, scenario  # pylint: disable=import-error

CACHE = "/subscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/c1" % SUB
TAGS = CACHE + "/providers/Microsoft.Resources/tags/default"
API = "?api-version=2021-04-01"
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
