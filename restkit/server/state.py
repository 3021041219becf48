"""Where a connection is, what moves it on, and which deadline then applies.

Theory of operation
-------------------
Every change of a connection's state is one row of :data:`TRANSITIONS`,
keyed by (state, event), in the manner of h11's ``_state.py``.  A row names
the next state and the deadline that comes with it, so that the state and
its deadline are always set together, by one call
(:meth:`restkit.server.connection.Connection.on`), on one thread: the event
loop's.  A worker thread never changes a state; it hands the connection
back with an event through the loop's queue (:mod:`restkit.server.loop`).

Who owns a connection follows from its state: the loop for every state but
WORKING, which belongs to the one worker running the app for it.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["ConnectionState", "Deadline", "Event", "TRANSITIONS"]


class ConnectionState(Enum):
    """Where a connection is, and so which thread owns it."""

    __hash__ = object.__hash__  # PERF: members are singletons; Enum's own hash is a Python call

    HANDSHAKE = "handshake"  # TLS: waiting for the first bytes, then the handshake (loop)
    IDLE = "idle"  # waiting for a request's first byte (loop)
    RECEIVING = "receiving"  # a request, head or body, is arriving (loop)
    WORKING = "working"  # a worker runs the app and writes what the client takes at once
    SENDING = "sending"  # the client is slower than the response: the loop writes the rest
    LINGERING = "lingering"  # answered and closing: write side shut, input discarded (loop)
    CLOSED = "closed"


class Event(Enum):
    """What happened to a connection."""

    __hash__ = object.__hash__

    SECURED = "secured"  # the TLS handshake completed
    BYTES = "bytes"  # the first byte of a request arrived
    READY = "ready"  # a request arrived whole: a worker takes it
    BLOCKED = "blocked"  # the client took less than the worker had: the loop writes the rest
    DRAINED = "drained"  # the loop wrote it all and the app has more: a worker goes on
    KEEP_ALIVE = "keep-alive"  # the response ended; wait for the next request
    PIPELINED = "pipelined"  # the response ended; the next request has begun arriving
    LINGER = "linger"  # answered, but the client may still be sending: discard, then close
    CLOSE = "close"


class Deadline(Enum):
    """Which time limit runs in a state."""

    __hash__ = object.__hash__

    NONE = "none"  # a worker owns the connection; the app takes the time it takes
    REQUEST = "request"  # `timeout`: the request must arrive whole
    KEEPALIVE = "keepalive"  # `keepalive_timeout`: the next request must begin
    WRITE = "write"  # the client must keep taking the response (see Connection.write_deadline)
    LINGER = "linger"  # a few seconds of discarding input


S, E, D = ConnectionState, Event, Deadline

TRANSITIONS: dict[tuple[ConnectionState, Event], tuple[ConnectionState, Deadline]] = {
    (S.HANDSHAKE, E.SECURED): (S.IDLE, D.REQUEST),
    (S.IDLE, E.BYTES): (S.RECEIVING, D.REQUEST),
    (S.RECEIVING, E.READY): (S.WORKING, D.NONE),
    (S.IDLE, E.READY): (S.WORKING, D.NONE),  # the read that began the request brought all of it
    (S.WORKING, E.BLOCKED): (S.SENDING, D.WRITE),
    (S.SENDING, E.DRAINED): (S.WORKING, D.NONE),
    (S.WORKING, E.KEEP_ALIVE): (S.IDLE, D.KEEPALIVE),
    (S.SENDING, E.KEEP_ALIVE): (S.IDLE, D.KEEPALIVE),
    (S.WORKING, E.PIPELINED): (S.RECEIVING, D.REQUEST),
    (S.SENDING, E.PIPELINED): (S.RECEIVING, D.REQUEST),
    (S.HANDSHAKE, E.LINGER): (S.LINGERING, D.LINGER),
    (S.IDLE, E.LINGER): (S.LINGERING, D.LINGER),
    (S.RECEIVING, E.LINGER): (S.LINGERING, D.LINGER),
    (S.WORKING, E.LINGER): (S.LINGERING, D.LINGER),
    (S.SENDING, E.LINGER): (S.LINGERING, D.LINGER),
    **{(state, E.CLOSE): (S.CLOSED, D.NONE) for state in S},
}
