#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: azure_hpc_cache_upgrade
short_description: Apply a pending software upgrade to an Azure HPC Cache, inside your maintenance window
version_added: 0.5.0
description:
  - When Microsoft publishes new cache software, the cache's C(upgradeStatus) reads C(firmwareUpdateStatus=available)
    with a C(firmwareUpdateDeadline); after that deadline Azure applies it at a time nobody chooses. This module
    applies it now, through the C(Microsoft.StorageCache/caches/{name}/upgrade) action, and waits for it.
  - The cache is read first. With nothing pending, nothing is sent and the task reports no change. A cache
    already C(Upgrading) is attached to, and waited for; no second upgrade is sent.
  - With O(flush) (the default) the cache is flushed first, and the upgrade is sent only once the flush is over.
  - The upgrade is over only when the cache reads C(Healthy) or C(Degraded) again and no upgrade is pending any
    more; an answer without an operation (the service answers C(204) when nothing is pending) proves nothing.
    A cache that ends C(UpgradeFailed), or an operation that fails, fails the task with the service's words.
  - An upgrade is sent only to a cache that reads C(Healthy) or C(Degraded); any other state is refused
    (status V(Refused)) before anything is sent.
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
  flush:
    description:
      - Flush the cache (and wait for the flush to finish) before the upgrade is sent.
    type: bool
    default: true
extends_documentation_fragment:
  - azure_hpc.cache.action
  - azure_hpc.cache.auth
  - azure_hpc.cache.attributes
  - azure_hpc.cache.attributes.LIFECYCLE_MODULE
seealso:
  - module: azure_hpc.cache.azure_hpc_cache_info
    description: Reads C(upgrade_status), C(firmware_update_status) and C(firmware_update_deadline) of every cache.
  - name: Caches - Upgrade Firmware (REST API reference)
    description: The Microsoft.StorageCache action this module calls.
    link: https://learn.microsoft.com/rest/api/storagecache/caches/upgrade-firmware
"""

EXAMPLES = r"""
- name: Apply a pending software upgrade after a flush, and wait for it
  azure_hpc.cache.azure_hpc_cache_upgrade:
    name: hpc-cache-01
    resource_group: rg-hpc
    wait_timeout: 14400
  register: upgrade

- name: Say what changed
  ansible.builtin.debug:
    msg: "{{ upgrade.firmware_before }} -> {{ upgrade.firmware_after }}"
  when: upgrade is changed
"""

RETURN = r"""
status:
  description:
    - V(Succeeded) when the upgrade finished (including one found running and waited for), and in check mode
      when one would be sent.
    - V(Skipped) when no upgrade is pending; nothing was sent.
    - V(InProgress) when the task did not wait (O(wait=false)).
    - V(Refused) when the cache's health state is not C(Healthy) or C(Degraded); the task fails.
    - V(Failed) when the cache ended C(UpgradeFailed); the task fails.
    - V(Unconfirmed) when the operation reported V(Succeeded) but the cache did not show the upgrade within
      O(confirm_timeout); the task fails (unless O(trust_operation=true)).
  returned: when the task reached an end of its own (not when a request failed with an error from ARM)
  type: str
  sample: Succeeded
firmware_before:
  description: The cache's software version before the task.
  returned: when the cache was read
  type: str
  sample: 6.1.0
firmware_after:
  description: The cache's software version as last read.
  returned: when the cache was read
  type: str
  sample: 6.2.1
firmware_update_status:
  description: C(firmwareUpdateStatus) as last read, V(available) or V(unavailable).
  returned: when the cache was read
  type: str
  sample: unavailable
firmware_update_deadline:
  description: C(firmwareUpdateDeadline) as last read, while an upgrade is pending; null otherwise.
  returned: when the cache was read
  type: str
  sample: "2026-12-04T00:00:00Z"
pending_firmware:
  description: The version pending, as last read, when the service names it.
  returned: when the cache was read
  type: str
health_state:
  description: The health state of the cache before the task.
  returned: when the cache was read
  type: str
  sample: Healthy
health_state_after:
  description: The health state of the cache as last read.
  returned: when the cache was read after the upgrade was sent or found running
  type: str
  sample: Healthy
operation_url:
  description: The status URL of the upgrade, C(Azure-AsyncOperation) when the service sent one, else C(Location).
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
status_code:
  description: The HTTP status of the upgrade request.
  returned: when an upgrade request was answered
  type: int
  sample: 202
polls:
  description: Status reads made while waiting (the flush's included).
  returned: always
  type: int
  sample: 12
elapsed:
  description: Seconds the task spent.
  returned: always
  type: float
  sample: 1830.2
"""

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_actions import UpgradeTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ACTION_OPTIONS, ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible.module import HpcCacheModule

OPTIONS = Options(
    ACTION_OPTIONS,
    name=Option("str", required=True, aliases=("cache_name",), rule=rules.cache_name),
    resource_group=Option("str", required=True, rule=rules.resource_group),
    flush=Option("bool", True),
)


def main() -> None:
    module = HpcCacheModule(OPTIONS, supports_check_mode=True)
    task: t.Optional[UpgradeTask] = None

    def result_of(upgrade: UpgradeTask) -> t.Dict[str, t.Any]:
        return dict(dict(upgrade.result), **upgrade.software_result())

    def body() -> t.Dict[str, t.Any]:
        nonlocal task
        setup = module.setup_action(ActionOptions.of)
        task = UpgradeTask(setup.ops, setup.cache, flush=setup.values["flush"], options=setup.options,
                           deadline=setup.deadline)
        task.run()
        return result_of(task)

    module.run(body, partial=lambda: result_of(task) if task else {})


if __name__ == "__main__":
    main()
