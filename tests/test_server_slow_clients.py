"""restkit.server against clients that read or send slowly: none of them holds a worker thread.

What this file asks of the server
---------------------------------
* A response the client does not take passes to the event loop: 64 clients
  that ask for 8 MiB and never read leave every worker free, so fresh
  requests are answered promptly, and the response object is shared, not
  copied per client (the server's RSS barely grows).
* A client that takes nothing of its response for ``timeout`` seconds is
  closed within twice the timeout of its last progress, and a client that
  trickles (one byte every half second) does not push that deadline back.
* A request body is read by the event loop before the app runs: 64 clients
  dripping a body one byte a second and 64 clients that announce
  ``Expect: 100-continue`` and never send the body hold no worker; the loop
  answers ``100 Continue`` itself; a 20 MB body (or a 5 MB chunked one)
  reaches the app whole, and one over ``max_request_body`` gets a JSON 413.
* After each of these the server still answers, and nothing in ``restkit``
  logged a traceback.

How the close of a connection is seen
-------------------------------------
A client that never reads cannot see a FIN: it waits behind the data the
client's kernel holds, with a receive window of zero.  So a watcher thread
reads the kernel's TCP table (``/proc/net/tcp``; this process's network
namespace) every 0.1 s: for each stalled client, the last time its bytes in
flight changed (the server's send queue, the client's receive queue), and
the moment the server's end of the connection left ESTABLISHED (the server
closed it: FIN_WAIT1 and later, or gone after a reset).  Each close is then
confirmed from the client side: draining the socket ends in EOF or a reset
before the whole answer arrived.

Figures (latencies, RSS) are printed (``pytest -s``) and recorded with
``record_property``.  Every socket has a timeout and every wait a deadline;
the only time bounds asserted are the generous ones of the contract ("each
fresh request within 5 s", "closed within 2 x timeout plus the sweep").
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest

from tests.http_client import ResponseReader, serialize_request
from tests.wire import get, raise_open_files, rss_mib, wait_for

MIB = 1024 * 1024
BIG = 8 * MIB
BIG_BODY = bytes(range(256)) * (BIG // 256)  # built once: every /big answer is this one object
STALLED = 64  # clients that never read, or never finish their body
FRESH = 50  # fresh requests that must be served meanwhile
FRESH_CONCURRENCY = 8
PROMPT = 5.0  # seconds: "served promptly", per request
RCVBUF = 4096  # SO_RCVBUF of a client that never reads
SLOW_TIMEOUT = 3.0  # the server's timeout where closes are checked
CLOSE_SLACK = 1.5  # seconds beyond 2 x timeout: the server's sweep, and this test's 0.1 s sampling
RSS_GROWTH_LIMIT_MIB = 256.0  # 64 copies of the answer would be 512 MiB
STALL_QUIET = 0.5  # seconds without progress after which a reader counts as stalled
CLIENT_TIMEOUT = 10.0


# -- the app ---------------------------------------------------------------------------------------------


def read_body(environ: dict[str, Any]) -> tuple[int, str]:
    """Read ``wsgi.input`` to its end (Content-Length, else until b""): its size and sha256."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    remaining = int(length) if length else None
    digest, size = hashlib.sha256(), 0
    while remaining is None or remaining > 0:
        piece = stream.read(65536 if remaining is None else min(65536, remaining))
        if not piece:
            break
        digest.update(piece)
        size += len(piece)
        if remaining is not None:
            remaining -= len(piece)
    return size, digest.hexdigest()


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``/big`` is 8 MiB, ``POST /upload`` answers the body's size and sha256, anything else "ok"."""
    path = environ["PATH_INFO"]
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(BIG))])
        return [BIG_BODY]
    if path == "/upload":
        size, sha256 = read_body(environ)
        answer = json.dumps({"size": size, "sha256": sha256}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


app = validator(_app)


# -- servers over HTTP and HTTPS ----------------------------------------------------------------------------


@dataclass
class Certificates:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    trustme = pytest.importorskip("trustme", reason="trustme is a test extra: pip install '.[test]'")
    folder = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    issued = authority.issue_cert("localhost", "127.0.0.1")
    paths = Certificates(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    authority.cert_pem.write_to_path(str(paths.ca))
    issued.private_key_pem.write_to_path(str(paths.key))
    for number, pem in enumerate(issued.cert_chain_pems):
        pem.write_to_path(str(paths.cert), append=number > 0)
    return paths


@dataclass
class Target:
    """A running server as its clients see it."""

    port: int
    context: ssl.SSLContext | None  # the client's TLS context; None for plain HTTP

    def connect(self, rcvbuf: int | None = None, timeout: float = CLIENT_TIMEOUT) -> socket.socket:
        """A client connection (TLS handshake done), with ``SO_RCVBUF`` set before connecting."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect(("127.0.0.1", self.port))
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname="127.0.0.1")
        except BaseException:
            sock.close()
            raise
        return sock

    def get(self, path: str = "/", timeout: float = PROMPT) -> tuple[int, bytes]:
        return get(self.port, path, timeout=timeout, context=self.context)


@pytest.fixture(params=["http", "https"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start(live_server: Any, scheme: str, request: pytest.FixtureRequest) -> Callable[..., Target]:
    """``start(**server_options)``: the app on a live server, over ``scheme``."""

    def starter(**options: Any) -> Target:
        context = None
        if scheme == "https":
            paths: Certificates = request.getfixturevalue("certs")
            options.update(certfile=str(paths.cert), keyfile=str(paths.key))
            context = ssl.create_default_context(cafile=str(paths.ca))
        srv = live_server(app, **options)
        return Target(srv.port, context)

    return starter


@pytest.fixture
def start_http(live_server: Any) -> Callable[..., Target]:
    """``start_http(**server_options)``: the app on a live plain-HTTP server."""
    return lambda **options: Target(live_server(app, **options).port, None)


@pytest.fixture(autouse=True)
def enough_descriptors() -> None:
    problem = raise_open_files(4 * STALLED + FRESH + 256)
    if problem:
        pytest.skip(problem)


# -- the kernel's view of the connections -----------------------------------------------------------------

TCP_ESTABLISHED = 0x01


def tcp_table() -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    """IPv4 TCP sockets of this network namespace: (local port, remote port) -> [(state, tx_queue, rx_queue)]."""
    table: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    with open("/proc/net/tcp") as lines:
        next(lines)
        for line in lines:
            fields = line.split()
            tx_queue, rx_queue = fields[4].split(":")
            key = (int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16))
            table.setdefault(key, []).append((int(fields[3], 16), int(tx_queue, 16), int(rx_queue, 16)))
    return table


class TcpWatch:
    """Samples the kernel's TCP table every 0.1 s for the connections of ``client_ports`` to ``server_port``.

    ``last_progress[port]``: when the bytes in flight last changed (the
    server's send queue or the client's receive queue); ``moved[port]``: the
    most seen in flight; ``closed_at[port]``: first sample where the server's
    end was no longer ESTABLISHED (the server closed or reset it).
    """

    def __init__(self, server_port: int, client_ports: list[int]) -> None:
        now = time.monotonic()
        self.server_port = server_port
        self.ports = list(client_ports)
        self.last_progress = dict.fromkeys(self.ports, now)
        self.moved = dict.fromkeys(self.ports, 0)
        self.closed_at: dict[int, float] = {}
        self._seen: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-tcp-watch", daemon=True)

    def __enter__(self) -> TcpWatch:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.sample()

    def sample(self) -> None:
        table = tcp_table()
        now = time.monotonic()
        with self._lock:
            for port in self.ports:
                if port in self.closed_at:
                    continue
                server_end = [entry for entry in table.get((self.server_port, port), []) if entry[0] == TCP_ESTABLISHED]
                if not server_end:
                    self.closed_at[port] = now
                    continue
                client_rx = max((entry[2] for entry in table.get((port, self.server_port), [])), default=0)
                marker = (server_end[0][1], client_rx)
                if marker != self._seen.get(port):
                    self._seen[port] = marker
                    self.last_progress[port] = now
                    self.moved[port] = max(self.moved[port], sum(marker))

    def stalled(self, min_moved: int = 4096) -> list[int]:
        """Ports whose answer is flowing (``min_moved`` bytes in flight) and has not moved for STALL_QUIET."""
        now = time.monotonic()
        with self._lock:
            return [port for port in self.ports if port in self.closed_at
                    or (self.moved[port] >= min_moved and now - self.last_progress[port] >= STALL_QUIET)]

    def all_closed(self) -> bool:
        with self._lock:
            return len(self.closed_at) == len(self.ports)

    def snapshot(self) -> tuple[dict[int, float], dict[int, float]]:
        with self._lock:
            return dict(self.last_progress), dict(self.closed_at)


@pytest.fixture(autouse=True)
def kernel_table() -> None:
    try:
        tcp_table()
    except OSError as exc:
        pytest.skip(f"no /proc/net/tcp to watch connections with: {exc}")


def drain(sock: socket.socket, timeout: float = PROMPT) -> tuple[bytes, str]:
    """Read until the server closes: what came, and how it ended ("eof", "reset" or "open")."""
    sock.settimeout(timeout)
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(262144)
        except (ConnectionResetError, BrokenPipeError):
            return bytes(data), "reset"
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return bytes(data), "eof"
        except TimeoutError:
            return bytes(data), "open"
        except ssl.SSLError as exc:
            return bytes(data), f"reset ({exc})"
        if not chunk:
            return bytes(data), "eof"
        data += chunk


def body_length(raw: bytes) -> int:
    """Bytes of body in ``raw`` (a response cut anywhere); -1 if its head never ended."""
    end = raw.find(b"\r\n\r\n")
    return -1 if end < 0 else len(raw) - end - 4


def assert_closed_early(sock: socket.socket, what: str, read_before: bytes = b"") -> None:
    """From the client side: the connection ends (EOF or reset) before the whole 8 MiB answer came."""
    received, ending = drain(sock)
    received = read_before + received
    assert ending != "open", f"{what}: still open after draining {len(received)} bytes"
    assert received[:9] in (b"", b"HTTP/1.1 "), f"{what}: not an HTTP response: {received[:100]!r}"
    assert body_length(received) < BIG, f"{what}: the whole answer came, so the server never cut it"


# -- figures ------------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))]


def fresh_requests(target: Target, count: int = FRESH) -> list[tuple[float, str]]:
    """``count`` GETs of "/", each on a fresh connection, 8 at a time: (seconds, "" or what went wrong).

    After the first failure the rest are not sent (a starved server would
    otherwise cost ``count`` timeouts).
    """
    failed = threading.Event()

    def one(number: int) -> tuple[float, str]:
        if failed.is_set():
            return math.inf, "not sent: an earlier request failed"
        started = time.monotonic()
        try:
            status, body = target.get("/", timeout=PROMPT)
            problem = "" if (status, body) == (200, b"ok") else f"answered {status} {body[:100]!r}"
        except OSError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - started
        if not problem and elapsed > PROMPT:
            problem = f"took {elapsed:.1f} s"
        if problem:
            failed.set()
        return elapsed, problem

    with ThreadPoolExecutor(FRESH_CONCURRENCY, thread_name_prefix="test-fresh") as pool:
        return list(pool.map(one, range(count)))


def report_fresh(results: list[tuple[float, str]], name: str, record_property: Any) -> None:
    """Print and record p50/p99, then assert every fresh request was served promptly."""
    served = [elapsed for elapsed, problem in results if not problem]
    problems = [f"request {number + 1}: {problem}" for number, (_, problem) in enumerate(results) if problem]
    if served:
        p50, p99 = percentile(served, 0.50), percentile(served, 0.99)
        print(f"\n{name}: {len(served)}/{len(results)} fresh requests served, p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
        record_property(f"{name}_fresh_p50_ms", round(p50 * 1000, 1))
        record_property(f"{name}_fresh_p99_ms", round(p99 * 1000, 1))
    assert not problems, f"fresh requests not served within {PROMPT} s each: " + "; ".join(problems[:5])


def report_rss(name: str, before: float, after: float, record_property: Any) -> float:
    print(f"\n{name}: RSS {before:.1f} MiB before, {after:.1f} MiB with the readers open ({after - before:+.1f} MiB)")
    record_property(f"{name}_rss_mib_before", round(before, 1))
    record_property(f"{name}_rss_mib_with_readers", round(after, 1))
    return after - before


def assert_still_serves_cleanly(target: Target, caplog: pytest.LogCaptureFixture) -> None:
    """The server answers a final GET, and no ``restkit`` logger recorded a traceback at ERROR."""
    assert target.get("/", timeout=PROMPT) == (200, b"ok")
    tracebacks = [record for record in caplog.records if record.name.startswith("restkit")
                  and record.levelno >= logging.ERROR and record.exc_info]
    assert not tracebacks, "restkit logged tracebacks: " + "; ".join(r.getMessage() for r in tracebacks[:3])
    assert "Traceback (most recent call last)" not in caplog.text


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    """Client sockets a test opens: all closed after it."""
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        try:
            sock.close()
        except OSError:
            pass


# -- 1. slow readers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [None, SLOW_TIMEOUT], ids=["default-timeout", "timeout-3"])
def test_clients_that_never_read_hold_no_worker(
    start: Callable[..., Target], scheme: str, timeout: float | None, clients: list[socket.socket],
    caplog: pytest.LogCaptureFixture, record_property: Any,
) -> None:
    """64 clients with a 4 KiB receive buffer ask for 8 MiB and never read: 50 fresh requests are served promptly.

    With ``timeout=3`` each reader is closed within 2 x 3 s (plus the sweep)
    of its last progress.  Over plain HTTP the server's RSS grows by far less
    than 64 copies of the answer (TLS encrypts a copy per client, so there
    the RSS is only reported).
    """
    options = {} if timeout is None else {"timeout": timeout}
    target = start(**options)
    name = f"slow_readers_{scheme}_{'default' if timeout is None else 'timeout3'}"
    assert target.get("/big", timeout=30)[1] == BIG_BODY  # warm up: the whole path once
    rss_before = rss_mib()
    for _ in range(STALLED):
        sock = target.connect(rcvbuf=RCVBUF)
        clients.append(sock)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
    ports = [sock.getsockname()[1] for sock in clients]
    with TcpWatch(target.port, ports) as watch:
        wait_for(lambda: len(watch.stalled()) == STALLED, timeout=10)
        stalled = len(watch.stalled())
        rss_with_readers = rss_mib()
        growth = report_rss(name, rss_before, rss_with_readers, record_property)

        report_fresh(fresh_requests(target), name, record_property)
        assert stalled == STALLED, f"only {stalled} of {STALLED} readers got their answer flowing within 10 s"
        if scheme == "http":
            assert growth < RSS_GROWTH_LIMIT_MIB, f"RSS grew by {growth:.0f} MiB with {STALLED} readers of one 8 MiB answer"
        if timeout is None:
            assert_still_serves_cleanly(target, caplog)
            return

        limit = 2 * timeout + CLOSE_SLACK
        give_up = time.monotonic() + 30  # a reader that keeps moving must still end some time
        while not watch.all_closed() and time.monotonic() < min(give_up, max(watch.snapshot()[0].values()) + limit + 1.0):
            time.sleep(0.1)
        last_progress, closed_at = watch.snapshot()
    delays = [closed_at[port] - last_progress[port] for port in ports if port in closed_at]
    if delays:
        print(f"{name}: closed {percentile(delays, 0.5):.2f} s (median) and {max(delays):.2f} s (latest) after their last progress")
        record_property(f"{name}_close_after_stall_max_s", round(max(delays), 2))
    never, late = STALLED - len(delays), sum(1 for delay in delays if delay > limit)
    assert not never and not late, (f"{never} readers were never closed and {late} were closed later than {limit} s "
                                    f"after their last progress (timeout={timeout})")
    for number, sock in enumerate(clients):
        assert_closed_early(sock, f"reader {number + 1}")
    assert_still_serves_cleanly(target, caplog)


# -- 2. a trickle reader -----------------------------------------------------------------------------------


def test_trickle_reader_does_not_push_the_deadline_back(
    start: Callable[..., Target], clients: list[socket.socket], caplog: pytest.LogCaptureFixture, record_property: Any,
) -> None:
    """A client that reads one byte of the 8 MiB answer every 0.5 s is closed within 2 x timeout of its first byte."""
    target = start(timeout=SLOW_TIMEOUT)
    sock = target.connect(rcvbuf=RCVBUF)
    clients.append(sock)
    sock.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
    first = sock.recv(1)
    started = time.monotonic()
    assert first == b"H", f"no answer: {first!r}"
    limit = 2 * SLOW_TIMEOUT + CLOSE_SLACK
    taken = bytearray(first)
    with TcpWatch(target.port, [sock.getsockname()[1]]) as watch:
        while not watch.all_closed() and time.monotonic() - started < limit + 1.0:
            time.sleep(0.5)
            taken += sock.recv(1)
        _, closed_at = watch.snapshot()
    assert closed_at, f"still open {limit + 1.0:.1f} s after the first byte, having read {len(taken)} bytes one at a time"
    delay = next(iter(closed_at.values())) - started
    print(f"\ntrickle reader: closed {delay:.2f} s after its first byte, having read {len(taken)} bytes")
    record_property("trickle_closed_after_s", round(delay, 2))
    assert delay <= limit, f"closed {delay:.1f} s after the first byte; at most {limit} s with timeout={SLOW_TIMEOUT}"
    assert_closed_early(sock, "the trickle reader", bytes(taken))
    assert_still_serves_cleanly(target, caplog)


def read_at_rate(sock: socket.socket, per_step: int, step: float, limit: float) -> tuple[int, bool]:
    """Read ``per_step`` bytes every ``step`` seconds for at most ``limit`` s: (bytes read, ended by the server)."""
    got, started = 0, time.monotonic()
    while time.monotonic() - started < limit:
        wanted = per_step
        while wanted:
            try:
                data = sock.recv(min(wanted, 65536))
            except (ConnectionResetError, BrokenPipeError):
                return got, True
            if not data:
                return got, True
            got += len(data)
            wanted -= len(data)
            if got >= BIG:
                return got, False
        time.sleep(step)
    return got, False


def test_a_reader_that_keeps_up_with_the_minimum_rate_is_never_cut(start_http: Callable[..., Target]) -> None:
    """The write deadline is a rate, not a total: 8 MiB read at 640 KiB/s takes 4x the timeout and completes."""
    target = start_http(timeout=1.0, min_send_rate=64 * 1024)
    with target.connect(rcvbuf=RCVBUF) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        got, cut = read_at_rate(sock, per_step=64 * 1024, step=0.1, limit=60)
    assert not cut and got >= BIG, f"cut after {got} bytes while reading at about 640 KiB/s"


def test_a_reader_below_the_minimum_rate_is_cut(start_http: Callable[..., Target]) -> None:
    """16 KiB/s against a minimum of 256 KiB/s: cut after about the timeout, long before the end."""
    target = start_http(timeout=1.0, min_send_rate=256 * 1024)
    with target.connect(rcvbuf=RCVBUF) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        started = time.monotonic()
        got, cut = read_at_rate(sock, per_step=8 * 1024, step=0.5, limit=60)
    assert cut and got < BIG, f"read {got} bytes at 16 KiB/s and was never cut"
    print(f"\nslow reader (16 KiB/s, minimum 256 KiB/s, timeout 1 s): cut after {time.monotonic() - started:.1f} s")


# -- 3. slow request bodies ------------------------------------------------------------------------------------


class Dripper:
    """One background thread that sends one byte a second on each of its sockets until stopped."""

    def __init__(self, socks: list[socket.socket]) -> None:
        self.socks = socks
        self.failed = 0  # sockets whose send failed (the server closed them)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-dripper", daemon=True)

    def __enter__(self) -> Dripper:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        alive = list(self.socks)
        while not self._stop.wait(1.0):
            for sock in list(alive):
                try:
                    sock.send(b"x")
                except OSError:
                    alive.remove(sock)
                    self.failed += 1


def read_head(sock: socket.socket, timeout: float = PROMPT) -> bytes:
    """Bytes up to and including the first blank line (one response head), within ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def test_slow_and_withheld_bodies_hold_no_worker(
    start_http: Callable[..., Target], clients: list[socket.socket], caplog: pytest.LogCaptureFixture,
    record_property: Any,
) -> None:
    """64 bodies dripped a byte a second and 64 bodies withheld behind ``Expect: 100-continue``: others are served.

    The event loop reads bodies before the app runs, so it also answers
    ``100 Continue``: each of the 64 withholding clients gets it.
    """
    target = start_http()
    drippers: list[socket.socket] = []
    for _ in range(STALLED):
        sock = target.connect()
        clients.append(sock)
        drippers.append(sock)
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 1000000\r\n\r\n")
    withholders: list[socket.socket] = []
    for _ in range(STALLED):
        sock = target.connect()
        clients.append(sock)
        withholders.append(sock)
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
    with Dripper(drippers) as dripper:
        time.sleep(0.5)  # the server has seen every head
        report_fresh(fresh_requests(target), "slow_bodies", record_property)
        heads = []
        for sock in withholders:
            try:
                heads.append(read_head(sock))
            except TimeoutError:
                heads.append(b"(nothing within 5 s)")
        assert dripper.failed == 0, f"{dripper.failed} clients sending their body were cut off (default timeout 30 s)"
    missing = [head for head in heads if not head.startswith(b"HTTP/1.1 100 Continue\r\n")]
    assert not missing, f"{len(missing)} of {STALLED} clients awaiting 100 Continue got instead: {missing[0][:80]!r}"
    assert_still_serves_cleanly(target, caplog)


@pytest.mark.parametrize("size", [1000, 3 * MIB], ids=["1000-bytes", "3-MiB"])
def test_expect_100_continue_then_the_body_reaches_the_app(
    start_http: Callable[..., Target], size: int, clients: list[socket.socket], caplog: pytest.LogCaptureFixture,
) -> None:
    """``Expect: 100-continue``: ``100 Continue`` first, then, after the body, the app's answer about the whole body."""
    target = start_http()
    body = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    sock = target.connect()
    clients.append(sock)
    sock.sendall(f"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                 f"Content-Length: {size}\r\nExpect: 100-continue\r\n\r\n".encode())
    interim = read_head(sock)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", f"not a bare 100 Continue: {interim[:200]!r}"
    sock.sendall(body)
    response = ResponseReader(sock).read("POST")
    assert response.status == 200 and response.complete, response.describe()
    assert response.json() == {"size": size, "sha256": hashlib.sha256(body).hexdigest()}
    assert_still_serves_cleanly(target, caplog)


# -- 4. large bodies are spooled -------------------------------------------------------------------------------


def exchange(target: Target, request: bytes, method: str = "POST") -> Any:
    """Send ``request`` from a thread at full speed while reading the one answer; the answer."""
    sock = target.connect(timeout=30)
    sent: list[BaseException] = []

    def send() -> None:
        try:
            sock.sendall(request)
        except OSError as exc:  # the server may answer early and stop reading
            sent.append(exc)

    sender = threading.Thread(target=send, name="test-sender", daemon=True)
    sender.start()
    try:
        response = ResponseReader(sock).read(method)
    finally:
        sender.join(timeout=30)
        sock.close()
    return response


def test_twenty_megabytes_at_full_speed_reach_the_app_whole(
    start_http: Callable[..., Target], caplog: pytest.LogCaptureFixture,
) -> None:
    target = start_http()
    body = bytes(range(256)) * (20_000_000 // 256) + b"end"
    request = serialize_request("POST", "/upload", [("Host", "t"), ("Content-Type", "application/octet-stream")], body)
    response = exchange(target, request)
    assert response.status == 200 and response.complete, response.describe()
    assert response.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert_still_serves_cleanly(target, caplog)


def test_five_megabytes_chunked_reach_the_app_whole(start_http: Callable[..., Target], caplog: pytest.LogCaptureFixture) -> None:
    target = start_http()
    body = bytes(range(251)) * (5_000_000 // 251)
    chunks = [body[start : start + 65536] for start in range(0, len(body), 65536)]
    request = serialize_request("POST", "/upload", [("Host", "t"), ("Content-Type", "application/octet-stream")],
                                chunks=chunks)
    response = exchange(target, request)
    assert response.status == 200 and response.complete, response.describe()
    assert response.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert_still_serves_cleanly(target, caplog)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit_gets_413_json_and_the_next_client_is_served(
    start_http: Callable[..., Target], chunked: bool, caplog: pytest.LogCaptureFixture,
) -> None:
    target = start_http(max_request_body=MIB)
    body = b"x" * (2 * MIB)
    headers = [("Host", "t"), ("Content-Type", "application/octet-stream")]
    if chunked:
        request = serialize_request("POST", "/upload", headers, chunks=[body[i : i + 65536] for i in range(0, len(body), 65536)])
    else:
        request = serialize_request("POST", "/upload", headers, body)
    response = exchange(target, request)
    assert response.status == 413, response.describe()
    error = response.json()
    assert isinstance(error, dict) and isinstance(error.get("error"), str) and error["error"], response.describe()
    assert_still_serves_cleanly(target, caplog)
