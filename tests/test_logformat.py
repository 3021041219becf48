"""JSON log lines (restkit.logformat): one object a record, one record a line, the access line's parts as fields.

The text format is unchanged; tests/test_server_logs.py holds it to its contract.
"""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from restkit import App, Request
from restkit.logformat import JsonFormatter, formatter_for
from restkit.requestid import RequestId, RequestIdFilter
from restkit.server.serving import serve
from tests.conftest import LiveServer, free_port, stop_process
from tests.wire import TIMEOUT, Answer, connect, finish, get, read_response, start_cli, wait_for, wait_until_listening

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def make_app() -> App:
    app = App()
    app.use(RequestId())

    @app.get("/hello")
    def hello(request: Request) -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/boom")
    def boom(request: Request) -> None:
        raise RuntimeError("the handler failed\nwith a second line")

    return app


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What restkit's loggers write through a JsonFormatter (with the request-ID filter), as text."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("restkit")  # restkit.access and restkit.server propagate to it
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed: a line that is not one JSON object fails the test."""
    text = stream.getvalue()
    assert text == "" or text.endswith("\n")
    parsed = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(each, dict) for each in parsed)
    return parsed


def access(stream: io.StringIO, count: int) -> list[dict[str, Any]]:
    """The ``count`` access records, once they are all written."""
    assert wait_for(lambda: len([r for r in records(stream) if r["logger"] == "restkit.access"]) >= count)
    found = [r for r in records(stream) if r["logger"] == "restkit.access"]
    assert len(found) == count, found
    return found


def raw_get(port: int, target: str, headers: str = "") -> Answer:
    with connect(port) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n".encode())
        return read_response(sock)


def test_one_json_line_per_request_with_the_access_fields(live_server: Callable[..., LiveServer],
                                                          json_log: io.StringIO) -> None:
    server = live_server(make_app(), access_log=True)
    headers = (
        'User-Agent: probe "7"\\x\r\n'
        "X-Request-ID: line-42\r\n"
        f"traceparent: 00-{TRACE_ID}-00f067aa0ba902b7-01\r\n"
        "Authorization: Bearer sekrit-bearer\r\n"
    )
    hello = raw_get(server.port, "/hello?access_token=sekrit-token&x=1", headers)
    assert hello.status == 200
    assert raw_get(server.port, "/nowhere").status == 404
    first, second = access(json_log, 2)

    assert TIME.fullmatch(first["time"]) and first["level"] == "INFO"
    assert (first["method"], first["path"], first["status"]) == ("GET", "/hello?access_token=[redacted]&x=1", 200)
    assert first["bytes"] == len(hello.body) > 0
    assert first["client"] == "127.0.0.1"
    assert first["user_agent"] == "probe \\x227\\x22\\x5cx"
    assert (first["request_id"], first["trace_id"]) == ("line-42", TRACE_ID)
    assert 0 <= first["duration"] < TIMEOUT
    assert "note" not in first
    assert first["message"].endswith('"GET /hello?access_token=[redacted]&x=1 HTTP/1.1" 200 '
                                     f'{first["bytes"]} request_id=line-42')

    assert (second["path"], second["status"]) == ("/nowhere", 404)
    assert len(second["request_id"]) == 32  # generated
    assert "trace_id" not in second and "user_agent" not in second

    text = json_log.getvalue()
    assert "sekrit" not in text and "Bearer" not in text


def test_a_refused_request_is_one_json_line(live_server: Callable[..., LiveServer], json_log: io.StringIO) -> None:
    server = live_server(make_app(), access_log=True)
    with connect(server.port) as sock:
        sock.sendall(b"GET /a\x1bb HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock).status == 400
    (record,) = access(json_log, 1)
    assert record["status"] == 400 and record["bytes"] == 0
    assert "\x1b" not in json_log.getvalue() and "\\u001b" not in json_log.getvalue()
    assert "\\x1b" in record["message"]


def test_an_app_error_is_one_line_with_a_traceback(live_server: Callable[..., LiveServer],
                                                   json_log: io.StringIO) -> None:
    server = live_server(make_app(), access_log=True)
    assert raw_get(server.port, "/boom", "X-Request-ID: boom-1\r\n").status == 500
    (line,) = access(json_log, 1)
    assert line["status"] == 500 and line["request_id"] == "boom-1"
    errors = [r for r in records(json_log) if r["level"] == "ERROR"]
    assert len(errors) == 1, errors
    error = errors[0]
    assert error["logger"] == "restkit" and error["request_id"] == "boom-1"
    assert "RuntimeError: the handler failed" in error["traceback"]
    assert error["traceback"].startswith("Traceback (most recent call last):")
    assert len(json_log.getvalue().splitlines()) == 2  # the traceback's and the message's line feeds are escaped


def test_a_note_and_the_duration_are_fields(live_server: Callable[..., LiveServer], json_log: io.StringIO) -> None:
    server = live_server(make_app(), access_log=True).server
    conn = SimpleNamespace(address=("192.0.2.7", 5000))
    environ = {"restkit.request_id": 'id"1', "HTTP_AUTHORIZATION": "Basic c2Vrcml0"}
    started = time.monotonic() - 1.5
    server.log_access(conn, "GET /big HTTP/1.1", 200, 4096, " (cut: write deadline)",  # type: ignore[arg-type]
                      environ=environ, started=started)
    (record,) = access(json_log, 1)
    assert record["note"] == "cut: write deadline"
    assert record["request_id"] == "id\\x221" and record["client"] == "192.0.2.7"
    assert 1.5 <= record["duration"] < 1.5 + TIMEOUT
    assert record["message"].endswith('"GET /big HTTP/1.1" 200 4096 request_id=id\\x221 (cut: write deadline)')
    assert "c2Vrcml0" not in json_log.getvalue()


def test_the_formatter_keeps_every_record_on_one_line() -> None:
    try:
        raise ValueError("a\nb")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("app", logging.WARNING, __file__, 1, "two\nlines %s", ("\r",), exc_info)
    record.request_id = "-"  # the filter's "none": left out
    record.order = 7  # any extra= field comes along
    line = JsonFormatter().format(record)
    assert "\n" not in line and "\r" not in line
    parsed = json.loads(line)
    assert list(parsed)[:4] == ["time", "level", "logger", "message"]
    assert (parsed["level"], parsed["logger"], parsed["message"]) == ("WARNING", "app", "two\nlines \r")
    assert parsed["order"] == 7 and "request_id" not in parsed
    assert parsed["traceback"].endswith("ValueError: a\nb")


def test_an_unknown_log_format_is_refused() -> None:
    assert isinstance(formatter_for("json", "%(message)s"), JsonFormatter)
    with pytest.raises(ValueError, match="log_format must be one of text, json"):
        formatter_for("xml", "%(message)s")
    with pytest.raises(ValueError, match="log_format"):
        serve(make_app(), log_format="xml")


def test_the_command_line_writes_json_lines_to_stderr(tmp_path: Path) -> None:
    (tmp_path / "jsonapp.py").write_text(textwrap.dedent("""
        from restkit import App

        app = App()

        @app.get("/hi")
        def hi(request):
            return {"hi": True}
    """))
    port = free_port()
    proc = start_cli(["jsonapp:app", "--port", str(port), "--log-format", "json"], tmp_path)
    try:
        wait_until_listening(port, proc)
        assert get(port, "/hi?password=sekrit")[0] == 200
        assert get(port, "/hi")[0] == 200
        proc.send_signal(signal.SIGINT)
        status, stderr = finish(proc)
    finally:
        stop_process(proc)
    assert status == 0, stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("restkit: ")]  # the start and stop notices
    parsed = [json.loads(line) for line in lines]
    access_lines = [each for each in parsed if each["logger"] == "restkit.access"]
    assert [(each["path"], each["status"]) for each in access_lines] == [("/hi?password=[redacted]", 200), ("/hi", 200)]
    assert "sekrit" not in stderr
