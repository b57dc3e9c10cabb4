# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's Python, as files and import arrows: every file of plugins/ with its lines and
the collection files it imports, the largest file and class, and the import closure of a plugin.

    python scripts/house.py                        # files, arrows, largest file and class
    python scripts/house.py --closure plugins/modules/azure_hpc_cache_info.py
"""

import argparse
import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PREFIX = "ansible_collections.azure_hpc.cache."


def module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return PREFIX + ".".join(parts)


def files():
    return {module_name(p): p for p in sorted((ROOT / "plugins").rglob("*.py"))}


def imports(path, known):
    """The collection modules a file imports (a package's __init__ counted with its submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            for alias in node.names:
                sub = node.module + "." + alias.name
                found.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PREFIX))
    return {name for name in found if name in known}


def closure(start, graph):
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen - {start}


def largest_class(paths):
    best = (0, "")
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                size = node.end_lineno - node.lineno + 1
                best = max(best, (size, "%s:%s" % (path.relative_to(ROOT), node.name)))
    return best


def short(name):
    return name[len(PREFIX):]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--closure", metavar="FILE", help="the collection files FILE loads, directly or not")
    args = parser.parse_args()
    known = files()
    graph = {name: imports(path, known) for name, path in known.items()}
    if args.closure:
        start = module_name((ROOT / args.closure).resolve())
        found = sorted(closure(start, graph))
        print("%s loads %d collection files:" % (args.closure, len(found)))
        for name in found:
            print("  " + short(name))
        return 0
    arrows = sum(len(v) for v in graph.values())
    print("%d files, %d import arrows" % (len(known), arrows))
    for name, path in known.items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        targets = ", ".join(short(n) for n in sorted(graph[name]))
        print("%5d  %s%s" % (lines, path.relative_to(ROOT), ("  -> " + targets) if targets else ""))
    size, path = max((len(p.read_text(encoding="utf-8").splitlines()), str(p.relative_to(ROOT))) for p in known.values())
    print("largest file: %s, %d lines" % (path, size))
    print("largest class: %s, %d lines" % largest_class(known.values())[::-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
