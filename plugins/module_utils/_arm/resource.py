# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Microsoft.StorageCache caches and storage targets over ARM: URLs, reads, listings that follow nextLink.

Nothing here decides anything: it builds URLs on the client's ARM origin and
checks that what a listing answers has the shape ARM documents.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError

PROVIDER = "Microsoft.StorageCache"
DEFAULT_API_VERSION = "2026-01-01"
# ARM's Tags API: tags of any resource, written without the resource provider (Microsoft.Resources/tags/write).
TAGS_API_VERSION = "2021-04-01"
# A listing that has not ended after this many pages is refused (a nextLink loop, or a hostile server).
MAX_PAGES = 1000


@dataclass(frozen=True)
class CacheRef:
    subscription_id: str
    resource_group: str
    name: str


@dataclass(frozen=True)
class TargetRef:
    """A storage target: a child resource of its cache."""

    cache: CacheRef
    name: str


def normalized_id(ref: CacheRef) -> str:
    """The cache's id as ARM compares it: names without case."""
    return ("/subscriptions/%s/resourceGroups/%s/providers/%s/caches/%s"
            % (ref.subscription_id, ref.resource_group, PROVIDER, ref.name)).lower()


def resource_group_of(resource_id: str) -> t.Optional[str]:
    parts = resource_id.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == "resourcegroups":
            return parts[i + 1]
    return None


class CacheOperations:
    """The caches of one api-version, through one client."""

    def __init__(self, client: ArmClient, api_version: str) -> None:
        self.client = client
        self.api_version = api_version

    def _params(self) -> t.Dict[str, str]:
        return {"api-version": self.api_version}

    def cache_url(self, ref: CacheRef, *path: str) -> str:
        """The cache, or a path below it: cache_url(ref, "flush"), cache_url(ref, "storageTargets", name)."""
        segments = ["subscriptions", ref.subscription_id, "resourceGroups", ref.resource_group,
                    "providers", PROVIDER, "caches", ref.name]
        return self.client.resource_url(segments + [p for p in path if p], self._params())

    def list_url(self, subscription_id: str, resource_group: t.Optional[str] = None) -> str:
        segments = ["subscriptions", subscription_id]
        if resource_group:
            segments += ["resourceGroups", resource_group]
        return self.client.resource_url(segments + ["providers", PROVIDER, "caches"], self._params())

    def tags_url(self, ref: CacheRef) -> str:
        """The Tags API resource of a cache: {cache id}/providers/Microsoft.Resources/tags/default."""
        segments = ["subscriptions", ref.subscription_id, "resourceGroups", ref.resource_group,
                    "providers", PROVIDER, "caches", ref.name, "providers", "Microsoft.Resources", "tags", "default"]
        return self.client.resource_url(segments, {"api-version": TAGS_API_VERSION})

    def patch_tags(self, ref: CacheRef, operation: str, tags: t.Mapping[str, str],
                   deadline: t.Optional[float] = None) -> t.Dict[str, str]:
        """Merge or Delete tags of a cache; the cache's tags as the answer gives them."""
        body = {"operation": operation, "properties": {"tags": dict(tags)}}
        answer = self.client.patch_json(self.tags_url(ref), body, deadline=deadline).json()
        props = answer.get("properties") if isinstance(answer, dict) else None
        found = props.get("tags") if isinstance(props, dict) else None
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def target_url(self, ref: TargetRef, *path: str) -> str:
        return self.cache_url(ref.cache, "storageTargets", ref.name, *path)

    def get(self, ref: CacheRef, deadline: t.Optional[float] = None) -> t.Dict[str, t.Any]:
        return self.client.get(self.cache_url(ref), deadline=deadline).json_object()

    def get_target(self, ref: TargetRef, deadline: t.Optional[float] = None) -> t.Dict[str, t.Any]:
        return self.client.get(self.target_url(ref), deadline=deadline).json_object()

    def list_targets(self, ref: CacheRef, deadline: t.Optional[float] = None) -> t.List[t.Dict[str, t.Any]]:
        """Every storage target of a cache, following nextLink."""
        return self.pages(self.cache_url(ref, "storageTargets"), "storage targets", deadline)

    def list(self, subscription_id: str, resource_group: t.Optional[str] = None,
             deadline: t.Optional[float] = None) -> t.List[t.Dict[str, t.Any]]:
        """Every cache of a resource group or subscription, following nextLink."""
        return self.pages(self.list_url(subscription_id, resource_group), "caches", deadline)

    def pages(self, url: str, what: str, deadline: t.Optional[float] = None) -> t.List[t.Dict[str, t.Any]]:
        """The 'value' items of a listing and of every page its nextLink chain leads to."""
        items: t.List[t.Dict[str, t.Any]] = []
        next_url: t.Optional[str] = url
        seen: t.Set[str] = set()
        while next_url:
            if next_url in seen or len(seen) >= MAX_PAGES:
                raise HpcCacheError("Listing %s: nextLink repeats or exceeds %d pages" % (what, MAX_PAGES))
            if deadline is not None and self.client.clock() >= deadline:
                raise HpcCacheError("Listing %s took longer than the timeout, after %d pages" % (what, len(seen)))
            seen.add(next_url)
            body = self.client.get(next_url, deadline=deadline).json_object()
            value, next_link = body.get("value"), body.get("nextLink")
            if not isinstance(value, (list, type(None))):
                raise HpcCacheError("Listing %s: the answer's 'value' is a %s, not a list"
                                    % (what, type(value).__name__))
            if not isinstance(next_link, (str, type(None))):
                raise HpcCacheError("Listing %s: the answer's 'nextLink' is a %s, not a URL"
                                    % (what, type(next_link).__name__))
            items.extend(c for c in value or [] if isinstance(c, dict))
            next_url = next_link or None
        return items
