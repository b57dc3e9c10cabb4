#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: azure_hpc_cache_flush_many
short_description: Flush many Azure HPC Caches from one task
version_added: 0.2.0
description:
  - Flushes every cache of O(caches) the way M(azure_hpc.cache.azure_hpc_cache_flush) flushes one (the
    same reads, retries, interlock and waits), from one module process with one token and one connection
    pool, at most O(max_concurrent) at a time.
  - One process instead of one per cache is what lets a small controller flush a fleet of caches in little
    more time than one. The role C(azure_hpc.cache.cache_maintenance) uses this module.
  - Each cache gets its own result in RV(caches), in the order given. A cache that fails does not stop the
    others; the task fails when any cache failed, after every flush has ended.
  - A cache listed twice (names compared without regard to case) is flushed once; both entries get its result,
    and the first entry's O(caches[].allowed_states) applies.
  - The flushes of one subscription are paced together by the service's throttling budget (about 60 flushes
    per 5 minutes) - what each answer says is left, and the C(Retry-After) of a throttled (429) answer, which
    holds every flush of the subscription still to be sent. While nothing is known or the budget is spent, one
    flush is sent and the others wait on its answer, so a fleet larger than the budget gets about one throttled
    answer per refill. Reads are not held back. A flush that cannot be sent within O(wait_timeout) fails
    alone, saying it was held back and not sent.
author:
  - azure_hpc.cache contributors (@azure-hpc)
options:
  caches:
    description:
      - The caches to flush.
    type: list
    elements: dict
    required: true
    suboptions:
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
      subscription_id:
        description:
          - The subscription of the cache, when it is not the module's O(subscription_id).
        type: str
      allowed_states:
        description:
          - The interlock of this cache, instead of the module's O(allowed_states).
        type: list
        elements: str
      label:
        description:
          - Returned with the cache's result, to match results to what asked for them (the role passes the
            inventory host name). Defaults to the cache's name.
        type: str
  max_concurrent:
    description:
      - How many caches are flushed at the same time; 1 to 100. The others wait their turn, and
        O(wait_timeout) counts from the start of each cache's turn.
    type: int
    default: 20
extends_documentation_fragment:
  - azure_hpc.cache.action
  - azure_hpc.cache.flush
  - azure_hpc.cache.auth
  - azure_hpc.cache.attributes
  - azure_hpc.cache.attributes.FLUSH_MODULE
notes:
  - The module's O(subscription_id) (or E(AZURE_SUBSCRIPTION_ID)) is needed only when an entry of O(caches)
    has none of its own.
  - Bad input in any entry fails the task before any request is sent, naming the entry, such as
    C(caches[2].name).
seealso:
  - module: azure_hpc.cache.azure_hpc_cache_flush
  - name: Caches - Flush (REST API reference)
    description: The Microsoft.StorageCache action this module calls.
    link: https://learn.microsoft.com/rest/api/storagecache/caches/flush
"""

EXAMPLES = r"""
- name: Flush three caches, two at a time, and wait for each
  azure_hpc.cache.azure_hpc_cache_flush_many:
    caches:
      - name: hpc-cache-01
        resource_group: rg-hpc
      - name: hpc-cache-02
        resource_group: rg-hpc
      - name: hpc-cache-eu
        resource_group: rg-hpc-eu
        subscription_id: 11111111-1111-1111-1111-111111111111
    max_concurrent: 2
  register: flushed

- name: Show what happened to each cache
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.status }} in {{ item.elapsed }} s"
  loop: "{{ flushed.caches }}"
  loop_control:
    label: "{{ item.label }}"

# One host per cache, as the azure_hpc.cache.hpc_cache inventory plugin makes them:
# each host says which cache it is, then one task flushes them all.
- name: Name the cache of each host
  ansible.builtin.set_fact:
    my_cache:
      name: "{{ hpc_cache_name }}"
      resource_group: "{{ hpc_cache_resource_group }}"
      subscription_id: "{{ hpc_cache_subscription_id }}"
      label: "{{ inventory_hostname }}"

- name: Flush the caches of every host of the play from one task
  azure_hpc.cache.azure_hpc_cache_flush_many:
    caches: "{{ ansible_play_hosts | map('extract', hostvars, 'my_cache') | list }}"
  run_once: true
"""

RETURN = r"""
caches:
  description:
    - One result per entry of O(caches), in the same order, with the keys of
      M(azure_hpc.cache.azure_hpc_cache_flush)'s result.
  returned: when the input was valid
  type: list
  elements: dict
  contains:
    label:
      description: The entry's O(caches[].label), else the cache's name.
      type: str
      returned: always
      sample: hpc-cache-01
    name:
      description: The cache's name, as given.
      type: str
      returned: always
      sample: hpc-cache-01
    resource_group:
      description: The cache's resource group, as given.
      type: str
      returned: always
      sample: rg-hpc
    subscription_id:
      description: The cache's subscription.
      type: str
      returned: always
      sample: 00000000-0000-0000-0000-000000000000
    failed:
      description: Whether the flush of this cache failed (or was refused).
      type: bool
      returned: always
      sample: false
    changed:
      description: Whether a flush was sent to this cache (or would be, in check mode).
      type: bool
      returned: always
      sample: true
    msg:
      description: What happened to this cache, or why it failed.
      type: str
      returned: always
      sample: The cache hpc-cache-01 was flushed
    status:
      description:
        - V(Succeeded), V(InProgress), V(Skipped) or V(Refused), as M(azure_hpc.cache.azure_hpc_cache_flush)
          reports it; V(Failed) or V(Canceled) when the operation ended so.
      type: str
      returned: when the cache was read
      sample: Succeeded
    health_state:
      description: The health state of the cache before the task.
      type: str
      returned: when the cache was read
      sample: Healthy
    health_state_after:
      description: The health state of the cache once the flush the task waited for had finished.
      type: str
      returned: when the task waited for a flush to finish and could read the cache afterwards
      sample: Healthy
    status_code:
      description: The HTTP status of the flush request.
      type: int
      returned: when a flush request was answered
      sample: 202
    operation_url:
      description: The status URL of the flush, C(Azure-AsyncOperation) when the service sent one, else C(Location).
      type: str
      returned: when the service gave one
      sample: >-
        https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000000/providers/
        Microsoft.StorageCache/locations/eastus/ascOperations/1111?api-version=2026-01-01
    polls:
      description: Status reads made while waiting; a read the client resent after a throttle or a server error counts once.
      type: int
      returned: always
      sample: 4
    elapsed:
      description: Seconds the flush of this cache took, from the start of its turn.
      type: float
      returned: always
      sample: 42.5
    error:
      description: The error ARM or the operation reported (code, message, target).
      type: dict
      returned: on failure, when the service gave an error
      sample: {"code": "ResourceNotFound", "message": "The Resource ... was not found."}
    request_id:
      description: The C(x-ms-client-request-id) of the request that failed, for a support case.
      type: str
      returned: on failure of a request
      sample: 6d0a0b0e-3c1a-4f39-9c55-5a3d2bb0e6a1
failed_caches:
  description: The labels of the caches whose flush failed or was refused.
  returned: when the input was valid
  type: list
  elements: str
  sample: [hpc-cache-02]
elapsed:
  description: Seconds the whole task spent.
  returned: always
  type: float
  sample: 43.1
"""

import time
import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._fleet.flush_many import FLEET_OPTIONS, flush_fleet
from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible.module import HpcCacheModule


def main() -> None:
    module = HpcCacheModule(FLEET_OPTIONS, supports_check_mode=True)
    started = time.monotonic()

    def body() -> t.Dict[str, t.Any]:
        values = module.validate(subscription_required=False)
        summary, failure = flush_fleet(values, options=ActionOptions.of(values, check_mode=module.check_mode),
                                       connect=module.client, redact=module.redact, started=started)
        if failure is not None:
            module.fail(failure, **summary)
        return summary

    module.run(body, partial=lambda: {"elapsed": round(time.monotonic() - started, 3)})


if __name__ == "__main__":
    main()
