#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: azure_hpc_cache_storage_target
short_description: Flush, suspend or resume one storage target of an Azure HPC Cache
version_added: 0.3.0
description:
  - Brings one storage target of an Azure HPC Cache to a state for backend maintenance, through the
    C(storageTargets/{name}/flush), C(suspend), C(resume) and C(dnsRefresh) actions. Flushing one target
    blocks only the clients of its namespace, not every client of the cache.
  - The target is read first, and read again before each action. Every action is followed as the cache
    flush is. An answer with C(Azure-AsyncOperation) or C(Location) is an operation, polled to its end; a
    bare C(200) or C(204) is judged by the target's state, and the outcome is reported from the service's
    last word. Throttling, server errors, resets and timeouts are retried where safe; an action is sent
    again only after a request that got no answer and reads that show it was not taken.
  - V(state=flushed) flushes the target (a flush already running is attached to).
  - V(state=suspended) flushes the target first (with O(flush), or whenever a flush runs), waits for that
    flush to finish even with O(wait=false), then suspends client access. A target that reads C(Suspended)
    gets nothing.
  - V(state=active) resumes a target that reads C(Suspended), then refreshes its DNS with O(dns_refresh).
    A target in any other state is not suspended and gets nothing.
  - A target that reads C(Busy) is busy with another change; it is read until it leaves that state (with
    O(wait); without, nothing is sent and the status is V(InProgress)).
  - For maintenance on a backend, the C(azure_hpc.cache.cache_maintenance) role runs this module around
    your task files and resumes every target it suspended, even when a task fails.
author:
  - azure_hpc.cache contributors (@azure-hpc)
options:
  cache_name:
    description:
      - The name of the cache; 1 to 80 letters, digits, C(-) and C(_).
    type: str
    required: true
  resource_group:
    description:
      - The resource group of the cache.
    type: str
    required: true
  name:
    description:
      - The name of the storage target; 1 to 80 letters, digits, C(-) and C(_) (the API's pattern).
    type: str
    required: true
  state:
    description:
      - The state to bring the target to.
    type: str
    required: true
    choices: [flushed, suspended, active]
  flush:
    description:
      - With V(state=suspended), flush the target's dirty data before suspending it.
      - V(false) suspends without writing dirty data back first; a flush that already runs is still waited for.
    type: bool
    default: true
  dns_refresh:
    description:
      - With V(state=active), refresh the target's DNS after resuming it (after a private endpoint or a
        filer's address moved). Sent only after a resume this task sent.
    type: bool
    default: false
extends_documentation_fragment:
  - azure_hpc.cache.action
  - azure_hpc.cache.auth
  - azure_hpc.cache.attributes
  - azure_hpc.cache.attributes.TARGET_MODULE
seealso:
  - module: azure_hpc.cache.azure_hpc_cache_storage_target_info
  - name: Storage targets - Suspend (REST API reference)
    description: One of the Microsoft.StorageCache actions this module calls.
    link: https://learn.microsoft.com/rest/api/storagecache/storage-targets/suspend
"""

EXAMPLES = r"""
- name: Flush and suspend a filer before patching it
  azure_hpc.cache.azure_hpc_cache_storage_target:
    cache_name: hpc-cache-01
    resource_group: rg-hpc
    name: filer-01
    state: suspended
  register: suspended

- name: Resume it, and refresh its DNS (its private endpoint moved)
  azure_hpc.cache.azure_hpc_cache_storage_target:
    cache_name: hpc-cache-01
    resource_group: rg-hpc
    name: filer-01
    state: active
    dns_refresh: true

- name: Flush one target only
  azure_hpc.cache.azure_hpc_cache_storage_target:
    cache_name: hpc-cache-01
    resource_group: rg-hpc
    name: blob-01
    state: flushed
    wait_timeout: 7200
"""

RETURN = r"""
status:
  description:
    - V(Succeeded) when the target reads the state asked for (or, for V(state=flushed), reads C(Ready) or
      C(Suspended) after the flush).
    - V(InProgress) when the last action still runs (O(wait=false)).
    - V(Unconfirmed) when an action's operation reported V(Succeeded) but the target did not show the state it
      leads to within O(confirm_timeout); the task fails (unless O(trust_operation=true)).
  returned: success, and on failure when the failed action ended with a status
  type: str
  sample: Succeeded
msg:
  description: What was done and what the service said, one clause per action.
  returned: always
  type: str
state_before:
  description: The target's state as first read (C(Ready), C(Busy), C(Suspended), C(Flushing), or whatever else it reports).
  returned: when the target was read
  type: str
  sample: Ready
state_after:
  description: The target's state as last read; the state before in check mode.
  returned: when the target was read
  type: str
  sample: Suspended
operations:
  description: The actions sent, in the order sent. Empty in check mode and when nothing needed doing.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: V(flush), V(suspend), V(resume) or V(dns_refresh).
      type: str
      sample: suspend
    status_code:
      description: The HTTP status of the action's answer.
      type: int
      sample: 202
    operation_url:
      description: The C(Azure-AsyncOperation) (or C(Location)) URL of the operation, when the service gave one.
      type: str
    status:
      description: V(Succeeded), V(InProgress), V(Failed), V(Canceled) or V(Unconfirmed) (see RV(status)).
      type: str
      sample: Succeeded
polls:
  description: Status reads made while waiting, over every action; a read the client resent after a throttle or a server error counts once.
  returned: always
  type: int
  sample: 4
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
  sample: 42.7
request_id:
  description: The C(x-ms-client-request-id) of the request that failed, for a support case.
  returned: on failure of a request
  type: str
"""

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ACTION_OPTIONS, ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible.module import HpcCacheModule
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import TargetRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.target_actions import DESIRED_STATES, TargetTask

OPTIONS = Options(
    ACTION_OPTIONS,
    cache_name=Option("str", required=True, rule=rules.cache_name),
    resource_group=Option("str", required=True, rule=rules.resource_group),
    name=Option("str", required=True, rule=rules.storage_target_name),
    state=Option("str", required=True, choices=DESIRED_STATES),
    flush=Option("bool", True),
    dns_refresh=Option("bool", False),
)


def main() -> None:
    module = HpcCacheModule(OPTIONS, supports_check_mode=True)
    task: t.Optional[TargetTask] = None

    def body() -> t.Dict[str, t.Any]:
        nonlocal task
        setup = module.setup_action(ActionOptions.of, cache="cache_name")
        values = setup.values
        task = TargetTask(setup.ops, TargetRef(setup.cache, values["name"]), state=values["state"],
                          flush=values["flush"], dns_refresh=values["dns_refresh"], options=setup.options,
                          deadline=setup.deadline)
        return dict(task.run())

    module.run(body, partial=lambda: dict(task.result) if task else {"operations": [], "polls": 0})


if __name__ == "__main__":
    main()
