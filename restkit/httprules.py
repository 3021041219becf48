"""The rules of HTTP that restkit applies, each written once (RFC 9110).

The app, the features and the server all take their rules from here:

* header fields: :func:`is_token`, :func:`valid_field_value`, :func:`check_header`;
* status codes: :func:`status_line`, :func:`reason_phrase`, :func:`allows_body`
  (:mod:`restkit.status` is the public face of these);
* negotiation: :func:`parse_qvalues`, :func:`media_type_accepted`,
  :func:`coding_accepted`, :func:`accepts_gzip`;
* caching: :func:`vary_with` (the ``Vary`` header);
* entity tags: :func:`make_etag`, :func:`parse_etags`, :func:`strong_match`,
  :func:`weak_match`, :func:`coded_etag`;
* dates: :func:`parse_http_date`, :func:`format_http_date`.

:mod:`http` is imported on the first status line asked for, :mod:`email` on
the first date, :mod:`hashlib` on the first ETag (PERF(lazy-import)).
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime

__all__ = [
    "BODY_STATUS_LINES",
    "NOT_MODIFIED_HEADERS",
    "NO_BODY_STATUSES",
    "STATUS_LINES",
    "TOKEN_PATTERN",
    "accepts_gzip",
    "allows_body",
    "check_header",
    "coded_etag",
    "coding_accepted",
    "format_http_date",
    "is_token",
    "make_etag",
    "media_type_accepted",
    "parse_etags",
    "parse_http_date",
    "parse_qvalues",
    "reason_phrase",
    "status_line",
    "strong_match",
    "valid_field_value",
    "vary_with",
    "weak_match",
]

# -- caching (RFC 9110, section 12.5.5) --------------------------------------------


def vary_with(current: str | None, name: str) -> str:
    """The ``Vary`` value ``current`` (None: no header yet) with the field ``name`` added.

    Unchanged when it names ``name`` already (field names are case-insensitive)
    or is ``*`` (the answer varies on everything).
    """
    if current is None:
        return name
    if current.strip() == "*" or name.lower() in {part.strip().lower() for part in current.split(",")}:
        return current
    return f"{current}, {name}"


# -- header fields (RFC 9110, section 5) -----------------------------------------

# field-name = token ; token = 1*tchar
# tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
TOKEN_PATTERN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN = re.compile(TOKEN_PATTERN)
# field-value = *field-content ; field-content = field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ]
# field-vchar = VCHAR / obs-text: so every CTL but HTAB is refused (NUL, CR, LF, DEL...)
_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@functools.lru_cache(maxsize=512)  # PERF(header-check): an app sends the same few names over and over
def is_token(name: str) -> bool:
    """Whether ``name`` is an RFC 9110 token, as a header name must be."""
    return _TOKEN.fullmatch(name) is not None


def valid_field_value(value: str) -> bool:
    """Whether ``value`` has no control character but HTAB (Latin-1 is checked apart)."""
    # PERF(header-check): isprintable() (C) clears most values at once; a tab
    # or non-ASCII text gets the exact search.
    return value.isprintable() or _VALUE_FORBIDDEN.search(value) is None


def check_header(name: str, value: str) -> tuple[str, str]:
    """Return ``(name, value)`` if both are safe to send, ``value`` made a str.

    Raises:
        ValueError: a name that is not a token (empty, a space, a colon, a
            control character), a value with a control character other than
            HTAB (CR, LF, NUL, DEL...), or a value that is not Latin-1 (WSGI
            can only send Latin-1 text).
    """
    if type(value) is not str:
        value = str(value)
    if type(name) is not str or not is_token(name):
        raise ValueError(f"invalid header name {name!r}")
    if not valid_field_value(value):
        raise ValueError(f"header {name} contains a control character (CR, LF, NUL...): refused")
    if not value.isascii():
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"header {name} is not Latin-1; percent-encode it") from None
    return name, value


# -- status codes (RFC 9110, section 15) -------------------------------------------

#: The codes whose responses never carry content, 1xx aside (RFC 9110, sections 6.4.1 and 15).
NO_BODY_STATUSES = frozenset({204, 205, 304})
#: The header fields a 304 keeps, lowercase (RFC 9110, section 15.4.5); the rest describe a body it does not have.
NOT_MODIFIED_HEADERS = frozenset({"etag", "last-modified", "cache-control", "content-location", "date", "expires",
                                  "vary"})
#: The WSGI status line of every code met so far ("404 Not Found"); filled from
#: :class:`http.HTTPStatus` by the first :func:`status_line` call. Read it with
#: ``STATUS_LINES.get(code) or status_line(code)`` on a hot path.
STATUS_LINES: dict[int, str] = {}
#: The same lines, of the codes that carry a body only (PERF(status-lines): the
#: fast path of ``wsgi_result`` needs one lookup); filled with STATUS_LINES.
BODY_STATUS_LINES: dict[int, str] = {}
_GENERIC = {1: "Informational", 2: "Success", 3: "Redirection", 4: "Client Error", 5: "Server Error"}


def _fill_lines() -> None:
    from http import HTTPStatus

    # Built aside and added in one update, so another thread never sees half a table.
    lines = {int(member): f"{int(member)} {member.phrase}" for member in HTTPStatus}
    BODY_STATUS_LINES.update({code: line for code, line in lines.items() if allows_body(code)})
    STATUS_LINES.update(lines)


def status_line(code: int) -> str:
    """Return the WSGI status line for ``code``: ``status_line(404) == "404 Not Found"``.

    Codes that :class:`http.HTTPStatus` does not know get the generic phrase
    of their class ("499 Client Error").

    Raises:
        ValueError: ``code`` is not an integer between 100 and 599.
    """
    if type(code) is not int:  # 404.0 and True hash like ints: refuse them before the lookup
        if isinstance(code, bool) or not isinstance(code, int):
            raise ValueError(f"status code must be an int, not {type(code).__name__}")
        code = int(code)  # an HTTPStatus member or another int subclass
    line = STATUS_LINES.get(code)
    if line is not None:
        return line
    if not STATUS_LINES:  # the first lookup: load the table, then look again
        _fill_lines()
        if code in STATUS_LINES:
            return STATUS_LINES[code]
    if not 100 <= code <= 599:
        raise ValueError(f"status code must be between 100 and 599, not {code}")
    line = f"{code} {_GENERIC[code // 100]}"
    if allows_body(code):
        BODY_STATUS_LINES[code] = line
    STATUS_LINES[code] = line
    return line


def reason_phrase(code: int) -> str:
    """Return the reason phrase for ``code`` ("Not Found" for 404).

    Raises:
        ValueError: ``code`` is not between 100 and 599.
    """
    return status_line(code).partition(" ")[2]


def allows_body(code: int) -> bool:
    """False for the codes that must not carry a body: 1xx, 204, 205 and 304."""
    return code >= 200 and code not in NO_BODY_STATUSES


# -- negotiation (RFC 9110, section 12) ---------------------------------------------

# weight = OWS ";" OWS "q=" qvalue ; qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


def parse_qvalues(header: str) -> list[tuple[str, float]]:
    """The items of an ``Accept``-like header with their weights, lower-cased, in order.

    ``"gzip;q=0.5, br"`` gives ``[("gzip", 0.5), ("br", 1.0)]``.  Parameters
    other than ``q`` are dropped (``text/html;level=1`` is ``text/html``);
    empty items are skipped; a malformed weight (``q=abc``, ``q=2``) counts
    as 0, so a range the client did not clearly ask for is refused.
    """
    items = []
    for item in header.split(","):
        value, _, params = item.partition(";")
        value = value.strip().lower()
        if not value:
            continue
        q = 1.0
        if params:
            for param in params.split(";"):
                key, _, weight = param.partition("=")
                if key.strip().lower() == "q":
                    weight = weight.strip()
                    q = float(weight) if _QVALUE.fullmatch(weight) else 0.0
        items.append((value, q))
    return items


def media_type_accepted(accept: str, media_type: str) -> bool:
    """Whether an ``Accept`` header admits ``media_type`` (RFC 9110, section 12.5.1).

    The most specific matching range decides; a range with ``q=0`` refuses.
    """
    media_type = media_type.lower()
    main = media_type.partition("/")[0]
    if ";" not in accept:  # PERF: no weights, so any matching range accepts
        ranges = {r.strip().lower() for r in accept.split(",")}
        return media_type in ranges or "*/*" in ranges or f"{main}/*" in ranges
    best_specificity, best_q = -1, 0.0
    for range_, q in parse_qvalues(accept):
        if range_ == media_type:
            specificity = 2
        elif range_ == f"{main}/*":
            specificity = 1
        elif range_ == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, best_q = specificity, q
    return best_specificity >= 0 and best_q > 0


def coding_accepted(accept_encoding: str, coding: str, *aliases: str) -> bool:
    """Whether an ``Accept-Encoding`` value admits ``coding`` (RFC 9110, section 12.5.3).

    The coding (or one of its ``aliases``, such as ``x-gzip``) by name
    decides; without it, ``*``; without either, it is not accepted.
    """
    names = (coding, *aliases)
    if ";" not in accept_encoding:  # PERF(304): no weights (browsers, curl), so any coding named is accepted
        items = {item.strip().lower() for item in accept_encoding.split(",")}
        return "*" in items or not items.isdisjoint(names)
    named = star = None
    for item, q in parse_qvalues(accept_encoding):
        if item in names:
            named = q if named is None else max(named, q)
        elif item == "*":
            star = q
    if named is not None:
        return named > 0
    return star is not None and star > 0


# PERF(accept-encoding): clients send a handful of values ("gzip, deflate, br"), parsed once each:
# a gzipped 304 costs 4,000 instructions less (benchmarks.instructions, gzip_not_modified)
@functools.lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip (``x-gzip`` is the same coding)."""
    return coding_accepted(accept_encoding, "gzip", "x-gzip")


# -- entity tags (RFC 9110, section 8.8.3) ------------------------------------------

# entity-tag = [ weak ] opaque-tag ; weak = %s"W/" ; opaque-tag = DQUOTE *etagc DQUOTE
# etagc = %x21 / %x23-7E / obs-text
_ENTITY_TAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|\Z)')


def make_etag(data: bytes | str, *, weak: bool = False) -> str:
    """An entity tag for ``data``: a hash, quoted (``W/`` prefixed when ``weak``)."""
    import hashlib

    raw = data.encode("utf-8") if isinstance(data, str) else data
    tag = f'"{hashlib.blake2b(raw, digest_size=12).hexdigest()}"'
    return "W/" + tag if weak else tag


def parse_etags(header: str) -> list[str] | None:
    """The entity tags of an ``If-Match``/``If-None-Match`` value, as sent (``W/`` kept).

    Returns ``["*"]`` for ``*`` and None when the value is malformed.
    """
    text = header.strip()
    if text == "*":
        return ["*"]
    tags = []
    position = 0
    while position < len(text):
        found = _ENTITY_TAG.match(text, position)
        if found is None:
            if text[position:].strip(", \t") == "":
                break
            return None
        tags.append((found.group(1) or "") + found.group(2))
        position = found.end()
        while position < len(text) and text[position] in ", \t":
            position += 1
    return tags


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def weak_match(a: str, b: str) -> bool:
    """Weak comparison: the opaque tags are equal, ``W/`` or not."""
    return _opaque(a) == _opaque(b)


def strong_match(a: str, b: str) -> bool:
    """Strong comparison: neither is weak and the opaque tags are equal."""
    return not a.startswith("W/") and not b.startswith("W/") and a == b


def coded_etag(etag: str, coding: str) -> str:
    """The tag of ``etag``'s representation with a content coding: ``"abc"`` becomes ``"abc-gzip"``.

    Derived, never computed from the coded bytes, so a revalidation can be
    answered before anything is encoded.  A weak tag stays as it is: weak
    tags may be shared by equivalent representations.
    """
    if etag.startswith("W/") or not etag.endswith('"'):
        return etag
    return f'{etag[:-1]}-{coding}"'


# -- dates (RFC 9110, section 5.6.7) ---------------------------------------------------


def parse_http_date(text: str) -> datetime.datetime | None:
    """An aware datetime for an HTTP date (any of its three formats), or None if it is not one."""
    from email.utils import parsedate_to_datetime  # PERF(lazy-import): email costs 7 ms to import

    try:
        value = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if value is None or value.tzinfo is None:
        return None
    return value


def format_http_date(moment: datetime.datetime) -> str:
    """``Sun, 06 Nov 1994 08:49:37 GMT`` for an aware datetime (naive means UTC)."""
    import datetime as dt
    from email.utils import format_datetime

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return format_datetime(moment.astimezone(dt.timezone.utc), usegmt=True)
