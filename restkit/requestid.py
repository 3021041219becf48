"""Request IDs and W3C trace context: one name per request, in its answer and in every log line about it.

::

    import logging

    from restkit import App
    from restkit.requestid import RequestId, log_request_ids

    logging.basicConfig(format="%(levelname)s [%(request_id)s] %(message)s")  # before log_request_ids()
    log_request_ids()   # every handler of the root logger: records get .request_id and .trace_id

    app = App()
    app.use(RequestId())

A request's ``X-Request-ID`` is kept when it is visible ASCII of at most 128
characters (what a proxy in front generated); otherwise, or without one, the
id is a new ``uuid4().hex``.  It is sent back as ``X-Request-ID`` (errors
and 404s included), put in the environ as ``restkit.request_id`` (restkit's
server ends the access-log line with ``request_id=...``; a handler reads it
there or with :func:`current_request_id`) and in 500 bodies:
``{"error": "internal server error", "request_id": "..."}``.

A valid W3C ``traceparent`` (``00-<32 hex trace id>-<16 hex parent id>-<2 hex
flags>``, neither id all zeros, version not ``ff``) puts its trace id in
the log records as ``trace_id``.  This service is a new span of that
trace: ``environ["restkit.traceparent"]`` is the header to send on calls
made while serving (same trace id and flags, a new span id), and the
response carries that same ``traceparent``, so a caller can tell which span
answered.  A malformed ``traceparent`` is ignored (the W3C rule: start
over), and no trace is started when there is none: ``trace_id`` is then
``-``.

:class:`RequestIdFilter` reads two :class:`contextvars.ContextVar`, set on
the thread serving the request before it is routed; they stay set on that
thread until its next request, so lines logged while a streamed body is
sent carry the id too.  Filters on a logger do not see records from its
child loggers, hence :func:`log_request_ids` puts the filter on handlers.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from .feature import Feature

if TYPE_CHECKING:
    from .request import Request
    from .response import Response

__all__ = ["RequestId", "RequestIdFilter", "current_request_id", "current_trace_id", "log_request_ids",
           "parse_traceparent"]

MAX_LENGTH = 128
# visible ASCII (VCHAR, RFC 5234): no spaces, controls or non-ASCII, so the id is safe in a log line or a header
_VISIBLE = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_LENGTH)
# W3C Trace Context, section 3.2: version "-" trace-id "-" parent-id "-" trace-flags, lowercase hex;
# a later version may append "-" and more fields, which this version ignores.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")

_request_id: ContextVar[str | None] = ContextVar("restkit.request_id", default=None)
_trace_id: ContextVar[str | None] = ContextVar("restkit.trace_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this thread serves (None outside one)."""
    return _request_id.get()


def current_trace_id() -> str | None:
    """The W3C trace id of the request this thread serves, when it came with a valid ``traceparent``."""
    return _trace_id.get()


def parse_traceparent(value: str) -> tuple[str, str, str] | None:
    """``(trace_id, parent_id, flags)`` of a valid ``traceparent``, else None."""
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id, parent_id, flags


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` and ``trace_id`` (``-`` when none) to every record it sees; drops nothing.

    A record that already names them (the server's access records pass them
    with ``extra=``, from the request's environ) keeps its own.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", None) or _request_id.get() or "-"
        record.trace_id = getattr(record, "trace_id", None) or _trace_id.get() or "-"
        return True


def log_request_ids(*handlers: logging.Handler) -> RequestIdFilter:
    """Install a :class:`RequestIdFilter` on ``handlers``, or on every handler of the root logger."""
    log_filter = RequestIdFilter()
    for handler in handlers or tuple(logging.getLogger().handlers):
        handler.addFilter(log_filter)
    return log_filter


class RequestId(Feature):
    """Name every request (install with ``app.use``); see the module docstring.

    Args:
        header: the request and response header that carries the id.
        trust_incoming: keep a valid incoming id (False: always generate one).
    """

    per_request = False

    def __init__(self, *, header: str = "X-Request-ID", trust_incoming: bool = True) -> None:
        self.header = header
        self.trust_incoming = trust_incoming
        self._environ_key = "HTTP_" + header.upper().replace("-", "_")

    # Steps 1 and 6 (see restkit.feature): 404s, 405s and errors are named too.
    def before_routing(self, environ: dict[str, Any]) -> None:
        given = environ.get(self._environ_key) if self.trust_incoming else None
        request_id = given if given is not None and _VISIBLE.fullmatch(given) else uuid.uuid4().hex
        environ["restkit.request_id"] = request_id
        _request_id.set(request_id)
        parsed = parse_traceparent(environ.get("HTTP_TRACEPARENT", ""))
        if parsed is None:
            _trace_id.set(None)
            environ.pop("restkit.traceparent", None)
            return
        trace_id, _, flags = parsed
        _trace_id.set(trace_id)
        environ["restkit.traceparent"] = f"00-{trace_id}-{os.urandom(8).hex()}-{flags}"  # our span, a child

    def after_request(self, request: Request, response: Response) -> Response:
        environ = request.environ
        request_id = environ.get("restkit.request_id")
        if request_id is not None:
            response.set_header(self.header, request_id)
        traceparent = environ.get("restkit.traceparent")
        if traceparent is not None:
            response.set_header("traceparent", traceparent)
        return response
