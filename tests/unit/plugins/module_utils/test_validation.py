# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as v
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ValidationError

NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"


@pytest.mark.parametrize("name", ["a", "A" * 80, "cache-01_x", "-", "_", "0"])
def test_cache_name_accepts(name):
    assert v.cache_name(name) == name


@pytest.mark.parametrize("name", ["", "a" * 81, "a.b", "a b", "a/b", "../x", "a%2fb", "a?b", "a#b", "ａ", "cache\n",
                                  "naïve", None, 12])
def test_cache_name_refuses_with_option_and_rule(name):
    with pytest.raises(ValidationError) as err:
        v.cache_name(name)
    assert err.value.option == "name"
    assert str(err.value).startswith("name: ")
    assert "^[-0-9a-zA-Z_]{1,80}$" in str(err.value)


def test_cache_name_reports_alias_name_when_asked():
    with pytest.raises(ValidationError, match="^cache_name: "):
        v.cache_name("bad name", "cache_name")


@pytest.mark.parametrize("rg", ["r", "R" * 90, "rg-hpc", "rg_hpc", "rg.hpc", "rg(hpc)", "(x)", "Grün", "rg.x1"])
def test_resource_group_accepts(rg):
    assert v.resource_group(rg) == rg


@pytest.mark.parametrize("rg", ["", "R" * 91, "rg.", "rg/x", "rg x", "rg?", "rg#", "rg%2f", "rg\n", "..", None])
def test_resource_group_refuses(rg):
    with pytest.raises(ValidationError) as err:
        v.resource_group(rg)
    assert err.value.option == "resource_group"
    assert "must not end with '.'" in err.value.rule


@pytest.mark.parametrize("sub", ["00000000-0000-0000-0000-000000000000", "ABCDEF01-2345-6789-abcd-ef0123456789"])
def test_subscription_accepts_and_lowers(sub):
    assert v.subscription_id(sub) == sub.lower()


@pytest.mark.parametrize("sub", ["", None])
def test_subscription_missing_names_env(sub):
    with pytest.raises(ValidationError, match="subscription_id: is required.*AZURE_SUBSCRIPTION_ID"):
        v.subscription_id(sub)


@pytest.mark.parametrize("sub", ["0000", "00000000-0000-0000-0000-00000000000g", "{00000000-0000-0000-0000-000000000000}",
                                 "00000000-0000-0000-0000-000000000000\n"])
def test_subscription_refuses_non_guid(sub):
    with pytest.raises(ValidationError, match="subscription_id: .* must be a GUID"):
        v.subscription_id(sub)


@pytest.mark.parametrize("value", ["", " ", "2026-01-01 ", "2026\t01", "x\x00"])
def test_api_version_refuses(value):
    with pytest.raises(ValidationError, match="^api_version: "):
        v.api_version(value)


@pytest.mark.parametrize("value,ok", [(1, True), (3600, True), (0, False), (-5, False), (True, False), ("5", False)])
def test_positive_int(value, ok):
    if ok:
        assert v.positive_int(value, "wait_timeout") == value
    else:
        with pytest.raises(ValidationError, match="^wait_timeout: .*greater than 0"):
            v.positive_int(value, "wait_timeout")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=NAME_CHARS, min_size=1, max_size=80))
def test_every_admitted_name_is_accepted(name):
    assert v.cache_name(name) == name


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_text_is_accepted_only_if_the_rule_admits_it(text):
    admitted = 1 <= len(text) <= 80 and all(ch in NAME_CHARS for ch in text)
    try:
        v.cache_name(text)
    except ValidationError as err:
        assert not admitted
        assert err.option == "name"
    else:
        assert admitted


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_resource_group_never_crashes_and_refuses_path_characters(text):
    try:
        v.resource_group(text)
    except ValidationError:
        return
    assert 1 <= len(text) <= 90 and not text.endswith(".")
    assert not set(text) & set("/?#% \\&=\n")
