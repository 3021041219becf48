"""The request a handler receives: a lazy view over the WSGI environ.

Nothing is parsed until it is asked for: the query string on first use of
``request.query``, the headers on first use of ``request.headers``, the body
on first use of ``request.body`` (and ``json``/``form``/``files``).  Each is
then cached.  The body is read at most once and never beyond the app's
``max_body_size``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .datastructures import Headers, MultiDict
from .errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from .forms import UploadedFile, parse_multipart, parse_urlencoded, split_pairs
from .httprules import media_type_accepted

if TYPE_CHECKING:
    from .routing import Route

__all__ = ["Request", "media_type_accepted", "decode_path"]

DEFAULT_MAX_BODY_SIZE = 1 << 20
_URLENCODED = "application/x-www-form-urlencoded"
_UPPER_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def decode_path(path_info: str) -> str:
    """Turn WSGI's Latin-1 ``PATH_INFO`` into the UTF-8 text the client meant.

    Raises:
        BadRequest: the path's bytes are not UTF-8.
    """
    if path_info.isascii():
        return path_info
    try:
        return path_info.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise BadRequest("request path is not valid UTF-8") from None


# What urllib.parse.quote() leaves as it is (with safe="/"): a path of these
# needs no quoting.
_URL_PATH_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~/")


def _quote_path(path: str) -> str:
    """``urllib.parse.quote(path)``, without running the import for a path that needs no quoting."""
    if _URL_PATH_SAFE.issuperset(path):
        return path
    # PERF(lazy-import): executing a function-level "from urllib.parse import
    # quote" costs 10,000 instructions on Python 3.11 (the import system asks
    # the module for __path__ and formats the AttributeError), more than the rest
    # of building a URL; most paths never get here.
    from urllib.parse import quote

    return quote(path)


def _wsgi_text(value: str) -> str:
    """Re-decode a WSGI Latin-1 string as UTF-8, replacing what does not decode."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # not a WSGI native string; take it as it is
        return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# PERF(lazy-import): built by the first body parsed as JSON, which imports json.
_json_decode: Callable[[str], Any] | None = None
_json_scan: Callable[[str, int], tuple[Any, int]] | None = None
_JSONDecodeError: Any = None  # json.JSONDecodeError, once json is imported


def _build_json_decoder() -> Callable[[str], Any]:
    global _json_decode, _json_scan, _JSONDecodeError
    import json

    _JSONDecodeError = json.JSONDecodeError  # set first: a decoder is never seen without it
    # One decoder for every request: json.loads(text, parse_constant=...) builds a new one per call.
    decoder = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    _json_scan = getattr(decoder, "scan_once", None)  # not in the type stubs
    _json_decode = decoder.decode
    return _json_decode


def _decode_json(text: str) -> Any:
    """``text`` parsed as JSON by the one decoder, or the error worded for the client.

    Raises:
        BadRequest: malformed JSON; the message names the position.
    """
    decode = _json_decode or _build_json_decoder()
    try:
        if text.startswith("\ufeff"):  # a second BOM; json.loads refuses it with this message
            raise _JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return decode(text)
    except _JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {exc.msg}"
        ) from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, integers too long to convert
        raise BadRequest(f"malformed JSON: {exc}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members as a dict; a key given twice is malformed input, not "the last one wins"."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = key if len(key) <= 64 else key[:64] + "..."
                raise ValueError(f"duplicate key {shown!r}")
            seen.add(key)
    return result

T = TypeVar("T")

_UNPARSED: Any = object()  # Request._json and ._length before they are parsed (None is a value of both)


class lazy_attribute(Generic[T]):
    """``functools.cached_property`` without the lock it takes on Python 3.11.

    The first access computes the value and stores it on the instance,
    where later accesses find it without calling this descriptor.  A
    request is served by one thread, so no lock is needed, and the lock
    cost a microsecond per lazily parsed field.
    """

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> lazy_attribute[T]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any]) -> T: ...
    def __get__(self, instance: object, owner: type[Any]) -> T | lazy_attribute[T]:
        if instance is None:
            return self
        value = self._compute(instance)
        # PERF(lazy-attribute): setattr(), not instance.__dict__[name] = value: on CPython 3.11
        # reading __dict__ turns the instance's inline attribute values into a dict, which costs
        # 240 instructions and makes every later attribute read of the request slower (six
        # reads: 420 -> 2,030 instructions; valgrind, Dec 2026).
        setattr(instance, self._name, value)
        return value


def _is_json_type(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


class Request:
    """One HTTP request.

    Args:
        environ: the WSGI environ.
        max_body_size: bytes the body may have before it is refused with 413.
        path: the decoded path, when the caller already has it.
    """

    #: The matched route (set by the app).
    route: Route | None = None

    def __init__(self, environ: dict[str, Any], *, max_body_size: int = DEFAULT_MAX_BODY_SIZE, path: str | None = None):
        self.environ = environ
        method = environ["REQUEST_METHOD"]
        # PERF(method): a set lookup instead of upper() for what servers pass on: 200 instructions
        self.method: str = method if method in _UPPER_METHODS else method.upper()
        self.path: str = path if path is not None else decode_path(environ.get("PATH_INFO") or "/")
        self.max_body_size = max_body_size
        #: The converted parameters of the matched route (set by the app).
        self.params: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path!r}>"

    @lazy_attribute
    def context(self) -> dict[str, Any]:
        """Free space for hooks and handlers to share per-request data."""
        return {}

    # -- the URL ------------------------------------------------------------

    @property
    def script_name(self) -> str:
        """Where the app is mounted by the server (WSGI ``SCRIPT_NAME``)."""
        return _wsgi_text(str(self.environ.get("SCRIPT_NAME", "")))

    @property
    def query_string(self) -> str:
        """The raw query string, without ``?``."""
        return str(self.environ.get("QUERY_STRING", ""))

    @lazy_attribute
    def host(self) -> str:
        """``Host`` header, or the server's name and port."""
        env = self.environ
        host = env.get("HTTP_HOST")
        if host:
            return str(host)
        name, port = env.get("SERVER_NAME", "localhost"), str(env.get("SERVER_PORT", ""))
        scheme = env.get("wsgi.url_scheme", "http")
        default = "443" if scheme == "https" else "80"
        return name if port in ("", default) else f"{name}:{port}"

    @property
    def scheme(self) -> str:
        return str(self.environ.get("wsgi.url_scheme", "http"))

    @lazy_attribute
    def base_url(self) -> str:
        """Scheme, host and script name: where the app's own paths start."""
        return f"{self.scheme}://{self.host}{_quote_path(self.script_name)}"

    @lazy_attribute
    def url(self) -> str:
        """The full URL of the request, percent-encoded."""
        url = self.base_url + _quote_path(self.path)
        if self.query_string:
            url += "?" + self.query_string
        return url

    def url_for(self, name: str, /, *, _external: bool = False, **params: Any) -> str:
        """Path (or with ``_external=True`` the full URL) of a route, with ``SCRIPT_NAME``."""
        app = self.environ.get("restkit.app")
        if app is None:
            raise RuntimeError("request.url_for needs a request dispatched by a restkit App")
        path = _quote_path(self.script_name) + app.url_for(name, **params)
        return f"{self.scheme}://{self.host}{path}" if _external else path

    @lazy_attribute
    def query(self) -> MultiDict[str]:
        """Query parameters; repeated keys are kept, bad escapes become U+FFFD."""
        qs = self.query_string
        if not qs:
            return MultiDict()
        return MultiDict(split_pairs(_wsgi_text(qs)))

    # -- headers --------------------------------------------------------------

    @lazy_attribute
    def headers(self) -> Headers:
        """Request headers; names are case-insensitive."""
        items = []
        for key, value in self.environ.items():
            if key.startswith("HTTP_"):
                items.append((key[5:].replace("_", "-").title(), value))
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                items.append((key.replace("_", "-").title(), value))
        return Headers(items)

    @property
    def remote_addr(self) -> str | None:
        """The client's address: the server's peer, or what a trusted proxy said (:mod:`restkit.proxy`)."""
        addr = self.environ.get("REMOTE_ADDR")
        return None if addr is None else str(addr)

    @lazy_attribute
    def cookies(self) -> dict[str, str]:
        """Cookies sent by the client; the first of a repeated name wins."""
        cookies: dict[str, str] = {}
        for pair in self.environ.get("HTTP_COOKIE", "").split(";"):
            name, sep, value = pair.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name:
                continue
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, _wsgi_text(value))
        return cookies

    # PERF(cheap-property): a property, recomputed on each read, for what is cheap to compute and
    # read once or twice a request: its read costs 630 instructions, the first read of a
    # lazy_attribute 2,000 (the descriptor's __get__ runs as Python; valgrind, Python 3.11).
    @property
    def content_type(self) -> str:
        """The media type of the body, lower case, without parameters ("" if none)."""
        return self.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()  # type: ignore[no-any-return]

    #: What ``content_length`` gave, once parsed.
    _length: Any = _UNPARSED

    # PERF(cached-property): the body, its length, json and form are properties that keep their value
    # in an attribute with a class default, not lazy_attributes: the first read of a lazy_attribute
    # runs its __get__ as Python (2,000 instructions), of a property 630; every later read costs a
    # property call.  With the others in this change, a POST of JSON went from 105,892 to 97,733
    # instructions (benchmarks.instructions).
    @property
    def content_length(self) -> int | None:
        """The declared body length, or None.

        Raises:
            BadRequest: the header is not a non-negative integer.
        """
        length: int | None = self._length
        if length is not _UNPARSED:
            return length
        raw = self.environ.get("CONTENT_LENGTH")
        if not raw:
            length = None
        elif raw.isascii() and raw.isdigit() and len(raw) <= 18:  # the usual case, without the strip
            length = int(raw)
        else:
            raw = raw.strip()
            if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
                raise BadRequest(f"invalid Content-Length header: {raw[:40]!r}")
            length = int(raw)
        self._length = length
        return length

    @content_length.setter
    def content_length(self, value: int | None) -> None:
        self._length = value

    def accepts(self, media_type: str) -> bool:
        """Whether the ``Accept`` header admits ``media_type`` (no header admits everything)."""
        header = self.environ.get("HTTP_ACCEPT")
        return not header or media_type_accepted(header, media_type)

    # -- the body ---------------------------------------------------------------

    #: The body, once read.
    _body: bytes | None = None

    @property  # cached in _body (see content_length)
    def body(self) -> bytes:
        """The raw body, read once, at most ``max_body_size`` bytes.

        Without ``Content-Length`` the body is empty, unless the server marks
        the input as terminated (``wsgi.input_terminated``, e.g. for chunked
        uploads), in which case it is read up to the limit.

        Raises:
            PayloadTooLarge: the body is over the limit (checked before reading
                when ``Content-Length`` says so).
            BadRequest: the body ended before ``Content-Length`` bytes.
            RequestTimeout: the client stopped sending.
        """
        body = self._body
        return body if body is not None else self._read_body()

    @body.setter
    def body(self, value: bytes) -> None:  # assignable, as it was as a lazy attribute
        self._body = value

    def _read_body(self) -> bytes:
        """Read the body and keep it in ``_body``: the first use of ``body``, ``json`` or ``form``."""
        limit = self.max_body_size
        length = self.content_length
        stream = self.environ.get("wsgi.input")
        if stream is None or (length is None and not self.environ.get("wsgi.input_terminated")):
            data = b""
        elif length is None:
            data = self._read(stream, limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        elif length > limit:
            raise PayloadTooLarge(f"request body is {length} bytes; the limit is {limit}")
        else:
            data = self._read(stream, length)
            if len(data) < length:
                raise BadRequest(f"request body ended after {len(data)} of {length} bytes")
        self._body = data
        return data

    @staticmethod
    def _read(stream: Any, size: int) -> bytes:
        try:
            chunk = stream.read(min(size, 65536)) if size > 0 else b""
            if type(chunk) is bytes and len(chunk) == size:
                return chunk  # the whole body in one read: the usual case
            chunks = []
            remaining = size
            while chunk:
                chunks.append(chunk)
                remaining -= len(chunk)
                if remaining <= 0:
                    break
                chunk = stream.read(min(remaining, 65536))
        except TimeoutError:
            raise RequestTimeout("timed out reading the request body") from None
        except (OSError, ValueError):
            raise BadRequest("could not read the request body") from None
        return b"".join(chunks)

    #: What ``json`` gave, once parsed.
    _json: Any = _UNPARSED

    @property  # cached in _json (see content_length)
    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            UnsupportedMediaType: ``Content-Type`` is not JSON.
            BadRequest: empty, not UTF-8, or malformed (the message names the position).
        """
        value = self._json
        if value is not _UNPARSED:
            return value
        if self.environ.get("CONTENT_TYPE") != "application/json":  # what clients send, without the parse
            media_type = self.content_type
            if not _is_json_type(media_type):
                got = media_type or "no Content-Type"
                raise UnsupportedMediaType(f"expected a body of type application/json, got {got}")
        body = self._body
        if body is None:
            body = self._read_body()
        if not body:
            raise BadRequest("request body is empty; expected JSON")
        # PERF: decode("utf-8-sig") is a Python-level codec; "utf-8" is C.
        offset = 3 if body[0] == 0xEF and body[:3] == b"\xef\xbb\xbf" else 0
        try:
            text = body[offset:].decode("utf-8") if offset else body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"request body is not valid UTF-8 (at byte {exc.start + offset})") from None
        if _json_decode is None:
            _build_json_decoder()
        if _json_scan is not None:
            # PERF: decode() is the C scanner plus two regular expressions for
            # the whitespace around the value; a body without any (what clients
            # send) needs the scanner alone.  Anything else, errors included
            # (a second BOM stops the scanner at once), goes through decode(),
            # which words them.
            try:
                value, end = _json_scan(text, 0)
            except (StopIteration, ValueError, RecursionError):
                end = -1
            if end == len(text):
                self._json = value
                return value
        value = self._json = _decode_json(text)
        return value

    @json.setter
    def json(self, value: Any) -> None:
        self._json = value

    #: What ``form`` gave, once parsed.
    _form: MultiDict[str] | None = None

    @property  # cached in _form (see content_length)
    def form(self) -> MultiDict[str]:
        """Form fields of a urlencoded or multipart body; empty for other types."""
        form = self._form
        if form is not None:
            return form
        media_type = self.environ.get("CONTENT_TYPE")
        if media_type != _URLENCODED:  # what browsers send, without the parse
            media_type = self.content_type
        if media_type == _URLENCODED:
            body = self._body
            if body is None:
                body = self._read_body()
            form = parse_urlencoded(body.decode("utf-8", "replace"))
        elif media_type == "multipart/form-data":
            form = self._multipart[0]
        else:
            form = MultiDict()
        self._form = form
        return form

    @form.setter
    def form(self, value: MultiDict[str]) -> None:
        self._form = value

    @lazy_attribute
    def files(self) -> MultiDict[UploadedFile]:
        """Uploaded files of a multipart body, by field name."""
        if self.content_type == "multipart/form-data":
            return self._multipart[1]
        return MultiDict()

    @lazy_attribute
    def _multipart(self) -> tuple[MultiDict[str], MultiDict[UploadedFile]]:
        return parse_multipart(self.body, self.environ.get("CONTENT_TYPE", ""))
