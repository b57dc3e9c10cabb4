# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ending_tasks: the tasks of task files that would end a host or a play on the spot.

`meta: end_host`, `end_play` and `end_batch` end the host (or play) at once: Ansible then runs no
`always` section. The cache_maintenance role refuses backend task files that hold one before it
suspends anything, since the section that resumes the storage targets would never run.
"""

from __future__ import annotations

import os
import typing as t

import yaml
from ansible.errors import AnsibleFilterError

ENDINGS = ("end_host", "end_play", "end_batch", "end_role")
META_KEYS = ("meta", "ansible.builtin.meta", "ansible.legacy.meta")
ACTION_KEYS = ("action", "local_action")
# A role's tasks cannot be read here (its path depends on roles_path and collections): refused as unknown.
ROLE_KEYS = ("include_role", "import_role", "ansible.builtin.include_role", "ansible.builtin.import_role",
             "ansible.legacy.include_role", "ansible.legacy.import_role")
INCLUDE_KEYS = ("include_tasks", "import_tasks", "ansible.builtin.include_tasks", "ansible.builtin.import_tasks",
                "ansible.legacy.include_tasks", "ansible.legacy.import_tasks", "include")
MAX_DEPTH = 10


def _resolve(path: str, bases: t.Sequence[str]) -> t.Optional[str]:
    if os.path.isabs(path):
        return path if os.path.isfile(path) else None
    for base in bases:
        for candidate in (os.path.join(base, path), os.path.join(base, "tasks", path)):
            if os.path.isfile(candidate):
                return candidate
    return None


def _include_of(task: t.Mapping[str, t.Any]) -> t.Optional[str]:
    for key in INCLUDE_KEYS:
        value = task.get(key)
        if isinstance(value, dict):
            value = value.get("file") or value.get("_raw_params")
        if isinstance(value, str):
            return value
    return None


def _scan(tasks: t.Any, where: str, bases: t.Sequence[str], found: t.List[str], depth: int, seen: t.Set[str]) -> None:
    if not isinstance(tasks, list):
        return
    for task in tasks:
        if not isinstance(task, dict):
            continue
        for key in ("block", "rescue", "always"):
            _scan(task.get(key), where, bases, found, depth, seen)
        name = str(task.get("name") or "unnamed")
        for key in META_KEYS:
            value = task.get(key)
            if isinstance(value, dict):
                value = value.get("_raw_params") or value.get("free_form")
            if isinstance(value, str) and (value.strip() in ENDINGS or "{{" in value):
                found.append("%s: task %r (%s: %s)" % (where, name, key, value.strip()))
        for key in ACTION_KEYS:  # action: meta end_play, or action: {module: meta, _raw_params: end_play}
            value = task.get(key)
            module, args = "", ""
            if isinstance(value, str):
                module, _sep, args = value.strip().partition(" ")
            elif isinstance(value, dict):
                module = str(value.get("module") or "")
                args = str(value.get("_raw_params") or value.get("free_form") or "")
            if module in META_KEYS and (args.strip() in ENDINGS or "{{" in args):
                found.append("%s: task %r (%s: %s %s)" % (where, name, key, module, args.strip()))
        for key in ROLE_KEYS:
            if key in task:
                found.append("%s: task %r (%s: a role's tasks cannot be checked here; put them in a task file)"
                             % (where, name, key))
        include = _include_of(task)
        if include is not None and depth < MAX_DEPTH:
            if "{{" in include:
                continue  # a templated include cannot be read before it runs; documented
            path = _resolve(include, [os.path.dirname(where)] + list(bases))
            if path is not None and path not in seen:
                seen.add(path)
                _scan(_load(path), path, bases, found, depth + 1, seen)


def _load(path: str) -> t.Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None  # the include itself reports it when it runs


def ending_tasks(files: t.Any, *bases: str) -> t.List[str]:
    """Every `meta: end_host|end_play|end_batch` (or templated meta) in the task files, with what includes them."""
    if not isinstance(files, list):
        raise AnsibleFilterError("ending_tasks expects a list of task file paths, got %s" % type(files).__name__)
    found: t.List[str] = []
    roots = [str(b) for b in bases if b]
    for name in files:
        if not isinstance(name, str):
            continue
        path = _resolve(name, roots) if "{{" not in name else None
        if path is not None:
            _scan(_load(path), path, roots, found, 0, {path})
    return found


class FilterModule:
    def filters(self) -> t.Dict[str, t.Callable[..., t.Any]]:
        return {"ending_tasks": ending_tasks}
