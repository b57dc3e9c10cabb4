# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A virtual clock and a seeded scheduler of simulated processes, each a Python thread.

Only one simulated process runs at a time. A process gives control back at its
yield points (every service request and every sleep); the scheduler then picks,
with its seeded random generator, one of the processes whose wake time has
come, and moves the virtual clock to the earliest wake time when none has.
Nothing here reads real time or real randomness.

Killing a process is never scheduling its thread again: no cleanup code runs,
as with SIGKILL. At the end of a schedule every parked thread is released with
``Killed`` raised at its yield point (the service is disconnected by then, so
nothing it still tries reaches it) and joined with a bound.

Nothing here imports the collection: the drivers do, from the tree the runner
put first on sys.path.
"""

from __future__ import annotations

import random
import threading
import typing as t

EPOCH = 1_800_000_000.0  # the virtual wall clock at virtual monotonic time 0
JOIN_SECONDS = 5.0  # real seconds a released thread is given to exit at the end of a schedule


class Killed(BaseException):
    """Raised in a parked thread at the end of a schedule so that it exits; never caught by the collection's
    code (it catches Exception, or re-raises BaseException)."""


class Truncated(Exception):
    """The schedule hit its bound of steps or virtual seconds."""


# The states of a simulated process.
READY, BLOCKED, DONE, KILLED = "ready", "blocked", "done", "killed"


class Proc:
    """One simulated OS process: a module invocation, a playbook, or the user's work.

    ``host`` and ``pidns`` say where it runs (a controller, and a PID namespace on it), ``pid`` and
    ``pstart`` (clock ticks since that host's boot) are its identity there; ``run`` is the run it works
    for; ``step`` is the index of the playbook's step it runs (None for the playbook itself).
    """

    def __init__(self, sim: "Scheduler", label: str, run: t.Any, step: t.Optional[int], host: str, pidns: str,
                 pid: int, pstart: int, parent: t.Optional["Proc"], body: t.Callable[["Proc"], t.Any]) -> None:
        self.sim = sim
        self.label = label
        self.run = run
        self.step = step
        self.host = host
        self.pidns = pidns
        self.pid = pid
        self.pstart = pstart
        self.parent = parent
        self.body = body
        self.state = READY
        self.wake = sim.now
        self.yields = 0
        self.die = False
        self.orphan = False
        self.result: t.Any = None
        self.error: t.Optional[BaseException] = None
        self.waiter: t.Optional["Proc"] = None  # the playbook blocked on this module
        self.killed_at: t.Optional[float] = None
        self.ended_at: t.Optional[float] = None
        self.go = threading.Lock()
        self.go.acquire()
        self.thread = threading.Thread(target=self._main, name="sim-%s" % label, daemon=True)
        self.rng = random.Random(sim.rng.getrandbits(64))  # the process's own, for the client's backoff jitter

    def _main(self) -> None:
        self.go.acquire()
        try:
            if self.die:
                raise Killed()
            self.result = self.body(self)
        except Killed:
            return  # released at the end of a schedule: exit without a word, touching nothing
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # a harness or driver bug
            self.error = exc
        self.sim.finished(self)

    @property
    def alive(self) -> bool:
        """Whether the process exists (a stopped process does)."""
        return self.state in (READY, BLOCKED)

    def __repr__(self) -> str:
        return "<Proc %s %s>" % (self.label, self.state)


class Scheduler:
    """Runs simulated processes one at a time on a virtual clock, in an order drawn from the seed."""

    def __init__(self, seed: int, max_steps: int = 50000, max_seconds: float = 40000.0) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.steps = 0
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.procs: t.List[Proc] = []  # every process, in the order made
        self.live: t.List[Proc] = []  # those not ended (ready or blocked), in the order made
        self.current: t.Optional[Proc] = None
        self.idle = threading.Lock()  # released when no process is left to run
        self.idle.acquire()
        self.disconnected = False
        self.truncated: t.Optional[str] = None
        # Hooks of the world (faults, the process table): called in the running process's thread.
        self.on_yield: t.Callable[[Proc], None] = lambda proc: None
        self.on_finish: t.Callable[[Proc], None] = lambda proc: None
        self._pids: t.Dict[str, int] = {}

    # Clocks -------------------------------------------------------------------------------------
    def monotonic(self) -> float:
        """The virtual monotonic clock (the ArmClient's clock)."""
        return self.now

    def wall(self) -> float:
        """The virtual wall clock, seconds since 1970 (MaintenanceRecord's wall_clock)."""
        return EPOCH + self.now

    # Processes ----------------------------------------------------------------------------------
    def next_pid(self, pidns: str) -> int:
        """The next pid of a PID namespace: each starts at a number drawn from the seed, so two namespaces
        hand out overlapping pids."""
        if pidns not in self._pids:
            self._pids[pidns] = 300 + self.rng.randrange(40)
        self._pids[pidns] += 1 + self.rng.randrange(3)
        return self._pids[pidns]

    def spawn(self, label: str, run: t.Any, step: t.Optional[int], host: str, pidns: str,
              body: t.Callable[[Proc], t.Any], parent: t.Optional[Proc] = None, delay: float = 0.0) -> Proc:
        """A new process, runnable ``delay`` virtual seconds from now."""
        pid = self.next_pid(pidns)
        proc = Proc(self, label, run, step, host, pidns, pid, int((self.now + delay) * 100) + 1000, parent, body)
        proc.wake = self.now + delay
        self.procs.append(proc)
        self.live.append(proc)
        proc.thread.start()
        return proc

    def kill(self, proc: Proc) -> None:
        """SIGKILL: the process is never scheduled again; no code of it runs."""
        if proc.alive:
            proc.state = KILLED
            proc.killed_at = self.now
            self.live.remove(proc)
            if proc.waiter is not None and proc.waiter.state == BLOCKED:
                proc.waiter.state = READY  # the playbook sees its module die
                proc.waiter.wake = self.now

    def finished(self, proc: Proc) -> None:
        """Called in the process's thread when its body returned: wake its playbook, hand control on."""
        if proc.state != KILLED:
            proc.state = DONE
            proc.ended_at = self.now
            self.live.remove(proc)
            if proc.waiter is not None and proc.waiter.state == BLOCKED:
                proc.waiter.state = READY
                proc.waiter.wake = self.now
            self.on_finish(proc)
        if proc.error is not None:
            self.truncated = "simulated process %s failed in the harness or driver: %r" % (proc.label, proc.error)
        self._hand_on(proc, park=False)

    # Yield points (called in a process's thread) --------------------------------------------------
    def pause(self, seconds: float) -> None:
        """Give control back; runnable again ``seconds`` virtual seconds from now."""
        proc = self.current
        if proc is None:
            raise RuntimeError("a yield outside a simulated process")
        if self.disconnected or proc.die:
            raise Killed()
        proc.wake = self.now + max(seconds, 0.0)
        proc.yields += 1
        self.on_yield(proc)
        self._hand_on(proc)

    def sleep(self, seconds: float) -> None:
        """The processes' sleep: a yield point that advances their wake time."""
        self.pause(seconds)

    def wait_for(self, child: Proc) -> None:
        """Block the current process (a playbook) until child ends or is killed."""
        proc = self.current
        if proc is None:
            raise RuntimeError("a wait outside a simulated process")
        if child.alive:
            child.waiter = proc
            proc.state = BLOCKED
            self._hand_on(proc)

    def _hand_on(self, proc: Proc, park: bool = True) -> None:
        """The scheduler's step, run by the thread that yields (one thread runs at a time): pick the next
        process; when it is this one, go on without a thread switch; else wake it (or, when none is left,
        the main thread) and park until picked again."""
        chosen = self._pick()
        if chosen is proc and park:
            return
        self.current = chosen
        if chosen is None:
            self.idle.release()
        else:
            chosen.go.release()
        if park:
            proc.go.acquire()
            if proc.die:
                raise Killed()

    def _pick(self) -> t.Optional[Proc]:
        """The next process to run (drawn from the seed among those whose wake time has come), moving the
        clock to the earliest wake time when none has; None when none is left or a bound is hit."""
        if self.truncated is not None:
            return None
        while True:
            runnable = [p for p in self.live if p.state == READY and p.wake <= self.now]
            if runnable:
                break
            waiting = [p.wake for p in self.live if p.state == READY]
            if not waiting:
                return None
            self.now = min(waiting)
            if self.now > self.max_seconds:
                self.truncated = "virtual time passed %d s" % self.max_seconds
                return None
        self.steps += 1
        if self.steps > self.max_steps:
            self.truncated = "more than %d steps" % self.max_steps
            return None
        return runnable[self.rng.randrange(len(runnable))] if len(runnable) > 1 else runnable[0]

    # The loop -----------------------------------------------------------------------------------
    def run(self) -> None:
        """Run until no process is runnable or will be, or a bound is hit (then truncated says which)."""
        chosen = self._pick()
        if chosen is None:
            return
        self.current = chosen
        chosen.go.release()
        self.idle.acquire()
        self.current = None
        for proc in self.procs:
            if proc.error is not None:
                raise RuntimeError("simulated process %s failed in the harness or driver: %r"
                                   % (proc.label, proc.error)) from proc.error

    def advance(self, seconds: float) -> None:
        """Let virtual time pass with nothing running (a quiet period)."""
        self.now += seconds

    def shutdown(self) -> t.List[str]:
        """Release every parked thread with Killed raised in it, the service disconnected; join each with a
        bound. Returns the labels of threads that did not exit."""
        self.disconnected = True
        stuck: t.List[str] = []
        for proc in self.procs:
            if proc.thread.is_alive():
                proc.die = True
                self.current = proc
                proc.go.release()
                proc.thread.join(JOIN_SECONDS)
                if proc.thread.is_alive():
                    stuck.append(proc.label)
        self.current = None
        return stuck
