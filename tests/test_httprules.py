"""restkit.httprules: header checks where headers are set, status facts, q-values, entity tags, dates."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from restkit import App, HTTPError, Response
from restkit.framing import AppError, plan_response
from restkit.httprules import (
    STATUS_LINES,
    allows_body,
    check_header,
    coded_etag,
    coding_accepted,
    format_http_date,
    is_token,
    media_type_accepted,
    parse_http_date,
    parse_qvalues,
    reason_phrase,
    status_line,
    valid_field_value,
)
from tests.conftest import wsgi_call

# (name, value): each is refused by the app where it is set, and by the server's framing
BAD_HEADERS = [
    ("X-\x01", "v"),
    ("X-\x7f", "v"),
    ("X-A\r\nB", "v"),
    ("X-A\nB", "v"),
    ("X A", "v"),
    ("X:A", "v"),
    ("", "v"),
    ("X-é", "v"),
    ("X-Ok", "a\x01b"),
    ("X-Ok", "a\x7fb"),
    ("X-Ok", "a\rb"),
    ("X-Ok", "a\nb"),
    ("X-Ok", "a\r\nSet-Cookie: x=1"),
    ("X-Ok", "a\0b"),
]


@pytest.mark.parametrize("name, value", BAD_HEADERS, ids=[repr(h) for h in BAD_HEADERS])
def test_bad_headers_are_refused_where_they_are_set(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        check_header(name, value)
    response = Response("x")
    with pytest.raises(ValueError):
        response.set_header(name, value)
    with pytest.raises(ValueError):
        response.add_header(name, value)
    with pytest.raises(ValueError):
        Response("x", headers={name: value})
    with pytest.raises(ValueError):
        HTTPError("no", headers={name: value})
    with pytest.raises(AppError):  # the same rule in the server
        plan_response("200 OK", [(name, value)], head_request=False, http11=True, keep_alive=True,
                      known_length=0, date="d", server="s")


GOOD_HEADERS = [
    ("X-Ok", "tab\tand space"),
    ("X-Latin", "caf\xe9"),
    ("!#$%&'*+-.^_`|~09azAZ", "v"),
    ("X-Empty", ""),
]


@pytest.mark.parametrize("name, value", GOOD_HEADERS, ids=[repr(h) for h in GOOD_HEADERS])
def test_good_headers_pass_both_checks(name: str, value: str) -> None:
    assert check_header(name, value) == (name, value)
    assert is_token(name) and valid_field_value(value)
    plan = plan_response("200 OK", [(name, value)], head_request=False, http11=True, keep_alive=True,
                         known_length=0, date="d", server="s")
    assert f"{name}: {value}\r\n".encode("latin-1") in plan.head


def test_a_handler_that_sets_a_bad_header_gets_a_value_error_not_a_bad_response() -> None:
    app = App()
    seen: list[BaseException] = []

    @app.get("/x")
    def x(request: Any) -> Response:
        response = Response("x")
        try:
            response.set_header("X-\x01", "v")
        except ValueError as error:
            seen.append(error)
        return response

    assert wsgi_call(app, "GET", "/x")[0] == 200 and len(seen) == 1


def test_check_header_refuses_text_that_is_not_latin_1() -> None:
    with pytest.raises(ValueError, match="Latin-1"):
        check_header("X-Name", "\u20ac")
    assert check_header("X-Count", 3) == ("X-Count", "3")  # type: ignore[arg-type]


def test_status_facts() -> None:
    assert status_line(404) == "404 Not Found" and reason_phrase(404) == "Not Found"
    assert status_line(499) == "499 Client Error" and STATUS_LINES[404] == "404 Not Found"
    assert [code for code in (100, 101, 200, 204, 205, 206, 304, 404) if not allows_body(code)] == [100, 101, 204, 205, 304]
    for bad in (99, 600, True, 404.0):
        with pytest.raises(ValueError):
            status_line(bad)  # type: ignore[arg-type]


# (header, items and weights)
QVALUES = [
    ("gzip", [("gzip", 1.0)]),
    ("GZIP;Q=0.5", [("gzip", 0.5)]),
    ("gzip;q=0.5, br", [("gzip", 0.5), ("br", 1.0)]),
    (" gzip ; q = 0.5 ", [("gzip", 0.5)]),
    ("gzip;q=0", [("gzip", 0.0)]),
    ("gzip;q=0.", [("gzip", 0.0)]),
    ("gzip;q=1.000", [("gzip", 1.0)]),
    ("gzip;q=0.001", [("gzip", 0.001)]),
    ("gzip;q=abc", [("gzip", 0.0)]),  # malformed: 0, refused
    ("gzip;q=1.5", [("gzip", 0.0)]),  # above 1: malformed
    ("gzip;q=0.0001", [("gzip", 0.0)]),  # four decimals: malformed
    ("gzip;q=-1", [("gzip", 0.0)]),
    ("gzip;q=", [("gzip", 0.0)]),
    ("text/html;level=1;q=0.7", [("text/html", 0.7)]),  # other parameters are dropped
    (",, gzip ,", [("gzip", 1.0)]),  # empty items
    ("", []),
]


@pytest.mark.parametrize("header, items", QVALUES, ids=[h or "empty" for h, _ in QVALUES])
def test_parse_qvalues(header: str, items: list[tuple[str, float]]) -> None:
    assert parse_qvalues(header) == items


# (Accept, media type, accepted)
ACCEPT = [
    ("application/json", "application/json", True),
    ("APPLICATION/JSON", "application/json", True),
    ("text/html", "application/json", False),
    ("application/*", "application/json", True),
    ("*/*", "application/json", True),
    ("*/*;q=0.1, application/json;q=0", "application/json", False),  # the most specific range decides
    ("application/json;q=0.5, */*;q=0", "application/json", True),
    ("application/*;q=0, */*", "application/json", False),
    ("text/html;q=0.9", "application/json", False),
]


@pytest.mark.parametrize("accept, media_type, accepted", ACCEPT, ids=[a for a, _, _ in ACCEPT])
def test_media_type_accepted(accept: str, media_type: str, accepted: bool) -> None:
    assert media_type_accepted(accept, media_type) is accepted


def test_coding_accepted() -> None:
    assert coding_accepted("x-gzip", "gzip", "x-gzip") and not coding_accepted("x-gzip", "gzip")
    assert coding_accepted("br, *;q=0.1", "gzip") and not coding_accepted("gzip;q=0, *", "gzip")


def test_coded_etag_is_derived_without_the_coded_bytes() -> None:
    assert coded_etag('"abc"', "gzip") == '"abc-gzip"'
    assert coded_etag('W/"abc"', "gzip") == 'W/"abc"'  # weak tags may be shared by both


def test_http_dates() -> None:
    moment = datetime.datetime(1994, 11, 6, 8, 49, 37, tzinfo=datetime.timezone.utc)
    assert format_http_date(moment) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(moment.replace(tzinfo=None)) == "Sun, 06 Nov 1994 08:49:37 GMT"
    for text in ("Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994 GMT"):
        assert parse_http_date(text) == moment, text
    assert parse_http_date("yesterday") is None and parse_http_date("Sun, 06 Nov 1994 08:49:37") is None


@pytest.mark.parametrize(("current", "name", "expected"), [
    (None, "Origin", "Origin"),
    ("Origin", "Accept-Encoding", "Origin, Accept-Encoding"),
    ("origin, Accept-Encoding", "Origin", "origin, Accept-Encoding"),
    (" * ", "Origin", " * "),
], ids=["none yet", "added", "there already, any case", "star"])
def test_vary_with(current: str | None, name: str, expected: str) -> None:
    from restkit.httprules import vary_with

    assert vary_with(current, name) == expected
