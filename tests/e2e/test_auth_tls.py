# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real azure-identity credentials against the emulator over TLS, with the environment AWX injects."""

from __future__ import annotations

import pytest

from conftest import SUB, Runner, requests_of, scenario  # pylint: disable=import-error

AWX_ENV = {"AZURE_CLIENT_ID": "emulator-client", "AZURE_SECRET": "emulator-secret", "AZURE_TENANT": "tenant-1",
           "IDENTITY_ENDPOINT": None, "IDENTITY_HEADER": None}


@pytest.fixture
def tls_runner(tmp_path, tls_emulator):
    return Runner(str(tmp_path), tls_emulator)


def test_service_principal_from_awx_env(tls_runner, tls_emulator):
    tls_emulator.load(scenario(flush={"duration": 1}))
    run = tls_runner.flush(env=AWX_ENV)
    assert run.result["status"] == "Succeeded", run.output
    assert any(e["kind"] == "token" and e["path"].endswith("/oauth2/v2.0/token") for e in tls_emulator.log())
    assert tls_emulator.flushes("c1") == 1


def test_wrong_secret_fails_clearly_without_echoing_it(tls_runner, tls_emulator):
    tls_emulator.load(scenario())
    run = tls_runner.flush(env=dict(AWX_ENV, AZURE_SECRET="wrong-secret-value"), args=["-vvvv"])
    r = run.result
    assert r["failed"] is True and r["msg"].startswith("Could not get a token with service principal")
    assert "wrong-secret-value" not in run.output
    assert requests_of(tls_emulator, "get") == []


def test_tokens_and_secrets_never_in_verbose_output(tls_runner, tls_emulator):
    tls_emulator.load(scenario(flush={"duration": 1}))
    run = tls_runner.flush(env=dict(AWX_ENV, AZURE_SUBSCRIPTION_ID=SUB), args=["-vvvv"])
    assert run.result["status"] == "Succeeded"
    for token in tls_emulator.state()["tokens_issued"]:
        assert token not in run.output
    assert "emulator-secret" not in run.output
