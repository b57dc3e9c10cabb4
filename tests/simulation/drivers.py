# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drivers: what one run of the role does, module step by module step, with the REAL collection code.

A driver is an object with:

  name: str
  install(world) -> None        before a schedule's runs start (e.g. patch how a module learns its process)
  uninstall(world) -> None      after the schedule (undo install)
  playbook(run: RunHandle) -> int
      runs in the playbook's simulated process; calls run.step(label, body) once per module task (each is a
      new process: body(proc: ProcessHandle) -> the module's result dict, with "failed": True on failure)
      and run.work(seconds) for a backend task file; returns the playbook's rc (0, or 2 when a task failed).
      A killed playbook simply never returns.
  record_names(tags: dict) -> list of str
      the storage target names the record kept in these cache tags names (invariant a).

ProcessHandle gives session (the in-memory service, a requests-like session), clock (virtual monotonic),
sleep (a yield point), wall_clock (virtual epoch seconds), rng (a seeded random() for the client's jitter),
controller (host name), run_id, params (hold, wait_timeout, poll_interval, confirm_timeout, flush, work).

The collection is imported lazily (in install), from whichever tree the runner put first on sys.path.
"""

from __future__ import annotations

import importlib
import typing as t

from .service import ARM, CACHE, RESOURCE_GROUP, SUB

if t.TYPE_CHECKING:
    from .world import ProcessHandle, RunHandle, World

PKG = "ansible_collections.azure_hpc.cache.plugins.module_utils"
API_VERSION = "2026-01-01"
LOOP_VAR = "cache_maintenance_storage_target"


class Tokens:
    """A token provider that always has a token."""

    known_tokens = ()

    def token(self, force_refresh: bool = False, rejected: t.Optional[str] = None) -> str:
        return "sim-token"


class Driver:
    """The interface; see the module's docstring."""

    name = "driver"

    def install(self, world: "World") -> None:
        """Called before a schedule's runs start."""

    def uninstall(self, world: "World") -> None:
        """Called after the schedule."""

    def playbook(self, run: "RunHandle") -> int:
        raise NotImplementedError

    def record_names(self, tags: t.Mapping[str, str]) -> t.List[str]:
        """By default the record's entries are tags hpc-maintenance-target-<name> (any case)."""
        prefix = "hpc-maintenance-target-"
        return [k[len(prefix):] for k in tags if k.casefold().startswith(prefix)]


class Role050(Driver):
    """The role as of 0.5.0 (roles/cache_maintenance/tasks/backend.yml and backend_step.yml at 73ea42a), with
    the record module's main() (states held, renewed, released) and the storage-target module's main()."""

    name = "role050"
    # the module_utils files of 0.5.0, by the names this driver uses
    modules = {name: name for name in ("_client", "_cloud", "_errors", "_poller", "_record", "_resource", "_target")}

    def __init__(self) -> None:
        self.m: t.Dict[str, t.Any] = {}
        self._saved: t.Dict[str, t.Any] = {}

    def install(self, world: "World") -> None:
        if not self.m:
            for name, module in self.modules.items():
                self.m[name] = importlib.import_module("%s.%s" % (PKG, module))
            cloud = self.m["_cloud"].Cloud
            self.cloud = cloud("Sim", ARM, "https://login.example.test/", ARM, custom=True)
        record = self.m["_record"]
        # Process identity and liveness come from the simulator's process table (as /proc would show it to the
        # calling process, in its PID namespace).
        self._saved = {n: getattr(record, n) for n in ("_proc_stat", "playbook_process", "boot_id")}
        record._proc_stat = world.proc_stat
        record.playbook_process = lambda start=None: world.playbook_identity()
        record.boot_id = world.boot_id

    def uninstall(self, world: "World") -> None:
        for name, value in self._saved.items():
            setattr(self.m["_record"], name, value)
        self._saved = {}

    # Module processes ---------------------------------------------------------------------------
    def client(self, proc: "ProcessHandle") -> t.Any:
        c = self.m["_client"]
        return c.ArmClient(self.cloud, Tokens(), session=proc.session, policy=c.RetryPolicy(), sleep=proc.sleep,
                           clock=proc.clock, rng=proc.rng)

    def ops(self, proc: "ProcessHandle") -> t.Any:
        return self.m["_resource"].CacheOperations(self.client(proc), API_VERSION)

    def cache_ref(self) -> t.Any:
        return self.m["_resource"].CacheRef(SUB, RESOURCE_GROUP, CACHE)

    def fail(self, exc: BaseException, partial: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
        """What HpcCacheModule.run reports for an exception: fail_json with what the task had learnt."""
        msg, learnt = self.m["_errors"].failure_of(exc)
        return dict(dict(partial, **learnt), failed=True, msg=msg)

    def record_identity(self, proc: "ProcessHandle") -> t.Dict[str, t.Any]:
        """Extra MaintenanceRecord arguments for who the module is: none in 0.5.0 (it read /proc, patched)."""
        return {}

    def record_module(self, proc: "ProcessHandle", state: str, targets: t.Sequence[str] = (),
                      suspend_results: t.Sequence[t.Any] = ()) -> t.Dict[str, t.Any]:
        """azure_hpc_cache_maintenance_record's main() body, with the simulator's clocks."""
        r = self.m["_record"]
        p = proc.params
        try:
            record = r.MaintenanceRecord(
                self.ops(proc), self.cache_ref(), run=proc.run_id, controller=proc.controller, hold_seconds=p.hold,
                take_over=False, local_record=None, wait_timeout=p.wait_timeout, poll_interval=p.poll_interval,
                confirm_timeout=p.confirm_timeout, check_mode=False, wall_clock=proc.wall_clock,
                **self.record_identity(proc))
            if state == "held":
                record.gate(["Healthy"])
                return dict(record.hold(record.resolve(list(targets))))
            if state == "suspended":  # 0.5.1's one module run that flushes and suspends
                return dict(record.suspend(list(targets) or record.recorded(), p.flush))
            if state == "renewed":
                return dict(record.renew())
            return dict(record.release(r.suspended_by(list(suspend_results)), False))
        except self.m["_errors"].HpcCacheError as exc:
            return self.fail(exc, {})

    def target_module(self, proc: "ProcessHandle", name: str, state: str, flush: bool) -> t.Dict[str, t.Any]:
        """azure_hpc_cache_storage_target's main() body (wait true, trust_operation false)."""
        p = proc.params
        ops = self.ops(proc)
        deadline = self.m["_poller"].Deadline.after(p.wait_timeout, clock=ops.client.clock, sleep=ops.client.sleep)
        task = self.m["_target"].TargetTask(
            ops, self.m["_resource"].TargetRef(self.cache_ref(), name), state=state, flush=flush, dns_refresh=False,
            deadline=deadline, **self.target_options(proc))
        try:
            return dict(task.run())
        except self.m["_errors"].HpcCacheError as exc:
            return self.fail(exc, dict(task.result))

    def target_options(self, proc: "ProcessHandle") -> t.Dict[str, t.Any]:
        """How the storage-target module's task runs, as 0.5.0's TargetTask takes it: one keyword each."""
        p = proc.params
        return {"wait": True, "poll_interval": p.poll_interval, "check_mode": False,
                "confirm_timeout": p.confirm_timeout, "trust_operation": False}

    # The playbook -------------------------------------------------------------------------------
    def loop(self, run: "RunHandle", label: str, names: t.Sequence[str], state: str,
             flush: bool) -> t.List[t.Dict[str, t.Any]]:
        """A task looping over the targets: every item runs whatever the one before did; each result names
        its item by the loop variable."""
        results = []
        for name in names:
            result = run.step("%s:%s" % (label, name),
                              lambda proc, name=name: self.target_module(proc, name, state, flush))
            result.update({LOOP_VAR: name, "ansible_loop_var": LOOP_VAR})
            results.append(result)
        return results

    def playbook(self, run: "RunHandle") -> int:
        """backend.yml: held; block: flush, renewed, suspend, per task file (renewed, work); always: released."""
        hold = run.step("held", lambda proc: self.record_module(proc, "held", targets=run.targets))
        if hold.get("failed"):
            return 2  # outside the block: the host fails, no always section
        to_suspend = list(hold.get("to_suspend") or [])
        suspend_results: t.List[t.Dict[str, t.Any]] = []  # __cache_maintenance_suspend.results | default([])
        failed = False
        if run.params.flush and to_suspend:
            failed = any(r.get("failed") for r in self.loop(run, "flush", to_suspend, "flushed", True))
            if not failed:
                failed = bool(run.step("renewed", lambda proc: self.record_module(proc, "renewed")).get("failed"))
        if not failed:
            suspend_results = self.loop(run, "suspend", to_suspend, "suspended", False)
            failed = any(r.get("failed") for r in suspend_results)
        if not failed:
            for seconds in run.params.work:
                if run.step("renewed", lambda proc: self.record_module(proc, "renewed")).get("failed"):
                    failed = True
                    break
                if run.work(seconds).get("failed"):
                    failed = True
                    break
        released = self.released(run, suspend_results)
        return 2 if failed or released.get("failed") else 0

    def released(self, run: "RunHandle", suspend_results: t.List[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
        return run.step("released", lambda proc: self.record_module(proc, "released", suspend_results=suspend_results))


class Role051(Role050):
    """The role as of 0.5.1 (roles/cache_maintenance/tasks/backend.yml): held; block: suspended (one module run
    that flushes and suspends every recorded target, each request behind the fence), per task file (renewed,
    work); always: released. Process identity is injected (_maintenance/identity.py's Identity): host, boot, PID
    namespace and the playbook process, with liveness from the simulator's process table."""

    name = "role051"
    modules = {"_client": "_transport.client", "_cloud": "_transport.cloud", "_errors": "_base.errors",
               "_poller": "_base.deadline", "_record": "_maintenance.protocol", "_identity": "_maintenance.identity",
               "_release": "_maintenance.release", "_options": "_actions.options", "_resource": "_arm.resource",
               "_target": "_actions.target_actions"}

    def install(self, world: "World") -> None:
        if not self.m:
            for name, module in self.modules.items():
                self.m[name] = importlib.import_module("%s.%s" % (PKG, module))
            cloud = self.m["_cloud"].Cloud
            self.cloud = cloud("Sim", ARM, "https://login.example.test/", ARM, custom=True)
        self.world = world

    def uninstall(self, world: "World") -> None:
        self.world = None

    def target_options(self, proc: "ProcessHandle") -> t.Dict[str, t.Any]:
        """The same, as one ActionOptions (the tree's TargetTask takes options=)."""
        options = importlib.import_module("%s._actions.options" % PKG).ActionOptions
        return {"options": options(**super().target_options(proc))}

    def record_identity(self, proc: "ProcessHandle") -> t.Dict[str, t.Any]:
        """Who the module is (Identity), with liveness from the simulator's process table."""
        world = self.world
        pid, pstart = world.playbook_identity()

        def alive(pid: int, pstart: int) -> bool:
            stat = world.proc_stat(pid)
            return stat is not None and stat[1] == pstart

        return {"identity": self.m["_identity"].Identity(proc.controller, world.boot_id(),
                                                         proc.proc.pidns.replace("/", ""), pid, pstart, alive=alive)}

    def record_module(self, proc: "ProcessHandle", state: str, targets: t.Sequence[str] = (),
                      suspend_results: t.Sequence[t.Any] = ()) -> t.Dict[str, t.Any]:
        """azure_hpc_cache_maintenance_record's main() body, with the simulator's clocks: the identity, the
        client's sleep watching the playbook, then the one Deadline, and the ActionOptions."""
        p = proc.params
        try:
            ops = self.ops(proc)
            identity = self.record_identity(proc)["identity"]
            ops.client.sleep = identity.watching(ops.client.sleep)
            deadline = self.m["_poller"].Deadline.after(p.wait_timeout, clock=ops.client.clock, sleep=ops.client.sleep)
            options = self.m["_options"].ActionOptions(wait_timeout=p.wait_timeout, poll_interval=p.poll_interval,
                                                       confirm_timeout=p.confirm_timeout, check_mode=False)
            record = self.m["_record"].MaintenanceRecord(
                ops, self.cache_ref(), run=proc.run_id, identity=identity, hold_seconds=p.hold, take_over=False,
                local_record=None, options=options, deadline=deadline, wall_clock=proc.wall_clock)
            if state == "held":
                record.gate(["Healthy"])
                return dict(record.hold(record.resolve(list(targets))))
            if state == "suspended":
                return dict(record.suspend(list(targets) or record.recorded(), p.flush))
            if state == "renewed":
                return dict(record.renew())
            return dict(record.release(self.m["_release"].suspended_by(list(suspend_results)), False,
                                       **self.release_extra(suspend_results)))
        except self.m["_errors"].HpcCacheError as exc:
            return self.fail(exc, {})

    def release_extra(self, suspend_results: t.Sequence[t.Any]) -> t.Dict[str, t.Any]:
        """More arguments of the release, as the module's main() passes them: none in 0.5.1."""
        return {}

    def playbook(self, run: "RunHandle") -> int:
        """backend.yml: held; block: suspended, per task file (renewed, work); always: released."""
        hold = run.step("held", lambda proc: self.record_module(proc, "held", targets=run.targets))
        if hold.get("failed"):
            return 2  # outside the block: the host fails, no always section
        to_suspend = list(hold.get("to_suspend") or [])
        suspend: t.Dict[str, t.Any] = {}
        failed = False
        if to_suspend:
            suspend = run.step("suspended", lambda proc: self.record_module(proc, "suspended", targets=to_suspend))
            failed = bool(suspend.get("failed"))
        if not failed:
            self.between(run)
            for index, seconds in enumerate(self.task_files(run)):
                if self.renews(run, index, suspend) and \
                        run.step("renewed", lambda proc: self.record_module(proc, "renewed")).get("failed"):
                    failed = True
                    break
                if run.work(seconds).get("failed"):
                    failed = True
                    break
        released = run.step("released", lambda proc: self.record_module(
            proc, "released", suspend_results=list(suspend.get("targets") or [])))
        return 2 if failed or released.get("failed") else 0

    def between(self, run: "RunHandle") -> None:
        """What the playbook does between the suspend step and the first task file: nothing."""

    def task_files(self, run: "RunHandle") -> t.List[float]:
        """The seconds each backend task file works."""
        return list(run.params.work)

    def renews(self, run: "RunHandle", index: int, suspend: t.Mapping[str, t.Any]) -> bool:
        """The hold is renewed before every task file."""
        return True


class Role060(Role051):
    """The role as of 0.6.0: held; block: suspended (every target's flush, then every target's suspend, each round
    sent before it is followed), per task file (renewed, but not before the first while the suspend step's
    hold_until is within two minutes of a full hold: renew_before), work; always: released (every resume sent
    before any is followed, an operation the suspend step left running followed first)."""

    name = "role060"

    def release_extra(self, suspend_results: t.Sequence[t.Any]) -> t.Dict[str, t.Any]:
        return {"running": self.m["_release"].running_by(list(suspend_results))}

    def renews(self, run: "RunHandle", index: int, suspend: t.Mapping[str, t.Any]) -> bool:
        return renew_before(run, index, suspend)


def renew_before(run: "RunHandle", index: int, suspend: t.Mapping[str, t.Any]) -> bool:
    """backend_step.yml's `when`: renew before every task file but the first; before the first too unless the
    suspend step's hold_until, on the controller's clock, is within two minutes of a full hold."""
    until = suspend.get("hold_until")
    if index > 0 or not isinstance(until, (int, float)):
        return True
    return int(until) - int(run.world.sim.wall() + run.info.skew) < int(run.params.hold) - 120


class Lockstep060(Role060):
    """Role060 in a play of many caches under the linear strategy: no host's first task file starts before every
    host's suspend step is over, so the hold waits (hold/2 here, nothing renewing it) between this run's suspend
    step and its first task file (0.9 x hold - 120 s, at least 1 s: inside what the role promises, a task file
    up to the hold less two minutes). The first renewal must not be skipped then (renew_before: hold_until is
    judged when the task file starts)."""

    name = "role060-lockstep"

    def between(self, run: "RunHandle") -> None:
        run.work(run.params.hold / 2.0)  # the other hosts' suspend steps: the playbook idles, no module runs

    def task_files(self, run: "RunHandle") -> t.List[float]:
        return [max(1.0, 0.9 * run.params.hold - 120.0)]


class Forgetful(Role051):
    """A planted bug, for the harness's own test: release sends no resume (it is told nothing was suspended)
    but drops the record and reports success."""

    name = "forgetful"

    def playbook(self, run: "RunHandle") -> int:
        hold = run.step("held", lambda proc: self.record_module(proc, "held", targets=run.targets))
        if hold.get("failed"):
            return 2
        if hold.get("to_suspend"):
            names = list(hold["to_suspend"])
            run.step("suspended", lambda proc: self.record_module(proc, "suspended", targets=names))

        def body(proc: "ProcessHandle") -> t.Dict[str, t.Any]:
            ops = self.ops(proc)
            try:
                tags = {k: v for k, v in (ops.get(self.cache_ref()).get("tags") or {}).items()
                        if k.casefold().startswith("hpc-maintenance-")}
                if tags:
                    ops.patch_tags(self.cache_ref(), "Delete", tags)
            except self.m["_errors"].HpcCacheError as exc:
                return self.fail(exc, {})
            return {"changed": True}

        run.step("released", body)
        return 0


DRIVERS: t.Dict[str, t.Callable[[], Driver]] = {
    "role050": Role050, "role051": Role051, "role060": Role060, "role060-lockstep": Lockstep060,
    "forgetful": Forgetful}
NEWEST = "role060"  # the default driver: the newest protocol a driver exists for
