# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cache as it reads: its health states, its software, and the fields runbooks read."""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import resource_group_of

FLUSHING = "flushing"
STOPPED_STATES = ("stopped", "stopping")
# The cache health states of the API (HealthStateType, 2026-01-01) but Flushing and Unknown: only
# one of these, read after a flush began, shows that the flush no longer runs (docs/service-behaviour.md).
SETTLED_STATES = frozenset((
    "healthy", "degraded", "down", "transitioning", "stopping", "stopped", "upgrading",
    "waitingforkey", "startfailed", "upgradefailed",
))


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
