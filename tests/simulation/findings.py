# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which known 0.5.0 flaw a failing schedule shows, read off its trace (heuristics, for triage only: the
invariants decide what is a violation; this names the likely cause). python -m tests.simulation.findings
--seed S --schedules N --tree PATH prints the failing seeds grouped by finding."""

from __future__ import annotations

import collections
import json
import sys
import typing as t

FINDINGS = {
    "recovery-drops-ready": "recovery dropped an entry of a target that read Ready while truly suspended or busy",
    "hold-expired-mid-work": "a live run's hold expired (a slow suspend outlived it) and another run recovered",
    "pidns-liveness": "a live holder in another PID namespace of the same host was judged dead and recovered",
    "orphan-resend": "an orphaned suspend module (its playbook killed) sent its throttled suspend after recovery",
    "killed-suspend-forgotten": "a killed suspend module's target was forgotten (its entry dropped, no resume)",
    "stale-429-write": "a tags write retried after 429 landed on a record another run had changed meanwhile",
    "failed-delete-stops-resumes": "a failed tags delete in release stopped the remaining resumes",
    "async-write-lands-late": "a tags write answered 202 (not followed) landed after its process had given up, "
                             "over another run's record",
    "resume-409-taken-on-ready": "a release's resume answered 409 (its slow suspend still ran) was judged taken on a "
                                 "Ready read, and its entry dropped",
}


def _run(who: str) -> str:
    return who.split(".", 1)[0]


def _target_of(what: str) -> t.Optional[str]:
    if "/storageTargets/" not in what:
        return None
    return what.split("/storageTargets/", 1)[1].split("/")[0].split(" ")[0]


def _patch(what: str) -> t.Tuple[str, t.Dict[str, str]]:
    try:
        body = json.loads(what.split(" ", 2)[2])
        return body["operation"], body["properties"]["tags"]
    except (IndexError, ValueError, KeyError):
        return "", {}


def classify(outcome: t.Any) -> t.List[str]:
    """The findings a failing schedule's trace shows."""
    world = outcome.world
    runs = {r.label: r for r in world.runs} if world is not None else {}
    trace = outcome.trace
    found: t.List[str] = []
    ended: t.Set[str] = set()  # runs whose playbook ended or was killed, as of each line
    last_get: t.Dict[t.Tuple[str, str], str] = {}
    orphans: t.Set[str] = set()
    throttled: t.Set[t.Tuple[str, str]] = set()
    recovered_at: t.Optional[float] = None
    pending_429: t.Dict[str, t.Tuple[str, int]] = {}  # process -> (patch, index of hold writes seen)
    hold_writes = 0
    killed_suspends: t.Dict[str, str] = {}  # run -> target whose suspend module was killed after its POST
    posted: t.Set[t.Tuple[str, str]] = set()
    suspender: t.Dict[str, str] = {}  # target -> run of its last accepted suspend
    writes: t.Dict[str, str] = {}  # tags write id -> process
    gave_up: t.Set[str] = set()  # processes that ended failed
    for event in trace:
        who, what, answer = event.who, event.what, event.answer
        run = _run(who)
        if what.startswith("ends: FAILED"):
            gave_up.add(who)
        if answer.startswith("202 write "):
            writes[answer.split()[2]] = who
        if who == "service" and what.startswith("tags write ") and writes.get(what.split()[2]) in gave_up:
            found.append("async-write-lands-late")
        if what.startswith("POST") and answer.startswith("202") and what.endswith("/suspend"):
            suspender[_target_of(what) or ""] = run
        if who.endswith(".held") and what.startswith("POST") and what.endswith("/resume"):
            owner_label = suspender.get(_target_of(what) or "")
            owner_run, mine_run = runs.get(owner_label or ""), runs.get(run)
            if owner_run is not None and mine_run is not None and owner_run.label != run \
                    and owner_run.label not in ended:
                found.append("pidns-liveness" if owner_run.pidns != mine_run.pidns and owner_run.host == mine_run.host
                             else "hold-expired-mid-work")
        if what.startswith("playbook ends") or "FAULT kill_playbook" in what:
            ended.add(run)
        if what.startswith("orphaned"):
            orphans.add(who)
        if "FAULT kill_module" in what and ".suspend:" in who and (who, who.split(":", 1)[1]) in posted:
            killed_suspends[run] = who.split(":", 1)[1]
        target = _target_of(what)
        if what.startswith("GET") and target and what.endswith(target):
            last_get[(who, target)] = answer
        if what.startswith("POST") and target and what.endswith("/suspend"):
            if answer.startswith("429"):
                throttled.add((who, target))
            elif answer.startswith("202"):
                posted.add((who, target))
                if who in orphans and (who, target) in throttled and recovered_at is not None:
                    found.append("orphan-resend")
        if what.startswith("PATCH"):
            operation, tags = _patch(what)
            if answer.startswith("429"):
                pending_429.setdefault(who, (what, hold_writes))
            elif answer.startswith("200") or answer.startswith("202"):
                before = pending_429.pop(who, None)
                if before is not None and before[0] == what and hold_writes > before[1]:
                    found.append("stale-429-write")
                if operation == "Merge" and any(k == "hpc-maintenance-hold" for k in tags):
                    hold_writes += 1
            if who.endswith(".held") and operation == "Delete":
                for name, value in tags.items():
                    if not name.startswith("hpc-maintenance-target-"):
                        continue
                    owner = next((r for r in runs.values() if "run=%s;" % r.run_id in value), None)
                    if owner is None or owner.label == run:
                        continue
                    recovered_at = event.time
                    seen = last_get.get((who, name[len("hpc-maintenance-target-"):]), "")
                    if "truly suspended" in seen or "runs)" in seen:
                        found.append("recovery-drops-ready")
                    if owner.label not in ended:
                        mine = runs.get(run)
                        if mine is not None and owner.pidns != mine.pidns and owner.host == mine.host:
                            found.append("pidns-liveness")
                        else:
                            found.append("hold-expired-mid-work")
            if who.endswith(".released") and operation == "Delete" and run in killed_suspends:
                name = "hpc-maintenance-target-%s" % killed_suspends[run]
                if name in tags and not any(e.who == who and e.what.endswith("/%s/resume" % killed_suspends[run])
                                            for e in trace):
                    found.append("killed-suspend-forgotten")
        if who.endswith(".released") and what.startswith("POST") and what.endswith("/resume") \
                and answer.startswith("409") and not any(e.who == who and e.what.startswith("POST")
                                                         and e.what == what and e.answer.startswith("202")
                                                         for e in trace):
            found.append("resume-409-taken-on-ready")
        if who.endswith(".released") and what.startswith("ends: FAILED") and "were not resumed" not in what:
            if any(e.who == who and e.what.startswith("PATCH") and e.answer[:3] in ("409", "429") for e in trace):
                found.append("failed-delete-stops-resumes")
    return sorted(set(found))


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    import argparse  # pylint: disable=import-outside-toplevel

    from .run import make_driver, run_many, use_tree  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(prog="python -m tests.simulation.findings")
    parser.add_argument("--schedules", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tree", default=None)
    parser.add_argument("--driver", default="role050")
    args = parser.parse_args(argv)
    use_tree(args.tree)
    outcomes = [o for o in run_many(args.seed, args.schedules, make_driver(args.driver)) if o.violations]
    groups: t.Dict[str, t.List[str]] = collections.defaultdict(list)
    for outcome in outcomes:
        letters = "".join(sorted({v.invariant for v in outcome.violations}))
        for finding in classify(outcome) or ["unclassified"]:
            groups[finding].append("%d(%s)" % (outcome.seed, letters))
    for finding, seeds in sorted(groups.items(), key=lambda g: -len(g[1])):
        print("%-28s %3d  %s" % (finding, len(seeds), " ".join(seeds[:12])))
        print("    %s" % FINDINGS.get(finding, "no heuristic matched: read the trace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
