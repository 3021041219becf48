"""HTTP/1.1 request parsing (RFC 9112) on byte buffers, with no sockets.

Theory of operation
-------------------
The server keeps what a connection has received in a ``bytearray``.
:func:`parse_head` looks for a complete request head at its start; when it
finds one it removes the head from the buffer and returns a
:class:`RequestHead`, whose ``environ`` already holds the WSGI keys of the
header fields.  Then a body reader (:class:`LengthReader` or
:class:`ChunkedReader`, made by :func:`body_reader`) takes body bytes off
the same buffer as they arrive, so whatever follows the body (a pipelined
request) stays in the buffer for the next :func:`parse_head`.

Nothing here is lenient where leniency lets two parsers disagree about
where a message ends (request smuggling): every refusal is a
:class:`ProtocolError` carrying the status to answer.  The grammar each
check follows is quoted above it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import unquote

from .members import members

__all__ = [
    "ChunkedReader",
    "Framing",
    "LengthReader",
    "Limits",
    "ProtocolError",
    "RequestHead",
    "body_reader",
    "parse_head",
]


class ProtocolError(Exception):
    """A request the server refuses before any app sees it: errors as data."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """How much of a request head and body the server accepts."""

    max_request_line: int = 8192 + 64  # an 8 KiB URL plus method and version
    max_header_line: int = 8192
    max_headers: int = 100
    max_head: int = 64 * 1024
    max_body: int = 1 << 30


class Framing(Enum):
    """How the length of a request body is known (RFC 9112 section 6.3)."""

    NONE = "none"  # no Content-Length, no Transfer-Encoding: the body is empty
    LENGTH = "length"
    CHUNKED = "chunked"


_FR = members(Framing)


@dataclass
class RequestHead:
    """A parsed request line and header section."""

    method: str
    target: str
    version: str
    environ: dict[str, Any]  # REQUEST_METHOD, PATH_INFO, ..., CONTENT_*, HTTP_*
    keep_alive: bool
    framing: Framing
    content_length: int = 0
    expect_continue: bool = False
    request_line: str = field(default="", repr=False)


# tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
# token = 1*tchar                                                    (RFC 9110 section 5.6.2)
# method = token; restkit, like gunicorn, also refuses lower case ("get" is a typo, not a method)
_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Z]{1,20}")
# PERF: the character classes below are also kept as "bytes that may appear",
# so that a check is one bytes.translate() deleting them (C speed, no regex):
# what is left over is what is forbidden.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TARGET_OK = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))
_VALUE_OK = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
# HTTP-version = HTTP-name "/" DIGIT "." DIGIT                        (RFC 9112 section 2.3)
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
# request-target: visible characters only; no CTL, no SP, no DEL    (RFC 9112 section 3.2)
# field-value = *field-content; CTLs other than HTAB are invalid    (RFC 9110 section 5.5)
# Host = uri-host [ ":" port ]; uri-host = IP-literal / IPv4address / reg-name   (RFC 9110 section 7.2)
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(:[0-9]*)?")
# Content-Length = 1*DIGIT                                           (RFC 9110 section 8.6)
_DIGITS = re.compile(r"[0-9]{1,19}")
# chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; chunk-size = 1*HEXDIG
# chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )   (RFC 9112 section 7.1)
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[^\x00-\x08\x0a-\x1f\x7f]*)?")
# field-line = field-name ":" OWS field-value OWS; field-name = token   (RFC 9112 section 5)
# A whole head in the strict form every mainstream client sends: CRLF lines,
# an upper-case method, a target of visible characters, HTTP/1.0 or 1.1, and
# field lines of a token, a colon and a value without CTLs.
_WELL_FORMED_HEAD = re.compile(
    rb"(([!#$%&'*+\-.^_`|~0-9A-Z]{1,20}) ([\x21-\x7e\x80-\xff]+) HTTP/1\.([01]))\r\n"
    rb"((?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*)\r\n"
)
_WELL_FORMED_FIELD = re.compile(
    rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*"
    rb"((?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?)[ \t]*\r\n"
)

# Headers that frame or route the request: each may appear once.
_SINGLE = {"HTTP_HOST": "Host", "CONTENT_LENGTH": "Content-Length", "CONTENT_TYPE": "Content-Type"}
# PERF: the environ keys of common header names, so most requests compute none.
_COMMON_NAMES = (
    "Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Connection", "Content-Type",
    "Content-Length", "Cookie", "Authorization", "Origin", "Referer", "Cache-Control", "If-None-Match",
    "If-Match", "If-Modified-Since", "Transfer-Encoding", "Expect", "X-Forwarded-For", "X-Request-Id",
)
_ENVIRON_KEYS = {
    spelling.encode(): (key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key)
    for name in _COMMON_NAMES
    for key in [name.upper().replace("-", "_")]
    for spelling in (name, name.lower())
}
# Headers whose repeated lines are joined with "; " instead of ", " (RFC 6265 section 5.4).
_COOKIE = "HTTP_COOKIE"
_MAX_EMPTY_LINES = 2  # RFC 9112 section 2.2: ignore at least one empty line before a request


def parse_head(
    buffer: bytearray, limits: Limits, *, scanned: int = 0, base: dict[str, Any] | None = None
) -> RequestHead | None:
    """Parse a request head at the start of ``buffer`` and remove it from there.

    Args:
        buffer: the bytes received so far; the head (and empty lines before
            it) are deleted from it when a whole head is there.
        limits: the size limits to enforce.
        scanned: how many bytes of ``buffer`` an earlier call already searched
            for the end of the head (so a head that drips in byte by byte is
            not searched again from the start each time).
        base: keys the head's ``environ`` starts from (a server's own WSGI
            keys), copied; none when None.

    Returns:
        The head, or None when more bytes are needed.

    Raises:
        ProtocolError: the request is malformed or over a limit.
    """
    end = buffer.find(b"\r\n\r\n", max(0, scanned - 3))
    if 0 <= end <= limits.max_header_line and not buffer.startswith((b"\r", b"\n")):
        # PERF: a head that one regex finds well formed (the grammar below,
        # in C) skips the line-by-line checks; anything else takes the slow
        # path, which names what is wrong.  A bare LF anywhere fails the
        # regex, so this CRLF CRLF is the end of the head.
        match = _WELL_FORMED_HEAD.fullmatch(buffer, 0, end + 4)
        if match is not None:
            request_line, method, target, minor, fields = match.groups()
            environ = _environ_of(_WELL_FORMED_FIELD.findall(fields), limits, base)
            version = "HTTP/1.1" if minor == b"1" else "HTTP/1.0"
            parsed = _interpret(method.decode(), target.decode("latin-1"), version, environ, limits,
                                request_line.decode("latin-1"))
            # Removed only once parsed: a refused head stays, so that its own
            # request line is what the server logs.
            del buffer[: end + 4]
            return parsed
    skipped = 0
    while skipped < _MAX_EMPTY_LINES and buffer.startswith((b"\r", b"\n")):
        if buffer.startswith(b"\r\n"):
            del buffer[:2]
        elif buffer.startswith(b"\n"):
            del buffer[:1]
        elif len(buffer) < 2:
            return None  # a lone CR: wait for what follows
        else:
            raise ProtocolError(400, "malformed request line")
        skipped += 1
        scanned = 0
    start = max(0, scanned - 3)
    end = _find_head_end(buffer, start)
    if end < 0:
        first_line_end = buffer.find(b"\n")
        if first_line_end < 0 and len(buffer) > limits.max_request_line:
            raise ProtocolError(414, "request line is too long")
        if len(buffer) > limits.max_head:
            raise ProtocolError(431, "request header section is too large")
        return None
    if end > limits.max_head:
        raise ProtocolError(431, "request header section is too large")
    parsed = _parse_lines(bytes(buffer[:end]), limits, base)
    del buffer[:end]
    return parsed


def _find_head_end(buffer: bytearray, start: int) -> int:
    """The index just past the empty line that ends the head, or -1."""
    crlf = buffer.find(b"\n\r\n", start)
    lf = buffer.find(b"\n\n", start)
    if crlf < 0 and lf < 0:
        return -1
    if lf < 0 or (0 <= crlf < lf):
        return crlf + 3
    return lf + 2


def _parse_lines(head: bytes, limits: Limits, base: dict[str, Any] | None) -> RequestHead:
    first_end = head.index(b"\n")
    # RFC 9112 section 2.2: a recipient MAY accept a bare LF as a line
    # terminator.  restkit does when every line of the head uses it; a head
    # that mixes the two is refused, since another parser on the way could
    # split it differently.
    if head[first_end - 1 : first_end] == b"\r":
        if head.count(b"\n") != head.count(b"\r\n"):
            raise ProtocolError(400, "mixed line endings in the request head")
        lines = head[:-4].split(b"\r\n")
    else:
        if b"\r\n" in head:
            raise ProtocolError(400, "mixed line endings in the request head")
        lines = head[:-2].split(b"\n")
    request_line = lines[0]
    if len(request_line) > limits.max_request_line:
        raise ProtocolError(414, "request line is too long")
    method, target, version = _parse_request_line(request_line)
    environ = _environ_of([_parse_field(lines[index], limits) for index in range(1, len(lines))], limits, base)
    return _interpret(method, target, version, environ, limits, request_line.decode("latin-1"))


def _environ_of(
    fields: list[tuple[bytes, bytes]], limits: Limits, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``base`` and the WSGI environ keys of the header fields (CONTENT_TYPE, CONTENT_LENGTH, HTTP_*)."""
    if len(fields) > limits.max_headers:
        raise ProtocolError(431, f"more than {limits.max_headers} headers")
    # PERF: the server's keys are copied in here, into the dict the request
    # keys go to, instead of merging two dicts for every request.
    environ: dict[str, Any] = {} if base is None else base.copy()
    for name, value in fields:
        key = _ENVIRON_KEYS.get(name)
        if key is None:
            if b"_" in name:
                # X_Forwarded_For would land in the same environ key as
                # X-Forwarded-For and could pass for it: drop it, as nginx
                # and gunicorn do.
                continue
            key = name.decode("ascii").upper().replace("-", "_")  # ASCII only: a token has nothing else
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
        text = value.decode("latin-1")
        previous = environ.get(key)
        if previous is None:
            environ[key] = text
        elif key in _SINGLE:  # these frame or route the request: two are a smuggling attempt
            raise ProtocolError(400, f"more than one {_SINGLE[key]} header")
        else:
            environ[key] = previous + ("; " if key == _COOKIE else ", ") + text
    return environ


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    # request-line = method SP request-target SP HTTP-version        (RFC 9112 section 3)
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise ProtocolError(400, "malformed request line")
    method, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        if _VERSION.fullmatch(version) is None:
            raise ProtocolError(400, "malformed request line")
        raise ProtocolError(505, f"{version.decode()} is not supported")
    if _METHOD.fullmatch(method) is None:
        raise ProtocolError(400, f"malformed method {method.decode('latin-1')[:20]!r}")
    if target.translate(None, _TARGET_OK):  # a CTL, SP or DEL is left
        raise ProtocolError(400, "control character in the request target")
    return method.decode("ascii"), target.decode("latin-1"), version.decode("ascii")


def _parse_field(line: bytes, limits: Limits) -> tuple[bytes, bytes]:
    if len(line) > limits.max_header_line:
        raise ProtocolError(431, "a header line is too long")
    name, colon, value = line.partition(b":")
    if not colon or not name or name.translate(None, _TCHAR):
        # Also refuses obs-fold (a line starting with SP or HTAB) and
        # whitespace before the colon, both of which RFC 9112 lets a
        # server reject with 400 (sections 5.1 and 5.2).
        raise ProtocolError(400, "malformed header line")
    value = value.strip(b" \t")
    if value.translate(None, _VALUE_OK):  # a CTL is left
        raise ProtocolError(400, f"control character in the {name.decode()[:40]} header")
    return name, value


def _interpret(
    method: str, target: str, version: str, environ: dict[str, Any], limits: Limits, request_line: str
) -> RequestHead:
    """Check what the fields mean together and fill in the WSGI request keys."""
    http11 = version == "HTTP/1.1"
    if target[0] == "/" and "%" not in target:  # PERF: origin-form with nothing to decode
        path, _, query = target.partition("?")
    else:
        path, query = _split_target(method, target, environ)
    host = environ.get("HTTP_HOST")
    if host is None:
        if http11:
            raise ProtocolError(400, "an HTTP/1.1 request needs a Host header")
    elif _HOST.fullmatch(host) is None:
        raise ProtocolError(400, "invalid Host header")

    if "CONTENT_LENGTH" in environ or "HTTP_TRANSFER_ENCODING" in environ:
        framing, length = _body_framing(environ, http11, limits)
    else:
        framing, length = _FR.NONE, 0
    connection = environ.get("HTTP_CONNECTION")
    if connection is None:
        keep_alive = http11
    else:
        tokens = {token.strip().lower() for token in connection.split(",")}
        keep_alive = ("close" not in tokens) if http11 else ("keep-alive" in tokens)
    expect = environ.get("HTTP_EXPECT")
    expect_continue = False
    if expect is not None and http11:  # RFC 9110 section 10.1.1: HTTP/1.0 clients cannot expect
        if expect.lower() != "100-continue":
            raise ProtocolError(417, f"unsupported expectation {expect[:40]!r}")
        expect_continue = framing is not _FR.NONE and (framing is _FR.CHUNKED or length > 0)

    environ["REQUEST_METHOD"] = method
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = query
    environ["RAW_URI"] = target
    environ["SERVER_PROTOCOL"] = version
    return RequestHead(method, target, version, environ, keep_alive, framing, length, expect_continue, request_line)


def _split_target(method: str, target: str, environ: dict[str, Any]) -> tuple[str, str]:
    """PATH_INFO (percent-decoded, as WSGI wants) and QUERY_STRING of the target."""
    if target.startswith("/"):  # origin-form
        path, _, query = target.partition("?")
        return (unquote(path, "latin-1") if "%" in path else path), query
    if target == "*":  # asterisk-form: only for a server-wide OPTIONS
        if method != "OPTIONS":
            raise ProtocolError(400, "'*' is only a target for OPTIONS")
        return "*", ""
    scheme, sep, rest = target.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        # absolute-form: RFC 9112 section 3.2.2 says the server must accept
        # it and take the host from it, ignoring any Host header.
        authority, slash, path_query = rest.partition("/")
        if not authority or "@" in authority:
            raise ProtocolError(400, "malformed absolute request target")
        environ["HTTP_HOST"] = authority
        path, _, query = ("/" + path_query if slash else "/").partition("?")
        return unquote(path, "latin-1"), query
    raise ProtocolError(400, "request target must start with '/'")


def _body_framing(environ: dict[str, Any], http11: bool, limits: Limits) -> tuple[Framing, int]:
    coding = environ.get("HTTP_TRANSFER_ENCODING")
    length_text = environ.get("CONTENT_LENGTH")
    if coding is not None:
        # RFC 9112 section 6.1: Transfer-Encoding with Content-Length is a
        # smuggling attempt or a broken client; in HTTP/1.0 it is faulty
        # framing.  Either way the message length is unknowable.
        if length_text is not None:
            raise ProtocolError(400, "Transfer-Encoding and Content-Length together")
        if not http11:
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        codings = [part.strip().lower() for part in coding.split(",")]
        if codings.count("chunked") > 1:
            raise ProtocolError(400, "chunked applied more than once")
        if codings != ["chunked"]:
            raise ProtocolError(501, f"unsupported Transfer-Encoding {coding[:40]!r}")
        return _FR.CHUNKED, 0
    if length_text is None:
        return _FR.NONE, 0
    if _DIGITS.fullmatch(length_text) is None:
        raise ProtocolError(400, "invalid Content-Length")
    length = int(length_text)
    if length > limits.max_body:
        raise ProtocolError(413, f"request body is {length} bytes; the limit is {limits.max_body}")
    return (_FR.LENGTH, length) if length else (_FR.NONE, 0)


# -- bodies -------------------------------------------------------------------


class LengthReader:
    """Takes a body of ``Content-Length`` bytes off a buffer."""

    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length

    @property
    def done(self) -> bool:
        return self.remaining == 0

    def read(self, buffer: bytearray, size: int = -1) -> bytes:
        """Take up to ``size`` body bytes (all available when negative) off ``buffer``."""
        take = self.remaining if size < 0 else min(size, self.remaining)
        data = bytes(buffer[:take])
        del buffer[: len(data)]
        self.remaining -= len(data)
        return data


class _Chunk(Enum):
    """Where a chunked decoder is in RFC 9112 section 7.1's grammar."""

    SIZE = "size"  # expecting chunk-size [ chunk-ext ] CRLF
    DATA = "data"  # inside chunk-data
    DATA_END = "data-end"  # expecting the CRLF after chunk-data
    TRAILER = "trailer"  # expecting trailer field lines, then the final CRLF
    DONE = "done"


_C = members(_Chunk)


class ChunkedReader:
    """Decodes a chunked body off a buffer, with a limit on its total size."""

    __slots__ = ("state", "_left", "_total", "_limits", "_trailer_lines")

    def __init__(self, limits: Limits) -> None:
        self.state = _C.SIZE
        self._left = 0  # bytes left in the current chunk
        self._total = 0
        self._limits = limits
        self._trailer_lines = 0

    @property
    def done(self) -> bool:
        return self.state is _C.DONE

    def read(self, buffer: bytearray, size: int = -1) -> bytes:
        """Decode what ``buffer`` holds (up to ``size`` bytes of data when positive).

        Raises:
            ProtocolError: the framing is malformed, or the body is over the limit.
        """
        out: list[bytes] = []
        wanted = size if size >= 0 else -1
        while self.state is not _C.DONE and wanted != 0:
            if self.state is _C.DATA:
                take = self._left if wanted < 0 else min(self._left, wanted)
                data = bytes(buffer[:take])
                if not data:
                    break
                del buffer[: len(data)]
                out.append(data)
                self._left -= len(data)
                if wanted > 0:
                    wanted -= len(data)
                if self._left == 0:
                    self.state = _C.DATA_END
                continue
            line = self._take_line(buffer)
            if line is None:
                break
            self._advance(line)
        return b"".join(out)

    def _take_line(self, buffer: bytearray) -> bytes | None:
        end = buffer.find(b"\r\n")
        if end < 0:
            if len(buffer) > self._limits.max_header_line:
                raise ProtocolError(400, "chunk line is too long")
            if b"\n" in buffer:
                raise ProtocolError(400, "bare LF in chunked framing")
            return None
        line = bytes(buffer[:end])
        del buffer[: end + 2]
        if len(line) > self._limits.max_header_line:
            raise ProtocolError(400, "chunk line is too long")
        return line

    def _advance(self, line: bytes) -> None:
        if self.state is _C.DATA_END:
            if line:
                raise ProtocolError(400, "chunk data longer than its size")
            self.state = _C.SIZE
        elif self.state is _C.SIZE:
            match = _CHUNK_LINE.fullmatch(line)
            if match is None:
                raise ProtocolError(400, "invalid chunk size")
            self._left = int(match.group(1), 16)
            self._total += self._left
            if self._total > self._limits.max_body:
                raise ProtocolError(413, f"request body is over the limit of {self._limits.max_body} bytes")
            self.state = _C.DATA if self._left else _C.TRAILER
        elif self.state is _C.TRAILER:
            if not line:
                self.state = _C.DONE
                return
            # Trailer fields are read and dropped: none of them may change
            # how the request is understood (RFC 9110 section 6.5.1).
            self._trailer_lines += 1
            if self._trailer_lines > self._limits.max_headers:
                raise ProtocolError(431, "too many trailer fields")
            _parse_field(line, self._limits)


def body_reader(head: RequestHead, limits: Limits) -> LengthReader | ChunkedReader:
    """The reader that takes ``head``'s body off the connection's buffer."""
    if head.framing is _FR.CHUNKED:
        return ChunkedReader(limits)
    return LengthReader(head.content_length)
