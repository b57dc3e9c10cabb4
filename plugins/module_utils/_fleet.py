# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many flushes from one process: one token, one connection pool, a bounded number at a time.

Each cache is flushed by its own FlushTask, exactly as the single-cache module
does it; this layer only schedules them and keeps one cache's failure from
touching another's result. A cache listed twice is flushed once (two tasks
reading Healthy at the same moment would both send a flush).
"""

from __future__ import annotations

import queue
import threading
import typing as t
from dataclasses import dataclass, field

from ansible_collections.azure_hpc.cache.plugins.module_utils._cache import FlushTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._resource import CacheOperations, CacheRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._errors import failure_of

# How often the waiting thread wakes up, so an interrupt (Ctrl-C, a cancelled job) is seen at once.
JOIN_STEP = 0.5


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
    def __init__(self, ops: CacheOperations, items: t.Sequence[FleetItem], *, wait: bool, wait_timeout: int,
                 poll_interval: int, check_mode: bool, max_concurrent: int, confirm_timeout: int = 120,
                 trust_operation: bool = False) -> None:
        self.ops = ops
        self.items = list(items)
        self.wait = wait
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.check_mode = check_mode
        self.max_concurrent = max_concurrent
        self.confirm_timeout = confirm_timeout
        self.trust_operation = trust_operation
        self._results: t.Dict[t.Tuple[str, str, str], t.Dict[str, t.Any]] = {}

    def unique(self) -> t.List[FleetItem]:
        """The first entry of each distinct cache, in the order given."""
        first: t.Dict[t.Tuple[str, str, str], FleetItem] = {}
        for item in self.items:
            first.setdefault(item.key, item)
        return list(first.values())

    def _flush_one(self, item: FleetItem) -> t.Dict[str, t.Any]:
        task = FlushTask(self.ops, item.ref, wait=self.wait, wait_timeout=self.wait_timeout,
                         poll_interval=self.poll_interval, check_mode=self.check_mode,
                         allowed_states=item.allowed_states, confirm_timeout=self.confirm_timeout,
                         trust_operation=self.trust_operation)
        try:
            result = task.run()
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
        for thread in threads:
            thread.start()
        for thread in threads:
            # Every FlushTask ends by its deadline and its requests' timeouts, so this ends too.
            while thread.is_alive():
                thread.join(JOIN_STEP)
        results = []
        for item in self.items:
            result = dict(self._results.get(item.key) or {"changed": False, "polls": 0, "failed": True,
                                                          "msg": "The flush of this cache did not run"})
            result.update(label=item.label, name=item.ref.name, resource_group=item.ref.resource_group,
                          subscription_id=item.ref.subscription_id)
            results.append(result)
        return results
