# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The invariants of backend maintenance, judged on the service's ground truth, not on any version's record.

(a) no storage target ends truly suspended unless the record names it (driver.record_names of the tags);
(b) no run that ended rc 0 left a target it suspended truly suspended;
(c) no run resumed a target while another live run held the cache with that target suspended by that run
    (judged at each accepted resume POST: the other run is inside backend work, alive, and the target's
    suspension is its own);
(d) never two runs inside backend work (from their first accepted suspend to their playbook's end, the
    release being its last step) on the cache at once.

(a) and (b) are judged once every live process ended and a quiet period let every operation end. A run one
of whose processes was stopped (SIGSTOP) past its hold gave up its claim (nothing can fence a process that
wakes after its bound): it is neither victim nor culprit in (c) and (d).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from .scheduler import Proc
from .service import Listener, Operation, Service, Target

if t.TYPE_CHECKING:
    from .world import RunInfo, World

INVARIANTS = {
    "a": "a target ends truly suspended with no record entry naming it",
    "b": "a run that ended rc 0 left a target it suspended truly suspended",
    "c": "a run resumed a target suspended by another live run that held the cache",
    "d": "two runs inside backend work on the cache at once",
}


@dataclass
class Violation:
    invariant: str
    time: float
    text: str

    def __str__(self) -> str:
        return "(%s) at %.2f s: %s [%s]" % (self.invariant, self.time, self.text, INVARIANTS[self.invariant])


class Monitor(Listener):
    """Watches the service as it answers (c, d) and judges the end state (a, b)."""

    def __init__(self, world: "World") -> None:
        self.world = world
        self.violations: t.List[Violation] = []

    def _add(self, invariant: str, text: str) -> None:
        violation = Violation(invariant, self.world.sim.now, text)
        self.violations.append(violation)
        self.world.service.note("INVARIANT", str(violation))

    def accepted(self, proc: t.Optional[Proc], action: str, target: Target) -> None:
        run: t.Optional["RunInfo"] = proc.run if proc is not None else None
        if run is None or run.forfeited:
            return
        if action == "suspend":
            if run.work_start is None:
                run.work_start = self.world.sim.now
                for other in self.world.runs:
                    if other is not run and not other.forfeited and other.in_work():
                        self._add("d", "run %s (%s) sent its first suspend (%s) while run %s is inside backend work "
                                       "since %.2f s" % (run.label, proc.label, target.name, other.label,
                                                         other.work_start or 0.0))
        elif action == "resume" and target.suspended and target.by is not None and target.by is not run:
            owner: "RunInfo" = target.by
            if owner.in_work() and not owner.forfeited:
                self._add("c", "run %s (%s) resumed %s, suspended by run %s, which is alive inside backend work"
                          % (run.label, proc.label, target.name, owner.label))

    def ended(self, op: Operation, target: Target) -> None:
        """Nothing is judged as an operation ends."""

    def final(self, service: Service) -> None:
        """(a) and (b), on the state left once every process ended and the quiet period passed."""
        named = {n.casefold() for n in self.world.driver.record_names(dict(service.tags))}
        for target in service.targets.values():
            if not target.suspended:
                continue
            owner: t.Optional["RunInfo"] = target.by
            if target.name.casefold() not in named:
                self._add("a", "%s is truly suspended (by run %s) and no record entry names it; tags: %s"
                          % (target.name, owner.label if owner else "?", sorted(service.tags)))
            if owner is not None and owner.rc == 0:
                self._add("b", "run %s ended rc 0 and left %s, which it suspended, truly suspended"
                          % (owner.label, target.name))
