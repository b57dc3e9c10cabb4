# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors raised by the shared layer; a module turns them into fail_json once."""

from __future__ import annotations

import re
import typing as t

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")


def redact(text: str, secrets: t.Iterable[str] = ()) -> str:
    """Remove bearer tokens, JWTs and the given secret values from text."""
    text = _BEARER.sub(r"\1<redacted>", text)
    text = _JWT.sub("<redacted>", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    return text


class HpcCacheError(Exception):
    """Base of every error the shared layer raises; ``result`` goes into the task result."""

    def __init__(self, message: str, **result: t.Any) -> None:
        super().__init__(message)
        self.message = message
        self.result = {k: v for k, v in result.items() if v is not None}

    def __str__(self) -> str:
        return self.message


class ValidationError(HpcCacheError):
    """An option's value breaks its rule; raised before any request."""

    def __init__(self, option: str, rule: str) -> None:
        super().__init__("%s: %s" % (option, rule))
        self.option = option
        self.rule = rule


class ConfigurationError(HpcCacheError):
    """The cloud or the credentials cannot be set up from the given options."""


class OriginError(HpcCacheError):
    """A URL is not on the ARM origin the token was resolved for, or is not allowed."""


class TransportError(HpcCacheError):
    """No HTTP answer: connection refused or reset, or a timeout.

    ``sent`` is False when the request certainly never reached the server
    (the connection was not made), True when it may have been processed.
    """

    def __init__(self, message: str, sent: bool, request_id: t.Optional[str] = None) -> None:
        super().__init__(message, request_id=request_id)
        self.sent = sent
        self.request_id = request_id


class ArmError(HpcCacheError):
    """An error answer from Azure Resource Manager (a CloudError), or an unreadable one."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        target: t.Optional[str] = None,
        request_id: t.Optional[str] = None,
        service_request_id: t.Optional[str] = None,
    ) -> None:
        text = "%s (HTTP %d): %s" % (code, status, message)
        if target:
            text += " [target: %s]" % target
        if request_id:
            text += " (client request id %s)" % request_id
        super().__init__(
            text,
            error={"code": code, "message": message, "target": target},
            status_code=status,
            request_id=request_id,
            service_request_id=service_request_id,
        )
        self.status = status
        self.code = code
        self.arm_message = message
        self.target = target
        self.request_id = request_id
        self.retry_after: t.Optional[float] = None  # the answer's Retry-After, in seconds, where it gave one


# ARM's answers to an api-version the resource type does not have (400), as seen from ARM (docs/service-behaviour.md
# rule 37): NoRegisteredProviderFound for a resource provider's types ("No registered resource provider found for
# location 'eastus' and API version '2099-01-01' for type 'caches'. The supported api-versions are '2026-01-01,
# ...'. The supported locations are '...'."), InvalidApiVersionParameter for Microsoft.Resources ("The api-version
# '2099-01-01' is invalid. The supported versions are '2021-04-01,...'.").
API_VERSION_CODES = ("NoRegisteredProviderFound", "InvalidApiVersionParameter")
_ASKED = re.compile(r"api[ -]version '([^']*)'", re.I)
_SUPPORTED = re.compile(r"supported (?:api-)?versions are '([^']*)'", re.I)
_TYPE = re.compile(r"for type '([^']*)'")


class ApiVersionError(ArmError):
    """ARM refused the request's api-version: the api_version option names one the service does not have. The
    message names the option and the versions the service supports."""

    def __init__(self, status: int, code: str, message: str, asked: str, supported: t.Sequence[str],
                 resource_type: t.Optional[str] = None, **ids: t.Any) -> None:
        super().__init__(status, code, message, **ids)
        self.asked = asked
        self.supported = list(supported)
        what = " for %s" % resource_type if resource_type else ""
        self.message = "api_version: the service does not support api-version '%s'%s; it supports %s (%s, HTTP %d%s)" % (
            asked, what, ", ".join(self.supported) or "(none named)", code, status,
            ", client request id %s" % self.request_id if self.request_id else "")
        self.result["supported_api_versions"] = self.supported

    @classmethod
    def parse(cls, status: int, code: str, message: str, **ids: t.Any) -> t.Optional["ApiVersionError"]:
        """The error ARM's answer means, when it refuses an api-version; None for anything else (a
        NoRegisteredProviderFound about a location whose api-version is supported, say)."""
        asked, supported = _ASKED.search(message), _SUPPORTED.search(message)
        if status != 400 or code not in API_VERSION_CODES or asked is None or supported is None:
            return None
        versions = [v.strip() for v in supported.group(1).split(",") if v.strip()]
        if asked.group(1) in versions:
            return None
        found = _TYPE.search(message)
        return cls(status, code, message, asked.group(1), versions, found.group(1) if found else None, **ids)


class OperationFailed(HpcCacheError):
    """The long-running operation ended Failed or Canceled."""

    def __init__(self, outcome: str, code: t.Optional[str], message: t.Optional[str],
                 subject: str = "the operation", **result: t.Any) -> None:
        what = subject[:1].upper() + subject[1:]
        text = ("%s was canceled" if outcome.lower() == "canceled" else "%s failed") % what
        if code or message:
            text += ": %s: %s" % (code or "UnknownError", message or "(no message)")
        result.setdefault("status", outcome)
        super().__init__(text, error={"code": code, "message": message}, **result)


class OperationTimeout(HpcCacheError):
    """The wait ran past its bound; the operation may still be running."""


def failure_of(exc: Exception, secrets: t.Iterable[str] = ()) -> t.Tuple[str, t.Dict[str, t.Any]]:
    """The msg and the result keys a failure reports; an unexpected error keeps its traceback out of msg."""
    if isinstance(exc, HpcCacheError):
        result = dict(exc.result)
        result.pop("msg", None)
        return redact(exc.message, secrets), result
    return "Unexpected %s: %s" % (type(exc).__name__, redact(str(exc), secrets)[:500]), {}
