"""restkit.response: what each kind of handler return value becomes on the wire."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import io
import json
import uuid
from http import HTTPStatus
from collections.abc import Iterator
from typing import Any, NamedTuple
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from restkit import App, MultiDict, Response, json_dumps, multipart_stream
from restkit.response import check_header, render, wsgi_result

from tests.conftest import make_client


def environ_for(method: str = "GET", path: str = "/") -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
                               "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    return environ


def start(app: Any, method: str, path: str) -> tuple[dict[str, Any], Any]:
    """Call ``app`` through the validator; return what start_response got and the body iterable."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    return captured, validator(app)(environ_for(method, path), start_response)


def single_route_app(result: Any, **route: Any) -> App:
    app = App()

    @app.route("/r", methods=["GET", "POST"], **route)
    def r(request: Any) -> Any:
        return result() if callable(result) else result

    @app.get("/ok")
    def ok(request: Any) -> dict[str, bool]:
        return {"ok": True}

    return app


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Animal:
    name: str
    born: datetime.date
    tags: list[str] = dataclasses.field(default_factory=list)


UID = uuid.UUID("12345678-1234-5678-1234-567812345678")

RETURNS = [
    # id, return value, status, content type, body
    ("dict", {"a": 1, "b": [1, 2]}, 200, "application/json; charset=utf-8", b'{"a":1,"b":[1,2]}'),
    ("list", [1, "x", None], 200, "application/json; charset=utf-8", b'[1,"x",null]'),
    ("empty-dict", {}, 200, "application/json; charset=utf-8", b"{}"),
    ("str", "héllo", 200, "text/plain; charset=utf-8", "héllo".encode()),
    ("empty-str", "", 200, "text/plain; charset=utf-8", b""),
    ("bytes", b"\x00\xff\r\n", 200, "application/octet-stream", b"\x00\xff\r\n"),
    ("bytearray", bytearray(b"abc"), 200, "application/octet-stream", b"abc"),
    ("dict-status", ({"id": 1}, 201), 201, "application/json; charset=utf-8", b'{"id":1}'),
    ("str-status", ("accepted", 202), 202, "text/plain; charset=utf-8", b"accepted"),
    ("bytes-status", (b"raw", 203), 203, "application/octet-stream", b"raw"),
    ("none-status", (None, 202), 202, "text/plain; charset=utf-8", b""),
    ("dict-status-headers", ({"id": 1}, 201, {"Location": "/items/1"}), 201, "application/json; charset=utf-8",
     b'{"id":1}'),
    ("str-status-header-pairs", ("x", 200, [("X-A", "1"), ("X-A", "2")]), 200, "text/plain; charset=utf-8", b"x"),
    ("http-status-member", ({"x": 1}, __import__("http").HTTPStatus.CREATED), 201, "application/json; charset=utf-8",
     b'{"x":1}'),
    ("response", Response(b"<p>", 200, content_type="text/html"), 200, "text/html", b"<p>"),
    ("response-json", Response.json({"a": "é"}, 201), 201, "application/json; charset=utf-8",
     '{"a":"é"}'.encode()),
    ("response-text", Response.text("t", 418), 418, "text/plain; charset=utf-8", b"t"),
    ("response-html", Response.html("<b>é</b>"), 200, "text/html; charset=utf-8", "<b>é</b>".encode()),
    ("response-str-body", Response("plain"), 200, "text/plain; charset=utf-8", b"plain"),
    ("response-in-tuple", (Response.json([1]), 201), 201, "application/json; charset=utf-8", b"[1]"),
    ("dataclass", Animal("Zoé", datetime.date(2020, 1, 2)), 200, "application/json; charset=utf-8",
     '{"name":"Zoé","born":"2020-01-02","tags":[]}'.encode()),
]


@pytest.mark.parametrize("result, code, ctype, body", [c[1:] for c in RETURNS], ids=[c[0] for c in RETURNS])
def test_return_types(result: Any, code: int, ctype: str, body: bytes) -> None:
    # build a fresh value per request: Response objects are not reusable
    client = make_client(single_route_app(lambda: result))
    resp = client.get("/r", status=code)
    assert resp.headers["Content-Type"] == ctype
    assert resp.body == body
    assert resp.headers["Content-Length"] == str(len(body))
    assert client.get("/ok").json == {"ok": True}


def test_tuple_headers_are_sent() -> None:
    client = make_client(single_route_app(lambda: ({"id": 1}, 201, {"Location": "/items/1"})))
    assert client.get("/r", status=201).headers["Location"] == "/items/1"
    client = make_client(single_route_app(lambda: ("x", 200, [("X-A", "1"), ("X-A", "2")])))
    assert client.get("/r").headers.getall("X-A") == ["1", "2"]


def test_response_in_tuple_headers_replace() -> None:
    client = make_client(single_route_app(lambda: (Response.json([1], headers={"X-A": "old"}), 202, {"X-A": "new"})))
    resp = client.get("/r", status=202)
    assert resp.headers.getall("X-A") == ["new"]


def test_none_is_204_without_body() -> None:
    client = make_client(single_route_app(None))
    resp = client.get("/r", status=204)
    assert resp.body == b""
    assert "Content-Type" not in resp.headers
    assert "Content-Length" not in resp.headers


@pytest.mark.parametrize(
    "result, code",
    [(("ignored body", 204), 204), ((Response(b"x", 304, {"ETag": '"v1"'})), 304), (({"a": 1}, 304), 304),
     (Response.json({"a": 1}, 204), 204)],
    ids=["str-204", "response-304", "dict-304", "json-204"],
)
def test_204_and_304_carry_no_body(result: Any, code: int) -> None:
    client = make_client(single_route_app(lambda: result))
    resp = client.get("/r", status=code)
    assert resp.body == b""
    assert "Content-Length" not in resp.headers
    assert "Content-Type" not in resp.headers
    if code == 304 and isinstance(result, Response):
        assert resp.headers["ETag"] == '"v1"'


class Closable:
    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter([b"never sent"])

    def close(self) -> None:
        self.closed = True


def test_204_closes_a_streamed_body() -> None:
    body = Closable()
    client = make_client(single_route_app(lambda: (body, 204), produces=None))
    assert client.get("/r", status=204).body == b""
    assert body.closed


# -- streaming --------------------------------------------------------------------------------


class Tracked:
    """A streamed body (like a camera or a file) that records how far it got and whether it was closed."""

    def __init__(self, chunks: list[Any]) -> None:
        self.chunks = list(chunks)
        self.yielded = 0
        self.closed = False

    def __iter__(self) -> Tracked:
        return self

    def __next__(self) -> Any:
        if self.closed:
            raise AssertionError("read after close()")
        if self.yielded == len(self.chunks):
            raise StopIteration
        self.yielded += 1
        return self.chunks[self.yielded - 1]

    def close(self) -> None:
        self.closed = True


def test_generator_is_streamed_and_closed() -> None:
    tracked = Tracked([b"one ", bytearray(b"two "), b"", b"three"])
    client = make_client(single_route_app(lambda: tracked, produces=None))
    resp = client.get("/r")
    assert resp.body == b"one two three"
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert tracked.closed


def test_stream_has_no_content_length() -> None:
    captured, body = start(single_route_app(lambda: iter([b"a", b"b"]), produces=None), "GET", "/r")
    assert "content-length" not in {k.lower() for k, _ in captured["headers"]}
    assert b"".join(body) == b"ab"
    body.close()


def test_started_generator_is_closed_on_disconnect() -> None:
    state = {"closed": False}

    def gen() -> Iterator[bytes]:
        try:
            while True:
                yield b"tick"
        finally:
            state["closed"] = True

    captured, body = start(single_route_app(gen, produces=None), "GET", "/r")
    iterator = iter(body)
    assert next(iterator) == b"tick"
    body.close()
    assert state["closed"]


def test_stream_is_not_buffered() -> None:
    tracked = Tracked([b"a", b"b", b"c"])
    app = single_route_app(lambda: tracked, produces=None)
    captured, body = start(app, "GET", "/r")
    assert captured["status"] == "200 OK"
    assert tracked.yielded == 0  # nothing produced before the server asks
    iterator = iter(body)
    assert next(iterator) == b"a"
    assert tracked.yielded == 1
    body.close()


def test_client_disconnect_closes_the_generator() -> None:
    tracked = Tracked([b"frame"] * 1000)
    app = single_route_app(lambda: tracked, produces=None)
    captured, body = start(app, "GET", "/r")
    iterator = iter(body)
    assert next(iterator) == b"frame"
    assert next(iterator) == b"frame"
    assert not tracked.closed
    body.close()  # what a server does when the client goes away
    assert tracked.closed
    assert tracked.yielded == 2


def test_head_closes_the_generator_without_reading_it() -> None:
    tracked = Tracked([b"frame"] * 10)
    app = single_route_app(lambda: tracked, produces=None)
    client = make_client(app)
    resp = client.head("/r")
    assert resp.body == b""
    assert tracked.closed
    assert tracked.yielded == 0


def test_response_object_with_iterable_body() -> None:
    tracked = Tracked([b"x", b"y"])
    app = single_route_app(lambda: Response(tracked, 200, content_type="text/csv"), produces=None)
    resp = make_client(app).get("/r")
    assert resp.body == b"xy" and resp.headers["Content-Type"] == "text/csv"
    assert tracked.closed


def test_list_of_bytes_is_json_not_a_stream() -> None:
    # a list is JSON; bytes chunks must be sent as an iterator or generator
    resp = make_client(single_route_app(lambda: ["a", "b"])).get("/r")
    assert resp.json == ["a", "b"]


# -- bad return values and header injection -----------------------------------------------------

BAD_RESULTS = [
    ("object", object()),
    ("four-tuple", ({}, 200, {}, "extra")),
    ("one-tuple", ({},)),
    ("unserialisable-in-dict", {"x": object()}),
    ("bad-status", ({}, 99)),
    ("status-not-int", ({}, "abc")),
    ("crlf-in-tuple-header", ({}, 200, {"X-A": "1\r\nSet-Cookie: evil=1"})),
    ("lf-in-tuple-header", ("x", 200, [("X-A", "1\nX-B: 2")])),
    ("nul-in-tuple-header", ("x", 200, {"X-A": "a\0b"})),
    ("cr-in-tuple-header-name", ("x", 200, {"X-A\r": "1"})),
    ("colon-in-header-name", ("x", 200, {"X-A: b": "1"})),
    ("non-latin1-header", ("x", 200, {"X-A": "😀"})),
]


@pytest.mark.parametrize("result", [c[1] for c in BAD_RESULTS], ids=[c[0] for c in BAD_RESULTS])
def test_bad_return_values_are_500_without_traceback(result: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(single_route_app(lambda: result))
    resp = client.get("/r", status=500)
    assert resp.json == {"error": "internal server error"}
    assert "Traceback" not in resp.text
    assert "evil" not in str(resp.headers)
    assert any(r.name == "restkit" and r.exc_info for r in caplog.records)
    assert client.get("/ok").json == {"ok": True}


INJECTIONS = [("cr", "a\rb"), ("lf", "a\nb"), ("crlf", "a\r\nSet-Cookie: x=1"), ("nul", "a\0b")]


@pytest.mark.parametrize("value", [v for _, v in INJECTIONS], ids=[i for i, _ in INJECTIONS])
def test_response_refuses_header_injection(value: str) -> None:
    with pytest.raises(ValueError):
        Response(b"", headers={"X-A": value})
    with pytest.raises(ValueError):
        Response(b"", headers={f"X-{value}": "1"})
    with pytest.raises(ValueError):
        Response.json({}, headers=[("X-A", value)])
    resp = Response(b"")
    with pytest.raises(ValueError):
        resp.set_header("X-A", value)
    with pytest.raises(ValueError):
        resp.add_header("Location", value)
    with pytest.raises(ValueError):
        Response.redirect("/next" + value)
    with pytest.raises(ValueError):
        Response(b"", content_type="text/plain" + value)
    assert resp.get_header("X-A") is None


@pytest.mark.parametrize("name", ["", "X A", "X:A", "Zoé", "X(A)"], ids=["empty", "space", "colon", "non-ascii", "paren"])
def test_response_refuses_bad_header_names(name: str) -> None:
    with pytest.raises(ValueError):
        Response(b"", headers={name: "1"})
    with pytest.raises(ValueError):  # the name check is cached: a second time is refused alike
        Response(b"", headers={name: "1"})


@pytest.mark.parametrize("name", [None, 7, b"X-A"], ids=["none", "int", "bytes"])
def test_response_refuses_header_names_that_are_not_text(name: Any) -> None:
    with pytest.raises(ValueError):
        check_header(name, "1")


@pytest.mark.parametrize("value", [v for _, v in INJECTIONS], ids=[i for i, _ in INJECTIONS])
def test_long_header_values_are_checked_to_the_end(value: str) -> None:
    """A control character after 2,000 harmless ones (a long Link header) is still refused."""
    with pytest.raises(ValueError):
        check_header("Link", "<http://example.com/x>; rel=next, " * 60 + value)
    assert check_header("Link", "<http://example.com/x>; rel=next" * 60)[1].endswith("rel=next")


@pytest.mark.parametrize(
    ("status", "line"),
    [(404, "404 Not Found"), ("201", "201 Created"), (202.0, "202 Accepted"), (HTTPStatus.CONFLICT, "409 Conflict")],
    ids=["int", "str", "float", "HTTPStatus"],
)
def test_response_status_forms(status: Any, line: str) -> None:
    response = Response(b"x", status)
    assert type(response.status) is int
    assert response.to_wsgi()[0] == line


@pytest.mark.parametrize("status", [True, 99, 600, "x"], ids=["bool", "99", "600", "text"])
def test_response_refuses_impossible_statuses(status: Any) -> None:
    with pytest.raises(ValueError):
        Response(b"x", status)


@pytest.mark.parametrize("status", [204, 304])
def test_bodyless_answers_drop_body_headers_in_any_case(status: int) -> None:
    response = Response(b"", status, [("ETag", '"a"'), ("content-LENGTH", "3"), ("CONTENT-type", "text/plain")])
    line, headers, body = response.to_wsgi()
    assert headers == [("ETag", '"a"')]
    assert list(body) == []
    again = Response(b"", status, [("ETag", '"a"')])
    assert again.to_wsgi()[1] == [("ETag", '"a"')]  # the Content-Type restkit adds is dropped too


def test_a_304_of_kept_headers_is_sent_as_it_is_and_others_lose_their_body_headers() -> None:
    kept = [("ETag", '"a"'), ("Vary", "Accept-Encoding"), ("Cache-Control", "no-cache")]
    response = Response.__new__(Response)  # as restkit.conditional builds its 304s
    response.status, response.headers, response.body = 304, list(kept), b""
    line, headers, body = response.to_wsgi()
    assert (line, headers, list(body)) == ("304 Not Modified", kept, [])
    assert headers is not response.headers  # a copy: the caller may add to it
    response.headers.append(("X-Other", "1"))
    response.headers.append(("content-type", "text/plain"))
    assert response.to_wsgi()[1] == [*kept, ("X-Other", "1")]


def test_header_methods() -> None:
    resp = Response(b"x", headers={"X-A": "1"})
    resp.add_header("x-a", "2")
    assert resp.get_header("X-A") == "1"
    resp.set_header("X-A", "3")
    assert [v for k, v in resp.headers if k.lower() == "x-a"] == ["3"]
    resp.delete_header("x-A")
    assert resp.get_header("X-A", "none") == "none"
    resp.set_header("X-Num", 5)  # type: ignore[arg-type]
    assert resp.get_header("x-num") == "5"
    assert repr(resp) == "<Response 200>"


def test_response_refuses_bad_status() -> None:
    with pytest.raises(ValueError):
        Response(b"", 600)
    with pytest.raises(ValueError):
        Response(b"", 99)


def test_redirect() -> None:
    resp = make_client(single_route_app(lambda: Response.redirect("/elsewhere?a=1"))).get("/r", status=303)
    assert resp.headers["Location"] == "/elsewhere?a=1"
    resp = make_client(single_route_app(lambda: Response.redirect("/x", 301))).get("/r", status=301)
    assert resp.headers["Location"] == "/x"


# -- cookies ----------------------------------------------------------------------------------------

COOKIES = [
    ("defaults", ("sid", "abc"), {}, "sid=abc; Path=/; HttpOnly; SameSite=Lax"),
    ("max-age", ("sid", "abc"), {"max_age": 3600}, "sid=abc; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax"),
    ("expires", ("sid", "abc"),
     {"expires": datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))},
     "sid=abc; Expires=Wed, 02 Jan 2030 01:04:05 GMT; Path=/; HttpOnly; SameSite=Lax"),
    ("all", ("sid", "abc"), {"path": "/api", "domain": "example.com", "secure": True, "httponly": False,
                             "samesite": "strict"},
     "sid=abc; Path=/api; Domain=example.com; Secure; SameSite=Strict"),
    ("samesite-none", ("sid", "abc"), {"samesite": "None", "secure": True}, "sid=abc; Path=/; Secure; HttpOnly; SameSite=None"),
    ("no-samesite-no-path", ("sid", "abc"), {"samesite": None, "path": ""}, "sid=abc; HttpOnly"),
    ("empty-value", ("sid", ""), {}, "sid=; Path=/; HttpOnly; SameSite=Lax"),
]


@pytest.mark.parametrize("args, kwargs, header", [c[1:] for c in COOKIES], ids=[c[0] for c in COOKIES])
def test_set_cookie(args: tuple[str, str], kwargs: dict[str, Any], header: str) -> None:
    resp = Response(b"")
    resp.set_cookie(*args, **kwargs)
    assert resp.headers[-1] == ("Set-Cookie", header)


def test_several_cookies_through_app() -> None:
    def result() -> Response:
        resp = Response.json({"ok": True})
        resp.set_cookie("a", "1")
        resp.set_cookie("b", "2", max_age=10)
        resp.delete_cookie("old")
        return resp

    resp = make_client(single_route_app(result)).get("/r")
    assert resp.headers.getall("Set-Cookie") == [
        "a=1; Path=/; HttpOnly; SameSite=Lax",
        "b=2; Max-Age=10; Path=/; HttpOnly; SameSite=Lax",
        "old=; Max-Age=0; Path=/; HttpOnly",
    ]


@pytest.mark.parametrize(
    "name, value, kwargs",
    [("", "v", {}), ("a=b", "v", {}), ("a;b", "v", {}), ("a b", "v", {}), ("a\r\n", "v", {}),
     ("a", "v;Domain=evil", {}), ("a", "v,w", {}), ("a", 'v"', {}), ("a", "v\\", {}), ("a", "v\r\nX: y", {}),
     ("a", "v\x01", {}), ("a", "v", {"samesite": "sometimes"})],
    ids=["empty-name", "equals-in-name", "semicolon-in-name", "space-in-name", "crlf-in-name", "semicolon-in-value",
         "comma-in-value", "quote-in-value", "backslash-in-value", "crlf-in-value", "control-in-value", "bad-samesite"],
)
def test_set_cookie_refusals(name: str, value: str, kwargs: dict[str, Any]) -> None:
    resp = Response(b"")
    with pytest.raises(ValueError):
        resp.set_cookie(name, value, **kwargs)
    assert resp.get_header("Set-Cookie") is None


# -- JSON ---------------------------------------------------------------------------------------------


def test_json_is_utf8_with_non_ascii_unescaped() -> None:
    resp = make_client(single_route_app({"name": "Zoé 🐘", "quote": '"\\', "ctrl": "\n"})).get("/r")
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Zoé 🐘".encode() in resp.body
    assert b"\\u" not in resp.body
    assert resp.json == {"name": "Zoé 🐘", "quote": '"\\', "ctrl": "\n"}


def test_json_serialises_standard_types() -> None:
    data = {
        "datetime": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
        "naive": datetime.datetime(2024, 5, 6, 7, 8, 9),
        "date": datetime.date(2024, 5, 6),
        "time": datetime.time(7, 8, 9),
        "uuid": UID,
        "decimal": decimal.Decimal("1.50"),
        "decimal_int": decimal.Decimal("15"),
        "enum": Colour.RED,
        "dataclass": Animal("Rex", datetime.date(2020, 1, 1), ["dog"]),
        "set": {3},
        "frozenset": frozenset({4}),
        "tuple": (1, 2),
    }
    assert json.loads(json_dumps(data)) == {
        "datetime": "2024-05-06T07:08:09+00:00",
        "naive": "2024-05-06T07:08:09",
        "date": "2024-05-06",
        "time": "07:08:09",
        "uuid": "12345678-1234-5678-1234-567812345678",
        "decimal": 1.5,
        "decimal_int": 15,
        "enum": "red",
        "dataclass": {"name": "Rex", "born": "2020-01-01", "tags": ["dog"]},
        "set": [3],
        "frozenset": [4],
        "tuple": [1, 2],
    }
    resp = make_client(single_route_app(lambda: {"when": datetime.date(2024, 5, 6), "id": UID})).get("/r")
    assert resp.json == {"when": "2024-05-06", "id": str(UID)}


def test_json_dumps_is_compact_utf8_bytes() -> None:
    assert json_dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()
    with pytest.raises(TypeError):
        json_dumps({"x": object()})
    with pytest.raises(TypeError):
        json_dumps(Animal)  # a dataclass *type* is not data


# -- render ---------------------------------------------------------------------------------------------


def test_render_unit() -> None:
    resp = Response.json({})
    assert render(resp) is resp
    assert render(None).status == 204
    assert render((None, 404)).status == 404
    assert render(("x", 201)).status == 201
    with pytest.raises(TypeError):
        render(42)


def test_empty_response_has_a_content_type_for_wsgi() -> None:
    status, headers, body = Response().to_wsgi()
    assert status == "200 OK"
    assert dict(headers) == {"Content-Type": "text/plain; charset=utf-8", "Content-Length": "0"}
    assert list(body) == [b""]


def test_explicit_content_length_is_kept() -> None:
    status, headers, body = Response(b"abc", headers={"Content-Length": "3"}).to_wsgi()
    assert [v for k, v in headers if k == "Content-Length"] == ["3"]


# -- multipart_stream ------------------------------------------------------------------------------------


def test_multipart_stream_framing() -> None:
    jpeg = b"\xff\xd8jpeg1\r\n--frame\r\n"  # data that looks like a delimiter is framed by Content-Length
    tracked = Tracked([jpeg, (b"<b>", "text/html"), b""])
    app = single_route_app(lambda: multipart_stream(tracked, boundary="frame", content_type="image/jpeg"),
                           produces=None)
    resp = make_client(app).get("/r")
    assert resp.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
    assert resp.body == (
        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 18\r\n\r\n" + jpeg + b"\r\n"
        b"--frame\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\n<b>\r\n"
        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 0\r\n\r\n\r\n"
    )
    assert tracked.closed


def test_multipart_stream_parts_are_written_whole_and_lazily() -> None:
    tracked = Tracked([b"A" * 10, b"B" * 20])
    app = single_route_app(lambda: multipart_stream(tracked), produces=None)
    captured, body = start(app, "GET", "/r")
    assert dict(captured["headers"])["Content-Type"] == "multipart/x-mixed-replace; boundary=restkitframe"
    assert tracked.yielded == 0
    iterator = iter(body)
    first = next(iterator)
    assert first == b"--restkitframe\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n" + b"A" * 10 + b"\r\n"
    assert tracked.yielded == 1
    body.close()
    assert tracked.closed


def test_multipart_stream_close_propagates_to_a_generator() -> None:
    state = {"closed": False, "made": 0}

    def frames() -> Iterator[bytes]:
        try:
            while True:
                state["made"] += 1
                yield b"frame"
        finally:
            state["closed"] = True

    status, headers, body = multipart_stream(frames(), subtype="mixed", headers={"Cache-Control": "no-store"}).to_wsgi()
    assert ("Cache-Control", "no-store") in headers
    assert ("Content-Type", "multipart/mixed; boundary=restkitframe") in headers
    iterator = iter(body)
    for _ in range(3):
        next(iterator)
    body.close()  # type: ignore[attr-defined]
    assert state == {"closed": True, "made": 3}


@pytest.mark.parametrize("boundary", ["", "a" * 71, "bad boundary", "semi;colon", "crlf\r\n"],
                         ids=["empty", "too-long", "space", "semicolon", "crlf"])
def test_multipart_stream_refuses_bad_boundaries(boundary: str) -> None:
    with pytest.raises(ValueError):
        multipart_stream([], boundary=boundary)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
def test_nan_is_never_sent_as_json(value: float) -> None:
    with pytest.raises(ValueError):
        json_dumps({"x": value})
    with pytest.raises(ValueError):
        json_dumps([value])


@pytest.mark.parametrize(
    "kwargs",
    [{"path": "/; Secure"}, {"path": "/a\r\nX: y"}, {"domain": "example.com; HttpOnly"}, {"domain": "ex\x00ample"}],
    ids=["semicolon-in-path", "crlf-in-path", "semicolon-in-domain", "nul-in-domain"],
)
def test_cookie_attributes_cannot_be_injected(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Response().set_cookie("session", "abc", **kwargs)


def test_cookie_values_must_be_ascii() -> None:
    with pytest.raises(ValueError):
        Response().set_cookie("name", "café")


def test_a_lone_surrogate_is_sent_escaped() -> None:
    assert json_dumps({"a": "\ud800x"}) == b'{"a":"\\ud800x"}'


def test_205_has_no_content_but_passes_the_validator() -> None:
    app = App()

    @app.post("/forms/reset")
    def reset(request: Any) -> Any:
        return {"ignored": True}, 205

    response = make_client(app).post("/forms/reset", status=205)
    assert response.body == b""
    assert response.headers["Content-Length"] == "0"


# -- return values restkit cannot send fail clearly ---------------------------------------------


class Point(NamedTuple):
    x: int
    y: int


REFUSED = [
    ("namedtuple", Point(1, 2), "a handler returned Point, a tuple subclass, which restkit cannot send: return value._asdict() for JSON, or a plain (body, status) tuple"),
    ("set", {1, 2}, "a handler returned set, which restkit cannot send: return list(value) for JSON"),
    ("multidict", MultiDict([("a", "1")]), "a handler returned MultiDict, which restkit cannot send: return dict(value) for JSON"),
    ("object", object(), "a handler returned object, which restkit cannot send"),
]


@pytest.mark.parametrize("value, message", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_values_restkit_cannot_send_are_a_500_that_names_the_handler(
    value: Any, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(single_route_app(lambda: value))
    assert client.get("/r", status=500).json == {"error": "internal server error"}
    (record,) = [r for r in caplog.records if r.name == "restkit"]
    assert record.getMessage() == f"500 on GET /r (handler tests.test_response.single_route_app.<locals>.r): TypeError: {message}"


@pytest.mark.parametrize(
    "chunks, kind",
    [([b"ok", "text"], "str"), ([3], "int"), ([b"a", None], "NoneType")],
    ids=["str", "int", "none"],
)
def test_a_stream_of_non_bytes_fails_naming_the_handler(chunks: list[Any], kind: str) -> None:
    app = App()

    @app.get("/stream", produces=None)
    def stream_things(request: Any) -> Any:
        return iter(chunks)

    _, body = start(app, "GET", "/stream")
    with pytest.raises(TypeError) as caught:
        list(body)
    body.close()
    assert str(caught.value).startswith(f"handler tests.test_response.{stream_things.__qualname__} yielded {kind}, not bytes")
    if kind == "str":
        assert str(caught.value).endswith("(encode it: chunk.encode())")


def test_a_first_chunk_of_str_is_a_500_from_a_server(live_server: Any) -> None:
    import http.client

    app = App()

    @app.get("/text", produces=None)
    def text_stream(request: Any) -> Any:
        yield "not bytes"

    server = live_server(app)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/text")
    assert connection.getresponse().status == 500
    connection.close()


# -- wsgi_result (the fast path of App.__call__) answers exactly as render() would ----------------

FAST_VALUES = [{"a": 1}, [1, "two"], "text é", b"raw", None]
FAST_STATUSES = [200, 201, 204, 205, 304, 404, 599]


@pytest.mark.parametrize("status", FAST_STATUSES)
@pytest.mark.parametrize("value", FAST_VALUES, ids=lambda v: type(v).__name__)
def test_returned_value_and_status_match_render(value: Any, status: int) -> None:
    app = App()
    app.add_route("/plain", lambda request: value, name="plain")
    app.add_route("/with_status", lambda request: (value, status), name="with_status")
    for path, returned in (("/plain", value), ("/with_status", (value, status))):
        want_status, want_headers, want_body = render(returned).to_wsgi()
        assert wsgi_result(returned)[:2] == (want_status, want_headers)
        got, result = start(app, "GET", path)
        body = b"".join(result)
        result.close()
        assert (got["status"], got["headers"], body) == (want_status, want_headers, b"".join(want_body))


def test_http_error_fast_path_matches_a_rendered_error() -> None:
    from restkit import NotFound, Unauthorized
    from restkit.response import JSON_TYPE

    app = App()

    @app.get("/gone")
    def gone(request: Any) -> None:
        raise NotFound("nothing here", hint=3)

    @app.get("/who")
    def who(request: Any) -> None:
        raise Unauthorized("token please")

    for path, exc in (("/gone", NotFound("nothing here", hint=3)), ("/who", Unauthorized("token please"))):
        want = Response(json_dumps(exc.to_dict()), exc.status, exc.headers, content_type=JSON_TYPE).to_wsgi()
        got, result = start(app, "GET", path)
        body = b"".join(result)
        result.close()
        assert (got["status"], got["headers"], body) == (want[0], want[1], b"".join(want[2]))


@pytest.mark.parametrize(
    "returned, status",
    [(Response(b"x", 202), "202 Accepted"), ((Response(b"x", 202), 201), "201 Created"), ((Response(b"x"), 404, {"X-A": "1"}), "404 Not Found")],
    ids=["response", "response-with-status", "response-with-status-and-headers"],
)
def test_wsgi_result_of_a_response_takes_the_tuples_status(returned: Any, status: str) -> None:
    assert wsgi_result(returned)[0] == status
