#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: azure_hpc_cache_storage_target_info
short_description: Read the storage targets of an Azure HPC Cache
version_added: 0.3.0
description:
  - Reads one storage target of an Azure HPC Cache, or lists all of them, following C(nextLink) across pages.
  - Never changes anything.
  - A named target, or a cache, that does not exist fails the task with ARM's error code and message.
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
      - The name of one storage target to read; 1 to 80 letters, digits, C(-) and C(_). Without it, every
        storage target of the cache is listed.
    type: str
extends_documentation_fragment:
  - azure_hpc.cache.read
  - azure_hpc.cache.auth
  - azure_hpc.cache.attributes
  - azure_hpc.cache.attributes.INFO_MODULE
seealso:
  - module: azure_hpc.cache.azure_hpc_cache_storage_target
"""

EXAMPLES = r"""
- name: Read every storage target of a cache
  azure_hpc.cache.azure_hpc_cache_storage_target_info:
    cache_name: hpc-cache-01
    resource_group: rg-hpc
  register: targets

- name: Names of the targets that are not Ready
  ansible.builtin.debug:
    msg: "{{ targets.storage_targets | rejectattr('state', 'equalto', 'Ready') | map(attribute='name') }}"

- name: Read one storage target
  azure_hpc.cache.azure_hpc_cache_storage_target_info:
    cache_name: hpc-cache-01
    resource_group: rg-hpc
    name: filer-01
  register: filer
"""

RETURN = r"""
storage_targets:
  description: The storage targets read, in the order ARM listed them.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The target's name.
      type: str
      sample: filer-01
    id:
      description: The target's ARM resource ID.
      type: str
      sample: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-hpc/providers/Microsoft.StorageCache/caches/c1/storagetargets/f1
    target_type:
      description: C(properties.targetType) as the service reports it (C(nfs3), C(blobNfs), C(clfs), C(unknown)).
      type: str
      sample: nfs3
    state:
      description: C(properties.state) as the service reports it (C(Ready), C(Busy), C(Suspended), C(Flushing)), or C(Unknown) when absent.
      type: str
      sample: Ready
    provisioning_state:
      description: C(properties.provisioningState).
      type: str
      sample: Succeeded
    junctions:
      description: The namespace paths the target serves.
      type: list
      elements: dict
      contains:
        namespace_path:
          description: The path clients see.
          type: str
          sample: /exports/projects
        target_path:
          description: The path on the target.
          type: str
          sample: /projects
        nfs_export:
          description: The NFS export.
          type: str
          sample: /exports
        nfs_access_policy:
          description: The name of the access policy applied to this junction.
          type: str
          sample: default
    properties:
      description: The raw C(properties) object ARM returned.
      type: dict
"""

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible.module import HpcCacheModule
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.read import READ_OPTIONS
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef, TargetRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.target import summarize_target

OPTIONS = Options(  # the module's own options, then the read's
    {"cache_name": Option("str", required=True, rule=rules.cache_name),
     "resource_group": Option("str", required=True, rule=rules.resource_group),
     "name": Option("str", rule=rules.optional(rules.storage_target_name))},
    READ_OPTIONS,
)


def main() -> None:
    module = HpcCacheModule(OPTIONS, supports_check_mode=True)

    def body() -> t.Dict[str, t.Any]:
        values = module.validate()
        client = module.client(timeout=values["timeout"])
        deadline = client.clock() + values["timeout"]
        ops = CacheOperations(client, values["api_version"])
        cache = CacheRef(values["subscription_id"], values["resource_group"], values["cache_name"])
        if values["name"]:
            targets = [ops.get_target(TargetRef(cache, values["name"]), deadline)]
        else:
            targets = ops.list_targets(cache, deadline)
        return {"changed": False, "storage_targets": [summarize_target(t) for t in targets]}

    module.run(body)


if __name__ == "__main__":
    main()
