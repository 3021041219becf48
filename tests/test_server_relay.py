"""The loop runs quick requests in its own thread, and moves to another when one holds it (restkit.server.relay)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from restkit.server.relay import Relay
from tests.http_client import ResponseReader

TIMEOUT = 10.0


def thread_app(gate: threading.Event, names: list[str]) -> Callable[..., Iterable[bytes]]:
    """An app that records which thread served each request; ``/slow`` waits for ``gate``."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        names.append(threading.current_thread().name)
        if environ["PATH_INFO"] == "/slow":
            gate.wait(TIMEOUT)
        body = environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def get(port: int, path: str, sock: socket.socket | None = None) -> tuple[int, bytes]:
    own = sock is None
    sock = sock or socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        response = ResponseReader(sock).read()
        return response.status, response.body
    finally:
        if own:
            sock.close()


def test_quick_requests_run_in_the_loops_own_thread(live_server: Any) -> None:
    names: list[str] = []
    srv = live_server(thread_app(threading.Event(), names))
    srv.server._relay.patience = 5.0  # a busy test machine must not look like a slow app
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as sock:
        for index in range(20):
            assert get(srv.port, f"/quick/{index}", sock) == (200, f"/quick/{index}".encode())
    assert all(name.startswith("restkit-loop-") for name in names), names
    assert srv.server._relay.takeovers == 0
    assert not srv.server._pool._threads, "no worker thread was needed"


def test_a_slow_request_moves_the_loop_and_others_are_served_meanwhile(live_server: Any) -> None:
    gate, names = threading.Event(), []
    srv = live_server(thread_app(gate, names))
    relay = srv.server._relay
    slow_answer: list[tuple[int, bytes]] = []
    slow = threading.Thread(target=lambda: slow_answer.append(get(srv.port, "/slow")))
    slow.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not names and time.monotonic() < deadline:  # /slow has begun
            time.sleep(0.005)
        # while /slow holds the thread that was the loop, another thread runs the loop
        for index in range(5):
            assert get(srv.port, f"/quick/{index}") == (200, f"/quick/{index}".encode())
        assert relay.takeovers == 1
        assert not slow_answer, "the slow request was answered before its gate opened"
    finally:
        gate.set()
        slow.join(TIMEOUT)
    assert slow_answer == [(200, b"/slow")]
    # after a take-over the next requests go to the worker pool for a while
    assert any(name.startswith("restkit-worker-") for name in names[1:]), names


def test_the_loop_comes_back_inline_after_its_cooldown(live_server: Any) -> None:
    gate, names = threading.Event(), []
    gate.set()
    srv = live_server(thread_app(gate, names))
    relay = srv.server._relay
    relay.pool_turns = 3  # as after a take-over
    for index in range(6):
        assert get(srv.port, f"/q/{index}")[0] == 200
    assert [name.split("-")[1] for name in names] == ["worker"] * 3 + ["loop"] * 3, names


def test_thousands_of_pipelined_requests_in_one_send_are_all_answered(live_server: Any) -> None:
    names: list[str] = []
    srv = live_server(thread_app(threading.Event(), names))
    count = 3000  # each taken by the loop itself: they must not nest one call per request
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"".join(f"GET /p/{index} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for index in range(count)))
        reader = ResponseReader(sock)
        for index in range(count):
            response = reader.read()
            assert (response.status, response.body) == (200, f"/p/{index}".encode())


# -- the relay by itself ------------------------------------------------------------------------


def test_a_job_that_ends_in_time_keeps_the_loop() -> None:
    started: list[str] = []
    relay = Relay(lambda: started.append(threading.current_thread().name), patience=5.0)
    assert relay.run_inline(lambda: None) is True
    assert started == [] and relay.takeovers == 0 and relay.pool_turns == 0


def test_a_stream_hands_the_loop_over_at_once() -> None:
    loops = threading.Event()
    relay = Relay(loops.set, patience=60.0)
    seen: list[bool] = []

    def stream() -> None:
        seen.append(relay.inline_here())
        relay.hand_over()
        seen.append(relay.inline_here())
        assert loops.wait(TIMEOUT), "no thread took the loop over"

    assert relay.run_inline(stream) is False
    assert seen == [True, False]
    assert relay.takeovers == 1 and relay.pool_turns == 0  # a stream is no sign of a slow app
    relay.join(TIMEOUT)


def test_the_watchdog_moves_the_loop_from_a_job_that_holds_it() -> None:
    finished = threading.Event()
    loops = threading.Event()
    relay = Relay(loops.set, patience=0.02, cooldown=7)
    watchdog = threading.Thread(target=relay.watch, args=(finished,))
    watchdog.start()
    try:
        assert relay.run_inline(lambda: loops.wait(TIMEOUT)) is False
        assert relay.takeovers == 1 and relay.pool_turns == 7
        assert relay.run_inline(lambda: None) is True  # the next quick one keeps it
    finally:
        finished.set()
        watchdog.join(TIMEOUT)
        relay.join(TIMEOUT)


def test_a_job_that_fails_is_logged_and_the_loop_stays(caplog: Any) -> None:
    relay = Relay(lambda: None, patience=5.0)

    def fail() -> None:
        raise RuntimeError("boom")

    assert relay.run_inline(fail) is True
    assert "unexpected error serving a request" in caplog.text


def test_a_stream_to_a_slow_reader_is_resumed_in_the_pool_until_its_end(live_server: Any) -> None:
    """A stream the loop's thread began (then handed the loop over) blocks on a slow client and comes back whole.

    The stream's thread hands the connection back when the client is behind;
    the loop writes the rest, then a pool worker pulls the next items.  (A
    hand-back that never reached the pool once left such a viewer with the
    first socket-buffer's worth of the stream and nothing after.)
    """
    chunk, count = b"x" * 65536, 160  # 10 MiB: more than loopback's buffers hold even at their largest

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (chunk for _ in range(count))  # no length: chunked (HTTP/1.1) or to the close (HTTP/1.0)

    srv = live_server(app)
    for version in ("HTTP/1.1", "HTTP/1.0"):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # a slow link's buffers
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1460)  # (and a send buffer sized for them)
            sock.settimeout(TIMEOUT)
            sock.connect(("127.0.0.1", srv.port))
            sock.sendall(f"GET /stream {version}\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            received = bytearray()
            while data := sock.recv(65536):
                received += data
                if len(received) < (1 << 20):
                    time.sleep(0.005)  # slower than the app at first: the server's buffers fill
        head, _, body = bytes(received).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head  # (a server names its own version)
        if version == "HTTP/1.1":
            assert b"chunked" in head.lower() and body.endswith(b"0\r\n\r\n")
            assert body.count(chunk) == count
        else:
            assert body == chunk * count
    assert srv.server._relay.takeovers >= 2  # each stream moved the loop (it began in the loop's thread)
    assert get(srv.port, "/after")[0] == 200  # and the server still answers
