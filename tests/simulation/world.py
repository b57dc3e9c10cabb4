# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One schedule: the service's knobs, the runs (controllers, start times, parameters), the faults, the process
table, and the handles a driver gets (RunHandle for a playbook, ProcessHandle for a module process).

Everything is drawn from the schedule's seed, in a fixed order. The harness
knows nothing of any version's protocol: a driver (drivers.py) says what a
playbook does, step by step.
"""

from __future__ import annotations

import random
import typing as t
from dataclasses import dataclass, field

from .scheduler import BLOCKED, KILLED, READY, Proc, Scheduler
from .service import Knobs, Service

TARGET_NAMES = ("filer-1", "filer-2", "filer-3")
# A host of the simulation: (host name, boot id, PID namespace) of each place a controller can run.
PLACES = {
    "one": (("ctl-a", "b00ta", "a/1"),),
    "two": (("ctl-a", "b00ta", "a/1"), ("ctl-b", "b00tb", "b/1")),
    # one host name in two PID namespaces of one kernel (two containers of one AWX node): one boot id
    "pidns": (("ctl-a", "b00ta", "a/1"), ("ctl-a", "b00ta", "a/2")),
}


@dataclass
class Params:
    """What the role is run with (the same for every run of a schedule)."""

    hold: int = 7200
    wait_timeout: int = 600
    poll_interval: int = 5
    confirm_timeout: int = 60
    flush: bool = True
    work: t.List[float] = field(default_factory=list)  # one virtual sleep per backend task file


@dataclass
class Fault:
    """One fault injected into a run: at the ``yield_no``-th yield of the process running its ``step``-th
    module step. kill_playbook: the playbook dies (its module too, unless detached_workers), and if the step
    ends first, the playbook dies right after it; kill_module: that module process dies (the playbook sees a
    failure with no result); stop: that process is stopped (SIGSTOP) for ``pause`` seconds."""

    kind: str
    step: int
    yield_no: int
    pause: float = 0.0
    fired: bool = False

    def __str__(self) -> str:
        pause = " for %d s" % self.pause if self.kind == "stop" else ""
        return "%s at step %d, yield %d%s" % (self.kind, self.step, self.yield_no, pause)


@dataclass
class RunInfo:
    """One run of the role: what the harness knows of it (not what its record says)."""

    label: str
    run_id: str
    host: str
    boot: str
    pidns: str
    start: float
    targets: t.List[str]
    fault: t.Optional[Fault]
    playbook: t.Optional[Proc] = None
    rc: t.Optional[int] = None  # None: killed, or never ended
    work_start: t.Optional[float] = None  # its first accepted suspend
    forfeited: bool = False  # a process of it was stopped past the hold: it gave up its claim
    steps: int = 0
    skew: float = 0.0  # its controller's wall clock less Azure's (within the bound a run accepts)

    def live(self) -> bool:
        return self.playbook is not None and self.playbook.state in (READY, BLOCKED)

    def in_work(self) -> bool:
        """Inside backend work: from its first accepted suspend to its playbook's end (the release is its last
        step), not killed."""
        return self.work_start is not None and self.live()


class ProcessHandle:
    """What a driver's module step gets: the session to the service, the clocks, the sleep, a seeded rng, and
    who it runs as. Build the real ArmClient with session, clock, sleep and rng."""

    def __init__(self, world: "World", proc: Proc, run: RunInfo) -> None:
        self.world = world
        self.proc = proc
        self.run = run
        self.session = world.service  # has request(method, url, headers, timeout, allow_redirects, ...)
        self.clock: t.Callable[[], float] = world.sim.monotonic  # virtual monotonic seconds
        self.sleep: t.Callable[[float], None] = world.sim.sleep  # a yield point
        # virtual epoch seconds on this run's controller (Azure's clock, the answers' Date, plus its skew)
        self.wall_clock: t.Callable[[], float] = lambda: world.sim.wall() + run.skew
        self.rng: t.Callable[[], float] = proc.rng.random
        self.params = world.params
        self.controller = run.host
        self.run_id = run.run_id

    @property
    def pid(self) -> int:
        return self.proc.pid


KILLED_RESULT = {"failed": True, "rc": 137, "msg": "MODULE FAILURE: the module process was killed (SIGKILL)"}


class RunHandle:
    """What a driver's playbook gets: run.step(label, body) runs body(ProcessHandle) as a new module process
    and returns its result (KILLED_RESULT copy when that process was killed); run.work(seconds) is the user's
    task file. A killed playbook never returns from either."""

    def __init__(self, world: "World", info: RunInfo) -> None:
        self.world = world
        self.info = info
        self.run_id = info.run_id
        self.targets = list(info.targets)
        self.params = world.params
        self.controller = info.host

    def step(self, label: str, body: t.Callable[[ProcessHandle], t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
        world, info = self.world, self.info
        index = info.steps
        info.steps += 1
        playbook = world.sim.current
        assert playbook is not None

        def main(proc: Proc) -> t.Dict[str, t.Any]:
            world.service.note(proc.label, "starts (pid %d in %s)" % (proc.pid, proc.pidns))
            result = body(ProcessHandle(world, proc, info))
            world.service.note(proc.label, "ends: %s" % _short(result))
            return result

        child = world.sim.spawn("%s.%s" % (info.label, label), info, index, info.host, info.pidns, main,
                                parent=playbook)
        world.sim.wait_for(child)
        if child.state == KILLED:
            return dict(KILLED_RESULT)
        return child.result if isinstance(child.result, dict) else {"failed": True, "msg": "no result"}

    def work(self, seconds: float) -> t.Dict[str, t.Any]:
        """The user's backend task file: a process that runs for ``seconds``."""
        def body(proc: ProcessHandle) -> t.Dict[str, t.Any]:
            proc.sleep(seconds)
            return {"changed": True}

        return self.step("work", body)


def _short(result: t.Any) -> str:
    if not isinstance(result, dict):
        return repr(result)
    if result.get("failed"):
        return "FAILED %s" % str(result.get("msg"))[:300]
    keys = ("to_suspend", "status", "msg")
    return "ok " + "; ".join("%s=%s" % (k, str(result[k])[:200]) for k in keys if k in result)


# What a resume sent while another operation runs on its target gets; no recording shows it. The emulator's 409
# by default; `python -m tests.simulation --resume-busy-204` also draws the bare 204 (nothing done) that the
# specification documents for a resume ("already resumed or resume is in progress"): with it, a suspend module
# killed after its POST, its target reading Ready while the suspend runs, can leave the target suspended with its
# entry gone (docs/maintenance-protocol.md, what rests on an answer no recording shows).
RESUME_BUSY: t.Tuple[str, ...] = ("409",)


class World:
    """One schedule, built from its seed."""

    def __init__(self, seed: int, driver: t.Any) -> None:
        self.seed = seed
        self.driver = driver
        rng = random.Random(seed)
        self.knobs = Knobs.draw(rng)
        self.names = list(TARGET_NAMES[:rng.randint(1, 3)])
        self.topology = rng.choice(("one", "one", "two", "pidns"))
        self.detached = rng.random() < 0.5  # ansible-core >= 2.19: a killed playbook's worker lives on
        hold = rng.choice((120, 600, 3600))
        self.params = Params(
            hold=hold, wait_timeout=rng.choice((120, 600, 3600)),
            # slow operations are polled as a user would poll them (a poll costs a request, time is free)
            poll_interval=rng.choice((1, 2, 5, 10)) if not self.knobs.slow else rng.choice((10, 20, 30)),
            confirm_timeout=rng.choice((10, 30, 60)), flush=rng.random() < 0.8,
            work=[round(rng.uniform(1.0, hold / 2.0), 1) for _index in range(rng.randint(0, 2))])
        self.runs: t.List[RunInfo] = []
        places = PLACES[self.topology]
        start = 0.0
        for index in range(rng.choice((2, 2, 3))):
            host, boot, pidns = places[rng.randrange(len(places))]
            targets = list(self.names)
            if rng.random() >= 0.7:  # a subset (drawn only then: the draws of a seed stay as they were)
                targets = rng.sample(self.names, rng.randint(1, len(self.names)))
            fault = None
            if rng.random() < 0.6:
                kind = rng.choice(("kill_playbook", "kill_playbook", "kill_module", "kill_module", "stop"))
                steps = 2 + 3 * len(targets) + 2 * len(self.params.work)
                fault = Fault(kind, rng.randrange(steps), rng.randint(1, 12),
                              pause=float(hold + rng.choice((60, 600, 3000))) if kind == "stop" else 0.0)
            self.runs.append(RunInfo("ABC"[index], "run%d%s" % (seed % 10000, "abc"[index]), host, boot, pidns,
                                     start, targets, fault))
            start += rng.choice((0.0, 1.0, 5.0, 30.0, 300.0, 1500.0, 5000.0))
        # controllers whose clocks differ from Azure's (and so from each other) by up to 55 s each way: drawn
        # from a generator of its own, so that the schedules drawn above stay as they were
        skews = random.Random(seed * 7919 + 1)
        for run in self.runs:
            run.skew = skews.choice((0.0, 0.0, skews.uniform(-55.0, 55.0)))
        # what a resume sent while another operation runs on its target gets (RESUME_BUSY); a generator of its own
        self.knobs.resume_busy = random.Random(seed * 104729 + 3).choice(RESUME_BUSY)
        self.sim = Scheduler(rng.getrandbits(64))
        self.service = Service.make(self.sim, self.knobs, self.names, random.Random(rng.getrandbits(64)))
        self.sim.on_yield = self._on_yield
        self.sim.on_finish = self._on_finish

    def describe(self) -> str:
        lines = ["seed %d: %d targets, %s controllers, detached_workers %s, %s" % (
            self.seed, len(self.names), self.topology, self.detached, self.params)]
        lines.append("knobs: %s" % self.knobs)
        for run in self.runs:
            lines.append("run %s (%s) on %s pidns %s at %.0f s, clock %+.0f s, targets %s, fault: %s" % (
                run.label, run.run_id, run.host, run.pidns, run.start, run.skew, run.targets, run.fault or "none"))
        return "\n".join(lines)

    # The process table (what /proc shows the calling process) ------------------------------------
    def current(self) -> Proc:
        proc = self.sim.current
        if proc is None:
            raise RuntimeError("no simulated process runs")
        return proc

    def proc_stat(self, pid: int) -> t.Optional[t.Tuple[int, int]]:
        """(parent pid, start ticks) of a live process of the caller's PID namespace; None when there is none."""
        me = self.current()
        for proc in self.sim.live:
            if proc.pid == pid and proc.pidns == me.pidns:
                return (proc.parent.pid if proc.parent is not None else 1), proc.pstart
        return None

    def playbook_identity(self) -> t.Tuple[int, int]:
        """(pid, start ticks) of the playbook the calling module process runs under."""
        me = self.current()
        top = me.parent if me.parent is not None else me
        return top.pid, top.pstart

    def boot_id(self) -> str:
        me = self.current()
        return next(boot for _h, boot, ns in PLACES[self.topology] if ns == me.pidns)

    # Faults ---------------------------------------------------------------------------------------
    def _on_yield(self, proc: Proc) -> None:
        run: RunInfo = proc.run
        fault = run.fault
        if fault is None or fault.fired or proc.step != fault.step or proc.yields != fault.yield_no:
            return
        fault.fired = True
        self._fire(fault, proc)

    def _on_finish(self, proc: Proc) -> None:
        run: t.Optional[RunInfo] = proc.run
        if run is None:
            return
        if proc is run.playbook:
            self.service.note(proc.label, "playbook ends, rc %s" % run.rc)
            return
        fault = run.fault
        if fault is not None and not fault.fired and fault.kind == "kill_playbook" and proc.step == fault.step:
            fault.fired = True
            self._fire(fault, proc)

    def _fire(self, fault: Fault, proc: Proc) -> None:
        run: RunInfo = proc.run
        self.service.note(proc.label, "FAULT %s" % fault)
        if fault.kind == "stop":
            proc.wake += fault.pause
            run.forfeited = True
            return
        if fault.kind == "kill_module":
            self.sim.kill(proc)
            return
        if run.playbook is not None:
            self.sim.kill(run.playbook)
        if proc.alive and not self.detached:
            self.sim.kill(proc)
        elif proc.alive:
            proc.orphan = True
            self.service.note(proc.label, "orphaned: its worker lives on (detached_workers)")

    # The schedule -------------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn each run's playbook at its start time."""
        for run in self.runs:
            handle = RunHandle(self, run)

            def playbook(proc: Proc, handle: RunHandle = handle, run: RunInfo = run) -> int:
                self.service.note(proc.label, "playbook starts (pid %d in %s on %s)" % (proc.pid, proc.pidns, run.host))
                run.rc = self.driver.playbook(handle)
                return run.rc

            run.playbook = self.sim.spawn("%s.playbook" % run.label, run, None, run.host, run.pidns, playbook,
                                          delay=run.start)
