"""Conditional requests (RFC 9110, section 13): ETag, Last-Modified, 304, 412 and 428.

::

    import threading

    from restkit import App
    from restkit.conditional import Conditional, check_preconditions, etag_of

    app = App()
    items = {1: {"id": 1, "name": "lamp"}}
    transaction = threading.Lock()   # in a real app: the database's transaction

    @app.get("/items/<int:id>", conditional=True)
    def show(request, id):
        return items[id]             # the ETag is a hash of the body; If-None-Match -> 304

    @app.put("/items/<int:id>", conditional=Conditional(required=True))   # no If-Match: 428
    def replace(request, id):
        with transaction:
            current = items[id]
            check_preconditions(request, etag=etag_of(current))  # stale If-Match: 412
            items[id] = {"id": id, **request.json}
            return items[id]

On a GET or HEAD route with ``conditional=``, a 2xx answer keeps the ``ETag``
and ``Last-Modified`` its handler set, or gets a strong ``ETag`` made from
its body (weak with ``Conditional(weak=True)``).  On a write the handler
knows the current state, so it calls :func:`check_preconditions` itself,
inside its own transaction if it has one, with the tag :func:`etag_of`
gives what its GET returns: the tag the GET sent.  With
``Conditional(required=True)`` a write without ``If-Match`` or
``If-Unmodified-Since`` is **428**.

Theory of operation
-------------------
:func:`evaluate_preconditions` is the one evaluation, in the order of
RFC 9110, section 13.2.2, and every path takes it: the handler's
:func:`check_preconditions`, the 304 answered before the body is encoded
(:meth:`Conditional.preempt`), the one answered after (:meth:`Conditional.after`)
and :mod:`restkit.compression`'s, which answers before it compresses.

1. ``If-Match``: strong comparison (a weak tag never matches), ``*`` needs
   an existing resource; false is 412.
2. Without ``If-Match``, ``If-Unmodified-Since``: a later ``Last-Modified`` is 412.
3. ``If-None-Match``: weak comparison; a match is 304 on GET and HEAD, 412 on writes.
4. Without ``If-None-Match``, on GET and HEAD, ``If-Modified-Since``: no later
   ``Last-Modified`` is 304.

(``If-Range`` goes with range requests, which restkit does not serve.)  Each
412 names the precondition that failed.  A resource's representations share
its state, so a tag matches the current tag or the tag of its gzipped
representation, derived from it without compressing anything
(:func:`~restkit.httprules.coded_etag`: ``"abc"`` -> ``"abc-gzip"``); on GET
and HEAD the gzipped one counts when the request accepts gzip, so a client
revalidating what it holds gets its 304 and nothing is compressed for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import PreconditionFailed, PreconditionRequired
from .feature import DocumentContext, Feature
from .httprules import (
    NOT_MODIFIED_HEADERS,
    accepts_gzip,
    check_header,
    coded_etag,
    format_http_date,
    make_etag,
    parse_etags,
    parse_http_date,
    strong_match,
    weak_match,
)
from .response import Response, json_dumps, render

if TYPE_CHECKING:
    import datetime

    from .request import Request

__all__ = [
    "Conditional",
    "Verdict",
    "check_preconditions",
    "etag_of",
    "evaluate",
    "evaluate_preconditions",
    "format_http_date",
    "make_etag",
    "parse_etags",
    "strong_match",
    "weak_match",
]

_SAFE_METHODS = frozenset({"GET", "HEAD"})
_KEEP_ON_304 = NOT_MODIFIED_HEADERS  # the rule lives in restkit.httprules
_VARY_CODING = ("Vary", "Accept-Encoding")  # what a 304 for a coded representation says, when it says no other Vary
# The content coding restkit applies (restkit.compression), whose representations' tags are derived.
_CODING = "gzip"


class Verdict(NamedTuple):
    """What a request's preconditions decided about the current state of a resource."""

    #: 304 (not modified) or 412 (precondition failed).
    status: int
    #: The precondition that decided: ``If-Match``, ``If-Unmodified-Since``, ``If-None-Match`` or ``If-Modified-Since``.
    header: str
    #: What a 412 says.
    message: str
    #: For a 304 by ``If-None-Match``: the tag of the representation the client holds
    #: (the current tag or its gzipped representation's).
    etag: str | None = None


def etag_of(representation: Any, *, weak: bool = False) -> str:
    """The ETag that ``conditional=`` gives a GET whose handler returns ``representation``.

    A write handler passes it to :func:`check_preconditions`, so that the
    ``If-Match`` of a client holding the tag its GET sent matches::

        # fragment: a line of a write handler (the module's example has it whole)
        check_preconditions(request, etag=etag_of(notes[id]))

    ``representation`` is what the GET handler returns (a dict, a list, a
    ``(body, status, headers)`` tuple, a :class:`~restkit.Response`...): the
    ``ETag`` it sets, else a hash of the body it renders to (weak with
    ``weak=True``, as with ``Conditional(weak=True)``).

    Raises:
        TypeError: a return value without a body known in advance (a stream),
            or one restkit cannot send.
    """
    response = render(representation)
    tag = response.get_header("ETag")
    if tag is not None:
        return tag
    if not isinstance(response.body, bytes):
        raise TypeError(f"a streamed {type(representation).__name__} has no ETag: its body is not known in advance")
    return make_etag(response.body, weak=weak)


def _last_modified(value: datetime.datetime | str | None) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_http_date(value)
    if value.tzinfo is None:
        import datetime as dt

        value = value.replace(tzinfo=dt.timezone.utc)
    return value.replace(microsecond=0)  # HTTP dates have whole seconds


def evaluate_preconditions(
    request: Request,
    *,
    etag: str | None = None,
    last_modified: datetime.datetime | str | None = None,
    exists: bool = True,
) -> Verdict | None:
    """The precondition evaluation of RFC 9110, section 13.2.2 (the theory of operation above).

    Args:
        etag: the current entity tag of the resource (None: it has none).
        last_modified: when the resource last changed (an aware datetime, naive
            meaning UTC, or an HTTP date).
        exists: whether the resource exists (``If-Match: *`` needs it to).

    Returns:
        The 304 or 412 the preconditions call for, else None (go on).
    """
    return _evaluate(request.environ, request.method, etag, last_modified, exists)


def _evaluate(
    environ: dict[str, Any], method: str, etag: str | None, last_modified: datetime.datetime | str | None, exists: bool
) -> Verdict | None:
    # 1. If-Match (strong comparison)
    if_match = environ.get("HTTP_IF_MATCH")
    if if_match is not None:
        tags = parse_etags(if_match)
        if tags == ["*"]:
            if not exists:
                return Verdict(412, "If-Match", "If-Match: * but the resource does not exist")
        elif not tags or etag is None or not any(strong_match(tag, etag) or strong_match(tag, coded_etag(etag, _CODING))
                                                 for tag in tags):
            message = (
                f"If-Match does not match the current ETag {etag}" if etag else "If-Match: the resource has no ETag"
            )
            return Verdict(412, "If-Match", message)
    else:
        # 2. If-Unmodified-Since, when there is no If-Match
        since = environ.get("HTTP_IF_UNMODIFIED_SINCE")
        if since is not None:
            modified, date = _last_modified(last_modified), parse_http_date(since)
            if modified is not None and date is not None and modified > date:
                return Verdict(412, "If-Unmodified-Since",
                               f"the resource was modified after If-Unmodified-Since: {since}")
    safe = method in _SAFE_METHODS
    # 3. If-None-Match (weak comparison)
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        held = _held(if_none_match, etag, exists, not safe or accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", "")))
        if held is None:
            return None
        if safe:
            return Verdict(304, "If-None-Match", "not modified", held or None)
        message = (
            f"If-None-Match matches the current ETag {etag}" if etag else "If-None-Match: * but the resource exists"
        )
        return Verdict(412, "If-None-Match", message)
    # 4. If-Modified-Since, when there is no If-None-Match, on GET and HEAD
    if safe:
        since = environ.get("HTTP_IF_MODIFIED_SINCE")
        if since is not None:
            modified, date = _last_modified(last_modified), parse_http_date(since)
            if modified is not None and date is not None and modified <= date:
                return Verdict(304, "If-Modified-Since", "not modified")
    return None


def _held(header: str, etag: str | None, exists: bool, coded: bool) -> str | None:
    """The current tag (or its ``coded`` variant's) that ``If-None-Match`` names, "" for a ``*``
    that matches a resource without a tag, None when nothing matches."""
    tags = parse_etags(header)
    if tags == ["*"]:
        return (etag or "") if exists else None
    if not tags or etag is None:
        return None
    for tag in tags:
        if weak_match(tag, etag):
            return etag
    if coded:
        variant = coded_etag(etag, _CODING)
        if variant != etag and any(weak_match(tag, variant) for tag in tags):
            return variant
    return None


def evaluate(
    request: Request,
    *,
    etag: str | None = None,
    last_modified: datetime.datetime | str | None = None,
    exists: bool = True,
) -> int | None:
    """The status of :func:`evaluate_preconditions`: 412, 304, or None (go on)."""
    verdict = _evaluate(request.environ, request.method, etag, last_modified, exists)
    return None if verdict is None else verdict.status


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

    Args:
        etag: the current tag: :func:`etag_of` what the resource's GET returns,
            or the tag its GET handler sets (from a version, say).
        last_modified, exists: as :func:`evaluate_preconditions` takes them.
        message: what the 412 says, instead of naming the failed precondition.

    Raises:
        PreconditionFailed: with ``message``, or one naming the failed header (and the current ETag).
    """
    verdict = _evaluate(request.environ, request.method, etag, last_modified, exists)
    if verdict is not None and verdict.status == 412:
        raise PreconditionFailed(message or verdict.message)


def _refusal(verdict: Verdict) -> Response:
    return Response(json_dumps(PreconditionFailed(verdict.message).to_dict()), 412,
                    content_type="application/json; charset=utf-8")


def not_modified(response: Response, etag: str | None = None) -> Response:
    """``response`` made a 304: no body, and only the headers a 304 keeps.

    Args:
        etag: the tag of the representation the client holds, when it is not
            the response's own (the gzipped one's): it replaces the ``ETag``,
            with ``Vary: Accept-Encoding``.
    """
    body = response.body
    close = getattr(body, "close", None)
    if close is not None and not isinstance(body, bytes):
        close()
    # PERF(304): the headers kept were checked when they were set: no need to build (and check) a new Response
    response.status = 304
    response.body = b""
    response.headers = [(name, value) for name, value in response.headers if name.lower() in _KEEP_ON_304]
    if etag is not None and etag != response.get_header("ETag"):
        response.set_header("ETag", etag)
        if response.get_header("Vary") is None:
            response.headers.append(_VARY_CODING)
    return response


def _bare_304(headers: dict[str, str]) -> Response:
    """A 304 with the ``headers`` (of a handler's return value) that a 304 keeps."""
    kept = [check_header(name, value) for name, value in headers.items() if name.lower() in _KEEP_ON_304]
    # PERF(304): the headers are checked here: a Response without __init__'s Content-Type and checks
    response = Response.__new__(Response)
    response.status, response.headers, response.body = 304, kept, b""
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
    option_takes = "True, a Conditional(...), or None"
    stage = 30

    @classmethod
    def accepts_option(cls, value: Any) -> bool:
        return value is True or super().accepts_option(value)

    @classmethod
    def from_option(cls, value: Any) -> Feature:
        return Conditional() if value is True else super().from_option(value)

    def __init__(self, *, weak: bool = False, auto_etag: bool = True, required: bool = False,
                 dates: bool = True) -> None:
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
        (or its gzipped representation's) becomes the 304 before the body is encoded for nothing."""
        env = request.environ
        held = env.get("HTTP_IF_NONE_MATCH")
        if held is None or type(result) is not tuple or len(result) != 3:
            return result
        _, status, headers = result
        if type(headers) is not dict or type(status) is not int or not 200 <= status < 300 \
                or request.method not in _SAFE_METHODS:
            return result
        etag = headers.get("ETag")
        if etag is None:
            return result
        if "HTTP_IF_MATCH" not in env and "HTTP_IF_UNMODIFIED_SINCE" not in env:
            if held == etag:  # the usual case: the client sent back the one tag it holds
                if len(headers) == 1 and held.isascii() and held.isprintable():  # {"ETag": ...}, checked here
                    response = Response.__new__(Response)
                    response.status, response.headers, response.body = 304, [("ETag", held)], b""
                    return response
                return _bare_304(headers)
            if held == coded_etag(etag, _CODING) != etag and accepts_gzip(env.get("HTTP_ACCEPT_ENCODING", "")):
                # the one tag of the gzipped representation it holds
                if len(headers) == 1 and held.isascii() and held.isprintable():
                    response = Response.__new__(Response)
                    response.status, response.body = 304, b""
                    response.headers = [("ETag", held), _VARY_CODING]
                    return response
                return not_modified(_bare_304(headers), held)
        return self._revalidate(request, result, headers, etag)

    @staticmethod
    def _revalidate(request: Request, result: Any, headers: dict[str, str], etag: str) -> Any:
        """The other revalidations of ``(body, 2xx, headers)``: by the evaluation, before the body is encoded."""
        verdict = _evaluate(request.environ, request.method, etag, headers.get("Last-Modified"), True)
        if verdict is None:
            return result
        if verdict.status == 412:
            return _refusal(verdict)
        return not_modified(_bare_304(headers), verdict.etag)

    def after(self, request: Request, response: Response) -> Response:
        if not 200 <= response.status < 300 or request.method not in _SAFE_METHODS:  # a 304 from preempt: done
            return response
        etag = response.get_header("ETag")
        if etag is None and self.auto_etag and isinstance(response.body, bytes):
            etag = make_etag(response.body, weak=self.weak)  # what etag_of() gives
            response.set_header("ETag", etag)
        env = request.environ
        if (etag is not None and env.get("HTTP_IF_NONE_MATCH") == etag
                and "HTTP_IF_MATCH" not in env and "HTTP_IF_UNMODIFIED_SINCE" not in env):
            return not_modified(response)  # PERF(304): the client sent back the one tag it holds
        verdict = _evaluate(env, request.method, etag, response.get_header("Last-Modified"), True)
        if verdict is None:
            return response
        if verdict.status == 304:
            return not_modified(response, verdict.etag)
        return _refusal(verdict)

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
