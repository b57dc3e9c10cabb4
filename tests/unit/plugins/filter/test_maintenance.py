# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache_maintenance role's decisions (plugins/filter/maintenance.py), rule by rule."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.filter.maintenance import (
    FilterModule,
    maintenance_batch,
    maintenance_batch_entry,
    maintenance_needs_healthy,
    maintenance_plan,
    maintenance_result,
    maintenance_summary,
    maintenance_upgrade_ready,
)

SKIPPED = {"skipped": True, "changed": False}


def result(**steps):
    return maintenance_result("c1", resource_group="rg", **steps)


# The plan -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("targets, pre_tasks, run_tags, skip_tags, backend, read_before", [
    ([], [], ["all"], [], False, False),  # the common path: the flush module checks in its own read
    ([], ["pre.yml"], ["all"], [], False, True),  # something runs between the check and the flush
    ([], [], ["pre"], [], False, True),  # --tags pre: the flush does not run
    ([], [], ["all"], ["flush"], False, True),  # --skip-tags flush
    ([], [], ["flush"], [], False, False),
    (["filer-01"], [], ["all"], [], True, True),  # backend: the read also checks the hold
    (["*"], [], ["flush"], [], True, True),
])
def test_the_plan_reads_first_only_where_something_needs_it(targets, pre_tasks, run_tags, skip_tags,
                                                            backend, read_before):
    plan = maintenance_plan(targets, pre_tasks, run_tags, skip_tags)
    assert (plan["backend"], plan["read_before"]) == (backend, read_before)


@pytest.mark.parametrize("timeout, delay, retries, used_delay", [
    (600, 10, 60, 10), (5, 10, 1, 10), (600, 0, 600, 1), ("30", "3", 10, 3)])
def test_the_wait_for_healthy_is_bounded_by_its_timeout(timeout, delay, retries, used_delay):
    plan = maintenance_plan([], healthy_timeout=timeout, healthy_delay=delay)
    assert (plan["healthy_retries"], plan["healthy_delay"]) == (retries, used_delay)


# The batch ------------------------------------------------------------------------------------------
def test_the_batch_is_every_host_that_named_its_cache_in_play_order():
    hostvars = {"a": {"__cache_maintenance_batch_item": {"name": "a"}}, "b": {},
                "c": {"__cache_maintenance_batch_item": {"name": "c"}}}
    assert maintenance_batch({"name": "a"}, hostvars, ["c", "b", "a", "gone"]) == [{"name": "c"}, {"name": "a"}]
    assert maintenance_batch({"name": "a"}, hostvars, ["a", "c"], False) == [{"name": "a"}]


def test_each_host_takes_its_own_entry_or_the_modules_failure():
    flush_all = {"caches": [{"label": "a", "status": "Succeeded"}, {"label": "b", "status": "Refused"}]}
    assert maintenance_batch_entry(flush_all, "b") == {"label": "b", "status": "Refused"}
    assert maintenance_batch_entry({"failed": True, "msg": "no token"}, "a") == {"failed": True, "msg": "no token"}
    assert maintenance_batch_entry({"caches": []}, "a")["msg"] == "The flush task returned no result"
    assert maintenance_batch_entry(SKIPPED, "a") == {} and maintenance_batch_entry(None, "a") == {}


# The outcome ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("flush, outcome", [
    ({"status": "Succeeded", "health_state": "Healthy"}, "flushed"),
    ({"status": "Succeeded", "health_state": "flushing"}, "attached"),  # any case
    ({"status": "InProgress", "health_state": "Healthy"}, "started"),
    ({"status": "InProgress", "health_state": "Flushing"}, "still flushing"),
    ({"status": "Skipped", "health_state": "Stopped"}, "skipped"),
    ({"status": "Unconfirmed", "health_state": "Healthy"}, "unknown"),  # never "flushed" without the service's word
    ({"status": "Refused"}, "unknown"),
])
def test_a_flush_is_reported_only_as_the_module_said(flush, outcome):
    assert result(flush=flush)["outcome"] == outcome


def test_check_mode_says_what_would_happen():
    assert result(flush={"status": "Succeeded", "changed": True}, check_mode=True)["outcome"] == "would flush"
    assert result(backend=True, suspend={"results": []}, check_mode=True)["outcome"] == "would maintain storage targets"


def test_a_flush_that_did_not_run_is_never_reported_as_one():
    assert result()["outcome"] == "not flushed"
    assert result(flush=SKIPPED)["outcome"] == "not flushed"
    assert result(checked={"health_state": "Healthy", "status": "Succeeded"})["outcome"] == "checked"


def test_backend_maintenance_is_reported_once_its_suspend_step_ran():
    assert result(backend=True, suspend={"results": [{"operations": []}]})["outcome"] == "storage targets maintained"
    # an empty loop registers "skipped" with empty results: the step ran, with nothing to suspend
    assert result(backend=True, suspend={"results": [], "skipped": True})["outcome"] == "storage targets maintained"
    # the record module's state=suspended: its targets, or skipped when nothing was recorded to suspend
    assert result(backend=True, suspend={"targets": [{"name": "f", "operations": []}]})["outcome"] == \
        "storage targets maintained"
    assert result(backend=True, suspend={"skipped": True})["outcome"] == "storage targets maintained"
    assert result(backend=True, suspend={})["outcome"] != "storage targets maintained"
    assert result(backend=True, held={"health_state": "Healthy"})["outcome"] == "not flushed"


@pytest.mark.parametrize("steps, outcome", [
    ({"failure": {"msg": "boom"}}, "failed"),
    ({"failure": {"msg": "Refusing", "status": "Refused", "health_state": "Upgrading"}}, "refused"),
    ({"failure": {"msg": "assertion"}, "flush": {"status": "Refused", "health_state": "Down"}}, "refused"),
    ({"failure": {"msg": "held by"}, "checked": {"status": "Refused"}}, "refused"),
    ({"failure": {"msg": "boom"}, "flush": {"status": "Succeeded"}}, "failed"),  # a failure wins over a flush
    ({"failure": {"msg": "boom"}, "backend": True, "suspend": {"results": []}}, "failed"),
])
def test_a_failure_is_refused_only_when_a_module_refused(steps, outcome):
    assert result(**steps)["outcome"] == outcome


def test_the_failure_message_is_the_failed_tasks():
    assert result(failure={"msg": "boom"})["msg"] == "boom"
    assert result(failure={})["msg"] == "failed"
    assert result(flush={"status": "Succeeded", "msg": "done"})["msg"] == "done"


# States, seconds, operation -------------------------------------------------------------------------
def test_state_before_comes_from_the_first_read_that_gave_one():
    assert result()["state_before"] == "Unknown"
    assert result(flush={"health_state": "Healthy"})["state_before"] == "Healthy"
    assert result(checked={"health_state": "Degraded"}, flush={"health_state": "Healthy"})["state_before"] == "Degraded"
    assert result(held={"health_state": "Healthy"}, backend=True)["state_before"] == "Healthy"
    assert result(failure={"health_state": "Upgrading", "status": "Refused"})["state_before"] == "Upgrading"


def test_state_after_is_the_wait_for_healthy_or_the_flushs_last_read():
    assert result(flush={"health_state_after": "Healthy"})["state_after"] == "Healthy"
    assert result(flush={"health_state_after": "Flushing"},
                  after={"caches": [{"health_state": "Healthy"}]})["state_after"] == "Healthy"
    assert result(after=SKIPPED)["state_after"] is None


def test_seconds_and_operation_of_a_flush():
    got = result(flush={"status": "Succeeded", "elapsed": 12.5,
                        "operation_url": "https://management.azure.com/subscriptions/s/providers/"
                                         "Microsoft.StorageCache/locations/l/ascOperations/op-1?api-version=x"})
    assert (got["seconds"], got["operation_id"]) == (12.5, "op-1")


def test_backend_seconds_are_the_sum_of_the_target_rows():
    rows = [{"name": "a", "seconds": 1.25}, {"name": "b", "seconds": "2.5"}, {"name": "c"}]
    got = result(backend=True, suspend={"results": []}, released={"storage_targets": rows})
    assert got["seconds"] == 3.8 and got["storage_targets"] == rows
    # a failed release keeps its rows in the failure
    assert result(backend=True, failure={"msg": "x", "storage_targets": rows})["storage_targets"] == rows


# The wait for Healthy -------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, wait", [
    ({"flush": {"status": "Succeeded", "health_state_after": "Transitioning"}}, True),
    ({"flush": {"status": "Succeeded", "health_state_after": "healthy"}}, False),
    ({"flush": {"status": "InProgress", "health_state_after": "Flushing"}}, False),  # wait false: not over
    ({"flush": {"status": "Succeeded", "health_state_after": "Degraded"}, "check_mode": True}, False),
    ({"backend": True, "suspend": {"results": []}}, True),
    ({"backend": True, "suspend": None}, False),
    ({"backend": True, "suspend": {"results": []}, "check_mode": True}, False),
])
def test_the_post_step_waits_only_after_work_that_leaves_the_cache_busy(kwargs, wait):
    assert maintenance_needs_healthy(**kwargs) is wait


# The summary ----------------------------------------------------------------------------------------
def test_the_summary_has_a_line_per_cache_then_per_storage_target():
    one = result(flush={"status": "Succeeded", "health_state": "Healthy", "health_state_after": "Healthy",
                        "elapsed": 6.1, "operation_url": "https://h/ascOperations/op-1"})
    two = maintenance_result("c2", failure={"msg": "Refusing: Down", "status": "Refused", "health_state": "Down"})
    three = maintenance_result("c3", backend=True, suspend={"results": []}, released={"storage_targets": [
        {"name": "filer-01", "done": "flush, suspend, resume", "state_before": "Ready", "state_after": "Ready",
         "seconds": 3.0}]})
    hostvars = {"h1": {"cache_maintenance_result": one}, "h2": {"cache_maintenance_result": two},
                "h3": {"cache_maintenance_result": three}, "h4": {}}
    summary = maintenance_summary(hostvars, ["h1", "h2", "h3", "h4"])
    assert [c["cache"] for c in summary["caches"]] == ["c1", "c2", "c3"]
    assert [line["msg"] for line in summary["lines"]] == [
        "c1: flushed (state Healthy -> Healthy, 6.1 s, operation op-1)",
        "c2: refused (state Down -> -, 0.0 s): Refusing: Down",
        "c3: storage targets maintained (state Unknown -> -, 3.0 s)",
        "c3 storage target filer-01: flush, suspend, resume (state Ready -> Ready, 3.0 s)",
    ]
    assert summary["lines"][3]["label"] == "c3/filer-01"


def test_every_filter_is_exported():
    assert set(FilterModule().filters()) == {"maintenance_plan", "maintenance_batch", "maintenance_batch_entry",
                                             "maintenance_upgrade_ready",
                                             "maintenance_result", "maintenance_needs_healthy", "maintenance_summary"}


def test_of_the_reads_before_maintenance_the_one_that_ran_counts():
    # each path has its own read; the other path's registers as skipped
    read = {"health_state": "Degraded", "status": "Succeeded"}
    assert result(checked=[read, SKIPPED])["outcome"] == "checked"
    assert result(checked=[SKIPPED, read])["state_before"] == "Degraded"
    assert result(checked=[SKIPPED, {}])["outcome"] == "not flushed"


# The software upgrade after the flush ---------------------------------------------------------------------
@pytest.mark.parametrize("flush, asked, ready", [
    ({"status": "Succeeded"}, "if_available", True),
    ({"status": "Succeeded"}, "never", False),
    ({"status": "InProgress"}, "if_available", False),  # wait false: the flush is not over
    ({"status": "Skipped"}, "if_available", False),  # stopped
    ({"failed": True, "msg": "x"}, "if_available", False),
    (SKIPPED, "if_available", False),
    (None, "if_available", False),
])
def test_the_upgrade_follows_only_a_flush_that_is_over(flush, asked, ready):
    assert maintenance_upgrade_ready(flush, asked) is ready


@pytest.mark.parametrize("upgrade, check_mode, done", [
    ({"status": "Succeeded", "changed": True}, False, "upgraded"),
    ({"status": "Succeeded", "changed": False}, False, "upgraded (found running)"),
    ({"status": "Skipped", "changed": False}, False, "no upgrade pending"),
    ({"status": "Succeeded", "changed": True}, True, "would upgrade"),
    ({"status": "InProgress", "changed": True}, False, "upgrade started"),
    ({"status": "Unconfirmed", "failed": True}, False, "failed"),
    ({"status": "Refused", "failed": True}, False, "failed"),
])
def test_what_the_upgrade_did_is_the_modules_word(upgrade, check_mode, done):
    got = result(flush={"status": "Succeeded"}, check_mode=check_mode,
                 upgrade=dict(upgrade, firmware_before="6.1.0", firmware_after="6.2.1"))["upgrade"]
    assert got["done"] == done and (got["firmware_before"], got["firmware_after"]) == ("6.1.0", "6.2.1")
    assert result(upgrade=SKIPPED)["upgrade"] is None


def test_the_summary_line_says_the_software_before_and_after():
    one = result(flush={"status": "Succeeded", "health_state": "Healthy", "health_state_after": "Healthy",
                        "elapsed": 6.1}, upgrade={"status": "Succeeded", "changed": True,
                                                  "firmware_before": "6.1.0", "firmware_after": "6.2.1"})
    lines = maintenance_summary({"h": {"cache_maintenance_result": one}}, ["h"])["lines"]
    assert lines[0]["msg"] == "c1: flushed (state Healthy -> Healthy, 6.1 s, software upgraded: 6.1.0 -> 6.2.1)"


def test_a_failed_upgrade_after_a_flush_says_the_flush_was_done_and_what_the_cache_reads():
    got = result(flush={"status": "Succeeded", "health_state_after": "Healthy"},
                 upgrade={"failed": True, "status": "Failed", "health_state_after": "UpgradeFailed",
                          "firmware_before": "6.1.0", "firmware_after": "6.1.0"},
                 failure={"msg": "The upgrade operation failed: UpgradeFailed"})
    assert got["outcome"] == "failed" and got["state_after"] == "UpgradeFailed"
    assert got["msg"] == "flushed; the software upgrade failed: The upgrade operation failed: UpgradeFailed"
    assert got["upgrade"]["done"] == "failed"


def test_an_upgrade_asked_for_but_not_attempted_is_said():
    got = result(flush={"status": "InProgress"}, upgrade=SKIPPED, upgrade_asked="if_available")
    assert got["upgrade"] == {"done": "not attempted (the flush is not over)"}
    assert result(flush={"status": "InProgress"}, upgrade=SKIPPED)["upgrade"] is None


def test_an_upgrade_on_the_operations_word_with_the_same_software_is_not_called_upgraded():
    got = result(flush={"status": "Succeeded"}, upgrade={"status": "Succeeded", "changed": True,
                                                         "firmware_before": "6.1.0", "firmware_after": "6.1.0"})
    assert got["upgrade"]["done"] == "unconfirmed (the software version did not change)"


def test_the_summary_counts_only_this_runs_results():
    ours = maintenance_result("c1", run="role-2", flush={"status": "Succeeded"})
    earlier = maintenance_result("c2", run="role-1", flush={"status": "Succeeded"})
    hostvars = {"h1": {"cache_maintenance_result": ours}, "h2": {"cache_maintenance_result": earlier}}
    assert [c["cache"] for c in maintenance_summary(hostvars, ["h1", "h2"], "role-2")["caches"]] == ["c1"]
    assert ours["run"] == "role-2"
