"""Log records as JSON lines, for log collectors that read fields instead of text.

:class:`JsonFormatter` writes one JSON object a record, always on one line
(``json.dumps`` escapes the line feeds of a message or a traceback).  Every
object has ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger`` and
``message``; after them come the fields the record carries as attributes
beyond a plain :class:`logging.LogRecord`'s, which is how ``extra=`` passes
them.  The server's access records carry ``method``, ``path``, ``status``,
``bytes``, ``duration``, ``client``, ``user_agent``, ``request_id`` and
``note`` this way (see ``Server.log_access``), and
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

__all__ = ["LOG_FORMATS", "JsonFormatter", "formatter_for"]

LOG_FORMATS = ("text", "json")

# The attributes every LogRecord has: anything else on a record came with extra= or a filter.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


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
            if key not in _STANDARD and value is not None and value != "-":
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["traceback"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def formatter_for(log_format: str, text: str) -> logging.Formatter:
    """The formatter of ``log_format``: a :class:`JsonFormatter` for ``"json"``, ``logging.Formatter(text)`` for ``"text"``.

    Raises:
        ValueError: ``log_format`` is neither.
    """
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(text)
    raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
