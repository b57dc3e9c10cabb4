# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credentials through azure-identity, chosen by auth_source, and a token provider.

azure-identity is imported only when a credential is built, and only the
class that auth_source needs is looked up, so a task that fails validation
never pays for the import.
"""

from __future__ import annotations

import configparser
import os
import shutil
import socket
import threading
import time
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.cloud import Cloud, no_proxy_for
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ConfigurationError, redact

AUTH_SOURCES = ("auto", "env", "credential_file", "cli", "msi", "workload_identity")
# The Azure CLI's public client, used for user sign-in when no client_id is given.
AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
IMDS_HOST = "169.254.169.254"
IMDS_PROBE_SECONDS = 0.5
CREDENTIAL_FILE = "~/.azure/credentials"
FILE_KEYS = ("subscription_id", "client_id", "secret", "tenant", "ad_user", "password", "cloud_environment")
# The shared authentication options, the one list of them: every one a string, with the environment
# variables that set it and whether it is a secret. The modules' argument spec (_module.py), AuthSettings
# and the inventory plugin derive from it; tests/unit/plugins/doc_fragments checks both doc fragments.
AUTH_OPTIONS: t.Dict[str, t.Dict[str, t.Any]] = {
    "subscription_id": {"env": ["AZURE_SUBSCRIPTION_ID"]},
    "auth_source": {"default": "auto", "choices": list(AUTH_SOURCES)},
    "client_id": {"env": ["AZURE_CLIENT_ID"]},
    "secret": {"env": ["AZURE_SECRET", "AZURE_CLIENT_SECRET"], "no_log": True},
    "tenant": {"env": ["AZURE_TENANT", "AZURE_TENANT_ID"]},
    "ad_user": {"env": ["AZURE_AD_USER"]},
    "password": {"env": ["AZURE_PASSWORD"], "no_log": True},
    "profile": {"env": ["AZURE_PROFILE"]},
    "cloud_environment": {"env": ["AZURE_CLOUD_ENVIRONMENT"]},
}


class MissingLibraryError(ConfigurationError):
    def __init__(self, library: str, exc: BaseException) -> None:
        super().__init__("%s is required: %s" % (library, exc))
        self.library = library


@dataclass
class AuthSettings:
    auth_source: str = "auto"
    subscription_id: t.Optional[str] = None
    client_id: t.Optional[str] = None
    secret: t.Optional[str] = None
    tenant: t.Optional[str] = None
    ad_user: t.Optional[str] = None
    password: t.Optional[str] = None
    profile: t.Optional[str] = None
    cloud_environment: t.Optional[str] = None

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> "AuthSettings":
        values = {name: params.get(name) for name in AUTH_OPTIONS}
        return cls(auth_source=values.pop("auth_source") or "auto", **values)

    @property
    def secrets(self) -> t.Tuple[str, ...]:
        return tuple(s for s in (self.secret, self.password) if s)

    def has_service_principal(self) -> bool:
        return bool(self.client_id and self.secret and self.tenant)

    def has_user(self) -> bool:
        return bool(self.ad_user and self.password)


def read_credential_file(profile: t.Optional[str], path: str = CREDENTIAL_FILE) -> t.Optional[t.Dict[str, str]]:
    """The profile's section of ~/.azure/credentials, or None when there is no such file."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError("Could not read %s: %s" % (path, type(exc).__name__))
    section = profile or "default"
    if not parser.has_section(section):
        if profile:
            raise ConfigurationError("profile: section [%s] not found in %s" % (profile, path))
        return None
    return {k: v for k, v in parser.items(section) if k in FILE_KEYS and v}


def merge_credential_file(settings: AuthSettings, values: t.Mapping[str, str]) -> AuthSettings:
    """Options already set win over the file."""
    merged = dict(settings.__dict__)
    for key, value in values.items():
        if not merged.get(key):
            merged[key] = value
    return AuthSettings(**merged)


def _imds_reachable(env: t.Mapping[str, str]) -> bool:
    """A short TCP probe, so 'auto' off Azure never waits on instance metadata."""
    override = env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST")
    host, port = IMDS_HOST, 80
    if override:
        parts = urlsplit(override if "://" in override else "http://" + override)
        host, port = parts.hostname or IMDS_HOST, parts.port or 80
    try:
        with socket.create_connection((host, port), timeout=IMDS_PROBE_SECONDS):
            return True
    except OSError:
        return False


def _identity(name: str) -> t.Any:
    try:
        from azure import identity  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise MissingLibraryError("azure-identity", exc)
    return getattr(identity, name)


def _authority_kwargs(cloud: Cloud) -> t.Dict[str, t.Any]:
    kwargs: t.Dict[str, t.Any] = {"authority": cloud.login_endpoint.rstrip("/")}
    if cloud.custom:
        kwargs["disable_instance_discovery"] = True
    return kwargs


def _service_principal(s: AuthSettings, cloud: Cloud) -> t.Any:
    return _identity("ClientSecretCredential")(s.tenant, s.client_id, s.secret, **_authority_kwargs(cloud))


def _user(s: AuthSettings, cloud: Cloud) -> t.Any:
    return _identity("UsernamePasswordCredential")(
        s.client_id or AZURE_CLI_CLIENT_ID, s.ad_user, s.password,
        tenant_id=s.tenant or "organizations", **_authority_kwargs(cloud)
    )


def _explicit(s: AuthSettings, cloud: Cloud, source: str) -> t.Tuple[t.Any, str]:
    if s.has_service_principal():
        return _service_principal(s, cloud), "service principal (%s)" % source
    if s.has_user():
        return _user(s, cloud), "user sign-in (%s)" % source
    missing = [k for k in ("client_id", "secret", "tenant") if not getattr(s, k)]
    raise ConfigurationError(
        "auth_source=%s: no complete credentials: set client_id, secret and tenant "
        "(AZURE_CLIENT_ID, AZURE_SECRET, AZURE_TENANT), or ad_user and password; missing %s"
        % (source, ", ".join(missing))
    )


def _workload(s: AuthSettings, cloud: Cloud) -> t.Any:
    kwargs = _authority_kwargs(cloud)
    if s.tenant:
        kwargs["tenant_id"] = s.tenant
    if s.client_id:
        kwargs["client_id"] = s.client_id
    return _identity("WorkloadIdentityCredential")(**kwargs)


def _msi(s: AuthSettings, env: t.Optional[t.Mapping[str, str]] = None) -> t.Any:
    cls = _identity("ManagedIdentityCredential")
    env = os.environ if env is None else env
    kwargs: t.Dict[str, t.Any] = {"client_id": s.client_id} if s.client_id else {}
    # A local identity endpoint (App Service's, or the emulator's) never goes through a proxy: the
    # identity header would reach it in clear text.
    endpoint = env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT")
    bypass = no_proxy_for(endpoint) if endpoint else None
    if bypass:
        kwargs["proxies"] = bypass
    return cls(**kwargs)


def _cli(_s: AuthSettings) -> t.Any:
    return _identity("AzureCliCredential")()


def load_settings(params: t.Mapping[str, t.Any]) -> AuthSettings:
    """Options (with their env fallbacks), then ~/.azure/credentials for what is still unset.

    Reads only local files, so it runs before validation and before any request.
    """
    settings = AuthSettings.from_params(params)
    source = settings.auth_source or "auto"
    if source == "credential_file" or (source == "auto" and not (settings.has_service_principal() or settings.has_user())):
        values = read_credential_file(settings.profile)
        if values is None and source == "credential_file":
            raise ConfigurationError(
                "auth_source=credential_file: no [%s] section in %s" % (settings.profile or "default", CREDENTIAL_FILE)
            )
        if values:
            settings = merge_credential_file(settings, values)
    return settings


def build_credential(
    settings: AuthSettings,
    cloud: Cloud,
    env: t.Optional[t.Mapping[str, str]] = None,
    imds_probe: t.Callable[[t.Mapping[str, str]], bool] = _imds_reachable,
) -> t.Tuple[t.Any, str]:
    """(credential, a description of it) for settings that load_settings() made."""
    env = os.environ if env is None else env
    source = settings.auth_source or "auto"
    if source not in AUTH_SOURCES:
        raise ConfigurationError("auth_source: must be one of %s, got %r" % (", ".join(AUTH_SOURCES), source))
    if source in ("env", "credential_file"):
        return _explicit(settings, cloud, source)
    if source == "workload_identity":
        return _workload(settings, cloud), "workload identity"
    if source == "msi":
        return _msi(settings, env), "managed identity"
    if source == "cli":
        return _cli(settings), "Azure CLI"
    return _auto(settings, cloud, env, imds_probe)


def _auto(
    s: AuthSettings, cloud: Cloud, env: t.Mapping[str, str], imds_probe: t.Callable[[t.Mapping[str, str]], bool]
) -> t.Tuple[t.Any, str]:
    if s.has_service_principal() or s.has_user():
        return _explicit(s, cloud, "options, environment or %s" % CREDENTIAL_FILE)
    tried = ["options and environment (client_id/secret/tenant or ad_user/password)",
             "%s [%s]" % (CREDENTIAL_FILE, s.profile or "default")]
    if env.get("AZURE_FEDERATED_TOKEN_FILE"):
        return _workload(s, cloud), "workload identity"
    tried.append("workload identity (AZURE_FEDERATED_TOKEN_FILE)")
    if (env.get("IDENTITY_ENDPOINT") and env.get("IDENTITY_HEADER")) or env.get("MSI_ENDPOINT") or imds_probe(env):
        return _msi(s, env), "managed identity"
    tried.append("managed identity (IDENTITY_ENDPOINT, MSI_ENDPOINT, instance metadata)")
    if shutil.which("az", path=env.get("PATH")):
        return _cli(s), "Azure CLI"
    tried.append("Azure CLI (az not found on PATH)")
    raise ConfigurationError("auth_source=auto: no Azure credentials found; tried " + "; ".join(tried))


class TokenProvider:
    """A bearer token for one scope, fetched again before it expires."""

    def __init__(
        self,
        credential: t.Any,
        scope: str,
        description: str,
        secrets: t.Iterable[str] = (),
        clock: t.Callable[[], float] = time.time,
        margin: float = 300.0,
    ) -> None:
        self._credential = credential
        self._scope = scope
        self._description = description
        self._secrets = tuple(secrets)
        self._clock = clock
        self._margin = margin
        self._token: t.Optional[str] = None
        self._expires_on = 0.0
        self._lifetime = 0.0
        self._seen: t.List[str] = []
        # Many flushes of one module process share this provider; one of them fetches at a time.
        self._lock = threading.Lock()

    def _fresh(self) -> bool:
        remaining = self._expires_on - self._clock()
        # Short-lived tokens (minutes) are renewed at half their lifetime.
        return remaining > min(self._margin, self._lifetime / 2.0)

    def token(self, force_refresh: bool = False, rejected: t.Optional[str] = None) -> str:
        """A valid token; force_refresh fetches a new one, unless the rejected token was already replaced."""
        with self._lock:
            replaced = rejected is not None and self._token != rejected
            if self._token and self._fresh() and (not force_refresh or replaced):
                return self._token
            try:
                access = self._credential.get_token(self._scope)
            except Exception as exc:  # azure-identity raises several types; all mean no token
                text = str(exc).strip()
                detail = redact(text.splitlines()[0] if text else type(exc).__name__, self._secrets)
                raise ConfigurationError("Could not get a token with %s: %s" % (self._description, detail[:500]))
            now = self._clock()
            token = self._token = str(access.token)
            self._seen.append(token)
            self._expires_on = float(access.expires_on)
            self._lifetime = max(self._expires_on - now, 0.0)
            return token

    @property
    def known_tokens(self) -> t.Tuple[str, ...]:
        """Every token this provider handed out, to be redacted from any output."""
        return tuple(self._seen)
