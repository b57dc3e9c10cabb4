# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress without latency (plugins/plugin_utils/_progress.py)."""

from __future__ import annotations

import threading
import time

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.azure_hpc.cache.plugins.plugin_utils._progress import progress_interval, watch


def test_the_end_is_seen_when_the_work_ends_not_at_the_next_line():
    lines = []
    start = time.monotonic()
    assert watch(lambda: {"changed": True}, 600.0, lines.append) == {"changed": True}
    assert lines == [] and time.monotonic() - start < 60  # against a 600-s interval: not waited out


def test_a_line_every_interval_while_the_work_runs():
    release = threading.Event()
    lines = []

    def report(elapsed):
        lines.append(elapsed)
        if len(lines) == 3:
            release.set()

    assert watch(lambda: {"ok": release.wait(60)}, 0.01, report) == {"ok": True}
    assert lines[:3] == [0.01, 0.02, 0.03]  # the interval's multiples, however late the watcher woke


def test_what_the_work_raised_is_raised_in_the_callers_thread():
    def work():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        watch(work, 600.0, lambda elapsed: None)


@pytest.mark.parametrize("value, seconds", [(None, 0), ("", 0), (0, 0), ("30", 30), (" 5 ", 5), (86400, 86400)])
def test_the_interval(value, seconds):
    assert progress_interval(value) == seconds


@pytest.mark.parametrize("value", [-1, "soon", True, 86401, 1.5j])
def test_a_bad_interval_names_the_variable_and_the_rule(value):
    with pytest.raises(AnsibleActionFail, match="azure_hpc_cache_progress_interval must be a number of seconds"):
        progress_interval(value)
