"""An HTTP/1.1 WSGI server from the standard library alone.

Theory of operation
-------------------
One thread runs an event loop (:mod:`selectors`) that owns every socket
while it costs nothing to wait on: a new connection in its TLS handshake,
an idle keep-alive connection, and a connection whose request is still
arriving.  The loop reads what arrives into the connection's buffer and
parses it (:mod:`restkit.http11`); only a request that has fully arrived
(head, and a body of up to 256 KiB) is handed to a worker thread, so slow
and idle clients hold no thread.  A larger body, or one the client holds
back until ``100 Continue``, is read by the worker from the socket as the
app asks for it.

A worker runs the app and writes the response itself, framing it
(:mod:`restkit.framing`): the app's ``Content-Length`` is enforced, a body
of unknown length is sent chunked, and nothing follows HEAD, 204 or 304.
A response that is a stream (unknown length) takes its thread out of the
pool, which starts another, so any number of streams can be open.  After
the response the worker waits a moment for the client's next request on
the same connection (the common case of a busy client) and otherwise hands
the connection back to the loop.

Each connection is a :class:`Connection` whose ``state`` moves along the
table ``_NEXT_STATES``; only the thread that owns a state touches the
connection (the loop for HANDSHAKE, IDLE, RECEIVING and LINGERING, one
worker for WORKING), and a connection changes hands through the pool's
queue and the loop's hand-back queue.

Time limits: a request must arrive whole (head and body) within
``timeout`` seconds of its first byte, else 408; a new connection that
sends nothing is closed after ``timeout``, an idle keep-alive connection
after ``keepalive_timeout``; a client that takes nothing of its response
for ``timeout`` seconds is closed (workers use the kernel's socket timeouts,
except on TLS connections, where OpenSSL needs Python's).  At ``max_connections`` the loop stops
accepting until one closes: new clients wait in the listen backlog.

A request the server refuses (see :mod:`restkit.http11`) gets a JSON
error and a *lingering* close: the write side is shut and input is
discarded for a moment, so the client reads its answer instead of a reset.

A graceful stop (:meth:`Server.begin_shutdown`, SIGTERM or Ctrl-C under
:func:`serve`) closes the listening socket and the idle connections, runs
the app's shutdown hooks, and lets in-flight requests and streams finish
for up to ``grace`` seconds; whatever still runs then is cut, so that the
client can tell (a chunked stream lacks its last chunk).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import selectors
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from http import HTTPStatus
from typing import Any

from .framing import LAST_CHUNK, AppError, BodyFraming, ResponsePlan, chunk, plan_response
from .http11 import ChunkedReader, Framing, LengthReader, Limits, ProtocolError, RequestHead, body_reader, parse_head

__all__ = ["Connection", "ConnectionState", "RequestBodyError", "Server", "make_server", "make_ssl_context", "serve"]

access_logger = logging.getLogger("restkit.access")
error_logger = logging.getLogger("restkit.server")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

SERVER_SOFTWARE = "restkit"
SERVER_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"  # the answer to OPTIONS *
BUFFERED_BODY = 256 * 1024  # bodies up to this size arrive whole before the app runs
DRAIN_LIMIT = 1 << 16  # unread body a worker reads through to keep the connection
LINGER_BYTES = 1 << 24  # unread input discarded before a refused connection closes...
LINGER_SECONDS = 2.0  # ...and for at most this long
SEND_PIECE = 256 * 1024  # large bodies are sent in pieces of this size
RECV_SIZE = 65536
SWEEP_INTERVAL = 0.25  # how often the loop looks for connections past their deadline
# PERF: a worker that just answered waits this long for the client's next
# request before handing the connection back to the loop; a busy keep-alive
# client is then served without two thread hand-offs per request.
NEXT_REQUEST_WAIT = 0.002
ACCEPT_PAUSE = 0.5  # seconds accepting pauses when the process is out of file descriptors


class ConnectionState(Enum):
    """Where a connection is, and so which thread owns it."""

    __hash__ = object.__hash__  # PERF: members are singletons; Enum's own hash is a Python call

    HANDSHAKE = "handshake"  # TLS handshake in progress (loop)
    IDLE = "idle"  # waiting for a request's first byte (loop)
    RECEIVING = "receiving"  # a request is arriving (loop, or the worker that just answered)
    WORKING = "working"  # a worker runs the app and writes the response
    LINGERING = "lingering"  # refused: write side shut, discarding input (loop)
    CLOSED = "closed"


_S = ConnectionState
_NEXT_STATES: dict[ConnectionState, frozenset[ConnectionState]] = {
    _S.HANDSHAKE: frozenset({_S.IDLE, _S.CLOSED}),
    _S.IDLE: frozenset({_S.RECEIVING, _S.CLOSED}),
    _S.RECEIVING: frozenset({_S.WORKING, _S.LINGERING, _S.CLOSED}),
    _S.WORKING: frozenset({_S.IDLE, _S.RECEIVING, _S.LINGERING, _S.CLOSED}),
    _S.LINGERING: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
}


class Outcome(Enum):
    """What a worker tells the loop to do with a connection it hands back."""

    KEEP = "keep"  # serve the next request (some of it may be buffered already)
    CLOSE = "close"
    LINGER = "linger"  # a refused or unread body: shut the write side, discard input, close


class RequestBodyError(OSError):
    """``wsgi.input`` could not deliver the body; ``status`` is the answer the server gives."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RequestBodyTimeout(RequestBodyError, TimeoutError):
    """The body did not arrive before the request's deadline."""


class _ClientGone(Exception):
    """Writing to the client failed: it closed, reset or stopped reading."""


class Connection:
    """One client connection: its socket, what it sent, and its state."""

    __slots__ = ("sock", "address", "peer", "tls", "state", "buffer", "scanned", "deadline", "head", "reader", "body", "eof")

    def __init__(self, sock: socket.socket, address: Any, state: ConnectionState, deadline: float) -> None:
        self.sock = sock
        self.address = address
        is_ip = isinstance(address, tuple)
        self.peer = {"REMOTE_ADDR": address[0] if is_ip else "", "REMOTE_PORT": str(address[1]) if is_ip else ""}
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.state = state
        self.buffer = bytearray()
        self.scanned = 0  # bytes of `buffer` already searched for the end of a head
        self.deadline = deadline
        self.head: RequestHead | None = None
        self.reader: LengthReader | ChunkedReader | None = None
        self.body = bytearray()
        self.eof = False

    def become(self, state: ConnectionState) -> None:
        if state not in _NEXT_STATES[self.state]:
            raise RuntimeError(f"connection cannot go from {self.state.value} to {state.value}")
        self.state = state

    def take_request(self, limits: Limits) -> RequestHead | None:
        """Parse what the buffer holds; the head once the request can go to the app.

        The request can go once its body has arrived whole, or straight after
        the head when the body is large or awaits ``100 Continue`` (then
        ``self.reader`` is left for ``wsgi.input`` to read the rest with).

        Raises:
            ProtocolError: the request is malformed.
        """
        if self.head is None:
            head = parse_head(self.buffer, limits, scanned=self.scanned)
            if head is None:
                self.scanned = len(self.buffer)
                return None
            self.scanned = 0
            if head.framing is Framing.NONE:
                return head
            self.head, self.reader = head, body_reader(head, limits)
            if head.expect_continue or head.content_length > BUFFERED_BODY:
                return self._release()
        assert self.reader is not None
        self.body += self.reader.read(self.buffer)
        if self.reader.done or len(self.body) > BUFFERED_BODY:
            return self._release()
        return None

    def _release(self) -> RequestHead:
        head, self.head = self.head, None
        assert head is not None
        return head

    def take_body(self) -> tuple[bytes, LengthReader | ChunkedReader | None]:
        """The body received so far, and the reader for the rest (None when complete)."""
        body, reader = bytes(self.body), self.reader
        self.body, self.reader = bytearray(), None
        return body, (reader if reader is not None and not reader.done else None)


class _Pool:
    """Worker threads, started on demand up to ``size`` and reused.

    A job that becomes a long stream calls :meth:`detach`: its thread stops
    counting against ``size`` and ends with the job, and another thread
    may start, so streams never starve short requests.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: deque[Callable[[], None] | None] = deque()
        self._ready = threading.Semaphore(0)  # one permit per queued job
        self._idle = threading.Semaphore(0)  # one permit per idle worker
        self._lock = threading.Lock()
        self._pooled = 0
        self._serial = 0
        self._threads: set[threading.Thread] = set()
        self._detached: set[int] = set()

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.append(job)
        self._ready.release()
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._pooled < self._size:
                    self._start()

    @property
    def busy(self) -> int:
        """Non-zero when jobs are waiting for a worker."""
        return len(self._jobs)

    def detach(self) -> None:
        """Take the calling worker out of the pool for the rest of its job."""
        with self._lock:
            ident = threading.get_ident()
            if ident in self._detached:
                return
            self._detached.add(ident)
            self._pooled -= 1
            if self._jobs:
                self._start()

    def _start(self) -> None:
        self._pooled += 1
        self._serial += 1
        thread = threading.Thread(target=self._work, name=f"restkit-worker-{self._serial}", daemon=True)
        self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        ident = threading.get_ident()
        while True:
            self._ready.acquire()
            job = self._jobs.popleft()
            if job is None:
                break
            try:
                job()
            except Exception:  # a job must never kill its worker
                error_logger.exception("unexpected error in a worker thread")
            del job
            if ident in self._detached:
                break
            self._idle.release()
        with self._lock:
            self._detached.discard(ident)
            self._threads.discard(threading.current_thread())

    def close(self, timeout: float) -> None:
        """Stop the pooled workers and wait up to ``timeout`` for every thread."""
        with self._lock:
            threads, count = list(self._threads), self._pooled
        for _ in range(count):
            self._jobs.append(None)
            self._ready.release()
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))


class _DateHeader:
    """The ``Date`` value, formatted once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._text = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(second))
            self._second = second
        return self._text


def error_response(status: int, message: str, date: str) -> bytes:
    """A complete JSON error response that closes the connection."""
    body = json.dumps({"error": message}).encode()
    reason = HTTPStatus(status).phrase
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nDate: {date}\r\nServer: {SERVER_SOFTWARE}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1") + body


def make_ssl_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server TLS context with the standard library's modern defaults (TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    context.set_alpn_protocols(["http/1.1"])
    return context


class Server:
    """Serve a WSGI app on ``address``.

    Args:
        address: ``(host, port)``; port 0 picks a free one (see ``server_address``).
            An IPv6 host (``"::1"``, ``"::"``) listens on IPv6; ``"::"`` also
            takes IPv4 where the system allows.
        app: any WSGI application.
        threads: worker threads for requests (streams run outside this count).
        timeout: seconds a request may take to arrive whole, and a client may
            take nothing of its response.
        keepalive_timeout: seconds an idle keep-alive connection is kept open.
        access_log: log one line per request on the ``restkit.access`` logger.
        certfile, keyfile: serve HTTPS with this PEM certificate chain and key.
        ssl_context: or with this context.
        grace: seconds a graceful stop lets in-flight requests finish.
        max_connections: open connections at most; beyond, new clients wait.
        max_request_body: bytes; larger request bodies get 413.
        listener: serve on this listening socket instead of binding ``address``
            (a pre-fork worker's inherited socket).
        on_tick: called by the event loop at least every ``SWEEP_INTERVAL`` seconds.
    """

    def __init__(
        self,
        address: tuple[str, int],
        app: WSGIApp,
        *,
        threads: int = 8,
        timeout: float = 30.0,
        keepalive_timeout: float = 5.0,
        access_log: bool = True,
        certfile: str | None = None,
        keyfile: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        grace: float = 10.0,
        max_connections: int = 4096,
        max_request_body: int = 1 << 30,
        listener: socket.socket | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        if threads < 1 or timeout <= 0 or keepalive_timeout < 0 or grace < 0 or max_connections < 1:
            raise ValueError("threads and max_connections must be >= 1, timeout > 0, keepalive_timeout and grace >= 0")
        self.app = app
        self.timeout = timeout
        self.keepalive_timeout = keepalive_timeout
        self.access_log = access_log
        self.grace = grace
        self.max_connections = min(max_connections, _descriptor_budget())
        self.limits = Limits(max_body=max_request_body)
        if ssl_context is None and certfile is not None:
            ssl_context = make_ssl_context(certfile, keyfile)
        self.ssl_context = ssl_context
        if listener is not None:
            listener.setblocking(False)
        self.socket = listener if listener is not None else _listen(address)
        self._on_tick = on_tick
        self.server_address = self.socket.getsockname()
        self.stopping = threading.Event()  # set when a graceful stop begins
        self._pool = _Pool(threads)
        self._date = _DateHeader()
        self._selector = selectors.DefaultSelector()
        self._connections: set[Connection] = set()
        self._returned: deque[tuple[Connection, Outcome]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop_requested = False
        self._cut_requested = False
        self._accepting = False
        self._accept_resume = 0.0
        self._fd_warning_logged = False
        self._finished = threading.Event()
        self._finished.set()  # not running
        self._closed = False
        self._hook_thread: threading.Thread | None = None
        host, port = str(self.server_address[0]), int(self.server_address[1])
        self.base_environ: dict[str, Any] = {
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SCRIPT_NAME": "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if ssl_context is not None else "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
            "restkit.shutdown": self.stopping,
        }

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        if ":" in str(host):
            host = f"[{host}]"
        return f"{'https' if self.ssl_context else 'http'}://{host}:{port}"

    # -- starting and stopping ---------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Run the event loop in this thread until a stop has drained.

        ``poll_interval`` is accepted for :mod:`socketserver` compatibility;
        the loop wakes as soon as something happens.
        """
        self._finished.clear()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._resume_accepting()
        next_sweep = time.monotonic() + SWEEP_INTERVAL
        grace_end: float | None = None
        try:
            while True:
                for key, _ in self._selector.select(SWEEP_INTERVAL):
                    if key.data is None:
                        self._drain_wakeups()
                    elif key.data is self:
                        self._accept()
                    else:
                        self._on_readable(key.data)
                self._take_back()
                now = time.monotonic()
                if self._stop_requested and grace_end is None:
                    grace_end = now + self.grace
                    self._begin_drain()
                if grace_end is not None and (not self._connections or now >= grace_end or self._cut_requested):
                    break
                if now >= next_sweep:
                    next_sweep = now + SWEEP_INTERVAL
                    self._sweep(now)
                    if self._on_tick is not None:
                        self._on_tick()
        finally:
            self._cut_all()
            self._finished.set()

    def begin_shutdown(self) -> None:
        """Start a graceful stop (safe from a signal handler); :meth:`serve_forever` returns when it ends."""
        self._stop_requested = True
        self.stopping.set()
        self._wake()

    def stop_now(self) -> None:
        """Stop at once: cut every connection (a second Ctrl-C)."""
        self._stop_requested = self._cut_requested = True
        self.stopping.set()
        self._wake()

    def shutdown(self) -> None:
        """Stop gracefully and wait until :meth:`serve_forever` has returned."""
        self.begin_shutdown()
        self._finished.wait()

    def server_close(self) -> None:
        """Close the listening socket and every connection; wait for the threads."""
        if self._closed:
            return
        self._closed = True
        self._stop_requested = True
        self.stopping.set()
        self._cut_all()
        self._listener_off()
        self.socket.close()
        self._pool.close(timeout=max(self.grace, 1.0))
        self._take_back()  # connections workers gave back after the loop ended
        if self._hook_thread is not None:
            self._hook_thread.join(timeout=max(self.grace, 1.0))
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _begin_drain(self) -> None:
        self._listener_off()
        self.socket.close()
        for conn in list(self._connections):
            if conn.state in (_S.IDLE, _S.HANDSHAKE):
                self._close(conn)
        hooks = list(getattr(self.app, "shutdown_hooks", ()))
        if hooks:
            self._hook_thread = threading.Thread(target=_run_hooks, args=(hooks,), name="restkit-shutdown", daemon=True)
            self._hook_thread.start()

    def _cut_all(self) -> None:
        """Close every connection now; workers still writing see their socket fail."""
        for conn in list(self._connections):
            if conn.state is _S.WORKING:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._connections.discard(conn)
            else:
                self._close(conn)

    # -- the loop's side ----------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (the loop is awake anyway) or closed (the loop is gone)
            pass

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _listener_off(self) -> None:
        if self._accepting:
            self._selector.unregister(self.socket)
            self._accepting = False

    def _resume_accepting(self) -> None:
        if not self._accepting and not self._stop_requested and len(self._connections) < self.max_connections:
            if time.monotonic() >= self._accept_resume:
                self._selector.register(self.socket, selectors.EVENT_READ, self)
                self._accepting = True

    def _accept(self) -> None:
        for _ in range(64):  # a burst at a time, then the connections already open get a turn
            if len(self._connections) >= self.max_connections:
                self._listener_off()  # back-pressure: new clients wait in the backlog
                return
            try:
                sock, address = self.socket.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: the listener stays readable, so
                    # retrying at once would spin.  Pause, and say so once.
                    if not self._fd_warning_logged:
                        error_logger.error("cannot accept connections: %s; pausing accepts", exc.strerror)
                        self._fd_warning_logged = True
                    self._listener_off()
                    self._accept_resume = time.monotonic() + ACCEPT_PAUSE
                    return
                continue  # ECONNABORTED and friends: that client is gone
            self._add(sock, address)

    def _add(self, sock: socket.socket, address: Any) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # PERF: workers use the socket in blocking mode with the kernel's
        # timeouts rather than Python's, which poll() before each recv and
        # send and so release the GIL twice per call.  A send that makes no
        # progress for `timeout` fails; a worker's recv waits NEXT_REQUEST_WAIT.
        _kernel_timeout(sock, socket.SO_SNDTIMEO, self.timeout)
        _kernel_timeout(sock, socket.SO_RCVTIMEO, NEXT_REQUEST_WAIT)
        state = _S.IDLE
        if self.ssl_context is not None:
            try:
                sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (OSError, ValueError):
                sock.close()
                return
            state = _S.HANDSHAKE
        conn = Connection(sock, address, state, time.monotonic() + self.timeout)
        self._connections.add(conn)
        self._selector.register(sock, selectors.EVENT_READ, conn)
        if state is _S.HANDSHAKE:
            self._handshake(conn)

    def _handshake(self, conn: Connection) -> None:
        assert isinstance(conn.sock, ssl.SSLSocket)
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
            return
        except ssl.SSLWantWriteError:
            self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
            return
        except (OSError, ValueError):  # not TLS, a bad hello, a reset: nothing to answer
            self._close(conn)
            return
        self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
        conn.become(_S.IDLE)
        conn.deadline = time.monotonic() + self.timeout
        if conn.sock.pending():
            self._on_readable(conn)

    def _on_readable(self, conn: Connection) -> None:
        if conn.state is _S.HANDSHAKE:
            self._handshake(conn)
            return
        data = _recv_nowait(conn.sock)
        if data is None:
            return
        if conn.state is _S.LINGERING:
            if not data:
                self._close(conn)
            return
        if not data:
            if conn.state is _S.RECEIVING and (conn.buffer or conn.head is not None):
                # Half-closed inside a request: the client may still read an answer.
                self._refuse(conn, ProtocolError(400, "connection closed inside the request"), linger=False)
            else:
                self._close(conn)
            return
        if conn.state is _S.IDLE:
            conn.become(_S.RECEIVING)
            conn.deadline = time.monotonic() + self.timeout
        conn.buffer += data
        self._advance(conn)

    def _advance(self, conn: Connection) -> None:
        """Hand ``conn`` to a worker if its buffer holds a request ready to run."""
        try:
            head = conn.take_request(self.limits)
        except ProtocolError as exc:
            self._refuse(conn, exc)
            return
        if head is not None:
            self._selector.unregister(conn.sock)
            conn.become(_S.WORKING)
            if isinstance(conn.sock, ssl.SSLSocket):
                # OpenSSL retries a read or write that the kernel timed out,
                # forever: TLS sockets keep Python's own timeouts.
                conn.sock.settimeout(self.timeout)
            else:
                conn.sock.setblocking(True)  # the kernel's timeouts apply: see _add
            self._pool.submit(lambda: self._work(conn, head))

    def _refuse(self, conn: Connection, error: ProtocolError, *, linger: bool = True) -> None:
        """Answer a request the server will not run, from the loop."""
        try:
            conn.sock.send(error_response(error.status, error.message, self._date.now()))
        except OSError:  # the answer did not fit or the client is gone: nothing more to do
            linger = False
        self._log_access(conn, conn.head.request_line if conn.head else _first_line(conn), error.status, 0)
        if linger:
            self._linger(conn)
        else:
            self._close(conn)

    def _linger(self, conn: Connection) -> None:
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.become(_S.LINGERING)
        conn.deadline = time.monotonic() + LINGER_SECONDS
        conn.buffer.clear()

    def _take_back(self) -> None:
        """Take the connections workers are done with."""
        while self._returned:
            conn, outcome = self._returned.popleft()
            if conn not in self._connections:  # cut while it was working
                _close_socket(conn.sock)
                continue
            if outcome is Outcome.CLOSE or self._stop_requested and outcome is Outcome.KEEP:
                self._close(conn)
                continue
            try:
                conn.sock.setblocking(False)
                self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            except (OSError, ValueError):
                self._close(conn)
                continue
            if outcome is Outcome.LINGER:
                self._linger(conn)
            elif conn.buffer:  # pipelined: the next request is here already
                self._advance(conn)
            elif conn.state is _S.IDLE and isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
                self._on_readable(conn)
        self._resume_accepting()

    def _sweep(self, now: float) -> None:
        """Close connections past their deadline; answer 408 to requests still arriving."""
        for conn in list(self._connections):
            if conn.state is _S.WORKING or now < conn.deadline:
                continue
            if conn.state is _S.RECEIVING:
                self._refuse(conn, ProtocolError(408, "timed out waiting for the whole request"), linger=False)
            else:
                self._close(conn)
        self._resume_accepting()

    def _close(self, conn: Connection) -> None:
        if conn.state is not _S.CLOSED:
            try:
                self._selector.unregister(conn.sock)
            except (KeyError, ValueError):  # a worker's connection is not registered
                pass
            conn.state = _S.CLOSED
        self._connections.discard(conn)
        _close_socket(conn.sock)

    # -- the worker's side ----------------------------------------------------------------

    def _work(self, conn: Connection, head: RequestHead) -> None:
        """Serve ``head`` on ``conn``, then as many next requests as arrive at once."""
        outcome = Outcome.CLOSE
        try:
            while True:
                outcome = _Exchange(self, conn, head).run()
                if outcome is not Outcome.KEEP:
                    break
                next_head = self._next_request(conn)
                if next_head is None:
                    break
                head = next_head
        except ProtocolError as exc:  # the next request, read here, is malformed
            try:
                conn.sock.sendall(error_response(exc.status, exc.message, self._date.now()))
                outcome = Outcome.LINGER
            except OSError:
                outcome = Outcome.CLOSE
            self._log_access(conn, _first_line(conn), exc.status, 0)
        except Exception:
            error_logger.exception("unexpected error serving a connection")
            outcome = Outcome.CLOSE
        if conn.eof:
            outcome = Outcome.CLOSE
        elif outcome is Outcome.KEEP and conn.state is _S.WORKING:
            if conn.buffer:  # pipelined: the next request has begun
                conn.become(_S.RECEIVING)
                conn.deadline = time.monotonic() + self.timeout
            else:
                conn.become(_S.IDLE)
                conn.deadline = time.monotonic() + self.keepalive_timeout
        self._returned.append((conn, outcome))
        self._wake()

    def _next_request(self, conn: Connection) -> RequestHead | None:
        """The next request on ``conn`` if it is (about to be) here and no other client waits for a worker.

        A pipelined request is already in the buffer; otherwise the worker
        waits NEXT_REQUEST_WAIT for the client's next request.
        """
        if self._stop_requested or self._pool.busy:
            return None
        if not conn.buffer:
            try:
                if conn.tls:
                    with _receive_timeout(conn.sock, NEXT_REQUEST_WAIT, self.timeout):
                        data = conn.sock.recv(RECV_SIZE)
                else:  # PERF: SO_RCVTIMEO is NEXT_REQUEST_WAIT already (see _add)
                    data = conn.sock.recv(RECV_SIZE)
            except (BlockingIOError, TimeoutError, ssl.SSLWantReadError):
                return None
            except OSError:
                data = b""
            if not data:
                conn.eof = True
                return None
            conn.buffer += data
        conn.become(_S.RECEIVING)
        conn.deadline = time.monotonic() + self.timeout
        head = conn.take_request(self.limits)  # a ProtocolError is answered by _work
        if head is not None:
            conn.become(_S.WORKING)
        return head

    def _log_access(self, conn: Connection, request_line: str, status: int, size: int, note: str = "") -> None:
        if self.access_log:
            host = conn.address[0] if isinstance(conn.address, tuple) else "-"
            when = time.strftime("%d/%b/%Y %H:%M:%S")
            access_logger.info('%s - - [%s] "%s" %d %d%s', host, when, request_line, status, size, note)


class _BodyInput:
    """``wsgi.input`` for a body that arrives while the app runs.

    Reads block (up to the request's deadline) until the body's framing
    says it is complete; the first read sends ``100 Continue`` when the
    client waits for it.  A body cut short or malformed raises
    :class:`RequestBodyError` and is remembered, so the server answers it
    and closes the connection whatever the app did with the error.
    """

    def __init__(
        self, conn: Connection, prefix: bytes, reader: LengthReader | ChunkedReader, send_continue: bool, send_timeout: float
    ) -> None:
        self._conn = conn
        self._send_timeout = send_timeout
        self._prefix = prefix
        self._reader = reader
        self._send_continue = send_continue
        self.failure: RequestBodyError | None = None

    @property
    def complete(self) -> bool:
        return not self._prefix and self._reader.done

    @property
    def awaiting_continue(self) -> bool:
        return self._send_continue

    def unread_estimate(self) -> int:
        """Bytes of body still to come (a chunked body counts as unknown: -1)."""
        if isinstance(self._reader, LengthReader):
            return self._reader.remaining
        return 0 if self._reader.done else -1

    def read(self, size: int | None = -1) -> bytes:
        want = -1 if size is None or size < 0 else size
        out = bytearray()
        if self._prefix:
            take = len(self._prefix) if want < 0 else min(want, len(self._prefix))
            out += self._prefix[:take]
            self._prefix = self._prefix[take:]
            if want >= 0 and len(out) >= want:
                return bytes(out)
        while not self._reader.done and (want < 0 or len(out) < want):
            try:
                data = self._reader.read(self._conn.buffer, -1 if want < 0 else want - len(out))
            except ProtocolError as exc:
                raise self._fail(RequestBodyError(exc.status, exc.message)) from None
            if data:
                out += data
                if want >= 0:
                    break  # a partial read is fine: return what there is
                continue
            self._receive()
        return bytes(out)

    def _receive(self) -> None:
        if self._send_continue:
            self._send_continue = False
            try:
                self._conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            except OSError:
                raise self._fail(RequestBodyError(400, "the client went away")) from None
        remaining = self._conn.deadline - time.monotonic()
        if remaining <= 0:
            raise self._fail(RequestBodyTimeout(408, "timed out waiting for the request body"))
        try:
            with _receive_timeout(self._conn.sock, remaining, self._send_timeout):
                data = self._conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, TimeoutError, ssl.SSLWantReadError):
            raise self._fail(RequestBodyTimeout(408, "timed out waiting for the request body")) from None
        except OSError:
            raise self._fail(RequestBodyError(400, "the client went away")) from None
        if not data:
            self._conn.eof = True
            raise self._fail(RequestBodyError(400, "request body ended early"))
        self._conn.buffer += data

    def _fail(self, error: RequestBodyError) -> RequestBodyError:
        self.failure = error
        return error

    def drain(self, limit: int) -> bool:
        """Read and drop up to ``limit`` unread body bytes; True when the body is then complete."""
        if self.failure is not None or self._send_continue:
            return False
        self._prefix = b""
        dropped = 0
        try:
            while not self._reader.done and dropped <= limit:
                dropped += len(self.read(RECV_SIZE))
        except RequestBodyError:
            return False
        return self._reader.done

    def readline(self, size: int | None = -1) -> bytes:
        line = bytearray()
        while size is None or size < 0 or len(line) < size:
            byte = self.read(1)
            if not byte:
                break
            line += byte
            if byte == b"\n":
                break
        return bytes(line)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> _BodyInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _Exchange:
    """One request and its response, on a worker thread."""

    __slots__ = ("server", "conn", "head", "status", "headers", "plan", "sent", "complete", "input", "environ")

    def __init__(self, server: Server, conn: Connection, head: RequestHead) -> None:
        self.server = server
        self.conn = conn
        self.head = head
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.plan: ResponsePlan | None = None
        self.sent = 0  # body bytes sent
        self.complete = True  # False once the response can no longer end properly
        if conn.reader is None and not conn.body:  # PERF: no body, the usual case
            body, reader = b"", None
        else:
            body, reader = conn.take_body()
        environ = server.base_environ.copy()
        environ.update(head.environ)
        environ.update(conn.peer)
        self.input: _BodyInput | None = None
        if reader is None:
            environ["wsgi.input"] = io.BytesIO(body)
        else:
            self.input = _BodyInput(conn, body, reader, head.expect_continue, server.timeout)
            environ["wsgi.input"] = self.input
        self.environ = environ

    # -- the WSGI interface ----------------------------------------------------------

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.plan is not None:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AppError("start_response() called twice without exc_info")
        self.status, self.headers = status, headers
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable of ``start_response``."""
        self._send_body(data)

    # -- running it ----------------------------------------------------------------------

    def run(self) -> Outcome:
        if self.head.environ["PATH_INFO"] == "*":
            return self._options_asterisk()
        result: Any = None
        try:
            result = self.server.app(self.environ, self.start_response)
            self._send_result(result)
            # close() comes before the last chunk, so that a close() that
            # fails leaves the client a response it can tell is incomplete.
            error = _close_iterable(result)
            if error is not None:
                return self._fail(error)
            self._finish_body()
        except _ClientGone:
            self.complete = False
            _close_iterable(result)
            self._log(note=" (client disconnected)")
            return Outcome.CLOSE
        except Exception as exc:
            _close_iterable(result)
            return self._fail(exc)
        self._log()
        return self._after_response()

    def _send_result(self, result: Any) -> None:
        """Send the head and what the app's iterable yields (no more than the client needs)."""
        if self.plan is None and type(result) in (list, tuple) and len(result) <= 1:
            # PERF: the usual response, one bytes object: one send, with
            # a Content-Length the server can vouch for.
            body = result[0] if result else b""
            if not isinstance(body, bytes):
                raise AppError(f"the app's response holds {type(body).__name__}, not bytes")
            self._send_head(len(body), body)
            return
        for data in result:
            if not isinstance(data, bytes):
                raise AppError(f"the app yielded {type(data).__name__}, not bytes")
            if data:
                self._send_body(data)
            if self.plan is not None and self._body_done():
                break
        if self.plan is None:
            self._send_head(0 if type(result) in (list, tuple) else None, b"")

    def _body_done(self) -> bool:
        """True when the client needs no more of the body (so iteration may stop)."""
        plan = self.plan
        assert plan is not None
        return plan.framing is BodyFraming.NONE or (plan.framing is BodyFraming.LENGTH and self.sent >= plan.length)

    def _send_head(self, known_length: int | None, body: bytes) -> None:
        if self.status is None:
            raise AppError("the app returned without calling start_response()")
        server, head = self.server, self.head
        keep_alive = head.keep_alive and not server._stop_requested
        if self.input is not None and not self.input.complete:
            unread = self.input.unread_estimate()
            # Too much to drain afterwards, or a body the client holds back
            # until a 100 Continue that must not follow the final response.
            if unread < 0 or unread > DRAIN_LIMIT or self.input.awaiting_continue:
                keep_alive = False
        plan = plan_response(
            self.status,
            self.headers,
            head_request=head.method == "HEAD",
            http11=head.version == "HTTP/1.1",
            keep_alive=keep_alive,
            known_length=known_length,
            date=server._date.now(),
            server=SERVER_SOFTWARE,
        )
        self.plan = plan
        if plan.framing in (BodyFraming.CHUNKED, BodyFraming.CLOSE):
            server._pool.detach()  # a stream: let another thread serve the pool meanwhile
        if not body or plan.framing is BodyFraming.NONE:
            self._send(plan.head)
            return
        if plan.framing is BodyFraming.LENGTH and len(body) > plan.length:
            body = self._trim(body)
        if plan.framing is BodyFraming.CHUNKED:
            self._send(plan.head + chunk(body))
        elif len(body) <= SEND_PIECE:
            self._send(plan.head + body)
        else:  # PERF: no copy of a large body just to prepend the head
            self._send(plan.head)
            self._send(body)
        self.sent += len(body)

    def _send_body(self, data: bytes) -> None:
        if self.plan is None:
            self._send_head(None, data)
            return
        if self.plan.framing is BodyFraming.NONE or not data:
            return
        data = self._trim(data)
        if not data:
            return
        if self.plan.framing is BodyFraming.CHUNKED:
            if len(data) <= SEND_PIECE:
                self._send(chunk(data))
            else:  # PERF: frame a large chunk without copying it
                self._send(b"%x\r\n" % len(data))
                self._send(data)
                self._send(b"\r\n")
        else:
            self._send(data)
        self.sent += len(data)

    def _trim(self, data: bytes) -> bytes:
        """Drop what the app sends beyond its own Content-Length (and remember the breach)."""
        plan = self.plan
        assert plan is not None
        if plan.framing is BodyFraming.LENGTH and self.sent + len(data) > plan.length:
            error_logger.error(
                "%s %s: the app sent more than its Content-Length of %d; the surplus was dropped",
                self.head.method, self.environ["PATH_INFO"], plan.length,
            )
            self.complete = False  # the app is confused about its body: do not reuse the connection
            return data[: max(0, plan.length - self.sent)]
        return data

    def _finish_body(self) -> None:
        plan = self.plan
        assert plan is not None
        if plan.framing is BodyFraming.CHUNKED:
            self._send(LAST_CHUNK)
        elif plan.framing is BodyFraming.LENGTH and self.sent < plan.length:
            error_logger.error(
                "%s %s: the app sent %d of its Content-Length of %d bytes; connection closed",
                self.head.method, self.environ["PATH_INFO"], self.sent, plan.length,
            )
            self.complete = False

    def _send(self, data: bytes) -> None:
        sock = self.conn.sock
        try:
            if len(data) <= SEND_PIECE:
                sock.sendall(data)
            else:
                view = memoryview(data)
                for start in range(0, len(view), SEND_PIECE):
                    sock.sendall(view[start : start + SEND_PIECE])
        except (OSError, ValueError) as exc:
            raise _ClientGone() from exc

    def _fail(self, error: BaseException) -> Outcome:
        """Answer an app failure: 500 if nothing was sent yet, else cut the connection."""
        failure = self.input.failure if self.input is not None else None
        if self.plan is not None:
            self._report(error)
            self.complete = False
            self._log()
            return Outcome.CLOSE
        if failure is not None:  # the client's body broke, not the app
            status, message = failure.status, failure.message
        else:
            self._report(error)
            status, message = 500, "internal server error"
        try:
            self.conn.sock.sendall(error_response(status, message, self.server._date.now()))
        except OSError:
            return Outcome.CLOSE
        self._log(status=status)
        return self._closing_outcome(response_complete=failure is None)

    def _closing_outcome(self, *, response_complete: bool) -> Outcome:
        """LINGER when the client may still be sending a body it should not be reset for."""
        still_sending = self.input is not None and not self.input.complete and self.input.failure is None
        return Outcome.LINGER if response_complete and still_sending else Outcome.CLOSE

    def _report(self, error: BaseException) -> None:
        error_logger.error(
            "%s %s failed: %s: %s",
            self.head.method, self.environ.get("PATH_INFO"), type(error).__name__, error,
            exc_info=error if not isinstance(error, AppError) else None,
        )

    def _after_response(self) -> Outcome:
        plan = self.plan
        assert plan is not None
        if not self.complete or not plan.keep_alive:
            return self._closing_outcome(response_complete=self.complete)
        if self.input is not None and not self.input.complete:
            if not self.input.drain(DRAIN_LIMIT):
                return Outcome.CLOSE
        return Outcome.KEEP

    def _options_asterisk(self) -> Outcome:
        """``OPTIONS *`` asks about the server, not a resource: the server answers."""
        keep = self.head.keep_alive and not self.server.stopping.is_set()
        self._send(
            f"HTTP/1.1 204 No Content\r\nAllow: {SERVER_METHODS}\r\nDate: {self.server._date.now()}\r\n"
            f"Server: {SERVER_SOFTWARE}\r\n{'' if keep else 'Connection: close' + chr(13) + chr(10)}\r\n".encode("latin-1")
        )
        self.status = "204 No Content"
        self._log()
        return Outcome.KEEP if keep else Outcome.CLOSE

    def _log(self, *, status: int | None = None, note: str = "") -> None:
        if not self.server.access_log:
            return
        if status is None:
            status = self.plan.code if self.plan is not None else 500
        self.server._log_access(self.conn, self.head.request_line, status, self.sent, note)


def _close_iterable(result: Any) -> Exception | None:
    """Call the app iterable's ``close()`` (PEP 3333 says always); return what it raised."""
    close = getattr(result, "close", None)
    if close is None:
        return None
    try:
        close()
    except Exception as exc:
        return exc
    return None


def _run_hooks(hooks: list[Callable[[], None]]) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:
            error_logger.exception("shutdown hook %r failed", hook)


def _recv_nowait(sock: socket.socket) -> bytes | None:
    """What the socket has (b"" at end of input), or None when nothing yet."""
    try:
        data = sock.recv(RECV_SIZE)
        if isinstance(sock, ssl.SSLSocket):
            while sock.pending():  # TLS may hold decrypted bytes the selector cannot see
                data += sock.recv(sock.pending())
        return data
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None
    except OSError:
        return b""


def _kernel_timeout(sock: socket.socket, option: int, seconds: float) -> None:
    """Set SO_RCVTIMEO or SO_SNDTIMEO (a struct timeval) on ``sock``."""
    whole = int(seconds)
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", whole, int((seconds - whole) * 1e6)))
    except OSError:
        pass  # closed meanwhile: the next call on it fails and says so


@contextlib.contextmanager
def _receive_timeout(sock: socket.socket, seconds: float, send_timeout: float) -> Iterator[None]:
    """Let a worker's recv on ``sock`` wait ``seconds`` (then BlockingIOError or TimeoutError)."""
    if isinstance(sock, ssl.SSLSocket):  # Python's timeout: see Server._advance
        sock.settimeout(seconds)
        try:
            yield
        finally:
            sock.settimeout(send_timeout)
    elif seconds == NEXT_REQUEST_WAIT:  # already set: see Server._add
        yield
    else:
        _kernel_timeout(sock, socket.SO_RCVTIMEO, seconds)
        try:
            yield
        finally:
            _kernel_timeout(sock, socket.SO_RCVTIMEO, NEXT_REQUEST_WAIT)


def _close_socket(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _first_line(conn: Connection) -> str:
    line = bytes(conn.buffer[:200]).split(b"\n", 1)[0]
    return line.decode("latin-1").strip()


def _descriptor_budget() -> int:
    """Connections this process can hold open: its descriptor limit less a reserve."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1 << 30
    return max(16, soft - 64) if soft != resource.RLIM_INFINITY else 1 << 30


def _listen(address: tuple[str, int]) -> socket.socket:
    host, port = address
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family = infos[0][0]
    sock_address = infos[0][4][:2]
    dualstack = family == socket.AF_INET6 and host in ("::", "") and socket.has_dualstack_ipv6()
    sock = socket.create_server(sock_address, family=family, backlog=1024, dualstack_ipv6=dualstack)
    sock.setblocking(False)
    return sock


def make_server(host: str, port: int, app: WSGIApp, **options: Any) -> Server:
    """Create (and bind) a :class:`Server`; call ``serve_forever()`` to run it."""
    return Server((host, port), app, **options)


def serve(
    app: WSGIApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    workers: int = 1,
    worker_timeout: float = 30.0,
    max_requests: int = 0,
    max_requests_jitter: int = 0,
    **options: Any,
) -> None:
    """Serve ``app`` until Ctrl-C or SIGTERM, then stop gracefully.

    Binds 127.0.0.1 unless told otherwise (``host="0.0.0.0"`` or ``"::"``
    serves the network).  Options are those of :class:`Server`.  The first
    signal starts a graceful stop (in-flight requests get ``grace`` seconds);
    a second one stops at once.  Access-log lines go to standard error
    unless logging is already configured.

    ``workers`` other than 1 (0: one per core), or ``max_requests``, runs
    the app in that many pre-forked processes (:mod:`restkit.supervisor`).
    """
    if not logging.getLogger().handlers and not access_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        for log in (access_logger, error_logger, logging.getLogger("restkit")):
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False
    _raise_descriptor_limit()
    if workers != 1 or max_requests:
        from .supervisor import WorkerPlan, supervise  # it imports this module

        plan = WorkerPlan(workers, worker_timeout, max_requests, max_requests_jitter)
        if supervise(lambda: app, (host, port), options, plan) != 0:
            raise RuntimeError("restkit: the workers failed to start; see the log")
        return
    server = make_server(host, port, app, **options)
    restore = _stop_on_signals(server)
    print(f"restkit: serving on {server.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        restore()
    print("restkit: stopped", file=sys.stderr, flush=True)


def _raise_descriptor_limit() -> None:
    """Let the process hold as many connections as the system allows it (as Go and nginx do)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else 65536
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, 65536), hard))
    except (ImportError, OSError, ValueError):
        pass


def _stop_on_signals(server: Server) -> Callable[[], None]:
    """SIGINT and SIGTERM stop ``server`` gracefully; a second one stops it at once.

    A shell starts background jobs with SIGINT ignored, and SIGTERM (what
    process managers send) would otherwise end the process without cleanup.
    Only the main thread may install handlers; elsewhere this does nothing.
    Returns a function that puts the previous handlers back.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(signum: int, frame: Any) -> None:
        if server.stopping.is_set():
            server.stop_now()
            return
        print(f"restkit: stopping (up to {server.grace:g} s for requests in flight; again to stop now)", file=sys.stderr, flush=True)
        server.begin_shutdown()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
