# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runner: python -m tests.simulation --schedules N --seed S --tree PATH --driver NAME [--trace].

Schedule i of a run has seed S + i, so ``--seed S+i --schedules 1 --trace`` replays it exactly and prints
its trace. --tree is a directory holding ansible_collections/azure_hpc/cache (put first on sys.path before
anything of the collection is imported); without it, this checkout is used (through a symlink tree).
--driver is a name of drivers.DRIVERS, or module:Class of a driver importable once --tree is on sys.path.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import importlib
import os
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass, field

QUIET_SECONDS = 4000.0  # after every process ended: every operation ends, every lag passes


@dataclass
class Outcome:
    """What one schedule came to."""

    seed: int
    violations: t.List[t.Any]
    trace: t.List[t.Any]
    description: str
    truncated: t.Optional[str] = None
    stuck: t.List[str] = field(default_factory=list)
    requests: int = 0
    rcs: t.Dict[str, t.Optional[int]] = field(default_factory=dict)
    world: t.Any = None  # kept for a schedule with violations only

    def trace_text(self) -> str:
        return "\n".join(str(event) for event in self.trace)


def use_tree(tree: t.Optional[str]) -> str:
    """Put the tree holding ansible_collections/azure_hpc/cache first on sys.path; default: this checkout."""
    if tree is None:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        digest = hashlib.sha256(root.encode("utf-8")).hexdigest()[:12]  # one tree per checkout
        tree = os.path.join(tempfile.gettempdir(), "azure-hpc-cache-sim-%d-%s" % (os.getuid(), digest))
        link = os.path.join(tree, "ansible_collections", "azure_hpc", "cache")
        if os.path.realpath(link) != root:
            os.makedirs(os.path.dirname(link), exist_ok=True)
            try:
                os.symlink(root, link)
            except FileExistsError:  # another worker made it at the same moment
                pass
    tree = os.path.abspath(tree)
    if not os.path.isdir(os.path.join(tree, "ansible_collections", "azure_hpc", "cache", "plugins")):
        raise SystemExit("--tree %s has no ansible_collections/azure_hpc/cache/plugins" % tree)
    loaded = next((m for name, m in sorted(sys.modules.items())
                   if name.startswith("ansible_collections.azure_hpc.cache.plugins.module_utils.")
                   and getattr(m, "__file__", None)), None)
    if loaded is not None and not os.path.realpath(str(loaded.__file__)).startswith(
            os.path.realpath(os.path.join(tree, "ansible_collections", "azure_hpc", "cache"))):
        sys.stderr.write("warning: the collection is already imported from %s, not from %s\n"
                         % (loaded.__file__, tree))
    if tree in sys.path:
        sys.path.remove(tree)
    sys.path.insert(0, tree)
    return tree


def make_driver(name: str) -> t.Any:
    from .drivers import DRIVERS  # pylint: disable=import-outside-toplevel

    if name in DRIVERS:
        return DRIVERS[name]()
    module, sep, cls = name.partition(":")
    if not sep:
        raise SystemExit("--driver %s: not one of %s, nor module:Class" % (name, ", ".join(sorted(DRIVERS))))
    return getattr(importlib.import_module(module), cls)()


def run_schedule(seed: int, driver: t.Any) -> Outcome:
    """Build the schedule of this seed, run it to its end, judge it."""
    from .invariants import Monitor  # pylint: disable=import-outside-toplevel
    from .world import World  # pylint: disable=import-outside-toplevel

    world = World(seed, driver)
    monitor = Monitor(world)
    world.service.listener = monitor
    driver.install(world)
    try:
        world.start()
        try:
            world.sim.run()
        finally:
            stuck = world.sim.shutdown()
    finally:
        driver.uninstall(world)
    outcome = Outcome(seed, monitor.violations, world.service.trace, world.describe(),
                      truncated=world.sim.truncated, stuck=stuck, requests=world.service.requests,
                      rcs={r.label: r.rc for r in world.runs})
    if world.sim.truncated is None:
        world.sim.advance(QUIET_SECONDS)
        world.service.settle()
        world.service.note("harness", "quiet period over; tags: %s" % sorted(world.service.tags.items()))
        monitor.final(world.service)
    if outcome.violations:
        outcome.world = world
    return outcome


def run_many(first: int, count: int, driver: t.Any,
             progress: t.Optional[t.Callable[[int], None]] = None) -> t.List[Outcome]:
    outcomes = []
    for index in range(count):
        outcomes.append(run_schedule(first + index, driver))
        if progress is not None:
            progress(index)
    return outcomes


def report(outcomes: t.Sequence[Outcome], seconds: float) -> str:
    from .invariants import INVARIANTS  # pylint: disable=import-outside-toplevel

    by: t.Dict[str, t.List[int]] = collections.defaultdict(list)
    failing: t.List[int] = []
    for outcome in outcomes:
        for letter in sorted({v.invariant for v in outcome.violations}):
            by[letter].append(outcome.seed)
        if outcome.violations:
            failing.append(outcome.seed)
    truncated = [o.seed for o in outcomes if o.truncated]
    stuck = [o.seed for o in outcomes if o.stuck]
    lines = ["schedules run: %d in %.1f s (%d requests)" % (len(outcomes), seconds, sum(o.requests for o in outcomes))]
    for letter, text in INVARIANTS.items():
        seeds = ": " + " ".join(map(str, by[letter][:10])) if by[letter] else ""
        lines.append("  (%s) %-75s %d schedules%s" % (letter, text, len(by[letter]), seeds))
    lines.append("failing seeds (%d): %s" % (len(failing), " ".join(map(str, failing[:20])) or "none"))
    if truncated:
        lines.append("truncated schedules (a bound was hit; not judged): %s" % " ".join(map(str, truncated[:20])))
    if stuck:
        lines.append("schedules whose threads did not exit: %s" % " ".join(map(str, stuck[:20])))
    return "\n".join(lines)


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tree", default=None, help="a directory holding ansible_collections/azure_hpc/cache")
    parser.add_argument("--driver", default=None, help="default: the newest driver")
    parser.add_argument("--trace", action="store_true", help="print each schedule's description and trace")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--resume-busy-204", action="store_true",
                        help="a resume sent while another operation runs may get a bare 204, as well as a 409")
    args = parser.parse_args(argv)
    use_tree(args.tree)
    if args.resume_busy_204:
        from . import world  # pylint: disable=import-outside-toplevel

        world.RESUME_BUSY = ("409", "204")
    from .drivers import NEWEST  # pylint: disable=import-outside-toplevel

    driver = make_driver(args.driver or NEWEST)
    started = time.perf_counter()
    if args.profile:
        import cProfile  # pylint: disable=import-outside-toplevel
        import pstats  # pylint: disable=import-outside-toplevel

        profiler = cProfile.Profile(time.process_time)
        outcomes = profiler.runcall(run_many, args.seed, args.schedules, driver)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    else:
        outcomes = run_many(args.seed, args.schedules, driver)
    seconds = time.perf_counter() - started
    if args.trace:
        for outcome in outcomes:
            print(outcome.description)
            print(outcome.trace_text())
            for violation in outcome.violations:
                print("VIOLATION seed %d %s" % (outcome.seed, violation))
            if outcome.truncated:
                print("TRUNCATED: %s" % outcome.truncated)
            print()
    print("driver %s, tree %s" % (getattr(driver, "name", args.driver), sys.path[0]))
    print(report(outcomes, seconds))
    return 1 if any(o.violations for o in outcomes) else 0
