# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An answer from ARM as read: its status, headers and body (JSON, parsed lazily and bounded in depth),
the wait it asks for (Retry-After, retry-after-ms) and its CloudError as an ArmError."""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ApiVersionError, ArmError, redact

MAX_RETRY_AFTER = 600.0
# ARM bodies are a few levels deep; a deeper one is hostile, and would exhaust the recursion of
# whatever walks it next (Ansible's result handling, the inventory's variable wrapping).
MAX_JSON_DEPTH = 64
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


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
                self.status, "InvalidResponse", "the answer from %s was not valid JSON" % path_of(self.url),
                request_id=self.request_id,
            )
        if _depth_exceeds(body, MAX_JSON_DEPTH):
            raise ArmError(
                self.status, "InvalidResponse",
                "the answer from %s is nested deeper than %d levels" % (path_of(self.url), MAX_JSON_DEPTH),
                request_id=self.request_id,
            )
        return body

    def json_object(self) -> t.Dict[str, t.Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise ArmError(
                self.status, "InvalidResponse", "the answer from %s was not a JSON object" % path_of(self.url),
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


def path_of(url: str) -> str:
    """A URL without its query: what a message names."""
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
