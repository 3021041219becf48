"""Instructions per request of the server's own code, without sockets, counted by valgrind.

Run ``python -m benchmarks.server_path`` (or ``python -m
benchmarks.instructions --server-path``); ``--loop`` counts the whole loop
instead, on loopback sockets (:func:`serve_loop`).  What one keep-alive request
costs in :mod:`restkit.server`, with the app and the kernel taken out:

* a fake socket whose ``recv`` returns the next request's bytes and whose
  ``send``/``sendmsg`` take everything at once;
* per request, what the loop and a worker do for it: ``recv_nowait``,
  ``conn.on(BYTES)``, ``conn.buffer += data``, ``conn.take_request``,
  ``conn.on(READY)``, ``Exchange(server, conn, head).run()`` on a bare WSGI
  app answering a small JSON body, run inline by the loop's
  :class:`restkit.server.relay.Relay` as the loop does (where a checkout
  has one), ``exchange.log()`` with the access log
  off (the real :meth:`restkit.server.Server.log_access`), and
  ``conn.on(KEEP_ALIVE)``: IDLE -> RECEIVING -> WORKING -> IDLE, the
  transitions of :mod:`restkit.server.state`;
* not counted: the selector, the worker pool's queue and the wake-up of
  the loop, which are system calls and thread switches more than code.

The child runs this file as a script with the checkout named by ``--root``
first on ``sys.path``, so ``--root`` counts another checkout's
``restkit/server/`` (any that has the package) with this harness.  As in
:mod:`benchmarks.instructions`, the requests run twice under ``valgrind
--tool=callgrind``, ``few`` and ``few + many`` times, and the difference
divided by ``many`` is one request.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_TOTAL = re.compile(r"Collected : (\d+)")

#: What wrk sends for scenario 2 (``GET /zoos/123/animals/456``).
REQUEST = b"GET /zoos/123/animals/456 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
BODY = b'{"zoo_id": 123, "animal_id": 456}'
WARM_UP = 200  # requests before the counted ones: lazy imports, the Date header, caches


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The app: as little as a WSGI app can do, so that what is counted is the server."""
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]


class RequestSocket:
    """A socket that always has the next request ready and takes every byte sent."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.sent = 0  # bytes the server sent (checked at the end)

    def recv(self, size: int) -> bytes:
        return self.request

    def send(self, data: Any) -> int:
        self.sent += len(data)
        return len(data)

    def sendmsg(self, buffers: Iterable[Any]) -> int:
        total = sum(len(buffer) for buffer in buffers)
        self.sent += total
        return total

    def fileno(self) -> int:
        return -1


def serve_requests(count: int) -> None:
    """Serve ``count`` keep-alive requests on one connection, the way the loop and a worker do."""
    from restkit.http11 import Limits
    from restkit.server.clock import DateHeader
    from restkit.server.connection import Connection, Timeouts
    from restkit.server.exchange import Exchange, Outcome
    from restkit.server.loop import Server
    from restkit.server.sockets import recv_nowait
    from restkit.server.state import ConnectionState, Event

    class FakeServer:
        """What an Exchange asks of its server, with Server's own access-log method."""

        log_access = Server.log_access

        def __init__(self) -> None:
            self.app = bare_app
            self.access_log = False
            self.base_environ: dict[str, Any] = {
                "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SCRIPT_NAME": "", "wsgi.version": (1, 0),
                "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
                "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.input_terminated": True,
                "SERVER_SOFTWARE": "restkit",
            }
            self.stopping = threading.Event()
            self.base_environ["restkit.shutdown"] = self.stopping
            self.extra_headers: list[tuple[str, str]] = []
            self.date = DateHeader()
            self.timeout = 30.0
            self.min_send_rate = 8192.0
            self.timeouts = Timeouts(30.0, 5.0, 2.0)
            self.limits = Limits()

        def detach_worker(self) -> None:
            return None

    server = FakeServer()
    sock = RequestSocket(REQUEST)
    conn = Connection(sock, ("127.0.0.1", 50000), ConnectionState.IDLE, 0.0)  # type: ignore[arg-type]
    limits, timeouts = server.limits, server.timeouts
    bytes_event, ready, keep_alive = Event.BYTES, Event.READY, Event.KEEP_ALIVE
    try:
        from restkit.server.relay import Relay
    except ImportError:  # a checkout from before the loop ran requests itself
        def run_inline(job: Callable[[], None]) -> bool:
            job()
            return True
    else:
        run_inline = Relay(lambda: None).run_inline
    exchange = None
    # the server's own keys go into the head's environ (checkouts from before: merged by the Exchange)
    base = [server.base_environ] if "base" in inspect.signature(Connection.take_request).parameters else []

    def work() -> None:
        nonlocal exchange
        exchange = conn.exchange = Exchange(server, conn, head)  # type: ignore[arg-type]
        exchange.run()
        exchange.log()

    for _ in range(count):  # checked after the loop, so that the checks are not counted
        data = recv_nowait(sock)  # type: ignore[arg-type]
        conn.on(bytes_event, 0.0, timeouts)
        conn.buffer += data  # type: ignore[arg-type]
        head = conn.take_request(limits, False, *base)
        conn.on(ready, 0.0, timeouts)
        run_inline(work)
        conn.exchange = None
        conn.on(keep_alive, 0.0, timeouts)
    if exchange is not None:
        problem = exchange.code != 200 or exchange.outcome is not Outcome.KEEP or conn.buffer or conn.unsent
        if problem or sock.sent < count * (len(BODY) + 100):
            raise RuntimeError(f"the server path did not answer 200 with keep-alive: {exchange.code}, {sock.sent} bytes")


def serve_loop(count: int, clients: int = 8) -> None:
    """Serve ``count`` requests through a real :class:`Server`'s loop, on loopback sockets, in this one thread.

    ``clients`` keep-alive connections each send a request, then this
    thread turns the loop (``Server._turn``: the selector, ``recv``, the
    parse, the app run inline, ``send``, the connection taken back) until
    every answer has come, and again.  What the socket-free path leaves out
    is counted here, except the kernel's share of the system calls (valgrind
    counts user-space instructions) and the watchdog's thread, which is not
    started.  The clients' own ``send`` and ``recv`` are counted too (a few
    hundred instructions).
    """
    import socket

    from restkit.server.loop import Server

    server = Server(("127.0.0.1", 0), bare_app, access_log=False)
    socks = [socket.create_connection(server.socket.getsockname()) for _ in range(clients)]
    try:
        while len(server._connections) < clients:
            server._turn()
        for _ in range(max(1, count // clients)):
            for sock in socks:
                sock.send(REQUEST)
            answered = turns = 0
            while answered < clients:
                turns += 1
                if turns > 1_000:  # a round takes a few turns; a lost answer would take forever
                    raise RuntimeError(f"the loop answered {answered} of {clients} requests")
                server._turn()
                for sock in socks:
                    try:
                        answered += bool(sock.recv(65536, socket.MSG_DONTWAIT))
                    except BlockingIOError:
                        pass
    finally:
        for sock in socks:
            sock.close()
        server.server_close()


def count(valgrind: str, root: Path, calls: int, loop: bool = False) -> int:
    """Instructions of a whole interpreter run serving ``WARM_UP + calls`` requests."""
    done = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, str(Path(__file__).resolve()),
         "--child", str(calls), "--root", str(root.resolve()), *(["--loop"] if loop else [])],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    found = _TOTAL.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"server path: valgrind failed: {done.stderr[-800:]}")
    return int(found[1])


def per_request(valgrind: str, root: Path, few: int, many: int, loop: bool = False) -> int:
    """Instructions of one request: the difference of two runs, divided by ``many``."""
    return (count(valgrind, root, few + many, loop) - count(valgrind, root, few, loop)) // many


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server_path", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="requests counted (default 3000)")
    parser.add_argument("--few", type=int, default=500, help="requests of the shorter run (default 500)")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="the checkout whose restkit/server/ is counted (default: this one)")
    parser.add_argument("--loop", action="store_true",
                        help="count the whole loop instead, on loopback sockets (see serve_loop)")
    parser.add_argument("--child", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        serve = serve_loop if args.loop else serve_requests
        serve(WARM_UP)
        serve(args.child)
        return 0
    if not (args.root / "restkit" / "server").is_dir():
        parser.error(f"{args.root} has no restkit/server/ package to count")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    print(f"# instructions per request of restkit's server (valgrind callgrind, no sockets), "
          f"restkit from {args.root.resolve()}")
    what = "the whole loop on loopback sockets, 8 clients" if args.loop else "server path"
    print(f"{what}, GET /zoos/123/animals/456 -> 200 JSON (bare WSGI app): "
          f"{per_request(valgrind, args.root, args.few, args.calls, args.loop):,} instructions per request")
    return 0


if __name__ == "__main__":
    if "--child" in sys.argv:
        # Run as a script: the counted checkout comes first, not this file's directory.
        sys.path[0] = str(Path(sys.argv[sys.argv.index("--root") + 1]))
    sys.exit(main())
