# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/design.md's layer table holds for every Python file of plugins/, with no exception.

Rooms are the folders of module_utils (one layer each) and the plugin types. A file imports only its
own room and the rooms its row names; a row names only rooms of lower layers, so no import runs back
up; every file of module_utils is named in the file table, and every file named there exists.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[4]
PLUGINS = ROOT / "plugins"
PREFIX = "ansible_collections.azure_hpc.cache.plugins."
PLUGIN_TYPES = ("modules", "inventory", "action", "filter", "plugin_utils", "doc_fragments")


def section(title):
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    return text.split("## " + title, 1)[1].split("\n## ", 1)[0]


def rows_of(text, columns):
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            separator = all(c and set(c) <= set("-:") for c in cells)
            if len(cells) == columns and not separator and cells[0] not in ("layer", "folder"):
                yield cells


def layer_table():
    """[(layer, room, allowed rooms)] in the table's order, top layer first; a room is `_arm` or `modules`."""
    table, layer = [], None
    for cells in rows_of(section("Layers"), 4):
        layer = cells[0] or layer
        room = re.fullmatch(r"`(?:plugins/|plugins/module_utils/)?([a-z_]+)/`", cells[1])
        assert room, "a room is a folder in backticks: %r" % cells[1]
        allowed = set(re.findall(r"`([a-z_]+)`", cells[3]))
        table.append((layer, room.group(1), allowed))
    return table


def room_of(module):
    """The room of a collection module name, or None for what is not ours."""
    if not module.startswith(PREFIX):
        return None
    parts = module[len(PREFIX):].split(".")
    if parts[0] == "module_utils":
        return parts[1] if len(parts) > 1 else "module_utils"
    return parts[0]


def imports_of(path):
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module + "." + a.name for a in node.names] if node.module + "." in PREFIX + "module_utils." \
                else [node.module]
            found.update(n for n in names if n.startswith(PREFIX))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PREFIX))
    return found


def room_files():
    """[(room, path)] for every Python file of plugins/."""
    files = []
    for kind in PLUGIN_TYPES:
        files.extend((kind, p) for p in sorted((PLUGINS / kind).glob("*.py")))
    for folder in sorted(p for p in (PLUGINS / "module_utils").iterdir() if p.is_dir() and p.name != "__pycache__"):
        files.extend((folder.name, p) for p in sorted(folder.glob("*.py")))
    return files


FILES = room_files()


@pytest.mark.parametrize("room, path", FILES, ids=[str(f[1].relative_to(PLUGINS)) for f in FILES])
def test_a_file_imports_only_its_room_and_the_rooms_its_row_allows(room, path):
    rows = {row[1]: row[2] for row in layer_table()}
    assert room in rows, "docs/design.md's layer table has no row for %s" % room
    rooms = {room_of(m) for m in imports_of(path)} - {room, None}
    extra = rooms - rows[room]
    assert not extra, "%s imports %s, which its row in docs/design.md does not allow" % (path.relative_to(ROOT), sorted(extra))


def test_no_row_allows_a_room_of_its_own_layer_or_above():
    table = layer_table()
    layers = []
    for layer in (row[0] for row in table):
        if layer not in layers:
            layers.append(layer)
    level = {row[1]: layers.index(row[0]) for row in table}
    for layer, room, allowed in table:
        unknown = allowed - set(level)
        assert not unknown, "%s may import %s, which has no row" % (room, sorted(unknown))
        up = sorted(name for name in allowed if level[name] <= level[room])
        assert not up, "%s (%s) may import %s, of its own layer or above" % (room, layer, up)


def test_module_utils_has_only_folders():
    loose = [p.name for p in (PLUGINS / "module_utils").glob("*.py") if p.name != "__init__.py"]
    assert not loose, "module_utils holds files outside a room: %s" % loose


def test_every_file_of_module_utils_is_in_the_file_table_and_every_named_file_exists():
    named = set()
    for cells in rows_of(section("Files of module_utils"), 2):
        folder = re.fullmatch(r"`([a-z_]+)/`", cells[0])
        assert folder, cells[0]
        named.update("%s/%s" % (folder.group(1), f) for f in re.findall(r"`([a-z_]+\.py)`", cells[1]))
    actual = {"%s/%s" % (p.parent.name, p.name) for p in (PLUGINS / "module_utils").glob("*/*.py") if p.name != "__init__.py"}
    assert named == actual, "the file table names %s; module_utils has %s" % (sorted(named - actual), sorted(actual - named))


def closure(path):
    seen, todo = set(), [path]
    while todo:
        current = todo.pop()
        for module in imports_of(current):
            rel = module[len(PREFIX):].replace(".", "/")
            target = PLUGINS / (rel + ".py")
            if not target.exists():
                target = PLUGINS / rel / "__init__.py"
            if target.exists() and target not in seen:
                seen.add(target)
                todo.append(target)
    return {str(p.relative_to(PLUGINS)) for p in seen}


@pytest.mark.parametrize("reader", ["modules/azure_hpc_cache_info.py", "modules/azure_hpc_cache_storage_target_info.py",
                                    "inventory/hpc_cache.py"])
def test_what_only_reads_loads_no_action_and_no_poller(reader):
    loaded = closure(PLUGINS / reader)
    assert loaded, "%s loads nothing of ours: the closure is not read" % reader
    assert not [f for f in loaded if f.startswith("module_utils/_actions/")], sorted(loaded)
    assert "module_utils/_arm/resource.py" in loaded


def test_the_table_is_read():
    rows = {row[1]: row[2] for row in layer_table()}
    assert "_actions" not in rows["inventory"]  # the inventory reads caches: no action code
    assert rows["_base"] == set()
    assert {"modules", "inventory", "filter", "_maintenance", "_transport"} <= set(rows)
