# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How an action (a cache flush, a storage-target flush, suspend or resume) runs;
    # mirrors ACTION_OPTIONS in module_utils/_actions/options.py (tests/unit/plugins/doc_fragments checks it).
    DOCUMENTATION = r"""
options:
  api_version:
    description:
      - The Microsoft.StorageCache API version to call.
    type: str
    default: '2026-01-01'
  wait:
    description:
      - Wait for the action to finish.
      - With V(false) the action is reported once the service has accepted it, with status V(InProgress)
        and its operation URL. Running the task again attaches to an action that still runs.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds the task may take, its retries and its waits included. Must be greater than 0.
      - At the timeout the task fails with the operation URL and status V(InProgress); a rerun attaches to
        what still runs.
    type: int
    default: 3600
  poll_interval:
    description:
      - The longest pause, in seconds, between status reads when the service sends no C(Retry-After). The first
        read comes after a second, and each pause is a third of the wait so far (at least a second), up to this.
        Must be greater than 0.
    type: int
    default: 10
  confirm_timeout:
    description:
      - Seconds the resource may take to show the state an action leads to (a cache no longer V(Flushing); a
        storage target V(Suspended) after a suspend, V(Ready) after a resume) once the service said the action
        is over. Must be greater than 0.
      - The operation's final word decides; the state corroborates it. When the state does not show within this
        window the task fails with status V(Unconfirmed), saying what the operation reported and what the resource
        reads, instead of waiting for O(wait_timeout). A state that shows the action still running is waited
        for up to O(wait_timeout).
    type: int
    default: 120
  trust_operation:
    description:
      - Accept an operation that reported V(Succeeded) when the resource does not show the state it leads to
        within O(confirm_timeout). The task then succeeds with a warning instead of failing.
      - The real service was recorded reporting a storage-target suspend V(Succeeded) while the target read
        V(Ready) two minutes later; leave this V(false) unless you trust the operation alone.
    type: bool
    default: false
"""
