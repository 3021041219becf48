"""Requests per second and p99 latency over loopback, one server at a time.

Run ``python -m benchmarks.server`` (``--help`` for options).  Each server
runs the scenario-2 app (``GET /zoos/123/animals/456`` -> JSON, from the
restkit adapter unless ``--app`` names another) in a subprocess on a free
port of 127.0.0.1, and is loaded with ``wrk -t1 -c8 -d10s --latency`` when
wrk is on ``PATH``, otherwise with a small Python keep-alive client (which
is itself the bottleneck: compare its figures with each other only).

The servers:

* ``restkit``: :class:`restkit.server.Server` (what ``restkit.serve`` runs),
  access log off;
* ``wsgiref``: :func:`wsgiref.simple_server.make_server`, one request at a time;
* ``wsgiref-threading``: the same server class with
  :class:`socketserver.ThreadingMixIn` (a thread per connection);
* ``waitress``: ``waitress.create_server(app)``, its defaults (4 threads);
* ``gunicorn``: one ``gthread`` worker with 8 threads, the shape of the
  restkit server (one process, a thread per connection, keep-alive).

``--streams N`` keeps N long-lived streaming responses open on the restkit
server during its run and reports how many chunks each received, to show
that streams and short requests are served side by side.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

SERVERS = ("restkit", "wsgiref", "wsgiref-threading", "waitress", "gunicorn")
PATH = "/zoos/123/animals/456"
STREAM_PATH = "/bench/stream"
STREAM_INTERVAL = 0.1  # seconds between chunks of a stream
STREAM_LIMIT = 600  # chunks: a stream ends by itself after a minute at most


# --- the app and the servers (run in the subprocess) ---------------------------


def make_bench_app(adapter: str = "restkit") -> Callable[..., Iterable[bytes]]:
    """The app every server runs; the restkit one also streams at ``STREAM_PATH``."""
    from .adapters import load

    app = load(adapter).make_app(10)
    if adapter == "restkit":

        def stream(request: Any) -> Iterator[bytes]:
            for number in range(STREAM_LIMIT):
                yield b"tick %d\n" % number
                time.sleep(STREAM_INTERVAL)

        app.add_route(STREAM_PATH, stream, produces=None)
    return app  # type: ignore[no-any-return]


def run_server(kind: str, port: int, adapter: str) -> None:
    """Serve the bench app with server ``kind`` until SIGTERM."""
    app = make_bench_app(adapter)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if kind == "restkit":
        from restkit.server import make_server

        server = make_server("127.0.0.1", port, app, access_log=False)
        print("ready", flush=True)
        server.serve_forever()
    elif kind in ("wsgiref", "wsgiref-threading"):
        import socketserver
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server as wsgiref_server

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

        class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
            daemon_threads = True

        server_class = ThreadingWSGIServer if kind == "wsgiref-threading" else WSGIServer
        httpd = wsgiref_server("127.0.0.1", port, app, server_class=server_class, handler_class=QuietHandler)
        print("ready", flush=True)
        httpd.serve_forever()
    elif kind == "waitress":
        import logging

        import waitress

        # With 8 connections on 4 threads waitress warns "Task queue depth is
        # N" for every queued request; logging that is not what we measure.
        logging.getLogger("waitress").setLevel(logging.ERROR)
        waitress_server = waitress.create_server(app, host="127.0.0.1", port=port)
        print("ready", flush=True)
        waitress_server.run()
    else:
        raise SystemExit(f"unknown server {kind!r}")


def server_command(kind: str, port: int, adapter: str) -> list[str]:
    """The command that starts server ``kind`` on ``port``."""
    if kind == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
            "--workers", "1", "--threads", "8", "--log-level", "warning",
            f"benchmarks.server:make_bench_app({adapter!r})",
        ]
    return [sys.executable, "-m", "benchmarks.server", "--serve", kind, "--port", str(port), "--app", adapter]


def server_available(kind: str) -> str | None:
    """None if server ``kind`` can run here, else why not."""
    module = {"waitress": "waitress", "gunicorn": "gunicorn"}.get(kind)
    if module is None:
        return None
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install '.[bench]')"
    return None


# --- load generation (run in this process) -------------------------------------


@dataclass
class Result:
    server: str
    requests_per_second: float
    p99_ms: float
    errors: str = ""
    note: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Wait until ``GET PATH`` answers 200.

    Raises:
        RuntimeError: the server exited or did not answer in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", PATH)
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not answer in time")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(port: int, seconds: float, connections: int, prefix: list[str] | None = None) -> tuple[float, float, str]:
    """``(requests/s, p99 ms, errors)`` from one wrk run (``prefix``: e.g. ``taskset -c 1``)."""
    command = [*(prefix or []), 
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s",
        f"http://127.0.0.1:{port}{PATH}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if done.returncode != 0 or not rate or not p99:
        raise RuntimeError(f"wrk failed: {done.stdout}{done.stderr}")
    errors = re.search(r"Socket errors:.*|Non-2xx or 3xx responses:.*", out)
    return float(rate[1]), float(p99[1]) * _UNITS[p99[2]], errors[0].strip() if errors else ""


def run_python_client(port: int, seconds: float, connections: int) -> tuple[float, float, str]:
    """Like :func:`run_wrk`, with ``connections`` threads of keep-alive ``http.client``."""
    deadline = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections

    def load(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection.request("GET", PATH)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    failures[slot] += 1
            except (OSError, http.client.HTTPException):
                failures[slot] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                continue
            latencies[slot].append(time.perf_counter() - started)
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=load, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.monotonic() - started
    every = sorted(x for slot in latencies for x in slot)
    if not every:
        raise RuntimeError("no request succeeded")
    p99 = every[min(len(every) - 1, int(len(every) * 0.99))] * 1000
    errors = f"{sum(failures)} failed requests" if sum(failures) else ""
    return len(every) / elapsed, p99, errors


class Streams:
    """``count`` clients each reading a long-lived stream, counting chunks."""

    def __init__(self, port: int, count: int) -> None:
        self.counts = [0] * count
        self._socks: list[socket.socket] = []
        self._threads = []
        for slot in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(f"GET {STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            self._socks.append(sock)
            thread = threading.Thread(target=self._read, args=(slot, sock), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, slot: int, sock: socket.socket) -> None:
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                self.counts[slot] += data.count(b"tick ")
        except OSError:
            return

    def snapshot(self) -> list[int]:
        return list(self.counts)

    def close(self) -> None:
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(5)


def bench_server(kind: str, adapter: str, seconds: float, connections: int, streams: int, pin: bool = False) -> Result:
    """Start server ``kind``, load it, stop it; with ``pin``, the server on CPU 0 and wrk on CPU 1."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    # The server's output goes to a file: a pipe nobody reads fills up and
    # stalls a server that logs.
    log = tempfile.TemporaryFile()
    server_prefix, client_prefix = (["taskset", "-c", "0"], ["taskset", "-c", "1"]) if pin else ([], [])
    process = subprocess.Popen(server_prefix + server_command(kind, port, adapter), stdout=log, stderr=log, env=env)
    open_streams: Streams | None = None
    try:
        try:
            wait_ready(port, process)
        except RuntimeError as exc:
            log.seek(0)
            raise RuntimeError(f"{kind}: {exc}\n{log.read()[-2000:].decode(errors='replace')}") from None
        note = ""
        if streams and kind == "restkit" and adapter == "restkit":
            open_streams = Streams(port, streams)
            time.sleep(0.5)
            before = open_streams.snapshot()
        if shutil.which("wrk"):
            rate, p99, errors = run_wrk(port, seconds, connections, client_prefix)
        else:
            rate, p99, errors = run_python_client(port, seconds, connections)
        if open_streams is not None:
            after = open_streams.snapshot()
            got = [a - b for a, b in zip(after, before)]
            expected = seconds / STREAM_INTERVAL
            note = f"{streams} streams open meanwhile, chunks received each: {got} (about {expected:.0f} expected)"
        return Result(kind, rate, p99, errors, note)
    finally:
        if open_streams is not None:
            open_streams.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def _median(runs: list[Result]) -> Result:
    """The run with the median rate, its p99 replaced by the median p99 of all runs."""
    ranked = sorted(runs, key=lambda r: r.requests_per_second)
    middle = ranked[len(ranked) // 2]
    p99 = statistics.median(r.p99_ms for r in runs)
    notes = "; ".join(r.note for r in runs if r.note)
    return Result(middle.server, middle.requests_per_second, p99, middle.errors, notes)


def print_results(results: list[Result], tool: str, rounds: int = 1) -> None:
    if rounds > 1:
        print(f"(median of {rounds} rounds; each round loads every server in turn)")
    print(f"| server ({tool}) | req/s | p99 latency | restkit / this |")
    print("|---|---|---|---|")
    ours = next((r.requests_per_second for r in results if r.server == "restkit"), None)
    for r in results:
        ratio = f"{ours / r.requests_per_second:.2f}x" if ours else "-"
        errors = f" ({r.errors})" if r.errors else ""
        print(f"| {r.server} | {r.requests_per_second:,.0f}{errors} | {r.p99_ms:.2f} ms | {ratio} |")
    for r in results:
        if r.note:
            print(f"{r.server}: {r.note}")
    by_name = {r.server: r for r in results}
    if "restkit" in by_name:
        ours = by_name["restkit"]
        print("targets:")
        if "wsgiref-threading" in by_name:
            ratio = ours.requests_per_second / by_name["wsgiref-threading"].requests_per_second
            print(f"  restkit >= 2x wsgiref with ThreadingMixIn: {'met' if ratio >= 2 else 'NOT met'} ({ratio:.2f}x)")
        if "waitress" in by_name:
            ratio = ours.requests_per_second / by_name["waitress"].requests_per_second
            print(f"  restkit >= 0.8x waitress: {'met' if ratio >= 0.8 else 'NOT met'} ({ratio:.2f}x)")
        print(f"  restkit p99 < 10 ms: {'met' if ours.p99_ms < 10 else 'NOT met'} ({ours.p99_ms:.2f} ms)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--quick", action="store_true", help="2-second runs: checks it works")
    parser.add_argument("--servers", nargs="*", default=list(SERVERS), choices=SERVERS)
    parser.add_argument("--app", default="restkit", help="adapter whose app the servers run (default restkit)")
    parser.add_argument("--streams", type=int, default=0, help="long-lived streams kept open during the restkit run")
    parser.add_argument("--rounds", type=int, default=1, help="load every server this many times, in turn (median)")
    parser.add_argument("--pin", action="store_true", help="run each server on CPU 0 and wrk on CPU 1 (taskset)")
    parser.add_argument("--serve", choices=[s for s in SERVERS if s != "gunicorn"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_server(args.serve, args.port, args.app)
        return 0
    seconds = 2.0 if args.quick else args.seconds
    if args.pin and not (shutil.which("taskset") and shutil.which("wrk") and (os.cpu_count() or 1) >= 2):
        parser.error("--pin needs taskset, wrk and 2 CPUs")
    tool = f"wrk -t1 -c{args.connections} -d{seconds:.0f}s" if shutil.which("wrk") else "Python client"
    if args.pin:
        tool += ", server on CPU 0, wrk on CPU 1"
    print(f"# restkit server benchmark: GET {PATH}, {tool}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    servers = []
    for kind in args.servers:
        why = server_available(kind)
        if why:
            print(f"(skipped {kind}: {why})")
        else:
            servers.append(kind)
    rounds: dict[str, list[Result]] = {kind: [] for kind in servers}
    for number in range(1 if args.quick else args.rounds):
        for kind in servers:
            print(f"  round {number + 1}: loading {kind} ...", file=sys.stderr, flush=True)
            rounds[kind].append(bench_server(kind, args.app, seconds, args.connections, args.streams, args.pin))
    print()
    print_results([_median(runs) for runs in rounds.values()], tool, len(next(iter(rounds.values()), [])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
