"""A strict HTTP/1.1 client for the server tests: raw bytes out, h11 reads what comes back.

Theory of operation
-------------------
The server tests send requests byte for byte (many of them malformed on
purpose), so the client cannot be an ordinary library: it writes raw bytes to
the socket.  Reading the answers is where strictness pays: every response goes
through h11, a parser that follows RFC 9112 to the letter, so a response with
bad framing (a surplus byte, a missing final chunk, a header h11 refuses)
shows up as ``error`` or ``complete=False`` instead of passing unnoticed.

h11 reads a response only after it has *sent* a request (it needs the method
to know whether a body follows: HEAD has none).  So for each response we
expect, :class:`ResponseReader` makes h11 send a stand-in request with the
same method and throws those bytes away; the bytes that really went to the
server are the test's own.

Every socket has a timeout, so a server that never answers fails the test
instead of hanging it.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any
from wsgiref.validate import validator

import h11

TIMEOUT = 10.0


@dataclass
class Response:
    """One response as h11 read it.

    ``status`` is None when the server sent nothing (it closed, or h11 refused
    the first bytes); ``complete`` is True only once h11 saw the end of the
    message (Content-Length reached, final chunk, or close for a
    close-delimited body); ``error`` holds h11's RemoteProtocolError message.
    """

    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = False
    error: str | None = None
    informational: list[int] = field(default_factory=list)
    http_version: str = ""

    def header(self, name: str) -> str | None:
        """The value of ``name`` (case-insensitive), None when absent; several are joined with ", "."""
        values = self.header_values(name)
        return ", ".join(values) if values else None

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    @property
    def closes(self) -> bool:
        """The response says ``Connection: close``."""
        return any(token.strip().lower() == "close" for token in (self.header("connection") or "").split(","))

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> str:
        """A short summary for assertion messages."""
        return (f"status={self.status} complete={self.complete} error={self.error!r} "
                f"headers={self.headers!r} body={self.body[:300]!r}")


def connect(port: int, timeout: float = TIMEOUT) -> socket.socket:
    """A TCP connection to the server on 127.0.0.1, with a timeout on every operation."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


class ResponseReader:
    """Reads the responses arriving on ``sock`` one by one through h11 (see the module docstring)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)
        self.eof = False

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return b""  # a reset after the answer counts as a close

    def _feed(self) -> None:
        if self.eof:
            raise AssertionError("h11 asked for data after the connection was closed")
        data = self._recv()
        if not data:
            self.eof = True
        self.conn.receive_data(data)

    def read(self, method: str = "GET") -> Response:
        """The next response, read as the answer to a request with ``method``."""
        response = Response()
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        if self.conn.our_state is not h11.IDLE:
            # the previous response closed the connection: nothing more can be read as a response
            response.error = f"no response possible: h11 is in state {self.conn.their_state}"
            return response
        # a stand-in request, so that h11 expects a response to `method`; its bytes are discarded
        self.conn.send(h11.Request(method=method, target="/", headers=[("Host", "h11")]))
        self.conn.send(h11.EndOfMessage())
        body = bytearray()
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                response.error = str(exc)
                break
            if event is h11.NEED_DATA:
                if self.eof:  # closed before a response started: h11 would raise on the EOF
                    break
                self._feed()
                if self.eof and response.status is None and not self.conn.trailing_data[0]:
                    break  # closed without a single byte of response
                continue
            if isinstance(event, h11.InformationalResponse):
                response.informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                response.status = event.status_code
                response.http_version = event.http_version.decode("ascii")
                response.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                response.complete = True
                break
            elif isinstance(event, h11.ConnectionClosed):
                break
        response.body = bytes(body)
        return response

    def rest(self) -> bytes:
        """Whatever the server sends after the responses read so far, until it closes.

        Call it when the server should have closed: anything returned is bytes the
        server sent that belong to no response (a framing bug).
        """
        data = bytearray(self.conn.trailing_data[0])
        while not self.eof:
            chunk = self._recv()
            if not chunk:
                self.eof = True
            data += chunk
        return bytes(data)

    def closed(self) -> bool:
        """True when the server closed the connection with no further byte."""
        return self.rest() == b""


def raw_exchange(port: int, data: bytes, *, method_for_h11: str = "GET", half_close: bool = False,
                 timeout: float = TIMEOUT) -> Response:
    """Send ``data`` as is on a new connection and read one response with h11.

    ``half_close`` shuts the sending side after ``data`` (the server sees EOF,
    as from a client that sent everything it had).
    """
    return raw_exchange_many(port, data, methods=[method_for_h11], half_close=half_close, timeout=timeout)[0]


def raw_exchange_many(port: int, data: bytes, *, methods: list[str], half_close: bool = False,
                      timeout: float = TIMEOUT) -> list[Response]:
    """Send ``data`` (several pipelined requests, say) and read one response per item of ``methods``.

    Reading stops early when a response is incomplete or broken; the list is then shorter.
    """
    with connect(port, timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        reader = ResponseReader(sock)
        responses: list[Response] = []
        for method in methods:
            response = reader.read(method)
            responses.append(response)
            if not response.complete or response.error:
                break
        return responses


def serialize_request(method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"",
                      *, chunks: list[bytes] | None = None) -> bytes:
    """A valid HTTP/1.1 request written by h11 (``chunks``: send the body chunked, one piece per chunk)."""
    conn = h11.Connection(h11.CLIENT)
    if chunks is not None:
        headers = [*headers, ("Transfer-Encoding", "chunked")]
    elif body or method in ("POST", "PUT", "PATCH"):
        headers = [*headers, ("Content-Length", str(len(body)))]
    out = conn.send(h11.Request(method=method, target=target, headers=headers)) or b""
    for piece in chunks if chunks is not None else ([body] if body else []):
        out += conn.send(h11.Data(data=piece)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out


# -- the app side: a WSGI app that records what reached it ---------------------------------------


@dataclass
class Seen:
    """What one request looked like to the app."""

    method: str
    path: str
    query: str
    protocol: str
    headers: dict[str, str]  # CONTENT_TYPE, CONTENT_LENGTH and HTTP_* keys, as in the environ
    body: bytes
    input_terminated: bool
    environ: dict[str, Any]


class Probe:
    """A WSGI app that reads the whole body, records what it saw in ``calls`` and answers 200 JSON.

    The answer echoes the method, path and body length, so pipelined answers can be matched
    to their requests.  Calls go through :func:`wsgiref.validate.validator`, except for
    ``OPTIONS *`` (PATH_INFO "*" is legal HTTP that PEP 3333's checker does not know).
    """

    def __init__(self) -> None:
        self.calls: list[Seen] = []
        self._validated = validator(self._app)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "*":
            return self._app(environ, start_response)
        return self._validated(environ, start_response)

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = bytearray()
        while True:
            # one argument per read: wsgiref.validate insists on it
            piece = environ["wsgi.input"].read(65536)
            if not piece:
                break
            body += piece
        headers = {key: value for key, value in environ.items()
                   if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")}
        self.calls.append(Seen(
            method=environ["REQUEST_METHOD"], path=environ.get("PATH_INFO", ""),
            query=environ.get("QUERY_STRING", ""), protocol=environ.get("SERVER_PROTOCOL", ""),
            headers=headers, body=bytes(body), input_terminated=bool(environ.get("wsgi.input_terminated")),
            environ={key: value for key, value in environ.items() if isinstance(value, str)},
        ))
        answer = json.dumps({"method": environ["REQUEST_METHOD"], "path": environ.get("PATH_INFO", ""),
                             "size": len(body)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]

    @property
    def paths(self) -> list[str]:
        return [seen.path for seen in self.calls]
