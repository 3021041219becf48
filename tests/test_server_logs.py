"""The log contract of restkit.server: one request, one line, nothing the client sent can forge another.

The contract
------------
* In every access-log and error-log line, whatever the client sent (request
  line, path, header values) is escaped as nginx does: each character outside
  printable ASCII 0x20-0x7E, and also ``"`` and ``\\``, is written ``\\xHH``
  (two lower-case hex digits).  So one request is one line, with no raw CR,
  LF or ESC in it.
* The access line is ``host - - [date] "request line" status bytes`` and
  an optional note.  A request the server refuses is logged with its own
  request line: the first line the client sent, cut at the first LF, at most
  200 characters, escaped.
* A path with ``%0a`` or ``%0d`` that reaches an app error comes out escaped
  in the error record (the server's, or restkit's App's).
* A response the server cuts says why: ``write deadline`` when the client
  stopped reading (and the byte count is what went to the kernel),
  ``client disconnected`` when the client went away.

Every line is checked twice: as ``record.getMessage()`` and as the text a
formatter writes.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.validate import validator

import pytest

from restkit import App, Request
from tests.wire import TIMEOUT, connect, read_until_close, wait_for

MIB = 1024 * 1024
BIG = 8 * MIB
BIG_BODY = b"\0" * BIG  # built once
RCVBUF = 4096
WRITE_TIMEOUT = 2.0
ACCESS_LINE = re.compile(
    r'(?P<host>\S+) - - \[(?P<date>[^\]]*)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<size>\d+)(?P<note>.*)'
)
RAW_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def escaped(raw: bytes) -> str:
    """``raw`` written as the contract says: printable ASCII as is, except ``"`` and ``\\``; the rest ``\\xHH``."""
    return "".join(chr(byte) if 0x20 <= byte <= 0x7E and byte not in (0x22, 0x5C) else f"\\x{byte:02x}" for byte in raw)


def test_escaped_is_the_contract() -> None:
    assert escaped(b'FAKE\rGET /a"b\\c\n\x1b\x7f\xc3\xa9 ~') == "FAKE\\x0dGET /a\\x22b\\x5cc\\x0a\\x1b\\x7f\\xc3\\xa9 ~"


# -- the app and the server ------------------------------------------------------------------------------


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``/big`` is 8 MiB, a path starting ``/boom`` raises, anything else "ok"."""
    path = environ["PATH_INFO"]
    if path.startswith("/boom"):
        raise RuntimeError("the app failed")
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(BIG))])
        return [BIG_BODY]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


wsgi_app = validator(_app)


def restkit_app() -> App:
    app = App()

    @app.get("/<path:rest>")
    def boom(request: Request, rest: str) -> None:
        raise RuntimeError("the handler failed")

    return app


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="restkit.access")
    caplog.set_level(logging.INFO, logger="restkit.server")
    return caplog


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        try:
            sock.close()
        except OSError:
            pass


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "restkit.access"]


def one_access_line(caplog: pytest.LogCaptureFixture, timeout: float = TIMEOUT) -> re.Match[str]:
    """The one access record this test caused, checked as message and as formatted text; its fields."""
    wait_for(lambda: access_records(caplog), timeout=timeout)
    time.sleep(0.05)  # a second line, if the server wrongly writes one, has had time to come
    records = access_records(caplog)
    assert len(records) == 1, f"{len(records)} access records for one request: {[r.getMessage() for r in records]!r}"
    record = records[0]
    message = record.getMessage()
    formatted = caplog.handler.format(record)
    for text in (message, formatted):
        assert not RAW_CONTROLS.search(text), f"raw control character in an access line: {text!r}"
    assert message in formatted
    match = ACCESS_LINE.fullmatch(message)
    assert match, f"not an access line: {message!r}"
    return match


def send_and_read(port: int, data: bytes) -> tuple[int | None, bytes]:
    """Send ``data``, half-close, and read the answer until the server closes: its status and raw bytes."""
    with connect(port) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        raw = read_until_close(sock)
    status = int(raw[9:12]) if raw.startswith(b"HTTP/1.") and raw[9:12].isdigit() else None
    return status, raw


def first_line(data: bytes) -> bytes:
    """The request line the contract logs for a refused request: cut at the first LF (less its CR), 200 at most."""
    line = data.split(b"\n", 1)[0]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line[:200]


# -- request lines ---------------------------------------------------------------------------------------------


def test_cr_in_a_refused_request_line_cannot_forge_a_200(live_server: Any, logs: pytest.LogCaptureFixture) -> None:
    srv = live_server(wsgi_app, access_log=True)
    status, raw = send_and_read(srv.port, b"FAKE\rGET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400, raw[:200]
    line = one_access_line(logs)
    assert '"FAKE\\x0dGET /admin HTTP/1.1" 400 ' in line.group(0)
    assert (line.group("request"), line.group("status")) == ("FAKE\\x0dGET /admin HTTP/1.1", "400")
    for text in (logs.text, *(r.getMessage() for r in logs.records)):
        assert not re.search(r'GET /admin HTTP/1\.1" 200', text), text
        for shown in re.split(r"[\r\n]", text):  # what a terminal or a line-based reader shows
            assert not shown.startswith("GET /admin"), text


REFUSED_OR_ODD = [
    ("escape-sequences", b"GET /\x1b[2J\x1b[1;1H HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("nul-and-del", b"GET /a\x00b\x7f HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("quote-and-backslash", b'GET /a"b\\c HTTP/1.1\r\nHost: x\r\n\r\n'),
    ("utf-8-bytes", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("tab", b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("bare-cr-forging-a-line", b'GET /x\r127.0.0.1 - - [01/Jan/2030 00:00:00] "GET /admin HTTP/1.1" 200 2 HTTP/1.1\r\n\r\n'),
    ("longer-than-200", b"BAD\x01" + b"A" * 296 + b"\r\nHost: x\r\n\r\n"),
]


@pytest.mark.parametrize("data", [data for _, data in REFUSED_OR_ODD], ids=[name for name, _ in REFUSED_OR_ODD])
def test_request_line_is_logged_escaped_on_one_line(live_server: Any, logs: pytest.LogCaptureFixture, data: bytes) -> None:
    """Whatever the server answers, its one access line shows the client's request line, escaped (and cut at 200)."""
    srv = live_server(wsgi_app, access_log=True)
    status, raw = send_and_read(srv.port, data)
    assert status is not None, f"no answer: {raw[:200]!r}"
    line = one_access_line(logs)
    assert line.group("request") == escaped(first_line(data))
    assert int(line.group("status")) == status
    assert f'"{escaped(first_line(data))}" {status} ' in logs.text


def test_a_served_request_line_is_logged_whole(live_server: Any, logs: pytest.LogCaptureFixture) -> None:
    """A request the app answers: its whole request line (percent-escapes as sent), status and size."""
    srv = live_server(wsgi_app, access_log=True)
    target = "/ok%0d%0aX:%20y/" + "a" * 300
    status, raw = send_and_read(srv.port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert status == 200, raw[:200]
    line = one_access_line(logs)
    assert (line.group("request"), line.group("status"), line.group("size")) == (f"GET {target} HTTP/1.1", "200", "2")
    assert line.group("note") == ""


@pytest.mark.parametrize("query, shown", [
    ("access_token=s3cret&page=2", "access_token=[redacted]&page=2"),
    ("api_key=s3cret", "api_key=[redacted]"),
    ("user=a&password=s3cret", "user=a&password=[redacted]"),
    ("X-Amz-Signature=s3cret", "X-Amz-Signature=[redacted]"),
], ids=["access_token", "api_key", "password", "signature"])
def test_credentials_in_the_query_never_reach_the_access_log(
    live_server: Any, logs: pytest.LogCaptureFixture, query: str, shown: str
) -> None:
    srv = live_server(wsgi_app, access_log=True)
    status, raw = send_and_read(srv.port, f"GET /ok?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert status == 200, raw[:200]
    line = one_access_line(logs)
    assert line.group("request") == f"GET /ok?{shown} HTTP/1.1"
    assert "s3cret" not in caplog_text(logs)


def caplog_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(caplog.handler.format(record) for record in caplog.records)


# -- paths in error records ----------------------------------------------------------------------------------

FORGED_TAIL = '127.0.0.1%20-%20-%20%22GET%20/admin%20HTTP/1.1%22%20200'  # the rest of a forged access line
BREAKS = ["%0a", "%0d", "%0d%0a"]


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("restkit") and r.levelno >= logging.ERROR]


@pytest.mark.parametrize("line_break", BREAKS, ids=["lf", "cr", "crlf"])
@pytest.mark.parametrize("which", ["bare-wsgi-app", "restkit-app"])
def test_path_with_a_line_break_is_escaped_in_the_error_record(
    live_server: Any, logs: pytest.LogCaptureFixture, which: str, line_break: str
) -> None:
    """The 500's error record names method and path with the path escaped: no raw CR/LF before the traceback."""
    app = wsgi_app if which == "bare-wsgi-app" else restkit_app()
    srv = live_server(app, access_log=True)
    target = f"/boom{line_break}{FORGED_TAIL}"
    status, raw = send_and_read(srv.port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert status == 500, raw[:200]
    line = one_access_line(logs)
    assert (line.group("request"), line.group("status")) == (f"GET {target} HTTP/1.1", "500")
    records = error_records(logs)
    assert records, "no error record for the 500"
    decoded = "/boom" + line_break.replace("%0d", "\r").replace("%0a", "\n") + '127.0.0.1 - - "GET /admin HTTP/1.1" 200'
    for record in records:
        message = record.getMessage()
        formatted = logs.handler.format(record).split("\nTraceback (most recent call last):", 1)[0]
        for text in (message, formatted):
            assert "\n" not in text and "\r" not in text, f"raw line break in an error record: {text!r}"
            assert '"GET /admin' not in text, f"a raw quote from the client in an error record: {text!r}"
        assert "GET" in message and (escaped(decoded.encode("latin-1")) in message or target in message), message


# -- why a response was cut ------------------------------------------------------------------------------------


def body_bytes(raw: bytes) -> int:
    end = raw.find(b"\r\n\r\n")
    assert end > 0, f"no response head: {raw[:200]!r}"
    return len(raw) - end - 4


def test_client_that_stops_reading_is_logged_with_write_deadline_and_the_bytes_sent(
    live_server: Any, logs: pytest.LogCaptureFixture, clients: list[socket.socket]
) -> None:
    srv = live_server(wsgi_app, access_log=True, timeout=WRITE_TIMEOUT)
    sock = socket.socket()
    clients.append(sock)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", srv.port))
    sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    # the server closes within 2 x timeout of the stall; the line comes with the close
    line = one_access_line(logs, timeout=4 * WRITE_TIMEOUT + 5)
    assert line.group("request") == "GET /big HTTP/1.1" and line.group("status") == "200", line.group(0)
    assert line.group("note").startswith(" ") and "write deadline" in line.group("note"), line.group(0)
    logged = int(line.group("size"))
    assert 0 < logged < BIG, line.group(0)
    received = b""
    ending = "eof"
    sock.settimeout(5)
    try:
        while chunk := sock.recv(262144):
            received += chunk
    except ConnectionResetError:
        ending = "reset"
    got = body_bytes(received)
    assert got <= logged, f"the client received {got} body bytes, more than the {logged} logged"
    if ending == "eof":  # a FIN after the data: every byte handed to the kernel arrived
        assert got == logged, f"the client received {got} body bytes before a clean close; the line says {logged}"


def test_client_that_disconnects_mid_response_is_logged_as_such(
    live_server: Any, logs: pytest.LogCaptureFixture, clients: list[socket.socket]
) -> None:
    srv = live_server(wsgi_app, access_log=True)
    sock = connect(srv.port)
    clients.append(sock)
    sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    received = b""
    while len(received) < 65536:
        chunk = sock.recv(65536)
        assert chunk, "closed before the answer began"
        received += chunk
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, mid-response
    line = one_access_line(logs)
    assert line.group("request") == "GET /big HTTP/1.1" and line.group("status") == "200", line.group(0)
    assert line.group("note").startswith(" ") and "client disconnected" in line.group("note"), line.group(0)
    assert int(line.group("size")) < BIG, line.group(0)
