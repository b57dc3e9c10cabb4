# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The azure_hpc.cache.read fragment restates READ_OPTIONS, and both info modules use it."""

from __future__ import annotations

import ast
import os

import yaml

from ansible_collections.azure_hpc.cache.plugins.doc_fragments import read
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.read import READ_OPTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
INFO_MODULES = ("plugins/modules/azure_hpc_cache_info.py", "plugins/modules/azure_hpc_cache_storage_target_info.py")


def documentation(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DOCUMENTATION":
            return yaml.safe_load(node.value.value)
    raise AssertionError("no DOCUMENTATION in %s" % path)


def test_the_read_fragment_documents_the_read_options():
    documented = yaml.safe_load(read.ModuleDocFragment.DOCUMENTATION)["options"]
    assert set(documented) == set(READ_OPTIONS)
    for name, doc in documented.items():
        assert doc["type"] == READ_OPTIONS[name].type, name
        assert doc.get("default") == READ_OPTIONS[name].default, name
        choices = READ_OPTIONS[name].choices
        assert doc.get("choices") == (list(choices) if choices is not None else None), name


def test_each_info_module_takes_the_read_options_from_the_fragment_alone():
    for path in INFO_MODULES:
        doc = documentation(path)
        assert "azure_hpc.cache.read" in doc["extends_documentation_fragment"], path
        assert not set(doc["options"]) & set(READ_OPTIONS), path  # an own entry would replace the fragment's
