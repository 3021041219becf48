"""The server's own figures, for :mod:`restkit.metrics`: a few counters it bumps, and gauges read on demand.

The event loop bumps the counters (plain ints, on the loop's thread only:
nothing else writes them, so no lock) where a connection is accepted, a
request refused, a TLS handshake fails or accepting pauses.  Nothing is
counted on a request's way through a worker.  The gauges (connections by
state, busy workers, streams, whether the listener accepts) are not kept at
all: :func:`server_figures` reads them off the server's own structures when
a scrape asks.  An app finds the server in ``environ["restkit.server"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ..framing import BodyFraming
from .state import ConnectionState

if TYPE_CHECKING:
    from .loop import Server

__all__ = ["ServerFigures", "ServerStats", "server_figures"]

_STREAMS = (BodyFraming.CHUNKED, BodyFraming.CLOSE)  # a response of unknown length


class ServerStats:
    """Counters the event loop increments (one line where each thing happens)."""

    __slots__ = ("accepted", "accept_pauses", "tls_failures", "refused")

    def __init__(self) -> None:
        self.accepted = 0  # connections accepted
        self.accept_pauses = 0  # times accepting paused because the process ran out of descriptors
        self.tls_failures = 0  # connections closed in their TLS handshake (a bad hello, a reset)
        self.refused: dict[int, int] = {}  # requests the server answered itself, by status (400, 408, 413...)

    def refuse(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1


class ServerFigures(NamedTuple):
    """The server's figures at one moment."""

    connections: dict[str, int]  # open connections by state name ("idle", "working"...)
    workers_busy: int  # connections a worker thread is serving now, streams included
    threads: int  # the pool's size
    streams: int  # responses of unknown length in progress (a thread makes the next part, or the client takes the last)
    accepting: int  # 1, or 0 while accepting is paused (max_connections, max_buffered, out of descriptors, stopping)
    accepted: int
    accept_pauses: int
    tls_failures: int
    refused: dict[int, int]


def server_figures(server: Server) -> ServerFigures:
    """The server's counters and gauges now (any thread may call it)."""
    stats = server.stats
    for _ in range(5):
        try:  # the loop may add or drop a connection while the set is copied
            connections = tuple(server._connections)
            break
        except RuntimeError:
            continue
    else:
        connections = ()
    by_state = dict.fromkeys((state.value for state in ConnectionState if state is not ConnectionState.CLOSED), 0)
    streams = 0
    for conn in connections:
        state = conn.state
        if state is not ConnectionState.CLOSED:
            by_state[state.value] += 1
        exchange = conn.exchange  # read, never changed, from this thread
        if exchange is not None and exchange.plan is not None and exchange.plan.framing in _STREAMS \
                and not exchange.finished:
            streams += 1
    return ServerFigures(
        by_state, by_state[ConnectionState.WORKING.value], server._pool._size, streams, 1 if server._accepting else 0,
        stats.accepted, stats.accept_pauses, stats.tls_failures, dict(stats.refused),
    )
