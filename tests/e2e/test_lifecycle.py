# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""azure_hpc_cache_upgrade and azure_hpc_cache_power, end to end on the emulator (answers as recorded:
202 with both headers, 204 for a start of a running cache and for an upgrade with nothing pending)."""

from __future__ import annotations

import json

from conftest import maintenance, requests_of, unwrap  # pylint: disable=import-error

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


def test_the_inventory_and_the_info_module_expose_the_upgrade_due(runner, emulator):
    load(emulator, dict(name="c1", upgrade=PENDING), dict(name="c2", upgrade=dict(PENDING, deadline="2027-01-10T00:00:00Z")),
         dict(name="c3", upgrade={"current": "6.2.1"}))
    inventory = runner.inventory_file({"groups": {"upgrade_due": "hpc_cache_firmware_update_deadline and "
                                                                 "hpc_cache_firmware_update_deadline < '2026-12-05'"}})
    graph = runner.command("ansible-inventory", ["-i", inventory, "--list"])
    assert graph.returncode == 0, graph.stdout
    data = json.loads(graph.stdout)
    assert data["upgrade_due"]["hosts"] == ["c1"]
    host = unwrap(data["_meta"]["hostvars"]["c1"])
    assert host["hpc_cache_firmware_version"] == "6.1.0" and host["hpc_cache_firmware_update_status"] == "available"
    assert host["hpc_cache_firmware_update_deadline"] == "2026-12-04T00:00:00Z"
    assert unwrap(data["_meta"]["hostvars"]["c3"])["hpc_cache_firmware_update_deadline"] is None
    info = runner.play([{"azure_hpc.cache.azure_hpc_cache_info": {"resource_group": "rg"}}]).results[0]
    due = {c["name"]: (c["firmware_update_status"], c["firmware_update_deadline"]) for c in info["caches"]}
    assert due == {"c1": ("available", "2026-12-04T00:00:00Z"), "c2": ("available", "2027-01-10T00:00:00Z"),
                   "c3": ("unavailable", None)}


def test_the_role_upgrades_the_caches_that_have_one_pending_after_their_flush(runner, emulator, tmp_path):
    load(emulator, dict(name="c1", upgrade=PENDING, flush={"duration": 1}),
         dict(name="c2", upgrade={"current": "6.2.1"}, flush={"duration": 1}))
    summary = tmp_path / "summary.json"
    args = ["-e", "cache_maintenance_upgrade=if_available", "-e", "cache_maintenance_summary_file=%s" % summary]
    first = maintenance(runner, runner.inventory_file({}), *args)
    assert first.returncode == 0, first.stdout
    caches = {c["cache"]: c for c in json.loads(summary.read_text())["caches"]}
    assert caches["c1"]["outcome"] == "flushed" and caches["c1"]["upgrade"]["done"] == "upgraded"
    assert (caches["c1"]["upgrade"]["firmware_before"], caches["c1"]["upgrade"]["firmware_after"]) == ("6.1.0", "6.2.1")
    assert caches["c2"]["upgrade"]["done"] == "no upgrade pending"
    assert "c1: flushed (state Healthy -> Healthy" in first.stdout and "software upgraded: 6.1.0 -> 6.2.1" in first.stdout
    assert emulator.actions("c1").get("upgrade") == 1 and not emulator.actions("c2").get("upgrade")
    second = maintenance(runner, runner.inventory_file({}), *args)
    assert second.returncode == 0, second.stdout
    caches = {c["cache"]: c for c in json.loads(summary.read_text())["caches"]}
    assert caches["c1"]["upgrade"]["done"] == "no upgrade pending" and emulator.actions("c1").get("upgrade") == 1


def test_the_power_playbook_stops_then_starts_the_caches_of_a_play(runner, emulator):
    load(emulator, dict(name="c1", stop={"duration": 1}, start={"duration": 1}),
         dict(name="c2", state="Upgrading"))
    inventory = runner.inventory_file({})
    stop = runner.command("ansible-playbook", ["-i", inventory, "azure_hpc.cache.power", "-e", "cache_power_state=stopped",
                                               "-e", "cache_power_poll_interval=1"])
    assert stop.returncode != 0  # c2 is refused
    assert "c1: Succeeded, stopped (state Healthy -> Stopped" in stop.stdout, stop.stdout
    assert "c2: Refused, stopped (state Upgrading" in stop.stdout
    start = runner.command("ansible-playbook", ["-i", inventory, "azure_hpc.cache.power", "-e", "cache_power_state=started",
                                                "-e", "cache_power_poll_interval=1", "--limit", "c1"])
    assert start.returncode == 0, start.stdout
    assert "c1: Succeeded, started (state Stopped -> Healthy" in start.stdout
    assert [e["path"].rsplit("/", 1)[1] for e in requests_of(emulator, method="POST")] == ["stop", "start"]
