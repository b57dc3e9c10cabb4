# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many flushes from one process: one token, one connection pool, a bounded number at a time.

Each cache is flushed by its own FlushTask, exactly as the single-cache module
does it; this layer only schedules them and keeps one cache's failure from
touching another's result. A cache listed twice is flushed once (two tasks
reading Healthy at the same moment would both send a flush).

The flushes of a subscription are paced together (pacing.Pacer, set on the shared
client for the run): they follow the service's throttling budget and, when it is
spent, wait for its refill as one, so a fleet larger than the budget gets about
one 429 per refill instead of one per waiting cache. Reads are not paced.

The task of azure_hpc_cache_flush_many is here too (flush_fleet): its options
(FLEET_OPTIONS), each entry checked on its own, and the summary of every
cache's result; the module only declares, calls and exits.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
import typing as t
from dataclasses import dataclass, field

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_flush import FLUSH_OPTIONS, FlushTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient
from ansible_collections.azure_hpc.cache.plugins.module_utils._fleet.pacing import Pacer
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ValidationError, failure_of

# How often the waiting thread wakes up, so an interrupt (Ctrl-C, a cancelled job) is seen at once.
JOIN_STEP = 0.5
# The most caches flushed at the same time (max_concurrent).
MAX_CONCURRENT = 100
# Failures named in msg; every one is in the caches list.
SHOWN_FAILURES = 5


@dataclass(frozen=True)
class FleetItem:
    """One entry of the list: the cache, its own interlock, and the caller's label for the result."""

    label: str
    ref: CacheRef
    allowed_states: t.Sequence[str] = field(default_factory=tuple)

    @property
    def key(self) -> t.Tuple[str, str, str]:
        # ARM names are case-insensitive: Cache-1 and cache-1 are one cache.
        return (self.ref.subscription_id.lower(), self.ref.resource_group.lower(), self.ref.name.lower())


class FleetFlush:
    def __init__(self, ops: CacheOperations, items: t.Sequence[FleetItem], *, options: ActionOptions,
                 max_concurrent: int, pacing: bool = True) -> None:
        """options: how each flush runs; each is bounded by options.wait_timeout from when it starts."""
        self.ops = ops
        self.items = list(items)
        self.options = options
        self.max_concurrent = max_concurrent
        # One budget per subscription, shared by every worker (pacing=False: each flush retries on its own).
        self.pacer: t.Optional[Pacer] = Pacer(clock=ops.client.clock, sleep=ops.client.sleep) if pacing else None
        self._results: t.Dict[t.Tuple[str, str, str], t.Dict[str, t.Any]] = {}

    def unique(self) -> t.List[FleetItem]:
        """The first entry of each distinct cache, in the order given."""
        first: t.Dict[t.Tuple[str, str, str], FleetItem] = {}
        for item in self.items:
            first.setdefault(item.key, item)
        return list(first.values())

    def _flush_one(self, item: FleetItem) -> t.Dict[str, t.Any]:
        task = FlushTask(self.ops, item.ref, options=self.options, allowed_states=item.allowed_states)
        try:
            result: t.Dict[str, t.Any] = dict(task.run())
        except Exception as exc:  # pylint: disable=broad-exception-caught  # one cache must not stop the others
            msg, learnt = failure_of(exc)
            result = dict(task.result, **learnt)
            result.update(failed=True, msg=msg)
            return result
        result["failed"] = False
        return result

    def _worker(self, work: "queue.Queue[FleetItem]") -> None:
        while True:
            try:
                item = work.get_nowait()
            except queue.Empty:
                return
            self._results[item.key] = self._flush_one(item)

    def run(self) -> t.List[t.Dict[str, t.Any]]:
        """One result per entry, in the order given, each with its label and cache."""
        unique = self.unique()
        work: "queue.Queue[FleetItem]" = queue.Queue()
        for item in unique:
            work.put(item)
        # Daemon threads: an interrupted module exits at once instead of waiting out every flush.
        threads = [threading.Thread(target=self._worker, args=(work,), name="flush-%d" % n, daemon=True)
                   for n in range(min(self.max_concurrent, len(unique)))]
        client = self.ops.client
        paced_before = client.pacer
        if self.pacer is not None:
            client.pacer = self.pacer
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                # Every FlushTask ends by its deadline and its requests' timeouts (a held flush too), so this ends.
                while thread.is_alive():
                    thread.join(JOIN_STEP)
        finally:
            client.pacer = paced_before
        results = []
        for item in self.items:
            result = dict(self._results.get(item.key) or {"changed": False, "polls": 0, "failed": True,
                                                          "msg": "The flush of this cache did not run"})
            result.update(label=item.label, name=item.ref.name, resource_group=item.ref.resource_group,
                          subscription_id=item.ref.subscription_id)
            results.append(result)
        return results


# The task of azure_hpc_cache_flush_many ----------------------------------------


def concurrency(value: object, option: str) -> int:
    number = rules.positive_int(value, option)
    if number > MAX_CONCURRENT:
        raise ValidationError(option, "%r must be at most %d" % (number, MAX_CONCURRENT))
    return number


# The options of azure_hpc_cache_flush_many: how each flush runs (FLUSH_OPTIONS), the caches, the bound.
# Each entry of caches is checked on its own (items_of), so that one bad entry fails alone.
FLEET_OPTIONS = Options(
    FLUSH_OPTIONS,
    caches=Option("list", elements="dict", required=True, options=Options(
        name=Option("str", required=True, aliases=("cache_name",)),
        resource_group=Option("str", required=True),
        subscription_id=Option("str"),
        allowed_states=Option("list", elements="str"),
        label=Option("str"),
    )),
    max_concurrent=Option("int", 20, concurrency),
)


def items_of(entries: t.Sequence[t.Mapping[str, t.Any]], subscription_id: t.Optional[str],
             allowed_states: t.Sequence[str]) -> t.List[t.Union[FleetItem, ValidationError]]:
    """Each entry checked by the rules of _base/validation.py: a FleetItem, or the ValidationError naming caches[i].option.

    An invalid entry fails alone (no request is sent for it): one host's bad input must not stop
    the flush of every other cache of a play batch.
    """
    items: t.List[t.Union[FleetItem, ValidationError]] = []
    for index, entry in enumerate(entries):
        where = "caches[%d]." % index
        try:
            subscription = entry.get("subscription_id") or subscription_id
            if not subscription:
                raise ValidationError(where + "subscription_id", "is required when the module's subscription_id "
                                      "and AZURE_SUBSCRIPTION_ID are not set")
            ref = CacheRef(rules.subscription_id(subscription, where + "subscription_id"),
                           rules.resource_group(entry.get("resource_group"), where + "resource_group"),
                           rules.cache_name(entry.get("name"), where + "name"))
            own = entry.get("allowed_states")
            states = allowed_states if own is None else rules.state_names(own, where + "allowed_states")
        except ValidationError as exc:
            items.append(exc)
            continue
        items.append(FleetItem(entry.get("label") or ref.name, ref, tuple(states)))
    return items


def invalid_result(entry: t.Mapping[str, t.Any], error: ValidationError) -> t.Dict[str, t.Any]:
    return {"label": entry.get("label") or str(entry.get("name")), "name": entry.get("name"),
            "resource_group": entry.get("resource_group"), "subscription_id": entry.get("subscription_id"),
            "changed": False, "failed": True, "polls": 0, "elapsed": 0.0, "msg": str(error)}


def summary_of(results: t.List[t.Dict[str, t.Any]], elapsed: float) -> t.Tuple[t.Dict[str, t.Any], t.Optional[str]]:
    """The task's result from every cache's, and the message to fail with when any cache failed (else None)."""
    failed = [r["label"] for r in results if r["failed"]]
    summary: t.Dict[str, t.Any] = {"changed": any(r["changed"] for r in results), "caches": results,
                                   "failed_caches": failed, "elapsed": elapsed}
    warnings = ["%s: %s" % (r["label"], w) for r in results for w in r.get("warnings") or []]
    if warnings:
        summary["warnings"] = warnings
    if failed:
        shown = ["%s: %s" % (r["label"], r["msg"]) for r in results if r["failed"]][:SHOWN_FAILURES]
        more = len(failed) - len(shown)
        return summary, "%d of %d caches failed: %s%s" % (len(failed), len(results), "; ".join(shown),
                                                          "; and %d more (see caches)" % more if more else "")
    counts = collections.Counter(result.get("status", "?") for result in results)
    summary["msg"] = "%d caches: %s" % (len(results), ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items())))
    return summary, None


def flush_fleet(values: t.Mapping[str, t.Any], *, options: ActionOptions,
                connect: t.Callable[..., ArmClient], redact: t.Callable[[str], str], started: float,
                clock: t.Callable[[], float] = time.monotonic) -> t.Tuple[t.Dict[str, t.Any], t.Optional[str]]:
    """The task of azure_hpc_cache_flush_many, once its options passed FLEET_OPTIONS (values); options: how
    each flush runs (ActionOptions.of the values).

    Every entry of values["caches"] is checked; the valid ones are flushed from one client
    (connect(timeout=, concurrency=), built only when there is one) and each entry gets its
    result, msg redacted. Returns summary_of() the results: the result, and the message to
    fail with when any cache failed.
    """
    entries = values["caches"]
    checked = items_of(entries, values["subscription_id"], values["allowed_states"])
    items = [item for item in checked if isinstance(item, FleetItem)]
    if not entries:
        return {"changed": False, "caches": [], "failed_caches": [], "msg": "No cache to flush", "elapsed": 0.0}, None
    flushed: t.Iterator[t.Dict[str, t.Any]] = iter([])
    if items:
        client = connect(timeout=values["wait_timeout"], concurrency=min(values["max_concurrent"], len(items)))
        client.tokens.token()  # a credential problem fails the task once, before any cache is touched
        fleet = FleetFlush(CacheOperations(client, values["api_version"]), items, options=options,
                           max_concurrent=values["max_concurrent"])
        flushed = iter(fleet.run())
    results = [next(flushed) if isinstance(item, FleetItem) else invalid_result(entry, item)
               for entry, item in zip(entries, checked)]
    for result in results:
        result["msg"] = redact(result.get("msg", ""))
    return summary_of(results, round(clock() - started, 3))
