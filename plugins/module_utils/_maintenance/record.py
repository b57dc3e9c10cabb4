# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record of a backend maintenance run, kept on the cache itself, and the hold it gives.

Before its first suspend a run writes, as tags on the cache (ARM's Tags API,
so every controller that maintains the cache sees it):

  hpc-maintenance-hold = v1;run=..;host=..;boot=..;ns=..;pid=..;pstart=..;start=..;until=..;cache=..
  hpc-maintenance-target-<name> = v1;run=..;cache=..      (one per storage target it suspends)

`cache` is a hash of the cache's normalized id, so a tag copied onto another
cache names the wrong one and is ignored. The protocol and its invariants are
written down in docs/maintenance-protocol.md; in short:

I1 an entry leaves the record only after a resume of its target Succeeded;
I2 no state-changing request leaves unless, just before it, the record was
   read and the hold is this run's with time left to cover the request;
I3 another run is judged gone only by its bound (with room for clock skew),
   by a process identity that is certain (host, boot, PID namespace, pid,
   start time), or by the operator's take-over;
I4 a module whose playbook is gone sends no further state-changing request;
I5 a record write is never retried blindly: after any failure or delay the
   record is read again and the decision made again;
I6 release sends every resume before any cleanup, and one failed step never
   stops another target's resume.

The record is data from the service, not an order: anyone who may write the
cache's tags can ask for a resume of a target (a resume of a target that is
not suspended is harmless: the service accepts it). Names the API would
refuse are ignored, and no field is ever templated.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import typing as t
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.cache import summarize
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import RETRYABLE_STATUS, Response
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import (
    ArmError,
    HpcCacheError,
    TransportError,
    failure_of,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import Poller, Reading
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import (
    CacheOperations,
    CacheRef,
    TargetRef,
    normalized_id,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.target_actions import TargetAction, TargetTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.target import BUSY, FLUSHING, SUSPENDED, target_state
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.validation import STORAGE_TARGET_NAME_RE

HOLD_TAG = "hpc-maintenance-hold"
TARGET_TAG = "hpc-maintenance-target-"
FORMAT = "v1"
# After writing the hold, wait this long and read it back: two runs writing at once both read the
# last writer's hold, and only that one goes on.
SETTLE_SECONDS = 2.0
MAX_TAGS = 50  # ARM's limit per resource
MAX_VALUE = 256  # ARM's limit per tag value
MAX_HOLD = 30 * 24 * 3600  # a hold longer than this is no run's: ignored, and never written
# A controller's clock may differ from Azure's (the Date of its answers) by at most this much; a run whose
# clock is further off refuses to hold. Two controllers are then within twice this of each other, so a hold
# is judged past its bound only STALE_MARGIN after its until, on any controller's clock.
MAX_SKEW = 60
STALE_MARGIN = 2 * MAX_SKEW
# A state-changing request leaves only while the hold has at least this long to run (I2): the request's own
# bound (connect and read timeouts) with room to spare; the hold is renewed first when it has less.
FENCE_COVER = 120
# The holder stops (never renews, never sends) once its hold has less than this left on its own clock: another
# controller, its clock up to 2 * MAX_SKEW ahead, may judge the hold past its bound from until on, and a write
# takes up to a request's bound (connect and read) to land.
RENEW_BOUND = 70
# A target is gone only when two reads this far apart answer 404 and the cache's list of targets lacks it.
GONE_CONFIRM_SECONDS = 10.0
# After a write, the record is read until it shows the write (a read may show the old tags for a while).
STALE_READ_SECONDS = 15.0
# A record write answered 409, 429, 5xx or not at all: read again, decide again, write again, this many
# times at most (each after the service's Retry-After, or a growing pause).
MAX_WRITES = 8
# A record delete after a resume, refused (409, 429, 5xx), is tried this many times before it is left to the next run.
MAX_FORGETS = 3
# A resume answered 409 (another operation on the target): waited for and sent again, this many times at most.
MAX_RESUME_CONFLICTS = 30
# The states a target is read in before anyone decides whose it is: something runs on it.
UNSETTLED = frozenset((BUSY, FLUSHING))
KNOWN = frozenset(("ready", BUSY, SUSPENDED, FLUSHING))


def cache_hash(ref: CacheRef) -> str:
    return hashlib.sha256(normalized_id(ref).encode("utf-8")).hexdigest()[:16]


def _fields(value: str) -> t.Optional[t.Dict[str, str]]:
    parts = value.split(";")
    if not parts or parts[0] != FORMAT:
        return None
    found: t.Dict[str, str] = {}
    for part in parts[1:]:
        key, sep, val = part.partition("=")
        if not sep or not key.isalpha() or key in found:
            return None
        found[key] = val
    return found


def _int(text: t.Optional[str]) -> t.Optional[int]:
    return int(text) if text is not None and text.isascii() and text.isdigit() and len(text) <= 20 else None


@dataclass(frozen=True)
class Holder:
    run: str
    host: str
    boot: str
    pid: int
    pstart: int
    start: int
    until: int
    cache: str
    ns: str = ""  # the PID namespace of pid (empty in holds written before 0.5.1: never judged dead)

    def encode(self) -> str:
        text = "%s;run=%s;host=%s;boot=%s;ns=%s;pid=%d;pstart=%d;start=%d;until=%d;cache=%s" % (
            FORMAT, self.run, self.host, self.boot, self.ns, self.pid, self.pstart, self.start, self.until,
            self.cache)
        return text[:MAX_VALUE]

    @classmethod
    def parse(cls, value: str) -> t.Optional["Holder"]:
        found = _fields(value)
        if found is None:
            return None
        numbers = [_int(found.get(k)) for k in ("pid", "pstart", "start", "until")]
        if any(n is None for n in numbers) or not found.get("run") or not found.get("cache"):
            return None
        pid, pstart, start, until = t.cast(t.List[int], numbers)
        if until < start or until - start > MAX_HOLD:
            return None  # a hold no run takes: forged or broken, and ignored
        return cls(found["run"], found.get("host", ""), found.get("boot", ""), pid, pstart, start, until,
                   found["cache"], found.get("ns", ""))

    def describe(self) -> t.Dict[str, t.Any]:
        return {"run": self.run, "controller": self.host, "pid": self.pid, "started": self.start,
                "until": self.until}


def entry_value(run: str, cache: str) -> str:
    return "%s;run=%s;cache=%s" % (FORMAT, run, cache)


@dataclass(frozen=True)
class Record:
    """What the tags say: the hold (if any, of this cache) and the targets recorded, by run."""

    holder: t.Optional[Holder]
    entries: t.Dict[str, str]  # target name as recorded -> run
    tag_names: t.Dict[str, str]  # target name as recorded -> the tag name as the service spells it
    ignored: t.List[str]  # tags of ours that name another cache, another format, or an invalid target
    holder_tag: t.Dict[str, str]  # the hold's tag as the service spells it -> its value, as read


def read_record(tags: t.Mapping[str, str], cache: str) -> Record:
    holder: t.Optional[Holder] = None
    holder_tag: t.Dict[str, str] = {}
    entries: t.Dict[str, str] = {}
    names: t.Dict[str, str] = {}
    ignored: t.List[str] = []
    for name, value in tags.items():
        folded = str(name).casefold()
        if folded == HOLD_TAG:
            parsed = Holder.parse(str(value))
            if parsed is not None and parsed.cache == cache:
                holder = parsed
                holder_tag = {str(name): str(value)}
            else:
                ignored.append(str(name))
        elif folded.startswith(TARGET_TAG):
            target = str(name)[len(TARGET_TAG):]
            found = _fields(str(value))
            if (found is None or found.get("cache") != cache or not found.get("run")
                    or not STORAGE_TARGET_NAME_RE.fullmatch(target)):
                ignored.append(str(name))
                continue
            entries[target] = found["run"]
            names[target] = str(name)
    return Record(holder, entries, names, ignored, holder_tag)


# Where the record is kept ---------------------------------------------------------------------------
class WriteRefused(HpcCacheError):
    """A record write the service did not take, and that may be tried again after reading the record again:
    409 (another operation on the cache), 429, a 5xx, or no answer."""

    def __init__(self, message: str, retry_after: t.Optional[float]) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TagStore:
    """The cache's tags: read with the cache (GET), written through ARM's Tags API, one try at a time."""

    where = "tags of the cache"

    def __init__(self, ops: CacheOperations, ref: CacheRef, deadline: Deadline) -> None:
        self.ops, self.ref, self.deadline = ops, ref, deadline
        self.server_date: t.Optional[float] = None  # the Date of the last answer read, in seconds since 1970
        self.watch: t.Optional[t.Callable[[], None]] = None  # called while an accepted (202) write is pending

    def read(self) -> t.Dict[str, str]:
        response = self.ops.client.get(self.ops.cache_url(self.ref), deadline=self.deadline.at)
        self.server_date = _date_of(response)
        tags = response.json_object().get("tags")
        return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}

    def _patch(self, operation: str, tags: t.Mapping[str, str]) -> None:
        """One write. 200 is done; 202 is followed to its end (Location, or Azure-AsyncOperation); a
        transient answer or none raises WriteRefused, any other error ArmError (nothing to retry)."""
        body = {"operation": operation, "properties": {"tags": dict(tags)}}
        try:
            response = self.ops.client.patch_json(self.ops.tags_url(self.ref), body, deadline=self.deadline.at,
                                                  retry=False)
        except ArmError as exc:
            if exc.status in RETRYABLE_STATUS or exc.status == 409:
                raise WriteRefused(exc.message, _retry_after_of(exc)) from None
            raise
        except TransportError as exc:
            raise WriteRefused(exc.message, None) from None
        if response.status == 202:
            async_url = response.headers.get("Azure-AsyncOperation")
            location = response.headers.get("Location")
            if async_url or location:
                self._follow(async_url, location, response.retry_after())

    def _follow(self, async_url: t.Optional[str], location: t.Optional[str], first: t.Optional[float]) -> None:
        """Follow an accepted write to its end, calling watch() before every status read (the record is
        watched while a write of the hold is pending: another run's hold seen meanwhile is a conflict)."""
        poller = Poller(self.ops.client)
        url = self.ops.client.absolute(async_url or location or "")
        delay = first or 1.0
        while True:
            if not self.deadline.pause(max(delay, 1.0)):
                raise HpcCacheError("The write of the maintenance record on %s was accepted but did not end in "
                                    "time" % self.ref.name)
            if self.watch is not None:
                self.watch()
            reading = (poller.read_async_operation(url, deadline=self.deadline) if async_url
                       else poller.read_location(url, deadline=self.deadline))
            if reading.done:
                if reading.status != "Succeeded":
                    raise HpcCacheError("The write of the maintenance record on %s ended %s"
                                        % (self.ref.name, reading.status))
                return
            delay = reading.retry_after or 1.0

    def merge(self, tags: t.Mapping[str, str]) -> None:
        self._patch("Merge", tags)

    def delete(self, tags: t.Mapping[str, str]) -> None:
        if tags:
            self._patch("Delete", tags)


class FileStore:
    """A controller-local record (opt-in, where the cache's tags cannot be written): one JSON file per
    cache under a directory of mode 0700, changed under an exclusive lock (a lock file beside it, waited for
    within the run's deadline) and replaced whole (written aside, synced, renamed), so a killed run never
    leaves it torn. An unreadable record fails the run and is kept as it is. Only this controller sees it."""

    where = "controller-local record"
    server_date: t.Optional[float] = None

    def __init__(self, directory: str, ref: CacheRef, deadline: t.Optional[Deadline] = None) -> None:
        self.directory = os.path.expanduser(directory)
        self.path = os.path.join(self.directory, "%s.json" % cache_hash(ref))
        self.deadline = deadline

    def _lock(self, handle: t.Any, kind: int) -> None:
        while True:
            try:
                fcntl.flock(handle, kind | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise HpcCacheError("Cannot lock the controller-local record %s: %s" % (self.path, exc))
            if self.deadline is None or not self.deadline.pause(0.2):
                raise HpcCacheError("The controller-local record %s stayed locked by another process until this "
                                    "task's deadline" % self.path)

    def _locked(self, kind: int) -> t.Any:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        handle = os.fdopen(os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600), "r+")
        try:
            self._lock(handle, kind)
        except BaseException:
            handle.close()
            raise
        return handle

    def _load(self) -> t.Dict[str, str]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return {}
            raise HpcCacheError("Cannot read the controller-local record %s: %s" % (self.path, exc))
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise HpcCacheError("The controller-local record %s is unreadable; it is kept as it is, and nothing was "
                                "sent: look at it, and remove it once no target it names is suspended" % self.path)
        return {str(k): str(v) for k, v in data.items()}

    def _change(self, change: t.Callable[[t.Dict[str, str]], None]) -> None:
        with self._locked(fcntl.LOCK_EX):
            tags = self._load()
            change(tags)
            aside = self.path + ".new"
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(tags, sort_keys=True))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(aside, self.path)
            folder = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)

    def read(self) -> t.Dict[str, str]:
        with self._locked(fcntl.LOCK_SH):
            return self._load()

    def merge(self, tags: t.Mapping[str, str]) -> None:
        self._change(lambda now: now.update(tags))

    def delete(self, tags: t.Mapping[str, str]) -> None:
        def drop(now: t.Dict[str, str]) -> None:
            for name, value in tags.items():
                if now.get(name) == value:
                    now.pop(name, None)

        self._change(drop)


def _date_of(response: Response) -> t.Optional[float]:
    text = response.headers.get("Date")
    if not text:
        return None
    try:
        return parsedate_to_datetime(str(text)).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _retry_after_of(exc: ArmError) -> t.Optional[float]:
    return exc.retry_after


# Who runs here -----------------------------------------------------------------------------------
def _proc_stat(pid: int) -> t.Optional[t.Tuple[int, int]]:
    """(parent pid, start time in clock ticks since boot) of a process, from /proc; None where unknown."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="utf-8") as handle:
            return handle.read().strip()[:8]
    except OSError:
        return ""


def pid_namespace() -> str:
    """The PID namespace this process sees others in (its inode number), or "" where it cannot be told."""
    try:
        link = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    digits = "".join(c for c in link if c.isdigit())
    return digits[:20]


def playbook_process(start: t.Optional[int] = None) -> t.Tuple[int, int]:
    """The ansible-playbook process this module runs under (the topmost of its ancestors whose command line
    names ansible-playbook), as (pid, start time); (0, 0) where it cannot be told."""
    found = (0, 0)
    pid = start or os.getpid()
    for _hop in range(32):
        stat = _proc_stat(pid)
        if stat is None:
            break
        if "ansible-playbook" in _cmdline(pid):
            found = (pid, stat[1])
        elif found != (0, 0):
            break
        if stat[0] <= 1:
            break
        pid = stat[0]
    return found


def process_alive(pid: int, pstart: int) -> bool:
    """Whether the process pid, started at pstart, still runs (in this PID namespace)."""
    stat = _proc_stat(pid)
    return stat is not None and stat[1] == pstart


@dataclass(frozen=True)
class Identity:
    """Who a run is: its controller, boot, PID namespace and playbook process. ``alive`` answers whether a
    process still runs (on this controller, in this namespace); ``parent`` is the process whose end ends this
    module's run (its playbook), checked before every state-changing request (I4)."""

    host: str
    boot: str
    ns: str
    pid: int
    pstart: int
    alive: t.Callable[[int, int], bool] = process_alive

    @classmethod
    def here(cls, host: str) -> "Identity":
        pid, pstart = playbook_process()
        return cls(host[:63], boot_id(), pid_namespace(), pid, pstart)

    def judge(self, holder: Holder) -> t.Optional[bool]:
        """Whether the holder's process still runs: known only where that is certain (I3): the same
        controller, boot and PID namespace, and a pid and start time recorded; None elsewhere."""
        if (not holder.pid or not holder.pstart or not holder.ns or not self.boot or not self.ns
                or holder.host != self.host or holder.boot != self.boot or holder.ns != self.ns):
            return None
        return self.alive(holder.pid, holder.pstart)

    def run_alive(self) -> bool:
        """Whether the playbook this module runs under still runs; True where it cannot be told."""
        return not self.pid or self.alive(self.pid, self.pstart)


class Stopped(HpcCacheError):
    """The run must send nothing more. Never an ArmError or TransportError, so no action takes it for the
    answer to its own request."""


class RunGone(Stopped):
    """The playbook this module runs under has ended (a canceled job, a killed run): nothing more is sent."""


class HoldLost(Stopped):
    """The hold is no longer this run's, or has too little time left: nothing more is sent."""


class FenceFailed(Stopped):
    """The record could not be read just before a request that changes a target: the request is not sent."""


# The record's life --------------------------------------------------------------------------------
class MaintenanceRecord:
    """Check, take and give back the hold on one cache for one run; suspend the targets recorded for it;
    recover an interrupted run's targets. Every state-changing request goes through the fence (I2, I4)."""

    def __init__(self, ops: CacheOperations, ref: CacheRef, *, run: str, controller: str, hold_seconds: int,
                 take_over: bool, local_record: t.Optional[str], wait_timeout: int, poll_interval: int,
                 confirm_timeout: int, check_mode: bool, wall_clock: t.Callable[[], float],
                 process: t.Optional[t.Tuple[int, int]] = None, boot: t.Optional[str] = None,
                 identity: t.Optional[Identity] = None, deadline: t.Optional[Deadline] = None) -> None:
        self.ops, self.ref, self.run_id = ops, ref, run
        if identity is None:
            here = Identity.here(controller)
            identity = Identity(controller[:63], boot if boot is not None else here.boot, here.ns,
                                *(process if process is not None else (here.pid, here.pstart)))
        self.identity = identity
        if identity.pid:  # every wait of this run ends within one pause once its playbook is gone (I4)
            ops.client.sleep = _watched(ops.client.sleep, identity)
        self.controller = identity.host
        self.hold_seconds = min(hold_seconds, MAX_HOLD)
        self.take_over = take_over
        self.wait_timeout, self.poll_interval, self.confirm_timeout = wait_timeout, poll_interval, confirm_timeout
        self.check_mode = check_mode
        self.wall_clock = wall_clock
        self.cache = cache_hash(ref)
        self.deadline = deadline or Deadline.after(wait_timeout, clock=ops.client.clock, sleep=ops.client.sleep)
        self.tags = TagStore(ops, ref, self.deadline)
        self.local = FileStore(local_record, ref, self.deadline) if local_record else None
        self.result: t.Dict[str, t.Any] = {"changed": False, "recovered": [], "warnings": []}
        self._hold_values: t.List[str] = []  # the hold as the last read of the cache's tags showed it

    # Reading ------------------------------------------------------------------------------------
    def _stores(self) -> t.List[t.Tuple[t.Any, Record]]:
        stores: t.List[t.Tuple[t.Any, Record]] = [(self.tags, read_record(self.tags.read(), self.cache))]
        self._hold_values = list(stores[0][1].holder_tag.values())
        self._check_clock()
        if self.local is not None:
            stores.append((self.local, read_record(self.local.read(), self.cache)))
        return stores

    def _check_clock(self) -> None:
        """Refuse to act on a hold's bound while this controller's clock is far from Azure's (I3)."""
        if self.tags.server_date is None:
            return
        skew = self.wall_clock() - self.tags.server_date
        if abs(skew) > MAX_SKEW:
            raise HpcCacheError(
                "This controller's clock is %d s %s Azure's (the Date of its answers); a maintenance hold's bound "
                "is only safe within %d s. Nothing was sent: set the clock right (NTP) and run again"
                % (abs(skew), "ahead of" if skew > 0 else "behind", MAX_SKEW), clock_skew=round(skew))

    def _judge(self, holder: Holder) -> str:
        """ours, live (another run within its bound), stale (past it, with room for skew), dead (its process
        is certainly gone)."""
        if holder.run == self.run_id:
            return "ours"
        # past its bound only on a clock checked against Azure's (a Date read, within MAX_SKEW): without one,
        # no bound is judged passed (fail closed), and only a certain death or a take-over recovers the hold
        if self.tags.server_date is not None and self.wall_clock() >= holder.until + STALE_MARGIN:
            return "stale"
        if self.identity.judge(holder) is False:
            return "dead"
        return "live"

    def _report(self, stores: t.List[t.Tuple[t.Any, Record]]) -> None:
        holders = [(store, rec.holder) for store, rec in stores if rec.holder is not None]
        entries = {name: run for _store, rec in stores for name, run in rec.entries.items()}
        self.result["record"] = {
            "holder": dict(holders[0][1].describe(), state=self._judge(holders[0][1]), kept_in=holders[0][0].where)
            if holders else None,
            "storage_targets": sorted(entries),
            "ignored_tags": sorted(name for _store, rec in stores for name in rec.ignored),
        }
        for _store, rec in stores:
            if rec.ignored:
                self.result["warnings"].append(
                    "Ignored maintenance tags that name another cache or are malformed: %s" % ", ".join(rec.ignored))

    def _refuse_live(self, holder: Holder) -> None:
        raise HpcCacheError(
            "The cache %s is held by another maintenance run (run %s on controller %s, pid %d, since %s, until %s): "
            "nothing was sent. Wait for it to end, or, if that run is gone (its job killed or its controller lost), "
            "rerun with cache_maintenance_take_over: true to recover what it suspended first"
            % (self.ref.name, holder.run, holder.host or "unknown", holder.pid, _iso(holder.start), _iso(holder.until)),
            record=self.result.get("record"))

    def check(self) -> t.Dict[str, t.Any]:
        """Read only: fail while another live run holds the cache; report an interrupted run's record."""
        stores = self._stores()
        self._report(stores)
        for _store, rec in stores:
            if rec.holder is not None and self._judge(rec.holder) == "live":
                if not self.take_over:
                    self._refuse_live(rec.holder)
                self.result["warnings"].append(
                    "The cache %s is held by run %s on controller %s until %s; taken over on the operator's word "
                    "(take_over): the backend run recovers it first" % (self.ref.name, rec.holder.run,
                                                                        rec.holder.host or "unknown",
                                                                        _iso(rec.holder.until)))
        stale = sorted({n for _s, rec in stores for n, run in rec.entries.items() if run != self.run_id})
        if stale:
            self.result["warnings"].append(
                "An interrupted maintenance run left storage targets %s recorded on the cache; the next backend "
                "maintenance run resumes them first (this run sends nothing)" % ", ".join(stale))
        self.result["msg"] = "The cache %s is not held by a live maintenance run%s" % (
            self.ref.name, "; an interrupted run's record is waiting for recovery" if stale else "")
        return self.result

    # Before the hold ------------------------------------------------------------------------------
    def gate(self, allowed_states: t.Sequence[str]) -> None:
        """Refuse a cache whose health state is not one of allowed_states (any case), before anything is sent.

        Backend maintenance has no state that passes whatever the list says: a Flushing, Stopped or
        Upgrading cache is refused unless listed."""
        cache = summarize(self.ops.get(self.ref, self.deadline.at))
        state, description = cache["health_state"], cache["health_description"]
        self.result.update(health_state=state, health_description=description)
        if state.casefold() not in {a.strip().casefold() for a in allowed_states}:
            raise HpcCacheError(
                "Refusing backend maintenance on %s: its health state is %s%s; allowed states are %s (allowed_states). "
                "Nothing was suspended." % (self.ref.name, state, " (%s)" % description if description else "",
                                            ", ".join(allowed_states) or "none"),
                status="Refused", health_state=state, health_description=description)

    def resolve(self, asked: t.Sequence[str]) -> t.List[str]:
        """The storage targets asked for, in the service's spelling (ARM names are case-insensitive), once
        each; ['*'] is every target of the cache. A name the cache does not have fails, naming those it has."""
        known: t.List[str] = []
        for target in self.ops.list_targets(self.ref, self.deadline.at):
            name = target.get("name") if isinstance(target, dict) else None
            if isinstance(name, str) and STORAGE_TARGET_NAME_RE.fullmatch(name):
                known.append(name)
        spelled = {name.casefold(): name for name in known}
        wanted = known if list(asked) == ["*"] else list(asked)
        first: t.Dict[str, str] = {}
        for name in wanted:
            first.setdefault(name.casefold(), name)  # once each, in the order asked
        names = list(first.values())
        missing = [name for name in names if name.casefold() not in spelled]
        if missing:
            raise HpcCacheError("The cache %s has no storage target %s (storage_targets); it has %s. Nothing was "
                                "suspended." % (self.ref.name, ", ".join(missing), ", ".join(known) or "none"))
        return [spelled[name.casefold()] for name in names]

    # Taking the hold -----------------------------------------------------------------------------
    def hold(self, targets: t.Sequence[str]) -> t.Dict[str, t.Any]:
        """Take the hold, recover what an interrupted run left, and record the targets to suspend.

        The hold is taken and read back before anything else is sent, so two runs never recover or
        suspend at once. It is sized to cover the flush and suspend of every target (2 waits a target,
        and one more), and at least the hold asked for; the fence renews it before any request it would
        not cover.
        """
        if targets:
            self.hold_seconds = min(MAX_HOLD, max(self.hold_seconds, self.wait_timeout * (2 * len(targets) + 1)))
        stores = self._stores()
        self._report(stores)
        self._recoverable(stores)
        if self.check_mode:  # what the run would do, read only
            self._recover(stores)
            to_suspend, skipped = self._decide(targets)
            self.result.update(to_suspend=to_suspend, not_ours=skipped,
                               msg="Check mode: the hold on %s would be taken" % self.ref.name)
            return self.result
        self._room(stores, len(targets))
        store = self._take()  # a failed take drops nothing: the hold it read may be another run's by now
        try:
            self._recover(self._stores())
            to_suspend, skipped = self._decide(targets)
            self.result["not_ours"] = skipped
            if to_suspend:
                entries = {TARGET_TAG + name: entry_value(self.run_id, self.cache) for name in to_suspend}
                self._write(store, "Merge", entries, "the storage targets it suspends", self._still_ours,
                            lambda rec: all(rec.entries.get(n) == self.run_id for n in to_suspend))
        except BaseException:
            self._drop_own()  # nothing of this run was suspended yet: its hold must not outlive the failure
            raise
        self.result.update(to_suspend=to_suspend, kept_in=store.where, changed=True,
                           msg="The cache %s is held by run %s until %s (%s); recorded for suspension: %s"
                               % (self.ref.name, self.run_id, _iso(self._until()), store.where,
                                  ", ".join(to_suspend) or "none"))
        return self.result

    def renew(self) -> t.Dict[str, t.Any]:
        """Extend this run's hold; it recovers nothing, and fails when the hold is no longer this run's."""
        stores = self._stores()
        self._report(stores)
        if self.check_mode:  # check mode took no hold: there is nothing to renew
            self.result["msg"] = "Check mode: the hold on %s would be renewed" % self.ref.name
            return self.result
        self._renew(self._store_of_hold(stores)[0])
        self.result["changed"] = True
        self.result["msg"] = "The hold on %s is renewed until %s" % (self.ref.name, _iso(self._until()))
        return self.result

    def _store_of_hold(self, stores: t.List[t.Tuple[t.Any, Record]]) -> t.Tuple[t.Any, Holder]:
        """The store that holds this run's hold. A read that shows another hold, or none, is read again for up
        to STALE_READ_SECONDS (a read may show the tags as they were), then HoldLost."""
        waited, delay = 0.0, 1.0
        while True:
            mine = [(store, rec.holder) for store, rec in stores
                    if rec.holder is not None and rec.holder.run == self.run_id]
            if mine:
                return mine[0]
            if waited >= STALE_READ_SECONDS or not self.deadline.pause(delay):
                holder = next((rec.holder for _s, rec in stores if rec.holder is not None), None)
                raise HoldLost("The hold on %s is no longer this run's (%s): nothing more is sent by this run"
                               % (self.ref.name, "run %s holds it" % holder.run if holder else "it is gone"))
            waited += delay
            delay = min(delay * 2, 5.0)
            stores = self._stores()

    def _renew(self, store: t.Any) -> None:
        holder = self._holder()
        self._write(store, "Merge", {HOLD_TAG: holder.encode()}, "its hold", self._still_ours,
                    lambda rec: rec.holder is not None and rec.holder.run == self.run_id
                    and rec.holder.until >= holder.until)

    def _still_ours(self, stores: t.List[t.Tuple[t.Any, Record]]) -> None:
        """The decision behind a write of this run's record, made again: the hold is still this run's, and not
        so far past its bound that another run may be recovering it already."""
        _store, holder = self._store_of_hold(stores)
        if self.wall_clock() >= holder.until - RENEW_BOUND:
            raise HoldLost("The hold on %s ran out at %s (this run was paused or slow past its bound): another run "
                           "may be recovering it, so this run sends nothing more" % (self.ref.name, _iso(holder.until)))

    def _recoverable(self, stores: t.List[t.Tuple[t.Any, Record]]) -> None:
        """Refuse a live hold of another run (unless taken over); any other hold, and every entry of another
        run, is recovered once this run holds the cache."""
        for _store, rec in stores:
            if rec.holder is None or rec.holder.run == self.run_id:
                continue
            if self._judge(rec.holder) == "live" and not self.take_over:
                self._refuse_live(rec.holder)

    def _room(self, stores: t.List[t.Tuple[t.Any, Record]], targets: int) -> None:
        """Refuse before writing anything when the cache's tags have no room for the record."""
        existing = self.tags.read()
        ours = sum(1 for k in existing if k.casefold() == HOLD_TAG or k.casefold().startswith(TARGET_TAG))
        needed = 1 + targets
        if self.local is None and len(existing) - ours + needed > MAX_TAGS:
            raise HpcCacheError(
                "The cache %s has %d tags; the record of this run needs %d more and ARM allows %d. Nothing was "
                "written or suspended: remove tags, or set cache_maintenance_local_record: true"
                % (self.ref.name, len(existing), needed, MAX_TAGS))

    def _drop_own(self) -> None:
        try:
            stores = self._stores()
        except HpcCacheError:
            return  # the failure that brought us here is the one to report
        for store, rec in stores:
            mine = {rec.tag_names[n]: entry_value(self.run_id, self.cache) for n, run in rec.entries.items()
                    if run == self.run_id}
            if rec.holder is not None and rec.holder.run == self.run_id:
                mine.update(rec.holder_tag)
            if mine:
                try:
                    store.delete(mine)
                except HpcCacheError:
                    pass  # the failure that brought us here is the one to report

    def _until(self) -> int:
        return int(self.wall_clock()) + self.hold_seconds

    def _holder(self) -> Holder:
        ident = self.identity
        return Holder(self.run_id, ident.host, ident.boot, ident.pid, ident.pstart, int(self.wall_clock()),
                      self._until(), self.cache, ident.ns)

    def _take(self) -> t.Any:
        """Write this run's hold and read it back. Where the cache's tags refuse it, the opt-in local record."""
        before: t.Dict[str, t.Optional[str]] = {}
        runs: t.Set[str] = set()  # the runs with entries in the record as read before this run wrote

        def decide(stores: t.List[t.Tuple[t.Any, Record]]) -> None:
            self._recoverable(stores)  # read again, judged again (I5)
            before.clear()
            before.update({store.where: next(iter(rec.holder_tag.values()), None) for store, rec in stores})
            runs.clear()
            runs.update(run for _s, rec in stores for run in rec.entries.values())

        def shows(rec: Record) -> bool:
            return rec.holder is not None and rec.holder.run == self.run_id

        def lost(rec: Record) -> bool:
            # another run's hold that is not the one read before this run wrote: it wrote at the same moment; or
            # entries of a run not recorded before: another run took the cache and went on while this run's write
            # was on its way (this run's hold then replaced that run's)
            value = next(iter(rec.holder_tag.values()), None)
            if rec.holder is not None and rec.holder.run != self.run_id and value not in before.values():
                return True
            return any(run not in runs and run != self.run_id for run in rec.entries.values())

        decide(self._stores())
        try:
            return self._write(self.tags, "Merge", {HOLD_TAG: self._holder().encode()}, "its hold", decide, shows,
                               lost=lost, settle=True)
        except HoldLost as exc:
            self._drop_hold_if_ours()
            raise HpcCacheError("Another maintenance run took the hold on %s at the same moment (%s); nothing was "
                                "suspended" % (self.ref.name, exc.message)) from None

    def _drop_hold_if_ours(self) -> None:
        """Remove this run's hold where it replaced a run that went on (that run then reads no hold, stops, and
        takes the cache again to resume what it recorded): never another run's."""
        try:
            rec = read_record(self.tags.read(), self.cache)
            if rec.holder is not None and rec.holder.run == self.run_id:
                self.tags.delete(rec.holder_tag)
        except HpcCacheError:
            pass

    def _write(self, store: t.Any, operation: str, tags: t.Mapping[str, str], what: str,
               decide: t.Callable[[t.List[t.Tuple[t.Any, Record]]], None], shows: t.Callable[[Record], bool],
               lost: t.Optional[t.Callable[[Record], bool]] = None, settle: bool = False) -> t.Any:
        """Write to the record and read it back until it shows the write (I5).

        Before every try but the first the record is read again and decide() judges again (it raises when
        the write is no longer right). A write answered 409, 429, 5xx or not at all is tried again after the
        service's Retry-After (or a growing pause), at most MAX_WRITES times. A read that shows the old record
        is read again for up to STALE_READ_SECONDS; lost(record) says another run's write won. Where the
        cache's tags refuse the write for good, the opt-in local record takes it."""
        refused: t.Optional[WriteRefused] = None
        for attempt in range(MAX_WRITES):
            if attempt:
                delay = refused.retry_after if refused and refused.retry_after else min(2.0 ** attempt, 30.0)
                if not self.deadline.pause(delay):
                    break
                decide(self._stores())
            foreign: t.List[str] = []
            try:
                if store is self.tags and operation == "Merge" and HOLD_TAG in tags:
                    self.tags.watch = self._watch_hold(foreign)
                store.merge(tags) if operation == "Merge" else store.delete(tags)
            except WriteRefused as exc:
                refused = exc
                continue
            except ArmError as exc:
                if store is not self.tags:
                    raise
                return self._write_locally(exc, operation, tags, what, decide, shows, lost)
            finally:
                self.tags.watch = None
            self.result["changed"] = True
            if foreign:
                self._put_back(foreign[-1])
            if settle:
                self.ops.client.sleep(SETTLE_SECONDS)  # a run writing at the same moment has written by now
            self._read_back(store, what, shows, lost)
            return store
        raise HpcCacheError("The record of this run (%s) could not be written on the cache %s: %s. Nothing was "
                            "suspended or resumed by this step" % (what, self.ref.name,
                                                                   refused.message if refused else "no time left"))

    def _watch_hold(self, foreign: t.List[str]) -> t.Callable[[], None]:
        """While this run's write of its hold is pending (202), note every other run's hold that shows up: that
        run took the cache meanwhile, and this run's write, landing later, replaces its hold."""
        known = set(self._hold_values)

        def watch() -> None:
            rec = read_record(self.tags.read(), self.cache)
            value = next(iter(rec.holder_tag.values()), None)
            if rec.holder is not None and rec.holder.run != self.run_id and value not in known:
                if value not in foreign:
                    foreign.append(str(value))

        return watch

    def _put_back(self, value: str) -> None:
        """Another run took the hold while this run's write of its hold was pending: put that run's hold back
        where this run's write replaced it, and send nothing more (a late write never takes a held cache)."""
        other = Holder.parse(value)
        who = other.run if other else "another"
        outcome = "this run's hold could not be put right (the cache refused every write): it ends at its bound"
        for attempt in range(MAX_WRITES):
            if attempt and not self.deadline.pause(min(2.0 ** attempt, 10.0)):
                break
            try:
                rec = read_record(self.tags.read(), self.cache)
                if rec.holder is None or rec.holder.run != self.run_id:
                    outcome = "its hold is back"
                    break  # this run's hold is not there (any more): nothing to put back
                self.tags.merge({HOLD_TAG: value})
            except (WriteRefused, ArmError, TransportError):
                continue
        else:
            # it could not be put back: at least take this run's own hold away, so the other run is not refused
            # by a hold nobody works under (it then reads no hold, and stops or takes the cache again)
            try:
                rec = read_record(self.tags.read(), self.cache)
                if rec.holder is not None and rec.holder.run == self.run_id:
                    self.tags.delete(rec.holder_tag)
                    outcome = "its hold could not be put back, so this run's was removed"
            except HpcCacheError:
                pass
        raise HoldLost("run %s took the hold while this run's write of its own was pending; %s, and this run sends "
                       "nothing more" % (who, outcome))

    def _write_locally(self, exc: ArmError, operation: str, tags: t.Mapping[str, str], what: str,
                       decide: t.Callable[[t.List[t.Tuple[t.Any, Record]]], None], shows: t.Callable[[Record], bool],
                       lost: t.Optional[t.Callable[[Record], bool]]) -> t.Any:
        if self.local is None:
            raise HpcCacheError(
                "The record of this run (%s) could not be written on the cache %s: %s. Nothing was suspended. "
                "Grant Microsoft.Resources/tags/write on the cache (and keep its tags under %d), or set "
                "cache_maintenance_local_record: true to keep the record on this controller only: a run on "
                "another controller (another AWX job) then cannot see it, so cannot wait for this run nor "
                "recover what it suspended if it is interrupted" % (what, self.ref.name, exc.message, MAX_TAGS))
        self.result["warnings"].append(
            "The record could not be written on the cache (%s); it is kept on this controller only (%s): a run "
            "on another controller cannot see it" % (exc.message, self.local.path))
        return self._write(self.local, operation, tags, what, decide, shows, lost)

    def _read_back(self, store: t.Any, what: str, shows: t.Callable[[Record], bool],
                   lost: t.Optional[t.Callable[[Record], bool]]) -> None:
        """Read the store until it shows the write; a read may show the old record for a while (bounded)."""
        waited = 0.0
        delay = 1.0
        while True:
            rec = read_record(store.read(), self.cache)
            if lost is not None and lost(rec):
                holder = rec.holder
                other = holder if holder is not None and holder.run != self.run_id else None
                raise HoldLost("run %s on controller %s" % (other.run, other.host) if other
                               else "another run recorded its targets meanwhile")
            if shows(rec):
                return
            if waited >= STALE_READ_SECONDS or not self.deadline.pause(delay):
                raise HpcCacheError("The cache %s did not show the record of this run (%s) within %d s of writing "
                                    "it: nothing more was sent" % (self.ref.name, what, int(waited)))
            waited += delay
            delay = min(delay * 2, 5.0)

    # The fence (I2, I4) ---------------------------------------------------------------------------
    def fence(self, _method: str = "POST", _url: str = "") -> None:
        """Just before a state-changing request: the playbook still runs, and the record, read now, shows
        this run's hold with at least FENCE_COVER seconds left (renewed first when it has less). A read that
        fails stops the request (FenceFailed): it is never taken for the request's own answer."""
        self._alive()
        try:
            stores = self._stores()
            self._still_ours(stores)
            store, holder = self._store_of_hold(stores)
            if holder.until - self.wall_clock() < FENCE_COVER:
                self.hold_seconds = max(self.hold_seconds, 2 * FENCE_COVER)
                self._alive()
                self._renew(store)  # read back until it shows the new bound, or HoldLost
        except Stopped:
            raise
        except HpcCacheError as exc:
            raise FenceFailed("The record on %s could not be read before a request that changes a storage target "
                              "(%s): the request was not sent" % (self.ref.name, failure_of(exc)[0])) from None
        self._alive()

    def _alive(self) -> None:
        if not self.identity.run_alive():
            raise RunGone("The playbook of maintenance run %s has ended (a canceled job or a killed run): this "
                          "module sends nothing more; the record stays on the cache %s, and the next run resumes "
                          "what this one recorded" % (self.run_id, self.ref.name))

    def _fenced(self) -> "_Fenced":
        return _Fenced(self)

    # Suspending ----------------------------------------------------------------------------------
    def _settle(self, ref: TargetRef, state: str) -> t.Tuple[t.Optional[str], int]:
        """Wait while a target reads Busy, Flushing or a state the API does not name; None once it is gone."""
        if state.strip().casefold() in KNOWN - UNSETTLED:
            return state, 0
        last: t.Dict[str, t.Optional[str]] = {"state": state}

        def read() -> Reading:
            try:
                body = self.ops.get_target(ref, self.deadline.at)
            except ArmError as exc:
                if exc.status == 404:
                    last["state"] = None
                    return Reading(True, status="Gone")
                raise
            now = target_state(body)
            last["state"] = now
            folded = now.strip().casefold()
            return Reading(folded in KNOWN and folded not in UNSETTLED, status=now)

        poll = Poller(self.ops.client).wait_until(
            read, deadline=self.deadline, poll_interval=self.poll_interval,
            subject="the storage target %s of cache %s (it read %s) to settle" % (ref.name, self.ref.name, state))
        return last["state"], poll.polls

    def _decide(self, targets: t.Sequence[str]) -> t.Tuple[t.List[str], t.List[t.Dict[str, str]]]:
        """Which of the targets this run will suspend: not those someone else suspended or is suspending."""
        to_suspend: t.List[str] = []
        skipped: t.List[t.Dict[str, str]] = []
        for name in targets:
            ref = TargetRef(self.ref, name)
            state, _polls = self._settle(ref, target_state(self.ops.get_target(ref, self.deadline.at)))
            if state is None:
                raise HpcCacheError("The storage target %s of cache %s is gone; nothing was suspended"
                                    % (name, self.ref.name))
            if state.strip().casefold() == SUSPENDED:
                skipped.append({"name": name, "state": state,
                                "why": "it was %s before the run" % state})
            else:
                to_suspend.append(name)
        return to_suspend, skipped

    def recorded(self) -> t.List[str]:
        """The storage targets recorded for this run, in the record's spelling."""
        return sorted({n for _s, rec in self._stores() for n, run in rec.entries.items() if run == self.run_id})

    def suspend(self, targets: t.Sequence[str], flush: bool) -> t.Dict[str, t.Any]:
        """Flush (when asked) and suspend each target recorded for this run, one after the other, every
        request behind the fence. The first failure stops the rest; release resumes whatever was recorded."""
        stores = self._stores()
        self._report(stores)
        recorded = {n.casefold(): n for _s, rec in stores for n, run in rec.entries.items() if run == self.run_id}
        rows: t.List[t.Dict[str, t.Any]] = []
        self.result["targets"] = rows
        if self.check_mode:
            for name in targets:
                rows.append({"name": name, "changed": True, "operations": [], "state_before": "Unknown", "flush": flush,
                             "msg": "check mode: it would be %ssuspended" % ("flushed and " if flush else "")})
            self.result["msg"] = "Check mode: %s would be suspended" % (", ".join(targets) or "nothing")
            return self.result
        self._store_of_hold(stores)
        missing = [n for n in targets if n.casefold() not in recorded]
        if missing:
            raise HpcCacheError("The storage targets %s are not recorded for run %s on the cache %s: nothing was "
                                "suspended (the record must name a target before its suspend is sent)"
                                % (", ".join(missing), self.run_id, self.ref.name))
        with self._fenced():
            for name in targets:
                task = TargetTask(self.ops, TargetRef(self.ref, recorded[name.casefold()]), state="suspended",
                                  flush=flush, dns_refresh=False, wait=True, poll_interval=self.poll_interval,
                                  check_mode=False, deadline=self.deadline, confirm_timeout=self.confirm_timeout)
                try:
                    outcome = task.run()
                except HpcCacheError as exc:
                    rows.append(dict(task.result, name=name, failed=True, msg=failure_of(exc)[0]))
                    self.result["changed"] = self.result["changed"] or bool(task.result.get("operations"))
                    raise HpcCacheError("Suspending the storage target %s of cache %s failed: %s. Nothing more was "
                                        "suspended; the release resumes every target this run recorded"
                                        % (name, self.ref.name, failure_of(exc)[0]), targets=rows) from None
                rows.append(dict(outcome, name=name))
                self.result["changed"] = self.result["changed"] or bool(outcome.get("changed"))
        self.result["msg"] = "Suspended: %s" % (", ".join(r["name"] for r in rows) or "none")
        return self.result

    # Recovery ------------------------------------------------------------------------------------
    def _recover(self, stores: t.List[t.Tuple[t.Any, Record]]) -> None:
        """Resume every target another run recorded, whatever it reads (after waiting while it is busy), and
        forget each entry only once its resume Succeeded (I1). One failure stops no other (I6)."""
        failed: t.List[t.Dict[str, t.Any]] = []
        with self._fenced():
            for store, rec in stores:
                others = {n: run for n, run in rec.entries.items() if run != self.run_id}
                for name, run in sorted(others.items()):
                    row = self._recover_one(name, run)
                    self.result["recovered"].append(row)
                    if row["outcome"] in ("resumed", "gone") and not self.check_mode:
                        self._forget(store, rec.tag_names[name], entry_value(run, self.cache), row)
                    elif row["outcome"] == "failed":
                        failed.append(row)
        if failed:
            raise HpcCacheError(
                "Recovering the storage targets %s of cache %s, left by an interrupted run, failed: %s. They stay "
                "recorded, nothing was suspended, and the next run resumes them first"
                % (", ".join(r["name"] for r in failed), self.ref.name,
                   "; ".join("%s (it read %s): %s" % (r["name"], r.get("state_before", "Unknown"), r["msg"])
                             for r in failed)), recovered=self.result["recovered"])

    def _recover_one(self, name: str, run: str) -> t.Dict[str, t.Any]:
        ref = TargetRef(self.ref, name)
        row: t.Dict[str, t.Any] = {"name": name, "run": run}
        try:
            first = target_state(self.ops.get_target(ref, self.deadline.at))
            row["state_before"] = first
            state, _polls = self._settle(ref, first)
        except ArmError as exc:
            if exc.status != 404:
                return dict(row, outcome="failed", msg=exc.message)
            state = None
        except HpcCacheError as exc:
            return dict(row, outcome="failed", msg=failure_of(exc)[0])
        if state is None and not self._gone(ref):
            return dict(row, outcome="failed", msg="the target answered 404 once, but the cache still lists it")
        if state is None:
            self.result["warnings"].append("The storage target %s recorded by run %s no longer exists" % (name, run))
            return dict(row, outcome="gone", msg="the target no longer exists")
        if self.check_mode:
            return dict(row, outcome="would resume", msg="check mode: it would be resumed (it reads %s)" % state)
        return dict(row, **self._resume(ref))

    def _gone(self, ref: TargetRef) -> bool:
        """A target is gone only when a second read, GONE_CONFIRM_SECONDS later, answers 404 too and the cache,
        read fine, no longer lists it: one 404 (a replica behind, a proxy) never drops an entry."""
        if not self.deadline.pause(GONE_CONFIRM_SECONDS):
            return False
        try:
            self.ops.get_target(ref, self.deadline.at)
            return False
        except ArmError as exc:
            if exc.status != 404:
                return False
        try:
            listed = self.ops.list_targets(self.ref, self.deadline.at)
        except HpcCacheError:
            return False
        return not any(isinstance(t_, dict) and str(t_.get("name", "")).casefold() == ref.name.casefold()
                       for t_ in listed)

    def _resume(self, ref: TargetRef) -> t.Dict[str, t.Any]:
        """Resume a target whatever it reads (the state is no proof, and the service accepts a resume of a
        target that is not suspended); a 409 (another operation on it) is waited for and sent again."""
        sent = False
        for _conflict in range(MAX_RESUME_CONFLICTS):
            action = TargetAction(self.ops, ref, "resume", wait=True, deadline=self.deadline,
                                  poll_interval=self.poll_interval, check_mode=False,
                                  confirm_timeout=self.confirm_timeout, force=True)
            try:
                outcome = action.run()
            except Stopped:
                raise
            except ArmError as exc:
                sent = sent or action.sent
                if exc.status == 404 and self._gone(ref):
                    self.result["warnings"].append("The storage target %s no longer exists" % ref.name)
                    return {"outcome": "gone", "msg": "the target no longer exists", "sent": sent}
                if exc.status == 409 and self.deadline.pause(min(float(self.poll_interval), 10.0)):
                    continue
                return {"outcome": "failed", "msg": exc.message, "sent": sent, "state_after": _read(action)}
            except HpcCacheError as exc:
                return {"outcome": "failed", "msg": failure_of(exc)[0], "sent": sent or action.sent,
                        "state_after": _read(action)}
            self.result["changed"] = self.result["changed"] or bool(outcome.get("changed"))
            if outcome.get("status") != "Succeeded":
                return {"outcome": "failed", "msg": outcome.get("msg") or "the resume did not succeed",
                        "sent": True, "state_after": outcome.get("state_after")}
            return {"outcome": "resumed", "msg": outcome.get("msg"), "sent": True,
                    "state_after": outcome.get("state_after"), "operation_url": outcome.get("operation_url"),
                    "seconds": outcome.get("elapsed", 0.0)}
        return {"outcome": "failed", "msg": "another operation kept the target busy (409) %d times"
                % MAX_RESUME_CONFLICTS, "sent": sent}

    def _forget(self, store: t.Any, tag: str, value: str, row: t.Dict[str, t.Any]) -> bool:
        """Remove an entry whose target was resumed, while the hold is still this run's (read before every try),
        trying a refused delete (409, 429, 5xx) a few times; a failure is reported on its row and in a warning,
        never raised (I6). False once the hold is no longer this run's: nothing more is removed (an entry left
        is harmless: the next run resumes its target again)."""
        try:
            for attempt in range(MAX_FORGETS):
                self._still_ours(self._stores())
                try:
                    store.delete({tag: value})
                    break
                except WriteRefused as refused:
                    pause = refused.retry_after or 2.0 * (attempt + 1)
                    if attempt == MAX_FORGETS - 1 or not self.deadline.pause(pause):
                        raise
            self.result["changed"] = True
            row["forgotten"] = True
            return True
        except HpcCacheError as exc:
            row["forget_failed"] = failure_of(exc)[0]
            self.result["warnings"].append(
                "The storage target %s was resumed, but its entry could not be removed from the record (%s): the "
                "next run resumes it again, which is harmless" % (row["name"], failure_of(exc)[0]))
            return not isinstance(exc, Stopped)

    # Giving it back -------------------------------------------------------------------------------
    def release(self, suspended: t.Sequence[str] = (), dns_refresh: bool = False) -> t.Dict[str, t.Any]:
        """Resume every target recorded for this run, and every name in `suspended` (the targets the run
        recorded, or a suspend was sent to, as the caller knows them: a read may show the record as it was),
        whatever it reads and whatever the suspend step reported (a killed module reports nothing); then
        forget each resumed one, then give the hold back (I1, I6). While another run holds the cache, this run
        sends nothing: that run recovers what is recorded."""
        stores = self._stores()
        self._report(stores)
        spelled: t.Dict[str, str] = {}
        for name in suspended:
            spelled.setdefault(name.casefold(), name)
        if self.check_mode:  # check mode took no hold: say what would be resumed, read nothing more
            for _store, rec in stores:
                for name, run in rec.entries.items():
                    if run == self.run_id:
                        spelled.setdefault(name.casefold(), name)
            self.result["resumed"] = [{"name": spelled[folded], "outcome": "would resume", "sent": False,
                                       "msg": "check mode: it would be resumed"} for folded in sorted(spelled)]
            self.result["msg"] = "Check mode: the hold on %s would be given back" % self.ref.name
            return self.result
        mine = any(rec.holder is not None and rec.holder.run == self.run_id for _s, rec in stores)
        if not mine and (spelled or any(run == self.run_id for _s, rec in stores for run in rec.entries.values())
                         or any(rec.holder is not None for _s, rec in stores)):
            try:  # a read may show the tags as they were: read again (bounded) before deciding
                self._store_of_hold(stores)
                stores = self._stores()
                mine = True
            except HoldLost:
                stores = self._stores()
        taker = next((rec.holder for _s, rec in stores if rec.holder is not None and rec.holder.run != self.run_id),
                     None)
        for _store, rec in stores:
            for name, run in rec.entries.items():
                if run == self.run_id:
                    spelled.setdefault(name.casefold(), name)
        if taker is not None and not mine:
            raise HoldLost("The hold on %s was taken by run %s while this run worked: this run sent nothing more, "
                           "and that run resumes what this run recorded (%s)"
                           % (self.ref.name, taker.run, ", ".join(sorted(spelled.values())) or "nothing"),
                           record=self.result.get("record"), resumed=[])
        rows: t.List[t.Dict[str, t.Any]] = []
        self.result["resumed"] = rows
        if spelled and (not mine or not self._safely_ours()):
            self._take()  # the hold vanished, or ran out while nobody took it: take it again first
        done: t.Set[str] = set()
        given, finished = "kept", False
        for _pass in range(5):  # resume, give back; again for entries of this run that a read behind did not show
            todo = [f for f in sorted(spelled) if f not in done]
            if not todo:
                if any(r["outcome"] not in ("resumed", "gone") for r in rows):
                    break
                given, more = self._give_back(done, {r["name"].casefold() for r in rows if r.get("forget_failed")})
                finished = not more
                if finished:
                    break
                for name in more:
                    spelled.setdefault(name.casefold(), name)
                continue
            with self._fenced():
                batch = [dict(name=spelled[f], **self._resume(TargetRef(self.ref, spelled[f]))) for f in todo]
                for row in batch:  # cleanup only once every resume was sent (I6)
                    if row["outcome"] == "resumed" and dns_refresh:
                        row.update(self._dns_refresh(TargetRef(self.ref, row["name"])))
            rows.extend(batch)
            done.update(f for f in todo)
            forgetting = True
            entries = self._entries_of_mine()
            for row in batch:
                if forgetting and row["outcome"] in ("resumed", "gone"):
                    for store, tag in entries.get(row["name"].casefold(), []):
                        forgetting = forgetting and self._forget(store, tag, entry_value(self.run_id, self.cache), row)
            for folded, _places in self._entries_of_mine().items():
                spelled.setdefault(folded, _places[0][1][len(TARGET_TAG):])
        if not finished and not any(r["outcome"] not in ("resumed", "gone") for r in rows):
            given, more = self._give_back(done)
            rows.extend({"name": name, "outcome": "failed", "sent": False, "state_after": None,
                         "msg": "recorded for this run, but shown only late: not resumed"} for name in more)
        left = [r for r in rows if r["outcome"] not in ("resumed", "gone")]
        if left:
            raise HpcCacheError("The storage targets %s of cache %s, recorded by this run, may still be suspended: "
                                "%s. They stay recorded on the cache, and the hold stays to its bound, so the next "
                                "run resumes them first"
                                % (", ".join(r["name"] for r in left), self.ref.name,
                                   "; ".join("%s (it read %s): %s" % (r["name"], r.get("state_after") or "Unknown",
                                                                      r["msg"]) for r in left)),
                                resumed=rows, record=self.result.get("record"))
        self.result["msg"] = "The hold on %s is %s; resumed: %s" % (
            self.ref.name, {"given": "given back", "kept": "kept to its bound (see the warnings)",
                            "none": "not this run's (nothing to give back)"}[given],
            ", ".join(r["name"] for r in rows if r["outcome"] == "resumed") or "none")
        return self.result

    def _entries_of_mine(self) -> t.Dict[str, t.List[t.Tuple[t.Any, str]]]:
        """This run's entries as the record reads now: folded name -> (store, tag name) of each."""
        found: t.Dict[str, t.List[t.Tuple[t.Any, str]]] = {}
        for store, rec in self._stores():
            for name, run in rec.entries.items():
                if run == self.run_id:
                    found.setdefault(name.casefold(), []).append((store, rec.tag_names[name]))
        return found

    def _safely_ours(self) -> bool:
        """The hold reads as this run's with time left to act on it."""
        try:
            self._still_ours(self._stores())
        except HoldLost:
            return False
        return True

    def _give_back(self, done: t.Set[str], kept: t.Collection[str] = ()) -> t.Tuple[str, t.List[str]]:
        """Delete this run's hold once nothing of it is recorded (a read that still shows a removed entry is read
        again, bounded); read first, so another run's hold is never deleted. ("given", []) once deleted;
        ("kept", []) when it stays to its bound; ("none", []) when no hold is this run's; ("kept", names) when
        entries of this run not resumed yet show up (a read before was behind): those are resumed first."""
        waited, delay = 0.0, 1.0
        while True:
            stores = self._stores()
            mine = sorted({n for _s, rec in stores for n, run in rec.entries.items() if run == self.run_id})
            more = [n for n in mine if n.casefold() not in done]
            if more:
                return "kept", more
            if not mine:
                break
            if {n.casefold() for n in mine} <= set(kept) or waited >= STALE_READ_SECONDS or \
                    not self.deadline.pause(delay):
                self.result["warnings"].append(
                    "Entries of this run are still recorded on %s (their removal failed or is not yet seen): the "
                    "hold stays to its bound, and the next run resumes them again, which is harmless" % self.ref.name)
                return "kept", []
            waited += delay
            delay = min(delay * 2, 5.0)
        given = "none"
        for store, rec in stores:
            if rec.holder is not None and rec.holder.run == self.run_id:
                try:
                    store.delete(rec.holder_tag)
                    self.result["changed"] = True
                    given = "given"
                except HpcCacheError as exc:
                    given = "kept"
                    self.result["warnings"].append("The hold on %s could not be given back (%s): it ends at its "
                                                   "bound" % (self.ref.name, failure_of(exc)[0]))
        return given, []

    def _dns_refresh(self, ref: TargetRef) -> t.Dict[str, t.Any]:
        action = TargetAction(self.ops, ref, "dns_refresh", wait=True, deadline=self.deadline,
                              poll_interval=self.poll_interval, check_mode=False,
                              confirm_timeout=self.confirm_timeout)
        try:
            action.run()
        except Stopped:
            raise
        except HpcCacheError as exc:
            self.result["warnings"].append("DNS refresh of %s failed: %s" % (ref.name, failure_of(exc)[0]))
            return {"dns_refresh": "failed"}
        return {"dns_refresh": "done"}


def _watched(sleep: t.Callable[[float], None], identity: Identity) -> t.Callable[[float], None]:
    """sleep, in steps of at most two seconds, raising RunGone once the playbook is gone."""
    def watched(seconds: float) -> None:
        left = seconds
        while True:
            if not identity.run_alive():
                raise RunGone("The playbook of this maintenance run has ended (a canceled job or a killed run): this "
                              "module stops waiting and sends nothing more; the next run resumes what was recorded")
            if left <= 0:
                return
            step = min(left, 2.0)
            sleep(step)
            left -= step

    return watched


def _read(action: TargetAction) -> t.Optional[str]:
    """What the target read last in an action that failed."""
    state = action.result.get("state_after") or action.result.get("state_before")
    return str(state) if state else None


class _Fenced:
    """While in effect, every action (POST) the client sends first passes the record's fence."""

    def __init__(self, record: MaintenanceRecord) -> None:
        self.record = record
        self.saved: t.Optional[t.Callable[[str, str], None]] = None

    def __enter__(self) -> "_Fenced":
        client = self.record.ops.client
        self.saved = client.guard
        client.guard = self.record.fence
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.record.ops.client.guard = self.saved


def _iso(epoch: int) -> str:
    import time  # pylint: disable=import-outside-toplevel

    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    except (OverflowError, OSError, ValueError):
        return "%d (seconds since 1970)" % epoch


def controller_name() -> str:
    return socket.gethostname()


def suspended_by(results: t.Sequence[t.Any]) -> t.List[str]:
    """The targets that storage-target task results show a suspend was sent to (answered or not).

    A result names its target by its loop variable (a registered loop's results) or by name.
    """
    names: t.List[str] = []
    for result in results:
        if not isinstance(result, dict):
            continue
        operations = result.get("operations")
        if not isinstance(operations, list) or not any(
                isinstance(op, dict) and op.get("action") == "suspend" for op in operations):
            continue
        loop_var = result.get("ansible_loop_var")
        name = result.get(loop_var) if isinstance(loop_var, str) else None
        name = name if isinstance(name, str) else result.get("name")
        if isinstance(name, str) and STORAGE_TARGET_NAME_RE.fullmatch(name) and name not in names:
            names.append(name)
    return names


def _loop_name(result: t.Any) -> t.Optional[str]:
    if not isinstance(result, dict):
        return None
    loop_var = result.get("ansible_loop_var")
    name = result.get(loop_var) if isinstance(loop_var, str) else result.get("name")
    return name if isinstance(name, str) else None


def target_rows(suspend_results: t.Sequence[t.Any], skipped: t.Sequence[t.Any], resumed: t.Sequence[t.Any],
                recovered: t.Sequence[t.Any], check_mode: bool,
                flush_results: t.Sequence[t.Any] = ()) -> t.List[t.Dict[str, t.Any]]:
    """One summary line per storage target: what an interrupted run's recovery did, what was sent to each
    target of this run and what it read after, and what was left to its owner."""
    rows: t.List[t.Dict[str, t.Any]] = []
    for item in recovered:
        if isinstance(item, dict):
            rows.append({"name": item.get("name"), "state_before": item.get("state_before", "Unknown"),
                         "state_after": item.get("state_after"), "seconds": item.get("seconds", 0.0),
                         "done": "recovered from interrupted run %s: %s (%s)" % (item.get("run"), item.get("outcome"),
                                                                                 item.get("msg"))})
    flushed = {(_loop_name(r) or "").casefold(): r for r in flush_results
               if isinstance(r, dict) and not r.get("skipped")}
    back = {str(r.get("name", "")).casefold(): r for r in resumed if isinstance(r, dict)}
    for result in suspend_results:
        name = _loop_name(result)
        if name is None:
            continue
        flush = flushed.get(name.casefold(), {})
        sent = [str(op.get("action")) for res in (flush, result) for op in res.get("operations") or []
                if isinstance(op, dict)]
        release = back.pop(name.casefold(), {})
        if release.get("sent"):
            sent.append("resume")
        if release.get("dns_refresh") == "done":
            sent.append("dns_refresh")
        failures = [str(m) for m in (flush.get("msg") if flush.get("failed") else None,
                                     result.get("msg") if result.get("failed") else None,
                                     release.get("msg") if release.get("outcome") == "failed" else None) if m]
        if check_mode:
            done = "would be %ssuspended and resumed" % ("flushed, " if flush or result.get("flush") else "")
        else:
            done = (", ".join(sent) or "nothing sent") + (" (failed: %s)" % "; ".join(failures) if failures else "")
        seconds = sum(float(r.get("elapsed") or r.get("seconds") or 0.0) for r in (flush, result, release))
        rows.append({"name": name, "state_before": flush.get("state_before") or result.get("state_before", "Unknown"),
                     "state_after": release.get("state_after") or result.get("state_after"),
                     "seconds": round(seconds, 1), "done": done})
    for name, release in sorted(back.items()):
        rows.append({"name": release.get("name"), "state_before": "Unknown", "state_after": release.get("state_after"),
                     "seconds": float(release.get("seconds") or 0.0), "done": str(release.get("msg"))})
    for item in skipped:
        if isinstance(item, dict):
            rows.append({"name": item.get("name"), "state_before": item.get("state"), "state_after": item.get("state"),
                         "seconds": 0.0, "done": "left %s: %s" % (str(item.get("state", "")).lower(), item.get("why"))})
    return rows
