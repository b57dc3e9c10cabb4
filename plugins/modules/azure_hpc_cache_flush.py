#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: azure_hpc_cache_flush
short_description: Flush an Azure HPC Cache, writing its dirty data to its storage targets
version_added: 0.1.0
description:
  - Tells an Azure HPC Cache to write all its dirty data to its storage targets, through the
    C(Microsoft.StorageCache/caches/{name}/flush) action, and optionally waits for the long-running
    operation to finish.
  - Clients of the cache see errors until the flush is done, so run it inside a maintenance window.
  - The cache is read first. A cache that is already C(Flushing) is not flushed again; with O(wait) the
    task waits for that flush. A C(Stopped) or C(Stopping) cache holds no dirty data and is skipped.
  - Throttling (429), server errors (5xx), resets and timeouts are retried with backoff that honours
    C(Retry-After). The flush request itself is only sent again where the service did not take it; after
    a request that got no answer, the cache is read again and a flush found running is waited for,
    so one task never sends a second flush.
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
      - The resource group of the cache; 1 to 90 letters, digits, underscores, hyphens, periods and
        parentheses, not ending in a period.
    type: str
    required: true
extends_documentation_fragment:
  - azure_hpc.cache.action
  - azure_hpc.cache.flush
  - azure_hpc.cache.auth
  - azure_hpc.cache.attributes
  - azure_hpc.cache.attributes.FLUSH_MODULE
seealso:
  - name: Caches - Flush (REST API reference)
    description: The Microsoft.StorageCache action this module calls.
    link: https://learn.microsoft.com/rest/api/storagecache/caches/flush
"""

EXAMPLES = r"""
- name: Flush a cache and wait for it to finish
  azure_hpc.cache.azure_hpc_cache_flush:
    name: hpc-cache-01
    resource_group: rg-hpc
  register: flush

- name: Start a flush without waiting
  azure_hpc.cache.azure_hpc_cache_flush:
    name: hpc-cache-01
    resource_group: rg-hpc
    wait: false
  register: started

- name: Later, attach to the running flush and wait for it (no second flush is sent)
  azure_hpc.cache.azure_hpc_cache_flush:
    name: hpc-cache-01
    resource_group: rg-hpc
    wait_timeout: 7200
    poll_interval: 30

- name: Flush only a cache that is healthy or degraded; fail otherwise, sending nothing
  azure_hpc.cache.azure_hpc_cache_flush:
    name: hpc-cache-01
    resource_group: rg-hpc
    allowed_states: [Healthy, Degraded]

- name: Set authentication once for every module of the collection
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/azure_hpc.cache.all:
      subscription_id: "{{ azure_subscription_id }}"
      auth_source: cli
  tasks:
    - name: Flush the cache
      azure_hpc.cache.azure_hpc_cache_flush:
        name: hpc-cache-01
        resource_group: rg-hpc

# In an AWX / Automation Controller job template, attach a credential of the built-in
# "Microsoft Azure Resource Manager" type: it injects AZURE_SUBSCRIPTION_ID, AZURE_CLIENT_ID,
# AZURE_SECRET and AZURE_TENANT (or AZURE_AD_USER and AZURE_PASSWORD), so the task needs
# no authentication options at all.
- name: Flush from a job template with the Azure credential attached
  azure_hpc.cache.azure_hpc_cache_flush:
    name: "{{ cache_name }}"
    resource_group: "{{ cache_resource_group }}"
    wait_timeout: "{{ flush_timeout | default(3600) }}"
"""

RETURN = r"""
status:
  description:
    - V(Succeeded) when the flush finished, including a flush found running and waited for, and in check
      mode when a flush would be sent.
    - V(InProgress) when the task did not wait (O(wait=false)) or timed out.
    - V(Skipped) when the cache is stopped or stopping.
    - V(Refused) when the cache's health state is not in O(allowed_states); the task fails.
    - V(Unconfirmed) when the flush operation reported V(Succeeded) but the cache still read V(Flushing) (or a
      state that shows nothing) after O(confirm_timeout); the task fails (unless O(trust_operation=true)).
  returned: when the cache was read
  type: str
  sample: Succeeded
health_state:
  description: The health state of the cache before the task, as ARM reported it.
  returned: when the cache was read
  type: str
  sample: Healthy
health_state_after:
  description: The health state of the cache once the flush the task waited for had finished.
  returned: when the task waited for a flush to finish and could read the cache afterwards
  type: str
  sample: Healthy
status_code:
  description: The HTTP status of the flush request.
  returned: when a flush request was answered
  type: int
  sample: 202
operation_url:
  description:
    - The status URL of the flush, C(Azure-AsyncOperation) when the service sent one, else C(Location).
  returned: when the service gave one
  type: str
  sample: >-
    https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000000/providers/
    Microsoft.StorageCache/locations/eastus/ascOperations/1111?api-version=2026-01-01
polls:
  description: Status reads made while waiting; a read the client resent after a throttle or a server error counts once.
  returned: always
  type: int
  sample: 4
elapsed:
  description: Seconds the task spent.
  returned: always
  type: float
  sample: 42.5
error:
  description: The error ARM or the operation reported (code, message, target).
  returned: on failure, when the service gave an error
  type: dict
  sample: {"code": "ResourceNotFound", "message": "The Resource ... was not found."}
request_id:
  description: The C(x-ms-client-request-id) of the request that failed, for a support case.
  returned: on failure of a request
  type: str
  sample: 6d0a0b0e-3c1a-4f39-9c55-5a3d2bb0e6a1
"""

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_flush import FLUSH_OPTIONS, FlushTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible.module import HpcCacheModule

OPTIONS = Options(
    FLUSH_OPTIONS,
    name=Option("str", required=True, aliases=("cache_name",), rule=rules.cache_name),
    resource_group=Option("str", required=True, rule=rules.resource_group),
)


def main() -> None:
    module = HpcCacheModule(OPTIONS, supports_check_mode=True)
    task: t.Optional[FlushTask] = None

    def body() -> t.Dict[str, t.Any]:
        nonlocal task
        setup = module.setup_action(ActionOptions.of)
        task = FlushTask(setup.ops, setup.cache, options=setup.options, deadline=setup.deadline,
                         allowed_states=setup.values["allowed_states"])
        return dict(task.run())

    module.run(body, partial=lambda: dict(task.result) if task else {})


if __name__ == "__main__":
    main()
