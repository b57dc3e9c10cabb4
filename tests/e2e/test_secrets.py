# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""No secret, password or issued token ever shows: not at -vvvv, not in ANSIBLE_DEBUG logs,
not in any failure's msg, not in the inventory plugin's cache files."""

from __future__ import annotations

import pytest

from conftest import Runner, scenario  # pylint: disable=import-error

SECRET = "Tr0ub4dor&3-client-secret"
PASSWORD = "correct-horse-battery-staple"
BASE_ENV = {"IDENTITY_ENDPOINT": None, "IDENTITY_HEADER": None, "AZURE_TENANT": "tenant-1"}
CASES = {
    "service principal": dict(BASE_ENV, AZURE_CLIENT_ID="sp-client", AZURE_SECRET=SECRET),
    "user sign-in": dict(BASE_ENV, AZURE_AD_USER="ops@emulator.test", AZURE_PASSWORD=PASSWORD),
}


@pytest.fixture
def tls_runner(tmp_path, tls_emulator):
    return Runner(str(tmp_path), tls_emulator)


def leaks(text, emulator):
    found = [s for s in (SECRET, PASSWORD) if s in text]
    found += ["token %s..." % t[:8] for t in emulator.state()["tokens_issued"] if t in text]
    return found


def load(emulator, **flush):
    emulator.load(dict(scenario(flush=dict({"duration": 1}, **flush)),
                       clients={"sp-client": SECRET}, users={"ops@emulator.test": PASSWORD}))


# Only the service principal can complete here: MSAL's user realm discovery for the password
# grant drops the authority's port, so it cannot reach an emulator that is not on port 443.
def test_success_at_vvvv_and_debug_shows_no_secret(tls_runner, tls_emulator):
    load(tls_emulator)
    run = tls_runner.flush(args=["-vvvv"], env=dict(CASES["service principal"], ANSIBLE_DEBUG="1"))
    assert run.result.get("status") == "Succeeded", run.result.get("msg")
    assert len(run.output) > 10000  # the debug log really was captured
    assert tls_emulator.state()["tokens_issued"]
    assert leaks(run.output, tls_emulator) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_failures_show_no_secret(tls_runner, tls_emulator, case):
    load(tls_emulator, result="Failed", error={"code": "Boom", "message": "token was Bearer abc.def"})
    run = tls_runner.flush(args=["-vvvv"], env=dict(CASES[case], ANSIBLE_DEBUG="1"))
    assert run.result["failed"] is True
    assert leaks(run.output, tls_emulator) == []
    assert "abc.def" not in run.result["msg"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_wrong_credentials_show_no_secret(tls_runner, tls_emulator, case):
    tls_emulator.load(dict(scenario(), clients={"sp-client": "other"}, users={"ops@emulator.test": "other"}))
    run = tls_runner.flush(args=["-vvvv"], env=dict(CASES[case], ANSIBLE_DEBUG="1"))
    assert run.result["failed"] is True and run.result["msg"].startswith("Could not get a token with")
    assert leaks(run.output, tls_emulator) == []


def test_secret_given_as_an_option_is_masked(tls_runner, tls_emulator):
    load(tls_emulator)
    run = tls_runner.flush({"client_id": "sp-client", "secret": SECRET, "tenant": "tenant-1", "name": "bad name"},
                           args=["-vvvv"], env=BASE_ENV)
    assert run.result["failed"] is True and "name: 'bad name'" in run.result["msg"]
    assert SECRET not in run.output
