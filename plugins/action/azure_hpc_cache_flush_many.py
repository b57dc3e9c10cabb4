# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""azure_hpc_cache_flush_many: progress without latency, and a refusal where run_once does not hold.

The module flushes a list of caches, and is run once for a play batch (the
cache_maintenance role does so). Under the free and host_pinned strategies
run_once is ignored: every host would flush every cache of the list. The
refusal comes before the module runs, so no request is sent.
"""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.plugin_utils._progress import ProgressAction

# Strategies that run a run_once task for every host instead of once.
RUN_ONCE_IGNORED = ("free", "host_pinned")


def _strategy_of(task: t.Any) -> t.Optional[str]:
    """The strategy of the play the task belongs to, or None when it cannot be told."""
    node = task
    for _level in range(100):  # parents are few; the bound only guards against a cycle
        if node is None:
            return None
        play = getattr(node, "_play", None)
        if play is not None:
            strategy = getattr(play, "strategy", None)
            return str(strategy) if strategy else None
        node = getattr(node, "_parent", None)
    return None


class ActionModule(ProgressAction):

    def refusal(self, task_vars: t.Dict[str, t.Any]) -> t.Optional[str]:
        strategy = _strategy_of(self._task)
        if self._task.run_once and strategy and strategy.rsplit(".", 1)[-1] in RUN_ONCE_IGNORED:
            return ("Refusing to run azure_hpc_cache_flush_many with run_once under the %s strategy: it runs the task "
                    "on every host, which would flush every cache once per host. Use the linear strategy, or flush "
                    "one cache per host (cache_maintenance_batch: false in the cache_maintenance role)." % strategy)
        return None
