# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a cache flush decides.

The flush is an ActionTask (action.py): the sending (sending.py), following and
concluding (following.py) rules live with it; here only what is particular to a cache flush.
"""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.action import ActionTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.decision import Decision
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ACTION_OPTIONS, ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.cache import (
    STOPPED_STATES,
    flush_over,
    health_state,
    is_flushing,
    summarize,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef

# How a cache flush runs: how any action runs, and its interlock (documented by the azure_hpc.cache.action
# and azure_hpc.cache.flush doc fragments).
FLUSH_OPTIONS = Options(ACTION_OPTIONS, allowed_states=Option("list", [], rules.state_names, elements="str"))


class FlushTask(ActionTask):
    """One flush of one cache: already flushing attaches, stopped skips, allowed_states refuses."""

    action = action_path = "flush"
    subject_kind = "cache"
    completion_key = "cache_state"
    state_key = "health_state"
    state_after_key = "health_state_after"

    def __init__(self, ops: CacheOperations, ref: CacheRef, *, options: ActionOptions,
                 deadline: t.Optional[Deadline] = None, allowed_states: t.Sequence[str] = ()) -> None:
        """deadline bounds the flush (without one, options.wait_timeout makes one: action.task_deadline)."""
        super().__init__(ops.client, options=options, deadline=deadline)
        self.ops = ops
        self.ref = ref
        self.allowed_states = list(allowed_states)

    @property
    def name(self) -> str:
        return self.ref.name

    def resource_url(self, *path: str) -> str:
        return self.ops.cache_url(self.ref, *path)

    def state_of(self, body: t.Mapping[str, t.Any]) -> str:
        return health_state(body)

    def running(self, state: str) -> bool:
        return is_flushing(state)

    def settled(self, state: str) -> bool:
        return flush_over(state)

    def decide(self, body: t.Mapping[str, t.Any], state: str) -> Decision:
        if is_flushing(state):
            return Decision.attach()
        if state.casefold() in STOPPED_STATES:
            return Decision.skip("The cache %s is %s: a stopped cache holds no dirty data; no flush was sent"
                                 % (self.name, state))
        if self.allowed_states and state.casefold() not in [a.strip().casefold() for a in self.allowed_states]:
            description = summarize(body)["health_description"]
            return Decision.refuse(
                "Refusing to flush %s: its health state is %s%s; allowed states are %s (option allowed_states)"
                % (self.name, state, " (%s)" % description if description else "", ", ".join(self.allowed_states))
            )
        if self.check_mode:
            return Decision.check("Check mode: the cache %s (%s) would be flushed" % (self.name, state))
        return Decision.send()
