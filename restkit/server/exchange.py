"""One request and its response: the WSGI call, on a worker thread.

Theory of operation
-------------------
:meth:`Exchange.run` calls the app and writes what it returns through the
connection's :meth:`~restkit.server.connection.Connection.push`, which
never blocks.  When the client takes less than it is offered, the rest
waits in the connection's outbox and the exchange stops pulling from the
app's iterable: :meth:`run` (or :meth:`resume`) returns True, the worker
hands the connection to the loop, and is free.  Once the loop has written
the outbox, a worker calls :meth:`resume` to go on with the iterable.  So
a slow reader holds at most the part of one item it has not taken yet.

The response moves along :data:`RESPONSE_STEPS`: WAITING (nothing sent),
BODY (the head is out), FINISHED (all of it is queued; ``outcome`` says
what becomes of the connection) or CUT (it cannot end properly; the
connection closes, so the client can tell: a chunked body lacks its last
chunk, a sized one is short).

The legacy ``write()`` callable of ``start_response`` is the exception: it
must not return before its bytes are out, so it waits for the client on
its worker (use an iterable for large or slow responses).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..framing import LAST_CHUNK, AppError, BodyFraming, ResponsePlan, chunk, error_response, plan_response
from ..http11 import RequestHead
from ..logtext import escape
from ..members import members
from .body import StreamingInput
from .connection import ClientGone, Connection
from .sockets import kernel_backlog, wait_writable

if TYPE_CHECKING:
    from .loop import Server

__all__ = ["Exchange", "Outcome", "ResponseState"]

error_logger = logging.getLogger("restkit.server")

SERVER_SOFTWARE = "restkit"
SERVER_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"  # the answer to OPTIONS *
DRAIN_LIMIT = 1 << 16  # unread streamed body a worker reads through to keep the connection
SMALL_BODY = 16 * 1024  # a body this small is sent in one buffer with its head
_F = members(BodyFraming)
_STREAMS = (_F.CHUNKED, _F.CLOSE)


class Outcome(Enum):
    """What becomes of the connection once a response is out."""

    __hash__ = object.__hash__  # PERF: as ConnectionState's (see restkit.server.state)

    KEEP = "keep"  # serve the next request
    CLOSE = "close"
    LINGER = "linger"  # the client may still be sending a body: shut the write side, discard, close


class ResponseState(Enum):
    __hash__ = object.__hash__

    WAITING = "waiting"  # nothing sent yet
    BODY = "body"  # the head is out; the body follows
    FINISHED = "finished"  # everything is queued; `outcome` is decided
    CUT = "cut"  # cannot end properly: the connection closes


_R = members(ResponseState)
_O = members(Outcome)
RESPONSE_STEPS: dict[ResponseState, frozenset[ResponseState]] = {
    _R.WAITING: frozenset({_R.BODY, _R.FINISHED, _R.CUT}),
    _R.BODY: frozenset({_R.FINISHED, _R.CUT}),
    _R.FINISHED: frozenset(),
    _R.CUT: frozenset(),
}


class Exchange:
    """One request and its response (see the module docstring)."""

    __slots__ = (
        "server", "conn", "head", "environ", "input", "status", "headers", "plan", "state", "result", "items",
        "body_bytes", "code", "outcome", "note", "closed", "undelivered", "started",
    )

    def __init__(self, server: Server, conn: Connection, head: RequestHead) -> None:
        self.started = time.monotonic()  # the access log's duration
        self.server = server
        self.conn = conn
        self.head = head
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.plan: ResponsePlan | None = None
        self.state = _R.WAITING
        self.result: Any = None
        self.items: Any = None
        self.body_bytes = 0  # body bytes queued for the client
        self.code = 500
        self.outcome = _O.CLOSE
        self.note = ""
        self.closed = False  # the app's iterable has been closed
        self.undelivered = -1  # when the loop cut it: bytes the client never took
        environ = head.environ
        if "wsgi.version" not in environ:  # a head parsed without the server's keys (see take_request)
            environ = {**server.base_environ, **environ}
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = conn.peer
        self.input: StreamingInput | None = None
        spool, reader = conn.spool, conn.reader
        if spool is not None:
            environ["wsgi.input"] = spool.as_input()
            conn.spool = conn.reader = None
        elif reader is None or reader.done:  # PERF: no body, the usual case
            environ["wsgi.input"] = io.BytesIO(b"")
            conn.reader = None
        else:  # stream_request_body: the app reads it from the socket
            self.input = StreamingInput(conn, b"", reader, head.expect_continue)
            environ["wsgi.input"] = self.input
            conn.reader = None
        self.environ = environ

    def _become(self, state: ResponseState) -> None:
        if state not in RESPONSE_STEPS[self.state]:
            raise RuntimeError(f"a response cannot go from {self.state.value} to {state.value}")
        self.state = state

    @property
    def finished(self) -> bool:
        return self.state is _R.FINISHED or self.state is _R.CUT

    # -- the WSGI interface --------------------------------------------------------------

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
        """The legacy ``write()`` callable: returns once the client has taken ``data``."""
        self._write_body(data)
        if self.conn.unsent:
            self._wait_for_client()

    # -- running it (a worker) -----------------------------------------------------------

    def run(self) -> bool:
        """Call the app and write its response; True when the loop must write the rest first."""
        if self.head.environ["PATH_INFO"] == "*":
            return self._options_asterisk()
        try:
            result: Any = self.server.app(self.environ, self.start_response)
            self.result = result
            if self.plan is None and type(result) in (list, tuple) and len(result) <= 1:
                # PERF: the usual response, one bytes object: one send, with
                # a Content-Length the server can vouch for.
                body = result[0] if result else b""
                if not isinstance(body, bytes):
                    raise AppError(f"the app's response holds {type(body).__name__}, not bytes")
                self._send_head(len(body), body)
                return self._finish()
            self.items = iter(result)
        except ClientGone as exc:
            return self._cut(str(exc) or "client disconnected")
        except Exception as exc:
            return self._fail(exc)
        return self.resume()

    def resume(self) -> bool:
        """Go on pulling from the app's iterable; True when the loop must write the rest first."""
        conn = self.conn
        try:
            if self.plan is not None and self.plan.framing in _STREAMS:
                self.server.detach_worker()
            for data in self.items:
                if not isinstance(data, bytes):
                    raise AppError(f"the app yielded {type(data).__name__}, not bytes")
                if data:
                    self._write_body(data)
                if self.plan is not None and self._body_done():
                    break
                if conn.unsent:
                    return True  # the client is behind: stop pulling until it catches up
            if self.plan is None:
                self._send_head(0 if type(self.result) in (list, tuple) else None, b"")
        except ClientGone as exc:
            return self._cut(str(exc) or "client disconnected")
        except Exception as exc:
            return self._fail(exc)
        return self._finish()

    def _finish(self) -> bool:
        """End the response once the iterable is spent; True when bytes wait in the outbox."""
        try:
            # close() comes before the last chunk, so that a close() that
            # fails leaves the client a response it can tell is incomplete.
            error = self.close_iterable()
            if error is not None:
                return self._fail(error)
            plan = self.plan
            assert plan is not None
            if plan.framing is _F.CHUNKED:
                self.conn.push(LAST_CHUNK)
            elif plan.framing is _F.LENGTH and self.body_bytes < plan.length:
                error_logger.error(
                    "%s %s: the app sent %d of its Content-Length of %d bytes; connection closed",
                    self.head.method, escape(self.environ["PATH_INFO"]), self.body_bytes, plan.length,
                )
                return self._cut("")
        except ClientGone:
            return self._cut("client disconnected")
        self.outcome = self._after_response(plan)
        self._become(_R.FINISHED)
        return bool(self.conn.unsent)

    def _body_done(self) -> bool:
        """True when the client needs no more of the body (so iteration may stop)."""
        plan = self.plan
        assert plan is not None
        return plan.framing is _F.NONE or (
            plan.framing is _F.LENGTH and self.body_bytes >= plan.length
        )

    def _send_head(self, known_length: int | None, body: bytes) -> None:
        if self.status is None:
            raise AppError("the app returned without calling start_response()")
        server, head = self.server, self.head
        keep_alive = head.keep_alive and not server.stopping.is_set()
        if self.input is not None and not self.input.complete:
            unread = self.input.unread_estimate()
            # Too much to drain afterwards, or a body the client holds back
            # until a 100 Continue that must not follow the final response.
            if unread < 0 or unread > DRAIN_LIMIT or self.input.awaiting_continue:
                keep_alive = False
        headers = self.headers + server.extra_headers if server.extra_headers else self.headers
        plan = plan_response(
            self.status, headers, head_request=head.method == "HEAD", http11=head.version == "HTTP/1.1",
            keep_alive=keep_alive, known_length=known_length, date=server.date.now(), server=SERVER_SOFTWARE,
        )
        self.plan, self.code = plan, plan.code
        self._become(_R.BODY)
        if plan.framing in _STREAMS:
            server.detach_worker()  # a stream: let another thread serve the pool meanwhile
        if not body or plan.framing is _F.NONE:
            self.conn.push(plan.head)
            return
        if plan.framing is _F.LENGTH and len(body) > plan.length:
            body = self._trim(body)
        self.body_bytes += len(body)
        small = len(body) <= SMALL_BODY
        if plan.framing is not _F.CHUNKED:
            if small:
                self.conn.push(plan.head + body)
            else:
                self.conn.push(plan.head, body)
        elif small:
            self.conn.push(plan.head + chunk(body))
        else:
            self.conn.push(plan.head + b"%x\r\n" % len(body), body)
            self.conn.push(b"\r\n")

    def _write_body(self, data: bytes) -> None:
        plan = self.plan
        if plan is None:
            self._send_head(None, data)
            return
        if plan.framing is _F.NONE or not data:
            return
        data = self._trim(data)
        if not data:
            return
        self.body_bytes += len(data)
        if plan.framing is not _F.CHUNKED:
            self.conn.push(data)
        elif len(data) <= SMALL_BODY:
            self.conn.push(chunk(data))
        else:  # PERF: frame a large chunk without copying it
            self.conn.push(b"%x\r\n" % len(data), data)
            self.conn.push(b"\r\n")

    def _trim(self, data: bytes) -> bytes:
        """Drop what the app sends beyond its own Content-Length (and remember the breach)."""
        plan = self.plan
        assert plan is not None
        if plan.framing is _F.LENGTH and self.body_bytes + len(data) > plan.length:
            error_logger.error(
                "%s %s: the app sent more than its Content-Length of %d; the surplus was dropped",
                self.head.method, escape(self.environ["PATH_INFO"]), plan.length,
            )
            self.outcome = _O.CLOSE
            self.note = " (the app overran its Content-Length)"
            return data[: max(0, plan.length - self.body_bytes)]
        return data

    def _wait_for_client(self) -> None:
        """Block this worker until the outbox is empty (the legacy ``write()`` only)."""
        conn, server = self.conn, self.server
        start = time.monotonic()
        while conn.unsent:
            now = time.monotonic()
            deadline = start + server.timeout + conn.sent_waiting / server.min_send_rate
            if now >= deadline or not wait_writable(conn.sock, deadline - now):
                raise ClientGone("write deadline")
            conn.flush()
        conn.wait_since = 0.0

    def _after_response(self, plan: ResponsePlan) -> Outcome:
        if self.note or not plan.keep_alive:
            return self._closing_outcome(response_complete=not self.note)
        if self.input is not None and not self.input.complete:
            if not self.input.drain(DRAIN_LIMIT):
                return _O.CLOSE
        return _O.KEEP

    def _closing_outcome(self, *, response_complete: bool) -> Outcome:
        """LINGER when the client may still be sending a body it should not be reset for."""
        still_sending = self.input is not None and not self.input.complete and self.input.failure is None
        return _O.LINGER if response_complete and still_sending else _O.CLOSE

    # -- failures ------------------------------------------------------------------------

    def _fail(self, error: BaseException) -> bool:
        """Answer an app failure: 500 if nothing was sent yet, else cut the connection."""
        self.close_iterable()
        failure = self.input.failure if self.input is not None else None
        if self.plan is not None:
            self._report(error)
            return self._cut("app failed")
        if failure is not None:  # the client's body broke, not the app
            status, message = failure.status, failure.message
        else:
            self._report(error)
            status, message = 500, "internal server error"
        self.code = status
        try:
            self.conn.push(error_response(status, message, date=self.server.date.now(), server=SERVER_SOFTWARE))
        except ClientGone:
            return self._cut("client disconnected")
        self.outcome = self._closing_outcome(response_complete=failure is None)
        self._become(_R.FINISHED)
        return bool(self.conn.unsent)

    def _cut(self, reason: str) -> bool:
        """The response cannot end properly: close the connection (nothing waits to be sent)."""
        self.close_iterable()
        self._mark_cut(reason)
        self.conn.outbox.clear()
        self.conn.unsent = 0
        return False

    def cut_by_loop(self, reason: str) -> Callable[[], object] | None:
        """The loop cut the connection; returns the iterable's close() for a worker to call, if due."""
        self.undelivered = self.conn.unsent + kernel_backlog(self.conn.sock)  # the close drops both
        self._mark_cut(reason)
        if self.closed or self.result is None:
            return None
        return self.close_iterable

    def _mark_cut(self, reason: str) -> None:
        """CUT, say why in the access line (when there is a why), and close the connection after."""
        if reason:
            self.note = f" (cut: {reason})"
        self.outcome = _O.CLOSE
        if not self.finished:
            self._become(_R.CUT)

    def _report(self, error: BaseException) -> None:
        error_logger.error(
            "%s %s failed: %s: %s",
            self.head.method, escape(self.environ.get("PATH_INFO", "")), type(error).__name__,
            escape(str(error)), exc_info=error if not isinstance(error, AppError) else None,
        )

    def close_iterable(self) -> Exception | None:
        """Call the app iterable's ``close()`` once (PEP 3333 says always); return what it raised."""
        if self.closed:
            return None
        self.closed = True
        close = getattr(self.result, "close", None)
        if close is None:
            return None
        try:
            close()
        except Exception as exc:
            return exc
        return None

    # -- the rest ------------------------------------------------------------------------

    def _options_asterisk(self) -> bool:
        """``OPTIONS *`` asks about the server, not a resource: the server answers."""
        keep = self.head.keep_alive and not self.server.stopping.is_set()
        plan = plan_response(
            "204 No Content", [("Allow", SERVER_METHODS)], head_request=False, http11=True, keep_alive=keep,
            known_length=None, date=self.server.date.now(), server=SERVER_SOFTWARE,
        )
        self.plan, self.code = plan, 204
        self._become(_R.BODY)
        try:
            self.conn.push(plan.head)
        except ClientGone:
            return self._cut("client disconnected")
        self.outcome = _O.KEEP if keep else _O.CLOSE
        self._become(_R.FINISHED)
        return bool(self.conn.unsent)

    def sent_bytes(self) -> int:
        """Body bytes sent: all of them, or, when the loop cut the response, those the client took."""
        if self.undelivered >= 0:
            return max(0, self.body_bytes - self.undelivered)
        return max(0, self.body_bytes - self.conn.unsent)

    def log(self) -> None:
        """The access-log line, unless the app said ``environ["restkit.quiet"]`` (a health probe) and all went well.

        An app may name the request with ``environ["restkit.request_id"]``: the line then ends with it.
        """
        server = self.server
        if not server.access_log or self.environ.get("restkit.quiet") and not self.note:
            return
        server.log_access(
            self.conn, self.head.request_line, self.code, self.sent_bytes(), self.note,
            environ=self.environ, started=self.started,
        )

