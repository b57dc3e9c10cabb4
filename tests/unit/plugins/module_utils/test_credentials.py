# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import threading
import types

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport import credentials as c
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.cloud import KNOWN_CLOUDS, Cloud
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ConfigurationError

PUBLIC = KNOWN_CLOUDS["azurecloud"]
CUSTOM = Cloud("https://127.0.0.1:1/", "https://127.0.0.1:1/", "https://127.0.0.1:1/", "https://127.0.0.1:1/", True)


class Recorder:
    """Stands in for azure.identity: records which class was built with what."""

    def __init__(self):
        self.built = []

    def __getattr__(self, name):
        def make(*args, **kwargs):
            self.built.append((name, args, kwargs))
            return types.SimpleNamespace(kind=name)
        return make


@pytest.fixture
def identity(monkeypatch, tmp_path):
    recorder = Recorder()
    monkeypatch.setattr(c, "_identity", lambda name: getattr(recorder, name))
    monkeypatch.setenv("HOME", str(tmp_path))
    return recorder


def settings(**kw):
    return c.AuthSettings(**kw)


def test_service_principal_from_options(identity):
    cred, desc = c.build_credential(settings(client_id="id", secret="sec", tenant="t"), PUBLIC, env={})
    assert cred.kind == "ClientSecretCredential"
    assert identity.built[0][1] == ("t", "id", "sec")
    assert identity.built[0][2] == {"authority": "https://login.microsoftonline.com"}
    assert "service principal" in desc


def test_custom_cloud_disables_instance_discovery(identity):
    c.build_credential(settings(auth_source="env", client_id="id", secret="sec", tenant="t"), CUSTOM, env={})
    assert identity.built[0][2] == {"authority": "https://127.0.0.1:1", "disable_instance_discovery": True}


def test_user_sign_in_uses_cli_public_client(identity):
    cred, unused = c.build_credential(settings(ad_user="u@x", password="pw"), PUBLIC, env={})
    name, args, kwargs = identity.built[0]
    assert name == "UsernamePasswordCredential"
    assert args == (c.AZURE_CLI_CLIENT_ID, "u@x", "pw")
    assert kwargs["tenant_id"] == "organizations"


def test_env_source_with_incomplete_credentials_names_missing(identity):
    with pytest.raises(ConfigurationError, match="missing secret, tenant"):
        c.build_credential(settings(auth_source="env", client_id="id"), PUBLIC, env={})


def test_awx_env_names_reach_the_settings(monkeypatch):
    from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible.module import auth_argument_spec

    spec = auth_argument_spec()
    assert spec["secret"]["fallback"][1] == ["AZURE_SECRET", "AZURE_CLIENT_SECRET"]
    assert spec["tenant"]["fallback"][1] == ["AZURE_TENANT", "AZURE_TENANT_ID"]
    assert spec["ad_user"]["fallback"][1] == ["AZURE_AD_USER"]
    assert spec["password"]["fallback"][1] == ["AZURE_PASSWORD"]
    assert spec["secret"]["no_log"] and spec["password"]["no_log"]


def test_credential_file_profile(identity, tmp_path):
    azure = tmp_path / ".azure"
    azure.mkdir()
    (azure / "credentials").write_text(
        "[default]\nsubscription_id=11111111-1111-1111-1111-111111111111\nclient_id=a\nsecret=b\ntenant=c\n"
        "[other]\nclient_id=x\nsecret=y\ntenant=z\n")
    s = c.load_settings({"auth_source": "credential_file", "profile": "other"})
    c.build_credential(s, PUBLIC, env={})
    assert identity.built[0][1] == ("z", "x", "y")
    s = c.load_settings({"auth_source": "auto", "subscription_id": None})
    assert s.subscription_id == "11111111-1111-1111-1111-111111111111"
    with pytest.raises(ConfigurationError, match=r"profile: section \[nope\] not found"):
        c.load_settings({"auth_source": "credential_file", "profile": "nope"})


def test_options_win_over_credential_file(identity, tmp_path):
    azure = tmp_path / ".azure"
    azure.mkdir()
    (azure / "credentials").write_text("[default]\nsubscription_id=11111111-1111-1111-1111-111111111111\n")
    s = c.load_settings({"auth_source": "auto", "subscription_id": "22222222-2222-2222-2222-222222222222"})
    assert s.subscription_id.startswith("2222")


def test_missing_credential_file_for_credential_file_source(identity):
    with pytest.raises(ConfigurationError, match=r"no \[default\] section"):
        c.load_settings({"auth_source": "credential_file"})


@pytest.mark.parametrize("env,kind", [
    ({"AZURE_FEDERATED_TOKEN_FILE": "/f"}, "WorkloadIdentityCredential"),
    ({"IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi", "IDENTITY_HEADER": "h"}, "ManagedIdentityCredential"),
    ({"MSI_ENDPOINT": "http://127.0.0.1:1/msi"}, "ManagedIdentityCredential"),
])
def test_auto_order(identity, env, kind):
    cred, unused = c.build_credential(settings(), PUBLIC, env=dict(env, PATH=""), imds_probe=lambda e: False)
    assert cred.kind == kind


def test_auto_uses_imds_when_it_answers(identity):
    cred, unused = c.build_credential(settings(), PUBLIC, env={"PATH": ""}, imds_probe=lambda e: True)
    assert cred.kind == "ManagedIdentityCredential"


def test_auto_uses_cli_when_az_is_on_path(identity, tmp_path):
    az = tmp_path / "az"
    az.write_text("#!/bin/sh\n")
    az.chmod(0o755)
    cred, unused = c.build_credential(settings(), PUBLIC, env={"PATH": str(tmp_path)}, imds_probe=lambda e: False)
    assert cred.kind == "AzureCliCredential"


def test_auto_with_nothing_says_what_it_tried(identity):
    with pytest.raises(ConfigurationError) as err:
        c.build_credential(settings(), PUBLIC, env={"PATH": ""}, imds_probe=lambda e: False)
    text = str(err.value)
    for word in ("options and environment", "credentials", "workload identity", "managed identity", "Azure CLI"):
        assert word in text
    assert identity.built == []


def test_imds_probe_is_quick_and_uses_override(monkeypatch):
    import socket
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()  # nothing listens there now
    start = time.monotonic()
    assert c._imds_reachable({"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:%d" % port}) is False
    assert time.monotonic() - start < 2


class FakeCredential:
    def __init__(self, lifetimes, fail=None):
        self.lifetimes = list(lifetimes)
        self.calls = 0
        self.fail = fail
        self.now = 0.0

    def get_token(self, scope):
        self.calls += 1
        if self.fail:
            raise self.fail
        return types.SimpleNamespace(token="token-%d" % self.calls, expires_on=self.now + self.lifetimes.pop(0))


def test_token_is_reused_then_refreshed_before_expiry():
    cred = FakeCredential([3600, 3600])
    tokens = c.TokenProvider(cred, "scope", "test", clock=lambda: cred.now)
    assert tokens.token() == "token-1"
    cred.now = 3200.0  # 400 s left: still fresh
    assert tokens.token() == "token-1"
    cred.now = 3350.0  # 250 s left: inside the 300 s margin
    assert tokens.token() == "token-2"


def test_short_tokens_are_renewed_at_half_life():
    cred = FakeCredential([60, 60])
    tokens = c.TokenProvider(cred, "scope", "test", clock=lambda: cred.now)
    tokens.token()
    cred.now = 20.0
    assert tokens.token() == "token-1"
    cred.now = 31.0
    assert tokens.token() == "token-2"


def test_force_refresh_gets_a_new_token():
    cred = FakeCredential([3600, 3600])
    tokens = c.TokenProvider(cred, "scope", "test", clock=lambda: cred.now)
    tokens.token()
    assert tokens.token(force_refresh=True) == "token-2"


def test_a_rejected_token_is_renewed_once_for_every_request_that_saw_it():
    cred = FakeCredential([3600, 3600, 3600])
    tokens = c.TokenProvider(cred, "scope", "test", clock=lambda: cred.now)
    first = tokens.token()
    assert tokens.token(force_refresh=True, rejected=first) == "token-2"
    # a second request that was sent with the first token learns of the renewal, and fetches nothing
    assert tokens.token(force_refresh=True, rejected=first) == "token-2"
    assert tokens.token(force_refresh=True, rejected="token-2") == "token-3"
    assert tokens.known_tokens == ("token-1", "token-2", "token-3")


def test_threads_share_one_fetch():
    cred = FakeCredential([3600] * 5)
    tokens = c.TokenProvider(cred, "scope", "test", clock=lambda: cred.now)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(tokens.token())) for _n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert seen == ["token-1"] * 8


def test_token_failure_is_clear_and_secret_free():
    cred = FakeCredential([], fail=RuntimeError("AADSTS7000215: Invalid client secret 'hunter22' provided.\nTrace"))
    tokens = c.TokenProvider(cred, "scope", "service principal", secrets=("hunter22",))
    with pytest.raises(ConfigurationError) as err:
        tokens.token()
    assert "Could not get a token with service principal: AADSTS7000215" in str(err.value)
    assert "hunter22" not in str(err.value)
    assert "Trace" not in str(err.value)
