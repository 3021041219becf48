"""One client connection: its socket, what it sent, what it has yet to take, and its state.

A connection has one owner at a time (see :mod:`restkit.server.state`):
the owner alone reads and writes its buffers and its socket.  The state
and its deadline change only through :meth:`Connection.on`, on the loop.

Writing never blocks.  :meth:`Connection.push` gives the kernel what it
takes at once and keeps the rest in the *outbox*, a queue of views of the
app's own bytes (nothing is copied).  A worker that leaves bytes in the
outbox hands the connection to the loop (event BLOCKED), which writes the
rest with :meth:`Connection.flush` as the socket drains.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ..http11 import ChunkedReader, Framing, LengthReader, Limits, ProtocolError, RequestHead, body_reader, parse_head
from ..members import members
from .body import BodySpool
from .sockets import kernel_backlog
from .state import TRANSITIONS, ConnectionState, Deadline, Event

if TYPE_CHECKING:
    from .exchange import Exchange

__all__ = ["ClientGone", "Connection", "Timeouts", "BUFFERED_BODY"]

BUFFERED_BODY = 256 * 1024  # with stream_request_body, bodies up to this size still arrive whole first


class ClientGone(Exception):
    """Writing to the client failed: it closed or reset the connection."""


class Timeouts:
    """The time limits a server applies, by :class:`Deadline` kind (seconds)."""

    __slots__ = ("seconds",)

    def __init__(self, request: float, keepalive: float, linger: float) -> None:
        self.seconds = {
            _D.NONE: float("inf"),
            _D.REQUEST: request,
            _D.KEEPALIVE: keepalive,
            _D.WRITE: request,
            _D.LINGER: linger,
        }


_S = members(ConnectionState)
_D, _FR = members(Deadline), members(Framing)


class Connection:
    """One client connection (see the module docstring)."""

    __slots__ = (
        "sock", "address", "peer", "tls", "state", "deadline", "buffer", "scanned", "head", "reader", "spool",
        "continue_due", "eof", "request_deadline", "refusal", "outbox", "unsent", "wait_since", "sent_waiting",
        "backlog_at_wait", "exchange",
    )

    def __init__(self, sock: socket.socket, address: Any, state: ConnectionState, deadline: float) -> None:
        self.sock = sock
        self.address = address
        is_ip = isinstance(address, tuple)
        self.peer = (address[0], str(address[1])) if is_ip else ("", "")  # REMOTE_ADDR, REMOTE_PORT
        self.tls = False
        self.state = state
        self.deadline = deadline
        self.buffer = bytearray()
        self.scanned = 0  # bytes of `buffer` already searched for the end of a head
        self.head: RequestHead | None = None  # a head whose body is still arriving
        self.reader: LengthReader | ChunkedReader | None = None
        self.spool: BodySpool | None = None
        self.continue_due = False  # the client waits for "100 Continue" before its body
        self.eof = False
        self.refusal: ProtocolError | None = None  # a next request a worker found malformed: the loop answers it
        self.request_deadline = deadline  # when the request now arriving must be whole
        self.outbox: deque[memoryview] = deque()
        self.unsent = 0  # bytes in the outbox
        self.wait_since = 0.0  # when the outbox last began holding bytes (0: it is empty)
        self.sent_waiting = 0  # bytes written into the kernel since then
        self.backlog_at_wait = 0  # bytes the kernel held for the client then
        self.exchange: Exchange | None = None  # the response in progress

    # -- state ---------------------------------------------------------------------------

    def on(self, event: Event, now: float, timeouts: Timeouts) -> ConnectionState:
        """Apply ``event``: the next state and its deadline, together (the loop alone calls this).

        Raises:
            RuntimeError: ``event`` cannot happen in the current state (a bug).
        """
        try:
            state, deadline = TRANSITIONS[self.state, event]
        except KeyError:
            raise RuntimeError(f"connection cannot take {event.value} when {self.state.value}") from None
        self.state = state
        self.deadline = now + timeouts.seconds[deadline]
        if deadline is _D.REQUEST:
            self.request_deadline = self.deadline
        if deadline is _D.WRITE and not self.wait_since:
            self.wait_since, self.sent_waiting, self.backlog_at_wait = now, 0, kernel_backlog(self.sock)
        return state

    def write_deadline(self, min_rate: float) -> float:
        """When a response waiting on this client is cut.

        The rule: once the client takes less than it is offered, it has
        ``timeout`` seconds, plus one second for every ``min_rate`` bytes it
        takes meanwhile (counted as they leave the kernel's send queue, see
        :func:`kernel_backlog`).  A client that keeps up at ``min_rate``
        never runs out; one that stops, or takes a few bytes now and then,
        is cut after about ``timeout``.  The clock stops whenever the client
        catches up.
        """
        taken = self.sent_waiting + self.backlog_at_wait - kernel_backlog(self.sock)
        return self.deadline + max(0, taken) / min_rate

    # -- requests ------------------------------------------------------------------------

    def take_request(self, limits: Limits, stream_body: bool, base: dict[str, Any] | None = None) -> RequestHead | None:
        """Parse what the buffer holds; the head once the request can go to the app.

        ``base`` is what the head's environ starts from (the server's own keys).
        A request can go once its body has arrived whole (into ``self.spool``).
        With ``stream_body``, a large body, or one awaiting ``100 Continue``,
        goes with its head, and ``self.reader`` is left for the app's reads.

        Raises:
            ProtocolError: the request is malformed.
        """
        if self.head is None:
            head = parse_head(self.buffer, limits, scanned=self.scanned, base=base)
            if head is None:
                self.scanned = len(self.buffer)
                return None
            head.environ["restkit.received"] = time.monotonic()
            self.scanned = 0
            if head.framing is _FR.NONE:
                return head
            self.head, self.reader = head, body_reader(head, limits)
            if stream_body and (head.expect_continue or head.content_length > BUFFERED_BODY):
                return self._release()
            self.spool = BodySpool()
            self.continue_due = head.expect_continue
        assert self.reader is not None and self.spool is not None
        self.spool.write(self.reader.read(self.buffer))
        if self.reader.done:
            self.continue_due = False  # the body came anyway
            return self._release()
        return None

    def _release(self) -> RequestHead:
        head, self.head = self.head, None
        assert head is not None
        return head

    # -- writing -------------------------------------------------------------------------

    def push(self, data: bytes, more: bytes = b"") -> bool:
        """Send ``data`` (then ``more``) as far as the kernel takes it now; keep the rest.

        Returns True when everything went, False when the outbox holds the rest.

        Raises:
            ClientGone: the client closed or reset the connection.
        """
        if self.unsent:
            self._keep(data)
            self._keep(more)
            return False
        gather = bool(more) and not self.tls
        try:
            # PERF: head and a large body in one system call, without copying the body.
            sent = self.sock.sendmsg((data, more)) if gather else self.sock.send(data)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            sent = 0
        except (OSError, ValueError) as exc:
            raise ClientGone() from exc
        if sent < len(data):
            self._keep(memoryview(data)[sent:])
            self._keep(more)
            return False
        if gather:
            self._keep(memoryview(more)[sent - len(data) :])
            return not self.unsent
        return self.push(more) if more else True

    def _keep(self, data: bytes | memoryview) -> None:
        if data:
            self.outbox.append(data if isinstance(data, memoryview) else memoryview(data))
            self.unsent += len(data)

    def flush(self) -> bool:
        """Send from the outbox until the kernel takes no more; True once it is empty.

        Raises:
            ClientGone: the client closed or reset the connection.
        """
        outbox, sock = self.outbox, self.sock
        while outbox:
            view = outbox[0]
            try:
                sent = sock.send(view)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return False
            except (OSError, ValueError) as exc:
                raise ClientGone() from exc
            self.unsent -= sent
            self.sent_waiting += sent
            if sent < len(view):
                outbox[0] = view[sent:]
                if not sent:
                    return False
            else:
                outbox.popleft()
        self.wait_since = 0.0
        return True
