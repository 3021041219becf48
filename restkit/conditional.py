"""Conditional requests (RFC 9110, section 13): ETag, Last-Modified, 304, 412 and 428.

::

    @app.get("/items/<int:id>", conditional=True)
    def show(request, id):
        return items[id]             # the ETag is a hash of the body; If-None-Match -> 304

    @app.put("/items/<int:id>", conditional=Conditional(required=True))   # no If-Match: 428
    def replace(request, id):
        with db.transaction():
            current = db.get(id)
            check_preconditions(request, etag=make_etag(current.version))  # stale If-Match: 412
            ...

On a GET or HEAD route with ``conditional=``, a 2xx answer keeps the ``ETag``
and ``Last-Modified`` its handler set, or gets a strong ``ETag`` made from
its body (weak with ``Conditional(weak=True)``); then ``If-None-Match``
(weak comparison, lists, ``*``) or, without it, ``If-Modified-Since`` turns
it into **304** with no body.  ``If-Match`` and ``If-Unmodified-Since`` are
evaluated too (412).

On a write the handler knows the current state, so it calls
:func:`check_preconditions` itself, inside its own transaction if it has one:
``If-Match`` compares strongly (a weak tag never matches), ``*`` matches any
existing resource, and without ``If-Match`` an ``If-Unmodified-Since`` older
than ``last_modified`` fails.  A failure is **412**.  With
``Conditional(required=True)`` a write without either header is **428**.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .errors import PreconditionFailed, PreconditionRequired
from .feature import DocumentContext, Feature
from .response import Response, check_header

if TYPE_CHECKING:
    import datetime

    from .request import Request

__all__ = [
    "Conditional",
    "check_preconditions",
    "evaluate",
    "make_etag",
    "parse_etags",
    "strong_match",
    "weak_match",
]

# entity-tag = [ weak ] opaque-tag ; weak = %s"W/" ; opaque-tag = DQUOTE *etagc DQUOTE
# etagc = %x21 / %x23-7E / obs-text
_ENTITY_TAG = r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|\Z)'
_SAFE_METHODS = frozenset({"GET", "HEAD"})
# Headers a 304 keeps (RFC 9110, section 15.4.5); the rest describe a body it does not have.
_KEEP_ON_304 = frozenset({"etag", "last-modified", "cache-control", "content-location", "date", "expires", "vary"})


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
    if header.strip() == "*":
        return ["*"]
    tags = []
    position = 0
    text = header.strip()
    while position < len(text):
        found = re.compile(_ENTITY_TAG).match(text, position)  # re caches the compiled pattern
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


def _http_date(text: str) -> datetime.datetime | None:
    from email.utils import parsedate_to_datetime  # email costs 7 ms to import: only here

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


def _last_modified(value: datetime.datetime | str | None) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        return _http_date(value)
    if value.tzinfo is None:
        import datetime as dt

        value = value.replace(tzinfo=dt.timezone.utc)
    return value.replace(microsecond=0)  # HTTP dates have whole seconds


def evaluate(
    request: Request, *, etag: str | None = None, last_modified: datetime.datetime | str | None = None, exists: bool = True
) -> int | None:
    """The precondition evaluation of RFC 9110, section 13.2.2.

    Args:
        etag: the current entity tag of the resource (None: it has none).
        last_modified: when the resource last changed.
        exists: whether the resource exists (``If-Match: *`` needs it to).

    Returns:
        412 or 304 when a precondition says so, else None (go on).
    """
    headers = request.environ
    if_match = headers.get("HTTP_IF_MATCH")
    modified = _last_modified(last_modified)
    if if_match is not None:
        tags = parse_etags(if_match)
        if tags == ["*"]:
            if not exists:
                return 412
        elif not tags or etag is None or not any(strong_match(tag, etag) for tag in tags):
            return 412
    else:
        since = headers.get("HTTP_IF_UNMODIFIED_SINCE")
        if since is not None and modified is not None:
            date = _http_date(since)
            if date is not None and modified > date:
                return 412
    if_none_match = headers.get("HTTP_IF_NONE_MATCH")
    safe = request.method in _SAFE_METHODS
    if if_none_match is not None:
        tags = parse_etags(if_none_match)
        if tags == ["*"]:
            matched = exists
        else:
            matched = bool(tags) and etag is not None and any(weak_match(tag, etag) for tag in tags or ())
        if matched:
            return 304 if safe else 412
    elif safe:
        since = headers.get("HTTP_IF_MODIFIED_SINCE")
        if since is not None and modified is not None:
            date = _http_date(since)
            if date is not None and modified <= date:
                return 304
    return None


def check_preconditions(
    request: Request,
    *,
    etag: str | None = None,
    last_modified: datetime.datetime | str | None = None,
    exists: bool = True,
    message: str | None = None,
) -> None:
    """Raise 412 when the request's ``If-Match``/``If-Unmodified-Since``
    (or on a write ``If-None-Match``) fails for the current state; call it
    where the state is read, inside the transaction that changes it.

    Raises:
        PreconditionFailed: with ``message``, or one naming the header and the current ETag.
    """
    outcome = evaluate(request, etag=etag, last_modified=last_modified, exists=exists)
    if outcome == 412:
        if message is None:
            if request.environ.get("HTTP_IF_MATCH") is not None:
                message = f"If-Match does not match the current ETag {etag}" if etag else "If-Match: the resource has no ETag"
            elif request.environ.get("HTTP_IF_UNMODIFIED_SINCE") is not None:
                message = "the resource was modified after If-Unmodified-Since"
            else:
                message = "If-None-Match matches the current ETag"
        raise PreconditionFailed(message)


def _not_modified(response: Response) -> Response:
    body = response.body
    close = getattr(body, "close", None)
    if close is not None and not isinstance(body, bytes):
        close()
    # PERF(304): the headers kept were checked when they were set: no need to build (and check) a new Response
    response.status = 304
    response.body = b""
    response.headers = [(name, value) for name, value in response.headers if name.lower() in _KEEP_ON_304]
    return response


class Conditional(Feature):
    """The ``conditional=`` route option: ETags and 304 on reads, 412 and 428 on writes.

    Args:
        weak: ETags made from the body are weak (``W/"..."``).
        auto_etag: make an ETag from the body when the handler set none.
        required: writes without ``If-Match`` or ``If-Unmodified-Since`` get 428.
        dates: the resource has a ``Last-Modified`` date, so ``If-Modified-Since``
            and ``If-Unmodified-Since`` are documented (False: ETags only).
    """

    option = "conditional"
    stage = 30

    def __init__(self, *, weak: bool = False, auto_etag: bool = True, required: bool = False, dates: bool = True) -> None:
        self.weak = weak
        self.auto_etag = auto_etag
        self.required = required
        self.dates = dates
        self.has_before = required  # only 428 is checked before the handler

    def before(self, request: Request) -> None:
        if self.required and request.method not in _SAFE_METHODS and request.method != "OPTIONS":
            env = request.environ
            if env.get("HTTP_IF_MATCH") is None and env.get("HTTP_IF_UNMODIFIED_SINCE") is None:
                raise PreconditionRequired(
                    f"{request.method} {request.path} needs an If-Match header with the ETag you read"
                    " (or If-Unmodified-Since), so that it cannot overwrite a change you have not seen"
                )
        return None

    def preempt(self, request: Request, result: Any) -> Any:
        """PERF(304): ``(body, 2xx, {"ETag": tag})`` sent back to a client that holds ``tag``
        becomes the 304 before the body is encoded for nothing."""
        if type(result) is not tuple or len(result) != 3:
            return result
        env = request.environ
        held = env.get("HTTP_IF_NONE_MATCH")
        if held is None:
            return result
        headers = result[2]
        if type(headers) is not dict or headers.get("ETag") != held or type(result[1]) is not int:
            return result
        if not 200 <= result[1] < 300 or request.method not in _SAFE_METHODS or "HTTP_IF_MATCH" in env \
                or "HTTP_IF_UNMODIFIED_SINCE" in env:
            return result
        if len(headers) == 1 and held.isascii() and held.isprintable():
            kept = [("ETag", held)]  # the usual case: the tag alone, checked here
        else:
            kept = [check_header(name, value) for name, value in headers.items() if name.lower() in _KEEP_ON_304]
        response = Response.__new__(Response)
        response.status, response.headers, response.body = 304, kept, b""
        return response

    def after(self, request: Request, response: Response) -> Response:
        if request.method not in _SAFE_METHODS or not 200 <= response.status < 300:
            return response
        etag = response.get_header("ETag")
        if etag is None and self.auto_etag and isinstance(response.body, bytes):
            etag = make_etag(response.body, weak=self.weak)
            response.set_header("ETag", etag)
        env = request.environ
        if (etag is not None and env.get("HTTP_IF_NONE_MATCH") == etag
                and "HTTP_IF_MATCH" not in env and "HTTP_IF_UNMODIFIED_SINCE" not in env):
            return _not_modified(response)  # PERF(304): the client sent back the one tag it holds
        outcome = evaluate(request, etag=etag, last_modified=response.get_header("Last-Modified"))
        if outcome == 304:
            return _not_modified(response)
        if outcome == 412:
            error = PreconditionFailed(f"If-Match does not match the current ETag {etag}")
            return Response.json(error.to_dict(), 412)
        return response

    def document(self, operation: dict[str, Any], context: DocumentContext) -> None:
        header = {"in": "header", "required": False, "schema": {"type": "string"}}
        if context.method in _SAFE_METHODS:
            context.add_parameter(operation, {"name": "If-None-Match", **header})
            if self.dates:
                context.add_parameter(operation, {"name": "If-Modified-Since", **header})
            for response in context.success_responses(operation):
                context.add_header(response, "ETag", "the entity tag of this representation")
                if self.dates:
                    context.add_header(response, "Last-Modified", "when the resource last changed")
            context.add_response(operation, 304, error=False)
            return
        context.add_parameter(operation, {"name": "If-Match", **header})
        if self.dates:
            context.add_parameter(operation, {"name": "If-Unmodified-Since", **header})
        context.add_response(operation, 412)
        if self.required:
            context.add_response(operation, 428)
