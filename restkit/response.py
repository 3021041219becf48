"""Responses: what a handler's return value becomes on the wire.

A handler may return

* a ``dict`` or ``list``: 200 JSON (UTF-8, ``application/json; charset=utf-8``);
* a ``str``: 200 ``text/plain; charset=utf-8``;
* ``bytes``: 200 ``application/octet-stream``;
* ``None``: 204 with no body;
* an iterator or generator of ``bytes``: streamed as produced, never
  buffered; its ``close()`` runs when the client goes away.  A chunk of
  another type (``str``, ``int``) fails the response (a 500 if it is the
  first) with an error that names the handler;
* ``(body, status)`` or ``(body, status, headers)`` with any body above;
* a :class:`Response`, for full control (cookies, content type).

:func:`render` turns any of these into a :class:`Response`, and
:func:`wsgi_result` into what ``start_response`` takes: it is the one place
a return value becomes bytes, and the app's only way to do so.

Header names and values are checked when set (:func:`restkit.httprules.check_header`,
the rule the server applies too): a name that is not a token, or a control
character such as CR, LF or NUL in a value, is refused with
:class:`ValueError`, so client text cannot inject headers.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datetime

from .httprules import BODY_STATUS_LINES, NO_BODY_STATUSES, STATUS_LINES, allows_body, check_header, status_line

__all__ = ["Response", "json_dumps", "multipart_stream", "render", "wsgi_result", "check_header"]

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
BYTES_TYPE = "application/octet-stream"

# Headers that a 304 keeps, as restkit spells them: no need to lower-case them to see that they
# are not Content-Type or Content-Length.
_NOT_CONTENT_HEADERS = frozenset({"ETag", "Vary", "Last-Modified", "Cache-Control", "Date", "Expires"})
# The Content-Type headers of restkit's own media types, checked once here.
_CONTENT_TYPE_HEADERS = {kind: ("Content-Type", kind) for kind in (JSON_TYPE, TEXT_TYPE, HTML_TYPE, BYTES_TYPE)}

HeaderList = list[tuple[str, str]]
HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]] | None
WSGIResult = tuple[str, HeaderList, Iterable[bytes]]

def _header_items(headers: HeadersLike) -> HeaderList:
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [check_header(name, value) for name, value in items]


def _default(value: Any) -> Any:
    """JSON for the standard types people return: dates, UUIDs, decimals, dataclasses, sets."""
    # PERF(lazy-import): a date, UUID or Decimal cannot exist unless its
    # module was imported, so the modules are looked up, never imported.
    modules = sys.modules
    dates = modules.get("datetime")
    if dates is not None and isinstance(value, (dates.date, dates.time)):
        return value.isoformat()
    uuids = modules.get("uuid")
    if uuids is not None and isinstance(value, uuids.UUID):
        return str(value)
    decimals = modules.get("decimal")
    if decimals is not None and isinstance(value, decimals.Decimal):
        return float(value) if value.as_tuple().exponent != 0 else int(value)
    if isinstance(value, enum.Enum):
        return value.value
    if _is_dataclass_instance(value):
        import dataclasses

        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _is_dataclass_instance(value: Any) -> bool:
    """``dataclasses.is_dataclass(value) and not isinstance(value, type)``, without importing dataclasses."""
    return hasattr(type(value), "__dataclass_fields__")


# PERF(lazy-import): the encoders are built by the first json_dumps(), which imports json.
_encode: Callable[[Any], str] | None = None
_c_encode: Any = None


def _build_encoders() -> Callable[[Any], str]:
    global _encode, _c_encode
    import json

    # JSONEncoder.encode() builds a new C encoder on every call, which is half
    # the cost of encoding a small dict; this one is built once.  It holds no
    # state between calls (no circular-reference memo: a cycle ends in
    # RecursionError instead of ValueError), so threads may share it.
    make_c_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_c_encoder is not None:
        _c_encode = make_c_encoder(None, _default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    # allow_nan=False: NaN and Infinity are not JSON; sending one is a bug (a logged 500).
    _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default, allow_nan=False).encode
    return _encode


def json_dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON, with dates, UUIDs, decimals and dataclasses converted."""
    encode = _encode or _build_encoders()
    if _c_encode is not None and (type(data) is dict or type(data) is list):
        text = "".join(_c_encode(data, 0))
    else:
        text = encode(data)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (JSON input may carry "\ud800") has no UTF-8 form;
        # escaped as \uXXXX it is still valid JSON text.
        import json

        return json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=_default,
                          allow_nan=False).encode("ascii")


class _Chunks:
    """Iterate ``chunks`` as bytes; :meth:`close` closes the source.

    A class, not a generator: closing a generator that never started runs
    none of its code, so a stream closed before its first chunk (a HEAD
    request, a client gone at once) would never close its source.
    """

    __slots__ = ("_source", "_iterator", "_also_close", "origin")

    def __init__(self, chunks: Iterable[Any], also_close: Iterable[Any] = ()) -> None:
        self._source = chunks
        self._iterator = iter(chunks)
        self._also_close = tuple(also_close)
        #: Who produced the chunks, for the error a wrong chunk raises (the app sets the handler's name).
        self.origin = "a streamed response"

    def __iter__(self) -> _Chunks:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._iterator)
        if type(chunk) is bytes:
            return chunk
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            return bytes(chunk)
        # bytes(3) would send three NUL bytes and str has no one encoding: refuse both.
        hint = " (encode it: chunk.encode())" if isinstance(chunk, str) else ""
        raise TypeError(f"{self.origin} yielded {type(chunk).__name__}, not bytes{hint}")

    def close(self) -> None:
        done: list[Any] = []
        for obj in (self._iterator, self._source, *self._also_close):
            if any(obj is d for d in done):
                continue
            done.append(obj)
            close = getattr(obj, "close", None)
            if close is not None:
                close()


class Response:
    """A status, headers and a body (bytes, text, or an iterable of bytes to stream).

    Args:
        body: ``bytes``, ``str`` (sent as UTF-8), None (empty), or an
            iterable of ``bytes`` to stream.
        status: the status code.
        headers: extra headers, a mapping or ``(name, value)`` pairs.
        content_type: the ``Content-Type``; default from the body's type.
    """

    __slots__ = ("status", "headers", "body")

    def __init__(
        self,
        body: bytes | str | Iterable[bytes] | None = b"",
        status: int = 200,
        headers: HeadersLike = None,
        *,
        content_type: str | None = None,
    ) -> None:
        if type(status) is not int or not 100 <= status <= 599:
            status = int(status)
            status_line(status)  # refuse impossible codes now, not when sending
        self.status = status
        self.headers: HeaderList = _header_items(headers) if headers else []
        if type(body) is not bytes:
            if body is None:
                body = b""
            elif isinstance(body, str):
                body = body.encode("utf-8")
                content_type = content_type or TEXT_TYPE
            elif isinstance(body, (bytearray, memoryview)):
                body = bytes(body)
        if not content_type:  # WSGI wants one; an empty body is empty text
            content_type = BYTES_TYPE if body != b"" else TEXT_TYPE
        self.body: bytes | Iterable[bytes] = body
        if not headers or self.get_header("content-type") is None:
            known = _CONTENT_TYPE_HEADERS.get(content_type)
            self.headers.append(known if known is not None else check_header("Content-Type", content_type))

    # -- constructors -----------------------------------------------------------

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: HeadersLike = None) -> Response:
        """A JSON response."""
        return cls(json_dumps(data), status, headers, content_type=JSON_TYPE)

    @classmethod
    def text(cls, text: str, status: int = 200, headers: HeadersLike = None) -> Response:
        """A ``text/plain`` UTF-8 response."""
        return cls(text.encode("utf-8"), status, headers, content_type=TEXT_TYPE)

    @classmethod
    def html(cls, html: str, status: int = 200, headers: HeadersLike = None) -> Response:
        """A ``text/html`` UTF-8 response."""
        return cls(html.encode("utf-8"), status, headers, content_type=HTML_TYPE)

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> Response:
        """A redirect to ``location`` (303 See Other by default)."""
        return cls(b"", status, [("Location", location)])

    # -- headers ------------------------------------------------------------------

    def get_header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case)."""
        size = len(name)
        for key, value in self.headers:
            # PERF(header-lookup): a name of another length is another name, without lower-casing
            # either (a gzipped 304 looks for two absent headers: 2,000 instructions less)
            if len(key) == size and key.lower() == name.lower():
                return value
        return default

    def set_header(self, name: str, value: str) -> None:
        """Set header ``name``, replacing every earlier value."""
        self.delete_header(name)
        self.headers.append(check_header(name, value))

    def add_header(self, name: str, value: str) -> None:
        """Add a value for header ``name``, keeping earlier ones (``Set-Cookie``, ``Link``)."""
        self.headers.append(check_header(name, value))

    def delete_header(self, name: str) -> None:
        """Remove every value of header ``name``."""
        lowered = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lowered]

    def set_cookie(
        self,
        name: str,
        value: str = "",
        *,
        max_age: int | None = None,
        expires: datetime.datetime | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = True,
        samesite: str | None = "Lax",
    ) -> None:
        """Add a ``Set-Cookie`` header (HttpOnly and SameSite=Lax unless told otherwise).

        Raises:
            ValueError: a name or value with characters a cookie cannot carry.
        """
        if not name or any(c in name for c in "=;, \t\r\n\0"):
            raise ValueError(f"invalid cookie name {name!r}")
        if any(c in value for c in ";,\r\n\0\"\\") or any(ord(c) < 32 for c in value):
            raise ValueError(f"cookie {name} has characters a cookie value cannot carry; encode it")
        parts = [f"{name}={value}"]
        if max_age is not None:
            parts.append(f"Max-Age={int(max_age)}")
        if expires is not None:
            import datetime  # already imported by whoever made `expires`
            from email.utils import format_datetime  # PERF(lazy-import): only cookies with expires=

            parts.append(f"Expires={format_datetime(expires.astimezone(datetime.timezone.utc), usegmt=True)}")
        for attribute, text in (("path", path), ("domain", domain or "")):
            if not text.isascii() or any(c in text for c in ";,\r\n\0") or not text.isprintable():
                raise ValueError(f"cookie {attribute} {text!r} has characters a cookie attribute cannot carry")
        if not value.isascii():
            raise ValueError(f"cookie {name} has non-ASCII characters; encode it")
        if path:
            parts.append(f"Path={path}")
        if domain:
            parts.append(f"Domain={domain}")
        if secure:
            parts.append("Secure")
        if httponly:
            parts.append("HttpOnly")
        if samesite:
            if samesite.lower() not in ("lax", "strict", "none"):
                raise ValueError("samesite must be Lax, Strict or None")
            parts.append(f"SameSite={samesite.capitalize()}")
        self.add_header("Set-Cookie", "; ".join(parts))

    def delete_cookie(self, name: str, *, path: str = "/", domain: str | None = None) -> None:
        """Tell the client to drop cookie ``name``."""
        self.set_cookie(name, "", max_age=0, path=path, domain=domain, samesite=None)

    # -- WSGI ---------------------------------------------------------------------

    def to_wsgi(self) -> WSGIResult:
        """``(status_line, headers, iterable)`` ready for ``start_response``."""
        status = self.status
        body = self.body
        headers = self.headers
        if status == 304 and type(body) is bytes:
            # PERF(304): a revalidation's answer, whose headers are the ones a 304 keeps, goes as it
            # is: 1,000 of the 41,000 instructions of a 304 (benchmarks.instructions)
            for name, _ in headers:
                if name not in _NOT_CONTENT_HEADERS:
                    break
            else:
                return _NOT_MODIFIED, headers[:], []
        line = STATUS_LINES.get(status) or status_line(status)
        if status < 200 or status in NO_BODY_STATUSES:  # not httprules.allows_body(), inlined
            if type(body) is not bytes and hasattr(body, "close"):
                body.close()
            kept = headers
            for name, _ in headers:  # PERF(bodyless): a built 304 usually has no header to drop
                if name not in _NOT_CONTENT_HEADERS and name.lower() in ("content-type", "content-length"):
                    kept = [h for h in headers if h[0].lower() not in ("content-type", "content-length")]
                    break
            if status == 205:
                # No content (RFC 9110 says "Content-Length: 0"), but PEP 3333's
                # validator wants a Content-Type on every status but 204 and 304.
                content_type = self.get_header("content-type") or TEXT_TYPE
                kept = kept + [("Content-Type", content_type), ("Content-Length", "0")]
            return line, kept[:], []
        if type(body) is bytes or isinstance(body, bytes):
            if self.get_header("content-length") is None:
                headers = headers + [("Content-Length", str(len(body)))]
            return line, headers, [body]
        return line, list(headers), _Chunks(body)

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


def render(result: Any) -> Response:
    """Turn anything a handler may return into a :class:`Response`.

    Raises:
        TypeError: a return value restkit does not know how to send.
    """
    if isinstance(result, Response):
        return result
    status = 200
    headers: HeadersLike = None
    if type(result) is tuple:
        if len(result) == 2:
            result, status = result
        elif len(result) == 3:
            result, status, headers = result
        else:
            raise TypeError("a handler's tuple must be (body, status) or (body, status, headers)")
        status = int(status)
        if isinstance(result, Response):
            result.status = status
            for name, value in _header_items(headers):
                result.set_header(name, value)
            return result
    if isinstance(result, (dict, list)):
        return Response(json_dumps(result), status, headers, content_type=JSON_TYPE)
    if isinstance(result, str):
        return Response(result.encode("utf-8"), status, headers, content_type=TEXT_TYPE)
    if isinstance(result, (bytes, bytearray, memoryview)):
        return Response(bytes(result), status, headers)
    if result is None:
        return Response(b"", 204 if status == 200 else status, headers)
    if _is_dataclass_instance(result):
        return Response(json_dumps(result), status, headers, content_type=JSON_TYPE)
    kind = type(result).__name__
    if isinstance(result, tuple):  # a NamedTuple would be streamed as its items: refuse it
        raise TypeError(
            f"a handler returned {kind}, a tuple subclass, which restkit cannot send: "
            f"return value._asdict() for JSON, or a plain (body, status) tuple"
        )
    if isinstance(result, (set, frozenset, Mapping)):
        what = "dict(value)" if isinstance(result, Mapping) else "list(value)"
        raise TypeError(f"a handler returned {kind}, which restkit cannot send: return {what} for JSON")
    if isinstance(result, Iterable):
        return Response(result, status, headers)
    raise TypeError(f"a handler returned {kind}, which restkit cannot send")


_OK = "200 OK"  # status_line(200), written out: computing it at import would import http
_NOT_MODIFIED = "304 Not Modified"  # status_line(304), likewise

_JSON_HEADER = ("Content-Type", JSON_TYPE)
_TEXT_HEADER = ("Content-Type", TEXT_TYPE)


def wsgi_result(result: Any) -> WSGIResult:
    """``render(result).to_wsgi()``: what ``start_response`` and the server take.

    Raises:
        TypeError: a return value restkit does not know how to send.
    """
    # PERF: the common returns (a dict, list or str, alone or as (value,
    # status) with a status that carries a body) are sent without building
    # a Response.  The answer is the same byte for byte (tests/test_response.py
    # checks it); anything else takes the general path below.
    value, status = result, _OK
    kind = type(value)
    if kind is tuple and len(value) == 2:
        code = value[1]
        if type(code) is int:
            line = BODY_STATUS_LINES.get(code)  # PERF(status-lines): one lookup, no call
            if line is None and 200 <= code < 600 and allows_body(code):
                line = status_line(code)
            if line is not None:
                value, status = value[0], line
                kind = type(value)
    if kind is dict or kind is list:
        try:
            # PERF(json-inline): json_dumps() without the call, 600 of the 100,000 instructions
            # of a POST of JSON (benchmarks.instructions); a lone surrogate goes the long way
            data = "".join(_c_encode(value, 0)).encode("utf-8") if _c_encode is not None else json_dumps(value)
        except UnicodeEncodeError:
            data = json_dumps(value)
        return status, [_JSON_HEADER, ("Content-Length", str(len(data)))], [data]
    if kind is str:
        data = value.encode("utf-8")
        return status, [_TEXT_HEADER, ("Content-Length", str(len(data)))], [data]
    if kind is Response and value is result:  # what render() would give back unchanged
        return value.to_wsgi()  # type: ignore[no-any-return]
    return render(result).to_wsgi()


def multipart_stream(
    parts: Iterable[bytes | tuple[bytes, str]],
    *,
    boundary: str = "restkitframe",
    subtype: str = "x-mixed-replace",
    content_type: str = "application/octet-stream",
    headers: HeadersLike = None,
) -> Response:
    """A streamed ``multipart/<subtype>`` response, one part per item of ``parts``.

    Each item is the bytes of a part (of ``content_type``) or ``(bytes,
    content_type)``.  Every part carries ``Content-Type`` and
    ``Content-Length`` and is written in one piece.  This is what browsers
    show as a live picture with ``multipart/x-mixed-replace`` and JPEG parts.
    Closing the response closes ``parts``.

    Browsers show a part once the next one starts, and a client that left is
    noticed only when a write fails: a source that may go quiet (an
    unchanged screen) should re-send its last part now and then.
    """
    if not boundary or len(boundary) > 70 or not all(c.isalnum() or c in "'()+_,-./:=?" for c in boundary):
        raise ValueError(f"invalid multipart boundary {boundary!r}")
    delimiter = f"--{boundary}\r\n".encode("ascii")
    iterator = iter(parts)

    def generate() -> Iterator[bytes]:
        for item in iterator:
            data, part_type = item if isinstance(item, tuple) else (item, content_type)
            head = f"Content-Type: {part_type}\r\nContent-Length: {len(data)}\r\n\r\n".encode("latin-1")
            yield b"".join((delimiter, head, data, b"\r\n"))

    body = _Chunks(generate(), also_close=(iterator, parts))
    return Response(body, 200, headers, content_type=f"multipart/{subtype}; boundary={boundary}")
