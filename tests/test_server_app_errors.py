"""restkit.server when the app fails: one 500, one error record, one access line, and the server goes on.

The apps are raw WSGI callables that fail in each place a WSGI app can:
before start_response, after it, in the first iteration, in close(), or by
handing the server a head it must not send (bad status, header injection).
Until the head is on the wire the client must get a clean JSON 500 with
nothing of the exception in it; once it is, the only honest signal left is
cutting the connection, so the client sees an incomplete message.

ValueError and OSError are in the list on purpose: a server that reads them as
"the client went away" would drop the connection without a word or a log.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

pytest.importorskip("h11")

from tests.http_client import Response, ResponseReader, connect, raw_exchange

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
HEAD = [("Content-Type", "text/plain")]

EXCEPTIONS: list[tuple[str, Callable[[], BaseException]]] = [
    ("ValueError", lambda: ValueError("secret-detail-1")),
    ("OSError", lambda: OSError(5, "secret-detail-2")),
    ("JSONDecodeError", lambda: json.JSONDecodeError("secret-detail-3", "{", 0)),
    ("KeyError", lambda: KeyError("secret-detail-4")),
]


class ClosingList(list[bytes]):
    """A list body (known length) whose close() raises."""

    def __init__(self, items: list[bytes], error: BaseException) -> None:
        super().__init__(items)
        self.error = error

    def close(self) -> None:
        raise self.error


class ClosingIterable:
    """An iterable body of unknown length whose close() raises."""

    def __init__(self, items: list[bytes], error: BaseException) -> None:
        self.items = items
        self.error = error

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.items)

    def close(self) -> None:
        raise self.error


def failing(where: str, make_error: Callable[[], BaseException]) -> Callable[..., Iterable[bytes]]:
    """A WSGI callable that raises ``make_error()`` at ``where``."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if where == "before-start-response":
            raise make_error()
        start_response("200 OK", HEAD)
        if where == "after-start-response":
            raise make_error()
        if where == "first-iteration":
            def body() -> Iterator[bytes]:
                raise make_error()
                yield b"never"  # a generator: the error comes from the first next()
            return body()
        if where == "close-of-a-list":
            return ClosingList([b"ok"], make_error())
        if where == "close-of-an-empty-iterable":
            return ClosingIterable([], make_error())
        raise AssertionError(where)

    return app


PLACES = ["before-start-response", "after-start-response", "first-iteration"]
CLOSE_PLACES = ["close-of-a-list", "close-of-an-empty-iterable"]


def bad_head(status: str, headers: list[tuple[str, str]]) -> Callable[..., Iterable[bytes]]:
    """A WSGI callable that hands the server an invalid status line or header."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(status, [("Content-Type", "text/plain"), *headers])
        return [b"body of a bad head"]

    return app


BAD_HEADS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("non-latin-1-value", "200 OK", [("X-Price", "5 \u20ac")]),
    ("crlf-in-value", "200 OK", [("X-A", "a\r\nX-Injected: yes")]),
    ("lf-in-value", "200 OK", [("X-A", "a\nX-Injected: yes")]),
    ("cr-in-value", "200 OK", [("X-A", "a\rX-Injected: yes")]),
    ("nul-in-value", "200 OK", [("X-A", "a\x00b")]),
    ("crlf-in-status", "200 OK\r\nX-Injected: yes", []),
    ("space-in-name", "200 OK", [("X A", "1")]),
    ("colon-in-name", "200 OK", [("X-Injected: yes\r\nX-B", "1")]),
    ("empty-name", "200 OK", [("", "1")]),
    ("non-ascii-name", "200 OK", [("X-Caf\u00e9", "1")]),
    ("status-without-reason-separator", "200OK", []),
    ("status-not-a-number", "abc OK", []),
    ("status-four-digits", "2000 OK", []),
    ("status-code-only", "200", []),
    ("status-non-latin-1", "200 \u2713", []),
    ("status-1xx-continue", "100 Continue", []),
    ("status-1xx-switching", "101 Switching Protocols", [("Upgrade", "websocket")]),
    ("status-1xx-early-hints", "103 Early Hints", []),
]


def with_ok(app: Callable[..., Iterable[bytes]]) -> WSGIApp:
    """``app`` everywhere but /ok, which answers 200 "ok" (to show the server still serves)."""

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/ok":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        return app(environ, start_response)

    return dispatch


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "restkit.server" and r.levelno >= logging.ERROR]


def access_lines(caplog: pytest.LogCaptureFixture, path: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "restkit.access" and f" {path} " in r.getMessage()]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="restkit.access")
    caplog.set_level(logging.DEBUG, logger="restkit.server")
    return caplog


def start(live_server: Any, app: Callable[..., Iterable[bytes]]) -> int:
    return int(live_server(with_ok(app), access_log=True, timeout=5.0).port)


def assert_still_serves(port: int) -> None:
    response = raw_exchange(port, b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert (response.status, response.body) == (200, b"ok"), response.describe()


def assert_clean_500(response: Response) -> None:
    assert response.error is None and response.complete, response.describe()
    assert response.status == 500, response.describe()
    assert response.closes, response.describe()
    assert response.json() == {"error": "internal server error"}
    assert b"Traceback" not in response.body and b"secret-detail" not in response.body
    assert "x-injected" not in [name for name, _ in response.headers], response.describe()


def assert_logged_once(logs: pytest.LogCaptureFixture, path: str, type_name: str | None) -> None:
    """One ERROR record naming method, path (and the exception type); one access line with 500."""
    assert wait_for(lambda: bool(error_records(logs)) and bool(access_lines(logs, path)))
    records = error_records(logs)
    assert len(records) == 1, [r.getMessage() for r in records]
    message = records[0].getMessage()
    assert "GET" in message and path in message, message
    if type_name is not None:
        assert type_name in message, message
        exc_info = records[0].exc_info  # the traceback goes to the log, never to the client
        assert exc_info is not None and exc_info[0] is not None and exc_info[0].__name__ == type_name
    lines = access_lines(logs, path)
    assert len(lines) == 1 and '" 500 ' in lines[0], lines


@pytest.mark.parametrize("where", PLACES)
@pytest.mark.parametrize("type_name, make_error", EXCEPTIONS, ids=[name for name, _ in EXCEPTIONS])
def test_app_exception_before_the_head_is_a_500(live_server: Any, logs: pytest.LogCaptureFixture, where: str,
                                                type_name: str, make_error: Callable[[], BaseException]) -> None:
    port = start(live_server, failing(where, make_error))
    path = f"/fail/{where}"
    response = raw_exchange(port, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    assert_clean_500(response)
    assert_logged_once(logs, path, type_name)
    assert_still_serves(port)


@pytest.mark.parametrize("where", CLOSE_PLACES)
@pytest.mark.parametrize("type_name, make_error", EXCEPTIONS, ids=[name for name, _ in EXCEPTIONS])
def test_app_exception_in_close(live_server: Any, logs: pytest.LogCaptureFixture, where: str, type_name: str,
                                make_error: Callable[[], BaseException]) -> None:
    # close() comes after the last piece. A server that calls it before sending the head owes a clean 500;
    # one that has sent the head by then must cut the connection before the end of the message (no final
    # chunk). What it must never do is finish a 200 as if nothing happened.
    port = start(live_server, failing(where, make_error))
    path = f"/fail/{where}"
    response = raw_exchange(port, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    if response.status == 500:
        assert_clean_500(response)
        assert_logged_once(logs, path, type_name)
    else:
        assert not response.complete, "close() failed, yet the message looks complete: " + response.describe()
        assert wait_for(lambda: bool(error_records(logs)))
        records = error_records(logs)
        assert len(records) == 1 and type_name in records[0].getMessage() and path in records[0].getMessage()
    assert_still_serves(port)


@pytest.mark.parametrize("status, headers", [row[1:] for row in BAD_HEADS], ids=[row[0] for row in BAD_HEADS])
def test_invalid_head_from_the_app_is_a_500(live_server: Any, logs: pytest.LogCaptureFixture, status: str,
                                            headers: list[tuple[str, str]]) -> None:
    port = start(live_server, bad_head(status, headers))
    with connect(port) as sock:
        sock.sendall(b"GET /bad-head HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = ResponseReader(sock)
        response = reader.read()
        # nothing of the bad head is sent: no interim response, no injected line, no body of it after the 500
        assert response.informational == [], response.describe()
        assert_clean_500(response)
        assert reader.rest() == b""
    assert_logged_once(logs, "/bad-head", None)
    assert_still_serves(port)


@pytest.mark.parametrize("length", [None, "100"], ids=["chunked", "content-length"])
def test_exception_after_the_first_chunk_cuts_the_connection(live_server: Any, logs: pytest.LogCaptureFixture,
                                                             length: str | None) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", HEAD + ([("Content-Length", length)] if length else []))
        yield b"partial"
        raise ValueError("secret-detail-5")

    port = start(live_server, app)
    with connect(port) as sock:
        sock.sendall(b"GET /late HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = ResponseReader(sock)
        response = reader.read()
        assert reader.eof, "the connection must be cut"
    assert response.status == 200 and response.body == b"partial", response.describe()
    assert not response.complete, "a body cut by an app error must not look complete: " + response.describe()
    assert wait_for(lambda: bool(error_records(logs)))
    records = error_records(logs)
    assert len(records) == 1 and "ValueError" in records[0].getMessage() and "/late" in records[0].getMessage()
    assert wait_for(lambda: bool(access_lines(logs, "/late")))
    assert len(access_lines(logs, "/late")) == 1, "every request is access-logged exactly once"
    assert_still_serves(port)


def test_start_response_with_exc_info_before_the_head_replaces_it(live_server: Any) -> None:
    # PEP 3333: an app that catches its own error may call start_response again with exc_info
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", HEAD)
        try:
            raise ValueError("handled")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Content-Length", "4")],
                           sys.exc_info())
        return [b"busy"]

    port = start(live_server, app)
    response = raw_exchange(port, b"GET /handled HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (response.status, response.body, response.complete) == (503, b"busy", True), response.describe()
    assert_still_serves(port)


def test_app_without_start_response_is_a_500(live_server: Any, logs: pytest.LogCaptureFixture) -> None:
    port = start(live_server, lambda environ, start_response: [b"forgot"])
    response = raw_exchange(port, b"GET /forgot HTTP/1.1\r\nHost: t\r\n\r\n")
    assert_clean_500(response)
    assert_logged_once(logs, "/forgot", None)
    assert_still_serves(port)


def test_non_bytes_body_is_a_500(live_server: Any, logs: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[Any]:
        start_response("200 OK", HEAD)
        return ["a str, not bytes"]

    port = start(live_server, app)
    response = raw_exchange(port, b"GET /text HTTP/1.1\r\nHost: t\r\n\r\n")
    assert_clean_500(response)
    assert_logged_once(logs, "/text", None)
    assert_still_serves(port)


def test_app_returning_none_is_a_500(live_server: Any, logs: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", HEAD)
        return None  # not an iterable

    port = start(live_server, app)
    response = raw_exchange(port, b"GET /none HTTP/1.1\r\nHost: t\r\n\r\n")
    assert_clean_500(response)
    assert_logged_once(logs, "/none", None)
    assert_still_serves(port)


def test_start_response_twice_without_exc_info_is_a_500(live_server: Any, logs: pytest.LogCaptureFixture) -> None:
    # PEP 3333: a second call without exc_info is an error the server raises into the app
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", HEAD)
        start_response("201 Created", HEAD)
        return [b"twice"]

    port = start(live_server, app)
    response = raw_exchange(port, b"GET /twice HTTP/1.1\r\nHost: t\r\n\r\n")
    assert_clean_500(response)
    assert_logged_once(logs, "/twice", None)
    assert_still_serves(port)


def test_exc_info_after_the_head_was_sent_cuts_the_connection(live_server: Any, logs: pytest.LogCaptureFixture) -> None:
    # PEP 3333: once the head is out, start_response(..., exc_info) re-raises; the stream can only be cut
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", HEAD)
        yield b"partial"
        try:
            raise KeyError("secret-detail-6")
        except KeyError:
            start_response("500 Internal Server Error", HEAD, sys.exc_info())
        yield b"never sent"

    port = start(live_server, app)
    with connect(port) as sock:
        sock.sendall(b"GET /late-exc-info HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = ResponseReader(sock)
        response = reader.read()
        assert reader.eof, "the connection must be cut"
    assert response.status == 200 and response.body == b"partial", response.describe()
    assert not response.complete, response.describe()
    assert wait_for(lambda: bool(error_records(logs)))
    assert len(error_records(logs)) == 1, [r.getMessage() for r in error_records(logs)]
    assert_still_serves(port)
