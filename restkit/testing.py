"""An in-process test client: call a WSGI app as a server would, with no socket.

::

    from restkit import App
    from restkit.testing import Client

    app = App()
    items = {}

    @app.put("/items/<int:id>")
    def put_item(request, id):
        items[id] = {"id": id, **request.json}
        return items[id]

    @app.get("/items/<int:id>")
    def get_item(request, id):
        return items[id]

    client = Client(app)
    client.put("/items/1", json={"name": "lamp"}, status=200)
    assert client.get("/items/1").json == {"id": 1, "name": "lamp"}

Theory of operation
-------------------
Each call builds a PEP 3333 environ, calls the app and reads what it answers,
as a server would.  The app is wrapped in :func:`wsgiref.validate.validator`
unless ``Client(app, validate=False)``, so a PEP 3333 violation (a ``str``
body part, a malformed status line or header, a response iterable left
unclosed) fails the test that caused it.

A :class:`Response` is what the app sent, untouched: headers in their order
and case, repeats kept, and the body as bytes, so a gzip body stays
compressed.  :meth:`Client.request` reads the body whole and closes the app's
iterable; :meth:`Client.stream` leaves both to the test, which takes the
body part by part (:meth:`Response.iter_parts`) and must close it, as a server
must (the validator reports a stream left open).  HEAD answers have an empty
body, whatever the app gives: a server sends none.

Cookies the app sets are kept and sent back, in a simple name=value jar like
WebTest's: no domain or path matching, and expiry only as deletion (a
``Max-Age`` of 0 or less, an ``Expires`` date in the past).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import unquote_to_bytes, urlencode
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

from .datastructures import Headers
from .response import json_dumps

if TYPE_CHECKING:
    from typing import Unpack  # Python 3.11+; only the type checker reads it

__all__ = ["Client", "RequestOptions", "Response", "ResponseHeaders"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FormData = Mapping[str, str | Sequence[str]]
HeaderItems = Mapping[str, str] | Iterable[tuple[str, str]]

BODY_PREVIEW = 2000  # characters of body shown in a failed status check


class RequestOptions(TypedDict, total=False):
    """The keywords of every request method (see :meth:`Client.request`)."""

    json: Any
    data: bytes | str | FormData | None
    headers: HeaderItems | None
    query: str | FormData | Sequence[tuple[str, str]] | None
    status: int | Collection[int] | None
    environ: Mapping[str, Any] | None


_OPTION_NAMES = frozenset(RequestOptions.__annotations__)


class ResponseHeaders(Headers):
    """Response headers: case-insensitive names, repeated headers kept in order."""

    __slots__ = ()

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` (any case), in order: ``get_all("Set-Cookie")``."""
        return self.getall(name)


class Response:
    """What the app answered: status, headers and body, as it sent them.

    Attributes:
        status: the status code (``404``).
        status_line: the status as sent (``"404 Not Found"``).
        headers: a :class:`ResponseHeaders`.
        request: the request answered (``"GET /items/1"``), for messages.
    """

    def __init__(self, request: str, status_line: str, headers: list[tuple[str, str]], parts: Iterator[bytes],
                 close: Callable[[], object], *, discard_body: bool = False) -> None:
        self.request = request
        self.status_line = status_line
        self.status = int(status_line[:3])
        self.headers = ResponseHeaders(headers)
        self._parts = parts
        self._close = close
        self._closed = False
        self._taken: list[bytes] = []  # parts iter_parts() gave, so that .body is still the whole body
        self._body: bytes | None = None
        if discard_body:  # HEAD: a server sends no body, and need not read it
            self._body = b""
            self.close()

    @property
    def body(self) -> bytes:
        """The whole body as sent (still compressed if it was).

        On a stream, reads the rest and closes it; after ``close()``, only what was read before.
        """
        if self._body is None:
            try:
                if not self._closed:
                    self._taken.extend(self._parts)
            finally:
                self.close()
            self._body = b"".join(self._taken)
            self._taken = []
        return self._body

    @property
    def text(self) -> str:
        """The body decoded with the ``Content-Type`` charset (UTF-8 by default)."""
        return self.body.decode(_charset(self.headers.get("Content-Type", "")) or "utf-8")

    @property
    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ValueError: the body is not JSON; the message shows it.
        """
        try:
            return json.loads(self.body)
        except ValueError as error:  # JSONDecodeError, or UnicodeDecodeError for bytes in no UTF
            raise ValueError(f"{self.request} answered {self.status_line} with a body that is not JSON ({error}):\n"
                             f"{self.preview()}") from None

    def iter_parts(self) -> Iterator[bytes]:
        """Yield the body's parts one at a time, as the app gives them; close the app's iterable at the end.

        Each call continues where the last stopped, so ``next(response.iter_parts())``
        takes one more part.  A body already read whole comes as one part.
        """
        if self._body is not None:
            if self._body:
                yield self._body
            return
        if self._closed:
            return
        try:
            for part in self._parts:
                self._taken.append(part)
                yield part
        except GeneratorExit:  # this iterator was dropped part way: the stream stays open for the next one
            raise
        except BaseException:  # the app failed mid-stream: a server would close it
            self.close()
            raise
        self.close()

    def close(self) -> None:
        """Call the app's iterable's ``close()`` (PEP 3333), once; what is left unread is dropped."""
        if not self._closed:
            self._closed = True
            self._close()

    def preview(self) -> str:
        """The body, or its start, for a message; a stream not read yet is not read here (it may never end)."""
        if self._body is None:
            return "(a stream: its body was not read)"
        if not self._body:
            return "(empty body)"
        text = self._body[:BODY_PREVIEW * 4].decode("utf-8", "replace")
        return text if len(text) <= BODY_PREVIEW else f"{text[:BODY_PREVIEW]}... ({len(self._body)} bytes)"

    def __enter__(self) -> Response:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Response {self.status_line!r} to {self.request}>"


class Client:
    """Send requests to a WSGI app in process, checked against PEP 3333.

    Args:
        app: any WSGI application.
        validate: wrap ``app`` in :func:`wsgiref.validate.validator`.
        environ: entries added to every request's environ (``{"REMOTE_ADDR": "10.0.0.1"}``).

    ``client.cookies`` is the jar: a dict of name to value, sent back with each request.
    """

    def __init__(self, app: WSGIApp, *, validate: bool = True, environ: Mapping[str, Any] | None = None) -> None:
        self.app: WSGIApp = validator(app) if validate else app
        self.environ = dict(environ or {})
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> Response:
        """Send one request and read the whole answer.

        Args:
            method: the HTTP method.
            path: the path, percent-encoded or not, with a query string or not.
            json: a value sent as JSON (``application/json``); dates, UUIDs
                and dataclasses are converted as restkit's responses do.
            data: bytes or a str (UTF-8) sent as they are, or a dict sent as
                ``application/x-www-form-urlencoded`` (a list value repeats the key).
            headers: request headers, a dict or ``(name, value)`` pairs.
            query: a query string, or a dict or pairs to encode; added to
                any query in ``path``.
            status: the status (an int) or statuses (a collection) the answer
                must have.
            environ: entries added to the WSGI environ of this request.

        Raises:
            AssertionError: the status is not ``status``; the message shows the body.
        """
        response = self._open(method, path, options)
        response.body  # read it whole now, which closes the app's iterable
        _check_status(response, options.get("status"))
        return response

    def stream(self, method: str, path: str, **options: Unpack[RequestOptions]) -> Response:
        """Send one request and leave the body unread: take it with ``iter_parts()``, then ``close()``.

        The options are those of :meth:`request`; ``status`` is checked
        before any of the body is read.  Usable as a context manager, which closes.
        """
        response = self._open(method, path, options)
        try:
            _check_status(response, options.get("status"))
        except AssertionError:
            response.close()
            raise
        return response

    def get(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """GET ``path``; the options are those of :meth:`request`."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """POST to ``path``; the options are those of :meth:`request`."""
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """PUT to ``path``; the options are those of :meth:`request`."""
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """PATCH ``path``; the options are those of :meth:`request`."""
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """DELETE ``path``; the options are those of :meth:`request`."""
        return self.request("DELETE", path, **options)

    def options(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """OPTIONS ``path``; the options are those of :meth:`request`."""
        return self.request("OPTIONS", path, **options)

    def head(self, path: str, **options: Unpack[RequestOptions]) -> Response:
        """HEAD ``path`` (the body is always empty); the options are those of :meth:`request`."""
        return self.request("HEAD", path, **options)

    # -- one exchange -------------------------------------------------------------------

    def _open(self, method: str, path: str, options: RequestOptions) -> Response:
        """Call the app and return its answer with the body not yet read."""
        unknown = set(options) - _OPTION_NAMES  # **options is not checked by Python itself
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {', '.join(sorted(unknown))}; "
                            f"a request takes {', '.join(sorted(_OPTION_NAMES))}")
        method = method.upper()
        environ = self._environ(method, path, options)
        started: list[tuple[str, list[tuple[str, str]]]] = []
        written: list[bytes] = []  # what the app gave the legacy write() callable

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if started and exc_info is None:
                raise AssertionError(f"{method} {path}: start_response called twice without exc_info (PEP 3333)")
            if exc_info is not None and written:  # PEP 3333: part of the body is out, too late to change the status
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [(status, headers)]
            return written.append

        result = self.app(environ, start_response)
        close = getattr(result, "close", lambda: None)
        try:
            parts = iter(result)
            first: list[bytes] = []
            if not started:  # PEP 3333 lets a generator call start_response when first asked for a part
                part = next(parts, None)
                first.extend(() if part is None else (part,))
            if not started:
                raise AssertionError(f"{method} {path}: the app gave its body without calling start_response")
        except BaseException:
            close()
            raise
        status_line, headers = started[-1]
        response = Response(f"{method} {path}", status_line, list(headers), _bytes_only(written, first, parts), close,
                            discard_body=method == "HEAD")
        self._keep_cookies(response.headers.get_all("Set-Cookie"))
        return response

    def _environ(self, method: str, path: str, options: RequestOptions) -> dict[str, Any]:
        """The PEP 3333 environ of a request, with the client's and the request's extras."""
        if not path.startswith("/"):
            raise ValueError(f"a path starts with '/': {path!r}")
        path, _, query = path.partition("?")
        extra = options.get("query")
        if extra is not None:
            encoded = extra if isinstance(extra, str) else urlencode(extra, doseq=True)
            query = "&".join(q for q in (query, encoded) if q)
        body, content_type = _encode_body(options.get("json"), options.get("data"))
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            # PEP 3333: the path percent-decoded, each byte one character (latin-1).
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,  # what the app logs there shows in the test's captured output
        }
        if body or method in ("POST", "PUT", "PATCH"):  # as a client sends "Content-Length: 0" with an empty POST
            environ["CONTENT_LENGTH"] = str(len(body))
        if content_type is not None:
            environ["CONTENT_TYPE"] = content_type
        _add_headers(environ, options.get("headers"), self.cookies)
        environ.update(self.environ)
        environ.update(options.get("environ") or {})
        setup_testing_defaults(environ)  # SERVER_NAME, HTTP_HOST, wsgi.*: after the extras, which may set the scheme
        return environ

    def _keep_cookies(self, set_cookies: list[str]) -> None:
        for header in set_cookies:
            pair, *attributes = header.split(";")
            name, has_value, value = pair.partition("=")
            name = name.strip()
            if not (name and has_value):
                continue  # RFC 6265, section 5.2: such a cookie is ignored
            if _expired(attributes):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value.strip()


def _bytes_only(*sources: Iterable[bytes]) -> Iterator[bytes]:
    """The body's parts in order, refusing what is not bytes (the validator would too, when on)."""
    for source in sources:
        for part in source:
            if not isinstance(part, bytes):
                raise TypeError(f"the app gave a body part that is not bytes (PEP 3333): {part!r:.80}")
            yield part


def _encode_body(value: Any, data: bytes | str | FormData | None) -> tuple[bytes, str | None]:
    """The request body and the Content-Type it implies (None: the caller's headers say)."""
    if value is not None:
        if data is not None:
            raise TypeError("give json= or data=, not both")
        return json_dumps(value), "application/json"
    if data is None:
        return b"", None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), None
    if isinstance(data, str):
        return data.encode("utf-8"), None
    return urlencode(data, doseq=True).encode("ascii"), "application/x-www-form-urlencoded"


def _add_headers(environ: dict[str, Any], headers: HeaderItems | None, jar: Mapping[str, str]) -> None:
    """Put request headers into ``environ`` as CGI variables, with the jar's cookies.

    Repeated headers are joined with ", " (RFC 9110, section 5.3), cookies with "; ".
    A ``Cookie`` header given here wins over the jar's cookie of the same name.
    """
    items = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    cookies = [value for name, value in items if name.lower() == "cookie"]
    given = {pair.partition("=")[0].strip() for value in cookies for pair in value.split(";")}
    cookies[:0] = [f"{name}={value}" for name, value in jar.items() if name not in given]
    if cookies:
        environ["HTTP_COOKIE"] = "; ".join(cookies)
    for name, value in items:
        key = name.upper().replace("-", "_")
        if key == "COOKIE":
            continue
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
            if key in environ:
                value = f"{environ[key]}, {value}"
        environ[key] = value


def _expired(attributes: list[str]) -> bool:
    """Whether Set-Cookie attributes delete the cookie; Max-Age wins over Expires (RFC 6265, section 5.3)."""
    found = {key.strip().lower(): value.strip() for key, _, value in (a.partition("=") for a in attributes)}
    if "max-age" in found:
        try:
            return int(found["max-age"]) <= 0
        except ValueError:
            return False  # an attribute that does not parse is ignored
    if "expires" in found:
        try:
            expires = parsedate_to_datetime(found["expires"])
            if expires.tzinfo is None:  # "-0000": UTC, says RFC 5322
                expires = expires.replace(tzinfo=timezone.utc)
            return expires <= datetime.now(timezone.utc)
        except (TypeError, ValueError):
            return False
    return False


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"')
    return None


def _check_status(response: Response, expected: int | Collection[int] | None) -> None:
    if expected is None:
        return
    if isinstance(expected, int):
        if response.status == expected:
            return
        wanted = f"status {expected}"
    else:
        if response.status in expected:
            return
        wanted = f"a status in {expected!r}"
    raise AssertionError(f"{response.request}: expected {wanted}, got {response.status_line}\n{response.preview()}")
