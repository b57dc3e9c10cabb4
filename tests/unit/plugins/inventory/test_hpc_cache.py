# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.inventory.hpc_cache import InventoryModule
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.credentials import AuthSettings
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ArmError, ValidationError

SUB = "00000000-0000-0000-0000-000000000000"


def item(name, rg="rg", sub="s1"):
    return {"name": name, "resource_group": rg, "subscription_id": sub}


def test_unique_names_stay_plain_and_twins_are_qualified():
    names = InventoryModule._host_names([item("a"), item("b"), item("a", "rg2", "s2")])
    assert names == ["a.rg.s1", "b", "a.rg2.s2"]


def test_verify_file_wants_the_plugin_suffix(tmp_path):
    plugin = InventoryModule()
    good, bad = tmp_path / "x.hpc_cache.yml", tmp_path / "hosts.yml"
    good.write_text("plugin: azure_hpc.cache.hpc_cache\n")
    bad.write_text("all: {}\n")
    assert plugin.verify_file(str(good)) and not plugin.verify_file(str(bad))


class Options(InventoryModule):
    """The plugin with its options given directly, as _read_config_data() would set them."""

    def __init__(self, **options):
        super().__init__()
        self.options = dict({"subscriptions": [], "resource_groups": [], "api_version": "2026-01-01",
                             "strict_resource_groups": False, "timeout": 300}, **options)

    def get_option(self, option, hostvars=None):
        return self.options[option]


def settings(**values):
    return AuthSettings(**dict({"subscription_id": SUB}, **values))


def test_each_subscription_and_group_is_listed_once_whatever_its_case():
    plugin = Options(subscriptions=[SUB, SUB.upper()], resource_groups=["RG-a", "rg-A", "rg-b"])
    assert plugin._scope(settings()) == ([SUB], ["RG-a", "rg-b"])


def test_bad_scope_names_the_option():
    with pytest.raises(ValidationError, match="^resource_groups: "):
        Options(resource_groups=["rg/.."])._scope(settings())
    with pytest.raises(ValidationError, match="^subscriptions: "):
        Options(subscriptions=["not-a-guid"])._scope(settings())


def test_the_inventory_cache_key_changes_with_identity_and_scope():
    plugin = Options()
    base = plugin._cache_key("/x.hpc_cache.yml", settings())
    assert base == plugin._cache_key("/x.hpc_cache.yml", settings())
    assert base != plugin._cache_key("/x.hpc_cache.yml", settings(client_id="other"))
    assert base != plugin._cache_key("/x.hpc_cache.yml", settings(subscription_id="11111111-1111-1111-1111-111111111111"))
    assert base != Options(resource_groups=["rg"])._cache_key("/x.hpc_cache.yml", settings())


class Missing:  # pylint: disable=too-few-public-methods
    def list(self, subscription, group, deadline=None):
        raise ArmError(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % group)


def test_a_missing_resource_group_is_skipped_unless_strict():
    assert not Options()._list(Missing(), SUB, "gone", None)
    with pytest.raises(ArmError):
        Options(strict_resource_groups=True)._list(Missing(), SUB, "gone", None)
    with pytest.raises(ArmError):  # a whole subscription that answers 404 is never skipped
        Options()._list(Missing(), SUB, None, None)
