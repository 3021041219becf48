"""restkit.server over real sockets on 127.0.0.1: keep-alive, streaming, limits, timeouts, logging.

Every socket has a timeout, so a server bug fails a test instead of hanging it.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import struct
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from restkit import App, Request, Response
from restkit.http11 import Limits

MAX_HEADERS = Limits().max_headers

TIMEOUT = 10.0


def make_app(events: dict[str, threading.Event], max_body_size: int = 1 << 20) -> App:
    app = App(max_body_size=max_body_size)

    @app.get("/hello")
    def hello(request: Request) -> dict[str, Any]:
        return {"hello": "world", "addr": request.remote_addr, "protocol": request.environ["SERVER_PROTOCOL"]}

    @app.post("/upload")
    def upload(request: Request) -> dict[str, Any]:
        return {"size": len(request.body)}

    @app.post("/ignore")
    def ignore(request: Request) -> dict[str, Any]:
        return {"ignored": True}

    @app.get("/boom")
    def boom(request: Request) -> None:
        raise RuntimeError("boom")

    @app.get("/gated", produces=None)
    def gated(request: Request) -> Iterator[bytes]:
        def generate() -> Iterator[bytes]:
            try:
                yield b"first\n"
                if not events["gate"].wait(TIMEOUT):
                    yield b"gate timed out\n"
                    return
                yield b"second\n"
            finally:
                events["gated_closed"].set()

        return generate()

    @app.get("/endless", produces=None)
    def endless(request: Request) -> Response:
        def generate() -> Iterator[bytes]:
            try:
                deadline = time.monotonic() + TIMEOUT
                while time.monotonic() < deadline:
                    events["endless_started"].set()
                    yield b"x" * 4096
                    time.sleep(0.005)
            finally:
                events["endless_closed"].set()

        return Response(generate(), content_type="application/octet-stream")

    return app


@pytest.fixture
def events() -> dict[str, threading.Event]:
    return {name: threading.Event() for name in ("gate", "gated_closed", "endless_started", "endless_closed")}


@pytest.fixture
def server(live_server: Any, events: dict[str, threading.Event]) -> Any:
    srv = live_server(make_app(events, max_body_size=64 * 1024))
    yield srv
    events["gate"].set()  # let any stream still running finish


def connect(port: int, timeout: float = TIMEOUT) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


# bytes received on a socket but not yet consumed by read_response (pipelined answers)
_pending: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_until_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or a reset after it answered)."""
    data = _pending.pop(sock, b"")
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one response with a Content-Length from ``sock`` (without waiting for close)."""
    data = _pending.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before the headers: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed inside the body")
        body += chunk
    body, _pending[sock] = body[:length], body[length:]
    return code, headers, body


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


def get_json(server: Any, path: str = "/hello") -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def still_serves(server: Any) -> None:
    assert get_json(server)[1]["hello"] == "world"


# -- connections ----------------------------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection(server: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/hello")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["protocol"] == "HTTP/1.1"
        assert resp.getheader("Connection") is None  # HTTP/1.1 keeps the connection unless told otherwise
        first_socket = conn.sock
        port = conn.sock.getsockname()[1]
        for path, code in [("/hello", 200), ("/nothing", 404), ("/hello", 200)]:
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == code
            resp.read()
        conn.request("POST", "/upload", body=b"abc", headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        assert json.loads(resp.read()) == {"size": 3}
        conn.request("HEAD", "/hello")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b"" and int(resp.getheader("Content-Length")) > 0
        conn.request("GET", "/hello")
        assert conn.getresponse().read()
        assert conn.sock is first_socket and conn.sock.getsockname()[1] == port
    finally:
        conn.close()


def test_keep_alive_after_an_unread_small_body(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                     b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        code, headers, body = read_response(sock)
        assert (code, json.loads(body)) == (200, {"ignored": True})
        code, headers, body = read_response(sock)
        assert code == 200 and json.loads(body)["hello"] == "world"


def test_pipelined_requests(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n" * 3)
        for _ in range(3):
            assert read_response(sock)[0] == 200


def test_connection_close_is_honoured(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        code, headers, body = parse(read_until_close(sock))  # returns only because the server closed
    assert code == 200
    assert headers["connection"] == "close"
    assert json.loads(body)["hello"] == "world"


def test_http_10_closes_by_default(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
        raw = read_until_close(sock)
    assert raw.startswith(b"HTTP/1.1 200 ")
    code, headers, body = parse(raw)
    assert headers["connection"] == "close"
    assert json.loads(body) == {"hello": "world", "addr": "127.0.0.1", "protocol": "HTTP/1.0"}


def test_http_10_keep_alive_on_request(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        code, headers, _ = read_response(sock)
        assert code == 200 and headers["connection"] == "keep-alive"
        sock.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
        assert parse(read_until_close(sock))[0] == 200


def test_idle_keep_alive_connection_is_closed(live_server: Any, events: dict[str, threading.Event]) -> None:
    srv = live_server(make_app(events), keepalive_timeout=0.2)
    with connect(srv.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock)[0] == 200
        assert read_until_close(sock) == b""  # closed by the server, well before our timeout


# -- streaming ----------------------------------------------------------------------------------------


def test_stream_is_received_progressively_while_others_are_served(
    server: Any, events: dict[str, threading.Event]
) -> None:
    with connect(server.port) as stream:
        stream.sendall(b"GET /gated HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        received = b""
        while b"first\n" not in received:
            chunk = stream.recv(65536)
            assert chunk, "stream closed early"
            received += chunk
        assert b"second" not in received
        assert b"content-length" not in received.lower()
        # the stream holds one worker; other clients are still answered
        for _ in range(3):
            assert get_json(server) [0] == 200
        events["gate"].set()
        received += read_until_close(stream)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Connection: close" in head and b"Transfer-Encoding: chunked" in head
    assert body == b"6\r\nfirst\n\r\n7\r\nsecond\n\r\n0\r\n\r\n"  # chunked: a cut stream would lack the 0 chunk
    assert events["gated_closed"].wait(TIMEOUT)


@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_disconnect_closes_the_app_iterator(server: Any, events: dict[str, threading.Event], how: str) -> None:
    sock = connect(server.port)
    sock.sendall(b"GET /endless HTTP/1.1\r\nHost: t\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    assert events["endless_started"].wait(TIMEOUT)
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST instead of FIN
    sock.close()
    assert events["endless_closed"].wait(TIMEOUT), "the generator was not closed after the client left"
    still_serves(server)


def test_head_on_a_stream_closes_it(server: Any, events: dict[str, threading.Event]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("HEAD", "/gated")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b""
    finally:
        conn.close()
    still_serves(server)


# -- limits and bad requests ------------------------------------------------------------------------------


def test_413_reaches_a_client_that_sends_a_huge_body(server: Any) -> None:
    # The server reads the body whole (a slow sender holds no worker), then the app refuses it.
    size = 4 * 1024 * 1024  # 64 times the app's limit
    with connect(server.port) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\n\r\n" % size)
        sent = 0
        block = b"\0" * 65536
        try:
            while sent < size:
                sock.sendall(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pytest.fail(f"connection reset after {sent} of {size} bytes")
        raw = read_until_close(sock)
    code, headers, body = parse(raw)
    assert code == 413
    assert headers["connection"] == "close"
    assert json.loads(body) == {"error": f"request body is {size} bytes; the limit is {64 * 1024}"}
    still_serves(server)


def test_body_within_limit_is_accepted(server: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("POST", "/upload", body=b"z" * (64 * 1024), headers={"Content-Type": "application/octet-stream"})
        assert json.loads(conn.getresponse().read()) == {"size": 64 * 1024}
    finally:
        conn.close()


def test_stalled_client_is_timed_out_while_others_are_served(live_server: Any, events: dict[str, threading.Event]) -> None:
    srv = live_server(make_app(events), timeout=0.5)
    with connect(srv.port) as stalled, connect(srv.port) as silent:
        stalled.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Partial: ")  # and then nothing
        for _ in range(3):
            assert get_json(srv)[0] == 200
        raw = read_until_close(stalled)
        assert raw.startswith(b"HTTP/1.1 408 "), raw
        assert json.loads(parse(raw)[2]) == {"error": "timed out waiting for the whole request"}
        raw = read_until_close(silent)  # connected, never sent a byte: closed without a word
        assert raw == b"", raw
    still_serves(srv)


def test_stalled_body_is_timed_out(live_server: Any, events: dict[str, threading.Event]) -> None:
    srv = live_server(make_app(events), timeout=0.5)
    with connect(srv.port) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part")
        raw = read_until_close(sock)
    assert raw == b"" or parse(raw)[0] in (400, 408), raw
    still_serves(srv)


BAD_REQUESTS = [
    ("garbage", b"GARBAGE\r\n\r\n", 400, "malformed request line"),
    ("extra-token", b"GET /hello HTTP/1.1 extra\r\n\r\n", 400, "malformed request line"),
    ("two-spaces", b"GET  /hello HTTP/1.1\r\n\r\n", 400, None),
    ("lower-case-method", b"get /hello HTTP/1.1\r\nHost: t\r\n\r\n", 400, "malformed method 'get'"),
    ("not-http", b"GET /hello FTP/1.0\r\n\r\n", 400, "malformed request line"),
    ("http-2", b"GET /hello HTTP/2.0\r\n\r\n", 505, "HTTP/2.0 is not supported"),
    ("relative-target", b"GET hello HTTP/1.1\r\nHost: t\r\n\r\n", 400, "request target must start with '/'"),
    ("header-without-colon", b"GET /hello HTTP/1.1\r\nHost t\r\n\r\n", 400, "malformed header line"),
    ("space-before-colon", b"GET /hello HTTP/1.1\r\nHost : t\r\n\r\n", 400, "malformed header line"),
    ("obsolete-folding", b"GET /hello HTTP/1.1\r\nX-A: 1\r\n  continued\r\n\r\n", 400, "malformed header line"),
    ("bad-content-length", b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 12abc\r\n\r\n", 400,
     "invalid Content-Length"),
    ("negative-content-length", b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400,
     "invalid Content-Length"),
    ("conflicting-content-length",
     b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
     "more than one Content-Length header"),
    ("too-long-request-line", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "request line is too long"),
    ("too-many-headers", b"GET /hello HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
     + b"\r\n", 431, f"more than {MAX_HEADERS} headers"),
    ("too-long-header", b"GET /hello HTTP/1.1\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, "a header line is too long"),
    ("cr-in-target", b"GET /hello?a\rb HTTP/1.1\r\nHost: t\r\n\r\n", 400, "control character in the request target"),
    ("nul-in-target", b"GET /hel\x00lo HTTP/1.1\r\nHost: t\r\n\r\n", 400, "control character in the request target"),
    ("cr-in-header-value", b"GET /hello HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", 400,
     "control character in the X-A header"),
    ("nul-in-header-value", b"GET /hello HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", 400,
     "control character in the X-A header"),
    ("closed-inside-headers", b"GET /hello HTTP/1.1\r\nHost: t\r\n", 400, "connection closed inside the request"),
    ("http-11-without-host", b"GET /hello HTTP/1.1\r\nX-A: 1\r\n\r\n", 400, "an HTTP/1.1 request needs a Host header"),
]


@pytest.mark.parametrize("raw, code, message", [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_json_errors(server: Any, raw: bytes, code: int, message: str | None) -> None:
    with connect(server.port) as sock:
        sock.sendall(raw)
        if raw.endswith(b"Host: t\r\n"):
            sock.shutdown(socket.SHUT_WR)
        answer = read_until_close(sock)
    status, headers, body = parse(answer)
    assert status == code, answer[:200]
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["connection"] == "close"
    error = json.loads(body)
    assert set(error) == {"error"}
    if message is not None:
        assert error["error"] == message
    still_serves(server)


def test_chunked_upload_is_accepted(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n")
        code, _, body = read_response(sock)
    assert (code, json.loads(body)) == (200, {"size": 8})


def test_http_10_without_host_is_fine(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
        assert parse(read_until_close(sock))[0] == 200


def test_options_asterisk_is_answered_by_the_server(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = read_response(sock)
        assert (status, body) == (204, b"")
        assert set(headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
        assert read_response(sock)[0] == 200  # the connection stays usable


def test_tab_in_header_value_is_fine(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\nX-A: a\tb\r\n\r\n")
        assert read_response(sock)[0] == 200


def test_100_headers_are_fine(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS - 1))
                     + b"\r\n")
        assert read_response(sock)[0] == 200


def test_long_url_within_the_app_limit_is_414_from_the_app(server: Any) -> None:
    status, body = get_json(server, "/hello?q=" + "a" * 8190)
    assert status == 414 and body == {"error": "request URL is longer than 8192 characters"}


def test_absolute_form_target(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET http://example.com/hello?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        code, _, body = read_response(sock)
    assert code == 200 and json.loads(body)["hello"] == "world"


def test_utf8_path_over_the_wire(live_server: Any) -> None:
    app = App()
    app.add_route("/caf\u00e9/<name>", lambda request, name: {"name": name, "path": request.path}, name="cafe")
    srv = live_server(app)
    with connect(srv.port) as sock:
        sock.sendall(b"GET /caf%C3%A9/%F0%9F%90%98 HTTP/1.1\r\nHost: t\r\n\r\n")
        code, _, body = read_response(sock)
        assert (code, json.loads(body)) == (200, {"name": "\U0001f418", "path": "/caf\u00e9/\U0001f418"})
        sock.sendall(b"GET /caf\xc3\xa9/raw HTTP/1.1\r\nHost: t\r\n\r\n")  # raw UTF-8, not percent-encoded
        code, _, body = read_response(sock)
        assert (code, json.loads(body)) == (200, {"name": "raw", "path": "/caf\u00e9/raw"})
        sock.sendall(b"GET /caf%E9/x HTTP/1.1\r\nHost: t\r\n\r\n")
        code, _, body = read_response(sock)
        assert (code, json.loads(body)) == (400, {"error": "request path is not valid UTF-8"})


# -- Expect: 100-continue ---------------------------------------------------------------------------------


def test_100_continue_sent_when_the_app_reads_the_body(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = sock.recv(1024)
            assert chunk
            interim += chunk
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        code, headers, body = read_response(sock)
    assert (code, json.loads(body)) == (200, {"size": 5})


def test_no_100_continue_when_the_body_is_refused(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n")
        code, headers, body = read_response(sock)  # the final answer comes first: no 100
        assert code == 413
        assert json.loads(body) == {"error": f"request body is 10000000 bytes; the limit is {64 * 1024}"}
        assert headers["connection"] == "close"
    still_serves(server)


def test_the_server_answers_100_continue_and_reads_the_body_before_the_app_runs(server: Any) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        code, headers, body = read_response(sock)
        assert (code, json.loads(body)) == (200, {"ignored": True})
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        code, _, body = read_response(sock)
        assert code == 200 and json.loads(body)["hello"] == "world"


def test_no_100_continue_when_a_streaming_app_ignores_the_body(live_server: Any, events: dict[str, threading.Event]) -> None:
    srv = live_server(make_app(events), stream_request_body=True)
    with connect(srv.port) as sock:
        sock.sendall(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        code, headers, body = read_response(sock)
        assert (code, json.loads(body)) == (200, {"ignored": True})
        # the client never sent its body: the server must not ask for it now, nor read the next request as it
        rest = b""
        if headers["connection"] == "keep-alive":
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            code, _, body = read_response(sock)
            assert code == 200 and json.loads(body)["hello"] == "world"
        else:
            rest = read_until_close(sock)
        assert b"100 Continue" not in rest


# -- logging and errors -------------------------------------------------------------------------------------


def wait_for(predicate: Any, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_access_log_line(live_server: Any, events: dict[str, threading.Event], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="restkit.access")
    srv = live_server(make_app(events), access_log=True)
    get_json(srv, "/hello?x=1")
    get_json(srv, "/nothing")

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "restkit.access"]

    assert wait_for(lambda: len(lines()) >= 2), lines()
    first, second = lines()[:2]
    assert first.startswith("127.0.0.1 - - [")
    assert '"GET /hello?x=1 HTTP/1.1" 200 ' in first
    assert '"GET /nothing HTTP/1.1" 404 ' in second


def test_access_log_off(live_server: Any, events: dict[str, threading.Event], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="restkit.access")
    srv = live_server(make_app(events), access_log=False)
    get_json(srv)
    time.sleep(0.1)
    assert [r for r in caplog.records if r.name == "restkit.access"] == []


def test_app_exception_is_500(server: Any) -> None:
    status, body = get_json(server, "/boom")
    assert (status, body) == (500, {"error": "internal server error"})
    still_serves(server)


def test_raw_wsgi_app_that_raises_is_500(live_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/ok":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        raise RuntimeError("raw app bug")

    srv = live_server(broken)
    with connect(srv.port) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        code, headers, body = parse(read_until_close(sock))
    assert (code, json.loads(body)) == (500, {"error": "internal server error"})
    assert b"raw app bug" not in body
    assert wait_for(lambda: "raw app bug" in caplog.text)
    with connect(srv.port) as sock:
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock)[2] == b"ok"


def test_raw_wsgi_app_without_start_response_is_500(live_server: Any) -> None:
    srv = live_server(lambda environ, start_response: [b"forgot"])
    with connect(srv.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        code, _, body = parse(read_until_close(sock))
    assert (code, json.loads(body)) == (500, {"error": "internal server error"})


def test_many_concurrent_clients(server: Any) -> None:
    results: list[int] = []

    def client() -> None:
        for _ in range(5):
            results.append(get_json(server)[0])

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert results == [200] * 40


def test_server_url_and_port(server: Any) -> None:
    assert server.server.url == server.url
    assert server.port > 0


def test_headers_with_underscores_are_dropped(live_server: Any) -> None:
    app = App()
    app.add_route("/h", lambda request: {"xff": request.headers.getall("X-Forwarded-For")}, name="h")
    srv = live_server(app)
    with connect(srv.port) as sock:
        sock.sendall(b"GET /h HTTP/1.1\r\nHost: t\r\nX_Forwarded_For: 6.6.6.6\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
        code, _, body = read_response(sock)
    assert (code, json.loads(body)) == (200, {"xff": ["10.0.0.1"]})


def test_repeated_headers_are_joined(live_server: Any) -> None:
    app = App()
    app.add_route("/h", lambda request: {"accept": request.headers["accept"], "cookies": request.cookies}, name="h")
    srv = live_server(app)
    with connect(srv.port) as sock:
        sock.sendall(b"GET /h HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\naccept: */*\r\n"
                     b"Cookie: a=1\r\nCookie: b=2\r\n\r\n")
        code, _, body = read_response(sock)
    assert (code, json.loads(body)) == (200, {"accept": "application/json, */*", "cookies": {"a": "1", "b": "2"}})


def test_client_that_stops_reading_is_timed_out(live_server: Any) -> None:
    state = {"chunks": 0}
    closed = threading.Event()
    limit = 1024  # 64 MiB at most: far more than socket buffers hold

    def flood(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        try:
            while state["chunks"] < limit:
                state["chunks"] += 1
                yield b"\0" * 65536
        finally:
            closed.set()

    srv = live_server(flood, timeout=0.5)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    try:
        sock.connect(("127.0.0.1", srv.port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
        # ... and never read again: the worker must give up instead of waiting forever
        assert closed.wait(TIMEOUT), "the server kept writing to a client that does not read"
        assert state["chunks"] < limit
    finally:
        sock.close()


def test_shutdown_ends_open_streams(live_server: Any) -> None:
    closed = threading.Event()
    app = App()

    @app.get("/forever", produces=None)
    def forever(request: Request) -> Any:
        def chunks() -> Iterator[bytes]:
            try:
                while True:
                    yield b"tick\n"
                    time.sleep(0.02)
            finally:
                closed.set()

        return chunks()

    srv = live_server(app)
    with connect(srv.port) as sock:
        sock.sendall(b"GET /forever HTTP/1.1\r\nHost: t\r\n\r\n")
        assert b"tick" in sock.recv(4096)
        srv.close()
        assert closed.wait(TIMEOUT), "the stream's generator was not closed on shutdown"
