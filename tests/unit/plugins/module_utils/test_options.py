# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options declared once: the argument spec and the checked values come from one declaration; how an action
runs is one value whose defaults are the declared ones."""

from __future__ import annotations

import dataclasses

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ValidationError
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_flush import FLUSH_OPTIONS
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ACTION_OPTIONS, ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import DEFAULT_API_VERSION
from ansible_collections.azure_hpc.cache.plugins.modules import (
    azure_hpc_cache_flush,
    azure_hpc_cache_power,
    azure_hpc_cache_storage_target,
    azure_hpc_cache_upgrade,
)


def test_an_option_spec_says_only_what_is_declared():
    assert Option("str").spec() == {"type": "str"}
    assert Option("list", [], rules.state_names, elements="str").spec() == {"type": "list", "default": [], "elements": "str"}
    assert Option("str", required=True, aliases=("cache_name",), choices=("a", "b"), no_log=False).spec() == {
        "type": "str", "required": True, "aliases": ["cache_name"], "choices": ["a", "b"], "no_log": False}
    assert Option("list", elements="dict", removed_in_version="1.0.0", removed_from_collection="azure_hpc.cache").spec() == {
        "type": "list", "elements": "dict", "removed_in_version": "1.0.0", "removed_from_collection": "azure_hpc.cache"}
    nested = Option("list", elements="dict", options=Options(name=Option("str", required=True))).spec()
    assert nested["options"] == {"name": {"type": "str", "required": True}}


def test_each_argument_spec_is_a_fresh_copy():
    declared = Options(states=Option("list", ["Healthy"], elements="str"))
    spec = declared.argument_spec()
    spec["states"]["default"].append("Degraded")
    assert declared.argument_spec()["states"]["default"] == ["Healthy"] and declared["states"].default == ["Healthy"]


def test_groups_come_first_in_order_and_a_name_is_declared_once():
    assert list(Options({"b": Option()}, ACTION_OPTIONS, a=Option())) == ["b"] + list(ACTION_OPTIONS) + ["a"]
    with pytest.raises(ValueError, match="the option wait is declared twice"):
        Options(ACTION_OPTIONS, wait=Option("bool", True))


def test_validate_runs_each_rule_in_the_order_declared_and_keeps_the_rest():
    params = {"api_version": "v", "wait": False, "wait_timeout": 5, "poll_interval": 1, "confirm_timeout": 2,
              "trust_operation": True, "allowed_states": [" Healthy "]}
    assert FLUSH_OPTIONS.validate(params) == dict(params, allowed_states=["Healthy"])
    with pytest.raises(ValidationError, match="^wait_timeout: 0 must be an integer greater than 0$"):
        FLUSH_OPTIONS.validate(dict(params, wait_timeout=0, allowed_states="x"))  # the first rule broken
    assert Options(name=Option(rule=rules.optional(rules.cache_name))).validate({}) == {"name": None}


def test_the_action_options_and_their_bundle_agree():
    assert ACTION_OPTIONS.argument_spec() == {
        "api_version": {"type": "str", "default": DEFAULT_API_VERSION},
        "wait": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 3600},
        "poll_interval": {"type": "int", "default": 10},
        "confirm_timeout": {"type": "int", "default": 120},
        "trust_operation": {"type": "bool", "default": False},
    }
    bundle = {f.name: f.default for f in dataclasses.fields(ActionOptions)}
    assert bundle == dict({name: ACTION_OPTIONS[name].default for name in bundle if name != "check_mode"},
                          check_mode=False)
    made = ActionOptions.of({"wait": False, "wait_timeout": 7, "poll_interval": None, "api_version": "v"}, check_mode=True)
    assert made == ActionOptions(wait=False, wait_timeout=7, check_mode=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.wait = True  # type: ignore[misc]


@pytest.mark.parametrize("module", [azure_hpc_cache_flush, azure_hpc_cache_power, azure_hpc_cache_storage_target,
                                    azure_hpc_cache_upgrade])
def test_every_module_that_acts_declares_the_action_options_first_as_declared(module):
    assert list(module.OPTIONS)[:len(ACTION_OPTIONS)] == list(ACTION_OPTIONS)
    assert all(module.OPTIONS[name] is ACTION_OPTIONS[name] for name in ACTION_OPTIONS)
