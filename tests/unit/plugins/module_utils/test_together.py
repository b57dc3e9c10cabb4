# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Several storage targets at once (Together, the release's resume_all) against targets that live on the test's
clock: an action runs for its duration, a target reads Flushing or Busy meanwhile, an action sent while another
runs answers 409, and someone else's flush can start on a target while the run follows others."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import read_record
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, CACHE_PATH, SUB, FakeRaw, RecordArm
from ansible_collections.azure_hpc.cache.tests.unit.plugins.module_utils import test_record as tr

OPS = ARM + "subscriptions/%s/providers/Microsoft.StorageCache/locations/eastus/ascOperations/" % SUB


class TimedArm(RecordArm):
    """RecordArm whose storage targets live on the test's clock: an action runs for its duration (a target reads
    Flushing during a flush, Busy during a suspend or resume), an action sent while another runs answers 409, and
    foreign flushes (someone else's) can be scheduled: {name: (start, end)}."""

    def __init__(self, clock, states, durations=None, foreign=None, refuse=None, **kw):
        super().__init__(targets={n: [s] for n, s in states.items()}, **kw)
        self.clock = clock
        self.truth = dict(states)
        self.durations = durations or {}
        self.foreign = foreign or {}
        self.refuse = refuse or {}  # (action, name) -> FakeRaw
        self.running = {}  # name -> (action, end, id)
        self.ends = {}  # op id -> end
        self.trace = []  # (time, what)
        self.log = []

    def _op(self, name):
        now = self.clock()
        run = self.running.get(name)
        if run and now >= run[1]:
            action = run[0]
            if action == "suspend":
                self.truth[name] = "Suspended"
            elif action == "resume":
                self.truth[name] = "Ready"
            del self.running[name]
            run = None
        if run:
            return run[0]
        start_end = self.foreign.get(name)
        if start_end and start_end[0] <= now < start_end[1]:
            return "flush"
        return None

    def shown(self, name):
        op = self._op(name)
        if op == "flush":
            return "Flushing"
        if op:
            return "Busy"
        return self.truth[name]

    def __call__(self, method, url):
        path = url.split("?")[0].replace(ARM, "")
        if "ascOperations" in url:
            self.log.append("status")
            ident = int(path.rsplit("/", 1)[1])
            return FakeRaw(200, {"status": "Succeeded" if self.clock() >= self.ends[ident] else "InProgress"})
        if "/storageTargets/" in path:
            name = path.split("/storageTargets/", 1)[1].split("/")[0]
            if method == "POST":
                action = path.rsplit("/", 1)[1]
                self.posts.append((action, name))
                self.log.append("%s %s" % (action, name))
                self.trace.append((self.clock(), "POST %s %s while it reads %s" % (action, name, self.shown(name))))
                if (action, name) in self.refuse:
                    return self.refuse[(action, name)]
                if self._op(name):
                    return FakeRaw(409, {"error": {"code": "Conflict", "message": "a %s runs" % self._op(name)}})
                ident = len(self.ends) + 1
                end = self.clock() + self.durations.get((action, name), 1.0)
                self.ends[ident] = end
                self.running[name] = (action, end, ident)
                return FakeRaw(202, None, {"Azure-AsyncOperation": OPS + "%d?api-version=v" % ident})
            return FakeRaw(200, {"name": name, "properties": {"state": self.shown(name)}})
        if path.endswith("/storageTargets"):
            return FakeRaw(200, {"value": [{"name": n, "properties": {"state": self.shown(n)}} for n in self.truth]})
        return super().__call__(method, url)


def make_timed(make_client, clock, states, **kw):
    """test_record.make, with a TimedArm on the test's clock (wall clock = NOW + the test clock's progress)."""
    start = clock()

    def wall():
        return tr.NOW + (clock() - start)

    record, _unused = tr.make(make_client, targets={n: ["Ready"] for n in states}, clock=wall)
    arm = TimedArm(clock, states, date=wall, **kw)
    record.ops.client.session.script = arm
    return record, arm


def test_a_suspend_is_decided_on_a_fresh_read_never_sent_while_someone_elses_flush_runs(make_client, clock):
    # flush=False: filer-02 reads Flushing (someone's flush, 600 s): it is waited for first, alone. filer-01 read
    # Ready when the step began; someone starts a flush on it 100 s later: its suspend waits for that flush
    record, arm = make_timed(make_client, clock, {"filer-01": "Ready", "filer-02": "Ready"})
    record.hold(["filer-01", "filer-02"])
    arm.foreign["filer-02"] = (clock() - 10, clock() + 600)
    arm.foreign["filer-01"] = (clock() + 100, clock() + 1500)
    result = record.suspend(["filer-01", "filer-02"], flush=False)
    assert not any("POST suspend" in what and "Flushing" in what for _w, what in arm.trace), arm.trace
    assert [r["status"] for r in result["targets"]] == ["Succeeded", "Succeeded"]
    assert arm.truth == {"filer-01": "Suspended", "filer-02": "Suspended"}


def test_a_failure_mid_round_follows_what_was_sent_reports_it_and_the_release_resumes_everything(make_client, clock):
    # flush=True: filer-01's flush is sent (a long one, 1200 s), then filer-02's flush is refused (400): no suspend
    # is sent, filer-01's flush is followed to its end (reads only) and reported, and the release that follows at
    # once (the role's always section) finds nothing of this step still running
    refused = FakeRaw(400, {"error": {"code": "BadRequest", "message": "refused"}})
    record, arm = make_timed(make_client, clock, {"filer-01": "Ready", "filer-02": "Ready"},
                             durations={("flush", "filer-01"): 1200.0}, refuse={("flush", "filer-02"): refused})
    record.hold(["filer-01", "filer-02"])
    with pytest.raises(HpcCacheError, match="Suspending the storage target filer-02 of cache c1 failed") as caught:
        record.suspend(["filer-01", "filer-02"], flush=True)
    rows = {r["name"]: r for r in caught.value.result["targets"]}
    assert [(o["action"], o["status"]) for o in rows["filer-01"]["operations"]] == [("flush", "Succeeded")]
    assert rows["filer-02"]["failed"] is True and arm.posts == [("flush", "filer-01"), ("flush", "filer-02")]
    result = record.release([])
    assert [(r["name"], r["outcome"]) for r in result["resumed"]] == [("filer-01", "resumed"), ("filer-02", "resumed")]
    assert read_record(arm.tags, tr.HASH).entries == {} and read_record(arm.tags, tr.HASH).holder is None


def test_the_release_waits_for_a_target_still_busy_after_sending_the_others_resumes(make_client, clock):
    # a killed suspend module left filer-01's slow suspend running (300 s): filer-02's resume goes out at once,
    # filer-01's only once its suspend is over (I1: the resume comes after the suspend)
    record, arm = make_timed(make_client, clock, {"filer-01": "Ready", "filer-02": "Ready"},
                             durations={("suspend", "filer-01"): 300.0})
    record.hold(["filer-01", "filer-02"])
    arm("POST", ARM + CACHE_PATH + "/storageTargets/filer-01/suspend")  # a killed suspend module's, still running
    started = clock()
    result = record.release([])
    posts = [(round(when - started), what.split(" while ")[0]) for when, what in arm.trace[1:]]
    assert posts[0] == (0, "POST resume filer-02") and posts[1][1] == "POST resume filer-01" and posts[1][0] >= 300
    assert [(r["name"], r["outcome"]) for r in result["resumed"]] == [("filer-01", "resumed"), ("filer-02", "resumed")]
    assert arm.truth == {"filer-01": "Ready", "filer-02": "Ready"}


def test_each_targets_row_is_timed_on_its_own_clock_of_the_step(make_client, clock):
    record, arm = make_timed(make_client, clock, {"filer-01": "Ready", "filer-02": "Ready", "filer-03": "Ready"},
                             durations={("flush", n): 600.0 for n in ("filer-01", "filer-02", "filer-03")})
    record.hold(["filer-01", "filer-02", "filer-03"])
    started = clock()
    rows = record.suspend(["filer-01", "filer-02", "filer-03"], flush=True)["targets"]
    took = clock() - started
    assert took < 700  # the three flushes ran side by side, then the three suspends
    assert all(r["elapsed"] <= took + 0.01 for r in rows) and max(r["elapsed"] for r in rows) >= 600, (took, rows)
