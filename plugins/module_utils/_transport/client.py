# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How we talk to Azure Resource Manager: one requests.Session, tokens, retries, the origin guard.

The client sends (exchange.py: one try, its answer read whole or a TransportError), judges each
answer by the decisions table (retry.py) and reads what came back (response.py: the body,
Retry-After, the CloudError). Every wait honours Retry-After, is bounded by attempts and by the
caller's deadline, and uses the injected clock and sleep. With a pacer (ArmClient.pacer,
_fleet/pacing.py), every try of an action waits for it and tells it the answer, and the wait
after a 429 is the pacer's, shared by every thread of the subscription.
"""

from __future__ import annotations

import json
import random
import time
import typing as t
from urllib.parse import quote, urlencode, urljoin

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError, OriginError, TransportError
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.version import COLLECTION_NAME, COLLECTION_VERSION
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.cloud import Cloud, no_proxy_for, origin_of
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.exchange import REQUESTS_VERSION, send_once
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.response import Response
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.retry import (
    Judge,
    RetryPolicy,
    action_judge,
    backoff_delay,
    read_judge,
    write_judge,
)

if t.TYPE_CHECKING:
    from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.retry import Pacing


class ArmClient:
    """Requests to one ARM origin through a requests.Session (connect() builds both, and is the one
    place that checks requests is installed); clock, sleep and rng are injected for tests."""

    def __init__(
        self,
        cloud: Cloud,
        tokens: t.Any,
        session: t.Any,
        policy: RetryPolicy = RetryPolicy(),
        sleep: t.Callable[[float], None] = time.sleep,
        clock: t.Callable[[], float] = time.monotonic,
        rng: t.Callable[[], float] = random.random,
        secrets: t.Iterable[str] = (),
    ) -> None:
        self.cloud = cloud
        self.tokens = tokens
        self.session = session
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self.rng = rng
        self._secrets = tuple(secrets)
        # Paces the actions (POSTs) of every thread that shares this client (_fleet/pacing.Pacer); None: not paced.
        self.pacer: t.Optional[Pacing] = None
        # Called with (method, url) just before every try of an action (POST), once its token is in hand:
        # it raises to stop the request (the fence of a backend maintenance run: its hold still held with
        # time to cover the request, its playbook still running). None: no fence.
        self.guard: t.Optional[t.Callable[[str, str], None]] = None
        self.user_agent = "%s/%s python-requests/%s" % (COLLECTION_NAME, COLLECTION_VERSION, REQUESTS_VERSION)
        self._proxies = no_proxy_for(cloud.arm_endpoint)

    # URLs -----------------------------------------------------------------
    def resource_url(self, segments: t.Sequence[str], params: t.Optional[t.Mapping[str, str]] = None) -> str:
        """An ARM URL from path segments; each is percent-encoded, so no value can change the path."""
        path = "/".join(quote(seg, safe="") for seg in segments)
        url = self.cloud.arm_endpoint + path
        return url + ("?" + urlencode(params) if params else "")

    def absolute(self, url: str) -> str:
        """Resolve a URL from the service and refuse it unless it is on the ARM origin."""
        try:
            full = urljoin(self.cloud.arm_endpoint, url)
            origin = origin_of(full)
        except ValueError as exc:  # urljoin refuses some hosts (NFKC look-alikes of '/', '?', '#', '@')
            raise OriginError("Refusing the URL the service gave: not a valid URL (%s)" % exc)
        except OriginError as exc:
            raise OriginError("Refusing the URL the service gave: %s" % exc)
        if origin != self.cloud.origin:
            raise OriginError(
                "Refusing to follow %s://%s:%d: it is not the ARM endpoint %s://%s:%d the token is for"
                % (origin + self.cloud.origin)
            )
        return full

    # Requests -------------------------------------------------------------
    def _timeout(self, deadline: t.Optional[float]) -> t.Tuple[float, float]:
        connect, read = self.policy.connect_timeout, self.policy.read_timeout
        if deadline is not None:
            left = max(deadline - self.clock(), 0.5)
            connect, read = min(connect, left), min(read, left)
        return connect, read

    def _send_once(self, method: str, url: str, deadline: t.Optional[float], token: str,
                   body: t.Optional[bytes] = None) -> Response:
        return send_once(self.session, method, url, token, self._timeout(deadline), self.user_agent,
                         self._proxies, body)

    def _send(self, method: str, url: str, deadline: t.Optional[float], body: t.Optional[bytes] = None) -> Response:
        """One request; a 401 gets one fresh token and one more try.

        The URL is checked before a token is asked for, so a refused URL costs no token.
        """
        url = self.absolute(url)
        token = self.tokens.token()
        self._guard(method, url)
        response = self._send_once(method, url, deadline, token, body)
        if response.status == 401:
            token = self.tokens.token(force_refresh=True, rejected=token)
            self._guard(method, url)
            response = self._send_once(method, url, deadline, token, body)
        return response

    def _guard(self, method: str, url: str) -> None:
        """The last check before an action leaves: as close to the send as the token allows."""
        if self.guard is not None and method == "POST":
            self.guard(method, url)

    def _backoff(self, attempt: int, response: t.Optional[Response]) -> float:
        return backoff_delay(self.policy, attempt, response, self.rng)

    def pause(self, delay: float, deadline: t.Optional[float]) -> bool:
        """Sleep before the next try; False when that would pass the deadline."""
        if deadline is not None and self.clock() + delay > deadline:
            return False
        self.sleep(delay)
        return True

    def _retrying(self, method: str, url: str, deadline: t.Optional[float], judge: Judge,
                  body: t.Optional[bytes] = None, pace: bool = False, attempts: t.Optional[int] = None) -> Response:
        """Send until judge() accepts an answer, within the attempts and the deadline.

        judge(response, failure) returns the Response to hand back, returns the
        error to retry after (honouring Retry-After), or raises to stop at once.
        pace: each try waits for the pacer (when there is one), which then waits out a 429 for every
        thread of the subscription at once, instead of this request waiting on its own.
        """
        pacer = self.pacer if pace else None
        ticket = pacer.ticket(url) if pacer is not None else None
        last: t.Optional[HpcCacheError] = None
        tries = self.policy.attempts if attempts is None else attempts
        try:
            for attempt in range(1, tries + 1):
                response, failure = None, None
                if pacer is not None:
                    pacer.before(ticket, deadline)  # raises when it cannot be sent before the deadline
                try:
                    response = self._send(method, url, deadline, body)
                except TransportError as exc:
                    failure = exc
                finally:
                    if pacer is not None:
                        pacer.after(ticket, response)
                verdict = judge(response, failure)
                if isinstance(verdict, Response):
                    return verdict
                last = verdict
                if attempt == tries:
                    break
                if pacer is not None and response is not None and response.status == 429:
                    continue  # the pacer holds it, with every other request of the subscription
                if not self.pause(self._backoff(attempt, response), deadline):
                    break
        finally:
            if pacer is not None:
                pacer.done(ticket)
        raise last  # type: ignore[misc]  # the loop ran at least once and set it

    def get(self, url: str, deadline: t.Optional[float] = None, ok: t.Collection[int] = (200,),
            final: t.Optional[t.Callable[[Response], bool]] = None) -> Response:
        """GET with retries; returns an answer whose status is in ok, else raises ArmError.

        final(response) marks an error answer that is itself the answer sought (an
        operation's failure, as a Location URL reports it): it is returned, not retried.
        """
        return self._retrying("GET", url, deadline, read_judge(self._secrets, ok, final))

    def post_action(self, url: str, deadline: t.Optional[float] = None) -> Response:
        """POST an action; resent only when the service did not take it. Non-2xx raises ArmError."""
        return self._retrying("POST", url, deadline, action_judge(self._secrets), pace=True)

    def patch_json(self, url: str, body: t.Mapping[str, t.Any], deadline: t.Optional[float] = None,
                   retry: bool = True) -> Response:
        """PATCH a JSON body that is idempotent (the same patch twice leaves the same result, as a tags Merge or
        Delete does): retried like a read, on transient answers and on any failure to get an answer.

        retry=False: one try; a transient answer or a failure raises (ArmError, TransportError) so that the
        caller reads again and decides again before another write (the maintenance record's rule I5)."""
        return self._retrying("PATCH", url, deadline, write_judge(self._secrets), json.dumps(body).encode("utf-8"),
                              attempts=None if retry else 1)
