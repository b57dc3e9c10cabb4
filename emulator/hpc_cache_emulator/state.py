# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulated world: caches, their flush operations, tokens, faults and the request log.

Everything time-dependent is computed from a monotonic clock when asked, so
no background thread runs. All access goes through one lock.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import secrets
import threading
import time
import typing as t
import uuid
from datetime import datetime, timezone

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"

# The api-versions of Microsoft.StorageCache the specification has (Azure/azure-rest-api-specs,
# specification/storagecache/resource-manager/Microsoft.StorageCache/StorageCache/readme.md, its tags
# package-2019-08 to package-2026-01-01, and examples/2026-08-01, the default of azure-mgmt-storagecache
# 4.1.0), newest first as ARM lists them. Any other api-version is refused (server.py, NoRegisteredProviderFound).
STORAGECACHE_API_VERSIONS = (
    "2026-08-01", "2026-01-01", "2025-07-01", "2024-07-01", "2024-03-01", "2023-11-01-preview", "2023-05-01",
    "2023-03-01-preview", "2023-01-01", "2022-05-01", "2022-01-01", "2021-09-01", "2021-05-01", "2021-03-01",
    "2020-10-01", "2020-03-01", "2019-11-01", "2019-08-01-preview",
)
# The api-versions of ARM's Tags API at a scope (Microsoft.Resources/tags, since 2019-10-01): the
# Microsoft.Resources versions ARM named in its InvalidApiVersionParameter answers of 2023-2024
# (ansible-collections/azure#1739, Azure/azure-cli#28038) from 2019-10-01 on. Others are refused
# (server.py, InvalidApiVersionParameter).
RESOURCES_API_VERSIONS = (
    "2024-08-01", "2024-07-01", "2024-03-01", "2023-07-01", "2022-12-01", "2022-09-01", "2022-06-01",
    "2022-05-01", "2022-01-01", "2021-04-01", "2021-01-01", "2020-10-01", "2020-09-01", "2020-08-01",
    "2020-07-01", "2020-06-01", "2020-05-01", "2020-01-01", "2019-11-01", "2019-10-01",
)
# The regions an unsupported api-version's answer names as supported (EMU only: the real list is longer)
SUPPORTED_LOCATIONS = ("eastus", "eastus2", "westus", "westus2", "westeurope", "northeurope", "southeastasia")
DEFAULT_FLUSH = {
    # recorded: 204 + azure-asyncoperation only, as the real service was recorded answering
    #   (tests/fixtures/recorded); recorded_202: 202 + Location + Azure-AsyncOperation and never
    #   Retry-After, as storage-target actions and the 2023 cache flush were recorded answering
    #   (DEFAULT_TARGET_ACTION); async: 202 + Azure-AsyncOperation + Location (the API's example);
    # location: 202 + Location; bare204: 204 and nothing else while the flush runs on;
    # sync200, sync204: done at once
    "mode": "recorded",
    "duration": 2.0,  # seconds the flush runs
    "retry_after": None,  # Retry-After on the POST and on status answers (the recorded service sent none)
    "result": "Succeeded",  # Succeeded, Failed or Canceled
    "error": None,  # {"code": ..., "message": ...} for Failed (and optionally Canceled)
    "state_after": "Healthy",  # the health state once the flush ended
    "settle": 0,  # seconds in state_after before the cache reports Healthy (0: state_after stays)
    "status_base": None,  # another origin for status URLs (to test the origin guard)
    "location_final": 204,  # what the Location monitor answers once the flush succeeded: 204, or 200 with a body
    # first_read: the duration counts from the first request that reads the cache or the operation after
    # the POST, so no test depends on how fast a process starts (a second run started late still finds
    # the flush running); post: from the POST itself
    "runs_from": "first_read",
    # with state_after: the cache reads state_after for this many reads after the flush, then Healthy
    "settle_reads": 0,
    # Signed status URLs: &t=&c=&s=&h= after api-version, as recorded since 2024 (GO in
    # ../shared/reference/recorded-storage-targets.md), that must come back exactly as issued; a status
    # request with its query string changed in any way is refused (403). False: the unsigned URLs of the
    # 2019-2023 recordings (tests/fixtures/recorded).
    "signed": True,
    # A flush sent while the cache reads Flushing: False answers 409 Conflict (the emulator's answer since
    # 0.1.0, EMU only: no such request is recorded); True answers the API's 204 "Cache flush already in
    # progress or has completed" (SPEC, 2021-05-01 description), no header, no body.
    "already_204": False,
}


# A storage-target action (flush, suspend, resume, dnsRefresh), as recorded from the real service
# (../shared/reference/recorded-storage-targets.md, "Storage-target actions"; the same facts as data in
# tests/fixtures/recorded/storage_target_actions.json). Every mode of DEFAULT_FLUSH is also available.
DEFAULT_TARGET_ACTION = {
    # recorded_202: every recorded target action answered 202, empty body, Location
    #   (.../ascOperations/{id}?monitor=true&api-version=...) and Azure-AsyncOperation
    #   (.../ascOperations/{id}?api-version=...), header names in canonical case and never Retry-After
    #   (PS-T, NET-T, GO): unlike async (the API's example), retry_after is never sent on the POST answer.
    "mode": "recorded_202",
    # seconds the action runs; None: its recorded duration (RECORDED_TARGET_SECONDS) times the scenario's
    # time_scale. A duration given in a scenario is taken as it is (not multiplied).
    "duration": None,
    "retry_after": None,  # Retry-After on status answers (and on the POST answer in modes other than recorded_202)
    "result": "Succeeded",
    "error": None,
    "lag": 0,  # seconds after a successful end during which the target still reads its old state (not multiplied)
    # False: once the operation Succeeded the target keeps reading the state it had (Ready after a suspend),
    # as recorded: a suspend reported Succeeded and the target read Ready two minutes later (PS-T, 09:39:43)
    "shows": True,
    "runs_from": "first_read",  # as DEFAULT_FLUSH
    "status_base": None,
    # what the Location URL answers once the action succeeded: "success" (200, the bare JSON string
    # "success", 9 bytes, as recorded for restoreDefaults: PS-T 09:42:51, NET-T 10:18:13), 204, or 200
    # (a status object). While the action runs it answers 202 (not recorded).
    "location_final": "success",
    "signed": True,  # signed status URLs, as recorded since 2024 (GO); see DEFAULT_FLUSH
    # An action sent to a target already where it leads (a suspend to a Suspended target, a resume to a
    # Ready one, a flush while it flushes): True answers the API's 204 ("already suspended or suspend in
    # progress"...); False accepts it as any other (202, then Succeeded). None: as recorded, where it was:
    # a resume sent to a target never suspended was accepted, 202 then Succeeded about 1 s later (PS-T
    # 09:39:09, GO 07:01:19); the other two were not recorded and keep the API's 204.
    "already_204": None,
}
RECORDED_ALREADY_204 = {"flush": True, "suspend": True, "resume": False, "dnsRefresh": False,
                        "invalidate": False, "restoreDefaults": False}
# Server-side durations recorded (seconds): suspend and resume 0.5-1.7, target flush 3.7-25,
# dnsRefresh about 33, invalidate about 43, restoreDefaults 7-17 (PS-T, NET-T, GO).
RECORDED_TARGET_SECONDS = {"flush": 8.0, "suspend": 1.0, "resume": 1.0, "dnsRefresh": 33.0, "invalidate": 43.0,
                           "restoreDefaults": 12.0}
# What a target reads while an action runs, and once it succeeded (None: the state it had). The state
# enum has none for invalidate and restoreDefaults (SPEC); Busy is the emulator's (EMU only).
TARGET_RUNNING = {"flush": "Flushing", "suspend": "Busy", "resume": "Busy", "dnsRefresh": "Busy", "invalidate": "Busy",
                  "restoreDefaults": "Busy"}
TARGET_AFTER = {"flush": None, "suspend": "Suspended", "resume": "Ready", "dnsRefresh": None, "invalidate": None,
                "restoreDefaults": None}
# The actions the collection sends: always listed in a target's "sent" counts (tests compare them whole);
# invalidate and restoreDefaults are listed once sent.
COLLECTION_TARGET_ACTIONS = ("flush", "suspend", "resume", "dnsRefresh")
# The answers each action's specification allows to its POST (azure-mgmt-storagecache 4.1.0, generated from
# it: _operations.py, "status_code not in"). A mode answering otherwise still works, and is logged
# "outside_spec": dnsRefresh's 204 modes (recorded, bare204, sync204) and the upgrade's sync200.
SPEC_STATUSES = {"flush": (200, 202, 204), "suspend": (200, 202, 204), "resume": (200, 202, 204),
                 "invalidate": (200, 202, 204), "dnsRefresh": (200, 202), "restoreDefaults": (200, 202),
                 "stop": (200, 202, 204), "start": (200, 202, 204), "upgrade": (201, 202, 204),
                 "debugInfo": (200, 202, 204), "delete": (200, 202, 204)}


# Cache actions: stop, start and upgrade (POST .../caches/{name}/stop|start|upgrade), as recorded
# (../shared/reference/recorded-storage-targets.md, "Cache actions"; PS-C: Azure/azure-powershell
# src/StorageCache/StorageCache.Autorest/test/AzStorageCache.Recording.json at 291efb1d, 2023-07-04).
DEFAULT_CACHE_ACTION = {
    # recorded_202: stop and start answered 202, empty body, Location (?monitor=true) and
    # Azure-AsyncOperation, no Retry-After (PS-C 08:33:56, 08:36:32); every mode of DEFAULT_FLUSH works
    "mode": "recorded_202",
    # seconds the action runs; None: RECORDED_CACHE_SECONDS times the scenario's time_scale; a duration
    # given in a scenario is taken as it is
    "duration": None,
    "retry_after": None,
    "result": "Succeeded",  # Succeeded, Failed or Canceled (upgrade: "fails": true is the same as Failed)
    "error": None,  # {"code", "message"} of a Failed operation
    "runs_from": "first_read",  # as DEFAULT_FLUSH
    "status_base": None,
    "location_final": "success",  # as DEFAULT_TARGET_ACTION (the only Location end recorded for this service)
    "signed": True,
    # stop only: a stop sent to a cache that reads Stopped or Stopping. True: 204, nothing sent, like the
    # recorded start on a running cache (EMU only: a stop of a stopped cache is not recorded); False: 409.
    "already_204": True,
}
# Server-side durations (seconds). stop: 142 (PS-C, startTime 08:33:56.6 to endTime 08:36:18.6, about
# 2.4 min); start: 433 (PS-C, 08:36:32.7 to 08:43:46.0; PSL-SS 6-7 min); upgrade: not recorded (EMU only).
RECORDED_CACHE_SECONDS = {"stop": 142.0, "start": 433.0, "upgrade": 600.0, "debugInfo": 60.0, "delete": 60.0}
# debugInfo (recorded: 202 with both headers, "success" through Location: PS-C) and delete (SPEC: 200, 202,
# 204, final state through azure-async-operation) change no health state; their durations are EMU only.
QUIET_CACHE_ACTIONS = ("debugInfo", "delete")
# The health state while an action runs, once it succeeded, once it failed (None: the state before).
CACHE_RUNNING = {"stop": "Stopping", "start": "Transitioning", "upgrade": "Upgrading"}
CACHE_AFTER = {"stop": "Stopped", "start": "Healthy", "upgrade": "Healthy"}
CACHE_FAILED = {"stop": None, "start": "StartFailed", "upgrade": "UpgradeFailed"}
# statusDescription: recorded where the recordings show it (Stopped, Healthy: REC and PS-C;
# Transitioning: PSL-SS and PS-C's creation), the emulator's own words elsewhere.
CACHE_DESCRIPTIONS = {
    "Stopped": "The Cache resources have been deallocated",
    "Healthy": "The cache is in Running state",
    "Transitioning": "The cache is being allocated.",
    "Stopping": "The cache is being stopped.",
    "Upgrading": "The cache is being upgraded.",
    "StartFailed": "The cache failed to start.",
    "UpgradeFailed": "The cache firmware upgrade failed.",
}
# stop is possible from Healthy or Degraded (Microsoft's docs); anything else (but Stopped and Stopping,
# see already_204) answers 409 Conflict: EMU only, the refusal is not recorded.
STOP_FROM = ("Healthy", "Degraded")
# upgrade with an upgrade pending: from these states only, else 409 (EMU only)
UPGRADE_FROM = ("Healthy", "Degraded")
# A cache's firmware, as the scenario's "upgrade" key gives it (merged over DEFAULT_CACHE_ACTION).
DEFAULT_UPGRADE = {
    "current": "V5.1.0",
    "pending": None,  # a version: an upgrade is pending (firmwareUpdateStatus "available")
    "deadline": None,  # firmwareUpdateDeadline while one is pending
    "last": "2026-10-01T00:00:00.0000000Z",  # lastFirmwareUpdate
    "fails": False,  # True: the upgrade operation ends Failed and the cache reads UpgradeFailed
}
# The upgradeStatus of a cache with nothing pending, as recorded (PS-C 2023-05-01; REC 2019-11-01 has no
# pendingFirmwareVersion): used when the scenario gives the cache an "upgrade" key; a cache without one
# keeps the emulator's earlier shape (null deadline, null pending version).
NO_DEADLINE = "0001-01-01T00:00:00Z"

# ARM resource-provider throttling buckets for cache actions, per subscription (PS-C: the answers carry
# x-ms-ratelimit-remaining-resource "Microsoft.Compute/FlushCache5Min;59" and
# "Microsoft.Compute/StartOrStopCache1Min;59" - the provider reports the Microsoft.Compute prefix).
# A fixed window: it opens with the first request, counts every request it sees, and refills whole when it
# ends, as Compute's throttling (whose header names this provider uses) reports its windows
# (startTime/endTime of the operation group in its 429 body).
THROTTLE_BUCKETS = {
    "flush": {"name": "FlushCache5Min", "limit": 60, "window": 300.0},
    "start_stop": {"name": "StartOrStopCache1Min", "limit": 60, "window": 60.0},
}
THROTTLE_PREFIX = "Microsoft.Compute/"


def _b64url(size: int) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(size)).rstrip(b"=").decode("ascii")


def signature_query() -> str:
    """&t=<ticks>&c=<certificate>&s=<signature>&h=<hash>, fresh values each call, in the recorded shape (GO):
    t .NET ticks (18 digits), c a DER certificate in base64url (about 2.4 KB), s an RSA-2048 signature
    (342 characters), h a SHA-256 hash (43 characters); base64url characters only (A-Z a-z 0-9 - _)."""
    ticks = (time.time_ns() // 100) + 621355968000000000 + secrets.randbelow(1000)
    return "&t=%d&c=MIIH%s&s=%s&h=%s" % (ticks, _b64url(1800), _b64url(256), _b64url(32))


def _merge(base: t.Dict[str, t.Any], extra: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    merged = copy.deepcopy(base)
    merged.update(extra or {})
    return merged


FAULT_ON = ("flush", "get", "list", "operation", "location", "target_action", "target", "targets", "tags",
            "tags_write", "tags_operation", "cache_action", "update", "delete", "token", "metadata", "any")
# status: an error answer; reset: the connection reset, no answer; delay: the answer held back;
# malformed, empty: a broken body; headers: extra headers on the real answer; trickle: the body a byte
# at a time; midbody: the status line and headers, then part of the body, then a reset, a clean close
# or a stall (how); trickle_headers: the status line and headers a byte at a time; gzip: a small
# gzip body that decompresses to decoded_mb MiB.
FAULT_KINDS = ("status", "reset", "delay", "malformed", "empty", "headers", "trickle", "midbody", "trickle_headers",
               "gzip")
BODY_FAULTS = ("empty", "malformed", "trickle", "midbody", "trickle_headers", "gzip")
MIDBODY_HOW = ("reset", "close", "stall")


class Fault:
    """An injected misbehaviour, used up after count matching requests (count < 0: forever)."""

    def __init__(self, spec: t.Mapping[str, t.Any]) -> None:
        self.on = spec.get("on", "any")  # one of FAULT_ON
        self.cache = spec.get("cache")
        self.count = int(spec.get("count", 1))
        self.after = int(spec.get("after", 0))  # let this many matching requests through first
        self.kind = spec.get("kind", "status")  # one of FAULT_KINDS
        # A typo would make a fault that never fires and a test that proves nothing: refuse it.
        if self.on not in FAULT_ON:
            raise ValueError("fault on %r: not one of %s" % (self.on, ", ".join(FAULT_ON)))
        if self.kind not in FAULT_KINDS:
            raise ValueError("fault kind %r: not one of %s" % (self.kind, ", ".join(FAULT_KINDS)))
        # a body fault answers 200 unless told otherwise; a status fault 503
        self.status = int(spec.get("status", 200 if self.kind in BODY_FAULTS else 503))
        self.how = spec.get("how", "reset")  # midbody: reset, close or stall (for delay seconds) once part is sent
        if self.how not in MIDBODY_HOW:
            raise ValueError("fault how %r: not one of %s" % (self.how, ", ".join(MIDBODY_HOW)))
        self.decoded_mb = float(spec.get("decoded_mb", 64))  # gzip: MiB the body decompresses to
        self.retry_after = spec.get("retry_after")
        self.delay = float(spec.get("delay", 0))
        # the flush (or target action, cache action, tags write) takes effect before the fault answers in its
        # place, under the preconditions of the normal path for cache actions and tags writes
        self.processed = bool(spec.get("processed", False))
        self.headers = dict(spec.get("headers") or {})
        self.code = spec.get("code")
        self.body = spec.get("body")
        self.echo_token = bool(spec.get("echo_token", False))  # the error message repeats the caller's token
        self.seen = 0

    def take(self, kind: str, cache: t.Optional[str]) -> bool:
        if self.on not in ("any", kind) or (self.cache and self.cache != cache) or self.count == 0:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.count > 0:
            self.count -= 1
        return True

    def describe(self) -> str:
        if self.kind == "midbody":
            return "midbody:%s%s" % (self.how, ":%g" % self.delay if self.how == "stall" else "")
        if self.kind == "gzip":
            return "gzip:%gMiB" % self.decoded_mb
        return "%s:%s" % (self.kind, self.status if self.kind == "status" else self.delay or "")


class Bucket:
    """A fixed-window request budget of one subscription for one operation group: limit requests per
    window seconds. The window opens with the first request and refills whole when it ends."""

    def __init__(self, name: str, limit: int, window: float) -> None:
        self.name = name
        self.limit = limit
        self.window = window
        self.opened: t.Optional[float] = None
        self.count = 0
        self.refused = 0  # 429s answered, in all windows
        self.refused_now = 0  # in this window

    def take(self, now: float, enforce: bool) -> t.Tuple[bool, int, float]:
        """Count one request: (allowed, remaining after it, seconds until the window refills). Not
        enforced, every request is allowed and the remaining count stops at 0."""
        if self.opened is None or now - self.opened >= self.window:
            self.opened, self.count, self.refused_now = now, 0, 0
        refill = self.opened + self.window - now
        if enforce and self.count >= self.limit:
            self.refused += 1
            self.refused_now += 1
            return False, 0, refill
        self.count += 1
        return True, max(self.limit - self.count, 0), refill

    def describe(self, now: float) -> t.Dict[str, t.Any]:
        """The bucket now (the control route's view; it opens no window)."""
        refills_in = 0.0 if self.opened is None else self.opened + self.window - now
        open_ = refills_in > 0
        return {"limit": self.limit, "window": self.window, "used": self.count if open_ else 0,
                "remaining": max(self.limit - self.count, 0) if open_ else self.limit,
                "refills_in": round(refills_in, 3) if open_ else 0.0, "refused": self.refused}


def throttle_settings(spec: t.Any) -> t.Dict[str, t.Dict[str, t.Any]]:
    """The buckets of a scenario's throttle key over the recorded ones; ValueError on a typo or a bad
    number (a bucket that could never refill, or a limit that is not a count)."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ValueError("throttle: must be an object of buckets (%s)" % ", ".join(THROTTLE_BUCKETS))
    unknown = set(spec) - set(THROTTLE_BUCKETS) - {"code"}
    if unknown:
        raise ValueError("throttle %s: not one of %s" % (", ".join(sorted(unknown)), ", ".join(THROTTLE_BUCKETS)))
    settings = {}
    for kind, recorded in THROTTLE_BUCKETS.items():
        given = spec.get(kind) or {}
        if not isinstance(given, dict) or set(given) - {"limit", "window"}:
            raise ValueError("throttle %s: only limit and window may be given" % kind)
        limit, window = int(given.get("limit", recorded["limit"])), float(given.get("window", recorded["window"]))
        if limit < 0 or not math.isfinite(window) or window <= 0:
            raise ValueError("throttle %s: limit must be 0 or more and window a number of seconds above 0" % kind)
        settings[kind] = {"name": recorded["name"], "limit": limit, "window": window}
    return settings


class Operation:
    """A long-running operation: a cache flush, or an action on a storage target (target, action set)."""

    def __init__(self, op_id: str, cache: "Cache", started: float, settings: t.Optional[t.Mapping[str, t.Any]] = None,
                 target: t.Optional["Target"] = None, action: str = "flush") -> None:
        self.id = op_id
        self.cache = cache
        self.target = target
        self.action = action
        self.flush = dict(cache.flush if settings is None else settings)
        self.started: t.Optional[float] = started if self.flush.get("runs_from", "post") == "post" else None
        self.start_wall = time.time()
        self.reads_after = 0  # reads of the cache after the flush ended (settle_reads)
        self.signed = bool(self.flush.get("signed"))
        self.issued: t.Dict[str, str] = {}  # "async"/"location": the query string of the URL given out
        self.before: t.Optional[str] = None  # a cache action: the state the cache read when it was sent

    def issue(self, which: str, query: str) -> str:
        """The query string of a status URL given out for this operation (signed when the operation is)."""
        if self.signed:
            query += signature_query()
        self.issued[which] = query
        return query

    def accepts(self, query: str) -> bool:
        """A status request's raw query string: exactly one issued (any query, when unsigned)."""
        return not self.signed or query in self.issued.values()

    def status(self, now: float, observe: bool = True) -> str:
        """InProgress, or how it ended; observe=False (the control route) does not start a first_read clock."""
        if self.started is None:
            if not observe:
                return "InProgress"
            self.started, self.start_wall = now, time.time()
        if now - self.started < float(self.flush["duration"]):
            return "InProgress"
        return self.flush["result"]

    def since(self, now: float) -> float:
        """Seconds since the operation's clock started (0 before it did)."""
        return 0.0 if self.started is None else now - self.started


class Target:
    """A storage target of a cache."""

    def __init__(self, spec: t.Mapping[str, t.Any], cache: "Cache") -> None:
        self.name = spec["name"]
        self.cache = cache
        self.target_type = spec.get("target_type", "nfs3")
        self.base_state = spec.get("state", "Ready")
        self.provisioning_state = spec.get("provisioning_state", "Succeeded")
        self.junctions = list(spec.get("junctions") or [
            {"namespacePath": "/%s" % self.name, "targetPath": "/", "nfsExport": "/exports/%s" % self.name,
             "nfsAccessPolicy": "default"}])
        actions = spec.get("actions") or {}
        common = spec.get("action") or {}
        self.actions = {name: _merge(_merge(DEFAULT_TARGET_ACTION, common), actions.get(name))
                        for name in TARGET_RUNNING}
        for name, settings in self.actions.items():
            if settings["duration"] is None:  # the recorded duration, scaled; a given one stands as it is
                settings["duration"] = RECORDED_TARGET_SECONDS[name] * cache.time_scale
            if settings["already_204"] is None:
                settings["already_204"] = RECORDED_ALREADY_204[name]
        self.allocation = spec.get("allocation_percentage")
        self.operation: t.Optional[Operation] = None
        self.sent: t.Dict[str, int] = {name: 0 for name in TARGET_RUNNING}

    @property
    def id(self) -> str:
        return "%s/storagetargets/%s" % (self.cache.id, self.name)

    def state(self, now: float, observe: bool = True) -> str:
        op = self.operation
        if op is not None:
            status = op.status(now, observe)
            if status == "InProgress":
                return TARGET_RUNNING[op.action]
            if status == "Succeeded" and op.since(now) < float(op.flush["duration"]) + float(op.flush["lag"] or 0):
                return self.base_state  # the operation is over; the state catches up
            if status == "Succeeded" and op.flush.get("shows", True):
                self.base_state = TARGET_AFTER[op.action] or self.base_state
            self.operation = None
        return self.base_state

    def to_json(self, now: float) -> t.Dict[str, t.Any]:
        props: t.Dict[str, t.Any] = {
            "targetType": self.target_type,
            "junctions": copy.deepcopy(self.junctions),
            "state": self.state(now),
            "provisioningState": self.provisioning_state,
        }
        if self.target_type == "nfs3":
            props["nfs3"] = {"target": "10.0.0.30", "usageModel": "WRITE_WORKLOAD_15"}
        elif self.target_type == "blobNfs":
            props["blobNfs"] = {"target": "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Storage/"
                                          "storageAccounts/st/blobServices/default/containers/%s"
                                          % (self.cache.subscription, self.cache.resource_group, self.name),
                                "usageModel": "READ_WRITE"}
        # allocationPercentage (SPEC): the cache's space shared evenly unless the scenario says otherwise
        props["allocationPercentage"] = self.allocation if self.allocation is not None else \
            100 // max(len(self.cache.targets), 1)
        return {"name": self.name, "id": self.id, "type": "Microsoft.StorageCache/Cache/StorageTarget",
                "systemData": system_data(self.cache.created, self.cache.modified), "properties": props}


TAGS_WRITE = ("allowed", "denied_by_policy", "forbidden")
# How a Tags API write of a cache is answered, per cache (tags_write_mode). sync: 200 and the tags resource at
# once, as on every resource type where it was seen (the Tags API at a cache's scope was never recorded).
# async: 202, an empty body and a Location to poll, the tags changing when the operation ends; the Tags API
# declares 202 + Location from api-version 2022-09-01 and was seen answering it on other resource types.
TAGS_WRITE_MODES = ("sync", "async")
# When a tags write is refused with 409 AnotherOperationInProgress (tags_conflict). never; while_busy: while
# the cache has a flush, stop, start or upgrade running, one of its storage targets an action running, or an
# asynchronous tags write is pending. Seen on other resource types while busy; assumed for a cache.
TAGS_CONFLICT = ("never", "while_busy")
# What Delete does with a named tag's value (tags_delete). match_values: the tag goes only when the value
# given is its value, and "" deletes whatever the value (the API's description, read strictly: it is not
# documented well); ignore_values: every named tag goes whatever its value (assumed: another reading).
TAGS_DELETE = ("match_values", "ignore_values")
# The states in which a cache is busy for a tags write under tags_conflict while_busy.
TAGS_BUSY_STATES = ("Flushing", "Stopping", "Transitioning", "Upgrading")
# The tags_* settings of a cache; any other tags_* key is a typo, refused.
TAGS_SETTINGS = ("tags_write", "tags_write_mode", "tags_write_duration", "tags_write_retry_after", "tags_conflict",
                 "tags_read_lag", "tags_delete")
# ARM's documented tag limits (azure-resource-manager/management/tag-resources#limitations).
TAG_NAME_MAX = 512
TAG_VALUE_MAX = 256
TAGS_MAX = 50
TAG_NAME_RESERVED = "<>%&\\?/"
TAGS_OPERATIONS = {"merge": "Merge", "replace": "Replace", "delete": "Delete"}


class TagsRefused(Exception):
    """A Tags API request ARM refuses with 400 and this code; nothing changes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _JSONObject(dict):
    """A parsed JSON object that remembers whether two of its names differ only in case."""

    clash = False


def _json_object(pairs: t.List[t.Tuple[str, t.Any]]) -> _JSONObject:
    obj = _JSONObject(pairs)
    obj.clash = len({k.lower() for k, _v in pairs}) != len(pairs)
    return obj


def _utf16_len(text: str) -> int:
    """A length as ARM (.NET) counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _field(obj: t.Mapping[str, t.Any], name: str) -> t.Any:
    """A member of a JSON object, its name matched case-insensitively (as ARM deserializes)."""
    for key, value in obj.items():
        if key.lower() == name:
            return value
    return None


def tags_operation(current: t.Mapping[str, str], raw: bytes, delete: str = "match_values") -> t.Dict[str, str]:
    """The tags after a PATCH {operation, properties: {tags}} of ARM's Tags API over current; TagsRefused
    when ARM would refuse it. current is not changed. delete: one of TAGS_DELETE."""
    def invalid(why: str) -> TagsRefused:
        return TagsRefused("InvalidRequestContent", "The request content was invalid and could not be "
                                                    "deserialized: %s" % why)
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_json_object) if raw.strip() else None
    except ValueError as exc:
        raise invalid("not JSON (%s)." % exc) from None
    if not isinstance(body, dict):
        raise invalid("the body must be an object with 'operation' and 'properties'.")
    operation = _field(body, "operation")
    if not isinstance(operation, str) or operation.lower() not in TAGS_OPERATIONS:
        raise invalid("'operation' must be one of Merge, Replace, Delete.")
    properties = _field(body, "properties")
    given = _field(properties, "tags") if isinstance(properties, dict) else None
    if not isinstance(given, dict):
        raise invalid("'properties.tags' must be an object.")
    if getattr(given, "clash", False):
        raise invalid("two tag names in 'properties.tags' differ only in case.")
    for name, value in given.items():
        if not isinstance(value, str):
            raise invalid("the value of tag '%s' must be a string." % name)
        if any(c in TAG_NAME_RESERVED or ord(c) < 32 for c in name):
            raise TagsRefused("InvalidTagNameCharacters", "The tag names '%s' have reserved characters "
                                                          "'<,>,%%,&,\\,?,/' or control characters." % name)
        if not 1 <= _utf16_len(name) <= TAG_NAME_MAX:
            raise TagsRefused("InvalidTagNameLength", "The tag name '%s' must be 1 to %d characters long."
                              % (name, TAG_NAME_MAX))
        if _utf16_len(value) > TAG_VALUE_MAX:
            raise TagsRefused("InvalidTagValueLength", "The tag value '%s' of tag '%s' exceeds the maximum "
                                                       "length of %d characters." % (value, name, TAG_VALUE_MAX))
    operation = TAGS_OPERATIONS[operation.lower()]
    result = dict(current)
    if operation == "Replace":
        result = dict(given)
    elif operation == "Merge":
        for name, value in given.items():
            for old in [k for k in result if k.lower() == name.lower()]:
                del result[old]  # names are case-insensitive: the new spelling stands
            result[name] = value
    else:  # Delete: a name with a value goes only when the value is exactly that; with "" whatever its value
        for name, value in given.items():
            for old in [k for k in result if k.lower() == name.lower()]:
                if value == "" or result[old] == value or delete == "ignore_values":
                    del result[old]
    if len(result) > TAGS_MAX:
        raise TagsRefused("TooManyTags", "The resource would have %d tags; a resource can have at most %d."
                          % (len(result), TAGS_MAX))
    return result


def check_tags(tags: t.Any) -> t.Dict[str, str]:
    """A cache's tags as the control route gives them: an object of strings. ARM's limits are not applied,
    so a test can plant what ARM would refuse (61 tags, a 300-character value)."""
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise ValueError("tags: must be an object of string names and string values")
    return dict(tags)


def system_data(created: str, modified: str) -> t.Dict[str, t.Any]:
    """ARM's systemData of a resource (SPEC shape; the emulator's values)."""
    return {"createdBy": "emulator-client", "createdByType": "Application", "createdAt": created,
            "lastModifiedBy": "emulator-client", "lastModifiedByType": "Application", "lastModifiedAt": modified}


def _seconds(spec: t.Mapping[str, t.Any], name: str, default: float) -> float:
    """A setting in seconds: a finite number of 0 or more (ValueError otherwise)."""
    value = spec.get(name, default)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 0:
        raise ValueError("%s %r: must be a number of seconds of 0 or more" % (name, value))
    return seconds


def _choice(spec: t.Mapping[str, t.Any], name: str, choices: t.Sequence[str]) -> str:
    """A setting that is one of choices (the first by default; ValueError otherwise)."""
    value = spec.get(name, choices[0])
    if value not in choices:
        raise ValueError("%s %r: not one of %s" % (name, value, ", ".join(choices)))
    return value


class TagsWrite:
    """An accepted asynchronous write of a cache's tags (tags_write_mode async): its body is applied to the
    cache's tags as they are when it ends, duration seconds after the PATCH."""

    def __init__(self, op_id: str, cache: "Cache", raw: bytes, sent: float, duration: float) -> None:
        self.id = op_id
        self.cache = cache
        self.raw = raw
        self.ends = sent + duration
        self.tags: t.Optional[t.Dict[str, str]] = None  # the tags it left, once it landed
        self.refused: t.Optional[TagsRefused] = None  # what ARM refused when it came to land (nothing changed)


class Cache:
    def __init__(self, spec: t.Mapping[str, t.Any], subscription: str, time_scale: float = 1.0) -> None:
        self.name = spec["name"]
        self.time_scale = time_scale
        self.resource_group = spec.get("resource_group", "rg-hpc")
        self.subscription = spec.get("subscription_id", subscription)
        self.location = spec.get("location", "eastus")
        self.tags = dict(spec.get("tags") or {})
        # What a write through ARM's Tags API meets: allowed; denied_by_policy (403 RequestDisallowedByPolicy,
        # as an Azure Policy deny assignment answers); forbidden (403 AuthorizationFailed, the caller lacking
        # Microsoft.Resources/tags/write).
        self.tags_write = spec.get("tags_write", "allowed")
        if self.tags_write not in TAGS_WRITE:
            raise ValueError("tags_write %r: not one of %s" % (self.tags_write, ", ".join(TAGS_WRITE)))
        unknown = sorted(k for k in spec if k.startswith("tags_") and k not in TAGS_SETTINGS)
        if unknown:
            raise ValueError("%s: not one of %s" % (", ".join(unknown), ", ".join(TAGS_SETTINGS)))
        # sync (200 at once) or async (202 + Location; documented from api-version 2022-09-01, seen on other
        # resource types): see TAGS_WRITE_MODES
        self.tags_write_mode = _choice(spec, "tags_write_mode", TAGS_WRITE_MODES)
        # async: seconds from the PATCH until the write lands (assumed; taken as given, not time_scaled)
        self.tags_write_duration = _seconds(spec, "tags_write_duration", 1.0)
        # async: Retry-After on the 202 answers (None: none, as the Tags API declares none; assumed)
        self.tags_write_retry_after = spec.get("tags_write_retry_after")
        if self.tags_write_retry_after is not None and (
                not isinstance(self.tags_write_retry_after, int) or isinstance(self.tags_write_retry_after, bool)
                or self.tags_write_retry_after < 0):
            raise ValueError("tags_write_retry_after %r: must be a whole number of seconds of 0 or more"
                             % (self.tags_write_retry_after,))
        # 409 AnotherOperationInProgress while busy (seen on other resource types): see TAGS_CONFLICT
        self.tags_conflict = _choice(spec, "tags_conflict", TAGS_CONFLICT)
        # Seconds after each change during which reads (the cache's GET, the caches list, GET of the tags
        # resource) still show the tags before it: a GET was seen showing the old tags after a write on other
        # resource types (ARM's caches are eventually consistent). Writes always apply to the true tags.
        self.tags_read_lag = _seconds(spec, "tags_read_lag", 0.0)
        self.tags_delete = _choice(spec, "tags_delete", TAGS_DELETE)  # see TAGS_DELETE (not documented well)
        # (when, the tags from then on): the changes a lagged read may still show, the oldest the one visible
        self.tags_history: t.List[t.Tuple[float, t.Dict[str, str]]] = [(-math.inf, self.tags)]
        self.tags_pending: t.List[TagsWrite] = []  # asynchronous writes not landed yet, in the order sent
        self.base_state = spec.get("state", "Healthy")
        self.description = spec.get("status_description", "The cache is in Running state")
        self.provisioning_state = spec.get("provisioning_state", "Succeeded")
        self.flush = _merge(DEFAULT_FLUSH, spec.get("flush"))
        # An already running flush: it ends flushing_for seconds after a request first sees it, so a
        # slow client start cannot use the window up before the task under test looks.
        self.flushing_for = float(spec.get("flushing_for", 0))
        self.first_seen: t.Optional[float] = None
        self.operation: t.Optional[Operation] = None
        self.flushes = 0
        # Stop, start and upgrade: their settings, the one that runs, how many were sent
        for name in CACHE_RUNNING:
            if not isinstance(spec.get(name) or {}, dict):
                raise ValueError("%s: must be an object of settings" % name)
        for name in QUIET_CACHE_ACTIONS:
            if not isinstance(spec.get(name) or {}, dict):
                raise ValueError("%s: must be an object of settings" % name)
        self.actions = {name: _merge(DEFAULT_CACHE_ACTION, spec.get(name)) for name in ("stop", "start")
                        + QUIET_CACHE_ACTIONS}
        self.actions["upgrade"] = _merge(_merge(DEFAULT_CACHE_ACTION, DEFAULT_UPGRADE), spec.get("upgrade"))
        for name, settings in self.actions.items():
            if settings["duration"] is None:  # the recorded duration, scaled; a given one stands as it is
                settings["duration"] = RECORDED_CACHE_SECONDS[name] * time_scale
            if settings.get("fails"):
                settings["result"] = "Failed"
        upgrade = self.actions["upgrade"]
        if upgrade["result"] == "Failed" and not upgrade["error"]:
            upgrade["error"] = {"code": "UpgradeFailed", "message": "The firmware upgrade to %s failed."
                                % upgrade["pending"]}
        # the recorded upgradeStatus shape (empty pending version, the 0001-01-01 deadline) for a cache
        # whose scenario speaks of its firmware; the earlier shape (nulls) otherwise
        # (since issue 26 always the recorded shape; "firmware": "null" keeps the nulls of 0.4.0 for a test)
        self.recorded_firmware = spec.get("firmware") != "null"
        self.firmware = {key: upgrade[key] for key in ("current", "pending", "deadline", "last")}
        self.lifecycle: t.Optional[Operation] = None
        self.sent: t.Dict[str, int] = {name: 0 for name in tuple(CACHE_RUNNING) + QUIET_CACHE_ACTIONS}
        self.deleting: t.Optional[Operation] = None  # a DELETE that runs: the cache goes once it Succeeded
        # health.conditions ({message, timestamp}, SPEC): none unless the scenario gives some; a healthy
        # cache's recorded GET has no conditions key at all (REC)
        self.conditions = list(spec.get("conditions") or [])
        self.zones = list(spec.get("zones") or ["1"])
        self.created = spec.get("created", "2026-10-01T00:00:00.0000000Z")
        self.modified = spec.get("modified", self.created)
        # What a cache PATCH may change (SPEC: the Cache body of Caches_Update; the read-only properties,
        # health, mountAddresses, upgradeStatus..., are ignored as ARM ignores them)
        self.settings: t.Dict[str, t.Any] = {
            # the 2026-01-01 examples' shapes (Caches_Get.json), with the emulator's values
            "networkSettings": {"mtu": 1500, "utilityAddresses": ["10.0.0.7", "10.0.0.8"], "dnsServers": [],
                                "dnsSearchDomain": "", "ntpServer": "time.windows.com"},
            "securitySettings": {"accessPolicies": [{"name": "default", "accessRules": [
                {"scope": "default", "access": "rw", "suid": False, "submountAccess": True, "rootSquash": False}]}]},
            "upgradeSettings": {"upgradeScheduleEnabled": False},
            "encryptionSettings": {"rotationToLatestKeyVersionEnabled": False},
            "directoryServicesSettings": {"usernameDownload": {"extendedGroups": False, "usernameSource": "None",
                                                               "usernameDownloaded": "No"}},
        }
        for key, value in (spec.get("settings") or {}).items():
            self.settings[key] = value
        self.targets: t.Dict[str, Target] = {}
        for target_spec in spec.get("storage_targets") or []:
            target = Target(target_spec, self)
            self.targets[target.name.lower()] = target

    @property
    def id(self) -> str:
        return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.StorageCache/caches/%s" % (
            self.subscription, self.resource_group, self.name)

    # Tags ------------------------------------------------------------------
    def change_tags(self, tags: t.Mapping[str, str], when: float) -> None:
        """The tags from when on (a new dict: an answer being written from the old one is not disturbed)."""
        self.tags = dict(tags)
        self.tags_history.append((when, self.tags))

    def plant_tags(self, tags: t.Mapping[str, str], now: float) -> None:
        """Tags set by the control route: true and visible at once (no read lag)."""
        self.settle_tags(now)
        self.tags = dict(tags)
        self.tags_history = [(-math.inf, self.tags)]

    def settle_tags(self, now: float) -> None:
        """Land the asynchronous writes whose time has come, in the order sent, each at its own end; one that
        ARM would now refuse (51 tags after another write) ends refused and changes nothing."""
        while self.tags_pending and self.tags_pending[0].ends <= now:
            write = self.tags_pending.pop(0)
            try:
                tags = tags_operation(self.tags, write.raw, self.tags_delete)
            except TagsRefused as refused:
                write.refused = refused
                continue
            self.change_tags(tags, write.ends)
            write.tags = self.tags

    def true_tags(self, now: float) -> t.Dict[str, str]:
        """The tags now, every write that has ended applied."""
        self.settle_tags(now)
        return dict(self.tags)

    def visible_tags(self, now: float) -> t.Dict[str, str]:
        """The tags a read shows now: the newest change at least tags_read_lag seconds old."""
        self.settle_tags(now)
        seen = now - self.tags_read_lag
        newest = max(i for i, (when, _tags) in enumerate(self.tags_history) if when <= seen)
        del self.tags_history[:newest]  # older ones can never be shown again
        return dict(self.tags_history[0][1])

    def tags_busy(self, now: float) -> t.Optional[str]:
        """Why a tags write is refused with 409 now (tags_conflict while_busy), or None. Reads nothing as a
        client would: no first_read clock starts."""
        if self.tags_conflict == "never":
            return None
        state = self.state(now, observe=False)
        if state in TAGS_BUSY_STATES:
            return "the cache is %s" % state
        for target in self.targets.values():
            op = target.operation
            if op is not None and op.status(now, observe=False) == "InProgress":
                return "storage target %s: %s in progress" % (target.name, op.action)
        self.settle_tags(now)
        if self.tags_pending:
            return "a tags write is in progress"
        return None

    def state(self, now: float, observe: bool = True) -> str:
        """The health state now; observe=False (the control route) does not start a flushing_for window."""
        if self.base_state == "Flushing" and self.flushing_for and (observe or self.first_seen is not None):
            self.first_seen = now if self.first_seen is None else self.first_seen
            if now - self.first_seen >= self.flushing_for:
                self.base_state = "Healthy"
        running = self._lifecycle(now, observe)
        if running is not None:
            return running
        if self.operation is not None:
            if self.operation.status(now, observe) == "InProgress":
                return "Flushing"
            flush = self.operation.flush
            if flush.get("settle_reads"):
                self.operation.reads_after += 1 if observe else 0
                if self.operation.reads_after <= int(flush["settle_reads"]):
                    return flush.get("state_after") or "Healthy"
                return "Healthy"
            settled = self.operation.since(now) >= float(flush["duration"]) + float(flush.get("settle") or 0)
            if flush.get("settle") and settled:
                return "Healthy"
            self.base_state = flush.get("state_after") or "Healthy"
        return self.base_state

    def _lifecycle(self, now: float, observe: bool) -> t.Optional[str]:
        """The state while a stop, start or upgrade runs; once it ended, its outcome is applied (state,
        description, firmware) and None returned."""
        op = self.lifecycle
        if op is None:
            return None
        status = op.status(now, observe)
        if status == "InProgress":
            return CACHE_RUNNING[op.action]
        if status == "Succeeded":
            self.base_state = CACHE_AFTER[op.action]
            if op.action == "upgrade":
                firmware = self.firmware
                firmware["current"] = firmware["pending"] or firmware["current"]
                firmware["pending"] = firmware["deadline"] = None
                firmware["last"] = datetime.fromtimestamp(op.start_wall + float(op.flush["duration"]),
                                                          tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
        else:
            self.base_state = CACHE_FAILED[op.action] or op.before or self.base_state
        self.description = CACHE_DESCRIPTIONS.get(self.base_state, self.description)
        self.lifecycle = None
        return None

    def upgrade_status(self) -> t.Dict[str, t.Any]:
        firmware = self.firmware
        pending = firmware["pending"]
        return {
            "currentFirmwareVersion": firmware["current"],
            "firmwareUpdateStatus": "available" if pending else "unavailable",
            "firmwareUpdateDeadline": firmware["deadline"] if pending else (NO_DEADLINE if self.recorded_firmware
                                                                            else None),
            "lastFirmwareUpdate": firmware["last"],
            "pendingFirmwareVersion": pending or ("" if self.recorded_firmware else None),
        }

    def system_data(self) -> t.Dict[str, t.Any]:
        """ARM's systemData (SPEC: Caches_Get.json), as a caller with a service principal left it."""
        return system_data(self.created, self.modified)

    def update(self, raw: bytes) -> None:
        """Apply a PATCH body (SPEC, Caches_Update: the Cache object): tags replace the tags when given, and the
        writable settings in properties replace theirs; ValueError when the body is not a JSON object."""
        body = json.loads(raw.decode("utf-8") or "{}") if raw.strip() else {}
        if not isinstance(body, dict):
            raise ValueError("the body must be a Cache object")
        if "tags" in body:
            now = time.monotonic()
            self.settle_tags(now)
            self.change_tags(check_tags(body["tags"] or {}), now)
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise ValueError("properties must be an object")
        for key in self.settings:
            if isinstance(props.get(key), dict):
                self.settings[key] = copy.deepcopy(props[key])
        self.modified = datetime.now(tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")

    def to_json(self, now: float) -> t.Dict[str, t.Any]:
        state = self.state(now)
        description = self.description
        if state == "Flushing":
            description = "The cache is flushing"
        elif self.lifecycle is not None and state == CACHE_RUNNING[self.lifecycle.action]:
            description = CACHE_DESCRIPTIONS[state]
        health: t.Dict[str, t.Any] = {"state": state, "statusDescription": description}
        if self.conditions:  # REC: no conditions key when there are none
            health["conditions"] = copy.deepcopy(self.conditions)
        body: t.Dict[str, t.Any] = {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.StorageCache/caches",
            "location": self.location,
            "sku": {"name": "Standard_2G"},
            "systemData": self.system_data(),
            "properties": dict({
                "cacheSizeGB": 3072,
                "health": health,
                "provisioningState": "Deleting" if self.deleting is not None else self.provisioning_state,
                "subnet": "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/virtualNetworks/vnet/"
                          "subnets/default" % (self.subscription, self.resource_group),
                "upgradeStatus": self.upgrade_status(),
                "mountAddresses": ["10.0.0.4", "10.0.0.5", "10.0.0.6"],
                "zones": list(self.zones),
            }, **copy.deepcopy(self.settings)),
        }
        visible = self.visible_tags(now)
        if visible:  # REC: an untagged cache's GET has no tags key at all
            body["tags"] = visible
        return body


class World:
    def __init__(self, scenario: t.Optional[t.Mapping[str, t.Any]] = None) -> None:
        self.lock = threading.RLock()
        self.load(scenario or {})

    def load(self, scenario: t.Mapping[str, t.Any]) -> None:
        """Replace the world with a scenario's; a scenario with a bad fault or time_scale changes nothing."""
        faults = [Fault(f) for f in scenario.get("faults") or []]
        # multiplies the recorded durations of storage-target actions (RECORDED_TARGET_SECONDS): 0.1 makes
        # a recorded 8-s target flush last 0.8 s; durations a scenario gives are taken as they are
        time_scale = float(scenario.get("time_scale", 1.0))
        if math.isnan(time_scale) or time_scale < 0:
            raise ValueError("time_scale %r: must be a number of 0 or more" % scenario.get("time_scale"))
        subscription = scenario.get("subscription_id", DEFAULT_SUBSCRIPTION)
        # The throttling buckets of cache flush and stop/start, per subscription: always counted and
        # announced (x-ms-ratelimit-remaining-resource), enforced (429) only when the scenario has a
        # throttle key, so a scenario that flushes more than 60 caches in 5 minutes still runs.
        throttle = throttle_settings(scenario.get("throttle"))
        throttle_code = (scenario.get("throttle") or {}).get("code")
        # built before the world changes, so a cache with a bad setting leaves the world as it was
        caches: t.Dict[t.Tuple[str, str, str], Cache] = {}
        for spec in scenario.get("caches") or []:
            cache = Cache(spec, subscription, time_scale)
            caches[self.key(cache.subscription, cache.resource_group, cache.name)] = cache
        with self.lock:
            self.time_scale = time_scale
            self.subscription = subscription
            self.page_size = int(scenario.get("page_size", 50))
            self.token_lifetime = float(scenario.get("token_lifetime", 3600))
            self.identity_header = scenario.get("identity_header", "emulator-identity-header")
            self.clients = dict(scenario.get("clients") or {"emulator-client": "emulator-secret"})
            self.users = dict(scenario.get("users") or {})
            self.metadata = scenario.get("metadata", "2015")  # 2015, 2022-single, 2022-list, none
            self.audience = scenario.get("audience")  # the token audience the metadata names (default: itself)
            self.require_token = bool(scenario.get("require_token", True))
            self.throttle = throttle
            self.throttle_enforced = "throttle" in scenario
            self.throttle_code = throttle_code
            self.buckets: t.Dict[t.Tuple[str, str], Bucket] = {}
            self.caches = caches
            self.faults = faults
            self.operations: t.Dict[str, Operation] = {}
            self.tag_writes: t.Dict[str, TagsWrite] = {}  # asynchronous tags writes, by operation id
            self.tokens: t.Dict[str, float] = {}
            self.log: t.List[t.Dict[str, t.Any]] = []
            # Which scenario load this is: a request is logged only under the one it began in.
            self.generation = getattr(self, "generation", 0) + 1

    @staticmethod
    def key(subscription: str, resource_group: str, name: str) -> t.Tuple[str, str, str]:
        # ARM resource group and resource names are case-insensitive.
        return subscription.lower(), resource_group.lower(), name.lower()

    def find(self, subscription: str, resource_group: str, name: str) -> t.Optional[Cache]:
        """The cache, or None; a cache whose DELETE has succeeded is gone from then on."""
        with self.lock:
            key = self.key(subscription, resource_group, name)
            cache = self.caches.get(key)
            if cache is not None and cache.deleting is not None:
                status = cache.deleting.status(time.monotonic())
                if status == "Succeeded":
                    del self.caches[key]
                    return None
                if status != "InProgress":
                    cache.deleting = None  # a failed delete leaves the cache as it was
            return cache

    def fault_for(self, kind: str, cache: t.Optional[str]) -> t.Optional[Fault]:
        with self.lock:
            for fault in self.faults:
                if fault.take(kind, cache):
                    return fault
        return None

    def issue_token(self, lifetime: t.Optional[float] = None) -> t.Tuple[str, float]:
        token = "emu_" + secrets.token_urlsafe(32)
        expires = time.time() + (self.token_lifetime if lifetime is None else lifetime)
        with self.lock:
            self.tokens[token] = expires
        return token, expires

    def token_state(self, token: t.Optional[str]) -> str:
        if not token:
            return "missing"
        expires = self.tokens.get(token)
        if expires is None:
            return "invalid"
        return "valid" if expires > time.time() else "expired"

    def start_flush(self, cache: Cache) -> Operation:
        with self.lock:
            op = Operation(str(uuid.uuid4()), cache, time.monotonic())
            cache.operation = op
            cache.flushes += 1
            self.operations[op.id] = op
            return op

    def start_target_action(self, target: Target, action: str) -> Operation:
        with self.lock:
            op = Operation(str(uuid.uuid4()), target.cache, time.monotonic(), target.actions[action], target, action)
            target.operation = op
            target.sent[action] += 1
            self.operations[op.id] = op
            return op

    def start_cache_action(self, cache: Cache, action: str, before: str) -> Operation:
        """Start a stop, start, upgrade, debugInfo or delete of a cache; before is the state it read when sent.
        debugInfo and delete change no health state (a delete sets provisioningState Deleting)."""
        with self.lock:
            op = Operation(str(uuid.uuid4()), cache, time.monotonic(), cache.actions[action], None, action)
            op.before = before
            if action == "delete":
                cache.deleting = op
            elif action not in QUIET_CACHE_ACTIONS:
                cache.lifecycle = op
                cache.operation = None  # a finished flush no longer decides the state
            cache.sent[action] += 1
            self.operations[op.id] = op
            return op

    def start_tags_write(self, cache: Cache, raw: bytes) -> TagsWrite:
        """Accept an asynchronous write of a cache's tags (already validated); it lands when it ends."""
        with self.lock:
            write = TagsWrite(str(uuid.uuid4()), cache, raw, time.monotonic(), cache.tags_write_duration)
            cache.tags_pending.append(write)
            self.tag_writes[write.id] = write
            return write

    def take(self, kind: str, subscription: str) -> t.Tuple[bool, str, float, int]:
        """Count a request in its subscription's bucket (flush or start_stop): (allowed, the
        x-ms-ratelimit-remaining-resource value, seconds until the bucket refills, requests seen in the
        window, refused ones included)."""
        with self.lock:
            spec = self.throttle[kind]
            key = (subscription.lower(), kind)
            if key not in self.buckets:
                self.buckets[key] = Bucket(spec["name"], spec["limit"], spec["window"])
            bucket = self.buckets[key]
            allowed, remaining, refill = bucket.take(time.monotonic(), self.throttle_enforced)
            return allowed, "%s%s;%d" % (THROTTLE_PREFIX, bucket.name, remaining), refill, bucket.count + bucket.refused_now

    def record(self, entry: t.Dict[str, t.Any], generation: int) -> None:
        """Log a request, unless it began under an earlier scenario (a killed test's last request)."""
        with self.lock:
            if generation != self.generation:
                return
            entry["seq"] = len(self.log) + 1
            self.log.append(entry)

    def snapshot(self) -> t.Dict[str, t.Any]:
        with self.lock:
            now = time.monotonic()
            return {
                "caches": [
                    {"name": c.name, "resource_group": c.resource_group, "subscription_id": c.subscription,
                     "state": c.state(now, observe=False), "flushes": c.flushes, "tags": c.true_tags(now),
                     # what reads show now (tags_read_lag), and the asynchronous writes not landed yet
                     "visible_tags": c.visible_tags(now),
                     "tags_pending": [{"id": w.id, "ends_in": round(w.ends - now, 3)} for w in c.tags_pending],
                     "actions": {k: v for k, v in c.sent.items() if v or k in CACHE_RUNNING},
                     "upgrade_status": c.upgrade_status()}
                    for c in self.caches.values()
                ],
                "storage_targets": [
                    {"cache": c.name, "name": tg.name, "state": tg.state(now, observe=False),
                     "sent": {k: v for k, v in tg.sent.items() if v or k in COLLECTION_TARGET_ACTIONS}}
                    for c in self.caches.values() for tg in c.targets.values()
                ],
                "throttle": {"enforced": self.throttle_enforced,
                             "buckets": [dict(b.describe(now), subscription_id=sub, bucket=b.name, kind=kind)
                                         for (sub, kind), b in sorted(self.buckets.items())]},
                "tokens_issued": list(self.tokens),
                "log": [dict(e) for e in self.log],  # copies: a handler may still add to its entry
            }
