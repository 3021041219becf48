"""Response compression: gzip (with the standard library's zlib) when the client accepts it.

::

    app.use(Compression(min_size=1024))

A response is compressed when the request's ``Accept-Encoding`` allows
``gzip`` (``q`` above 0, or ``*``), its body is bytes (never a stream) of at
least ``min_size`` bytes, its media type is compressible (text, JSON, XML,
JavaScript, SVG...) and it has no ``Content-Encoding`` yet.  A compressible
answer says ``Vary: Accept-Encoding`` whether or not this one was compressed.

The compressed representation gets its own strong ETag (``"abc"`` becomes
``"abc-gzip"``; a weak tag stays as it is, as weak tags may be shared by
equivalent representations), and a client that revalidates with that tag
in ``If-None-Match`` gets its 304.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .cors import _vary
from .feature import Feature
from .response import Response

if TYPE_CHECKING:
    from .app import App
    from .request import Request

__all__ = ["Compression", "accepts_gzip"]

COMPRESSIBLE = ("text/", "application/json", "application/javascript", "application/xml", "image/svg+xml",
                "application/x-ndjson", "+json", "+xml")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip (RFC 9110, section 12.5.3)."""
    gzip_q = star_q = None
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            gzip_q = q
        elif coding == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


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

    def install(self, app: App) -> None:
        app.after_request(self._compress)

    def compressible(self, content_type: str) -> bool:
        media = content_type.partition(";")[0].strip().lower()
        return any(media.startswith(t) if t.endswith("/") else (media.endswith(t) if t.startswith("+") else media == t)
                   for t in self.types)

    def _compress(self, request: Request | None, response: Response) -> Response:
        body = response.body
        if request is None or not isinstance(body, bytes) or response.get_header("Content-Encoding") is not None:
            return response
        if not self.compressible(response.get_header("Content-Type") or ""):
            return response
        _vary(response, "Accept-Encoding")
        if len(body) < self.min_size or not 200 <= response.status < 300 or response.status in (204, 205):
            return response
        if not accepts_gzip(request.environ.get("HTTP_ACCEPT_ENCODING", "")):
            return response
        import zlib

        packer = zlib.compressobj(self.level, zlib.DEFLATED, 31)  # 31: the gzip wrapper
        response.body = packer.compress(body) + packer.flush()
        response.set_header("Content-Encoding", "gzip")
        response.delete_header("Content-Length")
        etag = response.get_header("ETag")
        if etag is not None and not etag.startswith("W/"):
            etag = etag[:-1] + '-gzip"'
            response.set_header("ETag", etag)
            if _revalidates(request, etag):
                return _not_modified(response)
        return response


def _revalidates(request: Request, etag: str) -> bool:
    """Whether the request's If-None-Match names ``etag`` (weak comparison), on a GET or HEAD."""
    if request.method not in ("GET", "HEAD"):
        return False
    header = request.environ.get("HTTP_IF_NONE_MATCH")
    if header is None:
        return False
    from .conditional import parse_etags, weak_match

    tags = parse_etags(header) or []
    return any(tag != "*" and weak_match(tag, etag) for tag in tags)


def _not_modified(response: Response) -> Response:
    from .conditional import _not_modified as not_modified

    response.delete_header("Content-Encoding")
    return not_modified(response)
