# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: hpc_cache
short_description: Azure HPC Caches as inventory hosts
version_added: 0.1.0
description:
  - Lists the Azure HPC Caches of one or more subscriptions, optionally limited to resource groups, and
    makes each cache a host, so a play runs once per cache and C(--forks), C(serial) and AWX job slicing
    set how many caches are worked on at once.
  - A host is named by its cache; where two caches share a name, each is named
    C(name.resource_group.subscription_id) instead.
  - Every host is in the group C(hpc_caches) and has the variables C(hpc_cache_name),
    C(hpc_cache_resource_group), C(hpc_cache_subscription_id), C(hpc_cache_location),
    C(hpc_cache_health_state), C(hpc_cache_provisioning_state), C(hpc_cache_tags), C(hpc_cache_id), and
    the cache's software - C(hpc_cache_firmware_version), C(hpc_cache_firmware_update_status) (V(available) when an
    upgrade is pending) and C(hpc_cache_firmware_update_deadline) (while one is pending, else null) - so a play can
    select the caches with an upgrade due before a date.
  - The configuration file name must end with C(hpc_cache.yml) or C(hpc_cache.yaml).
  - Everything read from the service (names, ids, tags, states) is marked unsafe, so a cache tag holding
    a template is data, never run, on every supported ansible-core, in the host variables and in
    O(compose), O(groups) and O(keyed_groups).
  - A cache listed twice (a subscription or resource group given twice, in any case) is one host.
author:
  - azure_hpc.cache contributors (@azure-hpc)
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - azure_hpc.cache.auth.PLUGIN
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [azure_hpc.cache.hpc_cache]
  subscriptions:
    description:
      - The subscriptions to list; O(subscription_id) (or E(AZURE_SUBSCRIPTION_ID)) when empty.
    type: list
    elements: str
    default: []
  resource_groups:
    description: Only list caches of these resource groups; every resource group when empty.
    type: list
    elements: str
    default: []
  api_version:
    description: The Microsoft.StorageCache API version to call.
    type: str
    default: '2026-01-01'
  timeout:
    description:
      - Seconds the whole listing may take, retries and every page included; the inventory fails after that.
    type: int
    default: 300
    version_added: 0.2.1
  strict_resource_groups:
    description:
      - With V(false), a resource group in O(resource_groups) that does not exist is skipped with a warning;
        with V(true), it fails the inventory.
    type: bool
    default: false
    version_added: 0.2.1
  local_connection:
    description:
      - Give every host C(ansible_connection=local) and, as C(ansible_python_interpreter), the Python that
        runs the inventory (the controller's or the execution environment's), so plays need no SSH; and
        C(ansible_pipelining=true), which spares every task its temporary files.
    type: bool
    default: true
requirements:
  - azure-identity >= 1.16.0
  - requests >= 2.31.0
"""

EXAMPLES = r"""
# caches.hpc_cache.yml: every cache of the subscription in AZURE_SUBSCRIPTION_ID
plugin: azure_hpc.cache.hpc_cache
---
# fleet.hpc_cache.yml: two subscriptions, grouped by region and health, cached for an hour
plugin: azure_hpc.cache.hpc_cache
subscriptions:
  - 00000000-0000-0000-0000-000000000000
  - 11111111-1111-1111-1111-111111111111
resource_groups: [rg-hpc-eu, rg-hpc-us]
keyed_groups:
  - key: hpc_cache_location
    prefix: location
  - key: hpc_cache_health_state
    prefix: health
  - key: hpc_cache_tags.env | default('none')
    prefix: env
groups:
  unhealthy: hpc_cache_health_state not in ['Healthy', 'Flushing']
  # an upgrade is pending and due before Friday 4 December 2026 (ISO times compare as text)
  upgrade_due: hpc_cache_firmware_update_deadline and hpc_cache_firmware_update_deadline < '2026-12-04'
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/hpc_cache_inventory
cache_timeout: 3600
"""

import hashlib
import json
import sys
import time
import typing as t

from ansible.errors import AnsibleError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.display import Display
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.cache import summarize
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.connect import connect
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.credentials import (
    AUTH_OPTIONS,
    AuthSettings,
    load_settings,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ArmError, HpcCacheError, redact

GROUP = "hpc_caches"


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):  # type: ignore[misc]  # ansible-core ships no types
    NAME = "azure_hpc.cache.hpc_cache"

    def verify_file(self, path: str) -> bool:
        return bool(super().verify_file(path)) and path.endswith(("hpc_cache.yml", "hpc_cache.yaml"))

    def _settings(self) -> AuthSettings:
        params = {name: self.get_option(name) for name in AUTH_OPTIONS}
        return load_settings(params)

    def _scope(self, settings: AuthSettings) -> t.Tuple[t.List[str], t.List[str]]:
        """The subscriptions and resource groups to list, each once (ARM names are case-insensitive)."""
        subscriptions = self.get_option("subscriptions") or [settings.subscription_id]
        subscriptions = [rules.subscription_id(s, "subscriptions") for s in subscriptions]
        groups = [rules.resource_group(g, "resource_groups") for g in self.get_option("resource_groups")]
        return _unique(subscriptions), _unique(groups)

    def _fetch(self, settings: AuthSettings) -> t.List[t.Dict[str, t.Any]]:
        subscriptions, groups = self._scope(settings)
        api_version = rules.api_version(self.get_option("api_version"))
        timeout = rules.positive_int(self.get_option("timeout"), "timeout")
        deadline = time.monotonic() + timeout
        ops = CacheOperations(connect(settings, timeout), api_version)
        found: t.List[t.Dict[str, t.Any]] = []
        seen: t.Set[str] = set()
        for subscription in subscriptions:
            scopes: t.List[t.Optional[str]] = list(groups) or [None]  # None: the whole subscription
            for group in scopes:
                for cache in self._list(ops, subscription, group, deadline):
                    item = summarize(cache)
                    item["subscription_id"] = subscription
                    key = str(item["id"] or item["name"]).lower()
                    if key not in seen:
                        seen.add(key)
                        found.append(item)
        return found

    def _list(self, ops: CacheOperations, subscription: str, group: t.Optional[str],
              deadline: float) -> t.List[t.Dict[str, t.Any]]:
        try:
            return ops.list(subscription, group, deadline=deadline)
        except ArmError as exc:
            if group is None or exc.status != 404 or self.get_option("strict_resource_groups"):
                raise
            Display().warning("azure_hpc.cache.hpc_cache: resource group %s of subscription %s was not listed: %s"
                              % (group, subscription, exc.code))
            return []

    def _cache_key(self, path: str, settings: AuthSettings) -> str:
        """The cache of one configuration, for one identity and scope: switching subscription or
        credentials never serves another's hosts."""
        subscriptions, groups = self._scope(settings)
        scope = [sorted(subscriptions), sorted(groups), self.get_option("api_version"), settings.cloud_environment,
                 settings.auth_source, settings.client_id, settings.tenant, settings.ad_user, settings.profile]
        digest = hashlib.sha256(json.dumps(scope, default=str).encode()).hexdigest()[:16]
        return "%s_%s" % (self.get_cache_key(path), digest)

    def parse(self, inventory: t.Any, loader: t.Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        settings = None
        try:
            settings = self._settings()
            key = self._cache_key(path, settings)
            use_cache = self.get_option("cache") and cache
            caches = None
            if use_cache:
                try:
                    caches = self._cache[key]
                except KeyError:
                    caches = None
            if caches is None:
                caches = self._fetch(settings)
                if self.get_option("cache"):
                    self._cache[key] = caches
        except HpcCacheError as exc:
            secrets = settings.secrets if settings else ()
            raise AnsibleError("azure_hpc.cache.hpc_cache: %s" % redact(str(exc), secrets))
        self._populate(caches)

    @staticmethod
    def _host_names(caches: t.List[t.Dict[str, t.Any]]) -> t.List[str]:
        counts: t.Dict[str, int] = {}
        for item in caches:
            counts[item["name"]] = counts.get(item["name"], 0) + 1
        return [item["name"] if counts[item["name"]] == 1 else "%s.%s.%s" % (
            item["name"], item["resource_group"], item["subscription_id"]) for item in caches]

    def _populate(self, caches: t.List[t.Dict[str, t.Any]]) -> None:
        self.inventory.add_group(GROUP)
        strict = self.get_option("strict")
        for host, item in zip(self._host_names(caches), caches):
            self.inventory.add_host(host, group=GROUP)
            # What the service says is data: unsafe, so no template in it (a tag value) is ever rendered.
            hostvars = wrap_var({
                "hpc_cache_name": item["name"],
                "hpc_cache_resource_group": item["resource_group"],
                "hpc_cache_subscription_id": item["subscription_id"],
                "hpc_cache_location": item["location"],
                "hpc_cache_health_state": item["health_state"],
                "hpc_cache_provisioning_state": item["provisioning_state"],
                "hpc_cache_firmware_version": item["firmware_version"],
                "hpc_cache_firmware_update_status": item["firmware_update_status"],
                "hpc_cache_firmware_update_deadline": item["firmware_update_deadline"],
                "hpc_cache_tags": item["tags"],
                "hpc_cache_id": item["id"],
            })
            if self.get_option("local_connection"):
                hostvars["ansible_connection"] = "local"
                # The interpreter running this plugin; the controller's (or the execution environment's) Python.
                hostvars["ansible_python_interpreter"] = sys.executable
                hostvars["ansible_pipelining"] = True  # no temporary files per task on a local connection
            for name, value in hostvars.items():
                self.inventory.set_variable(host, name, value)
            self._set_composite_vars(self.get_option("compose"), hostvars, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, host, strict=strict)


def _unique(values: t.Iterable[str]) -> t.List[str]:
    """Each value once, compared without regard to case, in the order given."""
    seen: t.Set[str] = set()
    unique: t.List[str] = []
    for value in values:
        if value.lower() not in seen:
            seen.add(value.lower())
            unique.append(value)
    return unique
