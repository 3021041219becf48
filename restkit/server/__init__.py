"""An HTTP/1.1 WSGI server from the standard library alone.

One module a job:

========================  ====================================================
:mod:`.loop`              :class:`Server`: the event loop that owns every connection
:mod:`.state`             connection states, events and deadlines, as one table
:mod:`.connection`        one connection: buffers, request taking, non-blocking writes
:mod:`.exchange`          one request: the WSGI call and the response's states
:mod:`.body`              ``wsgi.input``: bodies spooled by the loop, or streamed
:mod:`.pool`              the worker threads
:mod:`.sockets`           listening sockets, TLS contexts, descriptor limits
:mod:`.clock`             the ``Date`` header
:mod:`.serving`           :func:`serve`: signals, logging set-up, the HTTPS redirect
:mod:`.supervisor`        ``workers=N``: pre-forked processes, restarts, reloads
:mod:`.worker`            a pre-forked worker's side: check-ins, stop, request budget
:mod:`.relay`             the loop's thread runs requests; a slow one moves the loop
:mod:`.stats`             the server's counters, for ``environ["restkit.server"]``
========================  ====================================================

The request parser and the response framing, which know nothing of sockets,
are :mod:`restkit.http11` and :mod:`restkit.framing`.
"""

from .body import RequestBodyError
from .connection import Connection
from .loop import Server
from .serving import make_server, serve
from .sockets import make_ssl_context
from .state import ConnectionState

__all__ = ["Connection", "ConnectionState", "RequestBodyError", "Server", "make_server", "make_ssl_context", "serve"]
