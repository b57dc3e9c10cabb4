# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A storage target as it reads: its states and the fields runbooks read."""

from __future__ import annotations

import typing as t

# The storage target states of the API (2026-01-01): Ready, Busy, Suspended, Flushing.
READY, BUSY, SUSPENDED, FLUSHING = "ready", "busy", "suspended", "flushing"


def target_state(target: t.Mapping[str, t.Any]) -> str:
    """properties.state as the service wrote it, without stray whitespace; Unknown when absent."""
    props = target.get("properties")
    state = props.get("state") if isinstance(props, dict) else None
    return state.strip() if isinstance(state, str) and state.strip() else "Unknown"


def is_state(state: t.Optional[str], name: str) -> bool:
    return state is not None and state.strip().casefold() == name


def _junction(item: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    return {"namespace_path": item.get("namespacePath"), "target_path": item.get("targetPath"),
            "nfs_export": item.get("nfsExport"), "nfs_access_policy": item.get("nfsAccessPolicy")}


def summarize_target(target: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """The fields runbooks read, plus the raw properties."""
    raw_props = target.get("properties")
    props: t.Dict[str, t.Any] = raw_props if isinstance(raw_props, dict) else {}
    raw_junctions = props.get("junctions")
    junctions: t.List[t.Any] = raw_junctions if isinstance(raw_junctions, list) else []
    return {
        "name": target.get("name"),
        "id": target.get("id"),
        "target_type": props.get("targetType"),
        "state": target_state(target),
        "provisioning_state": props.get("provisioningState"),
        "junctions": [_junction(j) for j in junctions if isinstance(j, dict)],
        "properties": props,
    }
