# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One answer over HTTP, bounded in time and size: the session, the answer's watchdog, its body.

A socket's read timeout bounds each read, not an answer: a server that sends
a byte now and then, in the status line, the headers or the body, would hold
a task for ever. Each request therefore has a watchdog. The session's
connections are tracked, so when an answer has taken its bound the watchdog
shuts the request's socket down, which ends a read blocked in another thread
at once (closing it would not). That holds on urllib3 1.26 and 2.x alike.

The body is read raw and decoded here, against a cap on its size before and
after decoding: ARM answers are kilobytes, and a compressed answer can
expand a thousandfold. Every failure while an answer is read is a ReadFailure,
which the client turns into a transport error.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import typing as t
import zlib

try:
    import requests
    import urllib3
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    HAS_HTTP = True
except ImportError:  # pragma: no cover - connect.py reports a missing requests before any of this is used
    HAS_HTTP = False

# The largest answer read, as sent and once decoded.
MAX_BODY_BYTES = 16 * 1024 * 1024
CHUNK = 65536
ACCEPT_ENCODING = "gzip, deflate"
# What sending a request and reading its answer can raise below requests: urllib3's errors,
# http.client's and the socket's (OSError covers ssl.SSLError).
TRANSPORT_ERRORS: t.Tuple[t.Type[BaseException], ...] = (http.client.HTTPException, OSError)
if HAS_HTTP:
    TRANSPORT_ERRORS += (urllib3.exceptions.HTTPError,)
# A body read may also meet a file the watchdog closed under it (ValueError).
READ_ERRORS = TRANSPORT_ERRORS + (ValueError,)

_current = threading.local()  # the watchdog of the request this thread is sending


class ReadFailure(Exception):
    """The answer could not be read whole: cut short, too slow, too large, or undecodable."""


class Watchdog:
    """Bounds one answer, from the moment its request goes out on a connection.

    fired is True once the bound passed before finish(); the answer is then
    failed whatever was read. urllib3 gives a connection back to its pool as
    soon as a body's last byte is read, before the answer is judged: a watched
    connection is held back until finish() (see _put_conn below), so a timer
    can never shut a socket that another request has taken from the pool, and
    a connection whose answer was refused is closed, never reused.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._lock = threading.Lock()
        self._stopped = False
        self._connection: t.Any = None
        self._timer: t.Optional[threading.Timer] = None
        self._held: t.Optional[t.Tuple[t.Any, t.Any]] = None  # (pool, connection) urllib3 gave back early

    def __enter__(self) -> "Watchdog":
        _current.watchdog = self
        return self

    def __exit__(self, *exc: t.Any) -> None:
        _current.watchdog = None
        self.finish(ok=False)  # a no-op after finish(ok=True)

    def watch(self, connection: t.Any) -> None:
        """The request goes out on this connection now: start the clock (once)."""
        with self._lock:
            if self._stopped or self._timer is not None:
                return
            self._connection = connection
            self._timer = threading.Timer(self.seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.fired = True
            shut_down(getattr(self._connection, "sock", None))

    def hold(self, pool: t.Any, connection: t.Any) -> bool:
        """urllib3 gives the connection back: keep it until finish(); False once finished (put it back)."""
        with self._lock:
            if self._stopped or connection is not self._connection:
                return False
            self._held = (pool, connection)
            return True

    def finish(self, ok: bool) -> bool:
        """Stop the clock and settle the connection: back to the pool only after a whole answer within the
        bound (ok), closed otherwise. Returns True when the bound had passed."""
        with self._lock:
            already = self._stopped
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
            held, self._held = self._held, None
            fired = self.fired
        if not already:
            connection = self._connection
            if connection is not None:
                connection.hpc_watchdog = None
            if not ok or fired:
                _close(connection)
            if held is not None:
                held[0]._put_conn(held[1] if ok and not fired else None)
        return fired


def _close(connection: t.Any) -> None:
    try:
        if connection is not None:
            connection.close()
    except TRANSPORT_ERRORS:
        pass


def shut_down(sock: t.Any) -> None:
    """End every read and write on a socket at once, from any thread; a TLS socket's own shutdown()
    would first tear its TLS state down under a reader in another thread, so the plain one is used."""
    if sock is None:
        return
    plain = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)
    if isinstance(plain, socket.socket):
        try:
            socket.socket.shutdown(plain, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


def _watched(base: t.Any) -> t.Any:
    """A connection class whose requests start the watchdog of the thread that sends them."""

    class Watched(base):  # type: ignore[misc]
        hpc_watchdog: t.Optional[Watchdog] = None

        def request(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            watchdog = getattr(_current, "watchdog", None)
            self.hpc_watchdog = watchdog
            if watchdog is not None:
                watchdog.watch(self)
            return super().request(*args, **kwargs)

    Watched.__name__ = "Watched" + base.__name__
    return Watched


def _put_conn(pool: t.Any, base: t.Any, connection: t.Any) -> None:
    watchdog = getattr(connection, "hpc_watchdog", None)
    if watchdog is not None and watchdog.hold(pool, connection):
        return  # back once the answer is judged (Watchdog.finish)
    base._put_conn(pool, connection)


if HAS_HTTP:
    class _WatchedHTTPPool(HTTPConnectionPool):
        ConnectionCls = _watched(HTTPConnection)

        def _put_conn(self, conn: t.Any) -> None:
            _put_conn(self, HTTPConnectionPool, conn)

    class _WatchedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = _watched(HTTPSConnection)

        def _put_conn(self, conn: t.Any) -> None:
            _put_conn(self, HTTPSConnectionPool, conn)

    class WatchedAdapter(HTTPAdapter):
        """requests' adapter whose pools (direct and through a proxy) use watched connections."""

        POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

        def init_poolmanager(self, *args: t.Any, **kwargs: t.Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = dict(self.POOLS)

        def proxy_manager_for(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            manager = super().proxy_manager_for(*args, **kwargs)
            if hasattr(manager, "pool_classes_by_scheme"):
                manager.pool_classes_by_scheme = dict(self.POOLS)
            return manager


def session(concurrency: int = 1) -> t.Any:
    """A requests.Session whose connections the watchdog can reach; a pool of concurrency connections."""
    sess = requests.Session()
    for prefix in ("https://", "http://"):
        sess.mount(prefix, WatchedAdapter(pool_connections=2, pool_maxsize=max(concurrency, 1)))
    return sess


def read_body(raw: t.Any, seconds: float, clock: t.Callable[[], float] = time.monotonic,
              cap: int = MAX_BODY_BYTES) -> bytes:
    """The decoded body of a streamed requests answer; ReadFailure when it cannot be had whole.

    The body is read one socket read at a time where urllib3 allows it (read1)
    and the clock checked after each read: a second bound for a connection the
    watchdog cannot reach. The connection goes back to the pool only after a
    whole body.
    """
    stream = getattr(raw, "raw", None)
    if stream is None:  # a test double: the body at once
        return decode(raw.content or b"", raw.headers.get("Content-Encoding"), cap)
    declared = _declared_length(raw.headers, cap)
    read = getattr(stream, "read1", None) or stream.read
    deadline = clock() + seconds
    chunks: t.List[bytes] = []
    size = 0
    while True:
        try:
            chunk = read(CHUNK, decode_content=False)
        except READ_ERRORS as exc:
            raise ReadFailure("%s: %s" % (type(exc).__name__, exc))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            raise ReadFailure("the answer was larger than the %d bytes a read accepts" % cap)
        if clock() > deadline:
            raise ReadFailure("the answer did not arrive in full within %.0f s" % seconds)
    if declared is not None and size != declared:
        raise ReadFailure("the answer was cut short: %d of %d bytes" % (size, declared))
    remaining = getattr(stream, "length_remaining", None)  # what urllib3 itself expected still to come
    if isinstance(remaining, int) and remaining > 0:
        raise ReadFailure("the answer was cut short: %d more bytes were announced" % remaining)
    return decode(b"".join(chunks), raw.headers.get("Content-Encoding"), cap)


def _declared_length(headers: t.Mapping[str, str], cap: int) -> t.Optional[int]:
    """The Content-Length a body is held to; ReadFailure for one over the cap (or absurdly long)."""
    if (headers.get("Transfer-Encoding") or "").strip():
        return None  # chunked: the chunks say where the body ends
    value = (headers.get("Content-Length") or "").strip()
    if not (value.isascii() and value.isdigit()):
        return None
    if len(value) > 12 or int(value) > cap:
        raise ReadFailure("the answer announced %s bytes, more than the %d bytes a read accepts"
                          % (value if len(value) <= 12 else value[:12] + "...", cap))
    return int(value)


def decode(data: bytes, encoding: t.Optional[str], cap: int = MAX_BODY_BYTES) -> bytes:
    """Undo a Content-Encoding of identity, gzip or deflate, never producing more than cap bytes."""
    name = (encoding or "identity").strip().lower()
    if name in ("", "identity") or not data:  # an empty body is empty, whatever its encoding says
        return data
    if name in ("gzip", "x-gzip"):
        return _inflate(data, 16 + zlib.MAX_WBITS, cap)
    if name == "deflate":  # a zlib stream, or a raw deflate one as some servers send
        try:
            return _inflate(data, zlib.MAX_WBITS, cap)
        except ReadFailure:
            return _inflate(data, -zlib.MAX_WBITS, cap)
    raise ReadFailure("the answer's Content-Encoding %r is not one this client asked for (%s)"
                      % (name[:40], ACCEPT_ENCODING))


def _inflate(data: bytes, wbits: int, cap: int) -> bytes:
    """Every member of the stream (gzip allows several), never more than cap bytes out."""
    out = b""
    members = 0
    while True:
        members += 1
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(data, cap + 1 - len(out))
        except zlib.error as exc:
            raise ReadFailure("the answer's compressed body could not be decoded (%s)" % exc)
        if len(out) > cap or inflater.unconsumed_tail:
            raise ReadFailure("the answer was larger than the %d bytes a read accepts once decoded" % cap)
        if not inflater.eof:
            raise ReadFailure("the answer's compressed body was cut short")
        data = inflater.unused_data
        if not data or wbits <= 0 or members >= 64:
            break
    if data:
        raise ReadFailure("the answer's compressed body has %d bytes after its end" % len(data))
    return out
