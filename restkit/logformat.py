"""Log records as JSON lines, for log collectors that read fields instead of text.

:class:`JsonFormatter` writes one JSON object a record, always on one line
(``json.dumps`` escapes the line feeds of a message or a traceback).  Every
object has ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger`` and
``message``; after them come the fields the record carries as attributes
beyond a plain :class:`logging.LogRecord`'s, which is how ``extra=`` passes
them.  The server's access records carry an :class:`AccessFields`
(``method``, ``path``, ``status``, ``bytes``, ``duration``, ``client``,
``user_agent``, ``note``: made only when a JSON line is written) and
``request_id``/``trace_id`` this way (see ``Server.log_access``), and
:class:`restkit.requestid.RequestIdFilter` adds ``request_id`` and
``trace_id``.  A field that is None, or ``-`` (the filter's "none"), is left
out.  A record with ``exc_info`` gets its traceback as the string field
``traceback``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

__all__ = ["LOG_FORMATS", "AccessFields", "JsonFormatter", "formatter_for"]

LOG_FORMATS = ("text", "json")

# The attributes every LogRecord has: anything else on a record came with extra= or a filter.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class AccessFields:
    """The parts of an access line, made into fields only when a formatter asks for them.

    PERF: the server logs a line per request; building the dict of fields
    up front, and passing each as its own ``extra=`` key (which
    :meth:`logging.Logger.makeRecord` copies one by one), cost a text log
    about 34,000 instructions a request for fields only JSON uses.
    """

    __slots__ = ("line", "status", "size", "note", "client", "environ", "seconds")

    def __init__(self, line: str, status: int, size: int, note: str, client: str | None,
                 environ: dict[str, Any] | None, seconds: float | None) -> None:
        self.line, self.status, self.size, self.note = line, status, size, note
        self.client, self.environ, self.seconds = client, environ, seconds

    def as_dict(self) -> dict[str, Any]:
        """``method``, ``path`` (as escaped and redacted in the line), ``status``, ``bytes``, ``duration``,
        ``client``, ``note``, ``user_agent`` (escaped)."""
        from .logtext import escape  # PERF(lazy-import): by a JSON line only

        parts = self.line.split(" ")
        whole = len(parts) == 3  # METHOD TARGET VERSION; a refused line may be anything
        fields: dict[str, Any] = {
            "method": parts[0] if whole else None,
            "path": parts[1] if whole else None,
            "status": self.status,
            "bytes": self.size,
            "duration": None if self.seconds is None else round(self.seconds, 6),
            "client": self.client,
            "note": self.note.strip().removeprefix("(").removesuffix(")") or None,
        }
        user_agent = self.environ.get("HTTP_USER_AGENT") if self.environ is not None else None
        fields["user_agent"] = None if user_agent is None else escape(user_agent)
        return fields


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message``, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "time": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD or value is None or value == "-":
                continue
            if isinstance(value, AccessFields):
                line.update((k, v) for k, v in value.as_dict().items() if v is not None)
            else:
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["traceback"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def formatter_for(log_format: str, text: str) -> logging.Formatter:
    """The formatter of ``log_format``.

    A :class:`JsonFormatter` for ``"json"``, ``logging.Formatter(text)`` for ``"text"``.

    Raises:
        ValueError: ``log_format`` is neither.
    """
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(text)
    raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
