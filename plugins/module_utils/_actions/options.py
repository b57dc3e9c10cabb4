# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How an action runs: the options of every module that sends one, declared once with their rules
(ACTION_OPTIONS, documented by the azure_hpc.cache.action doc fragment), and the same as one value
(ActionOptions): built once where a module starts, and passed to every task it makes."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, fields

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import DEFAULT_API_VERSION

# Each checked before any request by its rule.
ACTION_OPTIONS = Options(
    api_version=Option("str", DEFAULT_API_VERSION, rules.api_version),
    wait=Option("bool", True),
    wait_timeout=Option("int", 3600, rules.positive_int),
    poll_interval=Option("int", 10, rules.positive_int),
    confirm_timeout=Option("int", 120, rules.positive_int),
    trust_operation=Option("bool", False),
)


@dataclass(frozen=True)
class ActionOptions:
    """The options of every module that sends an action (ACTION_OPTIONS but api_version), and check mode.

    wait: follow the action to its end. wait_timeout: the task's bound, when no Deadline is given. poll_interval:
    the pause between status reads when the service names none. confirm_timeout: how long the resource may take
    to show the state an action leads to once the service said it is over; trust_operation: accept the service's
    word then, with a warning. The defaults are the declared ones.
    """

    wait: bool = ACTION_OPTIONS["wait"].default
    wait_timeout: int = ACTION_OPTIONS["wait_timeout"].default
    poll_interval: int = ACTION_OPTIONS["poll_interval"].default
    confirm_timeout: int = ACTION_OPTIONS["confirm_timeout"].default
    trust_operation: bool = ACTION_OPTIONS["trust_operation"].default
    check_mode: bool = False

    @classmethod
    def of(cls, values: t.Mapping[str, t.Any], *, check_mode: bool) -> ActionOptions:
        """The bundle from a module's checked values (absent options take their defaults)."""
        names = [f.name for f in fields(cls) if f.name != "check_mode"]
        return cls(check_mode=check_mode, **{name: values[name] for name in names if values.get(name) is not None})
