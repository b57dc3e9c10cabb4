# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Together and resume_all against what the real service was recorded doing (a target reads Ready while its suspend
or resume runs) and against faults between the requests of one round: each test a way a target could be left
suspended, or sent an action nobody asked for."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.release import running_by
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import read_record
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, CACHE_PATH, FakeRaw
from ansible_collections.azure_hpc.cache.tests.unit.plugins.module_utils import test_record as tr
from ansible_collections.azure_hpc.cache.tests.unit.plugins.module_utils.test_together import TimedArm, make_timed


class RealisticArm(TimedArm):
    """TimedArm as the real service was recorded (service-behaviour.md rows 21 and 25): a suspend or resume has no
    state of its own while it runs (the target reads what it read before, Ready). One torn answer to the cache GET
    can be armed (torn_cache_after: after that many suspend POSTs, the next cache GET's body breaks off, on each of the client's 4 tries).
    resume_204: a resume sent while another operation runs on the target is answered 204 with no operation header,
    as the specification documents it ("already resumed or resume is in progress", row 19) instead of the
    emulator-only 409 (row 22)."""

    def __init__(self, *a, torn_cache_after=None, resume_204=False, **kw):
        super().__init__(*a, **kw)
        self.torn_cache_after = torn_cache_after
        self.resume_204 = resume_204
        self.torn_left = 4  # the client reads a torn answer again (RetryPolicy attempts=4): every try is torn

    def shown(self, name):
        op = self._op(name)
        if op == "flush":
            return "Flushing"
        return self.truth[name]

    def __call__(self, method, url):
        path = url.split("?")[0].replace(ARM, "")
        if path == CACHE_PATH and method == "GET" and self.torn_cache_after is not None and \
                sum(1 for a, _n in self.posts if a == "suspend") >= self.torn_cache_after:
            self.torn_left -= 1
            if self.torn_left <= 0:
                self.torn_cache_after = None
            self.trace.append((self.clock(), "GET cache: torn body"))
            return FakeRaw(200, raw=b'{"id": "/subscriptions/x", "tags": {"hpc-mainten')
        if "/storageTargets/" in path and method == "POST" and self.resume_204:
            name = path.split("/storageTargets/", 1)[1].split("/")[0]
            if path.endswith("/resume") and self._op(name):
                self.posts.append(("resume", name))
                self.trace.append((self.clock(), "POST resume %s while a %s runs: 204" % (name, self._op(name))))
                return FakeRaw(204)
        return super().__call__(method, url)


def _timed(make_client, clock, states, **kw):
    record, arm = make_timed(make_client, clock, states)
    real = RealisticArm(clock, states, date=arm.date, **kw)
    real.tags = arm.tags
    record.ops.client.session.script = real
    return record, real


def test_a_fence_failure_mid_round_leaves_the_sent_suspend_running_when_the_step_ends(make_client, clock):
    # filer-01's suspend is sent (it runs 30 s); the fence before filer-02's suspend reads a torn cache body
    # (FenceFailed, a Stopped): Together raises without following filer-01's suspend, so the step ends while it
    # runs, and the release (the role's always section, at once) resumes filer-01 while its suspend still runs.
    record, arm = _timed(make_client, clock, {"filer-01": "Ready", "filer-02": "Ready"},
                         durations={("suspend", "filer-01"): 30.0}, torn_cache_after=1)
    record.hold(["filer-01", "filer-02"])
    with pytest.raises(HpcCacheError, match="could not be read before a request"):
        record.suspend(["filer-01", "filer-02"], flush=False)
    assert "filer-01" not in arm.running, "the suspend step ended while the suspend it sent still runs: %s" % arm.trace


def test_a_fence_failure_mid_round_then_release_leaves_a_target_suspended_with_its_entry_gone(make_client, clock):
    # as above, with the service answering the release's resume of filer-01 (sent while its suspend runs, the
    # target reading Ready) with the specification's bare 204: the resume is judged Succeeded on the Ready read,
    # the entry is forgotten, the hold given back, and then the suspend ends: filer-01 is suspended, unrecorded.
    record, arm = _timed(make_client, clock, {"filer-01": "Ready", "filer-02": "Ready"},
                         durations={("suspend", "filer-01"): 30.0}, torn_cache_after=1, resume_204=True)
    record.hold(["filer-01", "filer-02"])
    with pytest.raises(HpcCacheError):
        record.suspend(["filer-01", "filer-02"], flush=False)
    record.release([])
    clock.sleep(60)  # every operation ends
    arm.shown("filer-01")
    rec = read_record(arm.tags, tr.HASH)
    assert not (arm.truth["filer-01"] == "Suspended" and "filer-01" not in rec.entries), \
        "filer-01 is suspended and no entry names it: %s" % arm.trace


def test_flush_false_sends_no_flush_when_the_flush_it_meant_to_attach_to_ends_before_its_round(make_client, clock):
    # flush=False. filer-01 reads Flushing when the step starts (someone's flush, 50 s more): its plan is to attach
    # to that flush, then suspend. filer-02 is busy (someone's operation, 120 s): its start waits. By the round of
    # flushes, filer-01's flush is over; Together made every task stale(), so the flush "attach" is decided afresh
    # on a Ready read: no flush may be sent (flush=False); the flush it was to wait for has ended.
    record, arm = make_timed(make_client, clock, {"filer-01": "Ready", "filer-02": "Ready"})
    record.hold(["filer-01", "filer-02"])
    arm.foreign["filer-01"] = (clock() - 10, clock() + 50)
    arm.ends[999] = clock() + 120
    arm.running["filer-02"] = ("resume", clock() + 120, 999)  # someone else's operation: filer-02 reads Busy
    record.suspend(["filer-01", "filer-02"], flush=False)
    assert ("flush", "filer-01") not in arm.posts, arm.trace


def test_a_target_named_twice_to_the_suspend_step_gets_one_suspend(make_client, clock):
    # the module's state=suspended (a runbook, not the role) with storage_targets [filer-01, FILER-01]: both names
    # are recorded (case-insensitive), so two TargetTasks of one target go in one round. The target reads Ready while
    # its suspend runs (the real service, rows 21, 25): the second task's fresh read decides a second suspend.
    record, arm = _timed(make_client, clock, {"filer-01": "Ready"}, durations={("suspend", "filer-01"): 5.0})
    record.hold(["filer-01"])
    try:
        record.suspend(["filer-01", "FILER-01"], flush=False)
    except HpcCacheError:
        pass
    assert [p for p in arm.posts if p[0] == "suspend"] == [("suspend", "filer-01")], arm.trace


class UnnamedStateArm(RealisticArm):
    """filer-01 reads a state the API does not name (a newer api-version's value, or none at all), for good."""

    def shown(self, name):
        return "Maintenance" if name == "filer-01" else super().shown(name)


def test_a_target_in_an_unnamed_state_does_not_spend_the_release_on_the_others(make_client, clock):
    # the release reads filer-01 in a state the API does not name: resume_all takes it for busy and waits for it
    # (_settle, bounded by wait_timeout); filer-02's resume, sent first, is followed before that wait, so it is
    # reported resumed (it was not, when the wait on filer-01 came first and spent the whole deadline).
    record, arm = _timed(make_client, clock, {"filer-01": "Ready", "filer-02": "Ready"})
    record.hold(["filer-01", "filer-02"])
    arm.truth.update({"filer-01": "Suspended", "filer-02": "Suspended"})
    arm.__class__ = UnnamedStateArm
    try:
        result = record.release([])
        rows = result["resumed"]
    except HpcCacheError as exc:
        rows = exc.result.get("resumed") or []
    outcome = {r["name"]: r["outcome"] for r in rows}
    assert outcome.get("filer-02") == "resumed", rows
    assert outcome.get("filer-01") == "failed", rows  # never left the state: not resumed, still recorded


class TornOnResumeArm(RealisticArm):
    """The cache GET breaks off (every try of one read) once the first resume was POSTed."""

    def __call__(self, method, url):
        path = url.split("?")[0].replace(ARM, "")
        if path == CACHE_PATH and method == "GET" and self.torn_left > 0 and \
                any(a == "resume" for a, _n in self.posts):
            self.torn_left -= 1
            return FakeRaw(200, raw=b'{"id": "/subscriptions/x", "tags": {"hpc-mainten')
        return super().__call__(method, url)


def test_one_unreadable_fence_read_in_the_release_stops_no_other_targets_resume(make_client, clock):
    # I6: one failed step never stops another target's resume. The fence before filer-02's resume reads a torn
    # cache body (FenceFailed, a Stopped): resume_all raises, and filer-03 never gets a resume (it stays recorded,
    # so the next run resumes it: an outage until then, not a lost entry).
    names = {"filer-01": "Ready", "filer-02": "Ready", "filer-03": "Ready"}
    record, arm = _timed(make_client, clock, names)
    record.hold(list(names))
    record.suspend(list(names), flush=False)
    arm.__class__ = TornOnResumeArm
    try:
        record.release([])
    except HpcCacheError:
        pass
    assert ("resume", "filer-03") in arm.posts, arm.posts


def test_a_suspend_that_outlived_the_step_is_followed_by_the_release_before_its_resume(make_client, clock):
    # filer-01's suspend runs 5000 s: the suspend step gives up at its deadline (wait_timeout 3600) with the suspend
    # running. The release (a module run of its own) is told that operation (running_by of the step's targets) and
    # follows it to its end before it resumes: a resume sent while the suspend runs, the target reading Ready, may
    # be answered with a bare 204 (resume_204) and taken for done, and the suspend would then end unrecorded
    record, arm = _timed(make_client, clock, {"filer-01": "Ready"}, durations={("suspend", "filer-01"): 5000.0},
                         resume_204=True)
    record.hold(["filer-01"])
    with pytest.raises(HpcCacheError, match="Timed out waiting for the suspend operation") as caught:
        record.suspend(["filer-01"], flush=False)
    running = running_by(caught.value.result["targets"])
    assert list(running) == ["filer-01"] and "filer-01" in arm.running
    release, _unused = tr.make(make_client, tags=arm.tags, targets={"filer-01": ["Ready"]}, clock=arm.date)
    release.ops.client.session.script = arm
    result = release.release(["filer-01"], running=running)
    assert [(r["name"], r["outcome"]) for r in result["resumed"]] == [("filer-01", "resumed")], arm.trace
    assert not any("204" in what for _w, what in arm.trace), arm.trace  # no resume went out while it ran
    clock.sleep(60)
    assert arm.truth["filer-01"] == "Ready" and read_record(arm.tags, tr.HASH).entries == {}


def test_the_operations_a_suspend_step_left_running_are_named_by_target():
    first = [{"action": "flush", "status": "Succeeded", "operation_url": "https://a/op/1"},
             {"action": "suspend", "status": "InProgress", "operation_url": "https://a/op/2"}]
    rows = [{"name": "filer-01", "operations": first},
            {"name": "filer-02", "operations": [{"action": "suspend", "status": "Succeeded", "operation_url": "u"}]},
            {"name": "filer-03", "operations": [{"action": "suspend", "status": "Failed", "operation_url": "u"}]},
            {"name": "filer-04", "operations": [{"action": "suspend", "status": None, "operation_url": None}]},
            {"name": "bad name!", "operations": [{"action": "suspend", "status": "InProgress", "operation_url": "u"}]},
            {"item": "filer-05", "ansible_loop_var": "item",
             "operations": [{"action": "flush", "status": "InProgress", "operation_url": "https://a/op/3"}]},
            "not a mapping", {"name": "filer-06", "operations": "not a list"}]
    assert running_by(rows) == {"filer-01": "https://a/op/2", "filer-05": "https://a/op/3"}
