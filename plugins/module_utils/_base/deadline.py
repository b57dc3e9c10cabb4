# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A task's one clock: when it must be over, the clock that measures it, and the sleep that waits on it."""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Deadline:
    """When a task must be over, on the clock it is measured by, and the sleep that waits on that clock.

    Made once where a task starts (Deadline.after), and passed down: every wait, pause and request
    bound of the task reads this one value. ``at`` is the float the client's request bounds take.
    """

    at: float
    clock: t.Callable[[], float] = field(default=time.monotonic, compare=False)
    sleep: t.Callable[[float], None] = field(default=time.sleep, compare=False)

    @classmethod
    def after(cls, seconds: float, *, clock: t.Callable[[], float] = time.monotonic,
              sleep: t.Callable[[float], None] = time.sleep) -> Deadline:
        """The deadline ``seconds`` from now on ``clock``."""
        return cls(clock() + seconds, clock=clock, sleep=sleep)

    def now(self) -> float:
        return self.clock()

    def left(self) -> float:
        """Seconds until the deadline; zero or less once it has passed."""
        return self.at - self.clock()

    def sooner(self, at: float) -> Deadline:
        """This deadline, or ``at`` on the same clock when that comes first."""
        return self if self.at <= at else Deadline(at, clock=self.clock, sleep=self.sleep)

    def pause(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; False (and no sleep) when that would pass the deadline."""
        if self.clock() + delay > self.at:
            return False
        self.sleep(delay)
        return True
