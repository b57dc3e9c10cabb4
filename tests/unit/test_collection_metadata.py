# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ansible-test does not check: every module is in the action group it documents, and the
version agrees across galaxy.yml, the User-Agent, the changelog and the README."""

from __future__ import annotations

import ast
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_yaml(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def module_docs():
    folder = os.path.join(ROOT, "plugins", "modules")
    docs = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py") and not name.startswith("_"):
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
            for node in tree.body:
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DOCUMENTATION":
                    docs[name[:-3]] = yaml.safe_load(node.value.value)
    return docs


def action_group_problems(runtime, docs):
    """Modules missing from group 'all', listed there without existing, or documenting no membership."""
    group = set(runtime.get("action_groups", {}).get("all", []))
    problems = ["%s is not in action group all" % m for m in sorted(set(docs) - group)]
    problems += ["action group all lists %s, which does not exist" % m for m in sorted(group - set(docs))]
    for name, doc in docs.items():
        fragments = doc.get("extends_documentation_fragment", [])
        if "azure_hpc.cache.attributes" not in fragments:
            problems.append("%s does not document its action group (azure_hpc.cache.attributes)" % name)
    return problems


def test_every_module_is_in_the_action_group():
    assert action_group_problems(load_yaml("meta", "runtime.yml"), module_docs()) == []


def test_the_check_fails_when_it_should():
    runtime = load_yaml("meta", "runtime.yml")
    runtime["action_groups"]["all"] = [m for m in runtime["action_groups"]["all"] if m != "azure_hpc_cache_info"]
    runtime["action_groups"]["all"].append("azure_hpc_cache_gone")
    docs = module_docs()
    docs["azure_hpc_cache_flush"] = dict(docs["azure_hpc_cache_flush"], extends_documentation_fragment=[])
    assert action_group_problems(runtime, docs) == [
        "azure_hpc_cache_info is not in action group all",
        "action group all lists azure_hpc_cache_gone, which does not exist",
        "azure_hpc_cache_flush does not document its action group (azure_hpc.cache.attributes)",
    ]


def test_version_agrees_everywhere():
    version = load_yaml("galaxy.yml")["version"]
    with open(os.path.join(ROOT, "plugins", "module_utils", "_base", "version.py"), encoding="utf-8") as handle:
        assert 'COLLECTION_VERSION = "%s"' % version in handle.read()
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    notes = re.search(r"## Release notes\n\n(.*?)\n## ", readme, re.S)
    assert notes and ("Version %s" % version) in notes.group(1)
    releases = load_yaml("changelogs", "changelog.yaml").get("releases") or {}
    if releases:
        assert version in releases, "galaxy.yml says %s, the changelog's releases are %s" % (version, sorted(releases))


def fragment_attributes(reference):
    """The attributes a doc fragment reference such as azure_hpc.cache.attributes.INFO_MODULE declares."""
    parts = reference.split(".")
    if parts[:2] != ["azure_hpc", "cache"]:
        return {}
    with open(os.path.join(ROOT, "plugins", "doc_fragments", parts[2] + ".py"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    wanted = parts[3] if len(parts) > 3 else "DOCUMENTATION"
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == wanted:
            return yaml.safe_load(node.value.value).get("attributes") or {}
    raise AssertionError("no doc fragment %s" % reference)


@pytest.mark.parametrize("name", sorted(module_docs()))
def test_module_docs_declare_check_mode_and_idempotency(name):
    attributes = dict(module_docs()[name].get("attributes") or {})
    for reference in module_docs()[name].get("extends_documentation_fragment", []):
        attributes.update(fragment_attributes(reference))
    assert {"check_mode", "diff_mode", "idempotent"} <= set(attributes)
    assert all(attributes[key]["support"] for key in ("check_mode", "diff_mode", "idempotent"))
