# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record of a backend maintenance run, kept on the cache itself, and the hold it gives.

Before its first suspend a run writes, as tags on the cache (ARM's Tags API,
so every controller that maintains the cache sees it):

  hpc-maintenance-hold = v1;run=..;host=..;boot=..;pid=..;pstart=..;start=..;until=..;cache=..
  hpc-maintenance-target-<name> = v1;run=..;cache=..      (one per storage target it suspends)

`cache` is a hash of the cache's normalized id, so a tag copied onto another
cache names the wrong one and is ignored. The hold is the lock: while a live
run holds it, no other run suspends, resumes or recovers. A hold past its
`until`, or (on the controller that wrote it) whose process is gone, belongs
to an interrupted run, whose targets are recovered first; take_over is the
operator's word that the holder is gone. A target's entry is removed only
once its resume operation succeeded.

The record is data from the service, not an order: anyone who may write the
cache's tags could forge one. Recovery of another run's record therefore
resumes only targets that read Suspended (or settle to it), never templates
a field, and refuses names the API would refuse.
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

from ansible_collections.azure_hpc.cache.plugins.module_utils._cache import summarize
from ansible_collections.azure_hpc.cache.plugins.module_utils._errors import ArmError, HpcCacheError, failure_of
from ansible_collections.azure_hpc.cache.plugins.module_utils._poller import Deadline, Poller, Reading
from ansible_collections.azure_hpc.cache.plugins.module_utils._resource import (
    CacheOperations,
    CacheRef,
    TargetRef,
    normalized_id,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._target import (
    BUSY,
    FLUSHING,
    SUSPENDED,
    TargetAction,
    target_state,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._validation import STORAGE_TARGET_NAME_RE

HOLD_TAG = "hpc-maintenance-hold"
TARGET_TAG = "hpc-maintenance-target-"
FORMAT = "v1"
# After writing the hold, wait this long and read it back: two runs writing at once both read the
# last writer's hold, and only that one goes on.
SETTLE_SECONDS = 2.0
MAX_TAGS = 50  # ARM's limit per resource
MAX_VALUE = 256  # ARM's limit per tag value
MAX_HOLD = 30 * 24 * 3600  # a hold longer than this is no run's: ignored
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

    def encode(self) -> str:
        text = "%s;run=%s;host=%s;boot=%s;pid=%d;pstart=%d;start=%d;until=%d;cache=%s" % (
            FORMAT, self.run, self.host, self.boot, self.pid, self.pstart, self.start, self.until, self.cache)
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
                   found["cache"])

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
class TagStore:
    """The cache's tags: read with the cache (GET), written through ARM's Tags API."""

    where = "tags of the cache"

    def __init__(self, ops: CacheOperations, ref: CacheRef, deadline: float) -> None:
        self.ops, self.ref, self.deadline = ops, ref, deadline

    def read(self) -> t.Dict[str, str]:
        tags = self.ops.get(self.ref, self.deadline).get("tags")
        return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}

    def merge(self, tags: t.Mapping[str, str]) -> t.Dict[str, str]:
        return self.ops.patch_tags(self.ref, "Merge", tags, self.deadline)

    def delete(self, tags: t.Mapping[str, str]) -> None:
        if tags:
            self.ops.patch_tags(self.ref, "Delete", tags, self.deadline)


class FileStore:
    """A controller-local record (opt-in, where the cache's tags cannot be written): one JSON file per
    cache under a directory of mode 0700, changed under an exclusive lock. Only this controller sees it."""

    where = "controller-local record"

    def __init__(self, directory: str, ref: CacheRef) -> None:
        self.directory = os.path.expanduser(directory)
        self.path = os.path.join(self.directory, "%s.json" % cache_hash(ref))

    def _change(self, change: t.Callable[[t.Dict[str, str]], None]) -> t.Dict[str, str]:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            tags = self._parse(handle.read())
            change(tags)
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(tags, sort_keys=True))
        return tags

    @staticmethod
    def _parse(text: str) -> t.Dict[str, str]:
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def read(self) -> t.Dict[str, str]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                return self._parse(handle.read())
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return {}
            raise HpcCacheError("Cannot read the controller-local record %s: %s" % (self.path, exc))

    def merge(self, tags: t.Mapping[str, str]) -> t.Dict[str, str]:
        return self._change(lambda now: now.update(tags))

    def delete(self, tags: t.Mapping[str, str]) -> None:
        def drop(now: t.Dict[str, str]) -> None:
            for name in tags:
                now.pop(name, None)

        self._change(drop)


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


def alive(holder: Holder, controller: str, boot: str) -> t.Optional[bool]:
    """Whether the holder's process still runs: known only on the controller (and boot) that wrote it."""
    if not holder.pid or holder.host != controller or not boot or holder.boot != boot:
        return None
    stat = _proc_stat(holder.pid)
    return stat is not None and stat[1] == holder.pstart


# The record's life --------------------------------------------------------------------------------
class MaintenanceRecord:
    """Check, take and give back the hold on one cache for one run; recover an interrupted run's targets."""

    def __init__(self, ops: CacheOperations, ref: CacheRef, *, run: str, controller: str, hold_seconds: int,
                 take_over: bool, local_record: t.Optional[str], wait_timeout: int, poll_interval: int,
                 confirm_timeout: int, check_mode: bool, wall_clock: t.Callable[[], float],
                 process: t.Optional[t.Tuple[int, int]] = None, boot: t.Optional[str] = None) -> None:
        self.ops, self.ref, self.run_id = ops, ref, run
        self.controller = controller[:63]
        self.hold_seconds = hold_seconds
        self.take_over = take_over
        self.wait_timeout, self.poll_interval, self.confirm_timeout = wait_timeout, poll_interval, confirm_timeout
        self.check_mode = check_mode
        self.wall_clock = wall_clock
        self.process = process if process is not None else playbook_process()
        self.boot = boot if boot is not None else boot_id()
        self.cache = cache_hash(ref)
        self.deadline = ops.client.clock() + wait_timeout
        self.tags = TagStore(ops, ref, self.deadline)
        self.local = FileStore(local_record, ref) if local_record else None
        self.result: t.Dict[str, t.Any] = {"changed": False, "recovered": [], "warnings": []}

    def _deadline(self) -> Deadline:
        """The run's deadline as the Deadline the waits and actions take (the client's clock and sleep)."""
        return Deadline(self.deadline, clock=self.ops.client.clock, sleep=self.ops.client.sleep)

    # Reading ------------------------------------------------------------------------------------
    def _stores(self) -> t.List[t.Tuple[t.Any, Record]]:
        stores: t.List[t.Tuple[t.Any, Record]] = [(self.tags, read_record(self.tags.read(), self.cache))]
        if self.local is not None:
            stores.append((self.local, read_record(self.local.read(), self.cache)))
        return stores

    def _judge(self, holder: Holder) -> str:
        """ours, live (another run within its bound), stale (past it), dead (its process is gone)."""
        if holder.run == self.run_id:
            return "ours"
        if self.wall_clock() >= holder.until:
            return "stale"
        if alive(holder, self.controller, self.boot) is False:
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
                "maintenance run recovers them (this run sends nothing)" % ", ".join(stale))
        self.result["msg"] = "The cache %s is not held by a live maintenance run%s" % (
            self.ref.name, "; an interrupted run's record is waiting for recovery" if stale else "")
        return self.result

    # Before the hold ------------------------------------------------------------------------------
    def gate(self, allowed_states: t.Sequence[str]) -> None:
        """Refuse a cache whose health state is not one of allowed_states (any case), before anything is sent.

        Backend maintenance has no state that passes whatever the list says: a Flushing, Stopped or
        Upgrading cache is refused unless listed."""
        cache = summarize(self.ops.get(self.ref, self.deadline))
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
        for target in self.ops.list_targets(self.ref, self.deadline):
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
        suspend at once. It is sized to cover the flush and suspend of every target before the first
        renewal (2 waits a target, and one more), and at least the hold asked for.
        """
        if targets:
            self.hold_seconds = max(self.hold_seconds, self.wait_timeout * (2 * len(targets) + 1))
        stores = self._stores()
        self._report(stores)
        recoverable = self._recoverable(stores)
        if self.check_mode:  # what the run would do, read only
            self._recover(stores, recoverable)
            to_suspend, skipped = self._decide(targets)
            self.result.update(to_suspend=to_suspend, not_ours=skipped,
                               msg="Check mode: the hold on %s would be taken" % self.ref.name)
            return self.result
        self._room(stores, len(targets))
        store = self._take(recoverable)
        try:
            self._recover(stores, recoverable)
            to_suspend, skipped = self._decide(targets)
            self.result["not_ours"] = skipped
            if to_suspend:
                self._write(store, {TARGET_TAG + name: entry_value(self.run_id, self.cache) for name in to_suspend},
                            "the storage targets it suspends")
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
        mine = [(store, rec) for store, rec in stores if rec.holder is not None and rec.holder.run == self.run_id]
        if self.check_mode:  # check mode took no hold: there is nothing to renew
            self.result["msg"] = "Check mode: the hold on %s would be renewed" % self.ref.name
            return self.result
        if not mine:
            holder = next((rec.holder for _s, rec in stores if rec.holder is not None), None)
            raise HpcCacheError("The hold on %s is no longer this run's (%s): the storage targets this run suspended "
                                "are resumed now, and nothing more is done"
                                % (self.ref.name, "run %s holds it" % holder.run if holder else "it is gone"))
        if not self.check_mode:
            self._write(mine[0][0], {HOLD_TAG: self._holder().encode()}, "its hold")
            self.result["changed"] = True
        self.result["msg"] = "The hold on %s is renewed until %s" % (self.ref.name, _iso(self._until()))
        return self.result

    def _recoverable(self, stores: t.List[t.Tuple[t.Any, Record]]) -> t.Set[str]:
        """The runs whose record may be recovered: a hold that is stale, dead, or taken over. Refuses a live
        hold of another run. Entries of a run with no hold at all are reported, never acted on (a run removes
        its hold last, so such entries were forged or cleared by hand)."""
        runs: t.Set[str] = set()
        for _store, rec in stores:
            if rec.holder is None or rec.holder.run == self.run_id:
                continue
            state = self._judge(rec.holder)
            if state == "live" and not self.take_over:
                self._refuse_live(rec.holder)
            runs.add(rec.holder.run)
        orphans = sorted({n for _s, rec in stores for n, run in rec.entries.items()
                          if run != self.run_id and run not in runs})
        if orphans:
            self.result["warnings"].append(
                "Storage targets %s are recorded on the cache by a run that holds no hold; they were not touched "
                "(a record is removed hold last, so this one was forged or cleared by hand)" % ", ".join(orphans))
        return runs

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
        for store, rec in self._stores():
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
        return Holder(self.run_id, self.controller, self.boot, self.process[0], self.process[1],
                      int(self.wall_clock()), self._until(), self.cache)

    def _take(self, recoverable: t.Set[str]) -> t.Any:
        now = read_record(self.tags.read(), self.cache).holder  # read again just before the write
        if now is not None and now.run != self.run_id and now.run not in recoverable:
            if self._judge(now) == "live" and not self.take_over:
                self._refuse_live(now)
        holder = self._holder()
        store = self._write(self.tags, {HOLD_TAG: holder.encode()}, "its hold")
        self.ops.client.sleep(SETTLE_SECONDS)  # a run writing at the same moment has written by now
        now = read_record(store.read(), self.cache).holder
        if now is None or now.run != self.run_id:
            raise HpcCacheError(
                "Another maintenance run took the hold on %s at the same moment (%s); nothing was suspended"
                % (self.ref.name, "run %s on controller %s" % (now.run, now.host) if now else "its hold vanished"))
        return store

    def _write(self, store: t.Any, tags: t.Mapping[str, str], what: str) -> t.Any:
        """Write to the store; where the cache's tags refuse it, the opt-in local record, else a clear refusal."""
        try:
            written = store.merge(tags)
        except ArmError as exc:
            if store is not self.tags:
                raise
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
            return self._write(self.local, tags, what)
        if store is self.tags and written and not all(
                any(k.casefold() == name.casefold() and v == value for k, v in written.items())
                for name, value in tags.items()):
            raise HpcCacheError("The cache %s did not keep the record of this run (%s): nothing was suspended"
                                % (self.ref.name, what))
        return store

    def _settle(self, ref: TargetRef, state: str) -> t.Tuple[t.Optional[str], int]:
        """Wait while a target reads Busy, Flushing or a state the API does not name; None once it is gone."""
        if state.strip().casefold() in KNOWN - UNSETTLED:
            return state, 0
        last: t.Dict[str, t.Optional[str]] = {"state": state}

        def read() -> Reading:
            try:
                body = self.ops.get_target(ref, self.deadline)
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
            read, deadline=self._deadline(), poll_interval=self.poll_interval,
            subject="the storage target %s of cache %s (it read %s) to settle" % (ref.name, self.ref.name, state))
        return last["state"], poll.polls

    def _decide(self, targets: t.Sequence[str]) -> t.Tuple[t.List[str], t.List[t.Dict[str, str]]]:
        """Which of the targets this run will suspend: not those someone else suspended or is suspending."""
        to_suspend: t.List[str] = []
        skipped: t.List[t.Dict[str, str]] = []
        for name in targets:
            ref = TargetRef(self.ref, name)
            state, _polls = self._settle(ref, target_state(self.ops.get_target(ref, self.deadline)))
            if state is None:
                raise HpcCacheError("The storage target %s of cache %s is gone; nothing was suspended"
                                    % (name, self.ref.name))
            if state.strip().casefold() == SUSPENDED:
                skipped.append({"name": name, "state": state,
                                "why": "it was %s before the run" % state})
            else:
                to_suspend.append(name)
        return to_suspend, skipped

    # Recovery ------------------------------------------------------------------------------------
    def _recover(self, stores: t.List[t.Tuple[t.Any, Record]], runs: t.Set[str]) -> None:
        """Resume the targets an interrupted run recorded, where they read Suspended, and forget its record."""
        for store, rec in stores:
            others = {n: run for n, run in rec.entries.items() if run in runs}
            for name, run in sorted(others.items()):
                row = self._recover_one(name, run)
                self.result["recovered"].append(row)
                if row["outcome"] in ("resumed", "not suspended", "gone") and not self.check_mode:
                    store.delete({rec.tag_names[name]: entry_value(run, self.cache)})
                    self.result["changed"] = True
                elif row["outcome"] == "failed":
                    raise HpcCacheError("Recovering the storage target %s of cache %s, left by interrupted run %s, "
                                        "failed: %s. Nothing else was sent" % (name, self.ref.name, run, row["msg"]),
                                        recovered=self.result["recovered"])
            # The interrupted run's hold needs no delete: this run's hold, under the same tag, replaced it.

    def _recover_one(self, name: str, run: str) -> t.Dict[str, t.Any]:
        ref = TargetRef(self.ref, name)
        row: t.Dict[str, t.Any] = {"name": name, "run": run}
        try:
            first = target_state(self.ops.get_target(ref, self.deadline))
            row["state_before"] = first
            state, _polls = self._settle(ref, first)
        except ArmError as exc:
            if exc.status != 404:
                return dict(row, outcome="failed", msg=exc.message)
            state = None
        if state is None:
            self.result["warnings"].append("The storage target %s recorded by run %s no longer exists" % (name, run))
            return dict(row, outcome="gone", msg="the target no longer exists")
        if state.strip().casefold() != SUSPENDED:
            # Recorded, but not suspended: the interrupted run never got to suspend it, or the record is
            # forged. Nothing is sent to a target someone may be working on.
            return dict(row, outcome="not suspended", state_after=state,
                        msg="it reads %s: nothing sent, the record of it dropped" % state)
        if self.check_mode:
            return dict(row, outcome="would resume", msg="check mode: it would be resumed")
        return dict(row, **self._resume(ref, force=False))

    def _resume(self, ref: TargetRef, force: bool) -> t.Dict[str, t.Any]:
        action = TargetAction(self.ops, ref, "resume", wait=True, deadline=self._deadline(),
                              poll_interval=self.poll_interval, check_mode=False,
                              confirm_timeout=self.confirm_timeout, force=force)
        try:
            outcome = action.run()
        except ArmError as exc:
            if exc.status == 404:
                self.result["warnings"].append("The storage target %s no longer exists" % ref.name)
                return {"outcome": "gone", "msg": "the target no longer exists", "sent": action.sent}
            return {"outcome": "failed", "msg": exc.message, "sent": action.sent}
        except HpcCacheError as exc:
            return {"outcome": "failed", "msg": failure_of(exc)[0], "sent": action.sent,
                    "state_after": action.result.get("state_after")}
        self.result["changed"] = self.result["changed"] or bool(outcome.get("changed"))
        return {"outcome": "resumed", "msg": outcome.get("msg"), "sent": action.sent,
                "state_after": outcome.get("state_after"), "operation_url": outcome.get("operation_url"),
                "seconds": outcome.get("elapsed", 0.0)}

    # Giving it back -------------------------------------------------------------------------------
    def release(self, suspended: t.Sequence[str], dns_refresh: bool = False) -> t.Dict[str, t.Any]:
        """Resume every target this run sent a suspend to, whatever it reads; forget each once its resume
        succeeded, and the hold once nothing of this run is recorded."""
        stores = self._stores()
        self._report(stores)
        recorded: t.Dict[str, t.List[t.Tuple[t.Any, str]]] = {}  # folded name -> (store, tag name) of this run
        spelled: t.Dict[str, str] = {}
        taker = next((rec.holder.run for _s, rec in stores if rec.holder is not None and rec.holder.run != self.run_id),
                     None)
        for store, rec in stores:
            for name, run in rec.entries.items():
                if run == self.run_id:
                    recorded.setdefault(name.casefold(), []).append((store, rec.tag_names[name]))
                    spelled.setdefault(name.casefold(), name)
        ours = {n.casefold() for n in suspended}
        if taker is not None:  # taken over: the taker recovered what is no longer recorded for this run
            ours &= set(recorded)
        for name in suspended:
            if taker is None or name.casefold() in ours:
                spelled.setdefault(name.casefold(), name)
        rows: t.List[t.Dict[str, t.Any]] = []
        row: t.Dict[str, t.Any]
        for folded in sorted(spelled):
            name = spelled[folded]
            if folded in ours and self.check_mode:
                row = {"name": name, "outcome": "would resume", "sent": False,
                       "msg": "check mode: it would be resumed"}
            elif folded in ours:
                row = dict(name=name, **self._resume(TargetRef(self.ref, name), force=True))
                if row["outcome"] == "resumed" and dns_refresh:
                    row.update(self._dns_refresh(TargetRef(self.ref, name)))
            else:
                row = {"name": name, "outcome": "forgotten", "sent": False,
                       "msg": "no suspend was sent to it: nothing to resume"}
            rows.append(row)
            if row["outcome"] in ("resumed", "gone", "forgotten") and not self.check_mode:
                for store, tag in recorded.get(folded, []):
                    store.delete({tag: entry_value(self.run_id, self.cache)})
                    self.result["changed"] = True
        left = [r for r in rows if r["outcome"] not in ("resumed", "gone", "forgotten", "would resume")]
        self.result["resumed"] = rows
        if left:
            raise HpcCacheError("The storage targets %s of cache %s, suspended by this run, were not resumed: %s. "
                                "They stay recorded on the cache, and the hold stays to its bound, so the next run "
                                "resumes them first" % (", ".join(r["name"] for r in left), self.ref.name,
                                                        "; ".join("%s: %s" % (r["name"], r["msg"]) for r in left)),
                                resumed=rows, record=self.result.get("record"))
        for store, rec in stores:
            if rec.holder is not None and rec.holder.run == self.run_id and not self.check_mode:
                store.delete(rec.holder_tag)
                self.result["changed"] = True
        if taker is not None:
            raise HpcCacheError("The hold on %s was taken over by run %s while this run worked: the targets that "
                                "run recovered were left to it, and this run is not reported done"
                                % (self.ref.name, taker), resumed=rows, record=self.result.get("record"))
        self.result["msg"] = "The hold on %s is given back; resumed: %s" % (
            self.ref.name, ", ".join(r["name"] for r in rows if r["outcome"] == "resumed") or "none")
        return self.result

    def _dns_refresh(self, ref: TargetRef) -> t.Dict[str, t.Any]:
        action = TargetAction(self.ops, ref, "dns_refresh", wait=True, deadline=self._deadline(),
                              poll_interval=self.poll_interval, check_mode=False,
                              confirm_timeout=self.confirm_timeout)
        try:
            action.run()
        except HpcCacheError as exc:
            self.result["warnings"].append("DNS refresh of %s failed: %s" % (ref.name, failure_of(exc)[0]))
            return {"dns_refresh": "failed"}
        return {"dns_refresh": "done"}


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
            done = "would be %ssuspended and resumed" % ("flushed, " if flush else "")
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
