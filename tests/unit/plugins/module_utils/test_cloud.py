# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.cloud import (
    check_endpoint,
    is_loopback_host,
    no_proxy_for,
    origin_of,
    resolve_cloud,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ConfigurationError, OriginError


def no_fetch(url):
    raise AssertionError("no metadata request expected, got %s" % url)


@pytest.mark.parametrize("name,arm,login", [
    (None, "https://management.azure.com/", "https://login.microsoftonline.com/"),
    ("AzureCloud", "https://management.azure.com/", "https://login.microsoftonline.com/"),
    ("azurechinacloud", "https://management.chinacloudapi.cn/", "https://login.chinacloudapi.cn/"),
    ("AzureUSGovernment", "https://management.usgovcloudapi.net/", "https://login.microsoftonline.us/"),
])
def test_known_clouds(name, arm, login):
    cloud = resolve_cloud(name, no_fetch)
    assert (cloud.arm_endpoint, cloud.login_endpoint, cloud.custom) == (arm, login, False)
    assert cloud.scope == arm.rstrip("/") + "/.default"


def test_unknown_name_is_refused():
    with pytest.raises(ConfigurationError, match="cloud_environment: 'AzureGermanCloud' is neither"):
        resolve_cloud("AzureGermanCloud", no_fetch)


def test_url_discovers_2015_metadata():
    seen = []

    def fetch(url):
        seen.append(url)
        return {"authentication": {"loginEndpoint": "https://adfs.local/adfs", "audiences": ["https://aud/1", "x"]}}

    cloud = resolve_cloud("https://management.local.azurestack.external", fetch)
    assert seen == ["https://management.local.azurestack.external/metadata/endpoints?api-version=2015-01-01"]
    assert cloud.arm_endpoint == "https://management.local.azurestack.external/"
    assert cloud.login_endpoint == "https://adfs.local/adfs/"
    assert cloud.scope == "https://aud/1/.default"
    assert cloud.custom


@pytest.mark.parametrize("body", [
    {"resourceManager": "https://arm.test/", "authentication": {"loginEndpoint": "https://l/", "audiences": ["https://a/"]}},
    [{"resourceManager": "https://other/", "authentication": {"loginEndpoint": "https://wrong/", "audiences": ["w"]}},
     {"resourceManager": "https://ARM.test", "authentication": {"loginEndpoint": "https://l/", "audiences": ["https://a/"]}}],
])
def test_url_falls_back_to_2022_metadata_single_and_list(body):
    def fetch(url):
        if "2015-01-01" in url:
            raise ValueError("HTTP 404")
        assert url == "https://arm.test/metadata/endpoints?api-version=2022-09-01"
        return body

    cloud = resolve_cloud("https://arm.test/", fetch)
    assert (cloud.login_endpoint, cloud.audience) == ("https://l/", "https://a/")


def test_url_without_usable_metadata_says_what_failed():
    def fetch(url):
        if "2015" in url:
            return {"authentication": {}}
        return [{"resourceManager": "https://other/"}]

    with pytest.raises(ConfigurationError) as err:
        resolve_cloud("https://arm.test", fetch)
    assert "2015-01-01: no authentication.loginEndpoint" in str(err.value)
    assert "2022-09-01: no entry whose resourceManager is https://arm.test/" in str(err.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://127.9.9.9", "http://localhost:1", "http://[::1]:5"])
def test_plain_http_allowed_for_loopback(url):
    assert check_endpoint(url).endswith("/")


@pytest.mark.parametrize("url", ["http://management.azure.com", "http://10.0.0.1", "http://169.254.169.254",
                                 "http://127.0.0.1.nip.io", "ftp://127.0.0.1", "https://user:pw@arm.test/"])
def test_endpoint_refused(url):
    with pytest.raises(ConfigurationError, match="^cloud_environment: "):
        check_endpoint(url)


def test_http_non_loopback_url_never_fetches_metadata():
    with pytest.raises(ConfigurationError, match="loopback"):
        resolve_cloud("http://arm.example.com", no_fetch)


def test_origin_of_defaults_ports_and_lowers_host():
    assert origin_of("https://ARM.test/x") == ("https", "arm.test", 443)
    assert origin_of("http://127.0.0.1/x") == ("http", "127.0.0.1", 80)
    with pytest.raises(OriginError):
        origin_of("https://arm.test:99999/")


@pytest.mark.parametrize("host,loop", [("localhost", True), ("127.0.0.2", True), ("::1", True),
                                       ("10.1.1.1", False), ("example.com", False)])
def test_is_loopback_host(host, loop):
    assert is_loopback_host(host) is loop


@pytest.mark.parametrize("audience", ["https://management.azure.com/", "https://management.core.windows.net",
                                      "https://MANAGEMENT.usgovcloudapi.net/.default",
                                      " https://management.chinacloudapi.cn/ "])
def test_custom_endpoint_naming_a_known_cloud_audience_is_refused(audience):
    body = {"authentication": {"loginEndpoint": "https://login.microsoftonline.com/", "audiences": [audience]}}
    with pytest.raises(ConfigurationError) as err:
        resolve_cloud("https://arm.example.test", lambda url: body)
    assert "a token for it is only sent to" in str(err.value)


def test_azure_stack_hub_with_entra_id_keeps_working():
    # The public login host, but an audience of its own: no public-cloud token is minted.
    audience = "https://management.contoso.onmicrosoft.com/5d0f1c7e-0000-4000-8000-000000000000"
    body = {"authentication": {"loginEndpoint": "https://login.microsoftonline.com/", "audiences": [audience]}}
    cloud = resolve_cloud("https://management.local.azurestack.external", lambda url: body)
    assert cloud.audience == audience and cloud.login_endpoint == "https://login.microsoftonline.com/"


@pytest.mark.parametrize("url,bypass", [("http://127.0.0.1:8080/", True), ("http://[::1]:9/", True),
                                        ("http://localhost/", True), ("https://management.azure.com/", False)])
def test_no_proxy_only_for_loopback(url, bypass):
    assert (no_proxy_for(url) is not None) is bypass
