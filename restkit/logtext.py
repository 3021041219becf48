"""Text from clients made safe for log lines.

A client controls the request line, the path (``%0a`` decodes to a line
feed) and header values.  Written raw, a CR or LF starts a new log line that
the client wrote, and an ESC sequence rewrites what a terminal shows.  So
every log line restkit writes escapes such text the way nginx does: each
character outside printable ASCII, and ``"`` and ``\\`` (which delimit and
escape fields), becomes ``\\xHH``.
"""

from __future__ import annotations

import re

__all__ = ["escape", "redact"]

# A query parameter whose name says it holds a credential: its value never reaches a log.
_SECRET_PARAMETER = re.compile(
    r"([?&;][^=&;\s#]*(?:token|api[_-]?key|apikey|password|passwd|secret|signature|credential)[^=&;\s#]*=)[^&;\s#]*",
    re.IGNORECASE,
)
_UNSAFE = re.compile(r'[^\x20-\x21\x23-\x5b\x5d-\x7e]')


def _hex(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str) -> str:
    """``text`` with everything but printable ASCII (and ``"``, ``\\``) as ``\\xHH``."""
    # PERF: the common case, plain ASCII with nothing to escape, is two C calls.
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return _UNSAFE.sub(_hex, text)


def redact(text: str) -> str:
    """``text`` (a request line or target) with the values of credential-like query parameters hidden.

    ``GET /me?access_token=abc&x=1`` becomes ``GET /me?access_token=[redacted]&x=1``: a
    token a client put in a URL (where it should not be) is not written into
    the access log for anyone who reads logs to use.
    """
    if "?" not in text:  # PERF: most request lines have no query
        return text
    return _SECRET_PARAMETER.sub(r"\1[redacted]", text)
