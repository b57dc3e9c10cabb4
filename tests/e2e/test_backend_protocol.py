# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance record as a protocol, end to end: each test a finding of 0.5.0 that the rewrite fixed.

Real ansible-playbook runs against the emulator: runs killed as AWX kills them (SIGKILL of the playbook's
process group), a module killed on its own, a hold taken over while a suspend runs, record writes answered
409 or 429, holds planted as another PID namespace would write them, a real run in another PID namespace.
Every wait is on the emulator's log or state, a process or a file, and bounded; no test depends on how fast
a process starts (a long action is ended by the test, emulator.finish, once the run is seen waiting on it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest
from conftest import requests_of, scenario  # pylint: disable=import-error
from test_backend_record import (  # pylint: disable=import-error
    BOUND,
    HOLD_TAG,
    NOTHING,
    Background,
    Result,
    cache_hash,
    flat,
    holder_run,
    live_hold_refusal,
    mark,
    record,
    role_args,
    role_vars,
    run_role,
    sent,
    since,
    targets,
    task_file,
    wait_until,
    writes_since,
)

ENTRY = "hpc-maintenance-target-"
NO_FLUSH = ("-e", "cache_maintenance_flush_targets=false")


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


# Processes, from /proc --------------------------------------------------------------------------------
def proc_stat(pid):
    """(state letter, parent pid, start time) of a process, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def argv_of(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return [a.decode("utf-8", "replace") for a in handle.read().split(b"\0") if a]
    except OSError:
        return []


def module_processes(playbook_pid):
    """(pid, start time) of the modules a playbook runs now: the Python processes below it (its workers
    included, detached into their own session or not) that are neither ansible-playbook nor a shell. The
    role's inventory pipelines modules, so a module's command line is the interpreter alone."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None:
                stats[int(entry)] = stat
    found = []
    for pid, (_state, parent, start) in stats.items():
        for _hop in range(64):
            if parent == playbook_pid:
                argv = argv_of(pid)
                if argv and "ansible-playbook" not in " ".join(argv) and \
                        os.path.basename(argv[0]).startswith("python"):
                    found.append((pid, start))
                break
            if parent <= 1 or parent not in stats:
                break
            parent = stats[parent][1]
    return found


def running(process):
    """Whether a process (pid, start time) still runs (a zombie sends nothing more)."""
    stat = proc_stat(process[0])
    return stat is not None and stat[2] == process[1] and stat[0] not in ("Z", "X")


# The emulator's log -----------------------------------------------------------------------------------
def actions_of(emulator, target, action=None, start=0):
    return [e for e in since(emulator, start, "target_action", "POST")
            if e.get("target") == target and (action is None or e.get("action") == action)]


def suspend_polled(emulator, target):
    """The suspend of target was answered and its operation read since (a first_read clock started)."""
    return polled(emulator, "suspend", target)


def polled(emulator, action, target):
    """The action on target was answered and its operation read since (a first_read clock started)."""
    log = emulator.log()
    posts = [e["seq"] for e in log if e["kind"] == "target_action" and e.get("action") == action
             and e.get("target") == target]
    return bool(posts) and any(e["kind"] in ("operation", "location") and e.get("target") == target
                               and e["seq"] > posts[0] for e in log)


def target_reads(emulator, target, start):
    return [e for e in since(emulator, start, "target", "GET") if e.get("target") == target]


def other_holder(emulator, run_id):
    """The run id of the hold when it is another run's than run_id, else None."""
    try:
        holder = holder_run(emulator)
    except KeyError:
        return None
    return holder if holder != run_id else None


def no_traceback(output):
    assert "Traceback" not in output, output


def playbook_with_defaults(tmp_path, confirm_timeout):
    """The maintenance playbook, with a short confirmation window (cache_maintenance_confirm_timeout: module
    defaults of the play would not reach the role's modules, which get the role's own)."""
    path = tmp_path / "play.yml"
    path.write_text(json.dumps([{
        "name": "Maintenance", "hosts": "hpc_caches", "gather_facts": False,
        "roles": [{"role": "azure_hpc.cache.cache_maintenance",
                   "vars": {"cache_maintenance_confirm_timeout": confirm_timeout}}]}]))
    return str(path)


def pid_namespace():
    return "".join(c for c in os.readlink("/proc/self/ns/pid") if c.isdigit())


def boot_id():
    with open("/proc/sys/kernel/random/boot_id", encoding="utf-8") as handle:
        return handle.read().strip()[:8]


def no_such_pid():
    """A pid no process can have: above the kernel's pid_max."""
    with open("/proc/sys/kernel/pid_max", encoding="utf-8") as handle:
        return int(handle.read()) + 1


def planted_hold(run, ns, pid):
    now = int(time.time())
    return "v1;run=%s;host=%s;boot=%s;ns=%s;pid=%d;pstart=1;start=%d;until=%d;cache=%s" % (
        run, socket.gethostname(), boot_id(), ns, pid, now - 60, now + 3600, cache_hash())


# a. A kill during a suspend whose state lags ----------------------------------------------------------
@pytest.mark.stack_independent
def test_a_killed_run_whose_suspend_lags_is_resumed_although_the_target_reads_ready(
        runner, emulator, tmp_path, background):
    """Finding 1 (recovery): 0.5.0 dropped an entry whose target read Ready, without a resume; a suspend that
    ended but whose state lagged then left the target Suspended with no entry. Now every entry another run
    left is resumed (a 409 while the target's operation lags is waited for and sent again), and dropped only
    once its resume Succeeded."""
    lag = 10
    emulator.load(scenario(storage_targets=targets(
        # the suspend runs until the test ends it; then the target reads Ready for lag seconds, then Suspended
        {"name": "filer-01", "action": {"duration": 1}, "actions": {"suspend": {"duration": BOUND, "lag": lag}}},
        "other")))
    first = background(role_args(runner, role_vars(tmp_path / "first.json"), *NO_FLUSH), "first")
    wait_until(lambda: suspend_polled(emulator, "filer-01") or first.proc.poll() is not None,
               "the suspend of filer-01 to be sent and polled")
    assert first.proc.poll() is None, first.output
    killed = holder_run(emulator)
    first.signal(signal.SIGKILL)  # as AWX cancels a job: the playbook's whole process group
    first.wait()
    assert set(record(emulator)) == {HOLD_TAG, ENTRY + "filer-01"}
    assert sent(emulator, "filer-01") == dict(NOTHING, suspend=1)

    summary = tmp_path / "next.json"
    start = mark(emulator)
    following = background(role_args(runner, role_vars(summary, ("other",)), *NO_FLUSH), "next")
    # the next run judges the killed run's hold dead (same controller, boot and namespace, its playbook
    # gone), takes the hold, and waits while filer-01 reads Busy
    wait_until(lambda: following.proc.poll() is not None or (
        other_holder(emulator, killed) and len(target_reads(emulator, "filer-01", start)) >= 2),
        "the next run to hold the cache and wait on filer-01")
    assert following.proc.poll() is None, following.output
    assert emulator.finish("c1", "filer-01") == 1  # the suspend Succeeded; filer-01 reads Ready for lag seconds
    lag_over = time.monotonic() + lag + 1
    assert following.wait() == 0, following.output
    run = Result(0, following.output, summary)

    # 0.5.0 ended here with filer-01 reading Ready, its entry gone, and no resume sent: wait out the lag
    wait_until(lambda: time.monotonic() > lag_over or emulator.target("c1", "filer-01")["state"] == "Suspended",
               "the lag of filer-01's suspend to pass", bound=lag + 30)
    assert emulator.target("c1", "filer-01")["state"] == "Ready"
    resumes = actions_of(emulator, "filer-01", "resume", start)
    # sent while the target read Ready (its operation still lagging: 409), waited for, and sent again
    assert resumes and resumes[0]["status"] == 409 and resumes[-1]["status"] in (200, 202), resumes
    assert sent(emulator, "filer-01") == dict(NOTHING, suspend=1, resume=1)
    recovered = run.rows[0]
    assert recovered["name"] == "filer-01", run.rows
    assert recovered["done"].startswith("recovered from interrupted run %s: resumed" % killed), recovered
    assert sent(emulator, "other") == dict(NOTHING, suspend=1, resume=1)
    assert record(emulator) == {}


# b. A slow suspend, and a hold taken over meanwhile ---------------------------------------------------
@pytest.mark.stack_independent
def test_a_run_whose_hold_was_taken_over_sends_no_further_suspend(runner, emulator, tmp_path, background):
    """Finding 2 (the fence) and finding 1: every target's flush is sent, then followed; while the flush of
    filer-01 runs, the operator takes over (cache_maintenance_take_over, as for a hold past its bound). The second
    run waits for the flushing filer-01 and resumes it, and resumes filer-02 (recorded, never suspended: 0.5.0
    dropped it as Ready). The first run's fence before its round of suspends then sees the hold is not its own:
    no suspend to either target (0.5.0 sent one, and nothing resumed it), and it fails saying so.

    The first run reads the record again for STALE_READ_SECONDS (15 s) in its fence, and again in its release,
    before it takes another run's hold for lost (a read may show the tags as they were)."""
    emulator.load(scenario(storage_targets=targets(
        {"name": "filer-01", "action": {"duration": 1}, "actions": {"flush": {"duration": BOUND}}},
        "filer-02",
        # the second run's own suspend runs until the first run has ended: the second run holds the cache
        # all along, whatever the speed of either
        {"name": "other", "action": {"duration": 1}, "actions": {"suspend": {"duration": BOUND}}})))
    playbook = playbook_with_defaults(tmp_path, confirm_timeout=5)
    first = background(role_args(runner, role_vars(tmp_path / "first.json", ("filer-01", "filer-02")),
                                 playbook=playbook), "first")
    wait_until(lambda: polled(emulator, "flush", "filer-01") or first.proc.poll() is not None,
               "the flush of filer-01 to be sent and polled")
    assert first.proc.poll() is None, first.output
    first_run = holder_run(emulator)
    assert set(record(emulator)) == {HOLD_TAG, ENTRY + "filer-01", ENTRY + "filer-02"}
    assert sent(emulator, "filer-02") == dict(NOTHING, flush=1)  # both flushes went out before either is followed

    start = mark(emulator)
    second = background(role_args(runner, role_vars(tmp_path / "second.json", ("other",)), *NO_FLUSH,
                                  "-e", "cache_maintenance_take_over=true", playbook=playbook), "second")
    wait_until(lambda: second.proc.poll() is not None or other_holder(emulator, first_run) is not None,
               "the second run to take the hold")
    assert second.proc.poll() is None, second.output
    second_run = other_holder(emulator, first_run)
    taken = mark(emulator)
    # the running flush is followed by its operation; only the second run reads the target meanwhile
    wait_until(lambda: second.proc.poll() is not None or len(target_reads(emulator, "filer-01", taken)) >= 2,
               "the second run to wait while filer-01 reads Flushing")
    assert second.proc.poll() is None, second.output
    assert actions_of(emulator, "filer-01", "resume") == []
    assert emulator.finish("c1", "filer-01") == 1

    assert first.wait() != 0
    text = flat(first.output)
    assert ("The hold on c1 is no longer this run's (run %s holds it)" % second_run in text
            or "The hold on c1 was taken by run %s while this run worked" % second_run in text), text
    no_traceback(first.output)
    # the first run sent no suspend, ever; the second run resumed both of the first run's targets
    assert sent(emulator, "filer-02") == dict(NOTHING, flush=1, resume=1)
    assert sent(emulator, "filer-01") == dict(NOTHING, flush=1, resume=1)
    assert [e["action"] for e in since(emulator, start, "target_action", "POST")
            if e.get("status") in (200, 202)][:2] == ["resume", "resume"]

    assert emulator.finish("c1", "other") == 1
    assert second.wait() == 0, second.output
    rows = {row["name"]: row["done"] for row in Result(0, "", tmp_path / "second.json").rows}
    assert rows["filer-02"].startswith("recovered from interrupted run %s: resumed" % first_run), rows
    for name in ("filer-01", "filer-02", "other"):
        assert emulator.target("c1", name)["state"] == "Ready", name
    assert sent(emulator, "other") == dict(NOTHING, suspend=1, resume=1)
    assert record(emulator) == {}


# c. The suspend module killed after its POST ---------------------------------------------------------
def test_a_suspend_module_killed_after_its_post_is_resumed_by_the_release(
        runner, emulator, tmp_path, background):
    """Finding 4: a suspend module killed after its POST reports nothing; 0.5.0 took that for "nothing
    sent" and left the target suspended. Now release resumes every target recorded for the run, once the
    suspend it finds running is over."""
    emulator.load(scenario(storage_targets=targets(
        {"name": "filer-01", "action": {"duration": 1}, "actions": {"suspend": {"duration": BOUND}}})))
    first = background(role_args(runner, role_vars(tmp_path / "summary.json"), *NO_FLUSH), "first")
    wait_until(lambda: actions_of(emulator, "filer-01", "suspend") or first.proc.poll() is not None,
               "the suspend of filer-01 to be sent")
    assert first.proc.poll() is None, first.output
    # the module that sent it still runs (the suspend runs until the test ends it): kill it alone
    [module] = module_processes(first.proc.pid)
    killed = mark(emulator)
    os.kill(module[0], signal.SIGKILL)
    # the playbook goes on to its always section: the release reads filer-01 Busy (the suspend still runs) and
    # waits for it, so that its resume comes after the suspend (I1)
    wait_until(lambda: len(target_reads(emulator, "filer-01", killed)) >= 2 or first.proc.poll() is not None,
               "the release to wait while filer-01 reads Busy")
    assert first.proc.poll() is None, first.output
    assert actions_of(emulator, "filer-01", "resume") == []
    emulator.finish("c1", "filer-01")
    assert first.wait() != 0  # the suspend step failed
    no_traceback(first.output)
    assert emulator.target("c1", "filer-01")["state"] == "Ready", first.output
    assert sent(emulator, "filer-01") == dict(NOTHING, suspend=1, resume=1)
    assert record(emulator) == {}


# d. A record delete refused during release -----------------------------------------------------------
@pytest.mark.stack_independent
def test_a_refused_record_delete_never_stops_a_resume(runner, emulator, tmp_path):
    """Finding 6: release sends every resume first; a delete of an entry answered 409 is tried a few
    times, then warned about (the entry stays: the next run resumes it again). 0.5.0 deleted each entry
    right after its resume, and a refused delete stopped the release before the other target's resume."""
    emulator.load(scenario(storage_targets=targets("filer-01", "filer-02"), faults=[
        # before release a run writes the tags twice: its hold, then its entries
        {"on": "tags_write", "status": 409, "code": "AnotherOperationInProgress", "after": 2, "count": 3}]))
    run = run_role(runner, tmp_path / "summary.json", *NO_FLUSH, storage_targets=("filer-01", "filer-02"))
    no_traceback(run.stdout)
    assert run.rc == 0, run.stdout  # a refused delete is warned about, not a failure
    for name in ("filer-01", "filer-02"):
        assert sent(emulator, name) == dict(NOTHING, suspend=1, resume=1), run.stdout
        assert emulator.target("c1", name)["state"] == "Ready"
    log = emulator.log()
    refused = [e["seq"] for e in log if e["kind"] == "tags_write" and e.get("status") == 409]
    resumes = [e["seq"] for e in log if e["kind"] == "target_action" and e.get("action") == "resume"]
    assert refused and max(resumes) < min(refused), (resumes, refused)  # every resume before any cleanup
    text = flat(run.stdout)
    left = {k for k in record(emulator) if k.startswith(ENTRY)}
    if len(refused) >= 3:  # the fault outlasted the tries: the entry stays, said so
        assert "was resumed, but its entry could not be removed from the record" in text, text
        assert len(left) == 1, record(emulator)
    else:
        assert record(emulator) == {}


# e. A hold write answered 429 -----------------------------------------------------------------------
@pytest.mark.stack_independent
def test_a_throttled_hold_write_is_decided_again_after_reading_the_record(runner, emulator, tmp_path):
    """Finding 5: a record write is tried once; after a 429 the module waits (Retry-After), reads the record
    again, decides again, and writes again. 0.5.0 sent the PATCH again blindly."""
    emulator.load(scenario(storage_targets=targets("filer-01"), faults=[
        {"on": "tags_write", "status": 429, "retry_after": 2, "count": 1}]))
    run = run_role(runner, tmp_path / "summary.json")
    assert run.rc == 0, run.stdout
    patches = [e for e in emulator.log() if e["kind"] == "tags_write"]
    assert patches[0]["status"] == 429 and patches[1]["status"] == 200, patches
    between = [e for e in emulator.log() if patches[0]["seq"] < e["seq"] < patches[1]["seq"]]
    assert any(e["kind"] == "get" and e["method"] == "GET" for e in between), between
    assert sent(emulator, "filer-01") == {"flush": 1, "suspend": 1, "resume": 1, "dnsRefresh": 0}
    assert emulator.target("c1", "filer-01")["state"] == "Ready"
    assert record(emulator) == {}


# f. Liveness: host, boot, PID namespace, pid and start time ------------------------------------------
@pytest.mark.stack_independent
def test_a_hold_from_another_pid_namespace_is_live(runner, emulator, tmp_path):
    """Finding 3: a hold written by this controller's name and boot, but in another PID namespace (another
    container on the host, or one whose name is the same), is live until its bound: its pid means nothing
    here. 0.5.0 judged it dead because the pid was not found, and recovered a live run's targets."""
    emulator.load(scenario(storage_targets=targets("filer-01", "filer-02")))
    theirs = str(int(pid_namespace()) + 1)
    emulator.set_tags("c1", {HOLD_TAG: planted_hold("planted1", theirs, no_such_pid()),
                             ENTRY + "filer-02": "v1;run=planted1;cache=%s" % cache_hash()})
    planted = record(emulator)
    start = mark(emulator)
    run = run_role(runner, tmp_path / "summary.json")
    assert run.rc != 0
    assert live_hold_refusal(run.stdout, "planted1"), run.stdout
    assert writes_since(emulator, start) == []
    assert record(emulator) == planted


@pytest.mark.stack_independent
def test_a_hold_from_this_namespace_whose_process_is_gone_is_recovered_at_once(runner, emulator, tmp_path):
    """Finding 3, the other side: the same controller, boot and PID namespace, and its process gone: dead,
    recovered at once (no take_over needed)."""
    emulator.load(scenario(storage_targets=targets("filer-01", "filer-02")))
    emulator.set_tags("c1", {HOLD_TAG: planted_hold("planted2", pid_namespace(), no_such_pid()),
                             ENTRY + "filer-02": "v1;run=planted2;cache=%s" % cache_hash()})
    run = run_role(runner, tmp_path / "summary.json")
    assert run.rc == 0, run.stdout
    recovered = run.rows[0]
    assert recovered["name"] == "filer-02", run.rows
    assert recovered["done"].startswith("recovered from interrupted run planted2: resumed"), recovered
    assert sent(emulator, "filer-02") == dict(NOTHING, resume=1)
    assert sent(emulator, "filer-01") == {"flush": 1, "suspend": 1, "resume": 1, "dnsRefresh": 0}
    assert record(emulator) == {}


def unshare_refusal():
    """Why a run in a new PID namespace cannot be started here, or None."""
    try:
        probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "unshare cannot run: %s" % exc
    if probe.returncode != 0:
        return "unshare --pid --fork --mount-proc is refused here: %s" % probe.stdout.strip()
    return None


@pytest.mark.stack_independent
def test_a_run_in_another_pid_namespace_is_refused_while_the_holder_works(
        runner, emulator, tmp_path, background):
    """Finding 3 with real processes: a second run under unshare --pid --mount-proc, with the same controller
    name and boot, cannot see the first run's playbook; it must take the hold for live, not dead (0.5.0
    recovered, resuming the first run's target in the middle of its maintenance)."""
    why = unshare_refusal()
    if why:
        pytest.skip(why)
    emulator.load(scenario(storage_targets=targets("filer-01", "other")))
    inside, go_on = tmp_path / "inside", tmp_path / "go-on"
    waiter = task_file(tmp_path, "wait.yml", [
        {"name": "Say we are in", "ansible.builtin.file": {"path": str(inside), "state": "touch", "mode": "0644"}},
        {"name": "Wait for the go-ahead", "ansible.builtin.wait_for": {"path": str(go_on), "timeout": BOUND}}])
    first = background(role_args(runner, role_vars(tmp_path / "first.json", backend_tasks=[waiter])), "first")
    wait_until(lambda: inside.exists() or first.proc.poll() is not None,
               "the first run to be inside its backend task file")
    assert first.proc.poll() is None, first.output
    run_id = holder_run(emulator)

    start = mark(emulator)
    argv = role_args(runner, role_vars(tmp_path / "second.json", ("other",)))
    second = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", runner.tool("ansible-playbook")] + argv,
                            env=runner.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=BOUND, check=False)
    assert second.returncode != 0
    assert live_hold_refusal(second.stdout, run_id), second.stdout
    assert writes_since(emulator, start) == []
    assert emulator.target("c1", "filer-01")["state"] == "Suspended" and first.proc.poll() is None

    go_on.touch()
    assert first.wait() == 0, first.output
    assert emulator.target("c1", "filer-01")["state"] == "Ready"
    assert sent(emulator, "filer-01") == {"flush": 1, "suspend": 1, "resume": 1, "dnsRefresh": 0}
    assert sent(emulator, "other") == NOTHING
    assert record(emulator) == {}


# g. An AWX-style cancel while the module waits -------------------------------------------------------
def test_a_canceled_job_whose_module_survives_sends_nothing_more(runner, emulator, tmp_path, background):
    """Finding 2 (I4): a canceled AWX job is a SIGKILL of the playbook's process group; from ansible-core 2.19
    the worker is detached into its own session and survives it, with its module. The module, waiting out a
    429's Retry-After before the suspend of filer-02, must stop within a pause once its playbook is gone and
    send nothing more (0.5.0's module sent the suspend when the Retry-After ran out, and nothing resumed it).
    The next run recovers both recorded targets."""
    emulator.load(scenario(storage_targets=targets("filer-01", "filer-02", "other"), faults=[
        # the second target action of the run (no flush): the suspend of filer-02
        {"on": "target_action", "status": 429, "retry_after": 6, "count": 1, "after": 1}]))
    first = background(role_args(runner, role_vars(tmp_path / "first.json", ("filer-01", "filer-02")),
                                 *NO_FLUSH), "first")

    def throttled():
        return [e for e in actions_of(emulator, "filer-02", "suspend") if e.get("status") == 429]

    wait_until(lambda: throttled() or first.proc.poll() is not None, "the suspend of filer-02 to be answered 429")
    assert first.proc.poll() is None, first.output
    modules = module_processes(first.proc.pid)
    assert modules, "no module process found under the playbook"
    first.signal(signal.SIGKILL)
    first.wait()
    # every module of the killed run ends (at once where the group took it, within a pause where it survived)
    wait_until(lambda: not any(running(m) for m in modules), "the killed run's module to stop", bound=30)
    # and it sent nothing more, however long after the Retry-After one looks
    answered = throttled()[0]

    def further():
        return [e for e in emulator.log() if e["seq"] > answered["seq"] and e["method"] in ("POST", "PATCH")]

    wait_until(lambda: further() or time.time() > answered["time"] + 6 + 4, "the Retry-After to run out", bound=30)
    assert further() == []
    assert sent(emulator, "filer-02") == NOTHING
    assert sent(emulator, "filer-01") == dict(NOTHING, suspend=1)
    assert set(record(emulator)) == {HOLD_TAG, ENTRY + "filer-01", ENTRY + "filer-02"}

    run = run_role(runner, tmp_path / "next.json", *NO_FLUSH, storage_targets=("other",))
    assert run.rc == 0, run.stdout
    rows = {row["name"]: row["done"] for row in run.rows}
    for name in ("filer-01", "filer-02"):
        assert rows[name].startswith("recovered from interrupted run"), rows
        assert emulator.target("c1", name)["state"] == "Ready", name
    assert sent(emulator, "filer-01") == dict(NOTHING, suspend=1, resume=1)
    assert sent(emulator, "filer-02") == dict(NOTHING, resume=1)
    assert record(emulator) == {}


# h. A hold over 30 days ------------------------------------------------------------------------------
@pytest.mark.stack_independent
def test_a_hold_over_30_days_is_refused_before_any_request(runner, emulator, tmp_path):
    """Finding 7: cache_maintenance_hold (the module's hold) over 30 days is refused before any request
    (0.5.0 took it, and wrote a hold no other run would take for a hold)."""
    emulator.load(scenario(storage_targets=targets("filer-01")))
    run = run_role(runner, tmp_path / "summary.json", "-e", "cache_maintenance_hold=2592001")
    assert run.rc != 0
    text = flat(run.stdout)
    assert "hold: 2592001 is more than 2592000 (30 days)" in text, text
    touched = ("get", "tags", "tags_write", "target", "targets", "target_action", "flush")
    assert [e for e in emulator.log() if e["kind"] in touched] == []
    assert requests_of(emulator, method="POST") == [] and requests_of(emulator, method="PATCH") == []
    assert record(emulator) == {}
