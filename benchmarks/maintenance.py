# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a maintenance run costs, before and after a change, in one run: the role on the local emulator.

    make bench-maintenance [BENCH_MAINTENANCE_ARGS="--runs 3"]
    PATH=.venv/bin:$PATH .venv/bin/python benchmarks/maintenance.py [--before-ref 565c2a8]
        [--after-collections PATH | --after-ref REF] [--runs N] [--report FILE]

Runs `ansible-playbook -i <hpc_cache inventory> azure_hpc.cache.maintenance` (the role
azure_hpc.cache.cache_maintenance with its default settings: poll_interval 10, healthy_delay 10,
progress_interval 30, ...) against the local emulator (127.0.0.1 only) in three cases:

  (a) backend maintenance of one storage target: flush, suspend, the user's work, resume;
  (b) backend maintenance of three storage targets of one cache, the same user's work;
  (c) the flush of one cache.

The user's work is a backend task file written to the work directory: `ansible.builtin.pause` of
--work-seconds (5), between two debug lines that give its begin and end. Each case runs for two
collection trees, case by case and tree by tree in turn:

  before  a git ref (--before-ref, default 565c2a8, the 0.5.1 release), taken with `git archive`
          into a temporary directory, built and installed with ansible-galaxy into a collections
          path of its own;
  after   --after-collections PATH; or --after-ref REF, built as `before` is; else the
          ANSIBLE_COLLECTIONS_PATH that `make` exports (the working tree, as `make collection`
          installs it); else the working tree, built now as `before` is.

Server-side durations are set in the scenario, each counted from the request that started it
(`runs_from: post`, as on the real service; the emulator's default counts from the first read):
storage-target flush 8 s, suspend 1 s, resume 1 s (the emulator's RECORDED_TARGET_SECONDS:
recorded 3.7-25 s for a flush and 0.5-1.7 s for a suspend or resume), answered as recorded (202
with both headers, no Retry-After); the cache flush 10.5 s (as recorded) in the recorded shape
(`mode: recorded`: 204 with `azure-asyncoperation`).

Per case and tree it measures: the playbook's wall time against the sum of the server-side
durations of the operations the emulator started (and the user's work); per storage target its
outage, from its suspend's arrival (answered 202) to its resume's end; the module processes
started (an ansible_python_interpreter wrapper appends the module's name to a file, then execs
this Python); the ARM requests, by method and kind, from the emulator's request log. The emulator
logs when each request arrived, not when an operation ended: a resume's end is its POST's arrival
plus the resume's duration (the emulator starts the operation while it handles that POST).

A measurement, not a test: it asserts nothing about time. It writes bench-report-maintenance.md
(--report) and prints it; it exits non-zero only when it could not measure (a playbook that fails
is reported, with its exit code, and the rest still runs).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t

from hpc_cache_emulator.launcher import Emulator
from hpc_cache_emulator.state import RECORDED_TARGET_SECONDS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
SUB = "00000000-0000-0000-0000-000000000000"
DEFAULT_BEFORE = "565c2a8"
PLAYBOOK_TIMEOUT = 300.0  # one playbook run; a run takes well under a minute
BUILD_TIMEOUT = 300.0  # git archive, ansible-galaxy build and install
COLLECTION = ("ansible_collections", "azure_hpc", "cache")
# recorded: about 10.5 s (PS-C, NET-C); not a multiple of the role's 10-s poll_interval, as no real duration is
CACHE_FLUSH_SECONDS = 10.5
WORK_MARK = re.compile(r"BENCH-WORK (begin|end) ([0-9]+(?:\.[0-9]+)?)")

# The ansible_python_interpreter stand-in: one line per module process (the module's name: from the
# AnsiballZ payload on stdin under pipelining, which the inventory plugin sets, else from its file name),
# then the real interpreter, with the payload as its stdin again.
WRAPPER = """#!/bin/sh
if [ "$#" -eq 0 ]; then
    payload=$(mktemp "%(dir)s/payload.XXXXXX") || exit 1
    cat > "$payload"
    module=$(sed -n "/^module_fqn='/{s/^module_fqn='\\([^']*\\)'.*/\\1/p;q}" "$payload")
    exec 0<"$payload"
    rm -f "$payload"
else
    module=$(basename "$1")
fi
echo "${module:-?}" >> "%(count)s"
exec "%(python)s" "$@"
"""

WORK_TASKS = """---
- name: The user's work begins
  ansible.builtin.debug:
    msg: "BENCH-WORK begin {{ now(fmt='%%s.%%f') }}"

- name: The user's work
  ansible.builtin.pause:
    seconds: %(seconds)d

- name: The user's work ends
  ansible.builtin.debug:
    msg: "BENCH-WORK end {{ now(fmt='%%s.%%f') }}"
"""


class Tree(t.NamedTuple):
    label: str  # before, after
    short: str  # the ref or "working tree", for the tables' heads
    description: str
    collections: str  # an ANSIBLE_COLLECTIONS_PATH holding azure_hpc.cache


class Case(t.NamedTuple):
    key: str
    short: str
    title: str
    targets: t.Tuple[str, ...]  # storage targets to maintain; none: the cache flush


CASES = (
    Case("a", "one storage target", "Backend maintenance of one storage target (flush, suspend, the user's work, resume)", ("filer-01",)),
    Case("b", "three storage targets", "Backend maintenance of three storage targets of one cache (the same user's work)",
         ("filer-01", "filer-02", "filer-03")),
    Case("c", "cache flush", "The cache flush through the role (one cache)", ()),
)


# Trees --------------------------------------------------------------------------------------------

def run_checked(argv: t.Sequence[str], cwd: t.Optional[str] = None) -> str:
    proc = subprocess.run(list(argv), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=BUILD_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv[:4]), proc.returncode, proc.stdout[-2000:]))
    return proc.stdout


def install(source: str, workdir: str, label: str) -> str:
    """Build the collection in source with ansible-galaxy and install it into a collections path of its own."""
    dist, path = os.path.join(workdir, "dist-" + label), os.path.join(workdir, "collections-" + label)
    galaxy = os.path.join(BIN, "ansible-galaxy")
    run_checked([galaxy, "collection", "build", "--force", "--output-path", dist, source])
    tarballs = [os.path.join(dist, name) for name in os.listdir(dist) if name.endswith(".tar.gz")]
    if len(tarballs) != 1:
        raise RuntimeError("expected one collection tarball in %s, found %s" % (dist, tarballs))
    run_checked([galaxy, "collection", "install", "--force", "-p", path, tarballs[0]])
    return path


def tree_from_ref(ref: str, workdir: str, label: str) -> Tree:
    commit = run_checked(["git", "-C", ROOT, "rev-parse", "--short", ref + "^{commit}"]).strip()
    source = os.path.join(workdir, "src-" + label)
    os.makedirs(source)
    archive = os.path.join(workdir, "src-%s.tar" % label)
    run_checked(["git", "-C", ROOT, "archive", "--format=tar", "-o", archive, commit])
    run_checked(["tar", "-xf", archive, "-C", source])
    return Tree(label, ref, "%s (git archive of %s)" % (ref, commit), install(source, workdir, label))


def find_collection(paths: str) -> t.Optional[str]:
    """The entry of a collections path (colon-separated) that holds azure_hpc.cache."""
    for entry in paths.split(os.pathsep):
        if entry and os.path.isfile(os.path.join(entry, *COLLECTION, "MANIFEST.json")):
            return entry
    return None


def after_tree(args: argparse.Namespace, workdir: str) -> Tree:
    if args.after_collections:
        path = find_collection(args.after_collections)
        if path is None:
            raise RuntimeError("no azure_hpc.cache under --after-collections %s" % args.after_collections)
        return Tree("after", path, "installed collection at %s" % path, path)
    if args.after_ref:
        return tree_from_ref(args.after_ref, workdir, "after")
    path = find_collection(os.environ.get("ANSIBLE_COLLECTIONS_PATH", ""))
    if path is not None:
        return Tree("after", "working tree", "the working tree, installed at %s (ANSIBLE_COLLECTIONS_PATH)" % path, path)
    return Tree("after", "working tree", "the working tree %s, built now" % ROOT, install(ROOT, workdir, "after"))


def identity(tree: Tree) -> str:
    """The installed collection's version and a digest of its files (FILES.json's checksums)."""
    base = os.path.join(tree.collections, *COLLECTION)
    with open(os.path.join(base, "MANIFEST.json"), encoding="utf-8") as handle:
        version = json.load(handle)["collection_info"]["version"]
    with open(os.path.join(base, "FILES.json"), encoding="utf-8") as handle:
        files = sorted((f["name"], f.get("chksum_sha256") or "") for f in json.load(handle)["files"])
    return "%s, files %s" % (version, hashlib.sha256(json.dumps(files).encode()).hexdigest()[:12])


# One run --------------------------------------------------------------------------------------------

class Runner:
    """Runs the maintenance playbook against the emulator, one tree at a time."""

    def __init__(self, emulator: Emulator, workdir: str, durations: t.Mapping[str, float], work_seconds: int) -> None:
        self.emu = emulator
        self.workdir = workdir
        self.durations = dict(durations)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_", "ANSIBLE_"))}
        self.env.update(emulator.env(SUB))
        self.env.update(HOME=workdir, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
                        ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
                        # as make exports it: no run compiles the controller's plugins for the runs after it
                        PYTHONDONTWRITEBYTECODE="1")
        self.inventory = os.path.join(workdir, "maintenance.hpc_cache.yml")
        with open(self.inventory, "w", encoding="utf-8") as handle:
            json.dump({"plugin": "azure_hpc.cache.hpc_cache"}, handle)
        self.work_file = os.path.join(workdir, "users-work.yml")
        with open(self.work_file, "w", encoding="utf-8") as handle:
            handle.write(WORK_TASKS % {"seconds": work_seconds})
        self.runs = 0

    def scenario(self, case: Case) -> t.Dict[str, t.Any]:
        actions = {name: {"duration": self.durations[name]} for name in ("flush", "suspend", "resume")}
        cache: t.Dict[str, t.Any] = {"name": "c1", "resource_group": "rg",
                                     "flush": {"mode": "recorded", "duration": self.durations["cache_flush"],
                                               "runs_from": "post"}}
        if case.targets:
            cache["storage_targets"] = [{"name": name, "action": {"runs_from": "post"}, "actions": actions}
                                        for name in case.targets]
        return {"caches": [cache]}

    def wrapper(self, count: str) -> str:
        path = os.path.join(self.workdir, "python-%d" % self.runs)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(WRAPPER % {"dir": self.workdir, "count": count, "python": sys.executable})
        os.chmod(path, 0o755)
        return path

    def run(self, tree: Tree, case: Case) -> t.Dict[str, t.Any]:
        self.runs += 1
        count = os.path.join(self.workdir, "modules-%d.txt" % self.runs)
        with open(count, "w", encoding="utf-8") as handle:
            handle.write("")  # the wrapper appends a line per module process
        extra: t.Dict[str, t.Any] = {}
        if case.targets:
            extra = {"cache_maintenance_storage_targets": list(case.targets),
                     "cache_maintenance_backend_tasks": [self.work_file]}
        argv = [os.path.join(BIN, "ansible-playbook"), "-i", self.inventory, "azure_hpc.cache.maintenance",
                "-e", "ansible_python_interpreter=%s" % self.wrapper(count), "-e", json.dumps(extra)]
        self.emu.load(self.scenario(case))
        start = time.time()
        code, output = run_bounded(argv, self.workdir, dict(self.env, ANSIBLE_COLLECTIONS_PATH=tree.collections))
        end = time.time()
        if code != 0:
            print("bench-maintenance: %s, case %s: ansible-playbook exited %d:\n%s"
                  % (tree.label, case.key, code, output[-3000:]), file=sys.stderr)
        state = self.emu.state()
        with open(count, encoding="utf-8") as handle:
            modules = collections.Counter(line.strip().rpartition(".")[2] for line in handle if line.strip())
        return figures(case, state, output, start, end, code, modules, self.durations)


def run_bounded(argv: t.Sequence[str], cwd: str, env: t.Mapping[str, str]) -> t.Tuple[int, str]:
    """Exit code and output of a command in a session of its own; past PLAYBOOK_TIMEOUT its whole process group
    (ansible-playbook, its workers and their modules) is killed, and the exit code is -1."""
    with subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True) as proc:
        try:
            output = proc.communicate(timeout=PLAYBOOK_TIMEOUT)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output = proc.communicate(timeout=30)[0]
            return -1, output + "\n(killed after %.0f s)" % PLAYBOOK_TIMEOUT
        return proc.returncode, output


def figures(case: Case, state: t.Mapping[str, t.Any], output: str, start: float, end: float, code: int,
            modules: t.Mapping[str, int], durations: t.Mapping[str, float]) -> t.Dict[str, t.Any]:
    log = [e for e in state["log"] if e.get("kind") is not None]
    cache = [c for c in state["caches"] if c["name"] == "c1"][0]
    targets = {tg["name"]: tg for tg in state["storage_targets"] if tg["cache"] == "c1"}
    # the operations the emulator started, each with the duration it was told to take
    operations = cache["flushes"] * durations["cache_flush"] + sum(
        n * durations.get(action, 0.0) for tg in targets.values() for action, n in tg["sent"].items())
    marks = dict((m.group(1), float(m.group(2))) for m in WORK_MARK.finditer(output))
    work_begin, work_end = marks.get("begin"), marks.get("end")
    outage = {}
    for name in case.targets:
        posts = [e for e in log if e["kind"] == "target_action" and e.get("target") == name and e.get("status") == 202]
        suspends = [e["time"] for e in posts if e.get("action") == "suspend"]
        resumes = [e["time"] for e in posts if e.get("action") == "resume"]
        row: t.Dict[str, t.Any] = {}
        if suspends and resumes:
            done = resumes[-1] + durations["resume"]
            row.update(suspended=suspends[0] - start, outage=done - suspends[0],
                       before_work=(work_begin - suspends[0]) if work_begin else None,
                       to_resume_post=(resumes[-1] - work_end) if work_end else None,
                       after_work=(done - work_end) if work_end else None)
        outage[name] = row
    requests = collections.Counter(request_kind(e) for e in log)
    return {"code": code, "wall": end - start, "operations": operations,
            "work": (work_end - work_begin) if work_begin and work_end else None,
            "outage": outage, "noticed": noticed(log, durations), "modules": dict(modules),
            "processes": sum(modules.values()), "requests": dict(requests),
            "arm": sum(n for kind, n in requests.items() if kind not in NOT_ARM),
            "not_2xx": sum(1 for e in log if not (isinstance(e.get("status"), int) and 200 <= e["status"] < 300))}


def noticed(log: t.Sequence[t.Mapping[str, t.Any]], durations: t.Mapping[str, float]) -> t.Dict[str, float]:
    """Per kind of operation, summed: seconds from each operation's end (its POST's arrival plus its duration)
    to the next request about it (its status, its target's GET; for the cache flush, the cache's GET too)."""
    late: t.Dict[str, float] = collections.defaultdict(float)
    for entry in log:
        if entry["kind"] == "target_action" and entry.get("status") == 202:
            kind, ends = entry["action"], entry["time"] + durations.get(entry["action"], 0.0)
            about = [e["time"] for e in log if e["time"] >= ends and e.get("target") == entry["target"]
                     and e["kind"] in ("operation", "location", "target")]
        elif entry["kind"] == "flush" and entry.get("status") in (200, 202, 204):
            kind, ends = "cache_flush", entry["time"] + durations["cache_flush"]
            about = [e["time"] for e in log if e["time"] >= ends and not e.get("target")
                     and e["kind"] in ("operation", "location", "get")]
        else:
            continue
        late[kind] += (about[0] - ends) if about else float("nan")
    return dict(late)


KINDS = {
    "get": "GET cache", "list": "GET cache list", "flush": "POST cache flush", "update": "PATCH cache",
    "target": "GET storage target", "targets": "GET storage target list",
    "operation": "GET operation status (Azure-AsyncOperation)", "location": "GET operation result (Location)",
    "tags": "GET tags", "tags_write": "PATCH tags", "tags_operation": "GET tags operation",
    "token": "token (managed identity)", "metadata": "GET cloud metadata", "discovery": "discovery",
}
NOT_ARM = ("token (managed identity)", "GET cloud metadata", "discovery")
NOTICED = (("flush", "a target flush"), ("suspend", "a suspend"), ("resume", "a resume"), ("cache_flush", "the cache flush"))


def request_kind(entry: t.Mapping[str, t.Any]) -> str:
    kind = entry["kind"]
    if kind == "target_action":
        return "POST storage target %s" % entry.get("action")
    if kind == "cache_action":
        return "POST cache %s" % entry.get("action")
    return KINDS.get(kind, "%s %s" % (entry.get("method"), kind))


def median_of(runs: t.Sequence[t.Mapping[str, t.Any]], path: t.Sequence[str]) -> t.Optional[float]:
    """The median of one figure over runs (None where a run lacks it)."""
    values = []
    for run in runs:
        value: t.Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            return None
        values.append(float(value))
    return statistics.median(values) if values else None


# The report -----------------------------------------------------------------------------------------

def cell(value: t.Optional[float], digits: int = 1) -> str:
    if value is None:
        return "-"
    return "%.*f" % (digits, value) if digits else "%d" % round(value)


def case_table(case: Case, runs: t.Mapping[str, t.List[t.Dict[str, t.Any]]], trees: t.Sequence[Tree],
               durations: t.Mapping[str, float]) -> t.List[str]:
    def row(label: str, path: t.Sequence[str], digits: int = 1) -> str:
        return "| %s | %s |" % (label, " | ".join(cell(median_of(runs[tree.label], path), digits) for tree in trees))

    if case.targets:
        what = "%d x (target flush %g + suspend %g + resume %g)" % (
            len(case.targets), durations["flush"], durations["suspend"], durations["resume"])
    else:
        what = "cache flush %g" % durations["cache_flush"]
    codes = ["/".join(str(r["code"]) for r in runs[tree.label]) for tree in trees]
    lines = ["### (%s) %s" % (case.key, case.title), "",
             "| | %s |" % " | ".join("%s: %s" % (tree.label, tree.short) for tree in trees),
             "|---|%s" % ("---|" * len(trees)),
             "| ansible-playbook exit code | %s |" % " | ".join(codes),
             row("wall s", ["wall"]),
             row("server-side operations s (%s)" % what, ["operations"]),
             ]
    for kind, label in NOTICED:
        if any(kind in r["noticed"] for tree in trees for r in runs[tree.label]):
            lines.append(row("&nbsp;&nbsp;%s ended to the next request about it s (sum)" % label, ["noticed", kind]))
    if case.targets:
        lines += [row("user's work s (begin to end, as the play printed them)", ["work"]),
                  "| wall - operations - work s | %s |" % " | ".join(
                      cell(none_minus(median_of(runs[tree.label], ["wall"]),
                                      median_of(runs[tree.label], ["operations"]),
                                      median_of(runs[tree.label], ["work"]))) for tree in trees)]
        for name in case.targets:
            lines += [
                row("**%s outage s** (suspend arrived to resume done)" % name, ["outage", name, "outage"]),
                row("%s: suspend arrived, s after the playbook started" % name, ["outage", name, "suspended"]),
                row("%s: suspended before the work began s" % name, ["outage", name, "before_work"]),
                row("%s: the work ended to its resume POST s" % name, ["outage", name, "to_resume_post"]),
                row("%s: the work ended to resume done s" % name, ["outage", name, "after_work"]),
            ]
    else:
        lines.append("| wall - operations s | %s |" % " | ".join(
            cell(none_minus(median_of(runs[tree.label], ["wall"]), median_of(runs[tree.label], ["operations"])))
            for tree in trees))
    lines.append(row("module processes", ["processes"], 0))
    names = sorted({m for tree in trees for r in runs[tree.label] for m in r["modules"]})
    lines += [row("&nbsp;&nbsp;%s" % name, ["modules", name], 0) for name in names]
    lines.append(row("ARM requests", ["arm"], 0))
    kinds = sorted({k for tree in trees for r in runs[tree.label] for k in r["requests"]})
    lines += [row("&nbsp;&nbsp;%s" % kind, ["requests", kind], 0) for kind in kinds if kind not in NOT_ARM]
    lines += [row("other requests: %s" % kind, ["requests", kind], 0) for kind in kinds if kind in NOT_ARM]
    lines.append(row("answers other than 2xx", ["not_2xx"], 0))
    return lines + [""]


def each(runs: t.Mapping[str, t.List[t.Dict[str, t.Any]]], trees: t.Sequence[Tree], path: t.Sequence[str],
         digits: int = 1) -> str:
    """One figure for every tree, before / after."""
    return " / ".join(cell(median_of(runs[tree.label], path), digits) for tree in trees)


def none_minus(first: t.Optional[float], *others: t.Optional[float]) -> t.Optional[float]:
    if first is None or any(o is None for o in others):
        return None
    return first - sum(t.cast(float, o) for o in others)


def fill_counts(runs: t.Mapping[str, t.List[t.Dict[str, t.Any]]]) -> None:
    """Counts absent from a run are 0 in it (a kind of request one tree sent and the other did not)."""
    everything = [r for rows in runs.values() for r in rows]
    for key in ("modules", "requests"):
        names = {n for r in everything for n in r[key]}
        for run in everything:
            for name in names:
                run[key].setdefault(name, 0)


def report(data: t.Mapping[str, t.Any]) -> str:
    trees: t.Sequence[Tree] = data["trees"]
    durations = data["durations"]
    lines = [
        "# What a maintenance run costs: before and after",
        "",
        "Run %s on %s (%d cores), %s; Python %s, ansible-core %s. Each figure is the median of %d run(s)."
        % (data["when"], platform.node() or "?", os.cpu_count() or 0, platform.platform(), platform.python_version(),
           data["ansible_core"], data["runs"]),
        "",
        "| tree | what | collection |",
        "|---|---|---|",
    ] + ["| %s | %s | %s |" % (tree.label, tree.description, identity(tree)) for tree in trees] + [
        "",
        "`ansible-playbook -i <hpc_cache inventory> azure_hpc.cache.maintenance` with the role's default settings",
        "(poll_interval 10 s, healthy_delay 10 s, progress_interval 30 s, ...), one cache, against the local emulator",
        "on 127.0.0.1 (plain http, managed identity). Server-side durations set in the scenario, each counted from",
        "the request that started it (`runs_from: post`): storage-target flush %g s, suspend %g s, resume %g s"
        % (durations["flush"], durations["suspend"], durations["resume"]),
        "(recorded: 3.7-25 s and 0.5-1.7 s; 202 with both headers, no Retry-After), the cache flush %g s in its"
        % durations["cache_flush"],
        "recorded shape (`mode: recorded`). The user's work: a backend task file, `ansible.builtin.pause` of %d s."
        % data["work_seconds"],
        "",
        "An outage runs from the arrival of the target's suspend POST (answered 202) to the end of its resume.",
        "The emulator logs when each request arrived, not when an operation ended: the resume's end is its POST's",
        "arrival plus the resume's duration. \"Ended to the next request about it\": from an operation's end so",
        "computed to the first status request or GET of its target after it (the cache flush: status or cache GET),",
        "summed over the operations of that kind: how late the role saw the ends. Module processes are counted by an",
        "ansible_python_interpreter wrapper (a few ms of its own each); requests by the emulator's log.",
        "",
        "## Summary",
        "",
        "Each cell: %s." % " / ".join("%s (%s)" % (tree.label, tree.short) for tree in trees),
        "",
        "| case | wall s | server-side operations s | longest outage s (user's work %d s) | module processes | ARM requests |"
        % data["work_seconds"],
        "|---|---|---|---|---|---|",
    ]
    for case in data["cases"]:
        runs = data["results"][case.key]
        outages = []
        for tree in trees:
            known = [o for o in (median_of(runs[tree.label], ["outage", name, "outage"]) for name in case.targets)
                     if o is not None]
            outages.append(cell(max(known)) if known else "-")
        lines.append("| (%s) %s | %s | %s | %s | %s | %s |" % (
            case.key, case.short, each(runs, trees, ["wall"]), each(runs, trees, ["operations"]), " / ".join(outages),
            each(runs, trees, ["processes"], 0), each(runs, trees, ["arm"], 0)))
    lines += ["", "## Per case", ""]
    for case in data["cases"]:
        lines += case_table(case, data["results"][case.key], trees, durations)
    return "\n".join(lines)


def ansible_core_version() -> str:
    try:
        from importlib.metadata import version  # pylint: disable=import-outside-toplevel

        return version("ansible-core")
    except Exception:  # pylint: disable=broad-except
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-ref", default=DEFAULT_BEFORE, help="git ref of the 'before' tree (default: %(default)s)")
    parser.add_argument("--after-collections", help="a collections path that holds the 'after' azure_hpc.cache")
    parser.add_argument("--after-ref", help="build the 'after' tree from this git ref instead")
    parser.add_argument("--runs", type=int, default=1, help="runs of each case and tree; figures are medians")
    parser.add_argument("--work-seconds", type=int, default=5)
    parser.add_argument("--target-flush-seconds", type=float, default=RECORDED_TARGET_SECONDS["flush"])
    parser.add_argument("--suspend-seconds", type=float, default=RECORDED_TARGET_SECONDS["suspend"])
    parser.add_argument("--resume-seconds", type=float, default=RECORDED_TARGET_SECONDS["resume"])
    parser.add_argument("--cache-flush-seconds", type=float, default=CACHE_FLUSH_SECONDS)
    parser.add_argument("--cases", default="abc", help="which cases to run (default: %(default)s)")
    parser.add_argument("--report", default=os.path.join(ROOT, "bench-report-maintenance.md"))
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be 1 or more")
    durations = {"flush": args.target_flush_seconds, "suspend": args.suspend_seconds,
                 "resume": args.resume_seconds, "cache_flush": args.cache_flush_seconds}
    cases = [case for case in CASES if case.key in args.cases]
    workdir = tempfile.mkdtemp(prefix="hpc-cache-bench-maintenance-")
    scratch = [workdir]
    try:
        with Emulator() as emu:
            scratch.append(emu.workdir)  # its scenario file and its own log
            trees = [tree_from_ref(args.before_ref, workdir, "before"), after_tree(args, workdir)]
            runner = Runner(emu, workdir, durations, args.work_seconds)
            results: t.Dict[str, t.Dict[str, t.List[t.Dict[str, t.Any]]]] = {}
            for case in cases:
                results[case.key] = {tree.label: [] for tree in trees}
                for number in range(args.runs):
                    for tree in trees if number % 2 == 0 else trees[::-1]:
                        print("bench-maintenance: case %s, %s, run %d" % (case.key, tree.label, number + 1),
                              file=sys.stderr)
                        results[case.key][tree.label].append(runner.run(tree, case))
                fill_counts(results[case.key])
            text = report({"cases": cases, "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                           "ansible_core": ansible_core_version(), "runs": args.runs, "trees": trees,
                           "durations": durations, "work_seconds": args.work_seconds, "results": results})
    except (RuntimeError, subprocess.SubprocessError, OSError, ValueError, KeyError, IndexError) as exc:
        print("bench-maintenance: could not measure: %s" % exc, file=sys.stderr)
        return 1
    finally:
        for path in scratch:
            shutil.rmtree(path, ignore_errors=True)
    with open(args.report, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(text)
    print("report written to %s" % args.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
