# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each option set is declared once in code; the docs restate it, and must agree."""

from __future__ import annotations

import ast
import os

import pytest
import yaml

from ansible_collections.azure_hpc.cache.plugins.doc_fragments import action, auth, flush
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_flush import FLUSH_OPTIONS
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ACTION_OPTIONS
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.credentials import AUTH_OPTIONS, AuthSettings
from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible.module import auth_argument_spec
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import DEFAULT_API_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def options(text):
    return yaml.safe_load(text)["options"]


def documentation(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DOCUMENTATION":
            return yaml.safe_load(node.value.value)
    raise AssertionError("no DOCUMENTATION in %s" % path)


def test_the_auth_fragment_documents_every_auth_option_as_declared():
    documented = options(auth.ModuleDocFragment.DOCUMENTATION)
    assert list(documented) == list(AUTH_OPTIONS)
    spec = auth_argument_spec()
    for name, doc in documented.items():
        assert doc["type"] == spec[name]["type"] == "str", name
        assert doc.get("default") == spec[name].get("default"), name
        assert doc.get("choices") == spec[name].get("choices"), name
        assert ("Never logged" in " ".join(doc["description"])) == bool(AUTH_OPTIONS[name].get("no_log")), name
        fallback = spec[name].get("fallback")
        assert (fallback[1] if fallback else []) == AUTH_OPTIONS[name].get("env", []), name
        for variable in AUTH_OPTIONS[name].get("env", []):
            assert "E(%s)" % variable in " ".join(doc["description"]), (name, variable)


def test_the_inventory_fragment_names_the_same_options_and_environment_variables():
    documented = options(auth.ModuleDocFragment.PLUGIN)
    assert list(documented) == list(AUTH_OPTIONS)
    for name, doc in documented.items():
        assert [e["name"] for e in doc.get("env", [])] == AUTH_OPTIONS[name].get("env", []), name


def test_auth_settings_hold_exactly_the_auth_options():
    assert set(AuthSettings.__dataclass_fields__) == set(AUTH_OPTIONS)


@pytest.mark.parametrize("fragment, declared", [
    (action.ModuleDocFragment.DOCUMENTATION, ACTION_OPTIONS),
    (flush.ModuleDocFragment.DOCUMENTATION, {k: v for k, v in FLUSH_OPTIONS.items() if k not in ACTION_OPTIONS}),
])
def test_the_action_and_flush_fragments_document_their_declarations(fragment, declared):
    documented = options(fragment)
    assert set(documented) == set(declared)
    for name, doc in documented.items():
        option = declared[name]
        assert doc["type"] == option.type, name
        assert doc.get("default") == option.default, name
        assert doc.get("elements") == option.elements, name
        assert doc.get("choices") == (list(option.choices) if option.choices is not None else None), name
        assert bool(doc.get("required")) == option.required, name


@pytest.mark.parametrize("path", [
    "plugins/inventory/hpc_cache.py",
])
def test_every_documented_api_version_default_is_the_declared_one(path):
    # The info modules document it in the read fragment (test_read_fragment.py), the others in the action fragment.
    assert documentation(path)["options"]["api_version"]["default"] == DEFAULT_API_VERSION


def test_the_role_defaults_to_the_declared_api_version():
    with open(os.path.join(ROOT, "roles/cache_maintenance/defaults/main.yml"), encoding="utf-8") as handle:
        assert yaml.safe_load(handle)["cache_maintenance_api_version"] == DEFAULT_API_VERSION
    with open(os.path.join(ROOT, "roles/cache_maintenance/meta/argument_specs.yml"), encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    assert spec["cache_maintenance_api_version"]["default"] == DEFAULT_API_VERSION
