"""restkit.server against hostile and broken clients: none of them stops others being served.

Slowloris drippers (of the head and of the body), a thousand idle
keep-alive connections, the connection cap, running out of file
descriptors, open streams on a small pool, a client that never reads a
10 MB answer, half-closed and reset connections, churn, silent clients and
garbage.  The server runs in this process (``live_server``) except where a
descriptor limit is set, so the RSS printed here (``pytest -s``; also
recorded with ``record_property``) is the server's and the clients'
together.

Every socket has a timeout and every load is bounded in count and time;
no test asserts how long something took: the deadlines below are failure
guards, several times what a working server needs.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import selectors
import signal
import socket
import ssl
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.wire import (
    TIMEOUT, cli_env, connect, finish, get, parse_response, raise_open_files, read_response, read_until_close,
    rss_mib, wait_for, wait_until_listening,
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
    """A raw WSGI app: ``/`` says ok, ``/big`` is 10 MB, ``/64k`` 64 KiB, ``/slow`` waits, ``/upload`` reads."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ["PATH_INFO"]
        if path == "/big":
            start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(BIG))])
            return BigBody(state)
        if path == "/64k":
            start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "65536")])
            return [b"\0" * 65536]
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
        rss_during = rss_mib()
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
    print(f"\nRSS with {DRIPPERS} drippers connected: {rss_during:.1f} MiB")
    record_property("rss_mib_slowloris_during", round(rss_during, 1))
    report_rss(record_property, "slowloris", rss_before, rss_after)
    assert rss_during - rss_before < RSS_GROWTH_LIMIT_MIB


@pytest.mark.parametrize("length, threads", [(1000, 2), (1_000_000, 64)], ids=["buffered-body", "streamed-body"])
def test_body_drippers_meet_the_whole_request_deadline(
    live_server: Any, state: dict[str, Any], length: int, threads: int
) -> None:
    """The deadline covers the body too: a byte a second of body does not keep a request alive.

    A small body arrives in the event loop, so ten drippers do not hold the
    two workers; a large one is streamed to the app, which holds a worker.
    """
    srv = live_server(make_app(state), timeout=3.0, threads=threads)
    head = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % length
    socks = [connect(srv.port) for _ in range(10)]
    received = {sock: b"" for sock in socks}
    open_socks = set(socks)
    try:
        for sock in socks:
            sock.sendall(head + (b"x" * 300_000 if length > 256 * 1024 else b""))
        fresh_requests_succeed(srv.port, 5)
        deadline = time.monotonic() + 25  # a guard: the server's deadline is 3 s
        while open_socks and time.monotonic() < deadline:
            for sock in list(open_socks):
                try:
                    sock.send(b"x")
                except OSError:
                    open_socks.discard(sock)
                    continue
            with selectors.DefaultSelector() as selector:
                for sock in open_socks:
                    selector.register(sock, selectors.EVENT_READ)
                for key, _ in selector.select(1.0):
                    sock = key.fileobj  # type: ignore[assignment]
                    try:
                        chunk = sock.recv(65536)
                    except OSError:
                        chunk = b""
                    received[sock] += chunk
                    if not chunk:
                        open_socks.discard(sock)
    finally:
        for sock in socks:
            sock.close()
    assert not open_socks, f"{len(open_socks)} body drippers still open long after the deadline"
    for raw in received.values():
        if raw and length <= 256 * 1024:  # a buffered body: the app never ran, the server answers 408
            assert parse_response(raw).status == 408, raw[:200]
    fresh_requests_succeed(srv.port, 1)


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
            cpu_before = server_cpu_seconds()
            with selectors.DefaultSelector() as selector:
                selector.register(late, selectors.EVENT_READ)
                events = selector.select(1.0)
            cpu_used = server_cpu_seconds() - cpu_before
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


# -- running out of file descriptors ---------------------------------------------------------------------

FD_LIMIT = 64
FD_APP = textwrap.dedent(
    """
    import os
    import threading

    held = []

    def release():
        while held:
            os.close(held.pop())

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/hog":  # take every free descriptor for a few seconds
            while True:
                try:
                    held.append(os.open(os.devnull, os.O_RDONLY))
                except OSError:
                    break
            threading.Timer(4.0, release).start()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    """
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Clients:
    """Connections that each sent ``GET /`` and collect their answer ("ok")."""

    def __init__(self, port: int, count: int) -> None:
        self.socks = [connect(port) for _ in range(count)]
        self.answers = {sock: b"" for sock in self.socks}
        self._selector = selectors.DefaultSelector()
        for sock in self.socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            self._selector.register(sock, selectors.EVENT_READ)

    def answered(self) -> list[socket.socket]:
        return [sock for sock in self.socks if self.answers[sock].endswith(b"\r\n\r\nok")]

    def collect(self, quiet: float, guard: float, close_answered: bool) -> None:
        """Read answers until all came, none came for ``quiet`` seconds, or ``guard`` passed."""
        deadline = time.monotonic() + guard
        while self._selector.get_map() and (left := deadline - time.monotonic()) > 0:
            events = self._selector.select(min(quiet, left))
            if not events:
                return
            for key, _ in events:
                sock: Any = key.fileobj
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    chunk = b""
                self.answers[sock] += chunk
                if not chunk or self.answers[sock].endswith(b"\r\n\r\nok"):
                    self._selector.unregister(sock)
                    if close_answered:
                        sock.close()

    def close(self) -> None:
        self._selector.close()
        for sock in self.socks:
            sock.close()


def start_with_fd_limit(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """``python -m restkit`` serving FD_APP with at most FD_LIMIT descriptors (soft and hard limit)."""
    (tmp_path / "fd_app.py").write_text(FD_APP)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "restkit", "fd_app:app", "--port", str(port)], cwd=tmp_path, env=cli_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # the hard limit too: a server may raise its soft limit up to the hard one
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT)),
    )
    wait_until_listening(port, proc)
    return proc, port


def stop_and_check_log(proc: subprocess.Popen[str]) -> list[str]:
    """SIGINT, exit 0; the stderr lines that mention running out of descriptors."""
    proc.send_signal(signal.SIGINT)
    code, stderr = finish(proc)
    assert code == 0, stderr
    mentions = [line for line in stderr.splitlines() if re.search(r"EMFILE|[Tt]oo many open files|descriptor", line)]
    assert len(mentions) <= 1, "running out of descriptors was logged more than once:\n" + "\n".join(mentions[:10])
    return mentions


def assert_not_spinning(pid: int, waiting: int) -> None:
    before = cpu_seconds(pid)
    time.sleep(1.5)
    used = cpu_seconds(pid) - before
    assert used < 0.75, f"{used:.2f} s of CPU in 1.5 s with {waiting} clients waiting: the server spins"


def test_more_clients_than_descriptors_wait_and_are_served(tmp_path: Path) -> None:
    proc, port = start_with_fd_limit(tmp_path)
    clients: Clients | None = None
    try:
        clients = Clients(port, FD_LIMIT + 40)
        clients.collect(quiet=1.0, guard=10, close_answered=False)  # the first ones stay open: idle keep-alive
        served_first = clients.answered()
        waiting = len(clients.socks) - len(served_first)
        assert_not_spinning(proc.pid, waiting)
        for sock in served_first:  # their descriptors are free again
            sock.close()
        clients.collect(quiet=10.0, guard=30, close_answered=True)
        missing = len(clients.socks) - len(clients.answered())
        assert missing == 0, f"{missing} clients never answered after descriptors were freed"
        mentions = stop_and_check_log(proc)
    finally:
        if clients is not None:
            clients.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(f"\nfd limit {FD_LIMIT}: {len(served_first)} served at once, {waiting} waited; logged: {mentions}")


def test_emfile_on_accept_pauses_accepting_and_logs_once(tmp_path: Path) -> None:
    """The app takes every free descriptor for 4 s: accept() fails with EMFILE meanwhile."""
    proc, port = start_with_fd_limit(tmp_path)
    clients: Clients | None = None
    try:
        with connect(port) as hog:
            hog.sendall(b"GET /hog HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert parse_response(read_until_close(hog)).body == b"ok"
        clients = Clients(port, 20)  # the kernel queues them; the server cannot accept them yet
        assert_not_spinning(proc.pid, 20)
        clients.collect(quiet=15.0, guard=30, close_answered=True)
        missing = len(clients.socks) - len(clients.answered())
        assert missing == 0, f"{missing} clients never answered after the app released its descriptors"
        mentions = stop_and_check_log(proc)
    finally:
        if clients is not None:
            clients.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(f"\nEMFILE: logged {mentions}")


def server_cpu_seconds() -> float:
    """CPU time so far of this process's server threads: restkit-* and the one in serve_forever."""
    total = 0.0
    for thread in threading.enumerate():
        if (thread.name.startswith("restkit-") or "serve_forever" in thread.name) and thread.native_id:
            try:
                with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
            except FileNotFoundError:  # the thread just ended
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


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
    assert state["pieces"] < BIG // PIECE, "the server took the whole body from the app: a copy in memory"
    fresh_requests_succeed(srv.port, 1)


def test_pipelining_flood_that_never_reads_is_closed(live_server: Any, state: dict[str, Any]) -> None:
    """Requests sent without end, answers never read: the server stops reading, then closes, others go on."""
    srv = live_server(make_app(state), timeout=3.0)
    flood = socket.socket()
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood.settimeout(0.5)  # well within the server's timeout: others are tried while the flood is open
    batch = b"GET /64k HTTP/1.1\r\nHost: t\r\n\r\n" * 1000
    sent, closed, limit = 0, False, 128 * 1024 * 1024
    rss_before = rss_mib()
    try:
        flood.connect(("127.0.0.1", srv.port))
        deadline = time.monotonic() + 30  # a guard: the server's timeout is 3 s
        served = False
        while time.monotonic() < deadline and sent < limit:
            try:
                sent += flood.send(batch)
            except TimeoutError:  # the server stopped reading: serve others meanwhile
                if not served:
                    fresh_requests_succeed(srv.port, 5)
                    served = True
            except OSError:  # reset or broken pipe: the server closed it
                closed = True
                break
        rss_after = rss_mib()
    finally:
        flood.close()
    assert sent < limit, f"the server read {sent} bytes of requests whose answers nobody reads"
    assert closed, "the server never closed a client that does not read its answers"
    assert served
    fresh_requests_succeed(srv.port, 1)
    print(f"\npipelining flood: {sent / 1e6:.1f} MB sent before the server closed; RSS {rss_before:.1f} -> "
          f"{rss_after:.1f} MiB")
    assert rss_after - rss_before < RSS_GROWTH_LIMIT_MIB


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


def test_open_streams_do_not_hold_the_workers(live_server: Any) -> None:
    """Streams (unknown length) leave the pool: eight of them on two workers, and others are still served."""
    stop = threading.Event()
    closed: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] != "/stream":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        start_response("200 OK", [("Content-Type", "text/plain")])

        def ticks() -> Iterator[bytes]:
            try:
                deadline = time.monotonic() + 30  # a guard
                while not stop.wait(0.05) and time.monotonic() < deadline:
                    yield b"tick\n"
            finally:
                closed.append(1)

        return ticks()

    srv = live_server(app, threads=2)
    streams = [connect(srv.port) for _ in range(8)]
    try:
        for sock in streams:
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        fresh_requests_succeed(srv.port, 5)
        for sock in streams:  # every stream still flows
            assert b"tick" in sock.recv(65536)
    finally:
        stop.set()
        for sock in streams:
            sock.close()
    assert wait_for(lambda: len(closed) == 8), f"{len(closed)} of 8 stream iterables closed"


def test_connection_churn_does_not_stop_others(live_server: Any, state: dict[str, Any]) -> None:
    """Clients that connect and leave at once, with a FIN or a reset, 200 of each."""
    srv = live_server(make_app(state))
    for number in range(400):
        sock = connect(srv.port)
        if number % 2:
            reset(sock)
        else:
            sock.close()
    fresh_requests_succeed(srv.port, 5)


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
