# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""azure_hpc_cache_maintenance_record's main(), as ansible-core calls it."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.filter._maintenance import target_rows
from ansible_collections.azure_hpc.cache.plugins.modules import azure_hpc_cache_maintenance_record
from ansible_collections.azure_hpc.cache.tests.unit.fakes import SUB, RecordArm, module_runner

BASE = {"cache_name": "c1", "resource_group": "rg", "subscription_id": SUB, "api_version": "v", "poll_interval": 1,
        "controller": "ctl-a"}


@pytest.fixture
def run_record(monkeypatch, capsys, make_client, tmp_path):
    return module_runner(monkeypatch, capsys, make_client, tmp_path, azure_hpc_cache_maintenance_record.main)


@pytest.mark.parametrize("override, fragment", [
    ({"state": "held"}, "run_id: is required with state=held"),
    ({"state": "released"}, "run_id: is required with state=released"),
    ({"state": "held", "run_id": "has space"}, "run_id: 'has space' must be 1 to 32 letters and digits"),
    ({"state": "held", "run_id": "r1", "storage_targets": ["ok", "../etc"]}, "storage_targets[1]: '../etc' must be"),
    ({"state": "held", "run_id": "r1", "hold": 0}, "hold: 0 must be an integer greater than 0"),
    # finding 8: a hold over 30 days was written, then read back as no hold
    ({"state": "held", "run_id": "r1", "hold": 2592001}, "hold: 2592001 is more than 2592000 (30 days)"),
])
def test_bad_input_is_refused_before_any_request(run_record, override, fragment):
    result, built = run_record(dict(BASE, **override))
    assert result["failed"] is True and fragment in result["msg"] and built == []


def test_a_held_and_released_run_leaves_no_record(run_record):
    arm = RecordArm(targets={"filer-01": ["Ready"]})
    result, unused = run_record(dict(BASE, state="held", run_id="r1", storage_targets=["filer-01"]), arm)
    assert result["changed"] is True and result["to_suspend"] == ["filer-01"], result
    suspended = [{"ansible_loop_var": "t", "t": "filer-01", "operations": [{"action": "suspend"}]}]
    result, unused = run_record(dict(BASE, state="released", run_id="r1", suspend_results=suspended), arm)
    assert [r["outcome"] for r in result["resumed"]] == ["resumed"]
    # the summary rows are the role's, from what the module returned (plugins/filter/_maintenance.py)
    rows = target_rows(suspended, [], result["resumed"], [], False)
    assert rows[0]["done"] == "suspend, resume" and "storage_targets" not in result
    assert not [k for k in arm.tags if k.startswith("hpc-maintenance")]


def test_held_suspended_and_released_in_three_module_runs_every_target_together(run_record):
    arm = RecordArm(targets={"filer-01": ["Ready"], "filer-02": ["Ready"]})
    held, unused = run_record(dict(BASE, state="held", run_id="r1", storage_targets=["*"]), arm)
    assert held["to_suspend"] == ["filer-01", "filer-02"], held
    suspended, unused = run_record(dict(BASE, state="suspended", run_id="r1", flush=True), arm)
    assert [(r["name"], [o["action"] for o in r["operations"]]) for r in suspended["targets"]] == [
        ("filer-01", ["flush", "suspend"]), ("filer-02", ["flush", "suspend"])], suspended
    assert [r["status"] for r in suspended["targets"]] == ["Succeeded", "Succeeded"]
    # every flush goes out before any is followed, then every suspend: the service runs them side by side,
    # and each target is out of service from its own suspend, not from the first one's
    assert arm.log == ["flush filer-01", "flush filer-02", "status", "status",
                       "suspend filer-01", "suspend filer-02", "status", "status"]
    # the release is told nothing (a killed suspend module reports nothing): every recorded target is resumed
    result, unused = run_record(dict(BASE, state="released", run_id="r1"), arm)
    assert [r["outcome"] for r in result["resumed"]] == ["resumed", "resumed"]
    assert arm.log[8:] == ["resume filer-01", "resume filer-02", "status", "status"]
    assert not [k for k in arm.tags if k.startswith("hpc-maintenance")]


def test_the_options_that_gave_summary_lines_are_accepted_ignored_and_deprecated(run_record):
    arm = RecordArm(targets={"filer-01": ["Ready"]})
    run_record(dict(BASE, state="held", run_id="r1", storage_targets=["filer-01"]), arm)
    result, unused = run_record(dict(BASE, state="released", run_id="r1", not_ours=[{"name": "blob-01"}],
                                     recovered=[], flush_results=[]), arm)
    assert [r["outcome"] for r in result["resumed"]] == ["resumed"] and "storage_targets" not in result
    for name in ("flush_results", "not_ours", "recovered"):  # Ansible warns when one is given
        spec = azure_hpc_cache_maintenance_record.OPTIONS.argument_spec()[name]
        assert (spec["removed_in_version"], spec["removed_from_collection"]) == ("1.0.0", "azure_hpc.cache")
