"""restkit.server against hostile and broken clients: none of them stops others being served.

Slowloris drippers, a thousand idle keep-alive connections, the connection
cap, a client that never reads a 10 MB answer, half-closed and reset
connections, silent ones and garbage.  The server runs in this process
(``live_server``), so the RSS printed here is the server's and the clients'
together.

Every socket has a timeout and every load is bounded in count and time;
no test asserts how long something took: the deadlines below are failure
guards, several times what a working server needs.
"""

from __future__ import annotations

import json
import random
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.wire import (
    TIMEOUT, connect, get, parse_response, raise_open_files, read_response, read_until_close, rss_mib, wait_for,
)

BIG = 10 * 1024 * 1024  # the answer a client never reads
PIECE = 64 * 1024
RSS_GROWTH_LIMIT_MIB = 300.0


class BigBody:
    """A 10 MB response body, in 64 KiB pieces, that records being closed."""

    def __init__(self, state: dict[str, Any]) -> None:
        self._state = state

    def __iter__(self) -> Iterator[bytes]:
        piece = b"\0" * PIECE
        for _ in range(BIG // PIECE):
            self._state["pieces"] += 1
            yield piece

    def close(self) -> None:
        self._state["big_closed"].set()


def make_app(state: dict[str, Any]) -> Any:
    """A raw WSGI app: ``/`` says ok, ``/big`` is 10 MB, ``/slow`` waits, ``/upload`` reads its body."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ["PATH_INFO"]
        if path == "/big":
            start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(BIG))])
            return BigBody(state)
        if path == "/slow":
            time.sleep(0.3)
        elif path == "/upload":
            size = len(environ["wsgi.input"].read())
            body = json.dumps({"size": size}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    return app


@pytest.fixture
def state() -> dict[str, Any]:
    return {"pieces": 0, "big_closed": threading.Event()}


def fresh_requests_succeed(port: int, count: int) -> None:
    """``count`` requests on fresh connections, one after another, all answered 200 "ok"."""
    for number in range(count):
        assert get(port, "/", timeout=5) == (200, b"ok"), f"fresh request {number + 1} of {count}"


def report_rss(record_property: Any, name: str, before: float, after: float) -> None:
    print(f"\nRSS {name}: {before:.1f} MiB before, {after:.1f} MiB after ({after - before:+.1f} MiB)")
    record_property(f"rss_mib_{name}_before", round(before, 1))
    record_property(f"rss_mib_{name}_after", round(after, 1))
    assert after - before < RSS_GROWTH_LIMIT_MIB, f"RSS grew by {after - before:.0f} MiB"


def reset(sock: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- slowloris -----------------------------------------------------------------------------------------

DRIPPERS = 400
DRIP_TIMEOUT = 5.0  # the server's whole-request deadline in this test
# A head far longer than the test: the drippers never complete a request.
DRIP_HEAD = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 500


class Drippers:
    """Connections each sent one byte of a request head per second, round-robin, by one thread."""

    def __init__(self, port: int, count: int) -> None:
        self.socks = [connect(port, timeout=TIMEOUT) for _ in range(count)]
        self.sent = [0] * count
        self.received = [b""] * count
        self.closed = [False] * count
        self.first_round = threading.Event()
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        for index, sock in enumerate(self.socks):
            self._selector.register(sock, selectors.EVENT_READ, index)
        self._thread = threading.Thread(target=self._run, name="test-drippers", daemon=True)
        self._thread.start()

    def connected(self) -> int:
        return self.closed.count(False)

    def _mark_closed(self, index: int) -> None:
        if not self.closed[index]:
            self.closed[index] = True
            self._selector.unregister(self.socks[index])

    def _run(self) -> None:
        while not self._stop.is_set() and not all(self.closed):
            started = time.monotonic()
            for index, sock in enumerate(self.socks):
                if self.closed[index] or self.sent[index] >= len(DRIP_HEAD):
                    continue
                try:
                    sock.send(DRIP_HEAD[self.sent[index]:self.sent[index] + 1])
                    self.sent[index] += 1
                except OSError:  # reset or broken pipe: the server closed it
                    self._mark_closed(index)
            self.first_round.set()
            while not self._stop.is_set() and (left := started + 1.0 - time.monotonic()) > 0:
                if not self._selector.get_map():
                    break
                for key, _ in self._selector.select(left):
                    index = key.data
                    try:
                        data = self.socks[index].recv(65536)
                    except OSError:
                        data = b""
                    if data:
                        self.received[index] += data
                    else:
                        self._mark_closed(index)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        self._selector.close()
        for sock in self.socks:
            sock.close()


def test_slowloris_drippers_do_not_stop_others_and_meet_the_deadline(
    live_server: Any, state: dict[str, Any], record_property: Any
) -> None:
    skip = raise_open_files(2 * DRIPPERS + 200)
    if skip:
        pytest.skip(skip)
    srv = live_server(make_app(state), timeout=DRIP_TIMEOUT)
    rss_before = rss_mib()
    drippers = Drippers(srv.port, DRIPPERS)
    try:
        assert drippers.first_round.wait(30), "the drippers did not start"
        fresh_requests_succeed(srv.port, 20)
        connected_meanwhile = drippers.connected()
        # Each dripper keeps sending a byte a second; the server must still
        # end its request DRIP_TIMEOUT seconds after its first byte.
        ended = wait_for(lambda: all(drippers.closed), timeout=DRIP_TIMEOUT + 20, interval=0.2)
        still_open = drippers.connected()
        answers = list(drippers.received)
        sent = list(drippers.sent)
    finally:
        drippers.close()
    rss_after = rss_mib()
    assert connected_meanwhile == DRIPPERS, "drippers were closed before their deadline"
    assert ended, f"{still_open} of {DRIPPERS} drippers still open long after the {DRIP_TIMEOUT} s deadline"
    assert max(sent) < len(DRIP_HEAD)  # none ever completed its head
    for raw in answers:
        if raw:
            answer = parse_response(raw)
            assert answer.status == 408, raw[:200]
            assert set(json.loads(answer.body)) == {"error"}
            assert answer.headers["connection"] == "close"
    print(f"\nslowloris: {answers.count(b'')} of {DRIPPERS} drippers closed silently, the rest got 408")
    fresh_requests_succeed(srv.port, 1)
    report_rss(record_property, "slowloris", rss_before, rss_after)


# -- idle keep-alive connections -----------------------------------------------------------------------------

IDLE = 1000


def test_a_thousand_idle_keep_alive_connections_do_not_stop_others(
    live_server: Any, state: dict[str, Any], record_property: Any
) -> None:
    skip = raise_open_files(2 * IDLE + 500)  # both ends live in this process
    if skip:
        pytest.skip(skip)
    srv = live_server(make_app(state), keepalive_timeout=60.0, timeout=10.0)
    rss_before = rss_mib()
    idle: list[socket.socket] = []
    try:
        for number in range(IDLE):
            sock = connect(srv.port, timeout=5)
            idle.append(sock)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            answer = read_response(sock)
            assert (answer.status, answer.body) == (200, b"ok"), f"idle connection {number + 1}"
            assert answer.headers.get("connection", "keep-alive").lower() != "close"
        rss_full = rss_mib()
        fresh_requests_succeed(srv.port, 50)
        # None of the idle connections was closed meanwhile, and they still work.
        with selectors.DefaultSelector() as selector:
            for sock in idle:
                selector.register(sock, selectors.EVENT_READ)
            readable = [key.fileobj for key, _ in selector.select(0)]
        assert readable == [], f"{len(readable)} idle connections were closed or sent something"
        for sock in idle[::100]:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(sock).status == 200
    finally:
        for sock in idle:
            sock.close()
    rss_after = rss_mib()
    print(f"\nRSS with {IDLE} idle connections open: {rss_full:.1f} MiB")
    record_property("rss_mib_idle_full", round(rss_full, 1))
    report_rss(record_property, "idle", rss_before, rss_after)
    assert rss_full - rss_before < RSS_GROWTH_LIMIT_MIB


# -- the connection cap ------------------------------------------------------------------------------------


def test_client_beyond_max_connections_waits_and_is_answered_when_a_slot_frees(
    live_server: Any, state: dict[str, Any]
) -> None:
    srv = live_server(make_app(state), max_connections=50, keepalive_timeout=60.0)
    idle: list[socket.socket] = []
    try:
        for _ in range(50):
            sock = connect(srv.port)
            idle.append(sock)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(sock).status == 200
        with connect(srv.port) as late:  # the kernel completes the handshake: it waits in the backlog
            late.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            cpu_before = time.process_time()
            with selectors.DefaultSelector() as selector:
                selector.register(late, selectors.EVENT_READ)
                events = selector.select(1.0)
            cpu_used = time.process_time() - cpu_before
            # not answered, not refused, not reset while the cap is reached ...
            assert events == [], late.recv(4096)
            # ... and the server does not spin on the listener meanwhile (a loop
            # that spins burns about a whole second of CPU in that second)
            assert cpu_used < 0.5, f"{cpu_used:.2f} s of CPU in 1 s while at the cap"
            idle.pop(0).close()
            answer = read_response(late)
            assert (answer.status, answer.body) == (200, b"ok")
    finally:
        for sock in idle:
            sock.close()


# -- a client that never reads --------------------------------------------------------------------------


def test_client_that_never_reads_a_big_answer_is_closed_and_the_body_closed(
    live_server: Any, state: dict[str, Any]
) -> None:
    srv = live_server(make_app(state), timeout=2.0)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    try:
        sock.connect(("127.0.0.1", srv.port))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        fresh_requests_succeed(srv.port, 5)  # ... while others are served
        assert state["big_closed"].wait(30), "the app's iterable was never closed"
        received = read_until_close(sock)  # returns: the server closed the connection
    finally:
        sock.close()
    assert received.startswith(b"HTTP/1.1 200 ")
    assert len(received) < BIG, "the whole body went into buffers: the test proves nothing"
    assert state["pieces"] < BIG // PIECE or len(received) < BIG
    fresh_requests_succeed(srv.port, 1)


# -- half-closed, reset, silent and garbage clients ---------------------------------------------------------

HALF_CLOSED = [
    ("get", b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", [b"ok"]),
    ("http-10", b"GET / HTTP/1.0\r\n\r\n", [b"ok"]),
    ("post-with-body", b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", [b'{"size": 5}']),
    ("two-pipelined", b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /slow HTTP/1.1\r\nHost: t\r\n\r\n", [b"ok", b"ok"]),
]


@pytest.mark.parametrize("request_bytes, bodies", [c[1:] for c in HALF_CLOSED], ids=[c[0] for c in HALF_CLOSED])
def test_half_closed_client_still_gets_its_answers(
    live_server: Any, state: dict[str, Any], request_bytes: bytes, bodies: list[bytes]
) -> None:
    srv = live_server(make_app(state))
    with connect(srv.port) as sock:
        sock.sendall(request_bytes)
        sock.shutdown(socket.SHUT_WR)  # "I have nothing more to send", but still reading
        raw = read_until_close(sock)
    assert raw.count(b"HTTP/1.1 200 ") == len(bodies), raw[:500]
    answer = parse_response(raw)
    assert answer.complete and answer.body == bodies[0]
    assert raw.endswith(bodies[-1])
    fresh_requests_succeed(srv.port, 1)


RESETS = [
    ("mid-head", b"GET / HTTP/1.1\r\nHost: t\r\nX-Partial: "),
    ("mid-body", b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000),
    ("big-body-mid-body", b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 300_000),
    ("before-the-answer", b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("mid-answer", b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n"),
]


@pytest.mark.parametrize("request_bytes", [c[1] for c in RESETS], ids=[c[0] for c in RESETS])
def test_clients_that_reset_do_not_stop_others(live_server: Any, state: dict[str, Any], request_bytes: bytes) -> None:
    srv = live_server(make_app(state), timeout=5.0)
    for _ in range(10):
        sock = connect(srv.port)
        try:
            sock.sendall(request_bytes)
            if request_bytes.startswith(b"GET /big"):
                assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
        finally:
            reset(sock)
    fresh_requests_succeed(srv.port, 5)
    if request_bytes.startswith(b"GET /big"):
        assert state["big_closed"].wait(TIMEOUT), "the iterable of a reset client was not closed"


def test_silent_client_is_closed_silently_after_the_timeout(live_server: Any, state: dict[str, Any]) -> None:
    srv = live_server(make_app(state), timeout=1.0)
    with connect(srv.port) as silent:  # connects, never sends a byte
        fresh_requests_succeed(srv.port, 3)
        assert read_until_close(silent) == b""  # returns only because the server closed it
    fresh_requests_succeed(srv.port, 1)


def client_hello() -> bytes:
    """The first flight of a real TLS client."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


GARBAGE = [
    ("random-bytes", lambda: random.Random(9).randbytes(4096)),
    ("tls-client-hello", client_hello),
    ("nul-flood", lambda: b"\0" * 65536),
    ("endless-line", lambda: b"A" * 100_000),
    ("empty-lines", lambda: b"\r\n" * 1000),
    ("binary-header", lambda: b"GET / HTTP/1.1\r\nHost: t\r\nX-Bin: \xff\xfe\x00\x01\r\n\r\n"),
    ("http-then-garbage", lambda: b"GET / HTTP/1.1\r\nHost: t\r\n\r\n\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
]


@pytest.mark.parametrize("payload", [c[1] for c in GARBAGE], ids=[c[0] for c in GARBAGE])
def test_garbage_does_not_stop_others(live_server: Any, state: dict[str, Any], payload: Any) -> None:
    srv = live_server(make_app(state), timeout=2.0)
    data = payload()
    socks = [connect(srv.port) for _ in range(5)]
    try:
        for sock in socks:
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused part-way: fine
        fresh_requests_succeed(srv.port, 5)
        for sock in socks:
            raw = read_until_close(sock)  # returns only once the server closed it
            if data.startswith(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"):
                assert raw.startswith(b"HTTP/1.1 200 ")  # the real request is answered ...
                raw = raw.partition(b"\r\n\r\nok")[2]  # ... and what follows refused or dropped
            assert raw == b"" or raw.startswith(b"HTTP/1.1 4") or raw.startswith(b"HTTP/1.1 505 "), raw[:200]
            if raw:
                answer = parse_response(raw)
                assert answer.headers.get("connection") == "close"
                assert set(json.loads(answer.body)) == {"error"}
    finally:
        for sock in socks:
            sock.close()
    fresh_requests_succeed(srv.port, 1)
