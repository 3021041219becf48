"""Response framing: what the server sends around an app's status, headers and body.

The server, not the app, decides how a response is delimited (RFC 9112
section 6), because a wrong decision desynchronises every later response
on a keep-alive connection.  :func:`plan_response` checks what the app gave
to ``start_response`` and returns a :class:`ResponsePlan`: the head bytes to
send and how the body is framed.  Apps that break the rules (a CR/LF in a
header, a non-latin-1 value, a 1xx final status) get an :class:`AppError`,
which the server answers with a 500 instead of sending anything of theirs.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from .httprules import NO_BODY_STATUSES, is_token, status_line, valid_field_value
from .members import members

__all__ = ["AppError", "BodyFraming", "ResponsePlan", "chunk", "error_response", "plan_response", "LAST_CHUNK"]


class AppError(Exception):
    """The app broke a WSGI or HTTP rule; the server answers 500."""


class BodyFraming(Enum):
    """How the client learns where the response body ends."""

    NONE = "none"  # no body at all: HEAD, 1xx, 204, 304 (anything the app yields is dropped)
    LENGTH = "length"  # Content-Length
    CHUNKED = "chunked"  # Transfer-Encoding: chunked; a cut stream lacks the last chunk
    CLOSE = "close"  # HTTP/1.0 and unknown length: the body ends with the connection


_F = members(BodyFraming)


@dataclass(frozen=True)
class ResponsePlan:
    """A response head ready to send, and how its body is framed (shared: never changed)."""

    code: int
    head: bytes
    framing: BodyFraming
    length: int
    keep_alive: bool


# status = 3DIGIT SP reason-phrase, reason-phrase = *( HTAB / SP / VCHAR / obs-text )
_STATUS = re.compile(r"([1-9][0-9][0-9]) [\t\x20-\x7e\x80-\xff]*")
_DIGITS = re.compile(r"[0-9]{1,19}")
# Hop-by-hop fields belong to one connection, which the server owns (PEP 3333, RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"}
)
_SPECIAL_FIELDS = _HOP_BY_HOP | {"content-length", "date", "server"}


# PERF: apps send the same few statuses and header names over and over: each
# distinct one is checked once (the caches hold only valid ones; a bounded size).
@functools.lru_cache(maxsize=256)
def _status_code(status: str) -> int:
    if type(status) is not str:
        raise AppError(f"the status must be a str, not {type(status).__name__}")
    match = _STATUS.fullmatch(status)
    if match is None:
        raise AppError(f"invalid status line {status[:60]!r}")
    code = int(match.group(1))
    if code < 200:
        raise AppError(f"{code} is not a final status; WSGI apps cannot send interim responses")
    return code


@functools.lru_cache(maxsize=512)
def _field_name(name: str) -> str:
    """``name`` lower-cased, once it is known to be a token (the rule apps meet in ``check_header``)."""
    if type(name) is not str or not is_token(name):
        raise AppError(f"invalid header name {name!r}")
    return name.lower()


LAST_CHUNK = b"0\r\n\r\n"
# PERF: plans of heads already seen, keyed by everything but the date, which
# is spliced in; apps send the same few heads over and over.  Each entry also
# keeps its last plan with the date it was made for, so within one second a
# head costs one dict lookup.  A full cache is emptied (a simple bound; the
# plans are cheap to make again).
_PLANS_MAX = 1024
_DATE_MARK = "\x00date\x00"


class _CachedPlan:
    """A head's plan with its date left out, and the last plan made from it."""

    __slots__ = ("code", "before", "after", "framing", "length", "keep_alive", "last")

    def __init__(self, plan: ResponsePlan) -> None:
        before, mark, rest = plan.head.partition(_DATE_MARK.encode())
        self.code, self.framing, self.length, self.keep_alive = plan.code, plan.framing, plan.length, plan.keep_alive
        self.before, self.after = before, (rest if mark else None)  # the head around its date (None: no date)
        self.last: tuple[str, ResponsePlan | None] = ("", None)  # one tuple: threads replace it whole

    def dated(self, date: str) -> ResponsePlan:
        """The plan with ``date`` spliced in (the last one again within the same second)."""
        last_date, last_plan = self.last
        if last_date == date and last_plan is not None:
            return last_plan
        head = self.before if self.after is None else b"".join((self.before, date.encode("latin-1"), self.after))
        plan = ResponsePlan(self.code, head, self.framing, self.length, self.keep_alive)
        self.last = (date, plan)
        return plan


_PLANS: dict[tuple[Any, ...], _CachedPlan] = {}


def plan_response(
    status: str,
    headers: list[tuple[str, str]],
    *,
    head_request: bool,
    http11: bool,
    keep_alive: bool,
    known_length: int | None,
    date: str,
    server: str,
) -> ResponsePlan:
    """Check the app's status and headers and decide the framing.

    Args:
        status: what the app passed to ``start_response``.
        headers: likewise.
        head_request: the request was HEAD: no body is sent.
        http11: the request was HTTP/1.1 (chunked encoding is available).
        keep_alive: the connection may stay open as far as the request and
            the server are concerned.
        known_length: the body's length when the server knows it before the
            app says so (a response of one bytes object), else None.
        date, server: the ``Date`` and ``Server`` values to add when the app
            gave none.

    Raises:
        AppError: the status or a header is invalid.
    """
    try:
        key = (status, tuple(headers), head_request, http11, keep_alive, known_length, server)
        cached = _PLANS.get(key)
    except TypeError:  # something unhashable where a str belongs: the full check names it
        return _plan(status, headers, head_request, http11, keep_alive, known_length, date, server)
    if cached is None:
        cached = _CachedPlan(_plan(status, headers, head_request, http11, keep_alive, known_length, _DATE_MARK, server))
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        _PLANS[key] = cached
    return cached.dated(date)


def _plan(
    status: str, headers: list[tuple[str, str]], head_request: bool, http11: bool, keep_alive: bool,
    known_length: int | None, date: str, server: str,
) -> ResponsePlan:
    """:func:`plan_response` without the cache."""
    code = _status_code(status)
    lines = [f"HTTP/1.1 {status}\r\n"]
    fields = _copy_fields(headers, lines)
    keep_alive = keep_alive and not fields.close
    framing, length, keep_alive = _frame_body(
        code, lines, fields.length, head_request=head_request, http11=http11, keep_alive=keep_alive,
        known_length=known_length,
    )
    if "date" not in fields.seen:
        lines.append(f"Date: {date}\r\n")
    if "server" not in fields.seen:
        lines.append(f"Server: {server}\r\n")
    lines.append(_CONNECTION_ENDS[keep_alive, http11])
    try:
        head = "".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        raise AppError("a status or header is not latin-1 (PEP 3333 wants latin-1 str)") from None
    return ResponsePlan(code, head, framing, length or 0, keep_alive)


# the end of the head, by (keep_alive, http11): HTTP/1.1 keeps alive and HTTP/1.0 closes unless told otherwise
_CONNECTION_ENDS = {
    (False, False): "Connection: close\r\n\r\n",
    (False, True): "Connection: close\r\n\r\n",
    (True, False): "Connection: keep-alive\r\n\r\n",
    (True, True): "\r\n",
}


class _Fields(NamedTuple):
    """What :func:`_copy_fields` learnt from the app's headers."""

    length: int | None  # the app's Content-Length
    close: bool  # the app sent Connection: close
    seen: set[str]  # "date", "server" if the app sent them


def _copy_fields(headers: list[tuple[str, str]], lines: list[str]) -> _Fields:
    """Check the app's headers and append to ``lines`` those the server sends as given.

    Hop-by-hop fields are the server's to send and are dropped; of two Date or
    Server fields the first is kept; two Content-Length fields must agree.
    """
    length: int | None = None
    close = False
    seen: set[str] = set()
    for name, value in headers:
        lowered = _field_name(name)
        # field-value: no CTL but HTAB (the rule of check_header); latin-1 is checked when the head is encoded
        # PERF: isprintable() (C) clears most values without a call.
        if type(value) is not str or not (value.isprintable() or valid_field_value(value)):
            raise AppError(f"invalid value of the {name} header: {value!r:.60}")
        if lowered not in _SPECIAL_FIELDS:
            lines.append(f"{name}: {value}\r\n")
            continue
        if lowered in _HOP_BY_HOP:
            close = close or (lowered == "connection" and "close" in value.lower())
            continue
        if lowered == "content-length":
            value = value.strip(" \t")
            given = _content_length(value, length)
            if length is not None:
                continue
            length = given
        elif lowered in seen:
            continue
        seen.add(lowered)
        lines.append(f"{name}: {value}\r\n")
    return _Fields(length, close, seen)


def _content_length(value: str, earlier: int | None) -> int:
    """The value of a Content-Length field (stripped), which must agree with an ``earlier`` one."""
    if _DIGITS.fullmatch(value) is None:
        raise AppError(f"invalid Content-Length {value[:30]!r}")
    if earlier is not None and int(value) != earlier:
        raise AppError("two different Content-Length headers")
    return int(value)


def _frame_body(
    code: int, lines: list[str], length: int | None, *, head_request: bool, http11: bool, keep_alive: bool,
    known_length: int | None,
) -> tuple[BodyFraming, int | None, bool]:
    """How the body is delimited, its length and whether the connection stays; adds the fields that say so."""
    if code in NO_BODY_STATUSES:
        if code == 204:  # RFC 9110 section 8.6: never a Content-Length in a 204
            lines[:] = [line for line in lines if not line[:15].lower().startswith("content-length:")]
        elif code == 205 and length is None:  # section 15.3.6: say "no content" explicitly
            lines.append("Content-Length: 0\r\n")
        return _F.NONE, length, keep_alive
    if head_request:
        if length is None and known_length:  # what a GET would have said
            lines.append(f"Content-Length: {known_length}\r\n")
        return _F.NONE, length, keep_alive
    if length is not None:
        return _F.LENGTH, length, keep_alive
    if known_length is not None:
        lines.append(f"Content-Length: {known_length}\r\n")
        return _F.LENGTH, known_length, keep_alive
    if http11:
        lines.append("Transfer-Encoding: chunked\r\n")
        return _F.CHUNKED, None, keep_alive
    return _F.CLOSE, None, False


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked body (never empty: that is the last chunk)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def error_response(status: int, message: str, *, date: str, server: str) -> bytes:
    """A whole JSON error response ``{"error": message}`` that closes the connection.

    The server's own answers (a refused request, a failed app) take the same
    head writer as the app's responses.
    """
    body = json.dumps({"error": message}).encode()
    plan = plan_response(
        status_line(status),
        [("Content-Type", "application/json; charset=utf-8")],
        head_request=False, http11=True, keep_alive=False, known_length=len(body), date=date, server=server,
    )
    return plan.head + body
