# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backend maintenance's record on the cache, end to end: real ansible-playbook runs against the emulator.

The hold (tag hpc-maintenance-hold) and one tag per target a run suspends are what another run, from this
or another controller, sees: a live hold refuses every other run, an interrupted run's record is recovered
by the next (at once when its process is gone, or with take_over), and a forged record is data, never an
order. Every wait here is on the emulator's state or on a file, bounded; no test depends on how fast a
process starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import time

import pytest
from conftest import SUB, requests_of, scenario  # pylint: disable=import-error

BOUND = 300  # seconds any wait of this file may take
HOLD_TAG = "hpc-maintenance-hold"
PIPE = "{{ lookup('pipe','id') }}"


# Helpers ------------------------------------------------------------------------------------------
def targets(*specs):
    """Storage targets: a name alone is a Ready target whose actions take 1 s."""
    return [{"name": s, "action": {"duration": 1}} if isinstance(s, str) else s for s in specs]


def task_file(tmp_path, name, tasks):
    path = tmp_path / name
    path.write_text(json.dumps(tasks))
    return str(path)


def cache_hash(name="c1", resource_group="rg"):
    """How the record names its cache: a hash of the cache's id without case (plugins/module_utils/_maintenance/tags.py)."""
    ident = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.StorageCache/caches/%s" % (
        SUB, resource_group, name)
    return hashlib.sha256(ident.lower().encode("utf-8")).hexdigest()[:16]


def record(emulator, cache="c1"):
    return {k: v for k, v in emulator.tags(cache).items() if k.lower().startswith("hpc-maintenance")}


def holder_run(emulator, cache="c1"):
    fields = dict(part.partition("=")[::2] for part in record(emulator, cache)[HOLD_TAG].split(";")[1:])
    return fields["run"]


def sent(emulator, name, cache="c1"):
    return emulator.target(cache, name)["sent"]


NOTHING = {"flush": 0, "suspend": 0, "resume": 0, "dnsRefresh": 0}


def mark(emulator):
    return len(emulator.log())


def since(emulator, start, kind=None, method=None):
    return [e for e in emulator.log()[start:]
            if (kind is None or e["kind"] == kind) and (method is None or e["method"] == method)]


def writes_since(emulator, start):
    """What a run sent that changes anything: POSTs (actions, flushes) and PATCHes (tags)."""
    return [(e["method"], e["kind"], e.get("target"), e.get("action")) for e in since(emulator, start)
            if e["method"] in ("POST", "PATCH", "PUT", "DELETE")]


def flat(text):
    """Output with every run of whitespace as one space (Ansible wraps long messages)."""
    return " ".join(text.split())


def wait_until(predicate, what, bound=BOUND):
    deadline = time.monotonic() + bound
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("gave up after %d s waiting for %s" % (bound, what))
        time.sleep(0.3)


def role_args(runner, variables, *extra, playbook="azure_hpc.cache.maintenance"):
    return ["-i", runner.inventory_file({}), playbook, "-e", json.dumps(variables),
            "-e", "cache_maintenance_poll_interval=1", "-e", "cache_maintenance_healthy_delay=1",
            "-e", "cache_maintenance_progress_interval=0"] + list(extra)


def role_vars(summary, storage_targets=("filer-01",), backend_tasks=()):
    return {"cache_maintenance_storage_targets": list(storage_targets),
            "cache_maintenance_backend_tasks": list(backend_tasks),
            "cache_maintenance_summary_file": str(summary)}


class Result:
    def __init__(self, rc, stdout, summary):
        self.rc, self.stdout = rc, stdout
        self.caches = json.loads(summary.read_text())["caches"] if summary.exists() else []

    @property
    def rows(self):
        return self.caches[0]["storage_targets"]


def run_role(runner, summary, *extra, storage_targets=("filer-01",), backend_tasks=(), env=None,
             playbook="azure_hpc.cache.maintenance"):
    """The role in the foreground; its summary file read back."""
    if summary.exists():
        summary.unlink()
    proc = runner.command("ansible-playbook", role_args(runner, role_vars(summary, storage_targets, backend_tasks),
                                                        *extra, playbook=playbook), env=env)
    return Result(proc.returncode, proc.stdout, summary)


class Background:
    """ansible-playbook in its own process group, its output in a file."""

    def __init__(self, runner, argv, name, env=None):
        self.path = os.path.join(runner.tmp, name + ".out")
        run_env = dict(runner.env)
        run_env.update(env or {})
        with open(self.path, "w", encoding="utf-8") as handle:
            self.proc = subprocess.Popen([runner.tool("ansible-playbook")] + list(argv), env=run_env,
                                         stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def signal(self, sig):
        os.killpg(self.proc.pid, sig)

    def wait(self, bound=BOUND):
        return self.proc.wait(timeout=bound)

    @property
    def output(self):
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=BOUND)


@pytest.fixture
def background(runner):
    started = []

    def start(argv, name, env=None):
        job = Background(runner, argv, name, env)
        started.append(job)
        return job

    yield start
    for job in started:
        job.stop()


def live_hold_refusal(output, run_id):
    text = flat(output)
    return ("held by another maintenance run (run %s on controller %s" % (run_id, socket.gethostname()) in text
            and "nothing was sent" in text and "take_over" in text)


# 1. An interrupted run, seen from another controller --------------------------------------------------
@pytest.mark.stack_independent
def test_a_killed_run_is_refused_from_another_controller_until_take_over(runner, emulator, tmp_path, background):
    emulator.load(scenario(storage_targets=targets("filer-01")))
    inside = tmp_path / "inside"
    sleeper = task_file(tmp_path, "sleep.yml", [{"name": "Patch the filer", "changed_when": False,
                                                 "ansible.builtin.command": {"argv": [
                                                     "sh", "-c", "touch %s; exec sleep %d" % (inside, BOUND)]}}])
    first = background(role_args(runner, role_vars(tmp_path / "first.json", backend_tasks=[sleeper])), "first")
    wait_until(inside.exists, "the first run to be inside its backend task file")
    assert emulator.target("c1", "filer-01")["state"] == "Suspended"
    first.signal(signal.SIGKILL)
    first.wait()
    left = record(emulator)
    run_id = holder_run(emulator)
    assert set(left) == {HOLD_TAG, "hpc-maintenance-target-filer-01"}

    # another home (no state of the first's), the resource group spelt otherwise, another controller
    home = tmp_path / "other-home"
    home.mkdir()
    other = ("-e", "cache_maintenance_resource_group=RG", "-e", "cache_maintenance_controller=other-controller")
    start = mark(emulator)
    refused = run_role(runner, tmp_path / "refused.json", *other, backend_tasks=[], env={"HOME": str(home)})
    assert refused.rc != 0
    assert live_hold_refusal(refused.stdout, run_id), refused.stdout
    assert writes_since(emulator, start) == []
    assert emulator.target("c1", "filer-01")["state"] == "Suspended" and record(emulator) == left

    start = mark(emulator)
    taken = run_role(runner, tmp_path / "taken.json", *other, "-e", "cache_maintenance_take_over=true",
                     env={"HOME": str(home)})
    assert taken.rc == 0, taken.stdout
    recovered, own = taken.rows
    assert recovered["name"] == "filer-01" and recovered["state_before"] == "Suspended"
    assert recovered["done"].startswith("recovered from interrupted run %s: resumed" % run_id), recovered
    assert own["name"] == "filer-01" and own["done"] == "flush, suspend, resume"
    # the interrupted run's target resumed first, then this run's own maintenance
    assert [e["action"] for e in since(emulator, start, "target_action", "POST")] == [
        "resume", "flush", "suspend", "resume"]
    assert emulator.target("c1", "filer-01")["state"] == "Ready"
    assert sent(emulator, "filer-01") == {"flush": 2, "suspend": 2, "resume": 2, "dnsRefresh": 0}
    assert record(emulator) == {}


# 2. --tags pre while another run works -----------------------------------------------------------
@pytest.mark.stack_independent
def test_a_check_run_during_maintenance_fails_and_sends_nothing(runner, emulator, tmp_path, background):
    emulator.load(scenario(storage_targets=targets("filer-01")))
    inside, go_on = tmp_path / "inside", tmp_path / "go-on"
    waiter = task_file(tmp_path, "wait.yml", [
        {"name": "Say we are in", "ansible.builtin.file": {"path": str(inside), "state": "touch", "mode": "0644"}},
        {"name": "Wait for the go-ahead", "ansible.builtin.wait_for": {"path": str(go_on), "timeout": BOUND}}])
    first = background(role_args(runner, role_vars(tmp_path / "first.json", backend_tasks=[waiter])), "first")
    wait_until(inside.exists, "the first run to be inside its backend task file")
    run_id = holder_run(emulator)

    start = mark(emulator)
    check = run_role(runner, tmp_path / "check.json", "--tags", "pre")
    assert check.rc != 0
    assert live_hold_refusal(check.stdout, run_id), check.stdout
    assert writes_since(emulator, start) == []
    assert emulator.target("c1", "filer-01")["state"] == "Suspended" and first.proc.poll() is None

    go_on.touch()
    assert first.wait() == 0, first.output
    assert emulator.target("c1", "filer-01")["state"] == "Ready"
    assert sent(emulator, "filer-01") == {"flush": 1, "suspend": 1, "resume": 1, "dnsRefresh": 0}
    assert record(emulator) == {}


# 3. Two runs at one moment -------------------------------------------------------------------------
@pytest.mark.stack_independent
def test_two_runs_started_together_only_one_suspends(runner, emulator, tmp_path, background):
    emulator.load(scenario(storage_targets=targets("filer-01")))
    go_on = tmp_path / "go-on"
    # the winner waits in its task file until the loser has ended, however fast either started
    waiter = task_file(tmp_path, "wait.yml", [
        {"name": "Wait for the go-ahead", "ansible.builtin.wait_for": {"path": str(go_on), "timeout": BOUND}}])
    runs = [background(role_args(runner, role_vars(tmp_path / ("run%d.json" % i), backend_tasks=[waiter])),
                       "run%d" % i) for i in (0, 1)]
    wait_until(lambda: any(r.proc.poll() is not None for r in runs), "one of the two runs to end")
    [loser] = [r for r in runs if r.proc.poll() is not None]
    [winner] = [r for r in runs if r is not loser]
    assert loser.proc.returncode != 0
    text = flat(loser.output)
    assert ("held by another maintenance run" in text and "nothing was sent" in text) or \
           ("took the hold on c1 at the same moment" in text and "nothing was suspended" in text), text
    assert sent(emulator, "filer-01")["suspend"] <= 1  # the winner's only, if it got that far

    go_on.touch()
    assert winner.wait() == 0, winner.output
    assert sent(emulator, "filer-01") == {"flush": 1, "suspend": 1, "resume": 1, "dnsRefresh": 0}
    assert emulator.target("c1", "filer-01")["state"] == "Ready"
    assert record(emulator) == {}
    loser_summary = json.loads((tmp_path / ("run%d.json" % runs.index(loser))).read_text())["caches"][0]
    assert loser_summary["outcome"] == "failed" and loser_summary["storage_targets"] == []


# 4. Targets another operator suspends, or suspended -----------------------------------------------
@pytest.mark.stack_independent
def test_targets_suspended_by_someone_else_are_left_alone(runner, emulator, tmp_path, background):
    emulator.load(scenario(storage_targets=targets(
        "filer-01",
        # the other operator's suspend runs until the test ends it, once this run is seen waiting on it
        {"name": "filer-02", "action": {"duration": 1}, "actions": {"suspend": {"duration": BOUND}}},
        {"name": "blob-01", "target_type": "blobNfs", "state": "suspended"})))
    theirs = runner.play([{"azure_hpc.cache.azure_hpc_cache_storage_target": {
        "cache_name": "c1", "resource_group": "rg", "name": "filer-02", "state": "suspended", "flush": False,
        "wait": False}}]).result
    assert theirs.get("failed") is not True and [op["action"] for op in theirs["operations"]] == ["suspend"], theirs
    assert emulator.target("c1", "filer-02")["state"] == "Busy"

    summary = tmp_path / "summary.json"
    run = background(role_args(runner, role_vars(summary, ("filer-01", "filer-02", "blob-01"))), "run")
    # the run reads filer-02 on its own only while deciding whose it is: a second read is a wait on Busy
    wait_until(lambda: len([e for e in requests_of(emulator, "target", "GET") if e.get("target") == "filer-02"]) >= 2,
               "the run to wait while filer-02 reads Busy")
    assert emulator.target("c1", "filer-02")["state"] == "Busy" and sent(emulator, "filer-01")["suspend"] == 0
    assert emulator.finish("c1", "filer-02") == 1
    assert run.wait() == 0, run.output
    rows = {row["name"]: row for row in Result(0, "", summary).rows}
    assert rows["filer-02"]["done"] == "left suspended: it was Suspended before the run"
    assert rows["blob-01"]["done"] == "left suspended: it was suspended before the run"
    assert rows["filer-01"]["done"] == "flush, suspend, resume"
    assert "c1 storage target blob-01: left suspended: it was suspended before the run" in flat(run.output)
    assert sent(emulator, "filer-02") == {"flush": 0, "suspend": 1, "resume": 0, "dnsRefresh": 0}  # theirs only
    assert sent(emulator, "blob-01") == NOTHING
    assert emulator.target("c1", "filer-02")["state"] == "Suspended"
    assert emulator.target("c1", "blob-01")["state"] == "suspended"
    assert record(emulator) == {}


# 5. A suspend the target never shows -------------------------------------------------------------
@pytest.mark.stack_independent
def test_an_unconfirmed_suspend_is_still_resumed(runner, emulator, tmp_path):
    emulator.load(scenario(storage_targets=targets(
        {"name": "filer-01", "action": {"duration": 1}, "actions": {"suspend": {"shows": False}}})))
    # the same role, with a short confirmation window (the default is 120 s); the record module
    # (state=suspended) sends the suspend
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{
        "name": "Maintenance", "hosts": "hpc_caches", "gather_facts": False,
        "roles": [{"role": "azure_hpc.cache.cache_maintenance", "vars": {"cache_maintenance_confirm_timeout": 5}}]}]))
    run = run_role(runner, tmp_path / "summary.json", playbook=str(playbook))
    assert run.rc != 0
    assert "Unconfirmed" in run.stdout and "still reads Ready after 5 s (confirm_timeout)" in run.stdout
    [row] = run.rows
    assert row["done"].startswith("flush, suspend, resume (failed:"), row
    assert [e["action"] for e in requests_of(emulator, "target_action", "POST")] == ["flush", "suspend", "resume"]
    assert emulator.target("c1", "filer-01")["state"] == "Ready"
    assert record(emulator) == {}


# 6. Ctrl-C while the suspend runs ----------------------------------------------------------------
def test_ctrl_c_during_the_suspend_is_recovered_by_the_next_run(runner, emulator, tmp_path, background):
    emulator.load(scenario(storage_targets=targets(
        # the suspend runs until the test ends it, once the next run is seen waiting on it
        {"name": "filer-01", "action": {"duration": 1}, "actions": {"suspend": {"duration": BOUND}}}, "other")))

    def suspend_polled():
        """The suspend's operation is being polled: the interrupt lands while the module waits on it."""
        log = emulator.log()
        posts = [e["seq"] for e in log if e["kind"] == "target_action" and e.get("action") == "suspend"]
        return bool(posts) and any(e["kind"] in ("operation", "location") and e.get("target") == "filer-01"
                                   and e["seq"] > posts[0] for e in log)

    first = background(role_args(runner, role_vars(tmp_path / "first.json")), "first")
    wait_until(suspend_polled, "the suspend of filer-01 to be sent and polled")
    first.signal(signal.SIGINT)
    assert emulator.target("c1", "filer-01")["state"] == "Busy"  # the interrupt landed during the suspend
    first.wait()
    assert first.proc.returncode != 0
    assert set(record(emulator)) == {HOLD_TAG, "hpc-maintenance-target-filer-01"}
    assert sent(emulator, "filer-01")["resume"] == 0  # no always section ran

    # the next run recovers filer-01: it reads Busy (the suspend still runs), so the run waits, then resumes it
    start = mark(emulator)
    following = background(role_args(runner, role_vars(tmp_path / "next.json", ["other"])), "next")
    wait_until(lambda: following.proc.poll() is not None or len(
        [e for e in since(emulator, start, "target", "GET") if e.get("target") == "filer-01"]) >= 2,
        "the next run to wait while filer-01 reads Busy")
    assert following.proc.poll() is None, following.output
    assert sent(emulator, "filer-01")["resume"] == 0
    assert emulator.finish("c1", "filer-01") == 1
    assert following.wait() == 0, following.output
    run = Result(0, following.output, tmp_path / "next.json")
    recovered = run.rows[0]
    assert recovered["name"] == "filer-01" and "resumed" in recovered["done"], recovered
    assert recovered["done"].startswith("recovered from interrupted run")
    assert emulator.target("c1", "filer-01")["state"] == "Ready"
    assert sent(emulator, "filer-01") == {"flush": 1, "suspend": 1, "resume": 1, "dnsRefresh": 0}
    assert record(emulator) == {}


# 7. Task files that would end the play before the always section ---------------------------------
@pytest.mark.parametrize("nested", [False, True], ids=["end_host", "included_end_play"])
def test_task_files_ending_the_host_or_play_are_refused_before_any_suspend(runner, emulator, tmp_path, nested):
    emulator.load(scenario(storage_targets=targets("filer-01")))
    if nested:
        inner = task_file(tmp_path, "inner.yml", [{"name": "Stop the whole play", "ansible.builtin.meta": "end_play"}])
        work = task_file(tmp_path, "outer.yml", [
            {"name": "Say hello", "ansible.builtin.debug": {"msg": "hello"}},
            {"name": "Include the inner steps", "ansible.builtin.include_tasks": inner}])
        task = "Stop the whole play"
    else:
        work = task_file(tmp_path, "end.yml", [{"name": "Stop this cache here", "meta": "end_host"}])
        task = "Stop this cache here"
    run = run_role(runner, tmp_path / "summary.json", backend_tasks=[work])
    assert run.rc != 0
    assert task in run.stdout and "Nothing was suspended" in flat(run.stdout)
    assert requests_of(emulator, "target_action") == [] and requests_of(emulator, "tags_write") == []
    assert run.caches[0]["outcome"] == "failed"
    assert record(emulator) == {}


# 8. The health gate under --tags flush -----------------------------------------------------------
@pytest.mark.parametrize("backend", [True, False], ids=["backend", "whole_cache"])
def test_tags_flush_on_an_upgrading_cache_is_refused(runner, emulator, tmp_path, backend):
    emulator.load(scenario(state="Upgrading", storage_targets=targets("filer-01")))
    run = run_role(runner, tmp_path / "summary.json", "--tags", "flush",
                   storage_targets=("filer-01",) if backend else ())
    assert run.rc != 0
    assert "Upgrading" in run.stdout
    assert requests_of(emulator, method="POST") == [] and requests_of(emulator, "tags_write") == []
    assert run.caches[0]["outcome"] in ("refused", "failed")
    assert emulator.target("c1", "filer-01")["sent"] == NOTHING and emulator.flushes("c1") == 0


# 9. Tags that cannot be written ------------------------------------------------------------------
@pytest.mark.stack_independent
def test_unwritable_tags_refuse_unless_the_record_is_kept_locally(runner, emulator, tmp_path):
    emulator.load(scenario(tags_write="denied_by_policy", storage_targets=targets("filer-01")))
    run = run_role(runner, tmp_path / "summary.json")
    assert run.rc != 0
    assert "cache_maintenance_local_record" in run.stdout and "Nothing was suspended" in flat(run.stdout)
    assert requests_of(emulator, "target_action") == []

    local = tmp_path / "records"
    run = run_role(runner, tmp_path / "summary.json", "-e", "cache_maintenance_local_record=true",
                   "-e", "cache_maintenance_local_record_dir=%s" % local)
    assert run.rc == 0, run.stdout
    assert "it is kept on this controller only" in flat(run.stdout)
    assert run.rows[0]["done"] == "flush, suspend, resume"
    assert emulator.target("c1", "filer-01")["state"] == "Ready"
    assert sent(emulator, "filer-01") == {"flush": 1, "suspend": 1, "resume": 1, "dnsRefresh": 0}
    assert emulator.tags("c1") == {}
    # the record (replaced whole on every change) and the lock file beside it; nothing left aside
    [kept] = list(local.glob("*.json"))
    assert sorted(p.name for p in local.iterdir()) == sorted([kept.name, kept.name + ".lock"])
    assert json.loads(kept.read_text()) == {}  # the local record is given back too


# 10. A forged record -----------------------------------------------------------------------------
@pytest.mark.stack_independent
def test_a_forged_record_is_data_not_an_order(runner, emulator, tmp_path):
    emulator.load(scenario(storage_targets=targets("filer-01", "filer-02", "filer-03")))
    ours = cache_hash()
    forged = {
        "owner": "team-a",
        HOLD_TAG: "v1;run=%s;host=%s;boot=x;pid=1;pstart=1;start=1;until=2;cache=%s" % (PIPE, PIPE, ours),
        "hpc-maintenance-target-filer-02": "v1;run=forged1;cache=%s" % ours,
        "hpc-maintenance-target-filer-03": "v1;run=%s;cache=%s" % (PIPE, ours),
        "hpc-maintenance-target-%s" % PIPE: "v1;run=forged2;cache=%s" % ours,
    }
    assert emulator.set_tags("c1", forged) == 1
    run = run_role(runner, tmp_path / "summary.json")
    assert run.rc == 0, run.stdout
    summary = (tmp_path / "summary.json").read_text()
    assert "uid=" not in run.stdout and "uid=" not in summary
    assert "uid=" not in json.dumps(emulator.log()) and "uid=" not in json.dumps(emulator.tags("c1"))
    done = {}
    for row in run.rows:
        done.setdefault(row["name"], []).append(row["done"])
    # a forged (or orphaned) entry can only ask for a resume: each valid entry of this cache is resumed,
    # whatever the target reads (harmless: the service accepts a resume of a target that is not suspended),
    # and forgotten once its resume Succeeded
    assert done["filer-02"][0].startswith("recovered from interrupted run forged1: resumed")
    # the templated run id is shown as it is, never templated
    assert done["filer-03"][0].startswith("recovered from interrupted run %s: resumed" % PIPE)
    assert done["filer-01"] == ["flush, suspend, resume"]
    assert sent(emulator, "filer-02") == sent(emulator, "filer-03") == dict(NOTHING, resume=1)
    assert emulator.target("c1", "filer-02")["state"] == emulator.target("c1", "filer-03")["state"] == "Ready"
    # the forged hold and the resumed entries are dropped; the invalid name is left as it is
    assert emulator.tags("c1") == {"owner": "team-a", "hpc-maintenance-target-%s" % PIPE: forged[
        "hpc-maintenance-target-%s" % PIPE]}


# 11. any_errors_fatal ----------------------------------------------------------------------------
def test_any_errors_fatal_still_resumes_every_target_and_writes_the_summary(runner, emulator, tmp_path):
    emulator.load({"caches": [{"name": name, "resource_group": "rg", "storage_targets": targets("filer-01")}
                              for name in ("c1", "c2")], "faults": []})
    broken = task_file(tmp_path, "broken.yml", [
        {"name": "Patch the filer", "ansible.builtin.fail": {"msg": "the filer of c2 did not come back"},
         "when": "inventory_hostname == 'c2'"}])
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"name": "Maintenance", "hosts": "hpc_caches", "gather_facts": False,
                                     "any_errors_fatal": True,
                                     "roles": [{"role": "azure_hpc.cache.cache_maintenance"}]}]))
    summary = tmp_path / "summary.json"
    run = run_role(runner, summary, backend_tasks=[broken], playbook=str(playbook))
    assert run.rc != 0
    assert summary.exists(), run.stdout
    caches = {c["cache"]: c for c in run.caches}
    assert set(caches) == {"c1", "c2"}, run.stdout
    assert caches["c2"]["outcome"] == "failed" and "did not come back" in caches["c2"]["msg"]
    for name in ("c1", "c2"):
        assert emulator.target(name, "filer-01")["state"] == "Ready", name
        assert sent(emulator, "filer-01", name)["suspend"] == sent(emulator, "filer-01", name)["resume"] == 1, name
        assert record(emulator, name) == {}, name
