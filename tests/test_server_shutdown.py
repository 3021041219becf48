"""Graceful stop of restkit.server: in-flight work finishes, streams end or are cut, nothing is left behind.

In process: ``shutdown()`` (blocking) and ``begin_shutdown()`` (non-blocking)
with a slow request and a stream in flight, an app's ``on_shutdown`` hook,
``environ["restkit.shutdown"]``, new connections refused, idle ones closed,
the cut at the end of the grace period (a chunked stream then lacks its
final 0-chunk, as h11 sees it) and no ``restkit-*`` thread afterwards.
Through ``python -m restkit``: SIGTERM lets an in-flight response finish,
and a second signal during the grace period stops at once; both exit 0.

The deadlines are failure guards only; nothing here measures a duration.
"""

from __future__ import annotations

import json
import signal
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from restkit import App, Request
from restkit.server import Server, make_server
from tests.conftest import free_port
from tests.wire import (
    TIMEOUT, connect, finish, parse_response, read_response, read_until_close, restkit_threads, start_cli,
    wait_for, wait_until_listening,
)


class Running:
    """A server whose ``serve_forever`` runs in a thread; the test decides how it stops."""

    def __init__(self, app: Any, **options: Any) -> None:
        options.setdefault("access_log", False)
        self.threads_before = restkit_threads()
        self.server: Server = make_server("127.0.0.1", 0, app, **options)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="test-serve-forever", daemon=True)
        self.thread.start()
        self.closed = False

    def shutdown_in_background(self) -> threading.Thread:
        """Call the blocking ``shutdown()`` in a thread of its own."""
        stopper = threading.Thread(target=self.server.shutdown, name="test-shutdown", daemon=True)
        stopper.start()
        return stopper

    def close(self) -> None:
        """Stop for good (idempotent): shutdown, server_close, serve_forever returned."""
        if self.closed:
            return
        self.closed = True
        if self.thread.is_alive():
            self.shutdown_in_background().join(30)
        self.server.server_close()
        self.thread.join(TIMEOUT)

    def leftover_threads(self) -> set[threading.Thread]:
        return restkit_threads() - self.threads_before


@pytest.fixture
def running() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(app: Any, **options: Any) -> Running:
        server = Running(app, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def refused(port: int) -> bool:
    """True if a new connection to ``port`` is refused (the listener is closed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def read_until(sock: socket.socket, marker: bytes, count: int = 1) -> bytes:
    """Read until ``marker`` was received ``count`` times."""
    data = b""
    while data.count(marker) < count:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {marker!r}: {data[:300]!r}"
        data += chunk
    return data


# -- in process -------------------------------------------------------------------------------------------


def test_graceful_stop_finishes_a_slow_request_and_a_stream_ended_by_an_on_shutdown_hook(
    running: Callable[..., Running]
) -> None:
    seen: dict[str, Any] = {}
    slow_started, release, hook_called = threading.Event(), threading.Event(), threading.Event()
    hook_calls: list[str] = []
    app = App()

    @app.on_shutdown
    def end_streams() -> None:
        hook_calls.append(threading.current_thread().name)
        hook_called.set()

    @app.get("/hello")
    def hello(request: Request) -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/slow")
    def slow(request: Request) -> dict[str, str]:
        seen["environ"] = request.environ
        slow_started.set()
        release.wait(TIMEOUT)
        return {"slow": "done", "pad": "x" * 100_000}

    @app.get("/stream", produces=None)
    def stream(request: Request) -> Iterator[bytes]:
        def chunks() -> Iterator[bytes]:
            yield b"tick\n"
            deadline = time.monotonic() + 30  # a guard: the hook ends it long before
            while not hook_called.wait(0.05) and time.monotonic() < deadline:
                yield b"tick\n"
            yield b"bye\n"

        return chunks()

    srv = running(app, grace=10.0)
    with connect(srv.port) as streamer, connect(srv.port) as idle, connect(srv.port) as slowpoke:
        streamer.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        streamed = read_until(streamer, b"tick\n")
        idle.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(idle).status == 200  # and now idle on keep-alive
        slowpoke.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        assert slow_started.wait(TIMEOUT)
        stopping = seen["environ"]["restkit.shutdown"]
        assert isinstance(stopping, threading.Event) and not stopping.is_set()

        stopper = srv.shutdown_in_background()
        assert wait_for(stopping.is_set), "environ['restkit.shutdown'] was not set"
        assert hook_called.wait(TIMEOUT), "the app's on_shutdown hook was not called"
        assert read_until_close(idle) == b"", "the idle connection was not closed"
        assert wait_for(lambda: refused(srv.port)), "new connections are still accepted"

        release.set()
        slow_answer = parse_response(read_until_close(slowpoke))
        stream_answer = parse_response(streamed + read_until_close(streamer))

    assert slow_answer.complete and slow_answer.status == 200
    assert slow_answer.headers["connection"] == "close"
    assert json.loads(slow_answer.body) == {"slow": "done", "pad": "x" * 100_000}
    assert stream_answer.complete and stream_answer.chunked, stream_answer.error  # the final 0-chunk came
    assert stream_answer.body.endswith(b"tick\nbye\n")
    stopper.join(30)
    assert not stopper.is_alive(), "shutdown() did not return once the work was done"
    assert not srv.thread.is_alive(), "serve_forever() did not return"
    srv.close()
    assert srv.leftover_threads() == set()
    assert len(hook_calls) == 1, f"on_shutdown hook called {len(hook_calls)} times"


def test_stream_that_ignores_the_stop_is_cut_at_the_end_of_grace(running: Callable[..., Running]) -> None:
    seen: dict[str, Any] = {}
    closed = threading.Event()

    def forever(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        seen["environ"] = environ
        start_response("200 OK", [("Content-Type", "text/plain")])

        def chunks() -> Iterator[bytes]:
            try:
                for _ in range(600):  # 30 s at most: a guard
                    yield b"tick\n"
                    time.sleep(0.05)
            finally:
                closed.set()

        return chunks()

    srv = running(forever, grace=2.0)
    with connect(srv.port) as streamer:
        streamer.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        before = read_until(streamer, b"tick\n")
        srv.server.begin_shutdown()  # returns at once; serve_forever drains
        assert wait_for(seen["environ"]["restkit.shutdown"].is_set)
        assert wait_for(lambda: refused(srv.port)), "new connections are still accepted"
        after = read_until_close(streamer)  # returns only once the server cut the stream
    srv.thread.join(30)
    assert not srv.thread.is_alive(), "serve_forever() did not return after the grace period"
    assert b"tick" in after, "the stream did not go on during the grace period"
    answer = parse_response(before + after)
    assert answer.status == 200 and answer.chunked
    assert not answer.complete, "a cut stream must not end with the final 0-chunk"
    assert "incomplete chunked read" in answer.error
    assert not (before + after).endswith(b"0\r\n\r\n")
    assert closed.wait(TIMEOUT), "the cut stream's iterable was not closed"
    srv.close()
    assert srv.leftover_threads() == set()


def test_raw_app_ends_its_stream_when_restkit_shutdown_is_set(running: Callable[..., Running]) -> None:
    seen: dict[str, Any] = {}

    def watcher(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        stopping = environ["restkit.shutdown"]
        seen["set at the start"] = stopping.is_set()
        start_response("200 OK", [("Content-Type", "text/plain")])

        def chunks() -> Iterator[bytes]:
            yield b"tick\n"
            deadline = time.monotonic() + 30
            while not stopping.wait(0.05) and time.monotonic() < deadline:
                yield b"tick\n"
            yield b"bye\n"

        return chunks()

    srv = running(watcher, grace=10.0)
    with connect(srv.port) as streamer:
        streamer.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        before = read_until(streamer, b"tick\n")
        stopper = srv.shutdown_in_background()
        answer = parse_response(before + read_until_close(streamer))
    assert seen["set at the start"] is False
    assert answer.complete, answer.error
    assert answer.body.endswith(b"bye\n")
    stopper.join(30)
    assert not stopper.is_alive()
    srv.close()
    assert srv.leftover_threads() == set()


def test_nothing_left_after_shutdown_and_server_close(running: Callable[..., Running]) -> None:
    app = App()
    app.add_route("/hello", lambda request: {"hello": "world"}, name="hello")
    srv = running(app)
    with connect(srv.port) as keep_alive:
        for _ in range(3):
            keep_alive.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(keep_alive).status == 200
        for _ in range(5):
            with connect(srv.port) as once:
                once.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                assert parse_response(read_until_close(once)).status == 200
        stopper = srv.shutdown_in_background()
        stopper.join(30)
        assert not stopper.is_alive(), "shutdown() with an idle keep-alive connection did not return"
        assert read_until_close(keep_alive) == b""
    srv.close()  # server_close(), serve_forever() having returned
    assert srv.leftover_threads() == set(), [t.name for t in srv.leftover_threads()]
    assert refused(srv.port)


# -- python -m restkit under signals ---------------------------------------------------------------------

APP_MODULE = textwrap.dedent(
    """
    import time
    from restkit import App

    app = App()

    @app.get("/slow")
    def slow(request):
        open("slow-started", "w").close()  # tells the test the request is in flight
        time.sleep(1.5)
        return {"slow": "done", "pad": "x" * 50000}

    @app.get("/forever", produces=None)
    def forever(request):
        def chunks():
            for _ in range(600):  # a minute at most: a guard
                yield b"tick\\n"
                time.sleep(0.1)
        return chunks()
    """
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "shutdown_app.py").write_text(APP_MODULE)
    return tmp_path


def test_sigterm_lets_the_in_flight_response_finish_and_exits_0(app_dir: Path) -> None:
    port = free_port()
    proc = start_cli(["shutdown_app:app", "--port", str(port), "--grace", "10"], app_dir)
    try:
        wait_until_listening(port, proc)
        with connect(port) as sock:
            sock.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            assert wait_for(lambda: (app_dir / "slow-started").exists()), "the request did not start"
            proc.send_signal(signal.SIGTERM)
            answer = parse_response(read_until_close(sock))
        status, stderr = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert answer.complete and answer.status == 200, answer
    assert answer.headers["connection"] == "close"
    assert json.loads(answer.body) == {"slow": "done", "pad": "x" * 50000}
    assert status == 0, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("first", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM-then-SIGINT", "SIGINT-then-SIGINT"])
def test_second_signal_during_grace_stops_at_once_and_exits_0(app_dir: Path, first: int) -> None:
    port = free_port()
    proc = start_cli(["shutdown_app:app", "--port", str(port), "--grace", "30"], app_dir)
    try:
        wait_until_listening(port, proc)
        with connect(port) as sock:
            sock.sendall(b"GET /forever HTTP/1.1\r\nHost: t\r\n\r\n")
            received = read_until(sock, b"tick\n")
            proc.send_signal(first)
            assert wait_for(lambda: refused(port)), "the graceful stop did not begin"
            received += read_until(sock, b"tick\n", 2)  # the stream goes on during the grace period
            proc.send_signal(signal.SIGINT)
            # far less than the 30 s of grace: the second signal cuts at once
            status, stderr = finish(proc, timeout=10)
            received += read_until_close(sock)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert status == 0, stderr
    assert "Traceback" not in stderr
    answer = parse_response(received)
    assert answer.status == 200 and not answer.complete
