"""The event loop: the one thread that owns every connection's state.

Theory of operation
-------------------
One thread runs a :mod:`selectors` loop over every connection that waits
on its client: a new one (in its TLS handshake), an idle keep-alive one,
one whose request (head and body) is still arriving, one whose response the
client is slower to take than the app was to give, and one lingering after
a refusal.  A request that has arrived whole, body included (spooled to a
temporary file past 1 MiB, see :mod:`restkit.server.body`), is run by the
loop's own thread (:mod:`restkit.server.exchange`), which writes what the
client takes at once; when a request holds that thread too long the loop
moves to another thread (:mod:`restkit.server.relay`), and for a while
after, requests go to worker threads (:mod:`restkit.server.pool`).
What it does not take stays in the connection's outbox, and the worker
hands the connection back: the loop writes the rest as the socket drains,
then gives the connection to a worker again if the app has more to say.
So slow or idle clients, slow senders and slow readers alike, hold no
thread.

Only the loop changes a connection's state (:meth:`Connection.on`, whose
table is :mod:`restkit.server.state`).  A worker hands a connection back
by appending ``(connection, event)`` to ``_handback`` and waking the loop;
it touches the connection no more until the loop hands it over again.

After a response a worker waits a moment for the client's next request on
the same connection (the common case of a busy client) and serves it too;
otherwise it hands the connection back.

Time limits: a request must arrive whole (head and body) within
``timeout`` seconds of its first byte, else 408; a new connection that
sends nothing is closed after ``timeout``, an idle keep-alive connection
after ``keepalive_timeout``; a response that waits on its client is cut
by the write deadline (:meth:`Connection.write_deadline`: ``timeout``
seconds, plus one for every ``min_send_rate`` bytes the client takes
meanwhile).  At ``max_connections``, or while slow readers hold more than
``max_buffered`` unsent bytes, the loop stops accepting until that eases:
new clients wait in the listen backlog.

A request the server refuses (see :mod:`restkit.http11`) gets a JSON error
and a *lingering* close: the write side is shut and input is discarded for
a moment, so the client reads its answer instead of a reset.  Plain HTTP
sent to an HTTPS port gets a plain-text 400 that says so.

A graceful stop (:meth:`Server.begin_shutdown`, SIGTERM or Ctrl-C under
:func:`restkit.serve`) sets ``stopping`` at once (a readiness check then
answers 503) but, with ``drain`` seconds, keeps accepting and serving as
usual for that long, so that a load balancer stops sending work first; then
it closes the listening socket and the idle connections, runs the app's
shutdown hooks, and lets in-flight requests and streams finish for up to
``grace`` seconds; whatever still runs then is
cut, so that the client can tell (a chunked stream lacks its last chunk).
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ..framing import BodyFraming, error_response, plan_response
from ..http11 import Limits, ProtocolError, RequestHead
from ..logformat import AccessFields
from ..logtext import escape, redact
from ..members import members
from .clock import DateHeader
from .connection import ClientGone, Connection, Timeouts
from .exchange import SERVER_SOFTWARE, Exchange, Outcome
from .pool import Pool
from .relay import LoopMoved, Relay
from .sockets import abort, close_quietly, descriptor_budget, listen, make_ssl_context, recv_nowait, wait_readable
from .state import ConnectionState, Event
from .stats import ServerStats

__all__ = ["Server"]

access_logger = logging.getLogger("restkit.access")
error_logger = logging.getLogger("restkit.server")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

LINGER_SECONDS = 2.0  # how long a refused connection's input is discarded before it closes
SWEEP_INTERVAL = 0.25  # how often the loop looks for connections past their deadline
# PERF: a worker that just answered waits this long for the client's next
# request before handing the connection back to the loop; a busy keep-alive
# client is then served without two thread hand-offs per request.
NEXT_REQUEST_WAIT = 0.002
ACCEPT_PAUSE = 0.5  # seconds accepting pauses when the process is out of file descriptors
TLS_RECORD = 0x16  # the first byte of a TLS handshake; anything else on an HTTPS port is not TLS
_PLAIN_HTTP_MESSAGE = "This port speaks HTTPS only: use https:// in the URL.\n"

_S, _E = members(ConnectionState), members(Event)
_O, _F = members(Outcome), members(BodyFraming)
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Server:
    """Serve a WSGI app on ``address``.

    Args:
        address: ``(host, port)``; port 0 picks a free one (see ``server_address``).
            An IPv6 host (``"::1"``, ``"::"``) listens on IPv6; ``"::"`` also
            takes IPv4 where the system allows.
        app: any WSGI application.
        threads: worker threads for requests (streams run outside this count).
        timeout: seconds a request may take to arrive whole, and a response
            may wait on its client (see the write deadline above).
        keepalive_timeout: seconds an idle keep-alive connection is kept open.
        access_log: log one line per request on the ``restkit.access`` logger.
        certfile, keyfile: serve HTTPS with this PEM certificate chain and key.
        ssl_context: or with this context.
        grace: seconds a graceful stop lets in-flight requests finish.
        drain: seconds a graceful stop keeps accepting and serving before
            it closes the listener (``stopping`` is set meanwhile).
        max_connections: open connections at most; beyond, new clients wait.
        max_request_body: bytes; larger request bodies get 413 before they
            are read.  An app with a smaller ``max_body_size`` attribute (a
            :class:`restkit.App`) lowers it to that.
        min_send_rate: bytes a second a client slower than its response must
            keep taking (see the write deadline).
        max_buffered: unsent response bytes held for slow readers, all
            connections together, beyond which no new connection is accepted.
        stream_request_body: hand large bodies, and bodies behind
            ``Expect: 100-continue``, to the app as they arrive (a slow
            uploader then holds a worker) instead of reading them first.
        hsts: seconds; on HTTPS, every response says
            ``Strict-Transport-Security: max-age=...`` (0: not sent).
        listener: serve on this listening socket instead of binding
            ``address`` (the workers of :mod:`restkit.server.supervisor`).
        on_tick: called by the loop at least every quarter second (a
            supervisor's liveness check).
        inline: the loop's own thread runs requests, and moves on when one
            holds it (see :mod:`restkit.server.relay`); False sends every
            request to a worker thread (more requests at once for an app
            whose every request waits, at the cost of two thread switches
            each).
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
        drain: float = 0.0,
        max_connections: int = 4096,
        max_request_body: int = 1 << 30,
        min_send_rate: float = 8192.0,
        max_buffered: int = 1 << 30,
        stream_request_body: bool = False,
        hsts: int = 0,
        listener: socket.socket | None = None,
        on_tick: Callable[[], None] | None = None,
        inline: bool = True,
    ) -> None:
        if threads < 1 or timeout <= 0 or keepalive_timeout < 0 or grace < 0 or drain < 0 or max_connections < 1:
            raise ValueError(
                "threads and max_connections must be >= 1, timeout > 0, keepalive_timeout, grace and drain >= 0"
            )
        if min_send_rate <= 0 or max_buffered < 0 or hsts < 0:
            raise ValueError("min_send_rate must be > 0, max_buffered and hsts >= 0")
        self.app = app
        self.timeout = timeout
        self.keepalive_timeout = keepalive_timeout
        self.timeouts = Timeouts(timeout, keepalive_timeout, LINGER_SECONDS)
        self.access_log = access_log
        self.grace = grace
        self.drain = drain
        self.max_connections = min(max_connections, descriptor_budget())
        # A body the app would refuse is refused before it is read (and before
        # 100 Continue): restkit's App says its limit as `max_body_size`.
        app_limit = getattr(app, "max_body_size", None)
        if type(app_limit) is int and 0 <= app_limit < max_request_body:
            max_request_body = app_limit
        self.limits = Limits(max_body=max_request_body)
        self.min_send_rate = min_send_rate
        self.max_buffered = max_buffered
        self.stream_request_body = stream_request_body
        if ssl_context is None and certfile is not None:
            ssl_context = make_ssl_context(certfile, keyfile)
        self.ssl_context = ssl_context
        self.extra_headers = [("Strict-Transport-Security", f"max-age={hsts}")] if hsts and ssl_context else []
        if listener is not None:
            listener.setblocking(False)
        self.socket = listener if listener is not None else listen(address)
        self.server_address = self.socket.getsockname()
        self.on_tick = on_tick
        self.stopping = threading.Event()  # set when a graceful stop begins
        self.date = DateHeader()
        self._pool = Pool(threads)
        self._relay = Relay(self._run_loop)
        self._inline = inline
        self._next_sweep = 0.0
        self._drain_end: float | None = None
        self._grace_end: float | None = None
        self._loop_error: BaseException | None = None
        self._selector = selectors.DefaultSelector()
        self._connections: set[Connection] = set()
        self._watching: dict[Connection, int] = {}  # what the selector waits for, per connection
        self._handback: deque[tuple[Connection, Event | None]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop_requested = False
        self._cut_requested = False
        self._sleeping = False  # the loop is blocked in select(): a hand-back must wake it
        self._accepting = False
        self._accept_resume = 0.0
        self._buffered = 0  # unsent bytes held for slow readers, as of the last sweep
        self._fd_warning_logged = False
        self._finished = threading.Event()  # the loop has ended
        self._finished.set()  # not running
        self._returned = threading.Event()  # serve_forever() has returned
        self._returned.set()
        self._closed = False
        self._hook_thread: threading.Thread | None = None
        self.stats = ServerStats()  # what restkit.metrics reports (see restkit.server.stats)
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
            "restkit.server": self,  # for restkit.metrics: copied with the rest, so free per request
        }

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        if ":" in str(host):
            host = f"[{host}]"
        return f"{'https' if self.ssl_context else 'http'}://{host}:{port}"

    # -- starting and stopping ---------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Run the event loop until a stop has drained.

        The loop runs in threads of its own, and moves from one to another
        when a request holds it (see :mod:`restkit.server.relay`); this
        thread waits (and takes the signals) until the loop has ended, so
        that it returns then, whatever requests still run.
        ``poll_interval`` is accepted for :mod:`socketserver`
        compatibility; the loop wakes as soon as something happens.
        """
        self._finished.clear()
        self._returned.clear()
        self._loop_error = None
        self._selector.register(self._wake_r, _READ, None)
        self._resume_accepting()
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL
        self._drain_end = self._grace_end = None
        watchdog = threading.Thread(target=self._relay.watch, args=(self._finished,), name="restkit-watchdog",
                                    daemon=True)
        watchdog.start()
        self._relay.start()
        try:
            self._finished.wait()
        except BaseException:  # Ctrl-C without restkit.serve's handlers: stop at once
            self.stop_now()
            self._finished.wait(max(self.grace, 1.0))
            raise
        finally:
            watchdog.join()  # it ends within a tick of the loop's end
            self._returned.set()
        if self._loop_error is not None:
            raise self._loop_error

    def _run_loop(self) -> None:
        """Be the loop in this thread until the loop ends, or moves to another thread (:class:`LoopMoved`)."""
        try:
            while self._turn():
                pass
        except LoopMoved:
            return  # another thread runs the loop now: touch nothing of it
        except BaseException as exc:
            self._loop_error = exc  # serve_forever raises it
            error_logger.exception("the event loop failed")
        self._end_loop()

    def _end_loop(self) -> None:
        self._cut_all()
        self._finished.set()

    def _turn(self) -> bool:
        """One turn of the loop: wait for events and act on them; False when the loop is over."""
        # PERF: workers wake the loop only while it sleeps here (see _after).
        self._sleeping = True
        events = self._selector.select(0 if self._handback else SWEEP_INTERVAL)
        self._sleeping = False
        # Hand-backs first: a connection whose next request is already
        # readable is then IDLE, not a worker's (see _advance).
        self._take_back()
        for key, mask in events:
            conn = key.data
            if conn is None:
                self._drain_wakeups()
            elif conn is self:
                self._accept()
            elif conn.state is _S.WORKING:
                self._watch(conn, 0)  # input while a worker has it: look again once it is back
            elif conn.state is _S.CLOSED:
                continue  # closed by a hand-back just now
            elif mask & _WRITE or conn.state is _S.SENDING:
                # (an event from before the hand-back, when it was still registered for input)
                self._on_writable(conn)
            else:
                self._on_readable(conn)
        now = time.monotonic()
        if self._stop_requested and self._grace_end is None:
            # `drain` seconds of serving as usual (readiness says 503), then the graceful stop
            if self._drain_end is None:
                self._drain_end = now + self.drain
            if now >= self._drain_end or self._cut_requested:
                self._grace_end = now + self.grace
                self._begin_drain()
        if self._grace_end is not None and (not self._connections or now >= self._grace_end or self._cut_requested):
            return False
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            self._sweep(now)
        return True

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
        self._returned.wait()

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
        self._relay.join(timeout=max(self.grace, 1.0))
        self._take_back()  # connections workers gave back after the loop ended
        if self._hook_thread is not None:
            self._hook_thread.join(timeout=max(self.grace, 1.0))
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def detach_worker(self) -> None:
        """The calling worker serves a stream: take it out of the pool's count (see :class:`Pool`).

        Called in the loop's own thread (a request run inline), it moves the
        loop to another thread at once: a stream would hold it.
        """
        if self._relay.inline_here():
            self._relay.hand_over()
        else:
            self._pool.detach()

    def _dispatch(self, job: Callable[[], None], *, inline: bool = True) -> None:
        """Run a worker's ``job``: in this (the loop's) thread when ``inline``, else in the pool.

        See :mod:`restkit.server.relay`: a job that holds the loop too long
        makes the loop move to a new thread, and this thread leaves the
        loop's code by :class:`LoopMoved` once the job ends.
        """
        if not inline or not self._inline_now():
            self._to_pool(job)
            return
        if not self._relay.run_inline(job):
            raise LoopMoved
        # (its hand-back is taken at the top of the next turn, or by the
        # _take_back in progress: never here, which would recurse once per
        # pipelined request)

    def _inline_now(self) -> bool:
        """Whether the loop's thread runs the next request itself (not with inline off, nor in a cooldown)."""
        return self._inline and not self._relay.pool_turns

    def _to_pool(self, job: Callable[[], None]) -> None:
        """Give ``job`` to a worker thread; a job sent during a take-over's cooldown counts it down."""
        relay = self._relay
        if relay.pool_turns:
            relay.pool_turns -= 1
        self._pool.submit(job)

    def _begin_drain(self) -> None:
        self._listener_off()
        self.socket.close()
        for conn in list(self._connections):
            if conn.state is _S.IDLE or conn.state is _S.HANDSHAKE:
                self._close(conn)
        hooks = list(getattr(self.app, "shutdown_hooks", ()))
        if hooks:
            self._hook_thread = threading.Thread(target=_run_hooks, args=(hooks,), name="restkit-shutdown", daemon=True)
            self._hook_thread.start()

    def _cut_all(self) -> None:
        """Close every connection now; workers still writing see their socket fail."""
        for conn in list(self._connections):
            if conn.state is _S.WORKING:
                self._watch(conn, 0)
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._connections.discard(conn)
            elif conn.state is _S.SENDING:
                self._cut(conn, "server stopped")
            else:
                self._close(conn)

    # -- the selector --------------------------------------------------------------------

    def _watch(self, conn: Connection, events: int) -> None:
        """Wait for ``events`` on ``conn`` (0: for nothing; a worker has it)."""
        was = self._watching.get(conn, 0)
        if was == events:
            return
        try:
            if not events:
                self._selector.unregister(conn.sock)
                del self._watching[conn]
                return
            if was:
                self._selector.modify(conn.sock, events, conn)
            else:
                self._selector.register(conn.sock, events, conn)
            self._watching[conn] = events
        except (KeyError, ValueError, OSError):
            self._watching.pop(conn, None)

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
        # a closed listener (the graceful stop has begun), not _stop_requested: a drain still accepts
        if self._accepting or self.socket.fileno() < 0 or len(self._connections) >= self.max_connections:
            return
        if self._buffered <= self.max_buffered and time.monotonic() >= self._accept_resume:
            self._selector.register(self.socket, _READ, self)
            self._accepting = True

    # -- new connections -----------------------------------------------------------------

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
                    self.stats.accept_pauses += 1
                    self._listener_off()
                    self._accept_resume = time.monotonic() + ACCEPT_PAUSE
                    return
                continue  # ECONNABORTED and friends: that client is gone
            self._add(sock, address)

    def _add(self, sock: socket.socket, address: Any) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = _S.HANDSHAKE if self.ssl_context is not None else _S.IDLE
        conn = Connection(sock, address, state, time.monotonic() + self.timeout)
        self.stats.accepted += 1
        self._connections.add(conn)
        self._watch(conn, _READ)

    def _secure(self, conn: Connection) -> None:
        """The first bytes on an HTTPS port: a TLS hello is wrapped, plain HTTP is told off."""
        assert self.ssl_context is not None
        try:
            first = conn.sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            first = b""
        if not first:
            self._close(conn)
            return
        if first[0] != TLS_RECORD:
            self._refuse_plain_http(conn)
            return
        self._watch(conn, 0)
        try:
            conn.sock = self.ssl_context.wrap_socket(conn.sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            self.stats.tls_failures += 1
            self._close(conn)
            return
        conn.tls = True
        self._handshake(conn)

    def _handshake(self, conn: Connection) -> None:
        assert isinstance(conn.sock, ssl.SSLSocket)
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(conn, _READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(conn, _WRITE)
            return
        except (OSError, ValueError):  # a bad hello, a reset: nothing to answer
            self.stats.tls_failures += 1
            self._close(conn)
            return
        self._watch(conn, _READ)
        conn.on(_E.SECURED, time.monotonic(), self.timeouts)
        if conn.sock.pending():
            self._on_readable(conn)

    def _refuse_plain_http(self, conn: Connection) -> None:
        data = recv_nowait(conn.sock) or b""
        conn.buffer += data
        body = _PLAIN_HTTP_MESSAGE.encode()
        plan = plan_response(
            "400 Bad Request", [("Content-Type", "text/plain; charset=utf-8")], head_request=False, http11=True,
            keep_alive=False, known_length=len(body), date=self.date.now(), server=SERVER_SOFTWARE,
        )
        try:
            conn.sock.send(plan.head + body)
        except OSError:
            pass
        self.stats.refuse(400)
        self.log_access(conn, _first_line(conn.buffer), 400, len(body), " (plain HTTP on the HTTPS port)")
        self._linger(conn)

    # -- reading -------------------------------------------------------------------------

    def _on_readable(self, conn: Connection) -> None:
        state = conn.state
        if state is _S.HANDSHAKE:
            if conn.tls:
                self._handshake(conn)
            else:
                self._secure(conn)
            return
        data = recv_nowait(conn.sock)
        if data is None:
            return
        if state is _S.LINGERING:
            if not data:
                self._close(conn)
            return
        if not data:
            if state is _S.RECEIVING and (conn.buffer or conn.head is not None):
                # Half-closed inside a request: the client may still read an answer.
                self._refuse(conn, ProtocolError(400, "connection closed inside the request"), linger=False)
            else:
                self._close(conn)
            return
        conn.buffer += data
        self._advance(conn)  # (an IDLE connection becomes RECEIVING there, unless the request came whole)

    def _advance(self, conn: Connection) -> None:
        """Serve the requests ``conn``'s buffer holds, as far as they can go now.

        A request the loop's own thread ran to its end is taken back here
        at once, and a pipelined one after it is served by the next round
        of this loop (never by recursion); a request a worker runs comes
        back through ``_handback``.
        """
        while True:
            try:
                head = conn.take_request(self.limits, self.stream_request_body, self.base_environ)
            except ProtocolError as exc:
                self._refuse(conn, exc)
                return
            if head is None:
                if conn.state is _S.IDLE:
                    conn.on(_E.BYTES, time.monotonic(), self.timeouts)
                if conn.continue_due:
                    conn.continue_due = False
                    try:
                        conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                    except (BlockingIOError, ssl.SSLWantWriteError):
                        pass  # no room for 25 bytes: the client sends its body after its own wait
                    except OSError:
                        self._close(conn)
                return
            # PERF: the socket stays registered while a worker has it: a client
            # that waits for its answer sends nothing meanwhile, so two epoll_ctl
            # calls a request are saved; input that does come is looked at once
            # the connection is back (see serve_forever).
            conn.on(_E.READY, time.monotonic(), self.timeouts)
            if not self._inline_now():
                self._to_pool(lambda: self._work(conn, head))
                return
            if not self._relay.run_inline(lambda: self._serve_here(conn, head)):
                # The loop moved to another thread meanwhile: this one is a worker now.
                self._hand_back(conn, bool(conn.unsent))
                raise LoopMoved
            # PERF: the loop's own request is taken back here, not through
            # _handback and the next turn (a deque round trip and a turn a request).
            if not self._take_back_one(conn, blocked=bool(conn.unsent)):
                return

    def _refuse(self, conn: Connection, error: ProtocolError, *, linger: bool = True, note: str = "") -> None:
        """Answer a request the server will not run, from the loop."""
        self.stats.refuse(error.status)
        try:
            conn.sock.send(error_response(error.status, error.message, date=self.date.now(), server=SERVER_SOFTWARE))
        except OSError:  # the answer did not fit or the client is gone: nothing more to do
            linger = False
        head = conn.head
        if head is not None:
            self.log_access(conn, head.request_line, error.status, 0, note, environ=head.environ)
        else:
            self.log_access(conn, _first_line(conn.buffer), error.status, 0, note)
        if conn.spool is not None:
            conn.spool.close()
            conn.spool = None
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
        conn.on(_E.LINGER, time.monotonic(), self.timeouts)
        self._watch(conn, _READ)
        conn.buffer.clear()

    # -- writing -------------------------------------------------------------------------

    def _on_writable(self, conn: Connection) -> None:
        if conn.state is _S.HANDSHAKE:
            self._handshake(conn)
            return
        if conn.state is not _S.SENDING:
            return
        try:
            drained = conn.flush()
        except ClientGone:
            self._cut(conn, "client disconnected")
            return
        if not drained:
            return
        exchange = conn.exchange
        if exchange is None or exchange.finished:
            if exchange is not None:
                exchange.log()
            if self._finish(conn):
                self._advance(conn)
            return
        self._watch(conn, _READ)  # as while a worker has it (see _advance)
        conn.on(_E.DRAINED, time.monotonic(), self.timeouts)
        # a stream's next item may be a long wait: its worker is never the loop's thread
        self._dispatch(lambda: self._resume(conn),
                       inline=exchange.plan is None or exchange.plan.framing is _F.LENGTH)

    def _cut(self, conn: Connection, reason: str) -> None:
        """Close a connection whose response cannot end properly (with a reset), and say why in its access line."""
        exchange, conn.exchange = conn.exchange, None
        if exchange is not None:
            close_iterable = exchange.cut_by_loop(reason)
            exchange.log()
            if close_iterable is not None:
                self._pool.submit(lambda: None if close_iterable() is None else None)
        self._close(conn, reset=True)

    # -- connections workers hand back ---------------------------------------------------

    def _take_back(self) -> None:
        """Take the connections workers are done with (or whose client is behind)."""
        handback = self._handback
        while handback:
            conn, event = handback.popleft()
            if conn not in self._connections:  # cut while a worker had it
                self._watch(conn, 0)
                close_quietly(conn.sock)
                continue
            if self._take_back_one(conn, blocked=event is _E.BLOCKED):
                self._advance(conn)
        self._resume_accepting()

    def _take_back_one(self, conn: Connection, *, blocked: bool) -> bool:
        """A request's run is over: the loop writes what its client has not taken, or finishes it.

        True when the next request has begun arriving: the caller advances it.
        """
        if blocked:
            conn.on(_E.BLOCKED, time.monotonic(), self.timeouts)
            self._watch(conn, _WRITE)
            return False
        return self._finish(conn)

    def _finish(self, conn: Connection) -> bool:
        """A response is out: close, linger or wait for the next request, as its outcome says.

        True when the next request has begun arriving: the caller advances it.
        """
        exchange, conn.exchange = conn.exchange, None
        refusal, conn.refusal = conn.refusal, None
        if refusal is not None:
            self._refuse(conn, refusal)
            return False
        outcome = exchange.outcome if exchange is not None else _O.CLOSE
        if conn.eof or outcome is _O.CLOSE or (self._stop_requested and outcome is _O.KEEP):
            self._close(conn)
            return False
        if outcome is _O.LINGER:
            self._linger(conn)
            return False
        now = time.monotonic()
        self._watch(conn, _READ)
        if conn.buffer or conn.head is not None:
            conn.on(_E.PIPELINED, now, self.timeouts)
            return True
        conn.on(_E.KEEP_ALIVE, now, self.timeouts)
        if conn.tls and isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
            self._on_readable(conn)
        return False

    def _sweep(self, now: float) -> None:
        """Close connections past their deadline; answer 408 to requests still arriving."""
        buffered = 0
        for conn in list(self._connections):
            state = conn.state
            if state is _S.WORKING:
                continue
            if state is _S.SENDING:
                buffered += conn.unsent
                if now >= conn.write_deadline(self.min_send_rate):
                    self._cut(conn, "write deadline")
            elif now < conn.deadline:
                continue
            elif state is _S.RECEIVING:
                self._refuse(conn, ProtocolError(408, "timed out waiting for the whole request"), linger=False,
                             note=" (cut: read deadline)")
            else:
                self._close(conn)
        self._buffered = buffered
        if self.on_tick is not None:
            self.on_tick()
        self._resume_accepting()

    def _close(self, conn: Connection, *, reset: bool = False) -> None:
        if conn.state is not _S.CLOSED:
            self._watch(conn, 0)
            conn.on(_E.CLOSE, 0.0, self.timeouts)
        self._watching.pop(conn, None)
        self._connections.discard(conn)
        if conn.spool is not None:
            conn.spool.close()
            conn.spool = None
        if reset:
            abort(conn.sock)
        else:
            close_quietly(conn.sock)

    # -- the workers' side ----------------------------------------------------------------

    def _work(self, conn: Connection, head: RequestHead) -> None:
        """Serve ``head`` on ``conn``, then as many next requests as arrive at once."""
        exchange = conn.exchange = Exchange(self, conn, head)
        self._after(conn, exchange, exchange.run())

    def _resume(self, conn: Connection) -> None:
        exchange = conn.exchange
        assert exchange is not None
        self._after(conn, exchange, exchange.resume())

    def _after(self, conn: Connection, exchange: Exchange, blocked: bool) -> None:
        """What a worker does once a response stops: hand the connection back, or serve the next request."""
        try:
            while not blocked:
                exchange.log()
                if exchange.outcome is not _O.KEEP or conn.eof:
                    break
                head = self._next_request(conn)
                if head is None:
                    break
                exchange = conn.exchange = Exchange(self, conn, head)
                blocked = exchange.run()
        except Exception:
            error_logger.exception("unexpected error serving a connection")
            exchange.outcome = _O.CLOSE
            blocked = False
        self._hand_back(conn, blocked)

    def _hand_back(self, conn: Connection, blocked: bool) -> None:
        """A worker is done with ``conn`` (or its client is behind): the loop takes it on."""
        self._handback.append((conn, _E.BLOCKED if blocked else None))
        if self._sleeping:  # else the loop takes it on its next turn, without a system call
            self._wake()

    def _serve_here(self, conn: Connection, head: RequestHead) -> None:
        """Serve one request in the loop's thread (see _advance); ``conn.unsent`` says if it blocked."""
        exchange = conn.exchange = Exchange(self, conn, head)
        try:
            if not exchange.run():
                exchange.log()
        except Exception:
            error_logger.exception("unexpected error serving a connection")
            exchange.outcome = _O.CLOSE

    def _next_request(self, conn: Connection) -> RequestHead | None:
        """The next request on ``conn`` if it is (about to be) here and no other client waits for a worker.

        A pipelined request is already in the buffer; otherwise the worker
        waits NEXT_REQUEST_WAIT for the client's next request.  A malformed
        one is left for the loop to refuse (``conn.refusal``).
        """
        if self._stop_requested or self._pool.busy or self._relay.inline_here():
            return None  # (inline: the loop's thread must not wait for one client)
        if not conn.buffer:
            data = recv_nowait(conn.sock)
            if data is None and wait_readable(conn.sock, NEXT_REQUEST_WAIT):
                data = recv_nowait(conn.sock)
            if data is None:
                return None
            if not data:
                conn.eof = True
                return None
            conn.buffer += data
        try:
            head = conn.take_request(self.limits, self.stream_request_body, self.base_environ)
        except ProtocolError as exc:
            conn.refusal = exc
            return None
        return head

    # -- logs ------------------------------------------------------------------------------

    def log_access(
        self, conn: Connection, request_line: str, status: int, size: int, note: str = "", *,
        environ: dict[str, Any] | None = None, started: float | None = None,
    ) -> None:
        """One access-log line.

        What the client sent is escaped, and credentials in its query hidden (:mod:`restkit.logtext`).

        The line ends with ``request_id=`` when the app put one in
        ``environ["restkit.request_id"]``.  The record also carries the
        line's parts for a structured formatter
        (:class:`restkit.logformat.JsonFormatter`): ``record.access``, an
        :class:`~restkit.logformat.AccessFields` that makes ``method``,
        ``path`` (escaped and redacted as in the line), ``status``,
        ``bytes``, ``duration`` (seconds since ``started``, a
        ``time.monotonic()``), ``client``, ``user_agent`` and ``note`` only
        when asked; and ``record.request_id`` and ``record.trace_id`` when
        known.  Never a header with credentials.
        """
        if not self.access_log:
            return
        client = conn.address[0] if isinstance(conn.address, tuple) else None
        when = time.strftime("%d/%b/%Y %H:%M:%S")
        line = escape(redact(request_line))
        seconds = None if started is None else time.monotonic() - started
        extra: dict[str, Any] = {"access": AccessFields(line, status, size, note, client, environ, seconds)}
        if environ is not None:
            request_id = environ.get("restkit.request_id")
            if request_id:
                extra["request_id"] = request_id = escape(str(request_id))
                note = f" request_id={request_id}{note}"
            traceparent = environ.get("restkit.traceparent")
            if traceparent:  # 00-TRACE_ID-SPAN_ID-FLAGS, made by restkit.requestid
                extra["trace_id"] = traceparent.split("-")[1]
        access_logger.info('%s - - [%s] "%s" %d %d%s', client or "-", when, line, status, size, note, extra=extra)


def _run_hooks(hooks: list[Callable[[], None]]) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:
            error_logger.exception("shutdown hook %r failed", hook)


def _first_line(buffer: bytearray) -> str:
    """The first line of what a client sent (a refused request's own request line)."""
    line = bytes(buffer[:200]).split(b"\n", 1)[0]
    return line.decode("latin-1").rstrip("\r")
