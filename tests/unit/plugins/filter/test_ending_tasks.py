# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ending_tasks finds every task that would end a host or a play before an always section runs."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.azure_hpc.cache.plugins.filter.ending_tasks import ending_tasks


def write(path, tasks):
    path.write_text(json.dumps(tasks))
    return str(path)


@pytest.mark.parametrize("meta", ["end_host", "end_play", "end_batch", "{{ how }}"])
def test_a_meta_that_ends_the_run_is_found(tmp_path, meta):
    path = write(tmp_path / "work.yml", [{"name": "Patch", "ansible.builtin.command": "true"},
                                         {"name": "Stop here", "ansible.builtin.meta": meta}])
    assert ending_tasks([path]) == ["%s: task 'Stop here' (ansible.builtin.meta: %s)" % (path, meta)]


def test_blocks_and_static_includes_are_followed(tmp_path):
    inner = write(tmp_path / "inner.yml", [{"meta": "end_play"}])
    outer = write(tmp_path / "outer.yml", [{"block": [{"include_tasks": "inner.yml"}],
                                            "always": [{"meta": "end_host", "name": "Leave"}]}])
    found = ending_tasks(["outer.yml"], str(tmp_path))
    assert len(found) == 2 and any(inner in f and "end_play" in f for f in found)
    assert any("Leave" in f for f in found)


def test_harmless_metas_and_missing_files_pass(tmp_path):
    path = write(tmp_path / "ok.yml", [{"meta": "flush_handlers"}, {"meta": "refresh_inventory"}])
    assert ending_tasks([path, str(tmp_path / "missing.yml")]) == []


def test_an_include_loop_ends(tmp_path):
    write(tmp_path / "a.yml", [{"import_tasks": "b.yml"}])
    write(tmp_path / "b.yml", [{"import_tasks": "a.yml"}, {"meta": "end_batch"}])
    assert len(ending_tasks(["a.yml"], str(tmp_path))) == 1


def test_a_value_that_is_not_a_list_is_refused():
    with pytest.raises(AnsibleFilterError):
        ending_tasks("work.yml")


@pytest.mark.parametrize("task", [
    {"ansible.builtin.meta": "end_role"},
    {"action": "meta end_play"},
    {"local_action": "ansible.builtin.meta end_host"},
    {"action": {"module": "ansible.builtin.meta", "_raw_params": "end_play"}},
    {"ansible.builtin.include_role": {"name": "someone.else"}},
    {"import_role": {"name": "mine"}},
])
def test_every_spelling_that_skips_the_always_section_is_found(tmp_path, task):
    assert len(ending_tasks([write(tmp_path / "t.yml", [dict(task, name="x")])])) == 1
