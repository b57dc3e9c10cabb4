# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory Azure HPC Cache (one cache, its storage targets, ARM's Tags API) behind a requests-like session.

The real ArmClient talks to it through ``Service.request`` exactly as the unit
tests' FakeSession is used (tests/unit/fakes.py): an answer has status_code,
headers (case-insensitive) and content, and no ``raw`` stream, so http.read_body
takes the body at once. Every request is a yield point of the scheduler (a
short virtual latency), is answered atomically, and is written to the trace
with the process that sent it.

Ground truth: each target's ``suspended`` flag is set when a suspend
operation ends Succeeded and cleared when a resume ends; ``by`` is the run
whose suspend set it. What the service *shows* is a knob (Knobs.shows).
"""

from __future__ import annotations

import email.utils
import json
import random
import typing as t
from dataclasses import dataclass, field

from requests.structures import CaseInsensitiveDict

from .scheduler import Proc, Scheduler

ARM = "https://management.example.test/"
SUB = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg"
CACHE = "c1"
CACHE_PATH = "subscriptions/%s/resourceGroups/%s/providers/Microsoft.StorageCache/caches/%s" % (
    SUB, RESOURCE_GROUP, CACHE)
TAGS_PATH = CACHE_PATH + "/providers/Microsoft.Resources/tags/default"
OPS_PATH = "subscriptions/%s/providers/Microsoft.StorageCache/locations/eastus/ascOperations/" % SUB
TAG_OPS_PATH = TAGS_PATH + "/operationResults/"
ACTIONS = ("suspend", "resume", "flush", "dnsRefresh")


@dataclass
class Knobs:
    """How the service behaves in one schedule (drawn from its seed by ``draw``)."""

    slow: float = 0.0  # chance that a suspend or resume takes 100-3000 s instead of 0.5-1.7 s
    shows: str = "shows"  # shows: Suspended after a suspend; never: always Ready; lag: the old state for lag s
    lag: float = 0.0
    busy_state: str = "Busy"  # what a target reads while a suspend, resume or dnsRefresh runs (Busy or Ready)
    tags_202: float = 0.0  # chance a tags write answers 202 + Location and lands tags_delay s later
    tags_delay: float = 0.0
    tags_409: bool = False  # a tags write while an accepted one has not landed answers 409
    tags_429: float = 0.0  # chance a tags write answers 429 with Retry-After (retry_after s)
    action_429: float = 0.0  # chance an action POST answers 429 with Retry-After
    retry_after: int = 5
    stale: float = 0.0  # a GET of the cache shows its tags as they were this many seconds ago
    delete_ignores_values: bool = False  # a tags Delete removes the names whatever their values
    latency: float = 0.1  # the longest virtual latency of one request
    resume_busy: str = "409"  # a resume sent while another operation runs: 409, or 204 (no operation, nothing done)

    @classmethod
    def draw(cls, rng: random.Random) -> "Knobs":
        knobs = cls()
        knobs.slow = rng.choice((0.0, 0.0, 0.1, 0.3))
        knobs.shows = rng.choice(("shows", "shows", "never", "lag"))
        knobs.lag = float(rng.choice((5, 30, 120, 600))) if knobs.shows == "lag" else 0.0
        knobs.busy_state = rng.choice(("Busy", "Busy", "Ready"))
        knobs.tags_202 = rng.choice((0.0, 0.0, 0.3))
        knobs.tags_delay = float(rng.choice((1, 5, 20)))
        knobs.tags_409 = rng.random() < 0.3
        knobs.tags_429 = rng.choice((0.0, 0.0, 0.1, 0.3))
        knobs.action_429 = rng.choice((0.0, 0.0, 0.1, 0.3))
        knobs.retry_after = rng.choice((1, 5, 30, 120))
        knobs.stale = float(rng.choice((0, 0, 1, 3, 10)))
        knobs.delete_ignores_values = rng.random() < 0.3
        knobs.latency = rng.choice((0.05, 0.2, 1.0))
        return knobs


class Answer:
    """What the session returns: the shape of tests/unit/fakes.py's FakeRaw."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status: int, body: t.Any = None, headers: t.Optional[t.Mapping[str, str]] = None) -> None:
        self.status_code = status
        self.headers = CaseInsensitiveDict(headers or {})
        self.content = b"" if body is None else json.dumps(body).encode()

    def close(self) -> None:
        """Nothing to close."""


def error(status: int, code: str, message: str, headers: t.Optional[t.Mapping[str, str]] = None) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}}, headers)


@dataclass
class Operation:
    """One action on one target: it runs from start to end, then has Succeeded."""

    id: int
    action: str
    target: str
    run: t.Any
    proc: str
    start: float
    end: float
    done: bool = False


@dataclass
class Target:
    name: str
    suspended: bool = False  # ground truth
    by: t.Any = None  # the run whose suspend made it suspended
    op: t.Optional[Operation] = None  # the action running on it
    shown_before: str = "Ready"  # what it showed before its last change (for the lag knob)
    changed_at: float = -1e9


@dataclass
class TagWrite:
    id: int
    operation: str
    tags: t.Dict[str, str]
    at: float  # when it lands
    done: bool = False


@dataclass
class Event:
    """One line of the trace."""

    time: float
    who: str
    what: str
    answer: str = ""

    def __str__(self) -> str:
        return "%10.2f  %-22s %s%s" % (self.time, self.who, self.what, "  -> " + self.answer if self.answer else "")


class Listener:
    """What the invariants watch as it happens (invariants.Monitor is one)."""

    def accepted(self, proc: t.Optional[Proc], action: str, target: Target) -> None:
        """An action POST was accepted (202) for target (before it runs)."""

    def ended(self, op: Operation, target: Target) -> None:
        """An operation ended Succeeded and its effect on the ground truth was applied."""


@dataclass
class Service:
    """The cache c1 and its storage targets, in memory, on the scheduler's virtual clock."""

    sim: Scheduler
    knobs: Knobs
    targets: t.Dict[str, Target]
    rng: random.Random
    listener: Listener = field(default_factory=Listener)
    tags: t.Dict[str, str] = field(default_factory=dict)
    trace: t.List[Event] = field(default_factory=list)
    ops: t.Dict[int, Operation] = field(default_factory=dict)
    running: t.List[Operation] = field(default_factory=list)
    writes: t.Dict[int, TagWrite] = field(default_factory=dict)
    pending: t.List[TagWrite] = field(default_factory=list)
    history: t.List[t.Tuple[float, t.Dict[str, str]]] = field(default_factory=list)
    requests: int = 0
    _ids: int = 0

    @classmethod
    def make(cls, sim: Scheduler, knobs: Knobs, names: t.Sequence[str], rng: random.Random) -> "Service":
        service = cls(sim, knobs, {n: Target(n) for n in names}, rng)
        service.history.append((-1e12, {}))
        return service

    # The session ---------------------------------------------------------------------------------
    def request(self, method: str, url: str, headers: t.Mapping[str, str], timeout: t.Any,
                allow_redirects: bool, data: t.Any = None, stream: bool = False,
                proxies: t.Optional[t.Mapping[str, t.Any]] = None) -> Answer:
        """One request of the real ArmClient: a yield point, then answered at once."""
        self.sim.pause(self.rng.random() * self.knobs.latency)  # raises Killed once disconnected
        self.requests += 1
        self.settle()
        proc = self.sim.current
        path, _sep, _query = url[len(ARM):].partition("?") if url.startswith(ARM) else (url, "", "")
        body = json.loads(data) if data else None
        answer, note = self.route(method, path, body, proc)
        # every ARM answer carries a Date (seconds resolution), as ARM's do: the run's clock is checked against it
        answer.headers["Date"] = email.utils.formatdate(int(self.sim.wall()), usegmt=True)
        short = path.replace(CACHE_PATH, "{cache}").replace(OPS_PATH, "{op}/")
        what = "%s %s%s" % (method, short, " " + json.dumps(body, sort_keys=True) if body else "")
        self.trace.append(Event(self.sim.now, proc.label if proc else "?", what,
                                "%d%s" % (answer.status_code, " " + note if note else "")))
        return answer

    def note(self, who: str, what: str) -> None:
        """A harness line in the trace (a process started, killed, a fault)."""
        self.trace.append(Event(self.sim.now, who, what))

    # Time -----------------------------------------------------------------------------------------
    def settle(self) -> None:
        """Apply every operation and tags write whose time has come, in time order."""
        now = self.sim.now
        due: t.List[t.Tuple[float, int, t.Any]] = [(op.end, op.id, op) for op in self.running if op.end <= now]
        due += [(w.at, w.id, w) for w in self.pending if w.at <= now]
        for _when, _id, item in sorted(due, key=lambda d: (d[0], d[1])):
            if isinstance(item, Operation):
                self._end(item)
            else:
                self.running_write_done(item)

    def _end(self, op: Operation) -> None:
        op.done = True
        self.running.remove(op)
        target = self.targets[op.target]
        target.shown_before = self.shown(target)
        target.changed_at = op.end
        target.op = None
        if op.action == "suspend":
            target.suspended, target.by = True, op.run
        elif op.action == "resume":
            target.suspended, target.by = False, None
        self.trace.append(Event(op.end, "service", "%s of %s (op %d, by %s) ended Succeeded; truly %s"
                                % (op.action, op.target, op.id, op.proc,
                                   "suspended" if target.suspended else "not suspended")))
        self.listener.ended(op, target)

    def running_write_done(self, write: TagWrite) -> None:
        write.done = True
        self.pending.remove(write)
        self._apply(write.operation, write.tags, write.at)
        self.trace.append(Event(write.at, "service", "tags write %d (%s) landed" % (write.id, write.operation)))

    # Reads --------------------------------------------------------------------------------------
    def shown(self, target: Target) -> str:
        """The state a GET shows now (the knobs), not the truth."""
        if target.op is not None:
            return "Flushing" if target.op.action == "flush" else self.knobs.busy_state
        truth = "Suspended" if target.suspended and self.knobs.shows != "never" else "Ready"
        if self.knobs.shows == "lag" and self.sim.now < target.changed_at + self.knobs.lag:
            return target.shown_before
        return truth

    def _target_body(self, target: Target) -> t.Dict[str, t.Any]:
        return {"id": "/%s/storageTargets/%s" % (CACHE_PATH, target.name), "name": target.name,
                "type": "Microsoft.StorageCache/caches/storageTargets",
                "properties": {"targetType": "nfs3", "state": self.shown(target), "provisioningState": "Succeeded"}}

    def visible_tags(self) -> t.Dict[str, str]:
        """The tags a GET of the cache shows: as they were knobs.stale seconds ago."""
        if not self.knobs.stale:
            return dict(self.tags)
        when = self.sim.now - self.knobs.stale
        for stamp, tags in reversed(self.history):
            if stamp <= when:
                return dict(tags)
        return {}

    # Routes -------------------------------------------------------------------------------------
    def route(self, method: str, path: str, body: t.Any, proc: t.Optional[Proc]) -> t.Tuple[Answer, str]:
        if path == CACHE_PATH and method == "GET":
            return Answer(200, {"id": "/" + CACHE_PATH, "name": CACHE, "location": "eastus",
                                "tags": self.visible_tags(),
                                "properties": {"health": {"state": "Healthy", "statusDescription": "ok"},
                                               "provisioningState": "Succeeded"}}), ""
        if path == CACHE_PATH + "/storageTargets" and method == "GET":
            return Answer(200, {"value": [self._target_body(x) for x in self.targets.values()]}), ""
        if path == TAGS_PATH and method == "PATCH":
            return self._patch_tags(body)
        if path.startswith(TAG_OPS_PATH) and method == "GET":
            write = self.writes.get(int(path[len(TAG_OPS_PATH):]))
            if write is None:
                return error(404, "NotFound", "no such operation"), ""
            if not write.done:
                return Answer(202, None, {"Location": ARM + path + "?api-version=2021-04-01"}), "running"
            return Answer(200, {"properties": {"tags": dict(self.tags)}}), "landed"
        if path.startswith(OPS_PATH) and method == "GET":
            op = self.ops.get(int(path[len(OPS_PATH):]))
            if op is None:
                return error(404, "NotFound", "no such operation"), ""
            status = "Succeeded" if op.done else "InProgress"
            return Answer(200, {"id": "/" + path, "name": str(op.id), "status": status}), status
        prefix = CACHE_PATH + "/storageTargets/"
        if path.startswith(prefix):
            name, _sep, action = path[len(prefix):].partition("/")
            target = self.targets.get(name)
            if target is None:
                return error(404, "NotFound", "no storage target %s" % name), ""
            if not action and method == "GET":
                state = self.shown(target)
                return Answer(200, self._target_body(target)), "%s (truly %s%s)" % (
                    state, "suspended" if target.suspended else "not suspended",
                    ", a %s runs" % target.op.action if target.op is not None else "")
            if action in ACTIONS and method == "POST":
                return self._action(action, target, proc)
        return error(404, "NotFound", "no route %s %s" % (method, path)), ""

    def _duration(self, action: str) -> float:
        if action in ("suspend", "resume") and self.rng.random() < self.knobs.slow:
            return 100.0 + self.rng.random() * 2900.0
        return 0.5 + self.rng.random() * 1.2

    def _action(self, action: str, target: Target, proc: t.Optional[Proc]) -> t.Tuple[Answer, str]:
        if self.knobs.action_429 and self.rng.random() < self.knobs.action_429:
            return error(429, "TooManyRequests", "throttled", {"Retry-After": str(self.knobs.retry_after)}), ""
        if target.op is not None:
            if action == "resume" and self.knobs.resume_busy == "204":
                return Answer(204, None), "bare 204 (nothing done): a %s runs" % target.op.action
            text = "the storage target %s is busy with a %s" % (target.name, target.op.action)
            return error(409, "Conflict", text), ""
        self._ids += 1
        now = self.sim.now
        op = Operation(self._ids, action, target.name, proc.run if proc else None, proc.label if proc else "?",
                       now, now + self._duration(action))
        self.ops[op.id] = op
        self.running.append(op)
        target.shown_before = self.shown(target)
        target.op = op
        url = ARM + OPS_PATH + "%d?api-version=2026-01-01" % op.id
        self.listener.accepted(proc, action, target)
        return Answer(202, None, {"Azure-AsyncOperation": url, "Location": url + "&monitor=true"}), \
            "op %d, ends at %.2f" % (op.id, op.end)

    # Tags -----------------------------------------------------------------------------------------
    def _apply(self, operation: str, tags: t.Mapping[str, str], when: float) -> None:
        for name, value in tags.items():
            folded = name.casefold()
            old = [k for k in self.tags if k.casefold() == folded]
            if operation == "Merge":
                for key in old:
                    del self.tags[key]
                self.tags[name] = value
            else:
                for key in old:
                    if self.knobs.delete_ignores_values or self.tags[key] == value:
                        del self.tags[key]
        self.history.append((when, dict(self.tags)))

    def _patch_tags(self, body: t.Any) -> t.Tuple[Answer, str]:
        operation = body.get("operation") if isinstance(body, dict) else None
        props = body.get("properties") if isinstance(body, dict) else None
        tags = props.get("tags") if isinstance(props, dict) else None
        if operation not in ("Merge", "Delete") or not isinstance(tags, dict):
            return error(400, "InvalidRequest", "this fake takes a Merge or a Delete with properties.tags"), ""
        if self.knobs.tags_409 and self.pending:
            return error(409, "Conflict", "another tags operation is in progress"), ""
        if self.knobs.tags_429 and self.rng.random() < self.knobs.tags_429:
            return error(429, "TooManyRequests", "throttled", {"Retry-After": str(self.knobs.retry_after)}), ""
        if self.knobs.tags_202 and self.rng.random() < self.knobs.tags_202:
            self._ids += 1
            write = TagWrite(self._ids, operation, {str(k): str(v) for k, v in tags.items()},
                             self.sim.now + self.knobs.tags_delay)
            self.writes[write.id] = write
            self.pending.append(write)
            return Answer(202, None, {"Location": ARM + TAG_OPS_PATH + "%d?api-version=2021-04-01" % write.id}), \
                "write %d lands at %.2f" % (write.id, write.at)
        self._apply(operation, {str(k): str(v) for k, v in tags.items()}, self.sim.now)
        return Answer(200, {"id": "/" + TAGS_PATH, "name": "default", "properties": {"tags": dict(self.tags)}}), ""
