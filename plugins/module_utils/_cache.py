# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache: its health states, the fields runbooks read, and what a flush decides.

The flush is an ActionTask (_action.py): the sending, following and
concluding rules live there; here only what is particular to a cache flush.
"""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils import _validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._action import (
    ACTION_ARGSPEC,
    ACTION_RULES,
    ActionTask,
    Decision,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._poller import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._resource import (
    CacheOperations,
    CacheRef,
    resource_group_of,
)

FLUSHING = "flushing"
STOPPED_STATES = ("stopped", "stopping")
# The cache health states of the API (HealthStateType, 2026-01-01) but Flushing and Unknown: only
# one of these, read after a flush began, shows that the flush no longer runs (docs/service-behaviour.md).
SETTLED_STATES = frozenset((
    "healthy", "degraded", "down", "transitioning", "stopping", "stopped", "upgrading",
    "waitingforkey", "startfailed", "upgradefailed",
))

# The cache flush adds its interlock.
FLUSH_ARGSPEC: t.Dict[str, t.Dict[str, t.Any]] = dict(
    ACTION_ARGSPEC, allowed_states={"type": "list", "elements": "str", "default": []})
FLUSH_RULES: t.Dict[str, t.Callable[[t.Any, str], t.Any]] = dict(ACTION_RULES, allowed_states=rules.state_names)


def flush_argument_spec() -> t.Dict[str, t.Dict[str, t.Any]]:
    """A copy of FLUSH_ARGSPEC, for a module's argument_spec."""
    return {name: dict(spec) for name, spec in FLUSH_ARGSPEC.items()}


def health_state(cache: t.Mapping[str, t.Any]) -> str:
    """properties.health.state as the service wrote it, without stray whitespace; Unknown when absent."""
    props = cache.get("properties")
    health = props.get("health") if isinstance(props, dict) else None
    state = health.get("state") if isinstance(health, dict) else None
    return state.strip() if isinstance(state, str) and state.strip() else "Unknown"


def is_flushing(state: str) -> bool:
    return state.strip().casefold() == FLUSHING


def flush_over(state: str) -> bool:
    """True only for a known state other than Flushing: an empty or unknown state proves nothing."""
    return state.strip().casefold() in SETTLED_STATES


def _mapping(value: t.Any) -> t.Dict[str, t.Any]:
    return value if isinstance(value, dict) else {}


def firmware(cache: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """The cache's software: its version, whether an upgrade is available, and its deadline."""
    props = _mapping(cache.get("properties"))
    status = _mapping(props.get("upgradeStatus"))

    def text(key: str) -> t.Optional[str]:  # what the service wrote, when it is a string; else nothing
        value = status.get(key)
        return value.strip() or None if isinstance(value, str) else None

    update_status = text("firmwareUpdateStatus")
    pending = (update_status or "").casefold() == "available"
    deadline = text("firmwareUpdateDeadline")
    return {
        "version": text("currentFirmwareVersion"),
        "update_status": update_status,
        # the service writes 0001-01-01T00:00:00Z when nothing is pending: never a deadline
        "deadline": deadline if pending and deadline and not deadline.startswith("0001-") else None,
        "pending_version": text("pendingFirmwareVersion"),
        "pending": pending,
    }


def summarize(cache: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """The fields runbooks read, plus the raw properties."""
    props = _mapping(cache.get("properties"))
    health = _mapping(props.get("health"))
    software = firmware(cache)
    return {
        "name": cache.get("name"),
        "id": cache.get("id"),
        "location": cache.get("location"),
        "resource_group": resource_group_of(str(cache.get("id") or "")),
        "health_state": health_state(cache),
        "health_description": health.get("statusDescription"),
        "provisioning_state": props.get("provisioningState"),
        "upgrade_status": props.get("upgradeStatus"),
        "firmware_version": software["version"],
        "firmware_update_status": software["update_status"],
        "firmware_update_deadline": software["deadline"],
        "tags": cache.get("tags") or {},
        "sku": _mapping(cache.get("sku")).get("name"),
        "properties": props,
    }


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
