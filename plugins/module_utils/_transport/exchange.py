# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One request and its answer, read whole or not at all (no retries: retry.py and the client decide those).

Every failure while an answer is read (reset, cut short, stalled past its bound, too large,
undecodable, a TLS error that is not about the certificate) is a TransportError: no answer was had
(http.py bounds and reads it); sent=False only where the connection was never made. A TLS error about
the endpoint's certificate is an HpcCacheError: no retry changes it.
"""

from __future__ import annotations

import json
import ssl
import typing as t
import uuid

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError, TransportError, redact
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.cloud import no_proxy_for
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.http import (
    ACCEPT_ENCODING,
    TRANSPORT_ERRORS,
    ReadFailure,
    Watchdog,
    read_body,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.response import Response, path_of
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.retry import RetryPolicy

try:
    import requests
    from requests import exceptions as rex

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR: t.Optional[BaseException] = None
except ImportError as _exc:  # pragma: no cover - exercised only without requests
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = _exc

REQUESTS_VERSION = str(getattr(requests, "__version__", "?")) if HAS_REQUESTS else "?"


def send_once(session: t.Any, method: str, url: str, token: str, timeout: t.Tuple[float, float], user_agent: str,
              proxies: t.Any, body: t.Optional[bytes] = None) -> Response:
    """One try: the request with its ids, and its answer read whole within timeout[1] (a watchdog's bound)."""
    request_id = str(uuid.uuid4())
    headers = {
        "Authorization": "Bearer " + token,
        "x-ms-client-request-id": request_id,
        "x-ms-return-client-request-id": "true",
        "User-Agent": user_agent,
        "Accept": "application/json",
        "Accept-Encoding": ACCEPT_ENCODING,  # what read_body decodes, and nothing else
    }
    if method in ("POST", "PATCH"):
        headers["Content-Type"] = "application/json"
    raw = None
    with Watchdog(timeout[1]) as watchdog:
        try:
            raw = session.request(
                method, url, headers=headers, timeout=timeout, allow_redirects=False,
                data=body if body is not None else (b"" if method == "POST" else None), stream=True,
                proxies=proxies,
            )
            content = read_body(raw, timeout[1])
        except (rex.ConnectTimeout,) as exc:
            raise TransportError("Connection to ARM timed out: %s" % _short(exc), sent=False,
                                 request_id=request_id)
        except rex.SSLError as exc:
            if _untrusted(exc):  # the endpoint's certificate: no retry changes it
                raise HpcCacheError("TLS error talking to %s: %s (client request id %s)"
                                    % (path_of(url), _short(exc), request_id), request_id=request_id)
            raise _no_answer(exc, watchdog, raw, request_id, sent=True)
        except rex.ConnectionError as exc:
            raise _no_answer(exc, watchdog, raw, request_id, sent=not _never_connected(exc))
        except (rex.RequestException, ReadFailure) + TRANSPORT_ERRORS as exc:
            raise _no_answer(exc, watchdog, raw, request_id, sent=True)
        if watchdog.finish(ok=True):  # the bound passed as the last byte came in: the connection is spent
            raise _no_answer(None, watchdog, raw, request_id, sent=True)
    release = getattr(getattr(raw, "raw", None), "release_conn", None)
    if release is not None:
        release()  # the connection goes back to the pool for the next request
    return Response(raw.status_code, raw.headers, content, url, request_id)


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
