# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Untrusted data, partial failures and hostile answers, end to end on the stack under test."""

from __future__ import annotations

import json

from conftest import fleet, inventory_list, maintenance, recap, requests_of, scenario  # pylint: disable=import-error


# Untrusted data ---------------------------------------------------------------------
def test_a_template_in_a_cache_tag_is_never_run(runner, emulator, tmp_path):
    marker = tmp_path / "pwned"
    evil = "{{ lookup('pipe', 'touch %s') }}" % marker
    scenario_ = fleet(2)
    scenario_["caches"][0]["tags"] = {"window": evil, "env": evil}
    scenario_["caches"][1]["name"] = "cache-01"
    emulator.load(scenario_)
    inventory = runner.inventory_file({
        "keyed_groups": [{"key": "hpc_cache_tags.window", "prefix": "window"}],
        "compose": {"maintenance_window": "hpc_cache_tags.window", "env_copy": "hpc_cache_tags['env']"},
        "groups": {"scheduled": "hpc_cache_tags.window is defined"}})
    listed = inventory_list(runner, inventory)
    run = runner.command("ansible-playbook", ["-i", inventory, "azure_hpc.cache.maintenance", "--tags", "pre"])
    assert run.returncode == 0, run.stdout
    assert not marker.exists(), "a cache tag was rendered as a template on the controller"
    assert listed["_meta"]["hostvars"]["cache-00"]["maintenance_window"] == evil


def test_an_operation_error_repeating_the_token_shows_no_token(runner, emulator):
    emulator.load(scenario(faults=[{"on": "flush", "kind": "status", "status": 400, "code": "BadRequest",
                                    "echo_token": True}]))
    run = runner.flush(args=["-vvv"])
    tokens = emulator.state()["tokens_issued"]
    assert run.result["failed"] is True and tokens
    assert not [t for t in tokens if t in json.dumps(run.results) or t in run.output]


# Partial failures of the role -----------------------------------------------------------
def test_role_one_refused_host_with_pre_tasks_leaves_the_others_flushed(runner, emulator, tmp_path):
    scenario_ = fleet(3)
    scenario_["caches"][1].update(state="Down", status_description="no quorum")
    emulator.load(scenario_)
    pre = tmp_path / "pre.yml"
    pre.write_text(json.dumps([{"name": "a pre-maintenance step", "ansible.builtin.debug": {"msg": "ready"}}]))
    summary = tmp_path / "summary.json"
    run = maintenance(runner, runner.inventory_file({}), "-e", json.dumps({
        "cache_maintenance_pre_tasks": [str(pre)], "cache_maintenance_summary_file": str(summary)}))
    assert run.returncode != 0
    assert [c["flushes"] for c in emulator.state()["caches"]] == [1, 0, 1], run.stdout
    counts = recap(run.stdout)
    assert [counts[h]["failed"] for h in ("cache-00", "cache-01", "cache-02")] == [0, 1, 0], run.stdout
    outcomes = {c["cache"]: c["outcome"] for c in json.loads(summary.read_text())["caches"]}
    assert outcomes == {"cache-00": "flushed", "cache-01": "refused", "cache-02": "flushed"}


def test_role_one_host_with_bad_input_fails_alone(runner, emulator, tmp_path):
    emulator.load(fleet(3))
    summary = tmp_path / "summary.json"
    inventory = runner.inventory_file({"compose": {
        "cache_maintenance_resource_group": "'' if hpc_cache_name == 'cache-01' else hpc_cache_resource_group"}})
    run = maintenance(runner, inventory, "-e", "cache_maintenance_summary_file=%s" % summary)
    assert run.returncode != 0
    assert [c["flushes"] for c in emulator.state()["caches"]] == [1, 0, 1], run.stdout
    counts = recap(run.stdout)
    assert [counts[h]["failed"] for h in ("cache-00", "cache-01", "cache-02")] == [0, 1, 0], run.stdout
    caches = {c["cache"]: c for c in json.loads(summary.read_text())["caches"]}
    assert caches["cache-01"]["outcome"] == "failed" and "resource_group" in caches["cache-01"]["msg"]


def test_role_summary_never_says_flushed_when_the_flush_did_not_run(runner, emulator):
    emulator.load(fleet(2))
    run = maintenance(runner, runner.inventory_file({}), "--skip-tags", "flush")
    assert run.returncode == 0, run.stdout
    assert requests_of(emulator, method="POST") == []
    assert ": flushed" not in run.stdout and run.stdout.count(": checked (state Healthy") == 2


def test_role_refuses_the_batch_under_the_free_strategy(runner, emulator, tmp_path):
    emulator.load(fleet(3))
    play = tmp_path / "free.yml"
    play.write_text(json.dumps([{"hosts": "hpc_caches", "gather_facts": False, "strategy": "free",
                                 "roles": [{"role": "azure_hpc.cache.cache_maintenance",
                                            "cache_maintenance_poll_interval": 1,
                                            "cache_maintenance_progress_interval": 0}]}]))
    run = runner.command("ansible-playbook", ["-i", runner.inventory_file({}), str(play)])
    assert run.returncode != 0
    assert requests_of(emulator, method="POST") == []
    assert "under the free strategy" in run.stdout
    one_each = runner.command("ansible-playbook", ["-i", runner.inventory_file({}), str(play),
                                                   "-e", "cache_maintenance_batch=false"])
    assert one_each.returncode == 0, one_each.stdout
    assert [c["flushes"] for c in emulator.state()["caches"]] == [1, 1, 1]


# Hostile answers and endpoints ------------------------------------------------------------
def test_no_token_goes_to_a_proxy_for_a_loopback_endpoint(runner, emulator, foreign):
    emulator.load(scenario(flush={"duration": 1}))
    foreign.load({})
    proxy = foreign.url
    r = runner.flush(env={"HTTP_PROXY": proxy, "http_proxy": proxy, "HTTPS_PROXY": proxy, "ALL_PROXY": proxy}).result
    assert r["status"] == "Succeeded", r
    assert foreign.log() == []


def test_metadata_naming_a_public_cloud_audience_is_refused(runner, emulator):
    emulator.load(dict(scenario(), audience="https://management.azure.com/"))
    r = runner.flush().result
    assert r["failed"] is True and "belongs to AzureCloud" in r["msg"]
    assert requests_of(emulator, "token") == [] and requests_of(emulator, "flush") == []


def test_location_error_answer_fails_the_flush_at_once(runner, emulator):
    emulator.load(scenario(flush={"mode": "location", "duration": 1, "result": "Failed",
                                  "error": {"code": "StorageTargetFailed", "message": "nfs down"}}))
    r = runner.flush().result
    assert r["failed"] is True and "The flush operation failed: StorageTargetFailed: nfs down" in r["msg"]
    assert len(requests_of(emulator, "location")) <= 3


def test_inventory_lists_each_cache_once_and_warns_on_a_missing_group(runner, emulator):
    emulator.load(fleet(4))
    inventory = runner.inventory_file({"resource_groups": ["rg-a", "RG-A", "rg-missing"],
                                       "subscriptions": ["00000000-0000-0000-0000-000000000000"] * 2})
    listed = runner.command("ansible-inventory", ["-i", inventory, "--list"])
    assert listed.returncode == 0, listed.stdout
    assert "rg-missing" in listed.stdout  # the warning
    hosts = json.loads(listed.stdout[listed.stdout.index("{"):])["hpc_caches"]["hosts"]
    assert sorted(hosts) == ["cache-01", "cache-03"]
    strict = runner.inventory_file({"resource_groups": ["rg-a", "rg-missing"], "strict_resource_groups": True})
    failed = runner.command("ansible-inventory", ["-i", strict, "--list"])
    assert "ResourceGroupNotFound" in failed.stdout and "cache-01" not in failed.stdout.split("{", 1)[-1]
