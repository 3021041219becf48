"""CORS: let browser pages from other origins call the API (the Fetch standard's CORS protocol).

::

    from restkit import App
    from restkit.cors import CORS

    app = App()
    app.use(CORS(origins=["https://app.example"], credentials=True))

An answer to a request with an ``Origin`` the app allows carries
``Access-Control-Allow-Origin`` (``*`` when every origin is allowed and no
credentials are, else the origin itself), ``Access-Control-Allow-Credentials``
when credentials are, and ``Access-Control-Expose-Headers`` naming the
headers a script may read (by default ``ETag``, ``Link``, ``Location``,
``X-Total-Count``, ``Retry-After`` and the rate-limit headers).  Errors carry
them too (401, 404, 405, 429, 500...), so a page can read what went wrong.
Answers that depend on the origin say ``Vary: Origin``.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) to a known
path is answered by restkit's automatic OPTIONS: **204** with the allowed
methods (those of the path, within ``methods``), headers, ``Max-Age`` and
credentials.  A preflight from an origin, for a method or with a header that
is not allowed gets **403** ``{"error": ...}`` naming which.  A request from an
origin that is not allowed is answered as usual, without CORS headers: the
browser keeps the answer from the page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .errors import Forbidden
from .feature import DocumentContext, Feature, exempt
from .httprules import vary_with
from .response import JSON_TYPE, Response, json_dumps

if TYPE_CHECKING:
    from .request import Request

__all__ = ["CORS", "DEFAULT_EXPOSED", "DEFAULT_HEADERS"]

DEFAULT_HEADERS = ("Accept", "Authorization", "Content-Type", "If-Match", "If-None-Match", "If-Modified-Since",
                   "If-Unmodified-Since", "X-API-Key")
DEFAULT_EXPOSED = ("ETag", "Last-Modified", "Link", "Location", "X-Total-Count", "Retry-After", "X-RateLimit-Limit",
                   "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy")
_SAFE = frozenset({"GET", "HEAD", "POST"})  # CORS-safelisted methods


class CORS(Feature):
    """Cross-origin resource sharing for every route (install it with ``app.use``).

    Args:
        origins: ``"*"``, a list of origins (``"https://app.example"``), or a
            function from an origin to whether it is allowed.
        methods: the methods a preflight may allow (default: any the path has).
        headers: the request headers a preflight may allow (``"*"``: any).
        credentials: allow cookies and ``Authorization`` (the answer then
            names the origin, never ``*``).
        max_age: seconds a browser may cache a preflight answer.
        expose: the response headers a script may read.
    """

    per_request = False

    def __init__(
        self,
        origins: str | Iterable[str] | Callable[[str], bool] = "*",
        *,
        methods: Iterable[str] | None = None,
        headers: str | Iterable[str] = DEFAULT_HEADERS,
        credentials: bool = False,
        max_age: int = 600,
        expose: Iterable[str] = DEFAULT_EXPOSED,
    ) -> None:
        self.any_origin = origins == "*"
        if self.any_origin:
            self._allowed: Callable[[str], bool] = lambda origin: True
        elif callable(origins):
            self._allowed = origins
        elif isinstance(origins, str):
            raise ValueError("origins is '*', a list of origins or a function; a single origin goes in a list")
        else:
            known = frozenset(origin.rstrip("/").lower() for origin in origins)
            self._allowed = lambda origin: origin.lower() in known
        self.methods = None if methods is None else frozenset(m.upper() for m in methods)
        self.any_header = headers == "*"
        self.headers = () if isinstance(headers, str) else tuple(headers)
        self._header_set = frozenset(h.lower() for h in self.headers)
        self.credentials = credentials
        self.max_age = int(max_age)
        self.expose = ", ".join(expose)
        # An answer that names the origin differs by origin: caches must know.
        self.varies = not self.any_origin or credentials

    def allows(self, origin: str) -> bool:
        """Whether ``origin`` may read answers."""
        if self.any_origin:
            return True
        return origin != "null" and self._allowed(origin)

    def after_request(self, request: Request, response: Response) -> Response:
        """Step 6 (see :mod:`restkit.feature`): every answer, the router's and the rate limit's included."""
        if exempt(request.route):
            return response
        origin = request.environ.get("HTTP_ORIGIN")
        if self.varies:
            response.set_header("Vary", vary_with(response.get_header("Vary"), "Origin"))
        if origin is None:
            return response
        wanted = request.environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
        if request.method == "OPTIONS" and wanted is not None and request.route is None and response.status == 204:
            return self._preflight(request, response, origin, wanted)
        if not self.allows(origin):
            return response
        self._allow_origin(response, origin)
        if self.expose:
            response.set_header("Access-Control-Expose-Headers", self.expose)
        return response

    def _allow_origin(self, response: Response, origin: str) -> None:
        response.set_header("Access-Control-Allow-Origin", "*" if self.any_origin and not self.credentials else origin)
        if self.credentials:
            response.set_header("Access-Control-Allow-Credentials", "true")

    def _preflight(self, request: Request, response: Response, origin: str, wanted: str) -> Response:
        allow = [m.strip() for m in (response.get_header("Allow") or "").split(",") if m.strip()]
        methods = [m for m in allow if m != "OPTIONS" and (self.methods is None or m in self.methods)]
        requested = request.environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")
        asked = [h.strip() for h in requested.split(",") if h.strip()]
        problem = None
        if not self.allows(origin):
            problem = f"origin {origin} is not allowed to call this API"
        elif wanted.upper() not in methods and not (wanted.upper() in _SAFE and wanted.upper() in allow):
            problem = f"method {wanted} is not allowed for {request.path}; allowed: {', '.join(methods)}"
        else:
            refused = [h for h in asked if not self.any_header and h.lower() not in self._header_set]
            if refused:
                problem = f"request header(s) {', '.join(refused)} not allowed; allowed: {', '.join(self.headers)}"
        if problem is not None:
            refusal = Response(json_dumps(Forbidden(problem).to_dict()), 403, content_type=JSON_TYPE)
            if self.varies:
                refusal.set_header("Vary", vary_with(refusal.get_header("Vary"), "Origin"))
            return refusal
        self._allow_origin(response, origin)
        response.set_header("Access-Control-Allow-Methods", ", ".join(methods))
        if asked:
            response.set_header("Access-Control-Allow-Headers", ", ".join(asked))
        response.set_header("Access-Control-Max-Age", str(self.max_age))
        response.set_header("Vary", vary_with(response.get_header("Vary"), "Access-Control-Request-Method"))
        response.set_header("Vary", vary_with(response.get_header("Vary"), "Access-Control-Request-Headers"))
        return response

    def document(self, operation: dict[str, Any], context: DocumentContext) -> None:
        for response in operation["responses"].values():
            context.add_header(response, "Access-Control-Allow-Origin", "CORS: the origin that may read this answer")
            if self.expose:
                context.add_header(response, "Access-Control-Expose-Headers", "CORS: the headers a script may read")

