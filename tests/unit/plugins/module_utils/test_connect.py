# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport import connect as _connect
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.credentials import (
    AuthSettings,
    MissingLibraryError,
)

SP = AuthSettings(auth_source="env", subscription_id="00000000-0000-0000-0000-000000000000", client_id="c",
                  secret="s3cr3t-value", tenant="t")


def test_the_task_timeout_bounds_every_request():
    client = _connect.connect(SP, timeout=3)
    assert client.policy.connect_timeout == 3 and client.policy.read_timeout == 3
    long = _connect.connect(SP, timeout=7200)
    assert long.policy.connect_timeout == 10 and long.policy.read_timeout == 60  # a request never waits longer


def test_a_shared_client_keeps_a_connection_per_thread():
    client = _connect.connect(SP, concurrency=8)
    assert client.session.get_adapter("https://management.azure.com/")._pool_maxsize == 8


def test_the_public_cloud_needs_no_metadata_request(monkeypatch):
    monkeypatch.setattr(_connect, "fetch_metadata", lambda *a: pytest.fail("no metadata request for AzureCloud"))
    assert _connect.connect(SP).cloud.arm_endpoint == "https://management.azure.com/"


def test_without_requests_the_library_is_named(monkeypatch):
    monkeypatch.setattr(_connect, "HAS_REQUESTS", False)
    with pytest.raises(MissingLibraryError) as err:
        _connect.connect(SP)
    assert err.value.library == "requests"


def test_the_client_and_the_token_provider_know_the_secret_to_hide():
    client = _connect.connect(SP)
    assert "s3cr3t-value" in client._secrets and "s3cr3t-value" in client.tokens._secrets
