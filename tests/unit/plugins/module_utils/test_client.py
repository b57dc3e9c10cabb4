# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import email.utils

import pytest
import requests

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.exchange import fetch_metadata
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.response import retry_after_seconds
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.cloud import Cloud
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.version import COLLECTION_VERSION
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import (
    ApiVersionError,
    ArmError,
    HpcCacheError,
    OriginError,
    TransportError,
)

from ansible_collections.azure_hpc.cache.tests.unit.fakes import (
    ARM,
    CLOUD,
    FakeRaw,
    FakeSession,
    FakeTokens,
    refused,
    reset,
)

URL = ARM + "subscriptions/s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/c?api-version=1"
CLOUD_ERROR = {"error": {"code": "Throttled", "message": "slow down", "target": "name"}}


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_get_retries_transient_status_then_succeeds(make_client, clock, status):
    client, session = make_client([FakeRaw(status, CLOUD_ERROR), FakeRaw(200, {"ok": 1})])
    assert client.get(URL).json() == {"ok": 1}
    assert len(session.calls) == 2
    assert clock.sleeps == [1.0]  # first backoff, full jitter factor with rng=1.0


@pytest.mark.parametrize("status", [400, 403, 404, 409])
def test_get_does_not_retry_client_errors(make_client, status):
    client, session = make_client([FakeRaw(status, {"error": {"code": "Nope", "message": "no"}})])
    with pytest.raises(ArmError) as err:
        client.get(URL)
    assert (err.value.status, err.value.code, err.value.arm_message) == (status, "Nope", "no")
    assert len(session.calls) == 1


def test_get_honours_retry_after(make_client, clock):
    client, unused = make_client([FakeRaw(429, CLOUD_ERROR, {"Retry-After": "7"}), FakeRaw(200, {})])
    client.get(URL)
    assert clock.sleeps == [7.0]


def test_get_backoff_grows_and_gives_up_after_attempts(make_client, clock):
    client, session = make_client(lambda m, u: FakeRaw(503, CLOUD_ERROR), attempts=4)
    with pytest.raises(ArmError, match="Throttled"):
        client.get(URL)
    assert len(session.calls) == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_get_stops_at_deadline(make_client, clock):
    client, session = make_client(lambda m, u: FakeRaw(503, CLOUD_ERROR, {"Retry-After": "30"}), attempts=10)
    with pytest.raises(ArmError):
        client.get(URL, deadline=clock.now + 45)
    assert len(session.calls) == 2  # a third try would start after the deadline
    assert clock.sleeps == [30.0]


def test_get_retries_connection_errors_and_torn_bodies(make_client):
    client, session = make_client([reset(), requests.exceptions.ReadTimeout("slow"), FakeRaw(200, raw=b'{"a":'),
                                   FakeRaw(200, {"a": 1})])
    assert client.get(URL).json() == {"a": 1}
    assert len(session.calls) == 4


def test_get_gives_up_on_malformed_json_clearly(make_client):
    client, unused = make_client(lambda m, u: FakeRaw(200, raw=b"<html>"), attempts=2)
    with pytest.raises(ArmError, match="InvalidResponse.*not valid JSON"):
        client.get(URL)


def test_401_refreshes_token_once(make_client):
    client, session = make_client([FakeRaw(401, {"error": {"code": "ExpiredAuthenticationToken", "message": "x"}}),
                                   FakeRaw(200, {})])
    client.get(URL)
    assert client.tokens.calls == [False, True]
    assert session.calls[1]["headers"]["Authorization"] == "Bearer tok-2"


def test_second_401_fails_clearly(make_client):
    client, session = make_client(lambda m, u: FakeRaw(401, {"error": {"code": "InvalidAuthenticationToken",
                                                                       "message": "bad"}}))
    with pytest.raises(ArmError, match="InvalidAuthenticationToken"):
        client.get(URL)
    assert len(session.calls) == 2


def test_every_request_carries_ids_and_user_agent(make_client):
    client, session = make_client([FakeRaw(200, {}), FakeRaw(200, {})])
    client.get(URL)
    client.get(URL)
    ids = [c["headers"]["x-ms-client-request-id"] for c in session.calls]
    assert len(set(ids)) == 2
    assert session.calls[0]["headers"]["User-Agent"].startswith("azure_hpc.cache/%s " % COLLECTION_VERSION)


def test_error_carries_request_ids(make_client):
    client, session = make_client([FakeRaw(404, {"error": {"code": "ResourceNotFound", "message": "gone"}},
                                           {"x-ms-request-id": "svc-1"})])
    with pytest.raises(ArmError) as err:
        client.get(URL)
    sent = session.calls[0]["headers"]["x-ms-client-request-id"]
    assert err.value.request_id == sent
    assert sent in str(err.value)
    assert err.value.result["service_request_id"] == "svc-1"


def test_error_without_cloud_error_body(make_client):
    client, unused = make_client([FakeRaw(418, raw=b"I'm a teapot")])
    with pytest.raises(ArmError) as err:
        client.get(URL)
    assert err.value.code == "HttpError418"
    assert "teapot" in err.value.arm_message


def test_error_text_is_redacted(make_client):
    body = {"error": {"code": "Bad", "message": "header was Bearer abc.def-ghi and s3cr3t-value"}}
    client, unused = make_client([FakeRaw(400, body)])
    with pytest.raises(ArmError) as err:
        client.get(URL)
    assert "abc.def-ghi" not in str(err.value)
    assert "s3cr3t-value" not in str(err.value)


# POST safety -----------------------------------------------------------------
def test_post_resent_after_429(make_client, clock):
    client, session = make_client([FakeRaw(429, CLOUD_ERROR, {"Retry-After": "2"}), FakeRaw(202, None)])
    assert client.post_action(URL).status == 202
    assert [c["method"] for c in session.calls] == ["POST", "POST"]
    assert clock.sleeps == [2.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_post_resent_after_5xx_with_retry_after(make_client, status):
    client, session = make_client([FakeRaw(status, CLOUD_ERROR, {"Retry-After": "1"}), FakeRaw(204, None)])
    assert client.post_action(URL).status == 204
    assert len(session.calls) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_post_not_resent_after_5xx_without_retry_after(make_client, status):
    client, session = make_client([FakeRaw(status, CLOUD_ERROR), FakeRaw(202, None)])
    with pytest.raises(ArmError):
        client.post_action(URL)
    assert len(session.calls) == 1


def test_post_resent_when_connection_was_never_made(make_client):
    client, session = make_client([refused(), requests.exceptions.ConnectTimeout("x"), FakeRaw(202, None)])
    assert client.post_action(URL).status == 202
    assert len(session.calls) == 3


@pytest.mark.parametrize("exc", [reset(), requests.exceptions.ReadTimeout("read timed out"),
                                 requests.exceptions.ChunkedEncodingError("torn")])
def test_post_ambiguous_failure_is_not_resent(make_client, exc):
    client, session = make_client([exc, FakeRaw(202, None)])
    with pytest.raises(TransportError) as err:
        client.post_action(URL)
    assert err.value.sent is True
    assert len(session.calls) == 1


def test_post_429_bounded(make_client):
    client, session = make_client(lambda m, u: FakeRaw(429, CLOUD_ERROR, {"Retry-After": "1"}), attempts=3)
    with pytest.raises(ArmError, match="Throttled"):
        client.post_action(URL)
    assert len(session.calls) == 3


def test_tls_error_is_reported_without_retry(make_client):
    client, session = make_client([requests.exceptions.SSLError("certificate verify failed")])
    with pytest.raises(HpcCacheError, match="TLS error"):
        client.get(URL)
    assert len(session.calls) == 1


# Origin guard -------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "https://evil.test/subscriptions/x",
    "http://management.example.test/subscriptions/x",
    "https://management.example.test:8443/x",
    "https://user:pw@management.example.test/x",
    "http://169.254.169.254/metadata/identity/oauth2/token",
    "https://management.example.test.evil.test/x",
    "//evil.test/x",
    "file:///etc/passwd",
    "http://\uff0f/x",  # urljoin itself refuses this host (NFKC look-alike of '/')
    "https://management.example.test\u2044evil.test/x",
])
def test_foreign_urls_are_refused_before_any_request(make_client, url):
    client, session = make_client([])
    with pytest.raises(OriginError):
        client.get(url)
    assert session.calls == []
    assert client.tokens.calls == []


def test_relative_and_same_origin_urls_are_followed(make_client):
    client, session = make_client([FakeRaw(200, {}), FakeRaw(200, {})])
    client.get("/subscriptions/x?api-version=1")
    client.get("HTTPS://Management.Example.Test:443/subscriptions/y")
    assert session.calls[0]["url"] == ARM + "subscriptions/x?api-version=1"


def test_resource_url_encodes_every_segment(make_client):
    client, unused = make_client([])
    url = client.resource_url(["subscriptions", "s", "resourceGroups", "../x?y#z", "caches", "a/b"], {"api-version": "1&x=2"})
    assert url == ARM + "subscriptions/s/resourceGroups/..%2Fx%3Fy%23z/caches/a%2Fb?api-version=1%26x%3D2"


# Retry-After ------------------------------------------------------------------
def test_retry_after_forms():
    now = 1_000_000.0
    date = email.utils.formatdate(now + 12, usegmt=True)
    assert retry_after_seconds({"retry-after": "5"}) == 5.0
    assert retry_after_seconds({"retry-after": date}, lambda: now) == 12.0
    # A date in the past or a zero is no hint at all: the caller's own delay applies (issue: busy loop).
    assert retry_after_seconds({"retry-after": email.utils.formatdate(now - 50, usegmt=True)}, lambda: now) is None
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"x-ms-retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "999999"}) == 600.0


def test_fetch_metadata_sends_no_token():
    class Session:
        def get(self, url, **kwargs):
            self.kwargs = kwargs
            return FakeRaw(200, {"a": 1})

    session = Session()
    assert fetch_metadata(session, "https://arm.test/metadata/endpoints") == {"a": 1}
    assert "Authorization" not in session.kwargs["headers"]
    assert session.kwargs["allow_redirects"] is False


def test_fetch_metadata_refuses_an_answer_over_the_cap():
    import gzip  # pylint: disable=import-outside-toplevel

    class Session:
        def get(self, url, **kwargs):
            return FakeRaw(200, raw=gzip.compress(b" " * (32 * 1024 * 1024)), headers={"Content-Encoding": "gzip"})

    with pytest.raises(ValueError, match="once decoded"):
        fetch_metadata(Session(), "https://arm.test/metadata/endpoints")


@pytest.mark.parametrize("headers", [
    {"retry-after": "0"}, {"retry-after": "0.0"}, {"retry-after": "-5"}, {"retry-after": "\u00b2"},
    {"retry-after": "nan"}, {"retry-after": "inf"}, {"retry-after-ms": "nan"}, {"retry-after-ms": "0"},
    {"retry-after-ms": "\u00b2"}, {"retry-after": "1e9"}, {"retry-after": "Mon, 99 Foo 0000 99:99:99 GMT"},
])
def test_unusable_retry_after_is_no_hint(headers):
    # Each of these crashed the wait ("Unexpected ValueError") or turned it into a busy loop.
    assert retry_after_seconds(headers, lambda: 1_000_000.0) is None


def test_a_zero_retry_after_on_a_429_falls_back_to_backoff(make_client, clock):
    client, session = make_client([FakeRaw(429, {}, {"Retry-After": "0"}), FakeRaw(200, {"ok": 1})])
    assert client.get(ARM + "x").status == 200
    assert clock.sleeps == [1.0]  # the first backoff, not a zero-second retry


@pytest.mark.parametrize("depth", [65, 5000])
def test_deeply_nested_answer_is_refused_clearly(make_client, depth):
    body = b"[" * depth + b"]" * depth
    client, unused = make_client([FakeRaw(200, raw=body)] * 4)
    with pytest.raises(ArmError) as err:
        client.get(ARM + "x")
    assert err.value.code == "InvalidResponse"


def test_loopback_endpoint_never_uses_a_proxy(clock):
    loopback = Cloud("Local", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/", custom=True)
    session = FakeSession([FakeRaw(200, {})])
    ArmClient(loopback, FakeTokens(), session=session, sleep=clock.sleep, clock=clock).get("http://127.0.0.1:8080/x")
    assert session.calls[0]["proxies"] == {"http": None, "https": None, "all": None}
    session = FakeSession([FakeRaw(200, {})])
    ArmClient(CLOUD, FakeTokens(), session=session, sleep=clock.sleep, clock=clock).get(ARM + "x")
    assert session.calls[0]["proxies"] is None  # a real cloud keeps the environment's proxies (CONNECT over TLS)


# ARM's answers to an api-version the type does not have, as seen from ARM (docs/service-behaviour.md rule 37)
PROVIDER_REFUSAL = ("No registered resource provider found for location 'eastus' and API version '2099-01-01' for "
                    "type 'caches'. The supported api-versions are '2026-08-01, 2026-01-01, 2019-11-01'. The "
                    "supported locations are 'eastus, westus'.")
RESOURCES_REFUSAL = "The api-version 'banana' is invalid. The supported versions are '2021-04-01,2019-10-01'."


@pytest.mark.parametrize("code, message, asked, supported, what", [
    ("NoRegisteredProviderFound", PROVIDER_REFUSAL, "2099-01-01", ["2026-08-01", "2026-01-01", "2019-11-01"],
     " for caches"),
    ("InvalidApiVersionParameter", RESOURCES_REFUSAL, "banana", ["2021-04-01", "2019-10-01"], ""),
])
def test_a_refused_api_version_names_the_option_and_the_supported_versions_at_once(
        make_client, code, message, asked, supported, what):
    client, session = make_client([FakeRaw(400, {"error": {"code": code, "message": message}})])
    with pytest.raises(ApiVersionError) as err:
        client.get(URL)
    assert len(session.calls) == 1  # a 400 is not retried: nothing is waited for
    assert isinstance(err.value, ArmError) and (err.value.asked, err.value.supported) == (asked, supported)
    assert str(err.value).startswith("api_version: the service does not support api-version '%s'%s; it supports %s "
                                     "(%s, HTTP 400, client request id " % (asked, what, ", ".join(supported), code))
    assert err.value.result["supported_api_versions"] == supported
    assert err.value.result["error"]["message"] == message  # ARM's own words stay in the result


def test_no_registered_provider_for_a_location_is_not_an_api_version_error(make_client):
    message = PROVIDER_REFUSAL.replace("'2099-01-01'", "'2026-01-01'")  # the version is supported; the region not
    client, unused = make_client([FakeRaw(400, {"error": {"code": "NoRegisteredProviderFound", "message": message}})])
    with pytest.raises(ArmError) as err:
        client.get(URL)
    assert not isinstance(err.value, ApiVersionError)
    assert str(err.value).startswith("NoRegisteredProviderFound (HTTP 400): ")
