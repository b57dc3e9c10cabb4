# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an action decides before it sends anything (Decision), and what it returns (ActionResult, Status).

decide() returns a Decision; ActionTask.act() (action.py) alone acts on it. The result types are types
only: a module's target Python need not have typing.Literal or typing.TypedDict.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:  # types only: a module's target Python need not have typing.Literal
    #: A task's status, as the modules document it.
    Status = t.Literal["Succeeded", "InProgress", "Skipped", "Refused", "Unconfirmed", "Failed", "Canceled"]
    DecisionKind = t.Literal["attach", "skip", "refuse", "check", "send"]
    #: The result keys of the resource's state before and after (FlushTask: health_state; TargetAction: state_before).
    StateKey = t.Literal["state", "health_state", "state_before"]
    StateAfterKey = t.Literal["state_after", "health_state_after"]

    class ActionResult(t.TypedDict, total=False):
        """The result of one action (ActionTask.result), as a module returns it."""

        changed: bool
        failed: bool
        status: Status
        msg: str
        polls: int
        elapsed: float
        status_code: int
        operation_url: str
        completion: t.Dict[str, str]  # operation_status and the resource's state (completion_key), as last read
        warnings: t.List[str]
        state: str
        state_after: str
        health_state: str
        health_state_after: str
        state_before: str


@dataclass(frozen=True)
class Decision:
    """What decide() concludes from the resource as first read; ActionTask.act() alone acts on it.

    attach: the action already runs, follow it (nothing sent). skip: nothing to do, the task ends with
    ``status`` (Skipped, or Succeeded when the resource already reads the state the action leads to).
    refuse: the task fails with status Refused. check: check mode, nothing sent, ``changed`` as the
    real run would report. send: POST the action and follow it.
    """

    kind: DecisionKind
    msg: str = ""
    status: Status = "Succeeded"

    @classmethod
    def attach(cls) -> Decision:
        return cls("attach")

    @classmethod
    def skip(cls, msg: str, *, status: Status = "Skipped") -> Decision:
        return cls("skip", msg, status)

    @classmethod
    def refuse(cls, msg: str) -> Decision:
        return cls("refuse", msg, "Refused")

    @classmethod
    def check(cls, msg: str) -> Decision:
        return cls("check", msg)

    @classmethod
    def send(cls) -> Decision:
        return cls("send")
