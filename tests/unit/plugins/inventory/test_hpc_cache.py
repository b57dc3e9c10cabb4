# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.azure_hpc.cache.plugins.inventory.hpc_cache import InventoryModule


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
