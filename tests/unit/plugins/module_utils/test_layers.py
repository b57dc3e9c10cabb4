# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/design.md's layer table holds, with no exception, for the action layers and the modules built on them."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[4]
PACKAGE = "ansible_collections.azure_hpc.cache.plugins.module_utils"
# Every shared file and every module: the table holds with no exception.
CHECKED = tuple(sorted(p.name for p in (ROOT / "plugins" / "module_utils").glob("_*.py")))
MODULES = tuple(sorted(p.name for p in (ROOT / "plugins" / "modules").glob("*.py")))


def layer_table():
    """{file: set of the modules it may import} from the table's rows, and the operation layer's files."""
    rows = {}
    operations = set()
    layer = None
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[1] in ("file", "---"):
            continue
        layer = cells[0] or layer
        allowed = set(re.findall(r"`(_[a-z]+)`", cells[3]))
        for name in re.findall(r"`([^`]+\.py)`", cells[1]):
            rows[name] = allowed
            if layer == "operations":
                operations.add(name[:-3])
    return rows, operations


def imports_of(path):
    """Our module_utils a file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                found.update(alias.name for alias in node.names)
            elif node.module.startswith(PACKAGE + "."):
                found.add(node.module[len(PACKAGE) + 1:])
    return found


@pytest.mark.parametrize("name", CHECKED)
def test_a_module_util_imports_only_what_its_row_allows(name):
    rows, unused = layer_table()
    assert name in rows, "docs/design.md has no row for %s" % name
    extra = imports_of(ROOT / "plugins" / "module_utils" / name) - rows[name]
    assert not extra, "%s imports %s, which its row in docs/design.md does not allow" % (name, sorted(extra))


@pytest.mark.parametrize("name", MODULES)
def test_a_module_imports_the_module_base_the_operations_validation_and_errors(name):
    unused, operations = layer_table()
    extra = imports_of(ROOT / "plugins" / "modules" / name) - operations - {"_module", "_validation", "_errors"}
    assert not extra, "%s imports %s" % (name, sorted(extra))


def test_the_table_is_read():
    rows, operations = layer_table()
    assert rows["_target.py"] == {"_action", "_errors", "_poller", "_resource"}
    assert "_client" not in rows["_target.py"]  # Retry-After comes with the Response
    assert {"_action", "_cache", "_target", "_poller", "_resource"} <= operations
    assert rows["_errors.py"] == {"_errors"}
