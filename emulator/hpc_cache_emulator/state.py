# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulated world: caches, their flush operations, tokens, faults and the request log.

Everything time-dependent is computed from a monotonic clock when asked, so
no background thread runs. All access goes through one lock.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
import typing as t
import uuid

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
DEFAULT_FLUSH = {
    # recorded: 204 + azure-asyncoperation only, as the real service was recorded answering
    #   (tests/fixtures/recorded); async: 202 + Azure-AsyncOperation + Location (the API's example);
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
}


# A storage-target action (flush, suspend, resume, dnsRefresh). No recording of the real service's
# answers to these exists; the default is the API's documented 202 with both headers, and every
# mode of DEFAULT_FLUSH is available (docs/service-behaviour.md).
DEFAULT_TARGET_ACTION = {
    "mode": "async",
    "duration": 2.0,
    "retry_after": None,
    "result": "Succeeded",
    "error": None,
    "lag": 0,  # seconds after a successful end during which the target still reads its old state
    "runs_from": "first_read",  # as DEFAULT_FLUSH
    "status_base": None,
    "location_final": 204,
}
# What a target reads while an action runs, and once it succeeded (None: the state it had).
TARGET_RUNNING = {"flush": "Flushing", "suspend": "Busy", "resume": "Busy", "dnsRefresh": "Busy"}
TARGET_AFTER = {"flush": None, "suspend": "Suspended", "resume": "Ready", "dnsRefresh": None}


def _merge(base: t.Dict[str, t.Any], extra: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    merged = copy.deepcopy(base)
    merged.update(extra or {})
    return merged


class Fault:
    """An injected misbehaviour, used up after count matching requests (count < 0: forever)."""

    def __init__(self, spec: t.Mapping[str, t.Any]) -> None:
        self.on = spec.get("on", "any")  # flush, get, list, operation, location, target_action,
        # target, targets, token, metadata, any
        self.cache = spec.get("cache")
        self.count = int(spec.get("count", 1))
        self.after = int(spec.get("after", 0))  # let this many matching requests through first
        self.kind = spec.get("kind", "status")  # status, reset, delay, malformed, empty, headers, trickle
        # a body fault answers 200 unless told otherwise; a status fault 503
        self.status = int(spec.get("status", 200 if self.kind in ("empty", "malformed", "trickle") else 503))
        self.retry_after = spec.get("retry_after")
        self.delay = float(spec.get("delay", 0))
        self.processed = bool(spec.get("processed", False))  # post: the flush starts before the fault
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
        return "%s:%s" % (self.kind, self.status if self.kind == "status" else self.delay or "")


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
            if status == "Succeeded":
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
        return {"name": self.name, "id": self.id, "type": "Microsoft.StorageCache/Cache/StorageTarget",
                "properties": props}


class Cache:
    def __init__(self, spec: t.Mapping[str, t.Any], subscription: str) -> None:
        self.name = spec["name"]
        self.resource_group = spec.get("resource_group", "rg-hpc")
        self.subscription = spec.get("subscription_id", subscription)
        self.location = spec.get("location", "eastus")
        self.tags = dict(spec.get("tags") or {})
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
        self.targets: t.Dict[str, Target] = {}
        for target_spec in spec.get("storage_targets") or []:
            target = Target(target_spec, self)
            self.targets[target.name.lower()] = target

    @property
    def id(self) -> str:
        return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.StorageCache/caches/%s" % (
            self.subscription, self.resource_group, self.name)

    def state(self, now: float, observe: bool = True) -> str:
        """The health state now; observe=False (the control route) does not start a flushing_for window."""
        if self.base_state == "Flushing" and self.flushing_for and (observe or self.first_seen is not None):
            self.first_seen = now if self.first_seen is None else self.first_seen
            if now - self.first_seen >= self.flushing_for:
                self.base_state = "Healthy"
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

    def to_json(self, now: float) -> t.Dict[str, t.Any]:
        state = self.state(now)
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.StorageCache/caches",
            "location": self.location,
            "tags": self.tags,
            "sku": {"name": "Standard_2G"},
            "properties": {
                "cacheSizeGB": 3072,
                "health": {
                    "state": state,
                    "statusDescription": "The cache is flushing" if state == "Flushing" else self.description,
                    "conditions": [],
                },
                "provisioningState": self.provisioning_state,
                "subnet": "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/virtualNetworks/vnet/"
                          "subnets/default" % (self.subscription, self.resource_group),
                "upgradeStatus": {
                    "currentFirmwareVersion": "V5.1.0",
                    "firmwareUpdateStatus": "unavailable",
                    "firmwareUpdateDeadline": None,
                    "lastFirmwareUpdate": "2026-10-01T00:00:00.0000000Z",
                    "pendingFirmwareVersion": None,
                },
                "mountAddresses": ["10.0.0.4", "10.0.0.5", "10.0.0.6"],
            },
        }


class World:
    def __init__(self, scenario: t.Optional[t.Mapping[str, t.Any]] = None) -> None:
        self.lock = threading.RLock()
        self.load(scenario or {})

    def load(self, scenario: t.Mapping[str, t.Any]) -> None:
        with self.lock:
            self.subscription = scenario.get("subscription_id", DEFAULT_SUBSCRIPTION)
            self.page_size = int(scenario.get("page_size", 50))
            self.token_lifetime = float(scenario.get("token_lifetime", 3600))
            self.identity_header = scenario.get("identity_header", "emulator-identity-header")
            self.clients = dict(scenario.get("clients") or {"emulator-client": "emulator-secret"})
            self.users = dict(scenario.get("users") or {})
            self.metadata = scenario.get("metadata", "2015")  # 2015, 2022-single, 2022-list, none
            self.audience = scenario.get("audience")  # the token audience the metadata names (default: itself)
            self.require_token = bool(scenario.get("require_token", True))
            self.caches: t.Dict[t.Tuple[str, str, str], Cache] = {}
            for spec in scenario.get("caches") or []:
                cache = Cache(spec, self.subscription)
                self.caches[self.key(cache.subscription, cache.resource_group, cache.name)] = cache
            self.faults = [Fault(f) for f in scenario.get("faults") or []]
            self.operations: t.Dict[str, Operation] = {}
            self.tokens: t.Dict[str, float] = {}
            self.log: t.List[t.Dict[str, t.Any]] = []
            # Which scenario load this is: a request is logged only under the one it began in.
            self.generation = getattr(self, "generation", 0) + 1

    @staticmethod
    def key(subscription: str, resource_group: str, name: str) -> t.Tuple[str, str, str]:
        # ARM resource group and resource names are case-insensitive.
        return subscription.lower(), resource_group.lower(), name.lower()

    def find(self, subscription: str, resource_group: str, name: str) -> t.Optional[Cache]:
        return self.caches.get(self.key(subscription, resource_group, name))

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
                     "state": c.state(now, observe=False), "flushes": c.flushes}
                    for c in self.caches.values()
                ],
                "storage_targets": [
                    {"cache": c.name, "name": tg.name, "state": tg.state(now, observe=False), "sent": dict(tg.sent)}
                    for c in self.caches.values() for tg in c.targets.values()
                ],
                "tokens_issued": list(self.tokens),
                "log": list(self.log),
            }
