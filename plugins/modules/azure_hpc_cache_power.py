#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: azure_hpc_cache_power
short_description: Stop or start an Azure HPC Cache
version_added: 0.5.0
description:
  - Stops a cache (to save cost in idle periods; the cache flushes its contents before it reads C(Stopped)) or
    starts it again, through the C(Microsoft.StorageCache/caches/{name}/stop) and C(start) actions, and waits until
    the cache reads C(Stopped), or C(Healthy) (or C(Degraded)).
  - The cache is read first. A stopped cache is not stopped again, a running one not started again; a cache that
    is C(Stopping) or C(Transitioning) is attached to and waited for. Neither sends anything.
  - A stop is sent only from C(Healthy) or C(Degraded), a start only from C(Stopped) or C(StartFailed) (or the
    states in O(allowed_states)); any other state is refused (status V(Refused)) before anything is sent.
  - The service answers a start of a running cache C(204) with no operation; such an answer proves nothing, and
    the cache's state decides.
author:
  - azure_hpc.cache contributors (@azure-hpc)
options:
  name:
    description:
      - The name of the cache; 1 to 80 letters, digits, C(-) and C(_).
    type: str
    required: true
    aliases: [cache_name]
  resource_group:
    description:
      - The resource group of the cache.
    type: str
    required: true
  state:
    description:
      - V(stopped) stops the cache; V(started) starts it.
    type: str
    required: true
    choices: [started, stopped]
  allowed_states:
    description:
      - The health states the action is sent from, compared without case. Empty (the default) means
        C(Healthy) and C(Degraded) for a stop, C(Stopped) and C(StartFailed) for a start.
      - A cache that already reads the state asked for, or the action running, is handled as described above
        whatever this list holds.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - azure_hpc.cache.action
  - azure_hpc.cache.auth
  - azure_hpc.cache.attributes
  - azure_hpc.cache.attributes.LIFECYCLE_MODULE
seealso:
  - name: Caches - Stop (REST API reference)
    description: The Microsoft.StorageCache action a stop calls.
    link: https://learn.microsoft.com/rest/api/storagecache/caches/stop
  - name: Caches - Start (REST API reference)
    description: The Microsoft.StorageCache action a start calls.
    link: https://learn.microsoft.com/rest/api/storagecache/caches/start
"""

EXAMPLES = r"""
- name: Stop a cache at the end of the window, and wait until it reads Stopped
  azure_hpc.cache.azure_hpc_cache_power:
    name: hpc-cache-01
    resource_group: rg-hpc
    state: stopped

- name: Start it at the beginning of the next one
  azure_hpc.cache.azure_hpc_cache_power:
    name: hpc-cache-01
    resource_group: rg-hpc
    state: started
    wait_timeout: 1800
"""

RETURN = r"""
status:
  description:
    - V(Succeeded) when the cache reads the state asked for (already, or once the action finished), and in check
      mode when the action would be sent.
    - V(InProgress) when the task did not wait (O(wait=false)).
    - V(Refused) when the cache's health state is not one the action is sent from; the task fails.
    - V(Failed) when a start ended with the cache reading C(StartFailed); the task fails.
    - V(Unconfirmed) when the operation reported V(Succeeded) but the cache did not read the state asked for
      within O(confirm_timeout); the task fails (unless O(trust_operation=true)).
  returned: when the task reached an end of its own (not when a request failed with an error from ARM)
  type: str
  sample: Succeeded
health_state:
  description: The health state of the cache before the task.
  returned: when the cache was read
  type: str
  sample: Healthy
health_state_after:
  description: The health state of the cache as last read.
  returned: when the cache was read after the action was sent or found running
  type: str
  sample: Stopped
status_code:
  description: The HTTP status of the action's request.
  returned: when a request was answered
  type: int
  sample: 202
operation_url:
  description: The status URL of the action, C(Azure-AsyncOperation) when the service sent one, else C(Location).
  returned: when the service gave one
  type: str
msg:
  description: What was done, in the service's words where it gave some.
  returned: always
  type: str
completion:
  description: The service's last word on the action, the operation's status and the cache's state, as last read.
  returned: when the action was sent or found running
  type: dict
  sample: {"operation_status": "Succeeded", "cache_state": "Healthy"}
polls:
  description: Status reads made while waiting.
  returned: always
  type: int
  sample: 15
elapsed:
  description: Seconds the task spent.
  returned: always
  type: float
  sample: 150.4
"""

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_actions import (
    POWER_ACTIONS,
    CacheActionTask,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ACTION_OPTIONS, ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible.module import HpcCacheModule

OPTIONS = Options(
    ACTION_OPTIONS,
    name=Option("str", required=True, aliases=("cache_name",), rule=rules.cache_name),
    resource_group=Option("str", required=True, rule=rules.resource_group),
    state=Option("str", required=True, choices=tuple(POWER_ACTIONS)),
    allowed_states=Option("list", [], rules.state_names, elements="str"),
)


def main() -> None:
    module = HpcCacheModule(OPTIONS, supports_check_mode=True)
    task: t.Optional[CacheActionTask] = None

    def body() -> t.Dict[str, t.Any]:
        nonlocal task
        setup = module.setup_action(ActionOptions.of)
        task = CacheActionTask(setup.ops, setup.cache, POWER_ACTIONS[setup.values["state"]], options=setup.options,
                               deadline=setup.deadline, allowed_states=setup.values["allowed_states"])
        return dict(task.run())

    module.run(body, partial=lambda: dict(task.result) if task else {})


if __name__ == "__main__":
    main()
