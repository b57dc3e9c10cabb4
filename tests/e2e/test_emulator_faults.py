# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulator's wire-level faults as a raw socket sees them (no module involved): an answer torn
mid-body (reset, clean close, stall), status line and headers trickling in, a small gzip body that
inflates to many MiB; each logged with its kind, each with the usual count and after."""

from __future__ import annotations

import gzip
import json
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from conftest import scenario  # pylint: disable=import-error

pytestmark = pytest.mark.stack_independent  # only the newest stack runs it (conftest.py)

CACHE_PATH = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.StorageCache"
              "/caches/c1?api-version=2026-01-01")


def token(emulator):
    return json.loads(urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - loopback only
        emulator.url + "/_emulator/token", method="POST"), timeout=10).read())["access_token"]


def exchange(emulator, path=CACHE_PATH, timeout=10.0, headers=None):
    """One GET on a fresh connection (Connection: close); everything received, how it ended
    ("eof", "reset" or "timeout"), the number of reads it took and the seconds it took."""
    parts = urlsplit(emulator.url)
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % parts.netloc, "Connection: close",
             "Authorization: Bearer " + token(emulator)] + ["%s: %s" % kv for kv in (headers or {}).items()]
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        chunks, end = [], "eof"
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                end = "reset"
                break
            except socket.timeout:
                end = "timeout"
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks), end, len(chunks), time.monotonic() - started


def split(answer):
    head, unused, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), fields, body


def faulted(emulator):
    return [(e["kind"], e.get("fault"), e["status"]) for e in emulator.log() if e.get("fault")]


@pytest.mark.parametrize("how, end", [("reset", "reset"), ("close", "eof"), ("stall", "eof")])
def test_an_answer_torn_mid_body(emulator, how, end):
    emulator.load(scenario(faults=[{"on": "get", "kind": "midbody", "how": how, "delay": 1}]))
    answer, ended, _reads, seconds = exchange(emulator)
    status, fields, body = split(answer)
    assert status == 200 and fields["Content-Type"].startswith("application/json")
    assert fields["Content-Length"] == "40" and body == b'{"status": ' and len(body) == 11
    assert ended == end
    if how == "stall":
        assert seconds >= 0.9  # held, then closed
    assert faulted(emulator) == [("get", "midbody:%s%s" % (how, ":1" if how == "stall" else ""), 200)]
    # used up: the next answer is whole
    status, fields, body = split(exchange(emulator)[0])
    assert status == 200 and json.loads(body)["name"] == "c1"


def test_a_torn_answer_with_count_and_after(emulator):
    emulator.load(scenario(faults=[{"on": "any", "kind": "midbody", "how": "close", "status": 503,
                                    "after": 1, "count": 1}]))
    first, second, third = (split(exchange(emulator)[0]) for unused in range(3))
    assert first[0] == 200 and json.loads(first[2])["name"] == "c1"
    assert second[0] == 503 and second[2] == b'{"status": '
    assert third[0] == 200 and json.loads(third[2])["name"] == "c1"


def test_a_token_answer_torn_mid_body_is_logged_as_such(emulator):
    emulator.load(scenario(faults=[{"on": "token", "kind": "midbody", "how": "reset"}]))
    path = "/msi/token?resource=%s&api-version=2019-08-01" % emulator.url
    identity = {"X-IDENTITY-HEADER": emulator.facts["identity_header"]}
    answer, ended, _reads, _seconds = exchange(emulator, path, headers=identity)
    assert ended == "reset" and split(answer)[2] == b'{"status": '
    assert faulted(emulator) == [("token", "midbody:reset", 200)]


def test_status_line_and_headers_trickle_in(emulator):
    emulator.load(scenario(faults=[{"on": "get", "kind": "trickle_headers", "delay": 0.01,
                                    "body": {"value": []}}]))
    answer, ended, reads, _seconds = exchange(emulator)
    status, fields, body = split(answer)
    assert ended == "eof" and status == 200 and json.loads(body) == {"value": []}
    assert fields["Content-Length"] == str(len(body))
    assert reads > 20  # a byte at a time, not one write
    assert faulted(emulator) == [("get", "trickle_headers:0.01", 200)]


def test_a_small_gzip_answer_that_inflates_to_many_mib(emulator):
    emulator.load(scenario(faults=[{"on": "get", "kind": "gzip", "decoded_mb": 8}]))
    answer, ended, _reads, _seconds = exchange(emulator)
    status, fields, body = split(answer)
    assert ended == "eof" and status == 200 and fields["Content-Encoding"] == "gzip"
    assert int(fields["Content-Length"]) == len(body) < 64 * 1024
    inflated = gzip.decompress(body)
    assert len(inflated) == 8 << 20 and inflated.startswith(b'{"value": [') and not inflated.strip().endswith(b"}")
    assert faulted(emulator) == [("get", "gzip:8MiB", 200)]


@pytest.mark.parametrize("bad", [{"on": "post"}, {"kind": "midbdoy"}, {"kind": "midbody", "how": "explode"}])
def test_a_fault_that_could_never_fire_is_refused_and_changes_nothing(emulator, bad):
    emulator.load(scenario(state="Flushing"))
    with pytest.raises(urllib.error.HTTPError) as refused:
        emulator.load(scenario(faults=[bad]))
    assert refused.value.code == 400
    assert emulator.state()["caches"][0]["state"] == "Flushing"  # the scenario before stands
