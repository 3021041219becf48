"""restkit.server reads requests strictly (RFC 9112): the "Request parsing" table of the server contract.

Every refusal is checked the same way (:func:`assert_refused`): its status, a JSON
``{"error": ...}`` body, ``Connection: close``, a response h11 reads without
complaint, one access-log line, an app that was never called, and a server
that still answers the next client.  The smuggling cases matter most: a
request the server reads differently from a proxy in front of it must be
refused, never passed on with a guessed framing.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from wsgiref.validate import validator

import pytest

pytest.importorskip("h11")

from tests.http_client import (Probe, Response, ResponseReader, connect, raw_exchange, raw_exchange_many,
                               serialize_request)

HOST = b"Host: t\r\n"


@dataclass
class Served:
    """A live server running a :class:`Probe`."""

    port: int
    probe: Probe


@pytest.fixture
def start(live_server: Any) -> Callable[..., Served]:
    """``start(**server_options)``: a server whose app is a fresh probe (access log on)."""

    def run(**options: Any) -> Served:
        probe = Probe()
        options.setdefault("access_log", True)
        options.setdefault("timeout", 5.0)  # a server that waits for bytes that never come still ends the test
        srv = live_server(probe, **options)
        return Served(srv.port, probe)

    return run


@pytest.fixture
def served(start: Callable[..., Served]) -> Served:
    return start()


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "restkit.access"]


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate``: the access log line may be written just after the response."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def assert_still_serves(served: Served) -> None:
    before = len(served.probe.calls)
    response = raw_exchange(served.port, b"GET /alive HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert response.status == 200 and response.complete, response.describe()
    assert served.probe.paths[before:] == ["/alive"]


def assert_refused(served: Served, response: Response, status: int, message: str | None) -> None:
    """The contract's refusal: JSON error, Connection: close, app not called, server still fine."""
    assert response.error is None, f"h11 could not read the answer: {response.describe()}"
    assert response.status == status, response.describe()
    assert response.complete, response.describe()
    assert response.closes, response.describe()
    assert (response.header("content-type") or "").startswith("application/json"), response.describe()
    error = response.json()
    assert set(error) == {"error"} and isinstance(error["error"], str), error
    if message is not None:
        assert message in error["error"], error
    assert served.probe.calls == [], "the app was called for a refused request"
    assert_still_serves(served)


# -- refusals -------------------------------------------------------------------------------------------

# (id, raw request, status, message substring or None when the contract gives none).
# Requests end with their empty line, so a server that reads one more line than it should
# would wait; it has 5 s (`timeout`) and then owes a 408, which fails the status check.
REFUSED: list[tuple[str, bytes, int, str | None]] = [
    # request line: METHOD SP target SP HTTP/x.y and nothing else
    ("garbage", b"GARBAGE\r\n\r\n", 400, "malformed request line"),
    ("two-spaces-after-method", b"GET  / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("two-spaces-before-version", b"GET /  HTTP/1.1\r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("space-at-end-of-line", b"GET / HTTP/1.1 \r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("leading-space", b" GET / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("tabs-as-separators", b"GET\t/\tHTTP/1.1\r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("extra-token", b"GET / HTTP/1.1 extra\r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("missing-version", b"GET /\r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("missing-target", b"GET HTTP/1.1\r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("method-only", b"GET\r\n\r\n", 400, "malformed request line"),
    ("not-http", b"GET / FTP/1.1\r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("lowercase-http-name", b"GET / http/1.1\r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("version-without-minor", b"GET / HTTP/1\r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("version-111", b"GET / HTTP/111\r\n" + HOST + b"\r\n", 400, "malformed request line"),
    ("three-empty-lines-first", b"\r\n\r\n\r\nGET / HTTP/1.1\r\n" + HOST + b"\r\n", 400, None),
    # method: an uppercase token
    ("lowercase-method", b"get / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "malformed method"),
    ("mixed-case-method", b"Get / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "malformed method"),
    ("method-with-at", b"G@T / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "malformed method"),
    ("method-with-colon", b"GET: / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "malformed method"),
    ("method-non-ascii", b"GET\xc3\x9f / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "malformed method"),
    ("method-with-nul", b"GET\x00 / HTTP/1.1\r\n" + HOST + b"\r\n", 400, None),
    # versions restkit does not speak
    ("http-2.0", b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505, None),
    ("http-0.9", b"GET / HTTP/0.9\r\n" + HOST + b"\r\n", 505, None),
    ("http-1.2", b"GET / HTTP/1.2\r\n" + HOST + b"\r\n", 505, None),
    # a request line too long
    ("request-line-too-long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414, None),
    # control characters, space or DEL in the target
    ("nul-in-target", b"GET /a\x00b HTTP/1.1\r\n" + HOST + b"\r\n", 400, None),
    ("ctl-in-target", b"GET /a\x01b HTTP/1.1\r\n" + HOST + b"\r\n", 400, None),
    ("del-in-target", b"GET /a\x7fb HTTP/1.1\r\n" + HOST + b"\r\n", 400, None),
    ("bare-cr-in-target", b"GET /a\rb HTTP/1.1\r\n" + HOST + b"\r\n", 400, None),
    ("escape-in-target", b"GET /a\x1b[31m HTTP/1.1\r\n" + HOST + b"\r\n", 400, None),
    ("space-in-target", b"GET /a b HTTP/1.1\r\n" + HOST + b"\r\n", 400, None),
    # target forms: origin-form, absolute-form, or * for OPTIONS only
    ("relative-target", b"GET hello HTTP/1.1\r\n" + HOST + b"\r\n", 400, None),
    ("authority-form", b"GET example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 400, None),
    ("connect-authority-form", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 400, None),
    ("asterisk-for-get", b"GET * HTTP/1.1\r\n" + HOST + b"\r\n", 400, None),
    ("query-only-target", b"GET ?a=1 HTTP/1.1\r\n" + HOST + b"\r\n", 400, None),
    # sizes of the head
    ("header-line-too-long", b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, None),
    ("101-headers", b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n",
     431, None),
    ("head-over-64k", b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 7900) for i in range(9))
     + b"\r\n", 431, None),
    # header names: RFC 9110 tokens, ASCII only
    ("non-ascii-header-name", b"GET / HTTP/1.1\r\n" + HOST + b"X-Caf\xe9: 1\r\n\r\n", 400, None),
    ("space-in-header-name", b"GET / HTTP/1.1\r\n" + HOST + b"X A: 1\r\n\r\n", 400, None),
    ("at-in-header-name", b"GET / HTTP/1.1\r\n" + HOST + b"X@A: 1\r\n\r\n", 400, None),
    ("empty-header-name", b"GET / HTTP/1.1\r\n" + HOST + b": empty\r\n\r\n", 400, None),
    ("nul-in-header-name", b"GET / HTTP/1.1\r\n" + HOST + b"X\x00A: 1\r\n\r\n", 400, None),
    ("paren-in-header-name", b"GET / HTTP/1.1\r\n" + HOST + b"X(A): 1\r\n\r\n", 400, None),
    # header line shape
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400, "malformed header line"),
    ("tab-before-colon", b"GET / HTTP/1.1\r\n" + HOST + b"X-A\t: 1\r\n\r\n", 400, "malformed header line"),
    ("obs-fold-space", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: 1\r\n  continued\r\n\r\n", 400, "malformed header line"),
    ("obs-fold-tab", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: 1\r\n\tcontinued\r\n\r\n", 400, "malformed header line"),
    ("obs-fold-first-line", b"GET / HTTP/1.1\r\n Host: t\r\n\r\n", 400, "malformed header line"),
    ("no-colon", b"GET / HTTP/1.1\r\n" + HOST + b"X-A 1\r\n\r\n", 400, "malformed header line"),
    # control characters in values (HTAB is fine: see the accepted cases)
    ("nul-in-value", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n", 400, None),
    ("bare-cr-in-value", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\rb\r\n\r\n", 400, None),
    ("bel-in-value", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x07b\r\n\r\n", 400, None),
    ("del-in-value", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x7fb\r\n\r\n", 400, None),
    ("bare-cr-ends-value", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\r\r\n\r\n", 400, None),
    # line endings: all CRLF or all bare LF, never both
    ("bare-lf-after-request-line", b"GET / HTTP/1.1\n" + HOST + b"\r\n", 400, None),
    ("bare-lf-in-crlf-head", b"GET / HTTP/1.1\r\nHost: t\nX-A: 1\r\n\r\n", 400, None),
    ("bare-lf-empty-line-after-crlf", b"GET / HTTP/1.1\r\n" + HOST + b"\n", 400, None),
    ("crlf-in-bare-lf-head", b"GET / HTTP/1.1\nHost: t\r\nX-A: 1\n\n", 400, None),
    # Host
    ("http-11-without-host", b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400, None),
    ("two-host-headers", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, None),
    ("two-equal-host-headers", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, None),
    ("host-with-slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, None),
    ("host-with-userinfo", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400, None),
    ("host-with-space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, None),
    ("host-with-bad-port", b"GET / HTTP/1.1\r\nHost: a:port\r\n\r\n", 400, None),
    # Content-Length: 1*DIGIT, ASCII only, once
    ("content-length-plus", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: +5\r\n\r\nhello", 400,
     "invalid Content-Length"),
    ("content-length-negative", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n", 400,
     "invalid Content-Length"),
    ("content-length-hex", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 0x5\r\n\r\nhello", 400,
     "invalid Content-Length"),
    ("content-length-list", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5,5\r\n\r\nhello", 400,
     "invalid Content-Length"),
    ("content-length-list-spaced", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5, 5\r\n\r\nhello", 400,
     "invalid Content-Length"),
    # "\xb2" is a superscript 2 in latin-1: str.isdigit() says yes, int() says no
    ("content-length-superscript-two", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: \xb2\r\n\r\nhi", 400,
     "invalid Content-Length"),
    ("content-length-arabic-digit", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: \xd9\xa1\r\n\r\nh", 400,
     "invalid Content-Length"),
    ("content-length-empty", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: \r\n\r\n", 400,
     "invalid Content-Length"),
    ("content-length-inner-space", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1 2\r\n\r\nhello world!",
     400, "invalid Content-Length"),
    ("content-length-underscore", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1_0\r\n\r\nhelloworld", 400,
     "invalid Content-Length"),
    ("content-length-exponent", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1e1\r\n\r\nhelloworld", 400,
     "invalid Content-Length"),
    ("two-content-lengths-differ", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
     400, None),
    ("two-content-lengths-equal", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nab",
     400, None),
    # Transfer-Encoding
    ("te-and-content-length", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"
     b"\r\n0\r\n\r\n", 400, None),
    ("content-length-and-te", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"
     b"\r\n5\r\nhello\r\n0\r\n\r\n", 400, None),
    ("te-gzip", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n", 501, None),
    ("te-identity", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: identity\r\n\r\n", 501, None),
    ("te-gzip-chunked", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
     None),
    ("te-gzip-then-chunked-lines", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, None),
    ("te-chunked-chunked", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
     400, None),
    ("te-chunked-twice-lines", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, None),
    ("te-in-http-10", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, None),
    # chunk sizes: 1*HEXDIG, at most 16 digits
    ("chunk-size-not-hex", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
     400, None),
    ("chunk-size-empty", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
     400, None),
    ("chunk-size-17-digits", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     b"00000000000000005\r\nhello\r\n0\r\n\r\n", 400, None),
    ("chunk-size-0x-prefix", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     b"0x5\r\nhello\r\n0\r\n\r\n", 400, None),
    ("chunk-size-leading-space", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     b" 5\r\nhello\r\n0\r\n\r\n", 400, None),
    ("chunk-size-minus", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     b"-5\r\nhello\r\n0\r\n\r\n", 400, None),
    ("chunk-size-plus", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     b"+5\r\nhello\r\n0\r\n\r\n", 400, None),
    ("chunk-size-underscore", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n6_0\r\n world\r\n0\r\n\r\n", 400, None),
    ("chunk-data-without-crlf", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhelloXX0\r\n\r\n", 400, None),
    ("chunk-data-longer-than-size", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     b"3\r\nhello\r\n0\r\n\r\n", 400, None),
    ("chunk-data-then-bare-lf", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\n0\r\n\r\n", 400, None),
    ("chunk-size-line-bare-cr", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5;a=b\rc\r\nhello\r\n0\r\n\r\n", 400, None),
    # Expect
    ("expect-something-else", b"POST / HTTP/1.1\r\n" + HOST + b"Expect: 200-ok\r\nContent-Length: 5\r\n\r\nhello",
     417, None),
    # the smuggling classics, spelled out
    # a bare LF inside a CRLF head: a proxy that splits on CRLF only sees one header "X-A: 1\nContent-Length: 5"
    ("smuggle-bare-lf-content-length", b"POST / HTTP/1.1\r\n" + HOST + b"X-A: 1\nContent-Length: 5\r\n\r\n"
     b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n", 400, None),
    # "X-Forwarded-\xdfl".upper() is "X-FORWARDED-SSL" in Python: a server that upper-cases before checking
    # would give the app HTTP_X_FORWARDED_SSL=on, a header no client sent
    ("smuggle-eszett-header-name", b"GET / HTTP/1.1\r\n" + HOST + b"X-Forwarded-\xdfl: on\r\n\r\n", 400, None),
    ("smuggle-te-with-vertical-tab", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding:\x0bchunked\r\n\r\n"
     b"0\r\n\r\n", 400, None),
    ("smuggle-te-obs-fold", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n"
     b"\r\nabc", 400, None),
    ("smuggle-cl-obs-fold", b"POST / HTTP/1.1\r\n" + HOST + b"X-A: 1\r\n Content-Length: 5\r\n\r\nhello", 400,
     "malformed header line"),
]


@pytest.mark.parametrize("raw, status, message", [row[1:] for row in REFUSED], ids=[row[0] for row in REFUSED])
def test_refused(served: Served, caplog: pytest.LogCaptureFixture, raw: bytes, status: int,
                 message: str | None) -> None:
    caplog.set_level(logging.INFO, logger="restkit.access")
    response = raw_exchange(served.port, raw)
    assert_refused(served, response, status, message)
    # one access-log line for the refusal (and one for the request of assert_still_serves)
    assert wait_for(lambda: len(access_lines(caplog)) >= 2), access_lines(caplog)
    lines = access_lines(caplog)
    assert len(lines) == 2 and sum(f'" {status} ' in line for line in lines) == 1, lines


# Bodies over a limit: the limit is a server option.
TOO_LARGE: list[tuple[str, bytes]] = [
    ("content-length-over-limit", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1001\r\n\r\n" + b"x" * 1001),
    ("chunked-total-over-limit", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     + b"1f4\r\n" + b"x" * 500 + b"\r\n" + b"1f5\r\n" + b"y" * 501 + b"\r\n0\r\n\r\n"),
    ("one-chunk-over-limit", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
     + b"ffffffff\r\n" + b"x" * 2000),
]


@pytest.mark.parametrize("raw", [row[1] for row in TOO_LARGE], ids=[row[0] for row in TOO_LARGE])
def test_body_over_max_request_body_is_413(start: Callable[..., Served], raw: bytes) -> None:
    served = start(max_request_body=1000)
    assert_refused(served, raw_exchange(served.port, raw), 413, None)


def test_body_at_max_request_body_is_accepted(start: Callable[..., Served]) -> None:
    served = start(max_request_body=1000)
    response = raw_exchange(served.port, b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1000\r\n\r\n" + b"x" * 1000)
    assert response.status == 200, response.describe()
    assert served.probe.calls[0].body == b"x" * 1000


# A client that closes its sending side before the body is complete: the server has all it
# will ever get, so it answers 400 at once (not 408 later, not a silent close).
CUT_SHORT: list[tuple[str, bytes]] = [
    ("content-length-body", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 10\r\n\r\nhello"),
    ("chunked-inside-data", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel"),
    ("chunked-no-last-chunk", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
    ("chunked-no-final-crlf", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"),
    ("chunked-inside-trailers", b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n"),
    ("inside-the-head", b"GET / HTTP/1.1\r\n" + HOST),
]


@pytest.mark.parametrize("raw", [row[1] for row in CUT_SHORT], ids=[row[0] for row in CUT_SHORT])
def test_request_cut_short_by_eof_is_400(served: Served, raw: bytes) -> None:
    assert_refused(served, raw_exchange(served.port, raw, half_close=True), 400, None)


def test_bare_lf_never_gives_the_app_a_content_length(served: Served) -> None:
    # The smuggling attempt of REFUSED, and then the request it hides, on one connection:
    # neither may reach the app, whatever the server's answer.
    raw = (b"POST /outer HTTP/1.1\r\nHost: t\r\nX-A: 1\nContent-Length: 40\r\n\r\n"
           b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n")
    responses = raw_exchange_many(served.port, raw, methods=["POST", "GET"])
    assert responses[0].status == 400, responses[0].describe()
    assert len(responses) == 1 or responses[1].status is None, [r.describe() for r in responses]
    assert all("CONTENT_LENGTH" not in seen.headers for seen in served.probe.calls)
    assert served.probe.calls == []


def test_eszett_header_is_not_x_forwarded_ssl(served: Served) -> None:
    response = raw_exchange(served.port, b"GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-\xdfl: on\r\n\r\n")
    assert response.status == 400, response.describe()
    assert not any("HTTP_X_FORWARDED_SSL" in seen.headers for seen in served.probe.calls)


def test_content_length_superscript_is_answered_not_dropped(served: Served) -> None:
    # the old server crashed on int("\xb2") and closed the connection without a word
    response = raw_exchange(served.port, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \xb2\r\n\r\nab")
    assert response.status == 400, response.describe()
    assert "invalid Content-Length" in response.json()["error"]


def test_refusal_after_a_good_pipelined_request(served: Served) -> None:
    raw = b"GET /first HTTP/1.1\r\nHost: t\r\n\r\nGET /second HTTP/1.1\r\nHost : t\r\n\r\n"
    first, second = raw_exchange_many(served.port, raw, methods=["GET", "GET"])
    assert first.status == 200 and first.json()["path"] == "/first", first.describe()
    assert second.status == 400 and second.closes and second.complete, second.describe()
    assert served.probe.paths == ["/first"]


# -- accepted requests ----------------------------------------------------------------------------------


@dataclass
class Expect:
    """What the app must see for an accepted request (None: not checked)."""

    path: str = "/"
    method: str = "GET"
    query: str = ""
    body: bytes = b""
    headers: dict[str, str | None] | None = None  # environ key -> value; None: must be absent
    protocol: str = "HTTP/1.1"


def chunked(*pieces: bytes, size_format: bytes = b"%x") -> bytes:
    return b"".join((size_format % len(p)) + b"\r\n" + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"


CHUNKED_POST = b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"

ACCEPTED: list[tuple[str, bytes, Expect]] = [
    ("chunked", CHUNKED_POST + chunked(b"hello", b" world"), Expect("/c", "POST", body=b"hello world")),
    ("chunked-extensions", CHUNKED_POST + b"5;name=value\r\nhello\r\n6 ; a ; b=\"q s\"\r\n world\r\n0;last\r\n\r\n",
     Expect("/c", "POST", body=b"hello world")),
    ("chunked-trailers", CHUNKED_POST + b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n",
     Expect("/c", "POST", body=b"hello")),
    ("chunked-1000-one-byte-chunks", CHUNKED_POST + chunked(*[bytes([65 + i % 26]) for i in range(1000)]),
     Expect("/c", "POST", body=bytes(65 + i % 26 for i in range(1000)))),
    ("chunked-lowercase-hex", CHUNKED_POST + b"1a\r\n" + b"z" * 26 + b"\r\n0\r\n\r\n",
     Expect("/c", "POST", body=b"z" * 26)),
    ("chunked-uppercase-hex", CHUNKED_POST + b"1A\r\n" + b"z" * 26 + b"\r\n0\r\n\r\n",
     Expect("/c", "POST", body=b"z" * 26)),
    ("chunked-leading-zeros", CHUNKED_POST + b"0005\r\nhello\r\n000\r\n\r\n", Expect("/c", "POST", body=b"hello")),
    ("chunked-16-hex-digits", CHUNKED_POST + b"0000000000000005\r\nhello\r\n0\r\n\r\n",
     Expect("/c", "POST", body=b"hello")),
    ("chunked-empty-body", CHUNKED_POST + b"0\r\n\r\n", Expect("/c", "POST", body=b"")),
    ("chunked-crlf-in-data", CHUNKED_POST + chunked(b"a\r\n0\r\n\r\n"), Expect("/c", "POST", body=b"a\r\n0\r\n\r\n")),
    ("all-bare-lf-head", b"GET /lf?x=1 HTTP/1.1\nHost: t\nX-A: 1\n\n",
     Expect("/lf", query="x=1", headers={"HTTP_X_A": "1", "HTTP_HOST": "t"})),
    ("all-bare-lf-head-with-body", b"POST /lf HTTP/1.1\nHost: t\nContent-Length: 3\n\nabc",
     Expect("/lf", "POST", body=b"abc", headers={"CONTENT_LENGTH": "3"})),
    ("absolute-form", b"GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: other.example\r\n\r\n",
     Expect("/p/q", query="x=1", headers={"HTTP_HOST": "example.com:8080"})),
    ("absolute-form-https", b"GET https://example.com/p HTTP/1.1\r\nHost: example.com\r\n\r\n",
     Expect("/p", headers={"HTTP_HOST": "example.com"})),
    ("absolute-form-http-10-no-host", b"GET http://example.com/p HTTP/1.0\r\n\r\n",
     Expect("/p", protocol="HTTP/1.0", headers={"HTTP_HOST": "example.com"})),
    ("options-asterisk-reaches-nothing-wrong", b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", Expect("*", "OPTIONS")),
    ("underscore-headers-dropped", b"GET / HTTP/1.1\r\nHost: t\r\nX_Forwarded_For: 6.6.6.6\r\n"
     b"X-Forwarded-For: 10.0.0.1\r\nContent_Length: 99\r\n\r\n",
     Expect(headers={"HTTP_X_FORWARDED_FOR": "10.0.0.1", "CONTENT_LENGTH": None})),
    ("underscore-only-header-dropped", b"GET / HTTP/1.1\r\nHost: t\r\nX_Real_Ip: 6.6.6.6\r\n\r\n",
     Expect(headers={"HTTP_X_REAL_IP": None})),
    ("repeated-headers-joined", b"GET / HTTP/1.1\r\nHost: t\r\nAccept: a/b\r\naccept: */*\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
     Expect(headers={"HTTP_ACCEPT": "a/b, */*", "HTTP_X_A": "1, 2"})),
    ("repeated-cookies-joined", b"GET / HTTP/1.1\r\nHost: t\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
     Expect(headers={"HTTP_COOKIE": "a=1; b=2"})),
    ("tab-in-value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\tb\r\n\r\n", Expect(headers={"HTTP_X_A": "a\tb"})),
    ("ows-trimmed", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: \t value \t \r\nContent-Length:  0 \r\n\r\n",
     Expect(headers={"HTTP_X_A": "value"})),
    ("obs-text-in-value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: caf\xc3\xa9\r\n\r\n",
     Expect(headers={"HTTP_X_A": "caf\xc3\xa9"})),  # PEP 3333: bytes as latin-1
    ("empty-value", b"GET / HTTP/1.1\r\nHost: t\r\nX-Empty:\r\n\r\n", Expect(headers={"HTTP_X_EMPTY": ""})),
    ("token-header-name-chars", b"GET / HTTP/1.1\r\nHost: t\r\nX.Custom|Pipe!#$%&'*+^`~: ok\r\n\r\n",
     Expect(headers={"HTTP_X.CUSTOM|PIPE!#$%&'*+^`~": "ok"})),
    ("one-empty-line-first", b"\r\nGET /one HTTP/1.1\r\nHost: t\r\n\r\n", Expect("/one")),
    ("two-empty-lines-first", b"\r\n\r\nGET /two HTTP/1.1\r\nHost: t\r\n\r\n", Expect("/two")),
    ("100-headers", b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(99)) + b"\r\n",
     Expect(headers={"HTTP_X_H98": "v"})),
    ("long-target", b"GET /" + b"a" * 8191 + b" HTTP/1.1\r\nHost: t\r\n\r\n", Expect("/" + "a" * 8191)),
    ("long-header-line", b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 8000 + b"\r\n\r\n",
     Expect(headers={"HTTP_X_BIG": "b" * 8000})),
    ("http-10-without-host", b"GET /old HTTP/1.0\r\n\r\n", Expect("/old", protocol="HTTP/1.0")),
    ("empty-host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", Expect(headers={"HTTP_HOST": ""})),
    ("ipv6-host", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", Expect(headers={"HTTP_HOST": "[::1]:8080"})),
    ("percent-encoded-path", b"GET /a%20b/c%2Fd?q=%20 HTTP/1.1\r\nHost: t\r\n\r\n", Expect("/a b/c/d", query="q=%20")),
    ("double-slash-path", b"GET //x//y HTTP/1.1\r\nHost: t\r\n\r\n", Expect("//x//y")),
    ("unusual-method", b"PROPFIND /dav HTTP/1.1\r\nHost: t\r\n\r\n", Expect("/dav", "PROPFIND")),
    ("token-method", b"-BLARGH /m HTTP/1.1\r\nHost: t\r\n\r\n", Expect("/m", "-BLARGH")),
    ("content-length-zero", b"POST /z HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", Expect("/z", "POST")),
    ("content-length-leading-zeros", b"POST /z HTTP/1.1\r\nHost: t\r\nContent-Length: 005\r\n\r\nhello",
     Expect("/z", "POST", body=b"hello")),
    ("get-with-body", b"GET /g HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", Expect("/g", body=b"hello")),
    ("expect-100-continue", b"POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
     Expect("/e", "POST", body=b"hello")),
]


@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")  # PROPFIND, -BLARGH: legal tokens
@pytest.mark.parametrize("raw, expect", [row[1:] for row in ACCEPTED], ids=[row[0] for row in ACCEPTED])
def test_accepted(served: Served, raw: bytes, expect: Expect) -> None:
    method_for_h11 = "HEAD" if expect.method == "HEAD" else "GET"
    response = raw_exchange(served.port, raw, method_for_h11=method_for_h11)
    assert response.error is None and response.complete, response.describe()
    if expect.path == "*" and not served.probe.calls:
        # OPTIONS * may be answered by the server itself (the app has no resource "*")
        assert response.status is not None and 200 <= response.status < 300, response.describe()
        return
    assert response.status == 200, response.describe()
    assert len(served.probe.calls) == 1
    seen = served.probe.calls[0]
    assert (seen.method, seen.path, seen.query, seen.protocol) == (expect.method, expect.path, expect.query,
                                                                   expect.protocol)
    assert seen.body == expect.body
    # a chunked body needs no CONTENT_LENGTH; if the server gives one, it must be the truth
    length = seen.headers.get("CONTENT_LENGTH")
    assert not length or int(length) == len(expect.body), seen.headers
    for key, value in (expect.headers or {}).items():
        assert seen.headers.get(key) == value, (key, seen.headers)
    assert seen.input_terminated, "wsgi.input_terminated must be True (the contract: always)"


def test_chunked_body_built_by_h11(served: Served) -> None:
    pieces = [b"x" * n for n in (1, 10, 100, 1000, 10000)]
    raw = serialize_request("PUT", "/h11", [("Host", "t")], chunks=pieces)
    response = raw_exchange(served.port, raw)
    assert response.status == 200 and response.json() == {"method": "PUT", "path": "/h11", "size": 11111}
    assert served.probe.calls[0].body == b"".join(pieces)


def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    raw = (b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
           b"POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
           b"POST /3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
           b"HEAD /4 HTTP/1.1\r\nHost: t\r\n\r\n"
           b"GET /5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    with connect(served.port) as sock:
        sock.sendall(raw)
        reader = ResponseReader(sock)
        answers = [reader.read(method) for method in ("GET", "POST", "POST", "HEAD", "GET")]
        assert reader.closed(), "bytes after the last response"
    for answer in answers:
        assert answer.error is None and answer.complete and answer.status == 200, answer.describe()
    assert [a.json()["path"] for i, a in enumerate(answers) if i != 3] == ["/1", "/2", "/3", "/5"]
    assert answers[3].body == b""
    assert [(c.path, c.body) for c in served.probe.calls] == [("/1", b""), ("/2", b"hello"), ("/3", b"abc"),
                                                               ("/4", b""), ("/5", b"")]


def test_pipelined_requests_sent_byte_by_byte(served: Served) -> None:
    # a server that assumes a request arrives in one recv() loses bytes here
    raw = b"POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n"
    with connect(served.port) as sock:
        for i in range(len(raw)):
            sock.sendall(raw[i:i + 1])
        reader = ResponseReader(sock)
        first, second = reader.read("POST"), reader.read("GET")
    assert (first.status, second.status) == (200, 200), (first.describe(), second.describe())
    assert [(c.path, c.body) for c in served.probe.calls] == [("/a", b"ab"), ("/b", b"")]


# -- streamed request bodies (over 256 KiB, or after Expect: 100-continue) --------------------------------------

BIG = 1 << 20  # well over the 256 KiB a server buffers before calling the app


class BodyReader:
    """A WSGI app that reads its body in pieces and records how far it got and whether a read raised."""

    def __init__(self) -> None:
        self.results: list[tuple[int, str | None]] = []
        self._validated = validator(self._app)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._validated(environ, start_response)

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        total, error = 0, None
        try:
            while piece := environ["wsgi.input"].read(65536):
                total += len(piece)
        except Exception as exc:  # what a cut body looks like to the app is the point of the test
            error = type(exc).__name__
        self.results.append((total, error))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(str(total))))])
        return [str(total).encode()]


def test_large_content_length_body_reaches_the_app_whole(live_server: Any) -> None:
    app = BodyReader()
    port = live_server(app, timeout=10.0).port
    body = bytes(range(256)) * (BIG // 256)
    response = raw_exchange(port, b"PUT /big HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % BIG + body)
    assert (response.status, response.body) == (200, str(BIG).encode()), response.describe()
    assert app.results == [(BIG, None)]


def test_large_chunked_body_reaches_the_app_whole(live_server: Any) -> None:
    app = BodyReader()
    port = live_server(app, timeout=10.0).port
    raw = serialize_request("PUT", "/big", [("Host", "t")], chunks=[b"z" * 65536] * (BIG // 65536))
    response = raw_exchange(port, raw)
    assert (response.status, response.body) == (200, str(BIG).encode()), response.describe()
    assert app.results == [(BIG, None)]


@pytest.mark.parametrize("head, sent, declared", [
    (b"PUT /cut HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % BIG, b"x" * (300 * 1024), BIG),
    (b"PUT /cut HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
     b"10000\r\n" + b"x" * 65536 + b"\r\n100000\r\n" + b"x" * 300000, 65536 + BIG),
], ids=["content-length", "chunked"])
def test_streamed_body_cut_short_is_not_complete_to_the_app(live_server: Any, head: bytes, sent: bytes,
                                                           declared: int) -> None:
    # The app already runs when the client gives up: a read must not end with a clean b"" (that would
    # pass a truncated upload off as whole), it must raise.  A server that noticed first and answered 400
    # without calling the app is fine too.
    app = BodyReader()
    port = live_server(app, timeout=10.0).port
    with connect(port) as sock:
        sock.sendall(head + sent)
        sock.shutdown(socket.SHUT_WR)
        response = ResponseReader(sock).read("PUT")
    if response.status == 400 and not app.results:
        return
    assert wait_for(lambda: bool(app.results)), response.describe()
    [(total, error)] = app.results
    assert total < declared, app.results
    assert error is not None, f"the app read {total} of {declared} bytes and then a clean end of body"


def test_expect_100_continue_with_a_chunked_body(served: Served) -> None:
    with connect(served.port) as sock:
        sock.sendall(b"POST /expect HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
        interim = b""
        while b"\r\n\r\n" not in interim:  # the app reads the body, so the server asks for it
            piece = sock.recv(4096)
            assert piece, "closed before 100 Continue"
            interim += piece
        assert interim.startswith(b"HTTP/1.1 100 ") and interim.endswith(b"\r\n\r\n"), interim
        sock.sendall(b"5\r\nhello\r\n0\r\n\r\n")
        response = ResponseReader(sock).read("POST")
    assert response.status == 200 and response.complete, response.describe()
    assert [(c.path, c.body) for c in served.probe.calls] == [("/expect", b"hello")]
