# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP side of the emulator: ARM routes, token endpoints, metadata and control routes."""

from __future__ import annotations

import json
import math
import re
import socket
import struct
import time
import typing as t
import zlib
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .state import (CACHE_RUNNING, RESOURCES_API_VERSIONS, SPEC_STATUSES, STOP_FROM,
                    STORAGECACHE_API_VERSIONS, SUPPORTED_LOCATIONS, UPGRADE_FROM, Fault, TagsRefused, World,
                    check_tags, tags_operation)

SUB = r"/subscriptions/(?P<sub>[^/]+)"
PROVIDER = r"/providers/microsoft\.storagecache"
CACHE = SUB + r"/resourcegroups/(?P<rg>[^/]+)" + PROVIDER + r"/caches/(?P<name>[^/]+)"
ROUTES = [
    ("target_action", "POST", re.compile(
        CACHE + r"/storagetargets/(?P<target>[^/]+)/(?P<action>flush|suspend|resume|dnsrefresh|invalidate|"
                r"restoredefaults)$", re.I)),
    ("target", "GET", re.compile(CACHE + r"/storagetargets/(?P<target>[^/]+)$", re.I)),
    ("targets", "GET", re.compile(CACHE + r"/storagetargets$", re.I)),
    # a cache's stop, start, upgrade and debugInfo (Caches_Stop, Caches_Start, Caches_UpgradeFirmware, Caches_DebugInfo)
    ("cache_action", "POST", re.compile(CACHE + r"/(?P<action>stop|start|upgrade|debuginfo)$", re.I)),
    ("flush", "POST", re.compile(SUB + r"/resourcegroups/(?P<rg>[^/]+)" + PROVIDER + r"/caches/(?P<name>[^/]+)/flush$", re.I)),
    ("get", "GET", re.compile(SUB + r"/resourcegroups/(?P<rg>[^/]+)" + PROVIDER + r"/caches/(?P<name>[^/]+)$", re.I)),
    ("update", "PATCH", re.compile(CACHE + r"$", re.I)),  # Caches_Update
    ("delete", "DELETE", re.compile(CACHE + r"$", re.I)),  # Caches_Delete
    ("list", "GET", re.compile(SUB + r"(?:/resourcegroups/(?P<rg>[^/]+))?" + PROVIDER + r"/caches$", re.I)),
    ("operation", "GET", re.compile(SUB + PROVIDER + r"/locations/(?P<loc>[^/]+)/ascoperations/(?P<op>[^/]+)$", re.I)),
    # ARM's Tags API on a cache (Microsoft.Resources, not the resource provider): one path, two methods
    ("tags", "GET", re.compile(CACHE + r"/providers/microsoft\.resources/tags/default$", re.I)),
    ("tags_write", "PATCH", re.compile(CACHE + r"/providers/microsoft\.resources/tags/default$", re.I)),
    # the Location of an asynchronous tags write (tags_write_mode async), on ARM's own origin and path family
    ("tags_operation", "GET", re.compile(SUB + r"/providers/microsoft\.resources/operationresults/(?P<op>[^/]+)$",
                                         re.I)),
]
MAX_DELAY = 600.0
ARM_KINDS = ("flush", "get", "list", "operation", "location", "target_action", "target", "targets", "tags",
             "tags_write", "tags_operation", "cache_action", "update", "delete")
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
TARGET_ACTIONS = {"flush": "flush", "suspend": "suspend", "resume": "resume", "dnsrefresh": "dnsRefresh",
                  "invalidate": "invalidate", "restoredefaults": "restoreDefaults"}
CACHE_ACTIONS = {"stop": "stop", "start": "start", "upgrade": "upgrade", "debuginfo": "debugInfo"}
# The resource type ARM names when it refuses an api-version, per route
RESOURCE_TYPES = {"target_action": "caches/storageTargets", "target": "caches/storageTargets",
                  "targets": "caches/storageTargets", "operation": "locations/ascOperations",
                  "location": "locations/ascOperations"}
# where start is sent (else: the cache already runs, and the recorded answer is 204)
START_FROM = ("Stopped", "StartFailed")
UPGRADE_RETRY_FROM = UPGRADE_FROM + ("UpgradeFailed",)


def cloud_error(code: str, message: str, target: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    error: t.Dict[str, t.Any] = {"code": code, "message": message}
    if target:
        error["target"] = target
    return {"error": error}


def iso(ts: float) -> str:
    """A time as the recorded operation bodies write it: seven decimals and +00:00
    ("2024-01-12T06:44:47.1447502+00:00", tests/fixtures/recorded)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


# The first bytes of a JSON object, sent by a midbody fault under a Content-Length that promises more.
MIDBODY_PART = b'{"status": '
MIDBODY_DECLARED = 40
_GZIP_BOMBS: t.Dict[float, bytes] = {}


def gzip_bomb(mebibytes: float) -> bytes:
    """A gzip body that decompresses to about mebibytes MiB of JSON-ish filler ('{"value": [' and spaces);
    made once per size, a chunk at a time, so neither the filler nor the time to make it grows with the size."""
    if mebibytes not in _GZIP_BOMBS:
        total = max(int(mebibytes * (1 << 20)), 16)
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
        out = [packer.compress(b'{"value": [')]
        chunk = b" " * (1 << 20)
        left = total - 11
        while left > 0:
            out.append(packer.compress(chunk[:min(left, len(chunk))]))
            left -= len(chunk)
        out.append(packer.flush())
        _GZIP_BOMBS[mebibytes] = b"".join(out)
    return _GZIP_BOMBS[mebibytes]


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: t.Tuple[str, int], world: World, scheme: str = "http") -> None:
        super().__init__(address, Handler)
        self.world = world
        self.scheme = scheme

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return "%s://%s:%d" % (self.scheme, host, port)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK hold each answer back by up to 40 ms.
    disable_nagle_algorithm = True
    server: EmulatorServer

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002 - quiet; the log is the record
        return

    # Plumbing ------------------------------------------------------------
    @property
    def world(self) -> World:
        return self.server.world

    def _send(self, status: int, body: t.Any = None, headers: t.Optional[t.Mapping[str, str]] = None,
              raw: t.Optional[bytes] = None) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", self._service_id)
        client_id = self.headers.get("x-ms-client-request-id")
        if client_id:
            self.send_header("x-ms-client-request-id", client_id)
        if self._entry.get("kind") in ARM_KINDS:
            # ARM's throttling budget, as the recorded service sent it: writes on actions, reads on reads.
            budget = "writes" if self.command in WRITE_METHODS else "reads"
            self.send_header("x-ms-ratelimit-remaining-subscription-" + budget, "11997" if budget == "reads" else "1197")
        if self._budget is not None:
            # the provider's own throttling budget for this operation group, as recorded (PS-C)
            self.send_header("x-ms-ratelimit-remaining-resource", self._budget)
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self._entry["status"] = status
        self._record()  # before the answer leaves: a client that has it finds it in the log
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def _reset(self) -> None:
        """Close the connection with a TCP reset and no answer."""
        self._entry["status"] = "reset"
        self._hard_close()

    def _hard_close(self) -> None:
        """Close the connection with a TCP reset (SO_LINGER 0), whatever was sent."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.connection.close()

    def _midbody(self, fault: Fault) -> None:
        """The status line, Content-Type and a Content-Length of MIDBODY_DECLARED bytes, then only the
        first bytes of a JSON object; then a reset, a clean close, or a stall of fault.delay seconds
        (bounded by MAX_DELAY) and a clean close."""
        self.send_response(fault.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(MIDBODY_DECLARED))
        self.send_header("x-ms-request-id", self._service_id)
        for name, value in fault.headers.items():
            self.send_header(name, str(value))
        self.end_headers()
        self._entry["status"] = fault.status
        self._entry["sent_bytes"] = len(MIDBODY_PART)
        try:
            self.wfile.write(MIDBODY_PART)
            self.wfile.flush()
            if fault.how == "stall":
                time.sleep(min(fault.delay, MAX_DELAY))
        except OSError:
            pass  # the client gave up first
        if fault.how == "reset":
            self._hard_close()
        self.close_connection = True  # close and stall: the server closes cleanly (FIN) once back in http.server

    def _trickle_headers(self, fault: Fault) -> None:
        """A whole answer whose status line and headers arrive a byte every fault.delay seconds; the whole
        trickle is bounded by MAX_DELAY, after which the connection is closed."""
        data = json.dumps(fault.body if fault.body is not None else {"value": []}).encode()
        head = ["HTTP/1.1 %d %s" % (fault.status, self.responses.get(fault.status, ("",))[0]),
                "Content-Type: application/json; charset=utf-8", "Content-Length: %d" % len(data),
                "x-ms-request-id: " + self._service_id]
        head += ["%s: %s" % (name, value) for name, value in fault.headers.items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        self._entry["status"] = fault.status
        self.close_connection = True
        started = time.monotonic()
        try:
            for i in range(len(raw)):
                self.wfile.write(raw[i:i + 1])
                self.wfile.flush()
                if time.monotonic() - started > MAX_DELAY:
                    return
                time.sleep(min(fault.delay or 1.0, MAX_DELAY))
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass  # the client gave up, as it should

    def _gzip(self, fault: Fault) -> None:
        """An answer with Content-Encoding: gzip whose small body decompresses to fault.decoded_mb MiB."""
        headers = dict(fault.headers)
        headers["Content-Encoding"] = "gzip"
        self._send(fault.status, raw=gzip_bomb(fault.decoded_mb), headers=headers)
        self._entry["decoded_bytes"] = int(fault.decoded_mb * (1 << 20))

    def _apply_fault(self, fault: Fault) -> bool:
        """Act out a fault; True when it answered (or dropped) the request itself."""
        self._entry["fault"] = fault.describe()
        if fault.kind == "delay":
            time.sleep(min(fault.delay, MAX_DELAY))
            return False
        if fault.kind == "reset":
            if fault.delay:
                time.sleep(min(fault.delay, MAX_DELAY))
            self._reset()
            return True
        if fault.kind == "malformed":
            self._send(fault.status, raw=b'{"status": "InProgr', headers=fault.headers)
            return True
        if fault.kind == "empty":
            self._send(fault.status, raw=b"", headers=fault.headers)
            return True
        if fault.kind == "headers":
            self._extra_headers.update(fault.headers)
            return False
        if fault.kind == "trickle":
            self._trickle(fault)
            return True
        if fault.kind == "midbody":
            self._midbody(fault)
            return True
        if fault.kind == "trickle_headers":
            self._trickle_headers(fault)
            return True
        if fault.kind == "gzip":
            self._gzip(fault)
            return True
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        message = "Injected fault: HTTP %d" % fault.status
        if fault.echo_token:  # a hostile or careless service repeating what it was sent
            message += "; token %s" % (self.headers.get("Authorization") or "")[7:]
        body = fault.body if fault.body is not None else cloud_error(
            fault.code or {429: "TooManyRequests", 409: "Conflict"}.get(fault.status, "InternalServerError"), message)
        self._send(fault.status, body, headers)
        return True

    def _trickle(self, fault: Fault) -> None:
        """A complete-looking answer whose body arrives a byte every fault.delay seconds (bounded)."""
        data = json.dumps(fault.body if fault.body is not None else {"value": []}).encode()
        self.send_response(fault.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self._entry["status"] = fault.status
        started = time.monotonic()
        try:
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                if time.monotonic() - started > MAX_DELAY:
                    break
                time.sleep(min(fault.delay or 1.0, MAX_DELAY))
        except OSError:
            pass  # the client gave up, as it should
        self.close_connection = True

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization") or ""
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        state = self.world.token_state(token)
        self._entry["token"] = state
        if state == "valid" or not self.world.require_token:
            return True
        code = "ExpiredAuthenticationToken" if state == "expired" else "AuthenticationFailed"
        self._send(401, cloud_error(code, "The access token is %s." % state),
                   {"WWW-Authenticate": 'Bearer authorization_uri="%s", error="invalid_token"' % self.server.base_url})
        return False

    # Dispatch ------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        self._service_id = "%032x" % (time.monotonic_ns() ^ id(self))
        parts = urlsplit(self.path)
        self._query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self._path = parts.path
        self._extra_headers: t.Dict[str, str] = {}
        self._budget: t.Optional[str] = None  # x-ms-ratelimit-remaining-resource, once the request is counted
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(min(length, 1 << 20)) if length else b""
        self._entry: t.Dict[str, t.Any] = {
            "time": time.time(), "method": self.command, "path": unquote(parts.path), "raw_path": parts.path,
            "query": parts.query, "kind": None, "cache": None,
            "authorization": bool(self.headers.get("Authorization")),
            "client_request_id": self.headers.get("x-ms-client-request-id"),
            "user_agent": self.headers.get("User-Agent"),
        }
        self._generation = self.world.generation
        self._recorded = self._path.startswith("/_emulator/")  # control routes are not logged
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            self._entry["status"] = "client gone"  # it hung up before the answer was written
        finally:
            self._record()

    def _record(self) -> None:
        """Log the request once, under the scenario it began in."""
        if not self._recorded:
            self._recorded = True
            self.world.record(self._entry, self._generation)

    def _route(self) -> None:
        path = self._path
        if path.startswith("/_emulator/"):
            return self._control(path)
        if path.startswith("/msi/token"):
            return self._msi_token()
        if path == "/metadata/endpoints":
            return self._metadata()
        if "/userrealm/" in path:
            self._entry["kind"] = "discovery"
            return self._send(200, {"ver": "1.0", "account_type": "Managed", "domain_name": "emulator.test",
                                    "cloud_instance_name": "emulator.test"})
        if "/oauth2/v2.0/token" in path or path.endswith("/.well-known/openid-configuration"):
            return self._entra(path)
        matched = False
        for kind, method, pattern in ROUTES:
            match = pattern.fullmatch(path)
            if match:
                matched = True
                if self.command == method:
                    return self._arm(kind, {k: unquote(v) if v else v for k, v in match.groupdict().items()})
        if matched:  # the path is known, not with this method
            return self._send(405, cloud_error("MethodNotAllowed", "%s is not allowed here" % self.command))
        self._send(404, cloud_error("NoRegisteredProviderFound" if "/providers/" in path else "InvalidResource",
                                    "No route for %s %s" % (self.command, unquote(path))))

    # ARM -----------------------------------------------------------------
    def _arm(self, kind: str, groups: t.Dict[str, str]) -> None:
        monitor = kind == "operation" and self._query.get("monitor") == "true"
        kind = "location" if monitor else kind
        self._entry["kind"] = kind
        self._entry["cache"] = groups.get("name")
        self._entry["target"] = groups.get("target")
        if groups.get("action"):
            action = groups["action"].lower()
            self._entry["action"] = TARGET_ACTIONS.get(action) or CACHE_ACTIONS.get(action) or action
        if not self._authorized():
            return
        if not self._query.get("api-version"):
            return self._send(400, cloud_error("MissingApiVersionParameter",
                                               "The api-version query parameter (?api-version=) is required."))
        if self._api_version_refused(kind, groups):
            return
        cache_name = groups.get("name")
        if kind == "operation" or kind == "location":
            op = self.world.operations.get(groups["op"])
            cache_name = op.cache.name if op else None
            self._entry["cache"] = cache_name
            self._entry["target"] = op.target.name if op is not None and op.target is not None else None
            if op is not None and op.signed:
                # The status URL must come back exactly as it was given: a parameter missing, changed,
                # reordered or re-encoded is refused. EMU only: what the real service answers to a
                # tampered signature is not recorded (../shared/reference/recorded-storage-targets.md).
                if not op.accepts(self._entry["query"]):
                    self._entry["signature"] = "refused"
                    return self._send(403, cloud_error(
                        "InvalidOperationSignature",
                        "The signature of the operation status URL is not valid: request the URL exactly as "
                        "the Azure-AsyncOperation or Location header gave it."))
                self._entry["signature"] = "intact"
        if kind == "tags_operation":
            write = self.world.tag_writes.get(groups["op"])
            cache_name = write.cache.name if write is not None else None
            self._entry["cache"] = cache_name
        fault = self.world.fault_for(kind, cache_name)
        if fault is not None and fault.kind not in ("delay", "headers"):
            if kind == "flush" and fault.processed:
                cache = self.world.find(groups["sub"], groups["rg"], groups["name"])
                if cache is not None:
                    self.world.start_flush(cache)
            if kind == "target_action" and fault.processed:
                cache = self.world.find(groups["sub"], groups["rg"], groups["name"])
                target = cache.targets.get(groups["target"].lower()) if cache is not None else None
                if target is not None:
                    self.world.start_target_action(target, TARGET_ACTIONS[groups["action"].lower()])
            if kind == "tags_write" and fault.processed:
                self._tags_write_outcome(groups)  # the write lands (or starts); the fault answers in its place
            if kind == "cache_action" and fault.processed:
                cache = self.world.find(groups["sub"], groups["rg"], groups["name"])
                if cache is not None:  # started if the cache's state allows it; the fault answers in its place
                    self._cache_action_outcome(cache, groups["action"].lower())
            if self._apply_fault(fault):
                return
        elif fault is not None:
            self._apply_fault(fault)
        getattr(self, "_arm_" + kind)(groups)

    def _api_version_refused(self, kind: str, groups: t.Mapping[str, str]) -> bool:
        """Refuse an api-version the resource type does not have, as ARM does, before the provider sees the
        request: 400 with the supported versions named. The answers, as ARM was seen giving them:
        - a resource provider's type (Microsoft.StorageCache): NoRegisteredProviderFound, "No registered resource
          provider found for location '<loc>' and API version '<v>' for type '<type>'. The supported
          api-versions are '<a, b>'. The supported locations are '<x, y>'." (Azure/azure-cli#28496,
          MicrosoftDocs/azure-docs#62621, turbot/steampipe-plugin-azure#379);
        - Microsoft.Resources (the Tags API): InvalidApiVersionParameter, "The api-version '<v>' is invalid. The
          supported versions are '<a,b>'." (ansible-collections/azure#1739, Azure/azure-cli#28038).
        EMU only: the location an answer names for a listing (global) and the list of locations."""
        version = self._query["api-version"]
        if kind in ("tags", "tags_write", "tags_operation"):
            if version in RESOURCES_API_VERSIONS:
                return False
            self._entry["api_version"] = "refused"
            self._send(400, cloud_error("InvalidApiVersionParameter", "The api-version '%s' is invalid. The supported "
                                        "versions are '%s'." % (version, ",".join(RESOURCES_API_VERSIONS))))
            return True
        if version in STORAGECACHE_API_VERSIONS:
            return False
        cache = self.world.find(groups["sub"], groups["rg"], groups["name"]) if groups.get("name") else None
        location = cache.location if cache is not None else (groups.get("loc") or "global")
        self._entry["api_version"] = "refused"
        self._send(400, cloud_error(
            "NoRegisteredProviderFound",
            "No registered resource provider found for location '%s' and API version '%s' for type '%s'. The "
            "supported api-versions are '%s'. The supported locations are '%s'." % (
                location, version, RESOURCE_TYPES.get(kind, "caches"), ", ".join(STORAGECACHE_API_VERSIONS),
                ", ".join(SUPPORTED_LOCATIONS))))
        return True

    def _not_found(self, groups: t.Mapping[str, str]) -> None:
        self._send(404, cloud_error(
            "ResourceNotFound",
            "The Resource 'Microsoft.StorageCache/caches/%s' under resource group '%s' was not found. "
            "For more details please go to https://aka.ms/ARMResourceNotFoundFix" % (groups["name"], groups["rg"])))

    def _cache_or_404(self, groups: t.Mapping[str, str]) -> t.Any:
        cache = self.world.find(groups["sub"], groups["rg"], groups["name"])
        if cache is None:
            self._not_found(groups)
        return cache

    def _target_or_404(self, groups: t.Mapping[str, str]) -> t.Any:
        cache = self._cache_or_404(groups)
        if cache is None:
            return None
        target = cache.targets.get(groups["target"].lower())
        if target is None:
            self._send(404, cloud_error(
                "NotFound", "The storage target '%s' of cache '%s' was not found." % (groups["target"], cache.name)))
        return target

    def _arm_target(self, groups: t.Mapping[str, str]) -> None:
        target = self._target_or_404(groups)
        if target is None:
            return
        with self.world.lock:
            body = target.to_json(time.monotonic())
        self._send(200, body, self._extra_headers)

    def _arm_targets(self, groups: t.Mapping[str, str]) -> None:
        cache = self._cache_or_404(groups)
        if cache is None:
            return
        with self.world.lock:
            now = time.monotonic()
            targets = [tg.to_json(now) for _name, tg in sorted(cache.targets.items())]
        skip = int(self._query.get("$skipToken") or 0)
        body: t.Dict[str, t.Any] = {"value": targets[skip:skip + self.world.page_size]}
        if skip + self.world.page_size < len(targets):
            body["nextLink"] = "%s%s?api-version=%s&$skipToken=%d" % (
                self.server.base_url, self._path, self._query["api-version"], skip + self.world.page_size)
        self._send(200, body, self._extra_headers)

    def _arm_target_action(self, groups: t.Mapping[str, str]) -> None:
        target = self._target_or_404(groups)
        if target is None:
            return
        action = TARGET_ACTIONS[groups["action"].lower()]
        with self.world.lock:
            state = target.state(time.monotonic())
            # The API's 204: "already suspended or suspend in progress", "already resumed or resume in
            # progress", "flush already in progress or has completed" (already_204; the service was recorded
            # accepting a resume of a target never suspended instead).
            if (action, state) in (("suspend", "Suspended"), ("resume", "Ready"), ("flush", "Flushing")) and \
                    target.actions[action]["already_204"]:
                return self._send(204, None, self._extra_headers)
            if target.operation is not None or (action == "dnsRefresh" and state == "Suspended"):
                return self._send(409, cloud_error(
                    "Conflict", "The storage target %s is %s; %s is not possible now." % (target.name, state, action)))
            op = self.world.start_target_action(target, action)
        self._answer_operation(op, target.cache)

    def _arm_get(self, groups: t.Mapping[str, str]) -> None:
        cache = self.world.find(groups["sub"], groups["rg"], groups["name"])
        if cache is None:
            return self._not_found(groups)
        with self.world.lock:
            body = cache.to_json(time.monotonic())
        self._send(200, body, self._extra_headers)

    # ARM's Tags API ---------------------------------------------------------
    @staticmethod
    def _tags_resource(cache: t.Any, tags: t.Mapping[str, str]) -> t.Dict[str, t.Any]:
        return {"id": cache.id + "/providers/Microsoft.Resources/tags/default", "name": "default",
                "type": "Microsoft.Resources/tags", "properties": {"tags": dict(tags)}}

    def _arm_tags(self, groups: t.Mapping[str, str]) -> None:
        cache = self._cache_or_404(groups)
        if cache is None:
            return
        with self.world.lock:
            body = self._tags_resource(cache, cache.visible_tags(time.monotonic()))
        self._send(200, body, self._extra_headers)

    def _tags_write_outcome(self, groups: t.Mapping[str, str]) -> t.Tuple[int, t.Any, t.Dict[str, str]]:
        """The status, body and headers a PATCH of the tags earns; the cache's tags change only on a 200, and
        on a 202 once the write it accepted ends."""
        cache = self.world.find(groups["sub"], groups["rg"], groups["name"])
        if cache is None:
            return 404, cloud_error(
                "ResourceNotFound",
                "The Resource 'Microsoft.StorageCache/caches/%s' under resource group '%s' was not found. For "
                "more details please go to https://aka.ms/ARMResourceNotFoundFix" % (groups["name"], groups["rg"])), {}
        scope = cache.id + "/providers/Microsoft.Resources/tags/default"
        with self.world.lock:
            now = time.monotonic()
            # RBAC is checked before ARM reads the request; policy judges the valid request; the resource's
            # being busy is met last.
            if cache.tags_write == "forbidden":
                return 403, cloud_error(
                    "AuthorizationFailed",
                    "The client 'emulator-client' with object id '00000000-0000-0000-0000-00000000c11e' does not "
                    "have authorization to perform action 'Microsoft.Resources/tags/write' over scope '%s' or the "
                    "scope is invalid. If access was recently granted, please refresh your credentials." % scope), {}
            try:
                tags = tags_operation(cache.true_tags(now), self._body, cache.tags_delete)
            except TagsRefused as refused:
                return 400, cloud_error(refused.code, refused.message), {}
            if cache.tags_write == "denied_by_policy":
                body = cloud_error(
                    "RequestDisallowedByPolicy",
                    "Resource '%s' was disallowed by policy. Policy identifiers: '[{\"policyAssignment\":"
                    "{\"name\":\"Deny tag changes\",\"id\":\"/subscriptions/%s/providers/Microsoft."
                    "Authorization/policyAssignments/deny-tag-changes\"},\"policyDefinition\":{\"name\":"
                    "\"Deny tag changes\",\"id\":\"/providers/Microsoft.Authorization/policyDefinitions/"
                    "deny-tag-changes\"}}]'." % (cache.name, cache.subscription), cache.name)
                body["error"]["additionalInfo"] = [{"type": "PolicyViolation", "info": {
                    "policyAssignmentName": "deny-tag-changes", "policyDefinitionName": "deny-tag-changes",
                    "policyDefinitionEffect": "deny"}}]
                return 403, body, {}
            busy = cache.tags_busy(now)
            if busy is not None:
                # tags_conflict while_busy (seen on other resource types; the message as seen there)
                self._entry["conflict"] = busy
                return 409, cloud_error(
                    "AnotherOperationInProgress",
                    "Another operation is in progress on the resource '%s'. Please retry after it completes."
                    % cache.id), {}
            if cache.tags_write_mode == "async":
                write = self.world.start_tags_write(cache, self._body)
                self._entry["operation"] = write.id
                return 202, None, self._tags_operation_headers(write)
            cache.change_tags(tags, now)
            return 200, self._tags_resource(cache, tags), dict(self._extra_headers)

    def _tags_operation_headers(self, write: t.Any) -> t.Dict[str, str]:
        """Location (and Retry-After when the scenario sets tags_write_retry_after) of an asynchronous write."""
        headers = dict(self._extra_headers)
        headers["Location"] = "%s/subscriptions/%s/providers/Microsoft.Resources/operationresults/%s?api-version=%s" % (
            self.server.base_url, write.cache.subscription, write.id, self._query["api-version"])
        if write.cache.tags_write_retry_after is not None:
            headers["Retry-After"] = str(write.cache.tags_write_retry_after)
        return headers

    def _arm_tags_write(self, groups: t.Mapping[str, str]) -> None:
        status, body, headers = self._tags_write_outcome(groups)
        self._send(status, body, headers)

    def _arm_tags_operation(self, groups: t.Mapping[str, str]) -> None:
        """The Location of an asynchronous tags write: 202 (and the Location again) while it runs, then 200 and
        the tags resource it left, or the 400 ARM gave when it came to land and refused it."""
        write = self.world.tag_writes.get(groups["op"])
        if write is None or write.cache.subscription.lower() != groups["sub"].lower():
            return self._send(404, cloud_error("OperationNotFound", "Operation %s was not found." % groups["op"]))
        with self.world.lock:
            write.cache.settle_tags(time.monotonic())
            tags, refused = write.tags, write.refused
        if refused is not None:
            return self._send(400, cloud_error(refused.code, refused.message), self._extra_headers)
        if tags is None:
            return self._send(202, None, self._tags_operation_headers(write))
        self._send(200, self._tags_resource(write.cache, tags), self._extra_headers)

    def _arm_update(self, groups: t.Mapping[str, str]) -> None:
        """Caches_Update (PATCH, SPEC: 200 with the cache): tags and the writable settings replaced as given;
        a body that is not a Cache object is refused 400 InvalidRequestContent (EMU only: the text)."""
        cache = self._cache_or_404(groups)
        if cache is None:
            return
        with self.world.lock:
            try:
                cache.update(self._body)
            except (ValueError, UnicodeDecodeError) as exc:
                return self._send(400, cloud_error(
                    "InvalidRequestContent", "The request content was invalid and could not be deserialized: %s"
                    % exc))
            body = cache.to_json(time.monotonic())
        self._send(200, body, self._extra_headers)

    def _arm_delete(self, groups: t.Mapping[str, str]) -> None:
        """Caches_Delete (SPEC: 200, 202 or 204, final state through azure-async-operation): 202 with both headers,
        provisioningState Deleting, the cache gone once the operation Succeeded (a duration of
        RECORDED_CACHE_SECONDS["delete"] x time_scale, EMU only); a cache that does not exist answers 204 (ARM:
        deleting what is not there succeeds); a second DELETE while one runs 202 again, on the same operation."""
        cache = self.world.find(groups["sub"], groups["rg"], groups["name"])
        if cache is None:
            return self._send(204, None, self._extra_headers)
        with self.world.lock:
            op = cache.deleting or self.world.start_cache_action(cache, "delete", cache.state(time.monotonic()))
        self._answer_operation(op, cache)

    def _arm_list(self, groups: t.Mapping[str, str]) -> None:
        for key in list(self.world.caches):  # a cache whose delete has succeeded is gone
            self.world.find(*key)
        sub, rg = groups["sub"].lower(), (groups.get("rg") or "").lower()
        if rg and not any(k[0] == sub and k[1] == rg for k in self.world.caches):
            # ARM answers a listing of a resource group that does not exist with a 404.
            return self._send(404, cloud_error("ResourceGroupNotFound",
                                               "Resource group '%s' could not be found." % groups["rg"]))
        with self.world.lock:
            now = time.monotonic()
            caches = [c.to_json(now) for k, c in sorted(self.world.caches.items())
                      if k[0] == sub and (not rg or k[1] == rg)]
        skip = int(self._query.get("$skipToken") or 0)
        page = caches[skip:skip + self.world.page_size]
        body: t.Dict[str, t.Any] = {"value": page}
        if skip + self.world.page_size < len(caches):
            body["nextLink"] = "%s%s?api-version=%s&$skipToken=%d" % (
                self.server.base_url, self._path, self._query["api-version"], skip + self.world.page_size)
        self._send(200, body, self._extra_headers)

    def _throttled(self, kind: str, subscription: str) -> bool:
        """Count the request in its subscription's bucket (flush or start_stop); every answer to it then
        carries x-ms-ratelimit-remaining-resource. True when the bucket is spent and a 429 was sent."""
        allowed, self._budget, refill, measured = self.world.take(kind, subscription)
        if allowed:
            return False
        bucket = self._budget.split("/", 1)[1].split(";")[0]
        self._entry["throttled"] = bucket
        retry_after = max(1, int(math.ceil(refill)))
        now = time.time()
        limit = self.world.throttle[kind]
        # The shape Compute's throttling answers in (its header prefix is the one this provider sends):
        # OperationNotAllowed, with a TooManyRequests detail naming the operation group and its window.
        # EMU only: no 429 of Microsoft.StorageCache is recorded; a scenario's throttle.code replaces the code.
        detail = {"operationGroup": bucket, "startTime": iso(now + refill - limit["window"]),
                  "endTime": iso(now + refill), "allowedRequestCount": limit["limit"],
                  "measuredRequestCount": measured}
        body = cloud_error(self.world.throttle_code or "OperationNotAllowed",
                           "The server rejected the request because too many requests have been received for "
                           "this subscription.")
        body["error"]["details"] = [{"code": "TooManyRequests", "target": bucket,
                                     "message": json.dumps(detail, separators=(",", ":"))}]
        self._send(429, body, {"Retry-After": str(retry_after)})
        return True

    def _arm_flush(self, groups: t.Mapping[str, str]) -> None:
        if self._throttled("flush", groups["sub"]):
            return
        cache = self.world.find(groups["sub"], groups["rg"], groups["name"])
        if cache is None:
            return self._not_found(groups)
        with self.world.lock:
            state = cache.state(time.monotonic())
            if cache.lifecycle is not None:  # a stop, start or upgrade runs: not while it does
                return self._send(409, cloud_error(
                    "Conflict", "The cache %s is %s and cannot be flushed now." % (cache.name, state)))
            if state == "Flushing" and cache.flush.get("already_204"):
                # SPEC: 204 "Cache flush already in progress or has completed"; no header, no body
                return self._send(204, None, self._extra_headers)
            if state in ("Stopped", "Stopping", "Flushing", "Upgrading"):
                return self._send(409, cloud_error(
                    "Conflict", "The cache %s is %s and cannot be flushed now." % (cache.name, state)))
            op = self.world.start_flush(cache)
        self._answer_operation(op, cache)

    def _arm_cache_action(self, groups: t.Mapping[str, str]) -> None:
        """Stop, start, upgrade or debugInfo of a cache, as recorded: 202 with both headers; start on a running
        cache and upgrade with nothing pending 204, nothing else (PS-C, NET-C)."""
        action = CACHE_ACTIONS[groups["action"].lower()]
        if action in ("stop", "start") and self._throttled("start_stop", groups["sub"]):
            return
        cache = self._cache_or_404(groups)
        if cache is None:
            return
        outcome, detail = self._cache_action_outcome(cache, action)
        if outcome == "already":
            return self._send(204, None, self._extra_headers)
        if outcome == "refused":
            # EMU only: what the service answers to an action the cache's state does not allow is not recorded
            return self._send(409, cloud_error("Conflict", "The cache %s is %s." % (cache.name, detail), cache.name))
        self._answer_operation(detail, cache)

    def _cache_action_outcome(self, cache: t.Any, action: str) -> t.Tuple[str, t.Any]:
        """Start a stop, start or upgrade if the cache's state allows it: ("started", the operation); ("already",
        None) where the answer is 204 and nothing is sent (recorded: start of a running cache, upgrade with
        nothing pending; EMU only: stop of a stopped cache); ("refused", "<state>: <why>") for a 409."""
        with self.world.lock:
            state = cache.state(time.monotonic())
            running = cache.lifecycle is not None and state == CACHE_RUNNING[cache.lifecycle.action]
            refused = None
            if action == "debugInfo":
                pass  # recorded (PS-C): 202 with both headers, "success" through Location; any state (EMU only)
            elif action == "start":
                if state == "Stopping" or (running and cache.lifecycle.action != "start"):
                    refused = "start is not possible while it is %s" % state
                elif state not in START_FROM:
                    return "already", None
            elif action == "stop":
                if state in ("Stopped", "Stopping") and cache.actions["stop"]["already_204"]:
                    return "already", None
                if state not in STOP_FROM or running:
                    refused = "stop is possible only from %s" % " or ".join(STOP_FROM)
            else:
                if not cache.firmware["pending"]:
                    return "already", None
                if state not in UPGRADE_RETRY_FROM or running:
                    refused = "an upgrade is possible only from %s" % " or ".join(UPGRADE_RETRY_FROM)
            if refused is not None:
                return "refused", "%s: %s" % (state, refused)
            return "started", self.world.start_cache_action(cache, action, state)

    def _answer_operation(self, op: t.Any, cache: t.Any) -> None:
        """Answer the request that started op, in its mode. A mode whose status the action's specification does
        not list (SPEC_STATUSES: dnsRefresh's 204s, the upgrade's 200) still answers so, logged outside_spec."""
        flush = op.flush
        mode = flush["mode"]
        status = {"sync200": 200, "sync204": 204, "bare204": 204, "recorded": 204, "accepted201": 201}.get(mode, 202)
        if status not in SPEC_STATUSES.get(op.action, (status,)):
            self._entry["outside_spec"] = True
        if mode in ("sync200", "sync204"):
            op.flush = dict(flush, duration=0)
            return self._send(200 if mode == "sync200" else 204, None, self._extra_headers)
        if mode == "bare204":  # runs for its duration; only the cache's state tells when it is over
            return self._send(204, None, self._extra_headers)
        base = flush.get("status_base") or self.server.base_url
        op_path = "/subscriptions/%s/providers/Microsoft.StorageCache/locations/%s/ascOperations/%s" % (
            cache.subscription, cache.location, op.id)
        api = self._query["api-version"]
        headers = dict(self._extra_headers)
        if flush.get("retry_after") is not None and mode != "recorded_202":
            headers["Retry-After"] = flush["retry_after"]
        if mode == "recorded":
            # As recorded: 204, the header name in lower case, no Location, no body.
            headers["azure-asyncoperation"] = "%s%s?%s" % (base, op_path, op.issue("async", "api-version=" + api))
            return self._send(204, None, headers)
        # recorded_202 (as every storage-target action was recorded answering), async and location: 202;
        # accepted201: 201 with both headers (SPEC: the upgrade's 201, never recorded).
        # Signed, each URL carries its own t, c, s and h.
        headers["Location"] = "%s%s?%s" % (base, op_path, op.issue("location", "monitor=true&api-version=" + api))
        if mode in ("async", "recorded_202", "accepted201"):
            headers["Azure-AsyncOperation"] = "%s%s?%s" % (base, op_path, op.issue("async", "api-version=" + api))
        self._send(status, None, headers)

    def _op_or_404(self, groups: t.Mapping[str, str]) -> t.Any:
        op = self.world.operations.get(groups["op"])
        if op is None:
            self._send(404, cloud_error("OperationNotFound", "Operation %s was not found." % groups["op"]))
        return op

    def _retry_headers(self, op: t.Any) -> t.Dict[str, str]:
        headers = dict(self._extra_headers)
        if op.flush.get("retry_after") is not None:
            headers["Retry-After"] = op.flush["retry_after"]
        return headers

    def _arm_operation(self, groups: t.Mapping[str, str]) -> None:
        op = self._op_or_404(groups)
        if op is None:
            return
        status = op.status(time.monotonic())
        # The recorded shapes: running {startTime, status, name}; Succeeded adds endTime and
        # properties.output; Failed adds endTime and error. Every one is HTTP 200.
        body: t.Dict[str, t.Any] = {"startTime": iso(op.start_wall)}
        if status != "InProgress":
            body["endTime"] = iso(op.start_wall + float(op.flush["duration"]))
        body["status"] = status
        if status == "Succeeded":
            body["properties"] = {"output": "success"}
        elif status != "InProgress" and (op.flush.get("error") or status == "Failed"):
            body["error"] = op.flush.get("error") or {"code": "%sFailed" % op.action.capitalize(),
                                                      "message": "The %s failed." % op.action}
        body["name"] = op.id
        self._send(200, body, self._retry_headers(op) if status == "InProgress" else self._extra_headers)

    def _arm_location(self, groups: t.Mapping[str, str]) -> None:
        op = self._op_or_404(groups)
        if op is None:
            return
        status = op.status(time.monotonic())
        if status == "InProgress":
            return self._send(202, None, self._retry_headers(op))
        if status == "Succeeded":
            final = op.flush.get("location_final")
            if final == "success":  # as recorded (restoreDefaults): 200 and the bare JSON string "success"
                return self._send(200, "success", self._extra_headers)
            if final == 200:  # some services answer 200 with a body instead of 204
                return self._send(200, {"id": self._path, "name": op.id, "status": status}, self._extra_headers)
            return self._send(204, None, self._extra_headers)
        error = op.flush.get("error") or {"code": op.action.capitalize() + status,
                                          "message": "The %s ended %s." % (op.action, status)}
        self._send(500 if status == "Failed" else 409, {"error": error}, self._extra_headers)

    # Tokens and metadata --------------------------------------------------
    def _token_fault(self) -> bool:
        self._entry["kind"] = "token"
        fault = self.world.fault_for("token", None)
        return fault is not None and self._apply_fault(fault)

    def _msi_token(self) -> None:
        if self._token_fault():
            return
        if self.headers.get("X-IDENTITY-HEADER") != self.world.identity_header:
            return self._send(401, {"error": "invalid_identity_header"})
        resource = self._query.get("resource")
        if not resource:
            return self._send(400, {"error": "invalid_request", "error_description": "resource is required"})
        token, expires = self.world.issue_token()
        self._send(200, {"access_token": token, "expires_on": str(int(expires)), "resource": resource,
                         "token_type": "Bearer", "client_id": "emulator-managed-identity"})

    def _entra(self, path: str) -> None:
        tenant = path.strip("/").split("/")[0]
        if path.endswith("/.well-known/openid-configuration"):
            self._entry["kind"] = "discovery"
            base = "%s/%s" % (self.server.base_url, tenant)
            return self._send(200, {
                "token_endpoint": base + "/oauth2/v2.0/token",
                "authorization_endpoint": base + "/oauth2/v2.0/authorize",
                "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
                "issuer": base + "/v2.0",
                "jwks_uri": base + "/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            })
        if self._token_fault():
            return
        form = {k: v[-1] for k, v in parse_qs(self._body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        ok = False
        if grant == "client_credentials":
            ok = self.world.clients.get(form.get("client_id", "")) == form.get("client_secret")
        elif grant == "password":
            ok = self.world.users.get(form.get("username", "")) == form.get("password")
        if not ok:
            return self._send(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid "
                                    "client secret provided.", "error_codes": [7000215]})
        token, expires = self.world.issue_token()
        self._send(200, {"token_type": "Bearer", "expires_in": int(expires - time.time()),
                         "ext_expires_in": int(expires - time.time()), "access_token": token})

    def _metadata(self) -> None:
        self._entry["kind"] = "metadata"
        fault = self.world.fault_for("metadata", None)
        if fault is not None and self._apply_fault(fault):
            return
        base = self.server.base_url
        entry = {"name": "AzureHpcCacheEmulator", "resourceManager": base + "/", "portal": base + "/",
                 "authentication": {"loginEndpoint": base + "/", "audiences": [self.world.audience or base + "/"],
                                    "tenant": "common", "identityProvider": "AAD"},
                 "suffixes": {}}
        # 2015: only the 2015-01-01 shape; 2022-single / 2022-list: only 2022-09-01 in that shape;
        # all: both, the 2022-09-01 one as the list that azure-cli-core's ARM_CLOUD_METADATA_URL reads.
        mode, version = self.world.metadata, self._query.get("api-version")
        if mode == "all":
            mode = "2015" if version == "2015-01-01" else "2022-list"
        if version == "2015-01-01" and mode == "2015":
            return self._send(200, {"galleryEndpoint": "", "graphEndpoint": "", "portalEndpoint": "",
                                    "authentication": entry["authentication"]})
        if version == "2022-09-01" and mode == "2022-single":
            return self._send(200, entry)
        if version == "2022-09-01" and mode == "2022-list":
            if self.world.metadata == "all":
                return self._send(200, [entry])
            other = dict(entry, name="Other", resourceManager="https://management.example.invalid/")
            return self._send(200, [other, entry])
        self._send(404, cloud_error("NotFound", "No metadata for api-version %s" % version))

    # Control -------------------------------------------------------------
    def _control(self, path: str) -> None:
        if path == "/_emulator/state" and self.command == "GET":
            return self._send(200, self.world.snapshot())
        if path == "/_emulator/scenario" and self.command == "PUT":
            try:
                scenario = json.loads(self._body or b"{}")
            except ValueError:
                return self._send(400, cloud_error("InvalidScenario", "The scenario is not valid JSON"))
            try:
                self.world.load(scenario)
            except (ValueError, TypeError, KeyError) as exc:
                return self._send(400, cloud_error("InvalidScenario", "The scenario is not valid: %s" % exc))
            return self._send(200, {"loaded": len(self.world.caches)})
        if path == "/_emulator/finish" and self.command == "POST":
            # End the running flush of a cache now, as if its duration had run out (tests end a flush
            # on an event instead of a clock); with target=, the running action of that storage target;
            # with action=, the cache's running stop, start or upgrade.
            with self.world.lock:
                ended = 0
                for cache in self.world.caches.values():
                    op = cache.operation
                    if self._query.get("action"):  # the running stop, start or upgrade
                        op = cache.lifecycle
                    if self._query.get("target"):
                        target = cache.targets.get(self._query["target"].lower())
                        op = target.operation if target is not None else None
                    if cache.name == self._query.get("cache") and op is not None:
                        now = time.monotonic()
                        op.status(now)  # starts a first_read clock that has not started
                        op.flush["duration"] = op.since(now)
                        ended += 1
            return self._send(200, {"ended": ended})
        if path == "/_emulator/tags" and self.command == "POST":
            # Set a cache's tags directly (ARM's limits not applied): a planted or forged record.
            try:
                tags = check_tags((json.loads(self._body or b"{}") or {}).get("tags"))
            except (ValueError, AttributeError) as exc:
                return self._send(400, cloud_error("InvalidTags", "The body must be {\"tags\": {name: value}}: %s"
                                                   % exc))
            name, rg = (self._query.get("cache") or "").lower(), (self._query.get("resource_group") or "").lower()
            with self.world.lock:
                caches = [c for c in self.world.caches.values()
                          if c.name.lower() == name and (not rg or c.resource_group.lower() == rg)]
                for cache in caches:
                    cache.plant_tags(tags, time.monotonic())
            if not caches:
                return self._send(404, cloud_error("NotFound", "No cache %r" % self._query.get("cache")))
            return self._send(200, {"updated": len(caches), "tags": tags})
        if path == "/_emulator/token" and self.command == "POST":
            lifetime = self._query.get("lifetime")
            token, expires = self.world.issue_token(float(lifetime) if lifetime else None)
            return self._send(200, {"access_token": token, "expires_on": int(expires)})
        self._send(404, cloud_error("NotFound", "No control route %s" % path))
