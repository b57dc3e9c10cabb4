# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Azure cloud a task talks to: ARM endpoint, login endpoint, token audience.

A name resolves from a fixed table. A URL is an ARM endpoint (Azure Stack Hub
or a local emulator); its login endpoint and audience are discovered from its
metadata, and Entra ID instance discovery is turned off for it.
"""

from __future__ import annotations

import ipaddress
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ConfigurationError, OriginError


@dataclass(frozen=True)
class Cloud:
    name: str
    arm_endpoint: str  # always ends with "/"
    login_endpoint: str
    audience: str
    custom: bool = False

    @property
    def scope(self) -> str:
        return self.audience.rstrip("/") + "/.default"

    @property
    def origin(self) -> t.Tuple[str, str, int]:
        return origin_of(self.arm_endpoint)


KNOWN_CLOUDS = {
    "azurecloud": Cloud(
        "AzureCloud", "https://management.azure.com/", "https://login.microsoftonline.com/",
        "https://management.azure.com/",
    ),
    "azurechinacloud": Cloud(
        "AzureChinaCloud", "https://management.chinacloudapi.cn/", "https://login.chinacloudapi.cn/",
        "https://management.chinacloudapi.cn/",
    ),
    "azureusgovernment": Cloud(
        "AzureUSGovernment", "https://management.usgovcloudapi.net/", "https://login.microsoftonline.us/",
        "https://management.usgovcloudapi.net/",
    ),
}

DEFAULT_PORTS = {"http": 80, "https": 443}

# The token audiences of the known clouds (the ARM and the classic one of each): a token minted for
# one of them is worth that cloud's ARM, so it only ever goes to that cloud's ARM host.
KNOWN_AUDIENCES = {
    "https://management.azure.com": "azurecloud",
    "https://management.core.windows.net": "azurecloud",
    "https://management.chinacloudapi.cn": "azurechinacloud",
    "https://management.core.chinacloudapi.cn": "azurechinacloud",
    "https://management.usgovcloudapi.net": "azureusgovernment",
    "https://management.core.usgovcloudapi.net": "azureusgovernment",
}


def _audience_key(audience: str) -> str:
    key = audience.strip().lower()
    key = key[:-len("/.default")] if key.endswith("/.default") else key
    return key.rstrip("/")


def check_audience(arm_endpoint: str, audience: str) -> None:
    """Refuse a custom endpoint whose metadata names a known cloud's audience.

    Its token would be a real token of that cloud, sent to an endpoint that is
    not that cloud's ARM. Azure Stack Hub with Entra ID names the public login
    host but an audience of its own, which is not refused.
    """
    cloud = KNOWN_AUDIENCES.get(_audience_key(audience))
    if cloud is not None and origin_of(arm_endpoint) != KNOWN_CLOUDS[cloud].origin:
        raise ConfigurationError(
            "cloud_environment: the metadata of %s names the token audience %s, which belongs to %s; a token for "
            "it is only sent to %s, so this endpoint is refused"
            % (arm_endpoint, audience.strip()[:200], KNOWN_CLOUDS[cloud].name, KNOWN_CLOUDS[cloud].arm_endpoint))


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def no_proxy_for(url: str) -> t.Optional[t.Dict[str, None]]:
    """requests' proxies argument for url: a loopback endpoint never goes through a proxy.

    requests takes HTTP_PROXY / HTTPS_PROXY / ALL_PROXY from the environment; a
    None entry overrides each, so a token for a local endpoint cannot reach a
    proxy in clear text. Any other endpoint keeps the environment's proxies.
    """
    try:
        host = origin_of(url)[1]
    except OriginError:
        return None
    return {"http": None, "https": None, "all": None} if is_loopback_host(host) else None


def origin_of(url: str) -> t.Tuple[str, str, int]:
    """(scheme, host, port) of a URL; raises OriginError for anything unusable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OriginError("not a valid URL: %s" % exc)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise OriginError("not an http(s) URL with a host: %r" % url[:200])
    if parts.username is not None or parts.password is not None:
        raise OriginError("URLs with user information are refused")
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def check_endpoint(url: str, option: str = "cloud_environment") -> str:
    """An ARM endpoint URL must be https, or plain http on a loopback host only."""
    try:
        scheme, host, _port = origin_of(url)
    except OriginError as exc:
        raise ConfigurationError("%s: %s" % (option, exc))
    if scheme == "http" and not is_loopback_host(host):
        raise ConfigurationError(
            "%s: plain http:// is only accepted for a loopback host (127.0.0.0/8, ::1, localhost); use https://" % option
        )
    return url if url.endswith("/") else url + "/"


def _authentication_of(entry: t.Any) -> t.Tuple[str, str]:
    auth = entry.get("authentication") if isinstance(entry, dict) else None
    if not isinstance(auth, dict):
        raise ValueError("no 'authentication' object")
    login = auth.get("loginEndpoint")
    audiences = auth.get("audiences")
    if not isinstance(login, str) or not login:
        raise ValueError("no authentication.loginEndpoint")
    if not isinstance(audiences, list) or not audiences or not isinstance(audiences[0], str):
        raise ValueError("no authentication.audiences")
    return login, audiences[0]


def _from_2022_metadata(body: t.Any, arm_endpoint: str) -> t.Tuple[str, str]:
    if isinstance(body, dict):
        return _authentication_of(body)
    if isinstance(body, list):
        wanted = arm_endpoint.rstrip("/").lower()
        for entry in body:
            rm = entry.get("resourceManager") if isinstance(entry, dict) else None
            if isinstance(rm, str) and rm.rstrip("/").lower() == wanted:
                return _authentication_of(entry)
        raise ValueError("no entry whose resourceManager is %s" % arm_endpoint)
    raise ValueError("unexpected metadata shape")


def resolve_cloud(value: t.Optional[str], fetch_json: t.Callable[[str], t.Any]) -> Cloud:
    """Resolve cloud_environment; fetch_json(url) reads a metadata document (no token)."""
    value = (value or "AzureCloud").strip()
    known = KNOWN_CLOUDS.get(value.lower())
    if known:
        return known
    if "://" not in value:
        raise ConfigurationError(
            "cloud_environment: %r is neither a known cloud (AzureCloud, AzureChinaCloud, "
            "AzureUSGovernment) nor an ARM endpoint URL" % value[:100]
        )
    arm = check_endpoint(value)
    errors = []
    for api_version, parse in (
        ("2015-01-01", _authentication_of),
        ("2022-09-01", lambda body: _from_2022_metadata(body, arm)),
    ):
        url = "%smetadata/endpoints?api-version=%s" % (arm, api_version)
        try:
            login, audience = parse(fetch_json(url))
        except Exception as exc:  # any failure of one shape falls through to the next
            errors.append("api-version %s: %s" % (api_version, exc))
            continue
        check_audience(arm, audience)
        return Cloud(value, arm, login if login.endswith("/") else login + "/", audience, custom=True)
    raise ConfigurationError(
        "cloud_environment: could not discover the login endpoint and audience of %s (%s)" % (arm, "; ".join(errors))
    )
