# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""azure_hpc_cache_info, the hpc_cache inventory plugin and the cache_maintenance role, end to end."""

from __future__ import annotations

import json
import os

import pytest

from conftest import SUB, fleet, inventory_list, maintenance, recap, requests_of  # pylint: disable=import-error

OTHER_SUB = "11111111-1111-1111-1111-111111111111"


# azure_hpc_cache_info -----------------------------------------------------------
def test_info_lists_subscription_across_pages(runner, emulator):
    emulator.load(fleet(5))
    r = runner.play([{"azure_hpc.cache.azure_hpc_cache_info": {}}]).result
    assert sorted(c["name"] for c in r["caches"]) == ["cache-%02d" % i for i in range(5)]
    assert len(requests_of(emulator, "list")) == 3  # page size 2: three pages
    one = [c for c in r["caches"] if c["name"] == "cache-01"][0]
    assert one["resource_group"] == "rg-a" and one["location"] == "eastus" and one["health_state"] == "Healthy"
    assert one["provisioning_state"] == "Succeeded" and one["upgrade_status"]["currentFirmwareVersion"]
    assert one["properties"]["health"]["state"] == "Healthy" and one["id"].endswith("/caches/cache-01")
    assert r["changed"] is False


def test_info_resource_group_and_one_cache(runner, emulator):
    emulator.load(fleet(5))
    run = runner.play([{"azure_hpc.cache.azure_hpc_cache_info": {"resource_group": "rg-a"}},
                       {"azure_hpc.cache.azure_hpc_cache_info": {"resource_group": "rg-b", "name": "cache-02"}},
                       {"azure_hpc.cache.azure_hpc_cache_info": {"resource_group": "rg-none"}},
                       {"azure_hpc.cache.azure_hpc_cache_info": {"resource_group": "rg-b", "name": "nope"}},
                       {"azure_hpc.cache.azure_hpc_cache_info": {"name": "cache-02"}}], args=["--check"])
    listed, one, empty, missing, no_group = run.results
    assert [c["name"] for c in listed["caches"]] == ["cache-01", "cache-03"]
    assert [c["name"] for c in one["caches"]] == ["cache-02"]
    assert empty["caches"] == [] and not empty.get("failed")
    assert missing["failed"] is True and missing["msg"].startswith("ResourceNotFound (HTTP 404)")
    assert no_group["failed"] is True and "resource_group" in no_group["msg"]
    assert requests_of(emulator, method="POST") == []


# Inventory plugin ---------------------------------------------------------------
def test_inventory_graph_groups_and_hostvars(runner, emulator):
    emulator.load(fleet(4))
    inventory = runner.inventory_file({"keyed_groups": [{"key": "hpc_cache_location", "prefix": "location"},
                                                        {"key": "hpc_cache_tags.env", "prefix": "env"}],
                                       "groups": {"in_rg_a": "hpc_cache_resource_group == 'rg-a'"}})
    graph = runner.command("ansible-inventory", ["-i", inventory, "--graph"])
    assert graph.returncode == 0, graph.stdout
    for group in ("@hpc_caches:", "@location_eastus:", "@location_westeurope:", "@env_prod:", "@env_dev:", "@in_rg_a:"):
        assert group in graph.stdout
    data = inventory_list(runner, inventory)
    host = data["_meta"]["hostvars"]["cache-01"]
    assert host["hpc_cache_resource_group"] == "rg-a" and host["hpc_cache_subscription_id"] == SUB
    assert host["hpc_cache_health_state"] == "Healthy" and host["hpc_cache_tags"] == {"env": "prod"}
    assert host["ansible_connection"] == "local"
    assert sorted(data["in_rg_a"]["hosts"]) == ["cache-01", "cache-03"]


def test_inventory_names_are_unique_across_subscriptions(runner, emulator):
    emulator.load({"caches": [{"name": "twin", "resource_group": "rg"},
                              {"name": "twin", "resource_group": "rg", "subscription_id": OTHER_SUB},
                              {"name": "solo", "resource_group": "rg2", "subscription_id": OTHER_SUB}]})
    inventory = runner.inventory_file({"subscriptions": [SUB, OTHER_SUB]})
    data = inventory_list(runner, inventory)
    assert sorted(data["hpc_caches"]["hosts"]) == ["solo", "twin.rg.%s" % SUB, "twin.rg.%s" % OTHER_SUB]


def test_inventory_cache_files_hold_no_secret(runner, emulator, tmp_path):
    emulator.load(fleet(2))
    cache_dir = tmp_path / "inventory-cache"
    inventory = runner.inventory_file({"cache": True, "cache_plugin": "ansible.builtin.jsonfile",
                                       "cache_connection": str(cache_dir), "cache_timeout": 600})
    env = {"AZURE_CLIENT_ID": None}
    inventory_list(runner, inventory, env)
    emulator.load(fleet(3))  # a cached inventory does not see the new cache
    second = inventory_list(runner, inventory, env)
    assert len(second["hpc_caches"]["hosts"]) == 2
    text = "".join(p.read_text() for p in cache_dir.iterdir())
    assert "cache-01" in text
    for secret in [runner.env["IDENTITY_HEADER"]] + emulator.state()["tokens_issued"]:
        assert secret not in text


def test_inventory_error_is_clear(runner, emulator):
    emulator.load(fleet(1))
    inventory = runner.inventory_file({"subscriptions": ["not-a-guid"]})
    out = runner.command("ansible-inventory", ["-i", inventory, "--list"]).stdout
    assert "subscriptions: 'not-a-guid' must be a GUID" in out


# The role ---------------------------------------------------------------------------
def test_role_in_check_mode_sends_no_post(runner, emulator):
    emulator.load(fleet(3))
    run = maintenance(runner, runner.inventory_file({}), "--check", "--diff")
    assert run.returncode == 0, run.stdout
    assert requests_of(emulator, method="POST") == []
    assert run.stdout.count(": would flush (state Healthy") == 3


def test_role_flushes_fleet_and_writes_summary(runner, emulator, tmp_path):
    emulator.load(fleet(4))
    summary = tmp_path / "summary.json"
    run = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_summary_file=%s" % summary)
    assert run.returncode == 0, run.stdout
    caches = json.loads(summary.read_text())["caches"]
    assert sorted(c["cache"] for c in caches) == ["cache-%02d" % i for i in range(4)]
    assert {c["outcome"] for c in caches} == {"flushed"}
    assert all(c["state_before"] == "Healthy" and c["state_after"] == "Healthy" and c["operation_id"] for c in caches)
    assert [c["flushes"] for c in emulator.state()["caches"]] == [1, 1, 1, 1]


def test_role_refuses_unhealthy_cache_and_flushes_the_rest(runner, emulator, tmp_path):
    scenario = fleet(3)
    scenario["caches"][1].update(state="Unhealthy", status_description="Storage target unreachable")
    scenario["caches"][2].update(state="Stopped")
    emulator.load(scenario)
    summary = tmp_path / "summary.json"
    run = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_summary_file=%s" % summary)
    assert run.returncode != 0
    assert "Refusing to flush cache-01: its health state is Unhealthy (Storage target unreachable)" in run.stdout
    outcomes = {c["cache"]: c["outcome"] for c in json.loads(summary.read_text())["caches"]}
    assert outcomes == {"cache-00": "flushed", "cache-01": "refused", "cache-02": "skipped"}
    assert [c["flushes"] for c in emulator.state()["caches"]] == [1, 0, 0]


def test_role_waits_for_healthy_after_the_flush(runner, emulator):
    # Transitioning for the flush module's own read after the flush and the role's first wait read
    emulator.load(fleet(2, state_after="Transitioning", settle_reads=2))
    run = maintenance(runner, runner.inventory_file({}))
    assert run.returncode == 0, run.stdout
    assert run.stdout.count(": flushed (state Healthy -> Healthy") == 2
    assert [line for line in run.stdout.splitlines()  # the wording differs across ansible-core versions
            if "FAILED - RETRYING: [cache-00]" in line and "Wait until the cache reports Healthy" in line]


def test_role_shows_progress_while_a_long_flush_runs(runner, emulator):
    emulator.load(fleet(1, duration=6))
    # the first progress check comes 4 s after the flush task starts, while the 6 s flush runs
    run = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_progress_interval=4")
    assert run.returncode == 0, run.stdout
    # a line every progress interval while the module runs, from the action plugin (no async job)
    assert "cache-00: azure_hpc.cache.cache_maintenance : Flush the caches of the batch: still running after 4 s" \
        in run.stdout and ": flushed (state Healthy" in run.stdout
    assert len(requests_of(emulator, "flush", "POST")) == 1


def test_role_wait_for_healthy_is_bounded(runner, emulator):
    emulator.load(fleet(1, state_after="Transitioning"))
    run = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_healthy_timeout=3")
    assert run.returncode != 0
    assert "cache-00: failed (state Healthy -> Transitioning" in run.stdout  # the last state read
    assert [c["flushes"] for c in emulator.state()["caches"]] == [1]


def test_role_pre_tag_only_reads(runner, emulator):
    emulator.load(fleet(2))
    run = maintenance(runner, runner.inventory_file({}), "--tags", "pre")
    assert run.returncode == 0, run.stdout
    assert requests_of(emulator, method="POST") == []
    assert run.stdout.count(": checked (state Healthy") == 2


def test_second_run_on_a_flushing_fleet_changes_nothing(runner, emulator):
    # The second run's inventory listing is the first look at the flushes; neither run waits, so a
    # long flush costs nothing and outlasts any start-up delay.
    emulator.load(fleet(3, duration=120))
    first = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_wait=false")
    assert first.returncode == 0, first.stdout
    second = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_wait=false")
    assert second.returncode == 0, second.stdout
    assert "changed=0" in second.stdout and "changed=1" not in second.stdout
    assert [c["flushes"] for c in emulator.state()["caches"]] == [1, 1, 1]


def test_role_user_task_files_run_before_and_after(runner, emulator, tmp_path):
    emulator.load(fleet(1))
    marker = tmp_path / "marks"
    pre, post = tmp_path / "pre.yml", tmp_path / "post.yml"
    for path, word in ((pre, "pre"), (post, "post")):
        path.write_text(json.dumps([{"name": "mark", "ansible.builtin.lineinfile": {
            "path": str(marker), "line": word + " {{ cache_maintenance_name }}", "create": True, "mode": "0644"}}]))
    run = maintenance(runner, runner.inventory_file({}), "-e", json.dumps({
        "cache_maintenance_pre_tasks": [str(pre)], "cache_maintenance_post_tasks": [str(post)]}))
    assert run.returncode == 0, run.stdout
    assert marker.read_text().split("\n")[:2] == ["pre cache-00", "post cache-00"]


def test_role_argument_spec_is_validated(runner, emulator):
    emulator.load(fleet(1))
    run = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_wait_timeout=soon")
    assert run.returncode != 0
    assert "cache_maintenance_wait_timeout" in run.stdout
    assert requests_of(emulator, method="POST") == []


def test_flush_playbook_by_extra_vars(runner, emulator):
    emulator.load(fleet(1))
    run = runner.command("ansible-playbook", ["azure_hpc.cache.flush", "-e", "cache_name=cache-00",
                                              "-e", "resource_group=rg-b", "-e", "cache_maintenance_poll_interval=1",
                                              "-e", "cache_maintenance_progress_interval=0"],
                         env={"ANSIBLE_INVENTORY": os.devnull})
    assert run.returncode == 0, run.stdout
    assert "cache-00: flushed" in run.stdout


@pytest.mark.parametrize("forks", [20])
def test_fleet_of_twenty_with_forks(runner, emulator, forks):
    emulator.load(fleet(20, duration=3))
    run = maintenance(runner, runner.inventory_file({}), "--forks", str(forks))
    assert run.returncode == 0, run.stdout
    assert [c["flushes"] for c in emulator.state()["caches"]] == [1] * 20
    assert run.stdout.count(": flushed (state Healthy -> Healthy") == 20


def test_role_a_failed_flush_fails_only_its_host(runner, emulator, tmp_path):
    scenario = fleet(3)
    scenario["caches"][1]["flush"].update(result="Failed", error={"code": "StorageTargetFailed", "message": "nfs down"})
    emulator.load(scenario)
    summary = tmp_path / "summary.json"
    run = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_summary_file=%s" % summary)
    assert run.returncode != 0
    counts = recap(run.stdout)
    assert [counts[h]["failed"] for h in ("cache-00", "cache-01", "cache-02")] == [0, 1, 0], run.stdout
    caches = {c["cache"]: c for c in json.loads(summary.read_text())["caches"]}
    assert {name: c["outcome"] for name, c in caches.items()} == {
        "cache-00": "flushed", "cache-01": "failed", "cache-02": "flushed"}
    assert "The flush operation failed: StorageTargetFailed: nfs down" in caches["cache-01"]["msg"]
    assert [c["flushes"] for c in emulator.state()["caches"]] == [1, 1, 1]


@pytest.mark.parametrize("batch,processes", [(True, 1), (False, 3)])
def test_role_flushes_a_batch_from_one_module_process(runner, emulator, batch, processes):
    # Each module process gets its own managed-identity token; the inventory plugin gets one more.
    emulator.load(fleet(3))
    run = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_batch=%s" % batch)
    assert run.returncode == 0, run.stdout
    assert run.stdout.count(": flushed (state Healthy -> Healthy") == 3
    assert [c["flushes"] for c in emulator.state()["caches"]] == [1, 1, 1]
    assert len(requests_of(emulator, kind="token")) == 1 + processes
    # every host shows its own change, though one task flushed them all
    assert [counts["changed"] for counts in recap(run.stdout).values()] == [1, 1, 1], run.stdout


def test_role_module_failure_fails_every_host_with_its_message(runner, emulator):
    emulator.load(fleet(2))
    run = maintenance(runner, runner.inventory_file({}), "-e", "cache_maintenance_api_version=' '")
    assert run.returncode != 0
    assert all(counts["failed"] == 1 for counts in recap(run.stdout).values())
    assert run.stdout.count("api_version: ' ' must be a non-empty string") >= 2
    assert requests_of(emulator, method="POST") == []


def test_a_second_run_of_the_role_in_one_playbook_forgets_the_first(runner, emulator, tmp_path):
    """Facts outlive a play: a host refused by the second run must not be flushed with the batch on the
    strength of the first run's entry, and its result must be the second run's."""
    emulator.load(fleet(2))
    pre = tmp_path / "pre.yml"
    pre.write_text("- name: A pre-maintenance step\n  ansible.builtin.debug:\n    msg: draining\n")
    role = {"role": "azure_hpc.cache.cache_maintenance"}
    second = dict(role, vars={"cache_maintenance_pre_tasks": [str(pre)], "cache_maintenance_allowed_states": (
        "{{ ['Degraded'] if inventory_hostname == 'cache-01' else ['Healthy'] }}")})
    playbook = tmp_path / "twice.yml"
    playbook.write_text(json.dumps([
        {"name": "first", "hosts": "hpc_caches", "gather_facts": False, "roles": [role]},
        {"name": "second", "hosts": "hpc_caches", "gather_facts": False, "roles": [second]},
    ]))
    summary = tmp_path / "summary.json"
    run = runner.command("ansible-playbook", ["-i", runner.inventory_file({}), str(playbook),
                                              "-e", "cache_maintenance_poll_interval=1",
                                              "-e", "cache_maintenance_progress_interval=0",
                                              "-e", "cache_maintenance_summary_file=%s" % summary])
    assert run.returncode != 0, run.stdout  # cache-01 is refused by the second run
    assert emulator.flushes("cache-00") == 2 and emulator.flushes("cache-01") == 1, run.stdout
    caches = {c["cache"]: c for c in json.loads(summary.read_text())["caches"]}
    assert caches["cache-00"]["outcome"] == "flushed"
    assert caches["cache-01"]["outcome"] == "refused" and "Refusing to flush cache-01" in caches["cache-01"]["msg"]


def test_a_host_that_fails_before_the_role_is_not_in_the_summary_with_an_earlier_plays_result(
        runner, emulator, tmp_path):
    emulator.load(fleet(2))
    role = {"role": "azure_hpc.cache.cache_maintenance"}
    playbook = tmp_path / "stale.yml"
    playbook.write_text(json.dumps([
        {"name": "first", "hosts": "hpc_caches", "gather_facts": False, "roles": [role]},
        {"name": "second", "hosts": "hpc_caches", "gather_facts": False, "roles": [role], "pre_tasks": [
            {"name": "Out before the role", "ansible.builtin.fail": {"msg": "out"},
             "when": "inventory_hostname == 'cache-01'"}]},
    ]))
    summary = tmp_path / "summary.json"
    run = runner.command("ansible-playbook", ["-i", runner.inventory_file({}), str(playbook),
                                              "-e", "cache_maintenance_poll_interval=1",
                                              "-e", "cache_maintenance_progress_interval=0",
                                              "-e", "cache_maintenance_summary_file=%s" % summary])
    assert run.returncode != 0
    assert [c["cache"] for c in json.loads(summary.read_text())["caches"]] == ["cache-00"], run.stdout
    assert emulator.flushes("cache-00") == 2 and emulator.flushes("cache-01") == 1
