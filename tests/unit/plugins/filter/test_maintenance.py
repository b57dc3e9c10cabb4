# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache_maintenance role's decisions (plugins/filter/_maintenance.py), rule by rule, through the role's one
entry point (the filter _maintenance, a step and its named values)."""

from __future__ import annotations

import re

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.azure_hpc.cache.plugins.filter._maintenance import STEPS, FilterModule, target_rows

SKIPPED = {"skipped": True, "changed": False}


def step(which, **values):
    """What the role gets from {{ values | azure_hpc.cache._maintenance(which) }}."""
    return FilterModule().filters()["_maintenance"](values, which)


def result(**steps):
    return step("result", name="c1", resource_group="rg", **steps)


# The plan -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("targets, pre_tasks, run_tags, skip_tags, backend, read_before", [
    ([], [], ["all"], [], False, False),  # the common path: the flush module checks in its own read
    ([], ["pre.yml"], ["all"], [], False, True),  # something runs between the check and the flush
    ([], [], ["pre"], [], False, True),  # --tags pre: the flush does not run
    ([], [], ["all"], ["flush"], False, True),  # --skip-tags flush
    ([], [], ["flush"], [], False, False),
    (["filer-01"], [], ["all"], [], True, False),  # backend: the hold step checks health and holds in its read
    (["filer-01"], ["pre.yml"], ["all"], [], True, True),  # refused before the pre-maintenance task files
    (["*"], [], ["flush"], [], True, False),
    (["*"], [], ["pre"], [], True, True),  # --tags pre: only the check runs
])
def test_the_plan_reads_first_only_where_something_needs_it(targets, pre_tasks, run_tags, skip_tags,
                                                            backend, read_before):
    plan = step("plan", storage_targets=targets, pre_tasks=pre_tasks, run_tags=run_tags, skip_tags=skip_tags)
    assert (plan["backend"], plan["read_before"]) == (backend, read_before)


@pytest.mark.parametrize("timeout, delay, retries, used_delay", [
    (600, 10, 60, 10), (5, 10, 1, 10), (600, 0, 600, 1), ("30", "3", 10, 3)])
def test_the_wait_for_healthy_is_bounded_by_its_timeout(timeout, delay, retries, used_delay):
    plan = step("plan", storage_targets=[], healthy_timeout=timeout, healthy_delay=delay)
    assert (plan["healthy_retries"], plan["healthy_delay"]) == (retries, used_delay)


# The batch ------------------------------------------------------------------------------------------
def test_the_batch_is_every_host_that_named_its_cache_in_play_order():
    # the role passes each batch host's item, in play order; a host that named none gives {} (or nothing)
    items = [{"name": "c"}, {}, {"name": "a"}, None]
    assert step("batch", item={"name": "a"}, items=items) == [{"name": "c"}, {"name": "a"}]
    assert step("batch", item={"name": "a"}, items=items, batch=False) == [{"name": "a"}]


def test_each_host_takes_its_own_entry_or_the_modules_failure():
    flush_all = {"caches": [{"label": "a", "status": "Succeeded"}, {"label": "b", "status": "Refused"}]}
    assert step("batch_entry", flush_all=flush_all, label="b") == {"label": "b", "status": "Refused"}
    assert step("batch_entry", flush_all={"failed": True, "msg": "no token"}, label="a") == \
        {"failed": True, "msg": "no token"}
    assert step("batch_entry", flush_all={"caches": []}, label="a")["msg"] == "The flush task returned no result"
    assert step("batch_entry", flush_all=SKIPPED, label="a") == {} and step("batch_entry", flush_all=None, label="a") == {}


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
    # backend: the release's own last read, when the wait did not run; the wait's read when it did
    assert result(backend=True, after=SKIPPED, released={"health_state_after": "Healthy"})["state_after"] == "Healthy"
    assert result(backend=True, after={"caches": [{"health_state": "Healthy"}]},
                  released={"health_state_after": "Degraded"})["state_after"] == "Healthy"


def test_seconds_and_operation_of_a_flush():
    got = result(flush={"status": "Succeeded", "elapsed": 12.5,
                        "operation_url": "https://management.azure.com/subscriptions/s/providers/"
                                         "Microsoft.StorageCache/locations/l/ascOperations/op-1?api-version=x"})
    assert (got["seconds"], got["operation_id"]) == (12.5, "op-1")


def test_backend_seconds_are_the_longest_target_row():
    # the targets go together (every suspend sent before any is followed): their rows' seconds overlap
    rows = [{"name": "a", "seconds": 1.25}, {"name": "b", "seconds": "2.5"}, {"name": "c"}]
    got = result(backend=True, suspend={"results": []}, storage_targets=rows)
    assert got["seconds"] == 2.5 and got["storage_targets"] == rows
    assert result(backend=True, suspend={"results": []}, storage_targets=[])["seconds"] == 0.0
    # a failed release keeps its rows (target_rows reads a failed release's result too)
    assert result(backend=True, failure={"msg": "x"}, storage_targets=rows)["storage_targets"] == rows


# The rows of storage targets ------------------------------------------------------------------------
def test_summary_rows_say_what_was_sent_to_each_target_and_why_others_were_left():
    flush = [{"ansible_loop_var": "t", "t": "filer-01", "state_before": "Ready", "elapsed": 4.0,
              "operations": [{"action": "flush"}]}]
    suspend = [{"ansible_loop_var": "t", "t": "filer-01", "state_before": "Ready", "state_after": "Suspended",
                "elapsed": 1.0, "operations": [{"action": "suspend"}]}]
    resumed = [{"name": "filer-01", "outcome": "resumed", "sent": True, "state_after": "Ready", "seconds": 1.5}]
    recovered = [{"name": "old-01", "run": "r0", "outcome": "resumed", "state_before": "Suspended",
                  "state_after": "Ready", "msg": "resumed"}]
    not_ours = [{"name": "blob-01", "state": "Suspended", "why": "it was Suspended before the run"}]
    rows = target_rows(suspend, not_ours, resumed, recovered, False, flush)
    assert [r["name"] for r in rows] == ["old-01", "filer-01", "blob-01"]
    assert rows[0]["done"].startswith("recovered from interrupted run r0: resumed")
    assert rows[1] == {"name": "filer-01", "state_before": "Ready", "state_after": "Ready", "seconds": 6.5,
                       "done": "flush, suspend, resume"}
    assert rows[2]["done"] == "left suspended: it was Suspended before the run"
    assert target_rows(suspend, [], [], [], True, flush)[0]["done"] == "would be flushed, suspended and resumed"


HELD = {"to_suspend": ["filer-01"], "not_ours": [{"name": "blob-01", "state": "Suspended", "why": "it was Suspended"}],
        "recovered": [{"name": "old-01", "run": "r0", "outcome": "resumed", "state_before": "Suspended",
                       "state_after": "Ready", "msg": "resumed"}]}
SUSPENDED = {"targets": [{"name": "filer-01", "state_before": "Ready", "state_after": "Suspended", "elapsed": 5.0,
                          "operations": [{"action": "flush"}, {"action": "suspend"}]}]}


def test_the_role_gets_the_rows_from_what_the_record_module_returned():
    released = {"resumed": [{"name": "filer-01", "outcome": "resumed", "sent": True, "state_after": "Ready",
                             "seconds": 1.5, "dns_refresh": "done"}]}
    rows = step("target_rows", held=HELD, suspend=SUSPENDED, released=released, check_mode=False)
    assert [(r["name"], r["done"]) for r in rows] == [
        ("old-01", "recovered from interrupted run r0: resumed (resumed)"),
        ("filer-01", "flush, suspend, resume, dns_refresh"), ("blob-01", "left suspended: it was Suspended")]
    assert rows[1]["seconds"] == 6.5 and rows[1]["state_after"] == "Ready"
    # a failed release is registered too: what it resumed, and what it did not
    failed = {"failed": True, "msg": "x", "resumed": [{"name": "filer-01", "outcome": "failed", "sent": True,
                                                       "msg": "409"}]}
    rows = step("target_rows", held=HELD, suspend=SUSPENDED, released=failed, check_mode=False)
    assert rows[1]["done"] == "flush, suspend, resume (failed: 409)"
    # a suspend step skipped (nothing to suspend) still reports the hold's rows
    rows = step("target_rows", held=HELD, suspend=SKIPPED, released={"resumed": []}, check_mode=False)
    assert [r["name"] for r in rows] == ["old-01", "blob-01"]


def test_no_rows_until_the_release_ran():
    # the hold failed (refused, held by another run): nothing was suspended, no release ran
    assert step("target_rows", held={"failed": True, "not_ours": []}, suspend={}, released={}, check_mode=False) == []
    assert step("target_rows", held=HELD, suspend=SUSPENDED, released=SKIPPED, check_mode=False) == []
    assert step("target_rows", held=None, suspend=None, released=None, check_mode=False) == []


# The wait for Healthy -------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, wait", [
    ({"flush": {"status": "Succeeded", "health_state_after": "Transitioning"}}, True),
    ({"flush": {"status": "Succeeded", "health_state_after": "healthy"}}, False),
    ({"flush": {"status": "InProgress", "health_state_after": "Flushing"}}, False),  # wait false: not over
    ({"flush": {"status": "Succeeded", "health_state_after": "Degraded"}, "check_mode": True}, False),
    ({"backend": True, "suspend": {"results": []}}, True),
    # the release's last read (after every resume ended) showed Healthy: no module run to read it again
    ({"backend": True, "suspend": {"targets": []}, "released": {"health_state_after": "Healthy"}}, False),
    ({"backend": True, "suspend": {"targets": []}, "released": {"health_state_after": "Degraded"}}, True),
    ({"backend": True, "suspend": {"targets": []}, "released": {"failed": True}}, True),
    ({"backend": True, "suspend": None}, False),
    ({"backend": True, "suspend": {"results": []}, "check_mode": True}, False),
])
def test_the_post_step_waits_only_after_work_that_leaves_the_cache_busy(kwargs, wait):
    assert step("needs_healthy", **kwargs) is wait


# The summary ----------------------------------------------------------------------------------------
def test_the_summary_has_a_line_per_cache_then_per_storage_target():
    one = result(flush={"status": "Succeeded", "health_state": "Healthy", "health_state_after": "Healthy",
                        "elapsed": 6.1, "operation_url": "https://h/ascOperations/op-1"})
    two = step("result", name="c2", failure={"msg": "Refusing: Down", "status": "Refused", "health_state": "Down"})
    three = step("result", name="c3", backend=True, suspend={"results": []}, storage_targets=[
        {"name": "filer-01", "done": "flush, suspend, resume", "state_before": "Ready", "state_after": "Ready",
         "seconds": 3.0}])
    # each host's cache_maintenance_result, in play order; a host without one gives {}
    summary = step("summary", results=[one, two, three, {}])
    assert [c["cache"] for c in summary["caches"]] == ["c1", "c2", "c3"]
    assert [line["msg"] for line in summary["lines"]] == [
        "c1: flushed (state Healthy -> Healthy, 6.1 s, operation op-1)",
        "c2: refused (state Down -> -, 0.0 s): Refusing: Down",
        "c3: storage targets maintained (state Unknown -> -, 3.0 s)",
        "c3 storage target filer-01: flush, suspend, resume (state Ready -> Ready, 3.0 s)",
    ]
    assert summary["lines"][3]["label"] == "c3/filer-01"


def test_one_private_filter_is_exported_with_every_step():
    assert set(FilterModule().filters()) == {"_maintenance"}
    assert set(STEPS) == {"plan", "batch", "batch_entry", "upgrade_ready", "target_rows", "result",
                          "needs_healthy", "summary"}


@pytest.mark.parametrize("which, values, fragment", [
    ("flush", {}, "unknown step 'flush'"),
    ("plan", {"storage_targets": [], "pre_task": []}, "_maintenance(plan): got an unexpected keyword argument 'pre_task'"),
    ("batch_entry", {"flush_all": {}}, "_maintenance(batch_entry): missing a required argument: 'label'"),
])
def test_an_unknown_step_or_value_fails_the_task(which, values, fragment):
    with pytest.raises(AnsibleFilterError, match=re.escape(fragment)):
        step(which, **values)
    with pytest.raises(AnsibleFilterError, match="must be a mapping"):
        FilterModule().filters()["_maintenance"](["plan"], "plan")


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
    assert step("upgrade_ready", flush=flush, upgrade=asked) is ready


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
    lines = step("summary", results=[one])["lines"]
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
    ours = step("result", name="c1", run="role-2", flush={"status": "Succeeded"})
    earlier = step("result", name="c2", run="role-1", flush={"status": "Succeeded"})
    assert [c["cache"] for c in step("summary", results=[ours, earlier], run="role-2")["caches"]] == ["c1"]
    assert ours["run"] == "role-2"
