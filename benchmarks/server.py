"""Requests per second and p99 latency over loopback, one server at a time.

Run ``python -m benchmarks.server`` (``--help`` for options).  Each server
runs the scenario-2 app (``GET /zoos/123/animals/456`` -> JSON, from the
restkit adapter unless ``--app`` names another) in a subprocess on a free
port of 127.0.0.1, and is loaded with ``wrk -t1 -c8 -d10s --latency`` when
wrk is on ``PATH``, otherwise with a small Python keep-alive client (which
is itself the bottleneck: compare its figures with each other only).

The servers:

* ``restkit``: ``python -m restkit benchmarks.server:bench_app_from_env()
  --no-access-log --workers N`` (:class:`restkit.server.Server` behind the
  command line; without ``--workers`` while the command line lacks it);
* ``wsgiref``: :func:`wsgiref.simple_server.make_server`, one request at a time;
* ``wsgiref-threading``: the same server class with
  :class:`socketserver.ThreadingMixIn` (a thread per connection);
* ``waitress``: ``waitress.create_server(app)``, its defaults (4 threads);
* ``gunicorn``: ``gthread`` workers (``-w N``) with 8 threads each, the
  shape of the restkit server (worker threads, keep-alive);
* ``cheroot``: ``cheroot.wsgi.Server`` (CherryPy's server) with its defaults
  (10 threads; idle keep-alive connections wait in a selector);
* ``granian``: ``granian --interface wsgi --workers N`` (a Rust HTTP server
  calling the WSGI app from its blocking threads), its other defaults.

``--workers N`` (default 1) is the number of processes of restkit, granian
and gunicorn; the other servers always run one.

The clients held open during a run are in :mod:`benchmarks.clients`.
``--streams N`` keeps N long-lived streaming responses open on the restkit
server during its run and reports how many chunks each received, to show
that streams and short requests are served side by side.

``--idle N`` opens N keep-alive connections to each server before its run
(each makes one request, then stays idle) and holds them during the run;
afterwards it reports how many the server kept open and how many still
answer a request, to show whether idle clients cost throughput or are
dropped.  Servers with an idle timeout or a connection limit get ones that
let them hold all N for the run (see :func:`bench_server`).

``--stalled N`` has N clients (4 KiB receive buffers) each ask for
``BIG_PATH`` (8 MiB) and never read; ``--slow-uploads N`` has N clients
each start a ``POST UPLOAD_PATH`` of ``Content-Length: 1000000`` and send
one byte a second.  Both are held during the run, and the notes say how
many of those connections the server still kept open afterwards.  With
``--compare-quiet`` every server is also loaded without them, in the same
round, and the targets compare restkit with and without.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import http.client
import os
import re
import resource
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

from .clients import (
    BIG_PATH, PATH, STREAM_INTERVAL, STREAM_PATH, UPLOAD_PATH, UPLOAD_SIZE, IdleConnections, SlowUploads,
    StalledReaders, Streams,
)

SERVERS = ("restkit", "wsgiref", "wsgiref-threading", "waitress", "gunicorn", "cheroot", "granian")
SUBPROCESS_ONLY = ("restkit", "gunicorn", "granian")  # started by their own command line, not by --serve
WORKER_SERVERS = ("restkit", "granian", "gunicorn")  # the ones --workers N applies to
STREAM_LIMIT = 600  # chunks: a stream ends by itself after a minute at most
BIG_SIZE = 8 << 20  # the answer at BIG_PATH


# --- the app and the servers (run in the subprocess) ---------------------------


def make_bench_app(adapter: str = "restkit") -> Callable[..., Iterable[bytes]]:
    """The app every server runs.

    The restkit one also streams at ``STREAM_PATH``, answers ``BIG_PATH``
    with 8 MiB (one bytes object, built once) and ``POST UPLOAD_PATH`` with
    the length of the body it read.
    """
    from .adapters import load

    app = load(adapter).make_app(10)
    if adapter == "restkit":

        def stream(request: Any) -> Iterator[bytes]:
            for number in range(STREAM_LIMIT):
                yield b"tick %d\n" % number
                time.sleep(STREAM_INTERVAL)

        big = b"x" * BIG_SIZE

        def big_answer(request: Any) -> bytes:
            return big

        def upload(request: Any) -> dict[str, int]:
            return {"length": len(request.body)}

        app.add_route(STREAM_PATH, stream, produces=None)
        app.add_route(BIG_PATH, big_answer, produces=None)
        app.add_route(UPLOAD_PATH, upload, methods=("POST",))
    return app  # type: ignore[no-any-return]


def bench_app_from_env() -> Callable[..., Iterable[bytes]]:
    """:func:`make_bench_app` for servers that take a factory without arguments (granian)."""
    return make_bench_app(os.environ.get("BENCH_APP_ADAPTER", "restkit"))


def run_server(kind: str, port: int, adapter: str, keepalive: float | None = None, limit: int | None = None) -> None:
    """Serve the bench app with server ``kind`` until SIGTERM.

    ``keepalive`` (an idle timeout) and ``limit`` (most connections) replace
    the server's defaults where it has such settings; ``--idle`` sets both.
    """
    app = make_bench_app(adapter)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if kind in ("wsgiref", "wsgiref-threading"):
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
        waitress_options = {"channel_timeout": int(keepalive)} if keepalive else {}
        if limit:
            waitress_options["connection_limit"] = limit  # its default, 100, refuses the rest
        waitress_server = waitress.create_server(app, host="127.0.0.1", port=port, **waitress_options)
        print("ready", flush=True)
        waitress_server.run()
    elif kind == "cheroot":
        from cheroot import wsgi

        cheroot_server = wsgi.Server(("127.0.0.1", port), app)
        if keepalive:
            cheroot_server.timeout = int(keepalive)  # how long an idle keep-alive connection is kept
        if limit:
            cheroot_server.keep_alive_conn_limit = limit  # its default, 10, closes the rest
        print("ready", flush=True)
        cheroot_server.safe_start()
    else:
        raise SystemExit(f"unknown server {kind!r}")


def server_command(
    kind: str, port: int, adapter: str, keepalive: float | None = None, limit: int | None = None, workers: int = 1
) -> list[str]:
    """The command that starts server ``kind`` on ``port``.

    ``keepalive`` is its idle timeout and ``limit`` its most connections, if
    it has such settings; ``workers`` its processes (restkit, gunicorn and
    granian; the others run one).
    """
    if kind == "restkit":
        # the adapter reaches the factory through BENCH_APP_ADAPTER (see bench_server)
        command = [
            sys.executable, "-m", "restkit", "benchmarks.server:bench_app_from_env()", "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log", "--log-level", "warning",
            *(["--keepalive-timeout", str(keepalive)] if keepalive else []),
            *(["--max-connections", str(limit)] if limit else []),
        ]
        # Until restkit's command line takes --workers, one worker is what it runs anyway.
        return command + (["--workers", str(workers)] if workers != 1 or restkit_takes_workers() else [])
    if kind == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
            "--workers", str(workers), "--threads", "8", "--log-level", "warning",
            *(["--keep-alive", str(int(keepalive))] if keepalive else []),
            f"benchmarks.server:make_bench_app({adapter!r})",
        ]
    if kind == "granian":
        # the adapter reaches the factory through BENCH_APP_ADAPTER (see bench_server)
        return [
            sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", str(workers), "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log", "--log-level", "warning", "--factory",
            "benchmarks.server:bench_app_from_env",
        ]  # granian keeps idle HTTP/1 connections open as long as the client does
    command = [sys.executable, "-m", "benchmarks.server", "--serve", kind, "--port", str(port), "--app", adapter]
    return command + (["--keepalive", str(keepalive)] if keepalive else []) + (["--limit", str(limit)] if limit else [])


def child_env(adapter: str) -> dict[str, str]:
    """The environment of a server: this checkout first on ``PYTHONPATH``, the adapter named."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    env["BENCH_APP_ADAPTER"] = adapter
    return env


@functools.lru_cache(maxsize=None)
def restkit_takes_workers() -> bool:
    """True if ``python -m restkit`` of this checkout has a ``--workers`` option."""
    done = subprocess.run(
        [sys.executable, "-m", "restkit", "--help"], capture_output=True, text=True, env=child_env("restkit"), timeout=60
    )
    return "--workers" in done.stdout


def server_available(kind: str) -> str | None:
    """None if server ``kind`` can run here, else why not."""
    module = {"waitress": "waitress", "gunicorn": "gunicorn", "cheroot": "cheroot", "granian": "granian"}.get(kind)
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


def raise_open_files(needed: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE to ``needed`` if the hard limit allows (servers inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@dataclass(frozen=True)
class Load:
    """What a server is loaded with, besides wrk."""

    seconds: float
    connections: int
    streams: int = 0  # long-lived streams on restkit
    pin: bool = False  # the server on CPU 0, wrk on CPU 1
    idle: int = 0  # idle keep-alive connections held open
    workers: int = 1  # processes of restkit, granian and gunicorn
    stalled: int = 0  # clients that ask for 8 MiB and never read
    slow_uploads: int = 0  # clients that upload one byte a second

    @property
    def hostile(self) -> bool:
        return bool(self.stalled or self.slow_uploads)

    def quiet(self) -> Load:
        """The same load without the stalled readers and slow uploads."""
        return dataclasses.replace(self, stalled=0, slow_uploads=0)


def bench_server(kind: str, adapter: str, load: Load) -> Result:
    """Start server ``kind``, load it, stop it; with ``load.pin``, the server on CPU 0 and wrk on CPU 1."""
    port = free_port()
    env = child_env(adapter)
    # The server's output goes to a file: a pipe nobody reads fills up and
    # stalls a server that logs.
    log = tempfile.TemporaryFile()
    server_prefix, client_prefix = (["taskset", "-c", "0"], ["taskset", "-c", "1"]) if load.pin else ([], [])
    # With idle connections, every server that has an idle timeout gets one
    # that outlasts the run, and one with a connection limit room for them all.
    idle = load.idle
    keepalive = load.seconds + 60 if idle else None
    extra = load.connections + load.streams + load.stalled + load.slow_uploads
    limit = idle + extra + 64 if idle else None
    workers = load.workers if kind in WORKER_SERVERS else 1
    command = server_command(kind, port, adapter, keepalive, limit, workers)
    process = subprocess.Popen(server_prefix + command, stdout=log, stderr=log, env=env)
    open_streams: Streams | None = None
    idle_connections: IdleConnections | None = None
    stalled: StalledReaders | None = None
    uploads: SlowUploads | None = None
    try:
        try:
            wait_ready(port, process)
        except RuntimeError as exc:
            log.seek(0)
            raise RuntimeError(f"{kind}: {exc}\n{log.read()[-2000:].decode(errors='replace')}") from None
        notes = []
        if idle:
            idle_connections = IdleConnections(port, idle)
        if load.stalled:
            stalled = StalledReaders(port, load.stalled)
        if load.slow_uploads:
            uploads = SlowUploads(port, load.slow_uploads)
        if load.streams and kind == "restkit" and adapter == "restkit":
            open_streams = Streams(port, load.streams)
        if open_streams is not None or load.hostile:
            time.sleep(0.5)  # the streams' first chunks, the stalled answers' first bytes
        before = open_streams.snapshot() if open_streams is not None else []
        if shutil.which("wrk"):
            rate, p99, errors = run_wrk(port, load.seconds, load.connections, client_prefix)
        else:
            rate, p99, errors = run_python_client(port, load.seconds, load.connections)
        if not rate and not errors:
            errors = "no request answered"
        if open_streams is not None:
            after = open_streams.snapshot()
            got = [a - b for a, b in zip(after, before)]
            expected = load.seconds / STREAM_INTERVAL
            notes.append(
                f"{load.streams} streams open meanwhile, chunks received each: {got} (about {expected:.0f} expected)"
            )
        if idle_connections is not None:
            opened = len(idle_connections.socks)
            still_open, answered = idle_connections.survivors()
            problem = f", opening stopped: {idle_connections.problem}" if idle_connections.problem else ""
            notes.append(f"idle connections: {opened} of {idle} opened{problem}; after the run {still_open} still "
                         f"open, {answered} answered a new request")
        if stalled is not None:
            notes.append(stalled.note())
        if uploads is not None:
            notes.append(uploads.note())
        return Result(kind, rate, p99, errors, "; ".join(notes))
    finally:
        for held in (open_streams, idle_connections, stalled, uploads):
            if held is not None:
                held.close()
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


def ratio_of(ours: Result | None, peer: Result | None) -> float | None:
    """``ours``'s req/s over ``peer``'s, None when either was not measured (or made none)."""
    if ours is None or peer is None or not ours.requests_per_second or not peer.requests_per_second:
        return None
    return ours.requests_per_second / peer.requests_per_second


def print_table(results: list[Result], tool: str) -> None:
    print(f"| server ({tool}) | req/s | p99 latency | restkit / this |")
    print("|---|---|---|---|")
    ours = next((r for r in results if r.server == "restkit"), None)
    for r in results:
        ratio = ratio_of(ours, r)
        shown = f"{ratio:.2f}x" if ratio is not None else "-"
        errors = f" ({r.errors})" if r.errors else ""
        print(f"| {r.server} | {r.requests_per_second:,.0f}{errors} | {r.p99_ms:.2f} ms | {shown} |")
    for r in results:
        if r.note:
            print(f"{r.server}: {r.note}")


def _verdict(value: float | None, met: bool, shown: str) -> str:
    return "not measured" if value is None else f"{'met' if met else 'NOT met'} ({shown})"


def print_results(
    results: list[Result], tool: str, rounds: int = 1, workers: int = 1,
    quiet: list[Result] | None = None, hostile: str = "",
) -> None:
    """The table, the ratios and the targets of issue 16.

    ``quiet``: the same servers loaded without ``hostile`` (the stalled
    readers and slow uploads), with ``--compare-quiet``.
    """
    if rounds > 1:
        print(f"(median of {rounds} rounds; each round loads every server in turn)")
    print_table(results, tool + (f", {hostile}" if hostile else ""))
    processes = f"{workers} worker{'s' if workers != 1 else ''}"
    print(f"workers: restkit --workers {workers}, granian --workers {workers}, gunicorn -w {workers}; "
          "the other servers run one process")
    by_name = {r.server: r for r in results}
    quiet_by_name = {r.server: r for r in quiet or []}
    if quiet is not None:
        print()
        print_table(quiet, f"{tool}, without {hostile}")
        print()
        print(f"| server | req/s without | req/s with {hostile} | with / without |")
        print("|---|---|---|---|")
        for r in results:
            ratio = ratio_of(r, quiet_by_name.get(r.server))
            shown = f"{ratio:.2f}x" if ratio is not None else "-"
            alone = quiet_by_name.get(r.server)
            print(f"| {r.server} | {alone.requests_per_second if alone else 0:,.0f} | "
                  f"{r.requests_per_second:,.0f} | {shown} |")
    ours = by_name.get("restkit")
    if ours is None:
        return
    ratios = [(name, by_name[name], ratio_of(ours, by_name[name])) for name in ("waitress", "granian") if name in by_name]
    if ratios:
        print("ratios in this run: " + "; ".join(
            f"restkit / {name} = " + (f"{ratio:.2f}x req/s" if ratio is not None else "- (nothing measured)")
            + f", p99 {ours.p99_ms:.2f} ms vs {peer.p99_ms:.2f} ms" for name, peer, ratio in ratios))
    print(f"targets (issue 16, restkit with {processes}):")
    granian = by_name.get("granian")
    if granian is not None:
        ratio = ratio_of(ours, granian)
        print(f"  restkit >= 0.6x granian (both {processes}): "
              + _verdict(ratio, ratio is not None and ratio >= 0.6, f"{ratio or 0:.2f}x"))
        p99_ratio = ours.p99_ms / granian.p99_ms if granian.p99_ms and granian.requests_per_second else None
        print("  restkit p99 <= 2x granian's p99: " + _verdict(
            p99_ratio, p99_ratio is not None and p99_ratio <= 2.0,
            f"{ours.p99_ms:.2f} ms vs {granian.p99_ms:.2f} ms, {p99_ratio or 0:.2f}x"))
    if "waitress" in by_name:
        ratio = ratio_of(ours, by_name["waitress"])
        print("  restkit >= 2x waitress (one process): "
              + _verdict(ratio, ratio is not None and ratio >= 2.0, f"{ratio or 0:.2f}x"))
    if quiet is not None:
        alone = quiet_by_name.get("restkit")
        ratio = ratio_of(ours, alone)
        print(f"  restkit with {hostile} within 10% of without (>= 0.9x): " + _verdict(
            ratio, ratio is not None and ratio >= 0.9,
            f"{ratio or 0:.2f}x: {ours.requests_per_second:,.0f} vs "
            f"{alone.requests_per_second if alone else 0:,.0f} req/s"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--quick", action="store_true", help="2-second runs: checks it works")
    parser.add_argument("--servers", nargs="*", default=list(SERVERS), choices=SERVERS)
    parser.add_argument("--app", default="restkit", help="adapter whose app the servers run (default restkit)")
    parser.add_argument("--streams", type=int, default=0, help="long-lived streams kept open during the restkit run")
    parser.add_argument("--rounds", type=int, default=1, help="load every server this many times, in turn (median)")
    parser.add_argument("--pin", action="store_true",
                        help="run each server on CPU 0 and wrk on CPU 1 (taskset; with --workers 1 only)")
    parser.add_argument("--idle", type=int, default=0, metavar="N",
                        help="N idle keep-alive connections held open on each server during its run")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes of restkit, granian and gunicorn (default 1; the others run one)")
    parser.add_argument("--stalled", type=int, default=0, metavar="N",
                        help=f"N clients ask for {BIG_PATH} (8 MiB, 4 KiB receive buffers) and never read")
    parser.add_argument("--slow-uploads", type=int, default=0, metavar="N",
                        help=f"N clients POST {UPLOAD_PATH} with Content-Length: {UPLOAD_SIZE}, one byte a second")
    parser.add_argument("--compare-quiet", action="store_true",
                        help="with --stalled or --slow-uploads: also load every server without them")
    parser.add_argument("--serve", choices=[s for s in SERVERS if s not in SUBPROCESS_ONLY], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--keepalive", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_server(args.serve, args.port, args.app, args.keepalive, args.limit)
        return 0
    seconds = 2.0 if args.quick else args.seconds
    for option in ("idle", "workers", "stalled", "slow_uploads", "streams"):
        if getattr(args, option) < (1 if option == "workers" else 0):
            parser.error(f"--{option.replace('_', '-')} must be >= {1 if option == 'workers' else 0}")
    if (args.stalled or args.slow_uploads) and args.app != "restkit":
        parser.error(f"--stalled and --slow-uploads need the restkit adapter's {BIG_PATH} and {UPLOAD_PATH}")
    if args.compare_quiet and not (args.stalled or args.slow_uploads):
        parser.error("--compare-quiet compares runs with and without --stalled or --slow-uploads: give one")
    pin = args.pin and args.workers == 1
    if args.pin and not pin:
        print(f"(--pin ignored: pinning one server to CPU 0 is only meaningful with one worker; "
              f"with --workers {args.workers} nothing is pinned)")
    if pin and not (shutil.which("taskset") and shutil.which("wrk") and (os.cpu_count() or 1) >= 2):
        parser.error("--pin needs taskset, wrk and 2 CPUs")
    held = args.idle + args.stalled + args.slow_uploads
    if held:
        raise_open_files(held + args.connections + args.streams + 256)
    load = Load(seconds, args.connections, args.streams, pin, args.idle, args.workers, args.stalled, args.slow_uploads)
    tool = f"wrk -t1 -c{args.connections} -d{seconds:.0f}s" if shutil.which("wrk") else "Python client"
    if pin:
        tool += ", server on CPU 0, wrk on CPU 1"
    if args.workers != 1:
        tool += f", {args.workers} workers"
    if args.idle:
        tool += f", {args.idle} idle connections"
    hostile = " and ".join(filter(None, [
        f"{args.stalled} stalled readers" if args.stalled else "",
        f"{args.slow_uploads} slow uploads" if args.slow_uploads else "",
    ]))
    print(f"# restkit server benchmark: GET {PATH}, {tool}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    servers = []
    failures: list[str] = []
    for kind in args.servers:
        why = server_available(kind)
        if why:
            print(f"(skipped {kind}: {why})")
        elif kind == "restkit" and args.workers != 1 and not restkit_takes_workers():
            failures.append(f"(failed restkit: --workers {args.workers} needs the --workers option of "
                            "python -m restkit, which this checkout's command line does not have yet)")
        else:
            servers.append(kind)
    variants = [(load, False)] + ([(load.quiet(), True)] if args.compare_quiet else [])
    rounds: dict[tuple[str, bool], list[Result]] = {(kind, q): [] for kind in servers for _, q in variants}
    for number in range(1 if args.quick else args.rounds):
        for kind in servers:
            for variant, is_quiet in variants:
                label = " (without them)" if is_quiet else ""
                print(f"  round {number + 1}: loading {kind}{label} ...", file=sys.stderr, flush=True)
                try:
                    rounds[kind, is_quiet].append(bench_server(kind, args.app, variant))
                except RuntimeError as exc:  # one server failing (wrk found no answer) is a finding, not a crash
                    failures.append(f"(failed {kind}{label} in round {number + 1}: {str(exc).strip()[:500]})")
    print()
    for failure in failures:
        print(failure)
    measured = [_median(runs) for (kind, is_quiet), runs in rounds.items() if runs and not is_quiet]
    quiet = [_median(runs) for (kind, is_quiet), runs in rounds.items() if runs and is_quiet]
    count = max((len(runs) for runs in rounds.values()), default=0)
    print_results(measured, tool, count, args.workers, quiet if args.compare_quiet else None, hostile)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
