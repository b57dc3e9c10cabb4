# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How we talk to Azure Resource Manager: one requests.Session, tokens, retries, the origin guard.

Retry rules:
  * reads (GET) are retried on 408, 429, 500, 502, 503, 504, on connection
    errors and timeouts, and on a success answer whose JSON cannot be read;
  * an action (POST) is resent only where the service says it did not take
    it: 429, or a retryable status carrying Retry-After, or a connection that
    was never made. Any other failure after the request may have been sent
    raises TransportError(sent=True) and the caller decides what happened.
Every failure while an answer is read (reset, cut short, stalled past its
bound, too large, undecodable, a TLS error that is not about the certificate)
is such a transport error: no answer was had (_http.py bounds and reads it).
Every wait honours Retry-After, is bounded by attempts and by the caller's
deadline, and uses the injected clock and sleep. With a pacer (ArmClient.pacer,
_pacing.py), every try of an action waits for it and tells it the answer, and
the wait after a 429 is the pacer's, shared by every thread of the subscription.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import re
import ssl
import time
import typing as t
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urljoin

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.cloud import Cloud, no_proxy_for, origin_of
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import (
    ApiVersionError,
    ArmError,
    HpcCacheError,
    OriginError,
    TransportError,
    redact,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.http import (
    ACCEPT_ENCODING,
    TRANSPORT_ERRORS,
    ReadFailure,
    Watchdog,
    read_body,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.version import COLLECTION_NAME, COLLECTION_VERSION

try:
    import requests
    from requests import exceptions as rex

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR: t.Optional[BaseException] = None
except ImportError as _exc:  # pragma: no cover - exercised only without requests
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = _exc

RETRYABLE_STATUS = frozenset((408, 429, 500, 502, 503, 504))
MAX_RETRY_AFTER = 600.0
# ARM bodies are a few levels deep; a deeper one is hostile, and would exhaust the recursion of
# whatever walks it next (Ansible's result handling, the inventory's variable wrapping).
MAX_JSON_DEPTH = 64
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # requests in all, the first included
    backoff: float = 1.0  # first backoff, doubled each time
    backoff_cap: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


def _seconds(text: str) -> t.Optional[float]:
    """A plain, finite, positive number of seconds; anything else is no hint."""
    if not _NUMBER.fullmatch(text):  # ASCII only: str.isdigit() accepts '\u00b2', which float() refuses
        return None
    value = float(text)
    return value if math.isfinite(value) and value > 0 else None


def retry_after_seconds(headers: t.Mapping[str, str], now: t.Callable[[], float] = time.time) -> t.Optional[float]:
    """Seconds from Retry-After (delta or HTTP-date) or retry-after-ms; None when absent or unusable.

    A hint of zero, an HTTP-date in the past or a value that cannot be read is
    treated as absent (as azure-core does), so the caller's own delay applies:
    a hint must never turn a wait into a busy loop.
    """
    for name, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0)):
        value = headers.get(name)
        if value is not None:
            seconds = _seconds(str(value).strip())
            if seconds is not None:
                return min(seconds / scale, MAX_RETRY_AFTER)
    value = headers.get("retry-after")
    if value is None:
        return None
    value = str(value).strip()
    if value[:1].isascii() and value[:1].isdigit():
        seconds = _seconds(value)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        delta = when.timestamp() - now()
    except (OverflowError, OSError, ValueError):
        return None
    return min(delta, MAX_RETRY_AFTER) if delta > 0 else None


if t.TYPE_CHECKING:  # types only: what the client asks of a pacer (_pacing.Pacer is one)

    class Pacing(t.Protocol):
        def ticket(self, url: str) -> t.Any:
            """A place in line for one action (all its tries)."""

        def before(self, ticket: t.Any, deadline: t.Optional[float]) -> None:
            """Return when this try may be sent; raise HpcCacheError (nothing sent) when not before deadline."""

        def after(self, ticket: t.Any, response: t.Optional[Response]) -> None:
            """The answer to this try (None: it got none)."""

        def done(self, ticket: t.Any) -> None:
            """The client is done with this action."""


class Response:
    """What came back: status, headers (case-insensitive) and the body, parsed lazily."""

    def __init__(self, status: int, headers: t.Mapping[str, str], content: bytes, url: str, request_id: str) -> None:
        self.status = status
        self.headers = headers
        self.content = content
        self.url = url
        self.request_id = request_id

    def retry_after(self) -> t.Optional[float]:
        """The wait the service asks for (retry_after_seconds of the headers); None when it asks none."""
        return retry_after_seconds(self.headers)

    def json(self) -> t.Any:
        if not self.content or not self.content.strip():
            return None
        try:
            body = json.loads(self.content.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ArmError(
                self.status, "InvalidResponse", "the answer from %s was not valid JSON" % _path_of(self.url),
                request_id=self.request_id,
            )
        if _depth_exceeds(body, MAX_JSON_DEPTH):
            raise ArmError(
                self.status, "InvalidResponse",
                "the answer from %s is nested deeper than %d levels" % (_path_of(self.url), MAX_JSON_DEPTH),
                request_id=self.request_id,
            )
        return body

    def json_object(self) -> t.Dict[str, t.Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise ArmError(
                self.status, "InvalidResponse", "the answer from %s was not a JSON object" % _path_of(self.url),
                request_id=self.request_id,
            )
        return body


def _depth_exceeds(value: t.Any, limit: int) -> bool:
    """True when JSON containers nest deeper than limit; iterative, so it cannot exhaust the stack."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _path_of(url: str) -> str:
    return url.split("?", 1)[0]


def error_from(response: Response, secrets: t.Iterable[str] = ()) -> ArmError:
    """ARM's CloudError ({"error": {code, message, target}}) as an ArmError."""
    code, message, target = "HttpError%d" % response.status, "", None
    try:
        body = response.json()
    except ArmError:
        body = None
    err = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(err, dict) and (err.get("code") or err.get("message")):
        code = str(err.get("code") or code)
        message = str(err.get("message") or "")
        target = str(err["target"]) if err.get("target") else None
    else:
        text = response.content.decode("utf-8", "replace").strip()
        message = text[:300] if text else "no error body"
    code, message = redact(code, secrets)[:200], redact(message, secrets)[:2000]
    ids = {"request_id": response.request_id, "service_request_id": response.headers.get("x-ms-request-id")}
    refused = ApiVersionError.parse(response.status, code, message, **ids)  # the api_version option's fault
    if refused is not None:
        return refused
    error = ArmError(
        response.status,
        code,
        message,
        target=redact(target, secrets)[:200] if target else None,
        **ids,
    )
    error.retry_after = retry_after_seconds(response.headers)
    return error


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
        # Paces the actions (POSTs) of every thread that shares this client (_pacing.Pacer); None: not paced.
        self.pacer: t.Optional[Pacing] = None
        # Called with (method, url) just before every try of an action (POST), once its token is in hand:
        # it raises to stop the request (the fence of a backend maintenance run: its hold still held with
        # time to cover the request, its playbook still running). None: no fence.
        self.guard: t.Optional[t.Callable[[str, str], None]] = None
        self.user_agent = "%s/%s python-requests/%s" % (
            COLLECTION_NAME, COLLECTION_VERSION, getattr(requests, "__version__", "?") if HAS_REQUESTS else "?"
        )
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
        request_id = str(uuid.uuid4())
        headers = {
            "Authorization": "Bearer " + token,
            "x-ms-client-request-id": request_id,
            "x-ms-return-client-request-id": "true",
            "User-Agent": self.user_agent,
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,  # what read_body decodes, and nothing else
        }
        if method in ("POST", "PATCH"):
            headers["Content-Type"] = "application/json"
        timeout = self._timeout(deadline)
        raw = None
        with Watchdog(timeout[1]) as watchdog:
            try:
                raw = self.session.request(
                    method, url, headers=headers, timeout=timeout, allow_redirects=False,
                    data=body if body is not None else (b"" if method == "POST" else None), stream=True,
                    proxies=self._proxies,
                )
                content = read_body(raw, timeout[1])
            except (rex.ConnectTimeout,) as exc:
                raise TransportError("Connection to ARM timed out: %s" % _short(exc), sent=False,
                                     request_id=request_id)
            except rex.SSLError as exc:
                if _untrusted(exc):  # the endpoint's certificate: no retry changes it
                    raise HpcCacheError("TLS error talking to %s: %s (client request id %s)"
                                        % (_path_of(url), _short(exc), request_id), request_id=request_id)
                raise self._no_answer(exc, watchdog, raw, request_id, sent=True)
            except rex.ConnectionError as exc:
                raise self._no_answer(exc, watchdog, raw, request_id, sent=not _never_connected(exc))
            except (rex.RequestException, ReadFailure) + TRANSPORT_ERRORS as exc:
                raise self._no_answer(exc, watchdog, raw, request_id, sent=True)
            if watchdog.finish(ok=True):  # the bound passed as the last byte came in: the connection is spent
                raise self._no_answer(None, watchdog, raw, request_id, sent=True)
        release = getattr(getattr(raw, "raw", None), "release_conn", None)
        if release is not None:
            release()  # the connection goes back to the pool for the next request
        return Response(raw.status_code, raw.headers, content, url, request_id)

    @staticmethod
    def _no_answer(exc: t.Optional[BaseException], watchdog: Watchdog, raw: t.Any, request_id: str,
                   sent: bool) -> TransportError:
        """The answer could not be read whole: its connection is closed, never reused."""
        if raw is not None:
            try:
                raw.close()
            except TRANSPORT_ERRORS:
                pass
        if watchdog.finish(ok=False):
            text = "the answer did not arrive in full within %.0f s" % watchdog.seconds
        else:
            text = _short(exc) if exc is not None else "no answer"
        if not sent:
            return TransportError("Connection to ARM failed: %s" % text, sent=False, request_id=request_id)
        return TransportError("No complete answer from ARM: %s" % text, sent=True, request_id=request_id)

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
        if response is not None:
            delay = retry_after_seconds(response.headers)
            if delay is not None:
                return delay
        base = min(self.policy.backoff * (2 ** (attempt - 1)), self.policy.backoff_cap)
        return float(base * (0.5 + self.rng() / 2.0))

    def pause(self, delay: float, deadline: t.Optional[float]) -> bool:
        """Sleep before the next try; False when that would pass the deadline."""
        if deadline is not None and self.clock() + delay > deadline:
            return False
        self.sleep(delay)
        return True

    def _retrying(self, method: str, url: str, deadline: t.Optional[float],
                  judge: t.Callable[[t.Optional[Response], t.Optional[TransportError]], t.Any],
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

        def judge(response: t.Optional[Response], failure: t.Optional[TransportError]) -> t.Any:
            if response is None:
                return failure
            if response.status in ok or (final is not None and final(response)):
                try:
                    response.json()
                except ArmError as exc:  # a torn or garbled body: read again
                    return exc
                return response
            if response.status in RETRYABLE_STATUS:
                return error_from(response, self._secrets)
            raise error_from(response, self._secrets)

        return self._retrying("GET", url, deadline, judge)

    def post_action(self, url: str, deadline: t.Optional[float] = None) -> Response:
        """POST an action; resent only when the service did not take it. Non-2xx raises ArmError."""

        def judge(response: t.Optional[Response], failure: t.Optional[TransportError]) -> t.Any:
            if response is None:
                if failure is not None and failure.sent:
                    raise failure  # it may have been processed: the caller looks before sending again
                return failure
            if 200 <= response.status < 300:
                return response
            error = error_from(response, self._secrets)
            not_taken = response.status == 429 or (
                response.status in RETRYABLE_STATUS and retry_after_seconds(response.headers) is not None
            )
            if not_taken:
                return error
            raise error

        return self._retrying("POST", url, deadline, judge, pace=True)

    def patch_json(self, url: str, body: t.Mapping[str, t.Any], deadline: t.Optional[float] = None,
                   retry: bool = True) -> Response:
        """PATCH a JSON body that is idempotent (the same patch twice leaves the same result, as a tags Merge or
        Delete does): retried like a read, on transient answers and on any failure to get an answer.

        retry=False: one try; a transient answer or a failure raises (ArmError, TransportError) so that the
        caller reads again and decides again before another write (the maintenance record's rule I5)."""

        def judge(response: t.Optional[Response], failure: t.Optional[TransportError]) -> t.Any:
            if response is None:
                return failure
            if 200 <= response.status < 300:
                return response
            if response.status in RETRYABLE_STATUS:
                return error_from(response, self._secrets)
            raise error_from(response, self._secrets)

        return self._retrying("PATCH", url, deadline, judge, json.dumps(body).encode("utf-8"),
                              attempts=None if retry else 1)


def _untrusted(exc: BaseException) -> bool:
    """A TLS failure about the endpoint's certificate (not trusted, wrong host), not about the connection."""
    seen: t.List[BaseException] = []
    item: t.Optional[BaseException] = exc
    while item is not None and item not in seen and len(seen) < 10:
        seen.append(item)
        if isinstance(item, ssl.SSLCertVerificationError):
            return True
        item = getattr(item, "reason", None) or (item.args[0] if item.args and isinstance(item.args[0], BaseException)
                                                 else item.__context__)
    text = str(exc).casefold()
    return "certificate verify failed" in text or "certificate_verify_failed" in text or "doesn't match" in text


def _never_connected(exc: BaseException) -> bool:
    """True when requests failed before a connection existed (refused, DNS), so nothing was sent."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return type(reason).__name__ in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")


def _short(exc: BaseException) -> str:
    text = str(exc)
    return redact(text if len(text) <= 300 else text[:297] + "...")


def fetch_metadata(session: t.Any, url: str, policy: RetryPolicy = RetryPolicy()) -> t.Any:
    """GET a public metadata document (no token is sent); raises ValueError on any failure.

    Bounded like any answer: a watchdog over the whole answer, and the body read against the size cap.
    """
    raw = None
    try:
        with Watchdog(policy.read_timeout) as watchdog:
            raw = session.get(url, timeout=(policy.connect_timeout, policy.read_timeout), allow_redirects=False,
                              headers={"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING},
                              proxies=no_proxy_for(url), stream=True)
            content = read_body(raw, policy.read_timeout)
            if watchdog.finish(ok=True):
                raise ReadFailure("the answer did not arrive in full within %.0f s" % policy.read_timeout)
    except (rex.RequestException, ReadFailure) + TRANSPORT_ERRORS as exc:
        if raw is not None:
            raw.close()
        raise ValueError("no answer (%s)" % _short(exc))
    if raw.status_code != 200:
        raise ValueError("HTTP %d" % raw.status_code)
    try:
        return json.loads(content.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError("not valid JSON")
