# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HPC Cache operations: the URLs of Microsoft.StorageCache caches and what a flush decides."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ansible_collections.azure_hpc.cache.plugins.module_utils import _validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._client import ArmClient, retry_after_seconds
from ansible_collections.azure_hpc.cache.plugins.module_utils._errors import ArmError, HpcCacheError, TransportError
from ansible_collections.azure_hpc.cache.plugins.module_utils._poller import Poller, Reading

PROVIDER = "Microsoft.StorageCache"
FLUSHING = "flushing"
STOPPED_STATES = ("stopped", "stopping")
MAX_PAGES = 1000
# After a flush POST got no answer, how many times the cache is read and the POST sent again.
MAX_UNANSWERED_POSTS = 3


def flush_argument_spec() -> t.Dict[str, t.Dict[str, t.Any]]:
    """How a flush runs; documented by the azure_hpc.cache.flush doc fragment."""
    return {
        "api_version": {"type": "str", "default": "2026-01-01"},
        "wait": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 3600},
        "poll_interval": {"type": "int", "default": 10},
        "allowed_states": {"type": "list", "elements": "str", "default": []},
    }


# The rule of each option of flush_argument_spec(), checked before any request.
FLUSH_RULES: t.Dict[str, t.Callable[[t.Any, str], t.Any]] = {
    "api_version": rules.api_version,
    "wait_timeout": rules.positive_int,
    "poll_interval": rules.positive_int,
    "allowed_states": rules.state_names,
}


@dataclass(frozen=True)
class CacheRef:
    subscription_id: str
    resource_group: str
    name: str


def health_state(cache: t.Mapping[str, t.Any]) -> str:
    props = cache.get("properties")
    health = props.get("health") if isinstance(props, dict) else None
    state = health.get("state") if isinstance(health, dict) else None
    return state if isinstance(state, str) and state else "Unknown"


def resource_group_of(resource_id: str) -> t.Optional[str]:
    parts = resource_id.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == "resourcegroups":
            return parts[i + 1]
    return None


def summarize(cache: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """The fields runbooks read, plus the raw properties."""
    props = cache.get("properties") if isinstance(cache.get("properties"), dict) else {}
    health = props.get("health") if isinstance(props.get("health"), dict) else {}
    upgrade = props.get("upgradeStatus")
    return {
        "name": cache.get("name"),
        "id": cache.get("id"),
        "location": cache.get("location"),
        "resource_group": resource_group_of(str(cache.get("id") or "")),
        "health_state": health_state(cache),
        "health_description": health.get("statusDescription"),
        "provisioning_state": props.get("provisioningState"),
        "upgrade_status": upgrade,
        "tags": cache.get("tags") or {},
        "sku": (cache.get("sku") or {}).get("name") if isinstance(cache.get("sku"), dict) else None,
        "properties": props,
    }


class CacheOperations:
    def __init__(self, client: ArmClient, api_version: str) -> None:
        self.client = client
        self.api_version = api_version

    def _params(self) -> t.Dict[str, str]:
        return {"api-version": self.api_version}

    def cache_url(self, ref: CacheRef, action: t.Optional[str] = None) -> str:
        segments = ["subscriptions", ref.subscription_id, "resourceGroups", ref.resource_group,
                    "providers", PROVIDER, "caches", ref.name]
        if action:
            segments.append(action)
        return self.client.resource_url(segments, self._params())

    def list_url(self, subscription_id: str, resource_group: t.Optional[str] = None) -> str:
        segments = ["subscriptions", subscription_id]
        if resource_group:
            segments += ["resourceGroups", resource_group]
        return self.client.resource_url(segments + ["providers", PROVIDER, "caches"], self._params())

    def get(self, ref: CacheRef, deadline: t.Optional[float] = None) -> t.Dict[str, t.Any]:
        return self.client.get(self.cache_url(ref), deadline=deadline).json_object()

    def list(self, subscription_id: str, resource_group: t.Optional[str] = None,
             deadline: t.Optional[float] = None) -> t.List[t.Dict[str, t.Any]]:
        """Every cache of a resource group or subscription, following nextLink."""
        caches: t.List[t.Dict[str, t.Any]] = []
        url: t.Optional[str] = self.list_url(subscription_id, resource_group)
        seen = set()
        while url:
            if url in seen or len(seen) >= MAX_PAGES:
                raise HpcCacheError("Listing caches: nextLink repeats or exceeds %d pages" % MAX_PAGES)
            seen.add(url)
            body = self.client.get(url, deadline=deadline).json_object()
            value = body.get("value") or []
            caches.extend(c for c in value if isinstance(c, dict))
            url = body.get("nextLink") or None
        return caches


class FlushTask:
    """One flush of one cache, as the contract's behaviour 1-6 decide it."""

    def __init__(self, ops: CacheOperations, ref: CacheRef, wait: bool, wait_timeout: int,
                 poll_interval: int, check_mode: bool, allowed_states: t.Sequence[str] = ()) -> None:
        self.ops = ops
        self.allowed_states = list(allowed_states)
        self.client = ops.client
        self.poller = Poller(ops.client)
        self.ref = ref
        self.wait = wait
        self.poll_interval = poll_interval
        self.check_mode = check_mode
        self.started = self.client.clock()
        self.deadline = self.started + wait_timeout
        self.result: t.Dict[str, t.Any] = {"changed": False, "polls": 0}

    def elapsed(self) -> float:
        return round(self.client.clock() - self.started, 3)

    def run(self) -> t.Dict[str, t.Any]:
        try:
            self._run()
        finally:
            self.result["elapsed"] = self.elapsed()
        return self.result

    def _run(self) -> None:
        cache = self.ops.get(self.ref, self.deadline)
        state = health_state(cache)
        self.result["health_state"] = state
        if state.lower() == FLUSHING:
            self._attach("The cache %s is already flushing; no second flush was sent" % self.ref.name)
        elif state.lower() in STOPPED_STATES:
            self.result.update(status="Skipped", msg="The cache %s is %s: a stopped cache holds no dirty data; "
                                                     "no flush was sent" % (self.ref.name, state))
        elif self.allowed_states and state.lower() not in [a.lower() for a in self.allowed_states]:
            description = summarize(cache)["health_description"]
            self.result["status"] = "Refused"
            raise HpcCacheError(
                "Refusing to flush %s: its health state is %s%s; allowed states are %s (option allowed_states)"
                % (self.ref.name, state, " (%s)" % description if description else "", ", ".join(self.allowed_states))
            )
        elif self.check_mode:
            self.result.update(changed=True, status="Succeeded",
                               msg="Check mode: the cache %s (%s) would be flushed" % (self.ref.name, state))
        else:
            self._flush()

    def _attach(self, msg: str) -> None:
        if not self.wait:
            self.result.update(status="InProgress", msg=msg + "; not waiting (wait=false)")
            return
        if self.check_mode:
            self.result.update(status="InProgress", msg=msg + "; check mode does not wait")
            return
        self.result["polls"] += self.poller.wait_until(self._read_until_not_flushing, self.poll_interval,
                                                       self.deadline).polls
        self.result.update(status="Succeeded", msg=msg + "; waited until it finished")

    def _read_until_not_flushing(self) -> Reading:
        response = self.client.get(self.ops.cache_url(self.ref), deadline=self.deadline)
        state = health_state(response.json_object())
        self.result["health_state_after"] = state
        return Reading(state.lower() != FLUSHING, retry_after_seconds(response.headers), state)

    def _flushing_now(self) -> bool:
        return health_state(self.ops.get(self.ref, self.deadline)).lower() == FLUSHING

    def _post(self) -> t.Any:
        """Send the flush once; after a POST that got no answer, read the cache before sending again.

        A server error without Retry-After is not resent either, but the flush
        may have started before the error: a cache found flushing is attached to.
        """
        url = self.ops.cache_url(self.ref, "flush")
        last: t.Optional[TransportError] = None
        for _attempt in range(MAX_UNANSWERED_POSTS):
            try:
                return self.client.post_action(url, deadline=self.deadline)
            except TransportError as exc:
                last = exc
            except ArmError as exc:
                if exc.status < 500 or not self._flushing_now():
                    raise
                return None
            if self._flushing_now():
                return None  # the service took the unanswered POST
        raise HpcCacheError(
            "The flush request got no answer %d times and the cache is not flushing: %s"
            % (MAX_UNANSWERED_POSTS, last), request_id=last.request_id if last else None,
        )

    def _flush(self) -> None:
        response = self._post()
        self.result["changed"] = True
        if response is None:
            self._attach("The flush request of %s got no clear answer, but the cache is flushing" % self.ref.name)
            return
        self.result["status_code"] = response.status
        if response.status != 202:
            self._finished()
            return
        async_url = response.headers.get("Azure-AsyncOperation")
        location = response.headers.get("Location")
        self.result["operation_url"] = async_url or location
        if not self.wait:
            self.result.update(status="InProgress", msg="The flush of %s was accepted and runs on; not waiting"
                                                        % self.ref.name)
            return
        first = retry_after_seconds(response.headers)
        poll = self.poller.wait_operation(async_url, location, self.poll_interval, self.deadline, first)
        self.result["polls"] += poll.polls
        self._finished()

    def _finished(self) -> None:
        """The flush is done; report the state the cache is in now, so no second task has to read it."""
        self.result.update(status="Succeeded", msg="The cache %s was flushed" % self.ref.name)
        if not self.wait:
            return
        try:
            self.result["health_state_after"] = health_state(self.ops.get(self.ref, self.deadline))
        except HpcCacheError:
            pass  # the flush succeeded; a failed read of its aftermath must not fail the task
