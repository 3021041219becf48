"""One owner per connection: the loop alone changes a connection's state.

The review of the last round found a window: a worker wrote a connection's
state and its deadline in two steps while the loop's sweep read both, so a
408 could land on a socket a worker still owned after a complete pipelined
request.  Here the window is widened on purpose (a server whose workers
dawdle exactly where that gap was, with deadlines far shorter than the
dawdling), and a soak runs pipelined keep-alive clients against tiny timers.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from restkit.server import Server
from restkit.server.connection import Connection
from restkit.server.exchange import Exchange
from restkit.http11 import RequestHead
from tests.http_client import ResponseReader

pytest.importorskip("h11")

SOAK_SECONDS = float(os.environ.get("RESTKIT_SOAK_SECONDS", "30"))


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class DawdlingServer(Server):
    """Workers pause where the old two-step hand-back was: after a response, before the next request."""

    pause = 0.6

    def _after(self, conn: Connection, exchange: Exchange, blocked: bool) -> None:
        time.sleep(self.pause)  # longer than `timeout` and `keepalive_timeout`, and than two sweeps
        super()._after(conn, exchange, blocked)

    def _next_request(self, conn: Connection) -> RequestHead | None:
        time.sleep(self.pause)
        return super()._next_request(conn)


def run(server: Server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def errors_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_dawdling_worker_never_gets_a_408_after_a_complete_request(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    server = DawdlingServer(("127.0.0.1", 0), hello, timeout=0.1, keepalive_timeout=0.05, access_log=True, grace=1.0)
    thread = run(server)
    try:
        with socket.create_connection(server.server_address[:2], timeout=10) as sock:
            sock.sendall(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\nGET /two HTTP/1.1\r\nHost: t\r\n\r\n")
            reader = ResponseReader(sock)
            first, second = reader.read(), reader.read()
        assert (first.status, first.body, second.status, second.body) == (200, b"/one", 200, b"/two")
        with socket.create_connection(server.server_address[:2], timeout=10) as sock:  # the server still serves
            sock.sendall(b"GET /three HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert ResponseReader(sock).read().body == b"/three"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    lines = [r.getMessage() for r in caplog.records if r.name == "restkit.access"]
    assert not [line for line in lines if '" 408 ' in line], lines
    assert not errors_in(caplog)


def test_soak_pipelined_keep_alive_clients_with_tiny_timers(caplog: pytest.LogCaptureFixture) -> None:
    """Clients pipeline, pause across the keep-alive timeout, and reconnect; no traceback, no lost answer."""
    caplog.set_level(logging.WARNING)
    server = Server(("127.0.0.1", 0), hello, timeout=1.0, keepalive_timeout=0.2, access_log=False, grace=1.0)
    thread = run(server)
    stop = time.monotonic() + SOAK_SECONDS
    tallies = {"answers": 0, "reconnects": 0, "wrong": 0}  # wrong: an answer missing or not ours, mid-batch
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        sock: socket.socket | None = None
        while time.monotonic() < stop:
            if sock is None:
                sock = socket.create_connection(server.server_address[:2], timeout=5)
            paths = [f"/{seed}/{rng.randrange(10**6)}" for _ in range(rng.randint(1, 4))]
            try:
                sock.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % p.encode() for p in paths))
                reader = ResponseReader(sock)
                got = [reader.read() for _ in paths]
                if got[0].status is None:
                    raise ConnectionError("closed before an answer began")
            except (ConnectionError, OSError):
                # The server closed an idle connection as our requests went out: the keep-alive
                # race of RFC 9112 section 9.3.1.  Retry on a new connection.
                sock.close()
                sock = None
                with lock:
                    tallies["reconnects"] += 1
                continue
            with lock:
                tallies["answers"] += len(got)
                tallies["wrong"] += sum(1 for p, r in zip(paths, got) if (r.status, r.body) != (200, p.encode()))
            pause = rng.choice((0.0, 0.0, 0.0, 0.05, 0.25))  # sometimes longer than the keep-alive timeout
            time.sleep(pause)
        if sock is not None:
            sock.close()

    clients = [threading.Thread(target=client, args=(seed,)) for seed in range(8)]
    for each in clients:
        each.start()
    for each in clients:
        each.join(SOAK_SECONDS + 30)
    server.shutdown()
    server.server_close()
    thread.join(10)
    print(f"\nsoak {SOAK_SECONDS:g} s: {tallies}")
    assert tallies["answers"] > 100 and tallies["wrong"] == 0
    assert not errors_in(caplog)
