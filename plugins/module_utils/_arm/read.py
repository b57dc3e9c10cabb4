# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a read runs: the options every info module shares, each declared once with its rule.

Documented by the azure_hpc.cache.read doc fragment (tests/unit/plugins/doc_fragments/test_read_fragment.py
checks they agree), as ACTION_OPTIONS (_actions/options.py) is by the azure_hpc.cache.action fragment.
"""

from __future__ import annotations

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import DEFAULT_API_VERSION

READ_OPTIONS = Options(
    api_version=Option("str", DEFAULT_API_VERSION, rules.api_version),
    timeout=Option("int", 300, rules.positive_int),
)
