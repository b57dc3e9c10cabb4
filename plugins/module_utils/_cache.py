# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HPC Cache operations: the URLs of Microsoft.StorageCache caches and what a flush decides."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ansible_collections.azure_hpc.cache.plugins.module_utils import _validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._client import ArmClient, Response, retry_after_seconds
from ansible_collections.azure_hpc.cache.plugins.module_utils._errors import ArmError, HpcCacheError, TransportError
from ansible_collections.azure_hpc.cache.plugins.module_utils._poller import Poller, Reading

PROVIDER = "Microsoft.StorageCache"
FLUSHING = "flushing"
STOPPED_STATES = ("stopped", "stopping")
# The cache health states of the API (HealthStateType, 2026-01-01) but Flushing and Unknown: only
# one of these, read after a flush began, shows that the flush no longer runs (docs/service-behaviour.md).
SETTLED_STATES = frozenset((
    "healthy", "degraded", "down", "transitioning", "stopping", "stopped", "upgrading",
    "waitingforkey", "startfailed", "upgradefailed",
))
MAX_PAGES = 1000
# At most this many flush requests in one task: a request is only sent again after the one
# before got no answer and the cache, read SETTLE_READS times, never showed it flushing.
MAX_UNANSWERED_POSTS = 3
SETTLE_READS = 3
# The longest pause between those reads (poll_interval when shorter).
SETTLE_DELAY = 5.0


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
    """properties.health.state as the service wrote it, without stray whitespace; Unknown when absent."""
    props = cache.get("properties")
    health = props.get("health") if isinstance(props, dict) else None
    state = health.get("state") if isinstance(health, dict) else None
    return state.strip() if isinstance(state, str) and state.strip() else "Unknown"


def is_flushing(state: str) -> bool:
    return state.strip().casefold() == FLUSHING


def flush_over(state: str) -> bool:
    """True only for a known state other than Flushing: an empty or unknown state proves nothing."""
    return state.strip().casefold() in SETTLED_STATES


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
            if deadline is not None and self.client.clock() >= deadline:
                raise HpcCacheError("Listing caches took longer than the timeout, after %d pages" % len(seen))
            seen.add(url)
            body = self.client.get(url, deadline=deadline).json_object()
            value, next_link = body.get("value"), body.get("nextLink")
            if not isinstance(value, (list, type(None))):
                raise HpcCacheError("Listing caches: the answer's 'value' is a %s, not a list" % type(value).__name__)
            if not isinstance(next_link, (str, type(None))):
                raise HpcCacheError("Listing caches: the answer's 'nextLink' is a %s, not a URL"
                                    % type(next_link).__name__)
            caches.extend(c for c in value or [] if isinstance(c, dict))
            url = next_link or None
        return caches


class FlushTask:
    """One flush of one cache, by the rules of docs/service-behaviour.md.

    Whatever path a flush takes, _conclude() alone sets the final status, from
    the last word of the service: the operation's status and the cache's
    health state, as last read. Succeeded needs one of them to say the flush
    is over and neither to say it runs.
    """

    def __init__(self, ops: CacheOperations, ref: CacheRef, *, wait: bool, wait_timeout: int,
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
        # The last word of the service on the flush: None until read.
        self.operation_status: t.Optional[str] = None
        self.cache_state: t.Optional[str] = None

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
        if is_flushing(state):
            self.cache_state = state
            self._follow_cache("The cache %s was already flushing; no second flush was sent" % self.ref.name)
        elif state.casefold() in STOPPED_STATES:
            self.result.update(status="Skipped", msg="The cache %s is %s: a stopped cache holds no dirty data; "
                                                     "no flush was sent" % (self.ref.name, state))
        elif self.allowed_states and state.casefold() not in [a.strip().casefold() for a in self.allowed_states]:
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

    # Sending the flush ----------------------------------------------------
    def _flush(self) -> None:
        response = self._post()
        self.result["changed"] = True
        if response is None:
            self._follow_cache("The flush request of %s got no clear answer, but the cache is flushing" % self.ref.name)
            return
        self.result["status_code"] = response.status
        how = "The flush of %s was accepted (HTTP %d)" % (self.ref.name, response.status)
        async_url = response.headers.get("Azure-AsyncOperation")
        location = response.headers.get("Location")
        if not (async_url or location):
            # 200 or 204 alone is no proof: the API describes 204 as "already in progress or has completed".
            self._follow_cache(how)
            return
        # Any 2xx with an operation header is an operation, 204 included: the service was recorded
        # answering the flush with 204 and Azure-AsyncOperation while it ran on.
        self.result["operation_url"] = async_url or location
        self.operation_status = "InProgress"
        if not self.wait:
            self._conclude(how)
            return
        poll = self.poller.wait_operation(async_url, location, self.poll_interval, self.deadline,
                                          retry_after_seconds(response.headers), subject="the flush operation")
        self.result["polls"] += poll.polls
        self.operation_status = poll.status
        try:
            self.cache_state = self._read_state()
        except HpcCacheError:  # the operation's own word stands; a failed read of the aftermath must not fail it
            self._conclude(how)
            return
        self._follow_cache(how)

    def _post(self) -> t.Optional[Response]:
        """Send the flush; None when it got no clear answer but the cache shows a flush running.

        After a POST with no answer the service may need a moment to show the
        flush: the cache is read SETTLE_READS times before the POST is sent
        again. A 409, or a 5xx without Retry-After (not resent), while the cache
        is flushing means a flush runs: it is attached to.
        """
        url = self.ops.cache_url(self.ref, "flush")
        last: t.Optional[TransportError] = None
        for _attempt in range(MAX_UNANSWERED_POSTS):
            try:
                return self.client.post_action(url, deadline=self.deadline)
            except TransportError as exc:
                last = exc
            except ArmError as exc:
                if (exc.status == 409 or exc.status >= 500) and self._shows_flushing(reads=1):
                    return None
                raise
            if self._shows_flushing(reads=SETTLE_READS):
                return None  # the service took the unanswered POST
        raise HpcCacheError(
            "The flush request got no answer %d times and the cache is not flushing: %s"
            % (MAX_UNANSWERED_POSTS, last), request_id=last.request_id if last else None,
        )

    def _shows_flushing(self, reads: int) -> bool:
        delay = min(float(self.poll_interval), SETTLE_DELAY)
        for read in range(reads):
            if read and not self.client.pause(delay, self.deadline):
                break
            state = self._read_state()
            if is_flushing(state):
                self.cache_state = state
                return True
        return False

    # Following the flush --------------------------------------------------
    def _read_state(self, response: t.Optional[Response] = None) -> str:
        response = response or self.client.get(self.ops.cache_url(self.ref), deadline=self.deadline)
        state = health_state(response.json_object())
        self.result["health_state_after"] = state
        return state

    def _read_until_over(self) -> Reading:
        response = self.client.get(self.ops.cache_url(self.ref), deadline=self.deadline)
        self.cache_state = self._read_state(response)
        return Reading(flush_over(self.cache_state), retry_after_seconds(response.headers), self.cache_state)

    def _follow_cache(self, how: str) -> None:
        """Read the cache until a known state other than Flushing (with wait), then conclude."""
        if self.cache_state is None:
            self.cache_state = self._read_state()
        if not flush_over(self.cache_state) and self.wait and not self.check_mode:
            poll = self.poller.wait_until(self._read_until_over, self.poll_interval, self.deadline,
                                          subject="the flush of %s" % self.ref.name)
            self.result["polls"] += poll.polls
        self._conclude(how)

    def _conclude(self, how: str) -> None:
        """The one place that sets the final status, from the service's last word on the flush."""
        evidence = {"operation_status": self.operation_status, "cache_state": self.cache_state}
        self.result["completion"] = {k: v for k, v in evidence.items() if v is not None}
        said = "; ".join(
            ["the operation reported %s" % self.operation_status] * (self.operation_status is not None)
            + ["the cache reads %s" % self.cache_state] * (self.cache_state is not None)
        ) or "no status was read"
        over = self.operation_status in (None, "Succeeded") and (
            flush_over(self.cache_state) if self.cache_state is not None else self.operation_status == "Succeeded")
        if over:
            self.result.update(status="Succeeded", msg="%s and has finished (%s)" % (how, said))
            return
        why = ("not waiting (wait=false)" if not self.wait else "check mode does not wait" if self.check_mode
               else "it still runs")
        self.result.update(status="InProgress", msg="%s; it runs on, %s (%s)" % (how, why, said))
