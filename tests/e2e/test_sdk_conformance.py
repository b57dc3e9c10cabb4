# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Microsoft's own SDK (azure-mgmt-storagecache, pinned in tests/requirements-newest.txt) against the emulator.

Every operation the SDK has for caches, storage targets and operation status runs over TLS at the collection's
api-version and at the SDK's default; each must complete as the SDK expects, or end as EXPECTED says, with the
reason listed in docs/service-behaviour.md ("The SDK against the emulator"). The table of results is printed and
written to .build/sdk-conformance.md. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import os
import time
import typing as t

import pytest

from conftest import ROOT, SUB  # pylint: disable=import-error

storagecache = pytest.importorskip("azure.mgmt.storagecache")  # the newest stack only
from azure.core.credentials import AccessToken  # noqa: E402  pylint: disable=wrong-import-position
from azure.core.exceptions import HttpResponseError  # noqa: E402  pylint: disable=wrong-import-position

COLLECTION_API_VERSION = "2026-01-01"  # DEFAULT_API_VERSION of plugins/module_utils/_arm/resource.py
SDK_API_VERSION = "2026-08-01"  # azure-mgmt-storagecache 4.1.0's default (its _configuration.py)
RG = "rg"
PENDING = {"current": "V5.1.0", "pending": "V5.2.0", "deadline": "2026-12-24T00:00:00Z"}
FAST = {"duration": 0.2}


def world() -> t.Dict[str, t.Any]:
    """One cache per behaviour under test, so no operation waits for another; durations cut to a thousandth."""
    def cache(name: str, **spec: t.Any) -> t.Dict[str, t.Any]:
        return dict({"name": name, "resource_group": RG, "flush": dict(FAST)}, **spec)
    return {"time_scale": 0.001, "caches": [
        cache("c1", tags={"env": "test"}, upgrade=dict(PENDING), storage_targets=[
            {"name": "filer-01"}, {"name": "blob-01", "target_type": "blobNfs"}]),
        cache("c-untagged"),
        cache("c-202", flush=dict(FAST, mode="recorded_202")),
        cache("c-async", flush=dict(FAST, mode="async")),
        cache("c-location", flush=dict(FAST, mode="location")),
        cache("c-bare204", flush=dict(FAST, mode="bare204")),
        cache("c-flushing-204", state="Flushing", flushing_for=30, flush=dict(FAST, already_204=True)),
        cache("c-flushing", state="Flushing", flushing_for=30),
        cache("c-stop"),
        cache("c-stopped", state="Stopped"),
        cache("c-upgrade-201", upgrade=dict(PENDING, mode="accepted201")),
        cache("c-delete"),
        cache("c-unsigned", flush=dict(FAST, signed=False)),
    ]}


# What each operation ends in at each api-version: "ok" (it completed as the SDK expects), or the error the
# emulator answers and why (docs/service-behaviour.md, "The SDK against the emulator").
EXPECTED_ERRORS = {
    "caches.begin_flush while it flushes (default)": "409 Conflict",
    "asc_operations.get (signed operation)": "403 InvalidOperationSignature",
    "caches.get at api-version 2099-01-01": "400 NoRegisteredProviderFound",
    "caches.get after begin_delete": "404 ResourceNotFound",
}


class StaticToken:
    """A credential holding one token the emulator issued (the SDK asks for it, never refreshes it)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: t.Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def operation_id(headers: t.Mapping[str, str]) -> str:
    url = headers.get("Azure-AsyncOperation") or headers.get("Location") or ""
    return url.split("?", 1)[0].rsplit("/", 1)[-1]


def operations(client: t.Any, seen: t.List[int], make: t.Callable[[str], t.Any]
               ) -> t.List[t.Tuple[str, t.Callable[[], t.Any]]]:
    """(label, call) for every cache, storage-target and operation-status operation the SDK has; make(version)
    is a client at another api-version."""
    # every answer's status, polls included (the client polls every 0.05 s)
    hook = {"raw_response_hook": lambda response: seen.append(response.http_response.status_code)}
    caches, targets, target = client.caches, client.storage_targets, client.storage_target

    def flush_headers(name: str) -> t.Mapping[str, str]:
        """The flush's answer headers, the SDK not polling (its cls sees the initial answer)."""
        return caches.begin_flush(RG, name, polling=False, cls=lambda pipeline, _d, _h: pipeline.http_response
                                  .headers).result()

    def asc_get(name: str) -> t.Any:
        op = client.asc_operations.get("eastus", operation_id(flush_headers(name)), **hook)
        assert op.status in ("InProgress", "Succeeded"), op.status
        return op

    def get_cache(name: str) -> t.Any:
        return caches.get(RG, name, **hook)

    def wrong_version() -> t.Any:
        return make("2099-01-01").caches.get(RG, "c1")

    return [
        ("caches.list", lambda: [c.name for c in caches.list(**hook)]),
        ("caches.list_by_resource_group", lambda: [c.name for c in caches.list_by_resource_group(RG, **hook)]),
        ("caches.get (tagged)", lambda: get_cache("c1")),
        ("caches.get (untagged: no tags key)", lambda: get_cache("c-untagged")),
        ("caches.begin_flush (recorded: 204 + azure-asyncoperation)", lambda: caches.begin_flush(RG, "c1", **hook)
         .result()),
        ("caches.begin_flush (recorded_202)", lambda: caches.begin_flush(RG, "c-202", **hook).result()),
        ("caches.begin_flush (async)", lambda: caches.begin_flush(RG, "c-async", **hook).result()),
        ("caches.begin_flush (location)", lambda: caches.begin_flush(RG, "c-location", **hook).result()),
        ("caches.begin_flush (bare204)", lambda: caches.begin_flush(RG, "c-bare204", **hook).result()),
        ("caches.begin_flush while it flushes (already_204)", lambda: caches.begin_flush(RG, "c-flushing-204", **hook)
         .result()),
        ("caches.begin_flush while it flushes (default)", lambda: caches.begin_flush(RG, "c-flushing", **hook)
         .result()),
        ("caches.begin_stop", lambda: caches.begin_stop(RG, "c-stop", **hook).result()),
        ("caches.begin_start (stopped)", lambda: caches.begin_start(RG, "c-stopped", **hook).result()),
        ("caches.begin_start (running: 204)", lambda: caches.begin_start(RG, "c-202", **hook).result()),
        ("caches.begin_upgrade_firmware (pending: 202)", lambda: caches.begin_upgrade_firmware(RG, "c1", **hook)
         .result()),
        ("caches.begin_upgrade_firmware (accepted201)", lambda: caches.begin_upgrade_firmware(
            RG, "c-upgrade-201", **hook).result()),
        ("caches.begin_upgrade_firmware (nothing pending: 204)", lambda: caches.begin_upgrade_firmware(
            RG, "c-202", **hook).result()),
        ("caches.begin_debug_info", lambda: caches.begin_debug_info(RG, "c1", **hook).result()),
        ("caches.begin_update (PATCH tags)", lambda: caches.begin_update(
            RG, "c-untagged", {"tags": {"owner": "sdk"}}, **hook).result()),
        ("caches.begin_delete", lambda: caches.begin_delete(RG, "c-delete", **hook).result()),
        ("caches.get after begin_delete", lambda: get_cache("c-delete")),
        ("storage_targets.list_by_cache", lambda: [s.name for s in targets.list_by_cache(RG, "c1", **hook)]),
        ("storage_targets.get", lambda: targets.get(RG, "c1", "filer-01", **hook)),
        ("storage_target.begin_flush", lambda: target.begin_flush(RG, "c1", "filer-01", **hook).result()),
        ("storage_target.begin_suspend", lambda: target.begin_suspend(RG, "c1", "filer-01", **hook).result()),
        ("storage_target.begin_resume", lambda: target.begin_resume(RG, "c1", "filer-01", **hook).result()),
        ("storage_target.begin_invalidate", lambda: target.begin_invalidate(RG, "c1", "filer-01", **hook).result()),
        ("storage_targets.begin_restore_defaults", lambda: targets.begin_restore_defaults(
            RG, "c1", "filer-01", **hook).result()),
        ("storage_targets.begin_dns_refresh", lambda: targets.begin_dns_refresh(RG, "c1", "blob-01", **hook)
         .result()),
        ("asc_operations.get (unsigned operation)", lambda: asc_get("c-unsigned")),
        ("asc_operations.get (signed operation)", lambda: asc_get("c-202")),
        ("caches.get at api-version 2099-01-01", wrong_version),
    ]


def run_all(emulator: t.Any, api_version: str) -> t.Dict[str, str]:
    """Every operation at one api-version on a fresh world: {label: "ok: <answers>" or "<status> <code>"}."""
    from azure.mgmt.storagecache import StorageCacheManagementClient  # pylint: disable=import-outside-toplevel

    emulator.load(world())
    credential = StaticToken(emulator.token())

    def make(version: str) -> t.Any:
        # the emulator's own CA (connection_verify, as REQUESTS_CA_BUNDLE does for the collection)
        return StorageCacheManagementClient(credential, SUB, base_url=emulator.url, api_version=version,
                                            connection_verify=emulator.ca_bundle, polling_interval=0.05)

    results = {}
    seen: t.List[int] = []
    for label, call in operations(make(api_version), seen, make):
        del seen[:]
        try:
            call()
        except HttpResponseError as exc:
            code = exc.error.code if exc.error is not None else None
            results[label] = "%s %s" % (exc.status_code, code or exc.reason)
        else:
            # the first answer's status, and whether the SDK polled after it (how often varies with timing)
            results[label] = "ok (%s%s)" % (seen[0], ", polled" if len(seen) > 1 else "") if seen else "ok"
    return results


def table(results: t.Mapping[str, t.Mapping[str, str]]) -> str:
    versions = list(results)
    lines = ["| operation | %s |" % " | ".join("api-version %s" % v for v in versions),
             "|---|" + "---|" * len(versions)]
    for label in results[versions[0]]:
        lines.append("| `%s` | %s |" % (label, " | ".join(results[v][label] for v in versions)))
    return "\n".join(lines) + "\n"


def test_every_sdk_operation_completes_or_is_a_listed_difference(tls_emulator, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert tls_emulator.url.startswith("https://127.0.0.1:")
    results = {v: run_all(tls_emulator, v) for v in (COLLECTION_API_VERSION, SDK_API_VERSION)}
    report = table(results)
    print("\n" + report)
    os.makedirs(os.path.join(ROOT, ".build"), exist_ok=True)
    with open(os.path.join(ROOT, ".build", "sdk-conformance.md"), "w", encoding="utf-8") as handle:
        handle.write(report)
    for version, got in results.items():
        for label, result in got.items():
            expected = EXPECTED_ERRORS.get(label)
            if expected is None:
                assert result.startswith("ok"), (version, label, result)
            else:
                assert result == expected, (version, label, result)
