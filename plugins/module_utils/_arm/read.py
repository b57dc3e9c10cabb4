# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a read runs: the options every info module shares, and the rule each is checked against.

Declared once here, documented by the azure_hpc.cache.read doc fragment
(tests/unit/plugins/doc_fragments/test_read_fragment.py checks they agree), as
ACTION_ARGSPEC (_action.py) is by the azure_hpc.cache.action fragment.
"""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import DEFAULT_API_VERSION

Rule = t.Callable[[t.Any, str], t.Any]

READ_ARGSPEC: t.Dict[str, t.Dict[str, t.Any]] = {
    "api_version": {"type": "str", "default": DEFAULT_API_VERSION},
    "timeout": {"type": "int", "default": 300},
}
READ_RULES: t.Dict[str, Rule] = {
    "api_version": rules.api_version,
    "timeout": rules.positive_int,
}


def read_argument_spec() -> t.Dict[str, t.Dict[str, t.Any]]:
    """A copy of READ_ARGSPEC, for a module's argument_spec."""
    return {name: dict(spec) for name, spec in READ_ARGSPEC.items()}


def optional(rule: Rule) -> Rule:
    """The rule for an option that may be left out: None when it was, else what the rule says."""
    def check(value: t.Any, option: str) -> t.Any:
        return None if value is None else rule(value, option)

    return check
