"""Rate limiting: at most N requests per client in any window of W seconds.

::

    app.use(RateLimit(600))                                  # 600 a minute per client address
    @app.post("/login", rate_limit=RateLimit(5, window=300)) # a tighter limit on one route

The window slides: a request is allowed when fewer than ``limit`` requests
of the same client fall in the last ``window`` seconds; refused requests are
not counted, so a client that keeps knocking gets back in as soon as its
oldest request leaves the window.  Over the limit the answer is **429** with
``Retry-After``.  Every answer carries ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (seconds until a request is
allowed again once used up), and the IETF draft's ``RateLimit-Policy`` and
``RateLimit``.

The client is the remote address by default (behind a balancer, install
:class:`restkit.proxy.ProxyHeaders`, or every client counts as the balancer); ``key="identity"`` counts per
authenticated identity (``request.context["identity"]``, set by
:mod:`restkit.auth`; the address when there is none), and any function of the
request may be given.  The counts live in a :class:`Store`;
:class:`MemoryStore` (the default) keeps them in this process, so each
gunicorn worker counts on its own: give several processes a shared store
(a database table, Redis) by implementing :meth:`Store.hit`.

App-wide, every request counts, errors included; requests the router
answers itself (404, 405, OPTIONS...) are counted when they are answered.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import TooManyRequests
from .feature import DocumentContext, Feature, exempt
from .response import JSON_TYPE, Response, json_dumps

if TYPE_CHECKING:
    from .app import App
    from .request import Request

__all__ = ["Decision", "MemoryStore", "RateLimit", "Store"]

_COUNTED = "restkit.ratelimit"  # request.context key: the decisions made for this request


class Decision(NamedTuple):
    """What a store decided for one request."""

    allowed: bool
    remaining: int  # requests left in the window after this one
    reset: int  # seconds until the oldest counted request leaves the window (0: none counted)


class Store:
    """Where the counts live.  Implement :meth:`hit` to share them between processes."""

    def hit(self, key: str, limit: int, window: float) -> Decision:
        """Count a request by ``key`` if fewer than ``limit`` fall in the last ``window`` seconds."""
        raise NotImplementedError


class MemoryStore(Store):
    """Counts in this process: a deque of request times per key (a sliding-window log).

    One lock guards the table; keys silent for a window are dropped now and
    then, so the table does not grow without bound.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def hit(self, key: str, limit: int, window: float) -> Decision:
        now = self._clock()
        start = now - window
        with self._lock:
            if now >= self._next_sweep:
                for stale in [k for k, hits in self._hits.items() if not hits or hits[-1] <= start]:
                    del self._hits[stale]
                self._next_sweep = now + window
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
            while hits and hits[0] <= start:
                hits.popleft()
            if len(hits) >= limit:
                return Decision(False, 0, max(1, math.ceil(hits[0] + window - now)))
            hits.append(now)
            return Decision(True, limit - len(hits), max(1, math.ceil(hits[0] + window - now)))


def address(request: Request) -> str:
    """The client's address, as the server saw it."""
    return request.remote_addr or "unknown"


def identity(request: Request) -> str:
    """The authenticated identity's name, else the address."""
    who = request.context.get("identity")
    return f"id:{who.name}" if who is not None else address(request)


class RateLimit(Feature):
    """At most ``limit`` requests per client in any ``window`` seconds.

    Args:
        limit: requests allowed per window; 0 turns the limit off.
        window: the window, in seconds.
        key: ``"address"`` (default), ``"identity"``, or a function from the
            request to the client's key.
        store: where the counts live (default: a new :class:`MemoryStore`).
        scope: a prefix of the keys, so that limits on different routes count
            apart (default: the route's path per route, ``"app"`` app-wide).
    """

    option = "rate_limit"

    def __init__(
        self,
        limit: int,
        *,
        window: float = 60.0,
        key: str | Callable[[Request], str] = "address",
        store: Store | None = None,
        scope: str | None = None,
    ) -> None:
        if window <= 0:
            raise ValueError("the window must be positive")
        self.limit = int(limit)
        self.window = float(window)
        if key == "address":
            self.key: Callable[[Request], str] = address
        elif key == "identity":
            self.key = identity
        elif callable(key):
            self.key = key
        else:
            raise ValueError(f"key must be 'address', 'identity' or a function, not {key!r}")
        # After auth when the key is the identity, else before it: floods are refused before any secret is checked.
        self.stage = 25 if key == "identity" else 10
        self.store = store if store is not None else MemoryStore()
        self.scope = scope
        self._app_wide = False

    # -- counting ----------------------------------------------------------------

    def check(self, request: Request) -> Decision:
        """Count the request; raises :class:`TooManyRequests` over the limit."""
        if self.limit <= 0:
            return Decision(True, 0, 0)
        scope = self.scope or ("app" if self._app_wide else (request.route.path if request.route else request.path))
        decision = self.store.hit(f"{scope}\0{self.key(request)}", self.limit, self.window)
        request.context.setdefault(_COUNTED, {})[id(self)] = decision
        if not decision.allowed:
            raise TooManyRequests(
                f"more than {self.limit} requests {self._per()}; retry in {decision.reset} s",
                retry_after=decision.reset,
            )
        return decision

    def _per(self) -> str:
        return "a minute" if self.window == 60 else f"in {self.window:g} seconds"

    def headers(self, decision: Decision) -> list[tuple[str, str]]:
        """The rate-limit headers for a decision."""
        window = f"{self.window:g}"
        return [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(decision.remaining)),
            ("X-RateLimit-Reset", str(decision.reset)),
            ("RateLimit-Policy", f'"default";q={self.limit};w={window}'),
            ("RateLimit", f'"default";r={decision.remaining};t={decision.reset}'),
        ]

    # -- the feature ---------------------------------------------------------------

    def install(self, app: App) -> None:
        self._app_wide = True
        app.after_request(self._count_the_rest)

    def before(self, request: Request) -> None:
        self.check(request)

    def after(self, request: Request, response: Response) -> Response:
        decision = request.context.get(_COUNTED, {}).get(id(self))
        if decision is not None and self.limit > 0:
            for name, value in self.headers(decision):
                response.set_header(name, value)
        return response

    def _count_the_rest(self, request: Request | None, response: Response) -> Response | None:
        """App-wide: count what the router answered without running the chain (404, 405, OPTIONS...)."""
        if request is None or self.limit <= 0:
            return None
        route = request.route
        if route is not None and self.option in route.options or exempt(route):
            return None  # the route has a limit of its own (or none), or takes no app-wide feature
        if id(self) not in request.context.get(_COUNTED, {}):
            try:
                self.check(request)
            except TooManyRequests as exc:
                refusal = Response(json_dumps(exc.to_dict()), exc.status, exc.headers, content_type=JSON_TYPE)
                # hooks installed before this one (CORS) have spoken already: keep what they said
                refusal.headers += [(k, v) for k, v in response.headers if k.lower().startswith("access-control-") or k.lower() == "vary"]
                response = refusal
            return self.after(request, response)
        return None

    def document(self, operation: dict[str, Any], context: DocumentContext) -> None:
        if self.limit <= 0:
            return
        too_many = context.add_response(operation, 429)
        context.add_header(too_many, "Retry-After", "seconds until a request is allowed again", {"type": "integer"})
        for response in [*context.success_responses(operation), too_many]:
            context.add_header(response, "X-RateLimit-Limit", "requests allowed per window", {"type": "integer"})
            context.add_header(response, "X-RateLimit-Remaining", "requests left in the window", {"type": "integer"})
            context.add_header(response, "X-RateLimit-Reset", "seconds until the window frees a request", {"type": "integer"})
