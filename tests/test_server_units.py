"""The server's pieces with plain bytes and fakes, no sockets (as h11's test_io and waitress's test_parser).

* the connection state table: every row, and every event a state cannot take;
* the parser and the chunked reader fed byte by byte;
* request taking: bodies spooled (memory, then a temporary file), 100 Continue due;
* plan_response and error_response: what a strict client (h11) reads;
* the outbox: a fake socket that takes a few bytes at a time;
* an exchange on a fake connection: a large answer to a client that takes
  nothing stops the worker at once, a slow stream stops pulling, the
  response states, and what the log line says.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from restkit.framing import LAST_CHUNK, BodyFraming, error_response, plan_response
from restkit.http11 import ChunkedReader, Limits, ProtocolError, parse_head
from restkit.logtext import escape
from restkit.server.body import BodySpool
from restkit.server.clock import DateHeader
from restkit.server.connection import ClientGone, Connection, Timeouts
from restkit.server.exchange import Exchange, Outcome, ResponseState
from restkit.server.state import TRANSITIONS, ConnectionState, Deadline, Event

h11 = pytest.importorskip("h11")

S, E = ConnectionState, Event
TIMEOUTS = Timeouts(request=30.0, keepalive=5.0, linger=2.0)


# -- the state table ---------------------------------------------------------------------------------


@pytest.mark.parametrize("row", sorted(TRANSITIONS.items(), key=str), ids=lambda row: f"{row[0][0].value}-{row[0][1].value}")
def test_each_transition_sets_state_and_deadline_together(row: Any) -> None:
    (state, event), (next_state, deadline) = row
    conn = Connection(FakeSocket(), ("127.0.0.1", 1), state, 0.0)
    assert conn.on(event, 100.0, TIMEOUTS) is next_state
    assert conn.state is next_state
    assert conn.deadline == 100.0 + TIMEOUTS.seconds[deadline]
    if deadline is Deadline.REQUEST:
        assert conn.request_deadline == conn.deadline


IMPOSSIBLE = [(state, event) for state in S for event in E if (state, event) not in TRANSITIONS]


@pytest.mark.parametrize("state, event", IMPOSSIBLE, ids=[f"{s.value}-{e.value}" for s, e in IMPOSSIBLE])
def test_an_event_a_state_cannot_take_is_a_bug_not_a_silent_change(state: ConnectionState, event: Event) -> None:
    conn = Connection(FakeSocket(), ("127.0.0.1", 1), state, 7.0)
    with pytest.raises(RuntimeError, match="cannot take"):
        conn.on(event, 100.0, TIMEOUTS)
    assert (conn.state, conn.deadline) == (state, 7.0)


def test_only_a_worker_state_has_no_deadline() -> None:
    for (state, event), (next_state, deadline) in TRANSITIONS.items():
        assert (deadline is Deadline.NONE) == (next_state in (S.WORKING, S.CLOSED)), (state, event)


def test_the_write_clock_starts_once_and_credits_progress() -> None:
    conn = Connection(FakeSocket(), ("127.0.0.1", 1), S.WORKING, 0.0)
    conn.on(E.BLOCKED, 10.0, TIMEOUTS)
    assert conn.wait_since == 10.0 and conn.write_deadline(1000.0) == 40.0
    conn.sent_waiting = 5000  # the client took 5 kB meanwhile: 5 s more at 1 kB/s
    assert conn.write_deadline(1000.0) == 45.0


# -- parsing with plain bytes --------------------------------------------------------------------------


def test_a_head_arriving_byte_by_byte() -> None:
    raw = b"POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    buffer, head = bytearray(), None
    for index in range(len(raw)):
        buffer += raw[index : index + 1]
        head = parse_head(buffer, Limits())
        if head is not None:
            break
    assert head is not None and head.environ["PATH_INFO"] == "/a" and head.content_length == 3
    assert bytes(buffer) == b""  # the head, and only the head, was taken off


def test_a_refused_head_stays_in_the_buffer_so_its_own_line_is_logged() -> None:
    buffer = bytearray(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    with pytest.raises(ProtocolError):
        parse_head(buffer, Limits())
    assert buffer.startswith(b"GET / HTTP/1.1\r\n")


def test_chunked_reader_fed_one_byte_at_a_time() -> None:
    raw = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT"
    reader, buffer, out = ChunkedReader(Limits()), bytearray(), b""
    for byte in raw:
        buffer.append(byte)
        out += reader.read(buffer)
        if reader.done:
            break
    assert out == b"Wikipedia" and reader.done


@pytest.mark.parametrize("raw", [b"zz\r\n", b"3\r\nabcd\r\n", b"3\nabc\r\n"], ids=["bad-size", "long-data", "bare-lf"])
def test_chunked_reader_refuses_bad_framing(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        ChunkedReader(Limits()).read(bytearray(raw))


# -- taking requests: bodies go to the spool ----------------------------------------------------------


def test_a_body_is_spooled_whole_before_the_request_is_released() -> None:
    conn = Connection(FakeSocket(), ("127.0.0.1", 1), S.RECEIVING, 0.0)
    conn.buffer += b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"
    assert conn.take_request(Limits(), stream_body=False) is None
    conn.buffer += b"world"
    head = conn.take_request(Limits(), stream_body=False)
    assert head is not None and conn.spool is not None
    assert conn.spool.as_input().read() == b"helloworld"


def test_expect_100_continue_is_due_until_the_body_comes() -> None:
    conn = Connection(FakeSocket(), ("127.0.0.1", 1), S.RECEIVING, 0.0)
    conn.buffer += b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    assert conn.take_request(Limits(), stream_body=False) is None and conn.continue_due
    conn.buffer += b"ok"
    assert conn.take_request(Limits(), stream_body=False) is not None and not conn.continue_due


def test_streaming_opt_in_releases_a_large_body_with_its_head() -> None:
    conn = Connection(FakeSocket(), ("127.0.0.1", 1), S.RECEIVING, 0.0)
    conn.buffer += b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n\r\n"
    assert conn.take_request(Limits(), stream_body=True) is not None
    assert conn.spool is None and conn.reader is not None


def test_spool_moves_to_a_file_past_its_memory_limit() -> None:
    spool = BodySpool(limit=8)
    for piece in (b"abcd", b"efgh", b"ijkl"):
        spool.write(piece)
    body = spool.as_input()
    assert not hasattr(body, "getvalue")  # a file, not BytesIO
    assert body.read() == b"abcdefghijkl" and spool.size == 12
    spool.close()


# -- the heads the server writes --------------------------------------------------------------------


def read_with_h11(raw: bytes, method: str = "GET") -> list[Any]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
    client.receive_data(raw)
    events = []
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(b"")
            continue
        events.append(event)
        if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)) or event is h11.PAUSED:
            return events


def test_error_response_is_strict_http() -> None:
    raw = error_response(413, 'too "big"\n', date="Mon, 07 Dec 2026 00:00:00 GMT", server="restkit")
    response, data, end = read_with_h11(raw)
    assert response.status_code == 413 and dict(response.headers)[b"connection"] == b"close"
    assert data.data == b'{"error": "too \\"big\\"\\n"}' and isinstance(end, h11.EndOfMessage)


@pytest.mark.parametrize("status, known, framing", [
    ("200 OK", 5, BodyFraming.LENGTH), ("200 OK", None, BodyFraming.CHUNKED), ("204 No Content", None, BodyFraming.NONE),
], ids=["length", "chunked", "no-body"])
def test_plan_response_framing(status: str, known: int | None, framing: BodyFraming) -> None:
    plan = plan_response(status, [("X-A", "1")], head_request=False, http11=True, keep_alive=True, known_length=known,
                         date="d", server="s")
    assert plan.framing is framing
    body = b"hello" if framing is BodyFraming.LENGTH else b"5\r\nhello\r\n" + LAST_CHUNK if framing is BodyFraming.CHUNKED else b""
    events = read_with_h11(plan.head + body)
    assert events[0].status_code == int(status[:3]) and isinstance(events[-1], h11.EndOfMessage)


def test_log_text_is_escaped_like_nginx() -> None:
    assert escape('FAKE\rGET /admin "x" \\ \x1b[2J é') == "FAKE\\x0dGET /admin \\x22x\\x22 \\x5c \\x1b[2J \\xe9"
    assert escape("GET /plain HTTP/1.1") == "GET /plain HTTP/1.1"


# -- the outbox, with a socket that takes a few bytes at a time -------------------------------------------


class FakeSocket:
    """Takes at most ``room`` bytes, then raises BlockingIOError until ``room`` grows."""

    def __init__(self, room: int = 1 << 30) -> None:
        self.room = room
        self.sent = bytearray()
        self.gone = False

    def send(self, data: Any) -> int:
        if self.gone:
            raise BrokenPipeError()
        if not self.room:
            raise BlockingIOError()
        taken = bytes(data[: self.room])
        self.sent += taken
        self.room -= len(taken)
        return len(taken)

    def sendmsg(self, buffers: Iterable[Any]) -> int:
        return self.send(b"".join(bytes(b) for b in buffers))

    def fileno(self) -> int:
        return -1


def test_push_keeps_what_the_kernel_does_not_take_without_copying() -> None:
    sock = FakeSocket(room=10)
    conn = Connection(sock, ("127.0.0.1", 1), S.WORKING, 0.0)  # type: ignore[arg-type]
    body = b"b" * 100
    assert conn.push(b"HEAD:", body) is False
    assert bytes(sock.sent) == b"HEAD:bbbbb" and conn.unsent == 95
    assert conn.outbox[-1].obj is body  # a view of the app's bytes, not a copy
    assert conn.push(b"more") is False  # behind others: queued, in order
    sock.room = 50
    assert conn.flush() is False and conn.sent_waiting == 50
    sock.room = 1000
    assert conn.flush() is True and conn.unsent == 0 and conn.wait_since == 0.0
    assert bytes(sock.sent) == b"HEAD:" + body + b"more"


def test_a_client_that_went_away_is_reported_not_raised_raw() -> None:
    sock = FakeSocket()
    sock.gone = True
    conn = Connection(sock, ("127.0.0.1", 1), S.WORKING, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ClientGone):
        conn.push(b"x")


# -- an exchange on a fake connection ---------------------------------------------------------------------


class FakeServer:
    """What an Exchange asks of its server."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.base_environ: dict[str, Any] = {"wsgi.url_scheme": "http", "SERVER_NAME": "t", "SERVER_PORT": "80"}
        self.stopping = threading.Event()
        self.extra_headers: list[tuple[str, str]] = []
        self.date = DateHeader()
        self.timeout = 30.0
        self.min_send_rate = 8192.0
        self.detached = 0
        self.lines: list[tuple[str, int, int, str]] = []
        self.access_log = True

    def detach_worker(self) -> None:
        self.detached += 1

    def log_access(
        self, conn: Connection, request_line: str, status: int, size: int, note: str = "", *,
        environ: dict[str, Any] | None = None, started: float | None = None,
    ) -> None:
        self.lines.append((request_line, status, size, note))


def exchange_for(app: Callable[..., Iterable[bytes]], room: int, request: bytes = b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n") -> tuple[Exchange, FakeSocket, FakeServer]:
    sock = FakeSocket(room)
    conn = Connection(sock, ("127.0.0.1", 1), S.WORKING, 0.0)  # type: ignore[arg-type]
    conn.buffer += request
    head = conn.take_request(Limits(), stream_body=False)
    assert head is not None
    server = FakeServer(app)
    return Exchange(server, conn, head), sock, server  # type: ignore[arg-type]


BIG = b"x" * (8 << 20)


def big_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [BIG]


def test_a_large_answer_to_a_client_that_takes_nothing_frees_the_worker_at_once() -> None:
    exchange, sock, server = exchange_for(big_app, room=4096)
    assert exchange.run() is True  # blocked: the loop writes the rest
    assert exchange.state is ResponseState.FINISHED and exchange.outcome is Outcome.KEEP
    assert exchange.plan is not None
    assert exchange.conn.unsent + len(sock.sent) == len(exchange.plan.head) + len(BIG)
    assert exchange.sent_bytes() < 4096  # the head took some of the room
    sock.room = 1 << 30
    assert exchange.conn.flush() is True and exchange.sent_bytes() == len(BIG)


def test_a_stream_stops_pulling_while_its_client_is_behind() -> None:
    pulled = itertools.count()

    def stream(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for _ in range(1000):
            next(pulled)
            yield b"y" * 10000

    exchange, sock, server = exchange_for(stream, room=25000)
    assert exchange.run() is True and exchange.state is ResponseState.BODY
    assert next(pulled) <= 4  # a few items, not the whole stream
    assert server.detached == 1  # a stream leaves the pool's count...
    sock.room = 1 << 30
    assert exchange.conn.flush() is True
    assert exchange.resume() is False and exchange.state is ResponseState.FINISHED
    assert server.detached == 2  # ...on each worker that takes it up
    assert sock.sent.endswith(LAST_CHUNK)
    exchange.log()
    assert server.lines[-1][:3] == ("GET /big HTTP/1.1", 200, 1000 * 10000)


def test_a_cut_by_the_loop_closes_the_iterable_once_and_says_why() -> None:
    closed = []

    class Stream:
        def __iter__(self) -> Iterator[bytes]:
            while True:
                yield b"z" * 50000

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Stream:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Stream()

    exchange, sock, server = exchange_for(app, room=1000)
    assert exchange.run() is True
    close = exchange.cut_by_loop("write deadline")
    assert close is not None
    close()
    assert exchange.cut_by_loop("write deadline") is None and closed == [True]
    exchange.log()
    assert exchange.state is ResponseState.CUT and server.lines[-1][3] == " (cut: write deadline)"


def test_an_app_failure_before_the_head_is_a_json_500() -> None:
    def broken(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raise RuntimeError("boom")

    exchange, sock, server = exchange_for(broken, room=1 << 20)
    assert exchange.run() is False
    assert exchange.outcome is Outcome.CLOSE and exchange.code == 500
    events = read_with_h11(bytes(sock.sent))
    assert events[0].status_code == 500 and events[1].data == b'{"error": "internal server error"}'


def test_a_cached_plan_takes_each_calls_date_and_never_caches_a_refusal() -> None:
    from restkit.framing import AppError

    headers = [("Content-Type", "text/plain")]
    options: dict[str, Any] = {"head_request": False, "http11": True, "keep_alive": True, "known_length": 2,
                               "server": "restkit"}
    first = plan_response("200 OK", headers, date="Mon, 07 Dec 2026 10:00:00 GMT", **options)
    second = plan_response("200 OK", list(headers), date="Mon, 07 Dec 2026 10:00:01 GMT", **options)
    assert b"Date: Mon, 07 Dec 2026 10:00:00 GMT\r\n" in first.head
    assert second.head == first.head.replace(b"10:00:00", b"10:00:01")
    for _ in range(2):  # a bad value is refused every time, not only the first
        with pytest.raises(AppError):
            plan_response("200 OK", [("X-Bad", "a\r\nSet-Cookie: x=1")], date="d", **options)
    own_date = plan_response("200 OK", [("Date", "theirs")], date="ours", **options)
    assert b"Date: theirs\r\n" in own_date.head and b"ours" not in own_date.head
