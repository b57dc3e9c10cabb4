# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record's format: its tag names and values, their limits, and what a set of tags says (pure, no I/O).

Before its first suspend a run writes, as tags on the cache (ARM's Tags API, so every controller that
maintains the cache sees it):

  hpc-maintenance-hold = v1;run=..;host=..;boot=..;ns=..;pid=..;pstart=..;start=..;until=..;cache=..
  hpc-maintenance-target-<name> = v1;run=..;cache=..      (one per storage target it suspends)

`cache` is a hash of the cache's normalized id, so a tag copied onto another cache names the wrong one and
is ignored. The record is data from the service, not an order: names the API would refuse are ignored, and
no field is ever templated. The protocol that writes it: docs/maintenance-protocol.md.
"""

from __future__ import annotations

import hashlib
import typing as t
from dataclasses import dataclass

from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheRef, normalized_id
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.validation import STORAGE_TARGET_NAME_RE

HOLD_TAG = "hpc-maintenance-hold"
TARGET_TAG = "hpc-maintenance-target-"
FORMAT = "v1"
MAX_TAGS = 50  # ARM's limit per resource
MAX_VALUE = 256  # ARM's limit per tag value
MAX_HOLD = 30 * 24 * 3600  # a hold longer than this is no run's: ignored, and never written


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
