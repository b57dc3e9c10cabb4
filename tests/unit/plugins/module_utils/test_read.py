# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a read runs: the options every info module shares, declared once."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ValidationError
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.read import READ_OPTIONS
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import DEFAULT_API_VERSION
from ansible_collections.azure_hpc.cache.plugins.modules import azure_hpc_cache_info, azure_hpc_cache_storage_target_info


def test_the_read_options_and_their_rules():
    assert READ_OPTIONS.argument_spec() == {"api_version": {"type": "str", "default": DEFAULT_API_VERSION},
                                            "timeout": {"type": "int", "default": 300}}
    assert all(option.rule is not None for option in READ_OPTIONS.values())
    assert READ_OPTIONS.validate({"api_version": "v", "timeout": 5}) == {"api_version": "v", "timeout": 5}
    with pytest.raises(ValidationError, match="timeout: 0 must be an integer greater than 0"):
        READ_OPTIONS["timeout"].check(0, "timeout")


def test_each_module_gets_a_copy_it_may_change():
    spec = READ_OPTIONS.argument_spec()
    spec["timeout"]["default"] = 1
    assert READ_OPTIONS["timeout"].default == 300 and READ_OPTIONS.argument_spec()["timeout"]["default"] == 300


@pytest.mark.parametrize("module", [azure_hpc_cache_info, azure_hpc_cache_storage_target_info])
def test_both_info_modules_declare_the_read_options_from_here(module):
    assert {name: module.OPTIONS[name] for name in READ_OPTIONS} == dict(READ_OPTIONS)


def test_an_optional_option_left_out_is_none_else_checked():
    check = rules.optional(rules.cache_name)
    assert check(None, "name") is None and check("c1", "name") == "c1"
    with pytest.raises(ValidationError, match="name: 'c 1' must be 1 to 80"):
        check("c 1", "name")
