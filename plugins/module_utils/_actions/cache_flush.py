# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a cache flush decides.

The flush is an ActionTask (action.py): the sending, following and
concluding rules live there; here only what is particular to a cache flush.
"""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.action import (
    ACTION_ARGSPEC,
    ACTION_RULES,
    ActionTask,
    Decision,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.cache import (
    STOPPED_STATES,
    flush_over,
    health_state,
    is_flushing,
    summarize,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef

# The cache flush adds its interlock.
FLUSH_ARGSPEC: t.Dict[str, t.Dict[str, t.Any]] = dict(
    ACTION_ARGSPEC, allowed_states={"type": "list", "elements": "str", "default": []})
FLUSH_RULES: t.Dict[str, t.Callable[[t.Any, str], t.Any]] = dict(ACTION_RULES, allowed_states=rules.state_names)


def flush_argument_spec() -> t.Dict[str, t.Dict[str, t.Any]]:
    """A copy of FLUSH_ARGSPEC, for a module's argument_spec."""
    return {name: dict(spec) for name, spec in FLUSH_ARGSPEC.items()}


class FlushTask(ActionTask):
    """One flush of one cache: already flushing attaches, stopped skips, allowed_states refuses."""

    action = action_path = "flush"
    subject_kind = "cache"
    completion_key = "cache_state"
    state_key = "health_state"
    state_after_key = "health_state_after"

    def __init__(self, ops: CacheOperations, ref: CacheRef, *, wait: bool, poll_interval: int, check_mode: bool,
                 deadline: t.Optional[Deadline] = None, wait_timeout: t.Optional[int] = None,
                 allowed_states: t.Sequence[str] = (), confirm_timeout: int = 120,
                 trust_operation: bool = False) -> None:
        """deadline bounds the flush (wait_timeout, for a caller with no Deadline, makes one: _action.task_deadline)."""
        super().__init__(ops.client, wait=wait, deadline=deadline, wait_timeout=wait_timeout,
                         poll_interval=poll_interval, check_mode=check_mode, confirm_timeout=confirm_timeout,
                         trust_operation=trust_operation)
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
