"""restkit.server owns response framing: what raw WSGI apps send is made into valid HTTP/1.1.

The apps here are bare WSGI callables (not restkit.App), some of them wrong on
purpose: a Content-Length that lies, a body on a 204, hop-by-hop headers.
Every response is read with h11 (tests/http_client.py), so a framing mistake
shows up as h11 refusing the bytes, or as the *next* response on the same
connection failing to parse (the stream is out of step).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

pytest.importorskip("h11")

from tests.http_client import Response, ResponseReader, connect

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
NEXT = b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n"


def framing_app(status: str, headers: list[tuple[str, str]], body: Callable[[], Iterable[bytes]]) -> WSGIApp:
    """An app answering ``status``/``headers``/``body()`` everywhere except /next, which gets a plain 200."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/next":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
            return [b"next"]
        start_response(status, list(headers))
        return body()

    return app


def chunks(*pieces: bytes) -> Callable[[], Iterator[bytes]]:
    """A body of unknown length: a generator the server cannot measure in advance."""

    def generate() -> Iterator[bytes]:
        yield from pieces

    return generate


def listed(*pieces: bytes) -> Callable[[], list[bytes]]:
    return lambda: list(pieces)


def serve(live_server: Any, app: WSGIApp) -> int:
    return int(live_server(app, timeout=5.0).port)


def request(path: str = "/", method: str = "GET", version: str = "HTTP/1.1", extra: bytes = b"") -> bytes:
    host = b"Host: t\r\n" if version == "HTTP/1.1" else b""
    return f"{method} {path} {version}\r\n".encode() + host + extra + b"\r\n"


def exchange_then_next(port: int, first: bytes, method: str = "GET") -> tuple[Response, Response]:
    """Send ``first``, read its response, then ask for /next on the same connection and read that."""
    with connect(port) as sock:
        sock.sendall(first)
        reader = ResponseReader(sock)
        answer = reader.read(method)
        sock.sendall(NEXT)
        return answer, reader.read("GET")


def assert_next_is_fine(answer: Response, following: Response) -> None:
    """The connection stayed in step: the /next response parses whole after ``answer``."""
    assert answer.error is None and answer.complete, answer.describe()
    assert not answer.closes, answer.describe()
    assert following.error is None and following.complete, following.describe()
    assert (following.status, following.body) == (200, b"next"), following.describe()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "restkit.server"]


def send_after_close(sock: socket.socket, data: bytes) -> None:
    """Send on a connection the server may have closed already: a reset is an acceptable outcome."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


# -- Content-Length given by the app ----------------------------------------------------------------------------


def test_app_content_length_is_used(live_server: Any) -> None:
    port = serve(live_server, framing_app("200 OK", [("Content-Length", "5")], listed(b"hello")))
    answer, following = exchange_then_next(port, request())
    assert answer.header_values("content-length") == ["5"] and answer.body == b"hello"
    assert answer.header("transfer-encoding") is None
    assert_next_is_fine(answer, following)


@pytest.mark.parametrize("body", [listed(b"hello"), chunks(b"hel", b"lo")], ids=["one-piece", "generator"])
def test_content_length_larger_than_body_cuts_the_connection(live_server: Any, caplog: pytest.LogCaptureFixture,
                                                             body: Callable[[], Iterable[bytes]]) -> None:
    caplog.set_level(logging.DEBUG, logger="restkit.server")
    port = serve(live_server, framing_app("200 OK", [("Content-Length", "10")], body))
    with connect(port) as sock:
        # /next pipelined behind: a server that kept the connection would answer it, and its bytes would
        # complete the promised 10 (h11 would then see "helloHTTP/" as the body)
        sock.sendall(request() + NEXT)
        reader = ResponseReader(sock)
        answer = reader.read()
        # the client was promised 10 bytes and got 5: only a closed connection tells it so
        assert answer.status == 200 and answer.body == b"hello", answer.describe()
        assert not answer.complete, answer.describe()
        assert reader.eof, "the connection must be closed after the short body"
    assert wait_for(lambda: bool(server_records(caplog))), "the short body must be logged on restkit.server"


@pytest.mark.parametrize("body", [listed(b"hello world"), chunks(b"hel", b"lo world")],
                         ids=["one-piece", "surplus-mid-piece"])
def test_content_length_smaller_than_body_sends_exactly_cl_and_closes(
        live_server: Any, caplog: pytest.LogCaptureFixture, body: Callable[[], Iterable[bytes]]) -> None:
    caplog.set_level(logging.DEBUG, logger="restkit.server")
    port = serve(live_server, framing_app("200 OK", [("Content-Length", "5")], body))
    with connect(port) as sock:
        sock.sendall(request())
        reader = ResponseReader(sock)
        answer = reader.read()
        assert answer.error is None and answer.complete and answer.body == b"hello", answer.describe()
        # a second request on the same socket: if " world" was sent, h11 would read it as the start of the
        # next response and the stream would be out of step; the server must have closed after 5 bytes
        send_after_close(sock, NEXT)
        assert reader.rest() == b"", "bytes after exactly Content-Length: the stream is desynchronised"
    assert wait_for(lambda: bool(server_records(caplog))), "the surplus must be logged on restkit.server"


def test_surplus_in_a_later_piece_never_reaches_the_next_response(live_server: Any) -> None:
    # The app's pieces fill Content-Length exactly and the surplus comes in a piece of its own: a server
    # that stops pulling once it has Content-Length bytes never sees it, and may keep the connection.
    # Either way the next response must parse: closed, or a clean /next and nothing else.
    port = serve(live_server, framing_app("200 OK", [("Content-Length", "5")], chunks(b"hello", b" world")))
    with connect(port) as sock:
        sock.sendall(request())
        reader = ResponseReader(sock)
        answer = reader.read()
        assert answer.error is None and answer.complete and answer.body == b"hello", answer.describe()
        send_after_close(sock, NEXT)
        following = reader.read()
        assert following.error is None, following.describe()
        assert following.status is None or (following.status, following.body) == (200, b"next"), \
            following.describe()


@pytest.mark.parametrize("body", [listed(b"measured"), lambda: (b"measured",)], ids=["list", "tuple"])
def test_length_computed_for_a_one_item_sequence(live_server: Any, body: Callable[[], Iterable[bytes]]) -> None:
    port = serve(live_server, framing_app("200 OK", [("Content-Type", "text/plain")], body))
    answer, following = exchange_then_next(port, request())
    assert answer.header_values("content-length") == ["8"], answer.describe()
    assert answer.header("transfer-encoding") is None
    assert_next_is_fine(answer, following)


# -- unknown length -----------------------------------------------------------------------------------------------


def test_generator_is_chunked_under_http_11(live_server: Any) -> None:
    # the empty piece must not become a premature last chunk
    port = serve(live_server, framing_app("200 OK", [("Content-Type", "text/plain")], chunks(b"a", b"", b"bc", b"d")))
    answer, following = exchange_then_next(port, request())
    assert answer.header_values("transfer-encoding") == ["chunked"], answer.describe()
    assert answer.header("content-length") is None
    assert answer.body == b"abcd"
    assert_next_is_fine(answer, following)


def test_empty_generator_under_http_11(live_server: Any) -> None:
    port = serve(live_server, framing_app("200 OK", [("Content-Type", "text/plain")], chunks()))
    answer, following = exchange_then_next(port, request())
    assert answer.status == 200 and answer.body == b""
    assert_next_is_fine(answer, following)


def test_generator_is_close_delimited_under_http_10(live_server: Any) -> None:
    port = serve(live_server, framing_app("200 OK", [("Content-Type", "text/plain")], chunks(b"one ", b"two")))
    with connect(port) as sock:
        sock.sendall(request(version="HTTP/1.0", extra=b"Connection: keep-alive\r\n"))
        reader = ResponseReader(sock)
        answer = reader.read()
        assert reader.eof, "a close-delimited body ends with the connection"
    # HTTP/1.0 has no chunked coding: the body runs until the server closes
    assert answer.error is None and answer.complete, answer.describe()
    assert answer.http_version == "1.1"
    assert answer.header("transfer-encoding") is None and answer.header("content-length") is None
    assert answer.closes
    assert answer.body == b"one two"


def test_stream_that_raises_midway_is_cut_without_final_chunk(live_server: Any) -> None:
    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise ValueError("the stream broke")

    port = serve(live_server, framing_app("200 OK", [("Content-Type", "text/plain")], broken))
    with connect(port) as sock:
        sock.sendall(request())
        reader = ResponseReader(sock)
        answer = reader.read()
    # no final 0-chunk: h11 must see an incomplete message, not a short but "complete" one
    assert answer.status == 200 and answer.body.startswith(b"partial"), answer.describe()
    assert not answer.complete, answer.describe()


def test_write_callable_then_iterable(live_server: Any) -> None:
    # PEP 3333's write(): the server cannot know the length when the first piece goes out
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/next":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
            return [b"next"]
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"a")
        write(b"b")
        return [b"c"]

    port = serve(live_server, app)
    answer, following = exchange_then_next(port, request())
    assert answer.body == b"abc", answer.describe()
    assert_next_is_fine(answer, following)


# -- responses without a body ---------------------------------------------------------------------------------


@pytest.mark.parametrize("headers, body", [
    ([], listed(b"oops")),
    ([("Content-Length", "4")], listed(b"oops")),
    ([], chunks(b"oo", b"ps")),
], ids=["no-length", "app-length", "generator"])
def test_204_never_has_a_body_or_content_length(live_server: Any, headers: list[tuple[str, str]],
                                                 body: Callable[[], Iterable[bytes]]) -> None:
    port = serve(live_server, framing_app("204 No Content", headers, body))
    answer, following = exchange_then_next(port, request())
    assert answer.status == 204 and answer.body == b""
    assert answer.header("content-length") is None, answer.describe()
    assert answer.header("transfer-encoding") is None, answer.describe()
    assert_next_is_fine(answer, following)  # "oops" was not sent: /next parses


@pytest.mark.parametrize("body", [listed(b"oops"), chunks(b"o", b"ops")], ids=["list", "generator"])
def test_304_has_no_body(live_server: Any, body: Callable[[], Iterable[bytes]]) -> None:
    port = serve(live_server, framing_app("304 Not Modified", [("ETag", '"v1"')], body))
    answer, following = exchange_then_next(port, request())
    assert answer.status == 304 and answer.body == b""
    assert answer.header("etag") == '"v1"'
    assert answer.header("transfer-encoding") is None, answer.describe()
    assert_next_is_fine(answer, following)


@pytest.mark.parametrize("headers, body", [
    ([("Content-Length", "5")], listed(b"hello")),
    ([], listed(b"hello")),
    ([], chunks(b"he", b"llo")),
], ids=["app-length", "list", "generator"])
def test_head_has_no_body(live_server: Any, headers: list[tuple[str, str]], body: Callable[[], Iterable[bytes]]) -> None:
    port = serve(live_server, framing_app("200 OK", [("Content-Type", "text/plain"), *headers], body))
    answer, following = exchange_then_next(port, request(method="HEAD"), method="HEAD")
    assert answer.status == 200 and answer.body == b""
    if headers:
        assert answer.header_values("content-length") == ["5"]  # the length a GET would have
    assert_next_is_fine(answer, following)


# -- headers the server owns -------------------------------------------------------------------------------------

HOP_BY_HOP = [("Connection", "upgrade"), ("Keep-Alive", "timeout=99"), ("Transfer-Encoding", "chunked"),
              ("Upgrade", "websocket"), ("Proxy-Connection", "keep-alive"), ("TE", "trailers"), ("Trailer", "X-T")]


@pytest.mark.parametrize("body", [listed(b"hello"), chunks(b"hel", b"lo")], ids=["known-length", "generator"])
def test_hop_by_hop_headers_from_the_app_are_dropped(live_server: Any, body: Callable[[], Iterable[bytes]]) -> None:
    port = serve(live_server, framing_app("200 OK", [("Content-Type", "text/plain"), *HOP_BY_HOP], body))
    answer, following = exchange_then_next(port, request())
    names = [name for name, _ in answer.headers]
    for dropped in ("keep-alive", "upgrade", "proxy-connection", "te", "trailer"):
        assert dropped not in names, answer.describe()
    assert "upgrade" not in (answer.header("connection") or "").lower(), answer.describe()
    # the only Transfer-Encoding is the server's own, for a body it could not measure
    assert answer.header_values("transfer-encoding") in ([], ["chunked"]), answer.describe()
    assert answer.body == b"hello"
    assert_next_is_fine(answer, following)


def test_app_date_and_server_are_kept_once(live_server: Any) -> None:
    date = "Mon, 01 Jan 2024 00:00:00 GMT"
    headers = [("Date", date), ("Server", "app/1.0"), ("Date", "Tue, 02 Jan 2024 00:00:00 GMT"), ("Server", "x"),
               ("Content-Length", "2")]
    port = serve(live_server, framing_app("200 OK", headers, listed(b"ok")))
    answer, following = exchange_then_next(port, request())
    assert answer.header_values("date") == [date], answer.describe()
    assert answer.header_values("server") == ["app/1.0"], answer.describe()
    assert_next_is_fine(answer, following)


def test_server_adds_date_and_server_once(live_server: Any) -> None:
    port = serve(live_server, framing_app("200 OK", [("Content-Length", "2")], listed(b"ok")))
    answer, following = exchange_then_next(port, request())
    assert len(answer.header_values("date")) == 1 and len(answer.header_values("server")) == 1, answer.describe()
    assert answer.http_version == "1.1"
    assert_next_is_fine(answer, following)


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close"], ids=["close", "capitalised", "in-a-list"])
def test_app_connection_close_closes(live_server: Any, value: str) -> None:
    port = serve(live_server, framing_app("200 OK", [("Content-Length", "2"), ("Connection", value)], listed(b"ok")))
    with connect(port) as sock:
        sock.sendall(request())
        reader = ResponseReader(sock)
        answer = reader.read()
        assert answer.complete and answer.body == b"ok", answer.describe()
        assert answer.closes, answer.describe()
        send_after_close(sock, NEXT)
        assert reader.rest() == b"", "the server answered on a connection the app closed"


def test_client_connection_close_closes(live_server: Any) -> None:
    port = serve(live_server, framing_app("200 OK", [("Content-Length", "2")], listed(b"ok")))
    with connect(port) as sock:
        sock.sendall(request(extra=b"Connection: close\r\n") + NEXT)
        reader = ResponseReader(sock)
        answer = reader.read()
        assert answer.complete and answer.closes, answer.describe()
        assert reader.rest() == b"", "a request after Connection: close was answered"


# -- HTTP/1.0 ---------------------------------------------------------------------------------------------------------


def test_http_10_keep_alive(live_server: Any) -> None:
    port = serve(live_server, framing_app("200 OK", [("Content-Length", "2")], listed(b"ok")))
    with connect(port) as sock:
        sock.sendall(request(version="HTTP/1.0", extra=b"Connection: keep-alive\r\n"))
        reader = ResponseReader(sock)
        first = reader.read()
        assert first.complete and first.http_version == "1.1", first.describe()
        assert (first.header("connection") or "").lower() == "keep-alive", first.describe()
        sock.sendall(b"GET /next HTTP/1.0\r\n\r\n")
        second = reader.read()
        assert (second.status, second.body) == (200, b"next"), second.describe()
        assert second.closes, "HTTP/1.0 without keep-alive: Connection: close"
        assert reader.rest() == b""


def test_http_10_closes_by_default(live_server: Any) -> None:
    port = serve(live_server, framing_app("200 OK", [("Content-Length", "2")], listed(b"ok")))
    with connect(port) as sock:
        sock.sendall(request(version="HTTP/1.0"))
        reader = ResponseReader(sock)
        answer = reader.read()
        assert answer.complete and answer.closes and answer.body == b"ok", answer.describe()
        assert reader.rest() == b""
