# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""azure_hpc_cache_upgrade and azure_hpc_cache_power, end to end on the emulator (answers as recorded:
202 with both headers, 204 for a start of a running cache and for an upgrade with nothing pending)."""

from __future__ import annotations

from conftest import requests_of  # pylint: disable=import-error

PENDING = {"current": "6.1.0", "pending": "6.2.1", "deadline": "2026-12-04T00:00:00Z", "duration": 2}


def load(emulator, *caches, time_scale=0.01):
    emulator.load({"caches": [dict({"resource_group": "rg"}, **c) for c in caches], "time_scale": time_scale})


def upgrade(name="c1", **args):
    return {"azure_hpc.cache.azure_hpc_cache_upgrade": dict({"name": name, "resource_group": "rg",
                                                             "poll_interval": 1}, **args)}


def power(state, name="c1", **args):
    return {"azure_hpc.cache.azure_hpc_cache_power": dict({"name": name, "resource_group": "rg", "state": state,
                                                           "poll_interval": 1}, **args)}


def test_a_pending_upgrade_is_applied_after_a_flush_then_nothing_more(runner, emulator):
    load(emulator, dict(name="c1", upgrade=PENDING), dict(name="c2", upgrade={"current": "6.2.1"}))
    first, second, other = runner.play([upgrade(), upgrade(), upgrade("c2")]).results
    assert first["changed"] is True and first["status"] == "Succeeded", first
    assert (first["firmware_before"], first["firmware_after"]) == ("6.1.0", "6.2.1")
    assert first["firmware_update_status"] == "unavailable" and first["health_state_after"] == "Healthy"
    assert emulator.flushes("c1") == 1 and emulator.actions("c1").get("upgrade") == 1
    # the second run and the cache with nothing pending: nothing sent, no change
    assert second["changed"] is False and second["status"] == "Skipped", second
    assert other["changed"] is False and other["firmware_before"] == "6.2.1"
    assert emulator.flushes("c2") == 0 and not emulator.actions("c2").get("upgrade")
    assert [e["path"].rsplit("/", 1)[1] for e in requests_of(emulator, method="POST")] == ["flush", "upgrade"]


def test_check_mode_says_an_upgrade_would_be_applied_and_sends_nothing(runner, emulator):
    load(emulator, dict(name="c1", upgrade=PENDING))
    result = runner.play([upgrade()], args=["--check"]).results[0]
    assert result["changed"] is True and "would be flushed, then upgraded from 6.1.0 to 6.2.1" in result["msg"]
    assert requests_of(emulator, method="POST") == []


def test_a_failed_upgrade_fails_with_the_services_words(runner, emulator):
    load(emulator, dict(name="c1", upgrade=dict(PENDING, fails=True)))
    result = runner.play([upgrade(flush=False)]).results[0]
    assert result["failed"] is True and "6.2.1" in result["msg"] and "Traceback" not in result["msg"]
    assert emulator.flushes("c1") == 0


def test_a_stop_then_a_start_each_waited_for_and_idempotent(runner, emulator):
    load(emulator, dict(name="c1", stop={"duration": 2}, start={"duration": 3}))
    stop, stop_again, start, start_again = runner.play(
        [power("stopped"), power("stopped"), power("started"), power("started")]).results
    assert stop["changed"] is True and stop["status"] == "Succeeded" and stop["health_state_after"] == "Stopped", stop
    assert stop_again["changed"] is False and stop_again["status"] == "Succeeded"
    assert start["changed"] is True and start["health_state_after"] == "Healthy", start
    assert start_again["changed"] is False
    assert {k: v for k, v in emulator.actions("c1").items() if v} == {"stop": 1, "start": 1}
    assert [e["path"].rsplit("/", 1)[1] for e in requests_of(emulator, method="POST")] == ["stop", "start"]


def test_a_stop_is_refused_from_a_state_that_does_not_allow_it(runner, emulator):
    load(emulator, dict(name="c1", state="Upgrading"))
    result = runner.play([power("stopped")]).results[0]
    assert result["failed"] is True and result["status"] == "Refused"
    assert "Refusing to stop c1: its health state is Upgrading" in result["msg"]
    assert requests_of(emulator, method="POST") == []


def test_without_wait_a_stop_returns_its_operation(runner, emulator):
    load(emulator, dict(name="c1", stop={"duration": 30}))
    result = runner.play([power("stopped", wait=False)]).results[0]
    assert result["changed"] is True and result["status"] == "InProgress" and "/ascOperations/" in result["operation_url"]
