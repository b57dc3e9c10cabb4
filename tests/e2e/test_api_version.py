# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An api_version the service does not have fails at once, naming the option and the versions it supports."""

from __future__ import annotations

import time

from conftest import requests_of, scenario  # pylint: disable=import-error

WRONG = "2099-01-01"  # a well-formed date, so it passes the option's own validation


def test_a_wrong_api_version_fails_the_flush_at_once_with_the_supported_versions(runner, emulator):
    emulator.load(scenario(flush={"duration": 1}))
    started = time.monotonic()
    run = runner.flush({"api_version": WRONG, "wait_timeout": 600})
    elapsed = time.monotonic() - started
    r = run.result
    assert r["failed"] is True and r["msg"].startswith(
        "api_version: the service does not support api-version '2099-01-01' for caches; it supports 2026-08-01, "
        "2026-01-01, "), r["msg"]
    assert "(NoRegisteredProviderFound, HTTP 400, client request id " in r["msg"]
    assert "2026-01-01" in r["supported_api_versions"] and r["error"]["code"] == "NoRegisteredProviderFound"
    print("\nThe message a user sees:\n" + r["msg"])
    # one read, refused; no POST, nothing waited for (the module process itself takes a few seconds at most)
    assert [e["status"] for e in requests_of(emulator, "get")] == [400]
    assert requests_of(emulator, "flush") == [] and emulator.flushes("c1") == 0
    assert elapsed < 60


def test_a_wrong_api_version_fails_a_storage_target_action_before_any_post(runner, emulator):
    emulator.load(scenario(storage_targets=[{"name": "filer-01"}]))
    task = {"cache_name": "c1", "resource_group": "rg", "name": "filer-01", "state": "suspended",
            "api_version": WRONG, "poll_interval": 1}
    r = runner.play([{"azure_hpc.cache.azure_hpc_cache_storage_target": task}]).result
    assert r["failed"] is True and r["msg"].startswith("api_version: the service does not support api-version "
                                                       "'2099-01-01' for caches"), r
    assert requests_of(emulator, "target_action") == []
