#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: azure_hpc_cache_info
short_description: Read Azure HPC Caches
version_added: 0.1.0
description:
  - Reads one Azure HPC Cache, or lists the caches of a resource group or of the whole subscription,
    following C(nextLink) across pages.
  - Never changes anything.
  - A named cache that does not exist fails the task with ARM's error code and message. A listing of a
    resource group that has no caches, or does not exist, returns an empty list.
author:
  - azure_hpc.cache contributors (@azure-hpc)
options:
  name:
    description:
      - The name of one cache to read. Requires O(resource_group).
    type: str
    aliases: [cache_name]
  resource_group:
    description:
      - The resource group to read or list. Without it, every cache of the subscription is listed.
    type: str
extends_documentation_fragment:
  - azure_hpc.cache.read
  - azure_hpc.cache.auth
  - azure_hpc.cache.attributes
  - azure_hpc.cache.attributes.INFO_MODULE
"""

EXAMPLES = r"""
- name: Read one cache
  azure_hpc.cache.azure_hpc_cache_info:
    name: hpc-cache-01
    resource_group: rg-hpc
  register: one

- name: Fail unless the cache is healthy
  ansible.builtin.assert:
    that: one.caches[0].health_state == 'Healthy'

- name: List every cache of the subscription
  azure_hpc.cache.azure_hpc_cache_info:
  register: fleet

- name: Names of the caches that are not healthy
  ansible.builtin.debug:
    msg: "{{ fleet.caches | rejectattr('health_state', 'equalto', 'Healthy') | map(attribute='name') }}"
"""

RETURN = r"""
caches:
  description: The caches read, in the order ARM listed them.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The cache's name.
      type: str
      sample: hpc-cache-01
    id:
      description: The cache's ARM resource ID.
      type: str
      sample: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-hpc/providers/Microsoft.StorageCache/caches/hpc-cache-01
    location:
      description: The Azure region.
      type: str
      sample: eastus
    resource_group:
      description: The resource group, from the ID.
      type: str
      sample: rg-hpc
    health_state:
      description: C(properties.health.state), or C(Unknown) when absent.
      type: str
      sample: Healthy
    health_description:
      description: C(properties.health.statusDescription).
      type: str
      sample: The cache is in Running state
    provisioning_state:
      description: C(properties.provisioningState).
      type: str
      sample: Succeeded
    upgrade_status:
      description: C(properties.upgradeStatus), the firmware upgrade status.
      type: dict
      sample: {"currentFirmwareVersion": "V5.1.0", "firmwareUpdateStatus": "unavailable"}
    firmware_version:
      description: C(upgradeStatus.currentFirmwareVersion), the cache's software version.
      type: str
      sample: V5.1.0
      version_added: 0.5.0
    firmware_update_status:
      description: C(upgradeStatus.firmwareUpdateStatus), V(available) when a software upgrade is pending.
      type: str
      sample: available
      version_added: 0.5.0
    firmware_update_deadline:
      description:
        - C(upgradeStatus.firmwareUpdateDeadline) while an upgrade is pending (after it, Azure applies the upgrade
          itself); null when none is (the service then writes C(0001-01-01T00:00:00Z)).
      type: str
      sample: "2026-12-04T00:00:00Z"
      version_added: 0.5.0
    tags:
      description: The cache's tags.
      type: dict
      sample: {"env": "prod"}
    sku:
      description: The SKU name.
      type: str
      sample: Standard_2G
    properties:
      description: The raw C(properties) object ARM returned.
      type: dict
      sample: {"health": {"state": "Healthy"}, "provisioningState": "Succeeded"}
"""

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.cache import summarize
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ArmError
from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible.module import HpcCacheModule
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.read import READ_OPTIONS
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef

OPTIONS = Options(  # the module's own options, then the read's
    {"name": Option("str", aliases=("cache_name",), rule=rules.optional(rules.cache_name)),
     "resource_group": Option("str", rule=rules.optional(rules.resource_group))},
    READ_OPTIONS,
)


def main() -> None:
    module = HpcCacheModule(OPTIONS, supports_check_mode=True, required_by={"name": "resource_group"})

    def body() -> t.Dict[str, t.Any]:
        values = module.validate()
        client = module.client(timeout=values["timeout"])
        deadline = client.clock() + values["timeout"]
        ops = CacheOperations(client, values["api_version"])
        if values["name"]:
            caches = [ops.get(CacheRef(values["subscription_id"], values["resource_group"], values["name"]), deadline)]
        else:
            try:
                caches = ops.list(values["subscription_id"], values["resource_group"], deadline=deadline)
            except ArmError as exc:
                if exc.status != 404:
                    raise
                caches = []
        return {"changed": False, "caches": [summarize(c) for c in caches]}

    module.run(body)


if __name__ == "__main__":
    main()
