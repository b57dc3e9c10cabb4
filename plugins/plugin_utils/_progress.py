# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress without latency: the action plugin of every long-running module of the collection.

Ansible sees the end of an ``async`` job only at its next poll, so a 1-s resume of a storage target
polled every 30 s costs up to 30 s of extra outage. Instead, with the play variable
``azure_hpc_cache_progress_interval`` above 0, the module runs in the foreground, in a thread of the
worker, and the worker prints a progress line every interval while it runs: its end is seen the
moment the module ends, no job file is written anywhere, and Ctrl-C stops the module with the run, as
any foreground task. A canceled job (its process group signalled) ends the worker and the module only
where the worker shares that group (ansible-core 2.17, 2.18); from 2.19 on the worker is detached and
survives, and the record module stops itself once its playbook process is gone (_maintenance/identity.py). A
task with Ansible's own ``async`` keyword runs as Ansible runs it.
"""

from __future__ import annotations

import threading
import time
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

display = Display()

PROGRESS_VAR = "azure_hpc_cache_progress_interval"
MAX_INTERVAL = 24 * 3600


def progress_interval(value: t.Any) -> int:
    """The interval in whole seconds, or 0 (no progress lines): a clear error for anything else."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise AnsibleActionFail("%s must be a number of seconds from 0 to %d, got %r" % (PROGRESS_VAR, MAX_INTERVAL, value))
    try:
        seconds = int(str(value).strip())
    except ValueError:
        raise AnsibleActionFail("%s must be a number of seconds from 0 to %d, got %r"
                                % (PROGRESS_VAR, MAX_INTERVAL, value)) from None
    if not 0 <= seconds <= MAX_INTERVAL:
        raise AnsibleActionFail("%s must be a number of seconds from 0 to %d, got %d" % (PROGRESS_VAR, MAX_INTERVAL, seconds))
    return seconds


def watch(work: t.Callable[[], t.Dict[str, t.Any]], interval: float, report: t.Callable[[float], None],
          clock: t.Callable[[], float] = time.monotonic) -> t.Dict[str, t.Any]:
    """Run work() in a thread; call report(seconds) every interval while it runs, seconds being the interval's
    multiple reached (the time it has run is at least that: a busy machine may wake the watcher late, and the
    line stays the same); return its result the moment it ends (or raise what it raised)."""
    outcome: t.Dict[str, t.Any] = {}

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="azure_hpc_cache-module", daemon=True)
    start = clock()
    thread.start()
    lines = 0
    while True:
        thread.join(timeout=max(start + (lines + 1) * interval - clock(), 0.0))
        if not thread.is_alive():
            break
        if clock() - start < (lines + 1) * interval:
            continue  # woken early: wait out the rest of this interval
        lines += 1
        report(lines * interval)
    if "error" in outcome:
        raise outcome["error"]
    return t.cast(t.Dict[str, t.Any], outcome["result"])


class ProgressAction(ActionBase):  # type: ignore[misc]  # ansible-core ships no type information
    """Runs the task's module; in the foreground with progress lines when the play asks for them."""

    _supports_check_mode = True
    _supports_async = True

    def refusal(self, task_vars: t.Dict[str, t.Any]) -> t.Optional[str]:  # pylint: disable=unused-argument
        """A reason to refuse the task before the module runs (no request sent), or None."""
        return None

    def run(self, tmp: t.Any = None, task_vars: t.Optional[t.Dict[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        task_vars = task_vars if task_vars is not None else {}
        result: t.Dict[str, t.Any] = super().run(tmp, task_vars)
        refusal = self.refusal(task_vars)
        if refusal:
            result.update(failed=True, changed=False, msg=refusal)
            return result
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        interval = 0 if self._task.async_val else progress_interval(self._templar.template(task_vars.get(PROGRESS_VAR)))
        if interval <= 0:
            return t.cast(t.Dict[str, t.Any],
                          merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async)))
        host = task_vars.get("inventory_hostname", "localhost")
        name = self._task.get_name().strip()

        def report(elapsed: float) -> None:
            display.display("%s: %s: still running after %d s" % (host, name, elapsed))

        done = watch(lambda: t.cast(t.Dict[str, t.Any], self._execute_module(task_vars=task_vars)), interval, report)
        return t.cast(t.Dict[str, t.Any], merge_hash(result, done))
