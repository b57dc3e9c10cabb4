# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache_maintenance role's backend maintenance: storage targets flushed, suspended around the
user's task files, and every one it suspended resumed, whatever happens in between."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from conftest import maintenance, requests_of, scenario  # pylint: disable=import-error

BOUND = 120  # seconds any wait of this file may take


def backend(**cache):
    """Cache c1 in rg: filer-01 Ready, blob-01 Suspended before the run, other Ready (not named)."""
    targets = cache.pop("storage_targets", None) or [
        {"name": "filer-01", "action": {"duration": 1}},
        {"name": "blob-01", "target_type": "blobNfs", "state": "Suspended"},
        {"name": "other", "action": {"duration": 1}}]
    return scenario(storage_targets=targets, **cache)


def task_file(tmp_path, name, tasks):
    path = tmp_path / name
    path.write_text(json.dumps(tasks))
    return str(path)


def run_role(runner, tmp_path, *extra, targets=("filer-01", "blob-01"), backend_tasks=(), env=None):
    summary = tmp_path / "summary.json"
    variables = {"cache_maintenance_storage_targets": list(targets), "cache_maintenance_backend_tasks": list(backend_tasks),
                 "cache_maintenance_summary_file": str(summary)}
    run = maintenance(runner, runner.inventory_file({}), "-e", json.dumps(variables), *extra, env=env)
    caches = json.loads(summary.read_text())["caches"] if summary.exists() else []
    return run, caches


def sent(emulator, name):
    return emulator.target("c1", name)["sent"]


def record(emulator):
    """The maintenance record on the cache: its hold and target tags."""
    return {k: v for k, v in emulator.tags("c1").items() if k.lower().startswith("hpc-maintenance")}


def test_targets_are_suspended_around_the_task_files_and_resumed(runner, emulator, tmp_path):
    emulator.load(backend())
    seen = tmp_path / "seen.json"
    work = task_file(tmp_path, "work.yml", [
        {"name": "Read the filer while the work runs", "azure_hpc.cache.azure_hpc_cache_storage_target_info": {
            "cache_name": "c1", "resource_group": "rg", "name": "filer-01"}, "register": "during"},
        {"name": "Keep it", "ansible.builtin.copy": {"dest": str(seen), "content": "{{ during | to_json }}",
                                                     "mode": "0644"}}])
    # ARM names are case-insensitive: the role reports and acts on the service's own spelling
    run, caches = run_role(runner, tmp_path, targets=("FILER-01", "blob-01"), backend_tasks=[work])
    assert run.returncode == 0, run.stdout
    assert json.loads(seen.read_text())["storage_targets"][0]["state"] == "Suspended"
    [cache] = caches
    assert cache["outcome"] == "storage targets maintained" and cache["state_after"] == "Healthy"
    rows = {row["name"]: row for row in cache["storage_targets"]}
    assert rows["filer-01"]["done"] == "flush, suspend, resume"
    assert rows["filer-01"]["state_before"] == "Ready" and rows["filer-01"]["state_after"] == "Ready"
    assert rows["blob-01"]["done"] == "left suspended: it was Suspended before the run"
    assert rows["blob-01"]["state_after"] == "Suspended"
    assert sent(emulator, "filer-01") == {"flush": 1, "suspend": 1, "resume": 1, "dnsRefresh": 0}
    assert sent(emulator, "blob-01") == sent(emulator, "other") == {"flush": 0, "suspend": 0, "resume": 0, "dnsRefresh": 0}
    assert emulator.target("c1", "blob-01")["state"] == "Suspended"
    assert emulator.flushes("c1") == 0  # the cache itself is not flushed
    assert record(emulator) == {}  # the record is gone once every target it listed was resumed
    assert "c1 storage target filer-01: flush, suspend, resume (state Ready -> Ready" in run.stdout
    again = runner.play([{"azure_hpc.cache.azure_hpc_cache_storage_target": {
        "cache_name": "c1", "resource_group": "rg", "name": "filer-01", "state": "active"}}]).result
    assert again["changed"] is False and again["operations"] == []  # a second run to active changes nothing


def three_targets():
    return scenario(storage_targets=[{"name": n, "action": {"duration": 1}} for n in ("filer-01", "filer-02", "blob-01")])


def test_a_failing_task_file_still_resumes_every_target_it_suspended(runner, emulator, tmp_path):
    emulator.load(three_targets())
    broken = task_file(tmp_path, "broken.yml", [{"name": "Break", "ansible.builtin.fail": {"msg": "disk replaced badly"}}])
    run, caches = run_role(runner, tmp_path, targets=["filer-01", "filer-02"], backend_tasks=[broken])
    assert run.returncode != 0 and "disk replaced badly" in run.stdout
    assert "c1: failed (state Healthy" in run.stdout and "c1 storage target filer-02: flush, suspend, resume" in run.stdout
    [cache] = caches
    assert cache["outcome"] == "failed" and "disk replaced badly" in cache["msg"]
    assert {row["name"]: row["done"] for row in cache["storage_targets"]} == {
        "filer-01": "flush, suspend, resume", "filer-02": "flush, suspend, resume"}
    assert emulator.target("c1", "filer-01")["state"] == emulator.target("c1", "filer-02")["state"] == "Ready"
    assert sent(emulator, "blob-01") == {"flush": 0, "suspend": 0, "resume": 0, "dnsRefresh": 0}  # untouched
    assert record(emulator) == {}


def test_the_same_run_in_check_mode_sends_no_post(runner, emulator, tmp_path):
    emulator.load(three_targets())
    broken = task_file(tmp_path, "broken.yml", [{"name": "Break", "ansible.builtin.fail": {"msg": "disk replaced badly"}}])
    run, caches = run_role(runner, tmp_path, "--check", targets=["filer-01", "filer-02"], backend_tasks=[broken])
    assert run.returncode != 0 and caches[0]["outcome"] == "failed"  # the user task fails in check mode too
    assert requests_of(emulator, method="POST") == [] and record(emulator) == {}
    assert requests_of(emulator, "tags_write") == []


# What an interruption during the user's task files leaves (documented in the role's argument specs):
# SIGINT (Ctrl-C, an AWX cancel) ends ansible-playbook without running the always section, as a kill
# does; the target stays suspended, the record stays on the cache, and the next run on this controller
# sees that the holder's process is gone and resumes it first.
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_run_is_resumed_by_the_next(runner, emulator, tmp_path, sig):
    emulator.load(backend())
    inside = tmp_path / "inside"  # written by the user's task once it runs
    hold = task_file(tmp_path, "hold.yml", [{"name": "Hold", "changed_when": False,
                                             "ansible.builtin.shell": "touch %s && sleep %d" % (inside, BOUND)}])
    variables = {"cache_maintenance_storage_targets": ["filer-01"], "cache_maintenance_backend_tasks": [hold]}
    argv = ["-i", runner.inventory_file({}), "azure_hpc.cache.maintenance", "-e", json.dumps(variables),
            "-e", "cache_maintenance_poll_interval=1", "-e", "cache_maintenance_progress_interval=0"]
    with subprocess.Popen([runner.tool("ansible-playbook")] + argv, env=dict(runner.env), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True) as proc:
        try:
            deadline = time.monotonic() + BOUND
            while not inside.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.3)
            assert inside.exists(), "the user's task never ran"
            assert emulator.target("c1", "filer-01")["state"] == "Suspended"
            os.killpg(proc.pid, sig)
            proc.wait(timeout=BOUND)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=BOUND)
    assert emulator.target("c1", "filer-01")["state"] == "Suspended" and len(record(emulator)) == 2
    run, caches = run_role(runner, tmp_path, targets=["other"])
    assert run.returncode == 0, run.stdout
    rows = caches[0]["storage_targets"]
    assert rows[0]["name"] == "filer-01" and rows[0]["done"].startswith("recovered from interrupted run")
    assert "resumed" in rows[0]["done"]
    assert emulator.target("c1", "filer-01")["state"] == "Ready"
    assert sent(emulator, "filer-01")["resume"] == 1 and sent(emulator, "blob-01")["resume"] == 0
    assert record(emulator) == {}


# Each action meets a different fault (every fault on every action: test_storage_targets.py and the unit tests).
@pytest.mark.parametrize("nth, action, fault", [
    (1, "flush", {"kind": "status", "status": 429, "retry_after": 1}),
    (2, "suspend", {"kind": "reset"}),
    (3, "resume", {"kind": "status", "status": 503, "retry_after": 1}),
])
def test_faults_on_each_action_send_it_once_and_end_resumed(runner, emulator, tmp_path, nth, action, fault):
    emulator.load(dict(backend(), faults=[dict(fault, on="target_action", after=nth - 1, count=1)]))
    run, caches = run_role(runner, tmp_path, targets=["filer-01"])
    assert run.returncode == 0, run.stdout
    assert caches[0]["storage_targets"][0]["done"] == "flush, suspend, resume"
    assert sent(emulator, "filer-01") == {"flush": 1, "suspend": 1, "resume": 1, "dnsRefresh": 0}
    assert emulator.target("c1", "filer-01")["state"] == "Ready"
    posts = requests_of(emulator, "target_action", "POST")
    assert len(posts) == 4 and posts[nth - 1]["action"] == action  # one request answered badly, then sent again
    assert posts[nth - 1]["status"] == fault.get("status", "reset") and posts[nth]["action"] == action


def test_a_target_the_cache_does_not_have_suspends_nothing(runner, emulator, tmp_path):
    emulator.load(backend())
    run, caches = run_role(runner, tmp_path, targets=["filer-01", "nope"])
    assert run.returncode != 0
    assert caches[0]["outcome"] == "failed" and "has no storage target nope" in caches[0]["msg"]
    assert requests_of(emulator, "target_action") == []


def test_check_mode_sends_nothing_and_writes_no_record(runner, emulator, tmp_path):
    emulator.load(backend())
    run, caches = run_role(runner, tmp_path, "--check")
    assert run.returncode == 0, run.stdout
    assert caches[0]["outcome"] == "would maintain storage targets"
    assert caches[0]["storage_targets"][0]["done"] == "would be flushed, suspended and resumed"
    assert requests_of(emulator, "target_action") == [] and requests_of(emulator, "tags_write") == []


def test_dns_refresh_after_resume_and_progress_lines_while_waiting(runner, emulator, tmp_path):
    emulator.load(backend(storage_targets=[{"name": "filer-01", "action": {"duration": 1},
                                            "actions": {"flush": {"duration": 6}}}]))
    # the first progress check comes 4 s after the flush task starts, while the 6 s flush runs
    run, caches = run_role(runner, tmp_path, "-e", "cache_maintenance_dns_refresh=true",
                           "-e", "cache_maintenance_progress_interval=4", targets=["filer-01"])
    assert run.returncode == 0, run.stdout
    assert caches[0]["storage_targets"][0]["done"] == "flush, suspend, resume, dns_refresh"
    assert sent(emulator, "filer-01") == {"flush": 1, "suspend": 1, "resume": 1, "dnsRefresh": 1}
    # a line every progress interval while a target action runs, from the action plugin (no async job)
    assert "c1: azure_hpc.cache.cache_maintenance : Flush and suspend the storage targets: still running after 4 s" in run.stdout
