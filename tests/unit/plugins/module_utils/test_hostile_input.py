# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property-based tests: no input crashes a validator, the rules admit exactly what they say,
and no value can change the path or query of a request."""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_plus, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as v
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import OriginError, ValidationError
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, CLOUD, FakeSession, FakeTokens

EXAMPLES = 1000
ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=200),
                     st.binary(max_size=50), st.lists(st.text(max_size=5), max_size=3))
HOSTILE = st.sampled_from(["../", "..%2f", "%2F", "?", "#", " ", "\t", "\n", "&", "=", "/", "\\", "%00", "\u2215",
                           "\uff0f", "\u2024", "a", "Z", "0", "-", "_", ".", "(", ")", "é"])


def hostile_text(max_size=120):
    return st.one_of(st.text(max_size=max_size), st.lists(HOSTILE, max_size=40).map("".join))


def refused_or_admitted(check, value, option, admitted):
    try:
        result = check(value, option)
    except ValidationError as err:
        assert not admitted, "refused %r" % (value,)
        assert err.option == option and str(err).startswith(option + ": ")
        return None
    assert admitted, "admitted %r" % (value,)
    return result


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(ANYTHING, hostile_text()))
def test_cache_name(value):
    admitted = isinstance(value, str) and re.fullmatch(r"[-0-9a-zA-Z_]{1,80}", value, re.ASCII) is not None
    refused_or_admitted(v.cache_name, value, "name", admitted)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(ANYTHING, hostile_text(120)))
def test_resource_group(value):
    admitted = (isinstance(value, str) and 1 <= len(value) <= 90 and not value.endswith(".")
                and all(ch.isalnum() or ch in "_-.()" for ch in value)
                and re.fullmatch(r"[-\w.()]{1,90}", value) is not None)
    refused_or_admitted(v.resource_group, value, "resource_group", admitted)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(ANYTHING, st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), hostile_text(40)))
def test_subscription_id(value):
    admitted = isinstance(value, str) and re.fullmatch(
        r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", value) is not None
    result = refused_or_admitted(v.subscription_id, value, "subscription_id", admitted)
    assert result is None or result == value.lower()


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(ANYTHING, hostile_text(30)))
def test_api_version(value):
    admitted = isinstance(value, str) and value != "" and all(c.isprintable() and not c.isspace() for c in value)
    refused_or_admitted(v.api_version, value, "api_version", admitted)


@settings(max_examples=EXAMPLES, deadline=None)
@given(ANYTHING)
def test_positive_int(value):
    admitted = isinstance(value, int) and not isinstance(value, bool) and value > 0
    refused_or_admitted(v.positive_int, value, "wait_timeout", admitted)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(ANYTHING, st.lists(hostile_text(10), max_size=4)))
def test_state_names(value):
    admitted = isinstance(value, list) and all(isinstance(x, str) and x.strip() for x in value)
    refused_or_admitted(v.state_names, value, "allowed_states", admitted)


def ops():
    client = ArmClient(CLOUD, FakeTokens(), session=FakeSession([]))
    return CacheOperations(client, "2026-01-01")


@settings(max_examples=EXAMPLES, deadline=None)
@given(hostile_text(), hostile_text(), hostile_text(), hostile_text(20))
def test_no_value_changes_the_path_or_the_query(sub, group, name, api):
    operations = ops()
    operations.api_version = api
    url = operations.cache_url(CacheRef(sub, group, name), "flush")
    parts = urlsplit(url)
    assert url.startswith(ARM) and not parts.fragment
    segments = parts.path.split("/")
    assert len(segments) == 10  # "", subscriptions, s, resourceGroups, g, providers, P, caches, n, flush
    assert [unquote(s) for s in segments[1:]] == [
        "subscriptions", sub, "resourceGroups", group, "providers", "Microsoft.StorageCache", "caches", name, "flush"]
    query = parts.query.split("&")
    assert len(query) == 1 and query[0].startswith("api-version=") and unquote_plus(query[0][12:]) == api


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.sampled_from(["http", "https", "ftp", "file", "HTTPS", ""]), hostile_text(30),
       st.one_of(st.none(), st.integers(min_value=0, max_value=70000)), st.booleans())
def test_only_the_arm_origin_is_ever_followed(scheme, host, port, userinfo):
    client = ArmClient(CLOUD, FakeTokens(), session=FakeSession([]))
    url = "%s://%s%s%s/op" % (scheme, "u:p@" if userinfo else "", host, "" if port is None else ":%d" % port)
    try:
        resolved = client.absolute(url)
    except OriginError:
        return
    parts = urlsplit(resolved)
    assert parts.scheme == "https" and parts.hostname == "management.example.test"
    assert (parts.port or 443) == 443 and parts.username is None and parts.password is None
