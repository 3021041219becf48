"""Response compression: gzip (with the standard library's zlib) when the client accepts it.

::

    from restkit import App
    from restkit.compression import Compression

    app = App()
    app.use(Compression(min_size=1024))

A response is compressed when the request's ``Accept-Encoding`` allows
``gzip`` (``q`` above 0, or ``*``), its body is bytes (never a stream) of at
least ``min_size`` bytes, its media type is compressible (text, JSON, XML,
JavaScript, SVG...) and it has no ``Content-Encoding`` yet.  A compressible
answer says ``Vary: Accept-Encoding`` whether or not this one was compressed.

The compressed representation gets its own strong ETag (``"abc"`` becomes
``"abc-gzip"``; a weak tag stays as it is, as weak tags may be shared by
equivalent representations).  That tag is derived, never computed from the
gzipped bytes, so a client that revalidates with it in ``If-None-Match``
gets its 304 before anything is compressed: on a ``conditional=`` route
from :mod:`restkit.conditional`, on another one (whose handler sets an
``ETag``) from here, by the same evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .conditional import evaluate_preconditions, not_modified
from .feature import Feature
from .httprules import accepts_gzip, coded_etag, vary_with
from .response import Response

if TYPE_CHECKING:
    from .request import Request

__all__ = ["Compression", "accepts_gzip"]

COMPRESSIBLE = ("text/", "application/json", "application/javascript", "application/xml", "image/svg+xml",
                "application/x-ndjson", "+json", "+xml")


class Compression(Feature):
    """gzip for large compressible answers (install it with ``app.use``).

    Args:
        min_size: bodies smaller than this many bytes are sent as they are.
        level: the zlib level, 1 (fast) to 9 (small).
        types: media types (or prefixes such as ``text/``, or suffixes such
            as ``+json``) worth compressing.
    """

    per_request = False

    def __init__(self, *, min_size: int = 1024, level: int = 6, types: Iterable[str] = COMPRESSIBLE) -> None:
        self.min_size = min_size
        self.level = level
        self.types = tuple(types)

    def compressible(self, content_type: str) -> bool:
        media = content_type.partition(";")[0].strip().lower()
        if not media:  # PERF(304): no type (a 304 keeps none) matches none of them
            return False
        return any(media.startswith(t) if t.endswith("/") else (media.endswith(t) if t.startswith("+") else media == t)
                   for t in self.types)

    def after_request(self, request: Request, response: Response) -> Response:
        """Step 6 (see :mod:`restkit.feature`): gzip the answer, or answer a revalidation with 304."""
        body = response.body
        # PERF(304): a 304 is left as it is (no body; its Vary was decided with its validator, by not_modified)
        if response.status == 304 or not isinstance(body, bytes) or response.get_header("Content-Encoding") is not None:
            return response
        if not self.compressible(response.get_header("Content-Type") or ""):
            return response
        response.set_header("Vary", vary_with(response.get_header("Vary"), "Accept-Encoding"))
        if len(body) < self.min_size or not 200 <= response.status < 300 or response.status in (204, 205):
            return response
        if not accepts_gzip(request.environ.get("HTTP_ACCEPT_ENCODING", "")):
            return response
        etag = response.get_header("ETag")
        if etag is not None:
            # A revalidation is answered before compressing (the evaluation knows the gzipped tag);
            # refusing a precondition (412) is the conditional= feature's job, not this one's.
            verdict = evaluate_preconditions(request, etag=etag, last_modified=response.get_header("Last-Modified"))
            if verdict is not None and verdict.status == 304:
                return not_modified(response, verdict.etag)
        import zlib

        packer = zlib.compressobj(self.level, zlib.DEFLATED, 31)  # 31: the gzip wrapper
        response.body = packer.compress(body) + packer.flush()
        response.set_header("Content-Encoding", "gzip")
        response.delete_header("Content-Length")
        if etag is not None:
            coded = coded_etag(etag, "gzip")
            if coded != etag:
                response.set_header("ETag", coded)
        return response
