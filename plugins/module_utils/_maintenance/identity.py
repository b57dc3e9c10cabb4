# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who runs here: the controller, its boot and PID namespace, and the ansible-playbook process, read from /proc.

A hold names its process so that a run on the same controller, boot and PID namespace can tell for certain
whether it still runs (I3); a module stops once its own playbook is gone (I4).
"""

from __future__ import annotations

import os
import socket
import typing as t
from dataclasses import dataclass

from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stops import RunGone
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import Holder

# A wait of a module whose playbook may be gone is cut in steps of at most this long, each after a check.
WATCH_STEP = 2.0


def _proc_stat(pid: int) -> t.Optional[t.Tuple[int, int]]:
    """(parent pid, start time in clock ticks since boot) of a process, from /proc; None where unknown."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="utf-8") as handle:
            return handle.read().strip()[:8]
    except OSError:
        return ""


def pid_namespace() -> str:
    """The PID namespace this process sees others in (its inode number), or "" where it cannot be told."""
    try:
        link = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    digits = "".join(c for c in link if c.isdigit())
    return digits[:20]


def playbook_process(start: t.Optional[int] = None) -> t.Tuple[int, int]:
    """The ansible-playbook process this module runs under (the topmost of its ancestors whose command line
    names ansible-playbook), as (pid, start time); (0, 0) where it cannot be told."""
    found = (0, 0)
    pid = start or os.getpid()
    for _hop in range(32):
        stat = _proc_stat(pid)
        if stat is None:
            break
        if "ansible-playbook" in _cmdline(pid):
            found = (pid, stat[1])
        elif found != (0, 0):
            break
        if stat[0] <= 1:
            break
        pid = stat[0]
    return found


def process_alive(pid: int, pstart: int) -> bool:
    """Whether the process pid, started at pstart, still runs (in this PID namespace)."""
    stat = _proc_stat(pid)
    return stat is not None and stat[1] == pstart


def controller_name() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class Identity:
    """Who a run is: its controller, boot, PID namespace and playbook process. ``alive`` answers whether a
    process still runs (on this controller, in this namespace); ``pid`` and ``pstart`` are the playbook process
    whose end ends this module's run, checked before every state-changing request and in every wait (I4)."""

    host: str
    boot: str
    ns: str
    pid: int
    pstart: int
    alive: t.Callable[[int, int], bool] = process_alive

    @classmethod
    def here(cls, host: str) -> "Identity":
        pid, pstart = playbook_process()
        return cls(host[:63], boot_id(), pid_namespace(), pid, pstart)

    def judge(self, holder: Holder) -> t.Optional[bool]:
        """Whether the holder's process still runs: known only where that is certain (I3): the same
        controller, boot and PID namespace, and a pid and start time recorded; None elsewhere."""
        if (not holder.pid or not holder.pstart or not holder.ns or not self.boot or not self.ns
                or holder.host != self.host or holder.boot != self.boot or holder.ns != self.ns):
            return None
        return self.alive(holder.pid, holder.pstart)

    def run_alive(self) -> bool:
        """Whether the playbook this module runs under still runs; True where it cannot be told."""
        return not self.pid or self.alive(self.pid, self.pstart)

    def watching(self, sleep: t.Callable[[float], None]) -> t.Callable[[float], None]:
        """sleep, made to end every wait within WATCH_STEP once the playbook is gone (I4); sleep itself where
        the playbook cannot be told. Put on the client (client.sleep) before the module's Deadline is made,
        so that every wait of the run, the Deadline's and the client's, is watched."""
        return PlaybookWatch(sleep, self) if self.pid else sleep


class PlaybookWatch:
    """A sleep in steps of at most WATCH_STEP, raising RunGone once the playbook is gone; while ``keep`` is set
    (a fenced step: Hold.keep), it is called at every step, so a step that waits long keeps its hold."""

    def __init__(self, sleep: t.Callable[[float], None], identity: Identity) -> None:
        self.sleep, self.identity = sleep, identity
        self.keep: t.Optional[t.Callable[[], None]] = None

    def __call__(self, seconds: float) -> None:
        left = seconds
        while True:
            if not self.identity.run_alive():
                raise RunGone("The playbook of this maintenance run has ended (a canceled job or a killed run): this "
                              "module stops waiting and sends nothing more; the next run resumes what was recorded")
            if self.keep is not None:
                self.keep()
            if left <= 0:
                return
            step = min(left, WATCH_STEP)
            self.sleep(step)
            left -= step
