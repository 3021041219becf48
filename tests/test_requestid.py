"""restkit.requestid: the id of each request in its answer, the app's log records, the access line and 500 bodies."""

from __future__ import annotations

import http.client
import logging
import re
from collections.abc import Callable, Iterator

import pytest

from restkit import App, Request
from restkit.requestid import RequestId, RequestIdFilter, log_request_ids, parse_traceparent
from restkit.testing import Client
from tests.conftest import LiveServer
from tests.wire import wait_for

GENERATED = re.compile(r"[0-9a-f]{32}")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Records(logging.Handler):
    """Keeps the records it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    log_request_ids(handler)
    logger = logging.getLogger("tests.requestid")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def make_app() -> App:
    app = App()
    app.use(RequestId())

    @app.get("/hello")
    def hello(request: Request) -> dict[str, str]:
        logging.getLogger("tests.requestid").info("hello")
        return {"traceparent": request.environ.get("restkit.traceparent", "")}

    @app.get("/boom")
    def boom(request: Request) -> None:
        raise RuntimeError("boom")

    return app


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123", True),
        ("x" * 128, True),
        ("!~{}", True),
        ("x" * 129, False),
        ("has space", False),
        ("caf\u00e9", False),
        ("", False),
        (None, False),
    ],
    ids=["plain", "128-chars", "punctuation", "129-chars", "space", "non-ascii", "empty", "absent"],
)
def test_a_valid_id_is_kept_else_one_is_generated_and_echoed(records: Records, given: str | None, kept: bool) -> None:
    headers = {} if given is None else {"X-Request-ID": given.encode("utf-8").decode("latin-1")}
    response = Client(make_app()).get("/hello", headers=headers, status=200)
    echoed = response.headers["X-Request-ID"]
    if kept:
        assert echoed == given
    else:
        assert GENERATED.fullmatch(echoed), echoed
    assert [r.request_id for r in records.records] == [echoed]  # type: ignore[attr-defined]
    assert records.records[0].trace_id == "-"  # type: ignore[attr-defined]


def test_each_request_gets_its_own_id(records: Records) -> None:
    client = Client(make_app())
    ids = {client.get("/hello").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
    assert {r.request_id for r in records.records} == ids  # type: ignore[attr-defined]


def test_404s_are_named_too() -> None:
    response = Client(make_app()).get("/nowhere", headers={"X-Request-ID": "lost-1"}, status=404)
    assert response.headers["X-Request-ID"] == "lost-1"


def test_a_500_body_names_the_request(caplog: pytest.LogCaptureFixture) -> None:
    filtered = RequestIdFilter()
    caplog.handler.addFilter(filtered)
    response = Client(make_app()).get("/boom", headers={"X-Request-ID": "req-500"}, status=500)
    assert response.json == {"error": "internal server error", "request_id": "req-500"}
    assert response.headers["X-Request-ID"] == "req-500"
    logged = [r for r in caplog.records if r.name == "restkit" and r.levelno == logging.ERROR]
    assert [r.request_id for r in logged] == ["req-500"]  # type: ignore[attr-defined]


def test_a_valid_traceparent_puts_its_trace_id_in_the_logs_and_a_child_span_in_the_answer(records: Records) -> None:
    response = Client(make_app()).get("/hello", headers={"traceparent": TRACEPARENT}, status=200)
    assert records.records[0].trace_id == TRACE_ID  # type: ignore[attr-defined]
    child = response.headers["traceparent"]
    version, trace_id, span_id, flags = child.split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert re.fullmatch(r"[0-9a-f]{16}", span_id) and span_id != "00f067aa0ba902b7"
    assert response.json == {"traceparent": child}  # what the handler passes on to the services it calls


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        f"00-{TRACE_ID}-00f067aa0ba902b7",  # no flags
        f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01",  # uppercase hex
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",  # forbidden version
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra",  # version 00 has exactly four fields
    ],
    ids=["garbage", "no-flags", "uppercase", "zero-trace", "zero-parent", "version-ff", "00-with-extra"],
)
def test_an_invalid_traceparent_is_ignored(records: Records, value: str) -> None:
    response = Client(make_app()).get("/hello", headers={"traceparent": value}, status=200)
    assert "traceparent" not in response.headers
    assert records.records[0].trace_id == "-"  # type: ignore[attr-defined]
    assert GENERATED.fullmatch(records.records[0].request_id)  # type: ignore[attr-defined]


def test_a_later_version_may_carry_more_fields() -> None:
    assert parse_traceparent(f"01-{TRACE_ID}-00f067aa0ba902b7-01-more") == (TRACE_ID, "00f067aa0ba902b7", "01")


def test_the_server_access_line_ends_with_the_request_id(live_server: Callable[..., LiveServer],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="restkit.access")
    server = live_server(make_app(), access_log=True)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", "/hello", headers={"X-Request-ID": "line-42"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.getheader("X-Request-ID") == "line-42"

    def line() -> str | None:
        found = [r.getMessage() for r in caplog.records if r.name == "restkit.access"]
        return found[0] if found else None

    assert wait_for(line)
    assert line().endswith('"GET /hello HTTP/1.1" 200 18 request_id=line-42')  # type: ignore[union-attr]
