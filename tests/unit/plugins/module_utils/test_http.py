# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading one answer: every way a body can break is a failed read, bounded in time and size.

The first part drives read_body and the client with scripted streams; the second sends real
requests through the collection's own session to a server on 127.0.0.1 that breaks its answers
(on urllib3 2 in the newest stack and urllib3 1.26 in the oldest).
"""

from __future__ import annotations

import gzip
import http.client
import socket
import socketserver
import struct
import threading
import time
import typing as t
import zlib

import pytest
import urllib3
from requests.structures import CaseInsensitiveDict

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport import http as _http
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.retry import RetryPolicy
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.cloud import Cloud
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import TransportError
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.http import ReadFailure, decode, read_body
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, FakeRaw, FakeTokens

URL = ARM + "subscriptions/s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/c?api-version=1"


class Stream:  # pylint: disable=too-few-public-methods
    """urllib3's response: each read1 returns the next scripted chunk, or raises it."""

    def __init__(self, chunks: t.Sequence[t.Any], clock: t.Any = None, step: float = 0.0) -> None:
        self.chunks = list(chunks)
        self.clock, self.step = clock, step
        self.released = self.closed = False

    def read1(self, amt: int, decode_content: t.Optional[bool] = None) -> bytes:
        assert decode_content is False and amt > 0  # decoded here, against the cap
        if self.clock is not None:
            self.clock.now += self.step
        item = self.chunks.pop(0) if self.chunks else b""
        if isinstance(item, BaseException):
            raise item
        return t.cast(bytes, item)

    def release_conn(self) -> None:
        self.released = True


class Streamed:  # pylint: disable=too-few-public-methods
    """requests' response around a Stream."""

    def __init__(self, stream: Stream, status: int = 200, headers: t.Optional[t.Mapping[str, str]] = None) -> None:
        self.raw = stream
        self.status_code = status
        self.headers = CaseInsensitiveDict(headers or {})

    def close(self) -> None:
        self.raw.closed = True


# read_body ---------------------------------------------------------------------------------------
def test_a_trickling_body_is_cut_off_at_its_bound(clock):
    slow = Stream([bytes([b]) for b in b'{"value": []}'], clock, step=1.0)
    with pytest.raises(ReadFailure, match="did not arrive in full within 5 s"):
        read_body(Streamed(slow), 5, clock=clock)
    assert len(slow.chunks) == 13 - 6  # cut off after the read that passed the bound


def test_a_whole_body_is_joined():
    assert read_body(Streamed(Stream([b'{"a"', b": 1}"]), headers={"Content-Length": "8"}), 60) == b'{"a": 1}'


def test_a_body_shorter_than_announced_is_a_failed_read():
    with pytest.raises(ReadFailure, match="cut short: 11 of 40 bytes"):
        read_body(Streamed(Stream([b'{"status": ']), headers={"Content-Length": "40"}), 60)


def test_an_announced_body_over_the_cap_is_refused_unread():
    stream = Stream([b"x"])
    with pytest.raises(ReadFailure, match="announced 20000000 bytes"):
        read_body(Streamed(stream, headers={"Content-Length": "20000000"}), 60)
    assert stream.chunks == [b"x"]


def test_a_body_over_the_cap_stops_the_read():
    stream = Stream([b"x" * 1000] * 100)
    with pytest.raises(ReadFailure, match="larger than the 4096 bytes"):
        read_body(Streamed(stream), 60, cap=4096)
    assert len(stream.chunks) == 95  # five reads, not a hundred


def test_a_compressed_bomb_fails_before_it_is_decoded_whole():
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))  # 64 MiB of spaces in about 64 KiB
    assert len(bomb) < 100 * 1024
    with pytest.raises(ReadFailure, match="once decoded"):
        read_body(Streamed(Stream([bomb]), headers={"Content-Encoding": "gzip"}), 60)


@pytest.mark.parametrize("encoding, data", [
    ("gzip", gzip.compress(b'{"a": 1}', mtime=0)),
    ("x-gzip", gzip.compress(b'{"a": 1}', mtime=0)),
    ("deflate", zlib.compress(b'{"a": 1}')),
    ("deflate", zlib.compress(b'{"a": 1}')[2:-4]),  # raw deflate, as some servers send it
    ("identity", b'{"a": 1}'),
    (None, b'{"a": 1}'),
])
def test_the_encodings_asked_for_are_decoded(encoding, data):
    assert decode(data, encoding) == b'{"a": 1}'


@pytest.mark.parametrize("encoding, data, match", [
    ("br", b"\x0b\x02\x80", "not one this client asked for"),
    ("gzip", gzip.compress(b'{"a": 1}', mtime=0)[:-6], "cut short"),
    ("gzip", b"not gzip at all", "could not be decoded"),
])
def test_an_undecodable_body_is_a_failed_read(encoding, data, match):
    with pytest.raises(ReadFailure, match=match):
        decode(data, encoding)


# The client: a broken answer is one failed read ---------------------------------------------------
BROKEN = [
    urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(11 bytes read, 29 more expected)",
                                     http.client.IncompleteRead(b"x" * 11, 29)),
    urllib3.exceptions.ReadTimeoutError(None, "/x", "Read timed out."),
    urllib3.exceptions.SSLError("[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed"),
    urllib3.exceptions.DecodeError("Received response with content-encoding: gzip, but failed to decode it."),
    http.client.IncompleteRead(b"x" * 11, 29),
    ConnectionResetError(104, "Connection reset by peer"),
    ValueError("read of closed file"),
]


def _broken(exc: BaseException) -> Streamed:
    return Streamed(Stream([b'{"status": ', exc]), headers={"Content-Length": "40"})


@pytest.mark.parametrize("exc", BROKEN, ids=lambda e: type(e).__name__)
def test_a_read_broken_mid_body_is_retried(make_client, exc):
    whole = Stream([b'{"status": "Succeeded"}'])
    broken = _broken(exc)
    client, session = make_client([broken, Streamed(whole)])
    assert client.get(URL).json() == {"status": "Succeeded"}
    assert len(session.calls) == 2
    assert broken.raw.closed and not broken.raw.released  # a broken connection never goes back to the pool
    assert whole.released


@pytest.mark.parametrize("exc", BROKEN, ids=lambda e: type(e).__name__)
def test_a_post_answer_broken_mid_body_is_sent_with_no_answer(make_client, exc):
    client, session = make_client([_broken(exc)])
    with pytest.raises(TransportError, match="No complete answer from ARM") as err:
        client.post_action(URL)
    assert err.value.sent is True and len(session.calls) == 1  # the caller looks before anything is resent
    assert "Traceback" not in err.value.message


def test_an_oversized_answer_is_a_failed_read_with_its_reason(make_client):
    huge = Streamed(Stream([b"x"]), headers={"Content-Length": str(64 * 1024 * 1024)})
    client, unused = make_client([huge] * 4)
    with pytest.raises(TransportError, match="more than the 16777216 bytes a read accepts"):
        client.get(URL)


def test_a_tls_error_that_is_not_about_the_certificate_is_retried(make_client):
    import requests  # pylint: disable=import-outside-toplevel

    client, session = make_client([requests.exceptions.SSLError("EOF occurred in violation of protocol"),
                                   FakeRaw(200, {"ok": 1})])
    assert client.get(URL).json() == {"ok": 1}
    assert len(session.calls) == 2


def test_only_the_encodings_the_client_decodes_are_asked_for(make_client):
    client, session = make_client([FakeRaw(200, {})])
    client.get(URL)
    assert session.calls[0]["headers"]["Accept-Encoding"] == "gzip, deflate"


# Real sockets on 127.0.0.1 ------------------------------------------------------------------------
MAX_SERVE = 30.0  # no broken server below talks for longer than this


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def serve():
    """serve(handler) runs handler(socket) for every connection on 127.0.0.1; returns the base URL."""
    servers = []

    def start(handler: t.Callable[[socket.socket], None]) -> str:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(MAX_SERVE)
                try:
                    _read_request(self.request)
                    handler(self.request)
                except OSError:
                    pass  # the client hung up, as it should

        server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return "http://127.0.0.1:%d/" % server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _read_request(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            return
        data += chunk


def _client(base: str, read_timeout: float = 2.0) -> ArmClient:
    cloud = Cloud("Loopback", base, base, base, custom=True)
    return ArmClient(cloud, FakeTokens(), session=_http.session(),
                     policy=RetryPolicy(attempts=1, connect_timeout=5.0, read_timeout=read_timeout))


def _headers(length: int, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (length, extra))


def _timed(call: t.Callable[[], t.Any]) -> t.Tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(TransportError) as err:
        call()
    return err.value, time.monotonic() - started


def test_trickling_headers_are_cut_off_at_the_bound(serve):
    def trickle(sock: socket.socket) -> None:
        for byte in _headers(2) + b"{}":  # about 80 bytes, one every 0.4 s: half a minute in all
            sock.sendall(bytes([byte]))
            time.sleep(0.4)

    base = serve(trickle)
    err, took = _timed(lambda: _client(base).get(base + "x"))
    assert "did not arrive in full within 2 s" in err.message and err.sent is True
    assert took < 15  # the old bound was 2 s per byte: the whole half minute


def test_a_trickling_body_is_cut_off_at_the_bound(serve):
    def trickle(sock: socket.socket) -> None:
        sock.sendall(_headers(60))
        for unused in range(60):
            sock.sendall(b" ")
            time.sleep(0.4)

    base = serve(trickle)
    err, took = _timed(lambda: _client(base).get(base + "x"))
    assert "did not arrive in full within 2 s" in err.message
    assert took < 15


def _cut(how: str) -> t.Callable[[socket.socket], None]:
    def handler(sock: socket.socket) -> None:
        sock.sendall(_headers(40) + b'{"status": ')  # 11 of 40 bytes
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif how == "stall":
            time.sleep(1.0)
        sock.close()

    return handler


@pytest.mark.parametrize("how", ["reset", "close", "stall"])
def test_an_answer_broken_mid_body_is_a_transport_error(serve, how):
    base = serve(_cut(how))
    err, unused = _timed(lambda: _client(base).get(base + "x"))
    assert err.message.startswith("No complete answer from ARM") and err.sent is True
    assert "Unexpected" not in err.message


def test_a_stall_past_the_read_timeout_is_a_transport_error(serve):
    def stall(sock: socket.socket) -> None:
        sock.sendall(_headers(40) + b'{"status": ')
        time.sleep(5.0)

    base = serve(stall)
    err, took = _timed(lambda: _client(base, read_timeout=1.0).get(base + "x"))
    assert err.sent is True and took < 4.5


def test_a_compressed_bomb_over_http_is_refused(serve):
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))

    def answer(sock: socket.socket) -> None:
        sock.sendall(_headers(len(bomb), b"Content-Encoding: gzip\r\n") + bomb)

    base = serve(answer)
    err, unused = _timed(lambda: _client(base).get(base + "x"))
    assert "once decoded" in err.message


def test_a_gzip_answer_is_decoded_and_the_connection_reused(serve):
    body = gzip.compress(b'{"value": []}', mtime=0)
    connections = []

    def answer(sock: socket.socket) -> None:
        connections.append(sock)
        while True:
            sock.sendall(_headers(len(body), b"Content-Encoding: gzip\r\n") + body)
            if not sock.recv(65536):
                return

    base = serve(answer)
    client = _client(base)
    assert client.get(base + "a").json() == {"value": []}
    assert client.get(base + "b").json() == {"value": []}
    assert len(connections) == 1  # a whole answer gives its connection back to the pool


def test_a_refused_answer_never_gives_its_connection_back(serve):
    connections = []

    def answer(sock: socket.socket) -> None:
        connections.append(sock)
        sock.sendall(_headers(3, b"Content-Encoding: br\r\n") + b"\x0b\x02\x80")  # read whole, then refused
        while sock.recv(65536):
            sock.sendall(_headers(2) + b"{}")

    base = serve(answer)
    client = _client(base)
    with pytest.raises(TransportError, match="not one this client asked for"):
        client.get(base + "a")
    with pytest.raises(TransportError):
        client.get(base + "b")  # a new connection, refused the same way: the first one was not reused
    assert len(connections) == 2


class _Pool:  # pylint: disable=too-few-public-methods
    def __init__(self):
        self.put = []

    def _put_conn(self, conn):
        self.put.append(conn)


class _Conn:  # pylint: disable=too-few-public-methods
    sock = None
    closed = False

    def close(self):
        self.closed = True


@pytest.mark.parametrize("ok, back", [(True, "the connection"), (False, None)])
def test_a_connection_urllib3_gives_back_early_waits_for_the_verdict(ok, back):
    pool, conn = _Pool(), _Conn()
    with _http.Watchdog(60) as watchdog:
        watchdog.watch(conn)
        assert watchdog.hold(pool, conn) is True and pool.put == []  # the timer may still fire: not in the pool
        watchdog.finish(ok=ok)
        assert pool.put == [conn if back else None] and conn.closed is (not ok)
        assert watchdog.hold(pool, _Conn()) is False  # once judged, nothing more is held


def test_a_watchdog_that_fired_gives_nothing_back():
    pool, conn = _Pool(), _Conn()
    watchdog = _http.Watchdog(0.01)
    watchdog.watch(conn)
    assert watchdog.hold(pool, conn)
    deadline = time.monotonic() + 10
    while not watchdog.fired and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watchdog.finish(ok=True) is True
    assert pool.put == [None] and conn.closed


def test_an_empty_compressed_body_is_empty():
    assert decode(b"", "gzip") == b""


def test_every_member_of_a_gzip_stream_is_decoded_and_trailing_bytes_refused():
    assert decode(gzip.compress(b'{"a": ', mtime=0) + gzip.compress(b"1}", mtime=0), "gzip") == b'{"a": 1}'
    with pytest.raises(ReadFailure):
        decode(gzip.compress(b'{"a": 1}', mtime=0) + b"garbage", "gzip")


def test_an_absurd_content_length_is_refused_unread():
    with pytest.raises(ReadFailure, match="announced 111111111111... bytes"):
        read_body(Streamed(Stream([b"{}"]), headers={"Content-Length": "1" * 5000}), 60)
