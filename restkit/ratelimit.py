"""Rate limiting: at most N requests per client in any window of W seconds.

::

    from restkit import App
    from restkit.ratelimit import RateLimit

    app = App()
    app.use(RateLimit(600))                                  # 600 a minute per client address

    @app.post("/login", rate_limit=RateLimit(5, window=300)) # a tighter limit on one route
    def login(request):
        return {"ok": True}

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
request may be given.  The counts live in a :class:`Store`:

* :class:`MemoryStore` (the default) keeps them in this process, so each
  worker of ``--workers N`` or gunicorn counts on its own (N times the limit);
* :class:`SQLiteStore` keeps them in an SQLite file: every process of one host
  counts together, exactly (one writer at a time);
* :class:`PostgresStore` keeps them in PostgreSQL: every instance on every host
  counts together, exactly (an advisory lock per client key);
* or implement :meth:`Store.hit` (Redis...).

**When the shared store fails** (unreachable, locked beyond its ``timeout``),
the limit does what ``on_store_error`` says: ``"allow"`` (the default) lets
the request through uncounted, since a limit that fails closed would turn a
database fault into a total outage; ``"refuse"`` answers **503** with
``Retry-After``.  Either way the request does not wait: after a failure the
store fails at once for a second (:class:`restkit.storage.Breaker`) and the
incident is logged once, with its end.

App-wide, every request counts, errors included: the requests the router
answers itself (404, 405, OPTIONS...) and those a route's checks refuse
(406, 413, 414) go through the limit's step too (``router_answers``, see
:mod:`restkit.feature`), before CORS or compression add their headers, so a
429 gets the same CORS headers as any other answer whatever the order of
``app.use`` calls.  Only a request a before-routing hook refuses is not counted.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import ServiceUnavailable, TooManyRequests
from .feature import DocumentContext, Feature
from .response import Response
from .storage import PostgresDatabase, SQLiteDatabase, StoreUnavailable, table_name

if TYPE_CHECKING:
    from .app import App
    from .request import Request

__all__ = ["Decision", "MemoryStore", "PostgresStore", "RateLimit", "SQLiteStore", "Store"]

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


def _text(key: str) -> str:
    """``key`` without NUL (PostgreSQL text holds none), escaped so that no two keys meet."""
    return key.replace("\\", "\\\\").replace("\0", "\\0")


SWEEP_EVERY = 1000  # hits between sweeps of the hits of silent clients, per process


class _Sweeps:
    """When to sweep the hits of silent clients, and how old they must be.

    Hits older than the longest window this process counts with are swept:
    processes that share a table should count with the same windows.
    """

    def __init__(self) -> None:
        self.hits = 0  # a lost update under threads only moves a sweep
        self.longest = 0.0

    def due(self, window: float) -> bool:
        self.hits += 1
        self.longest = max(self.longest, window)
        return self.hits % SWEEP_EVERY == 0


class SQLiteStore(Store):
    """Counts in an SQLite file, shared by every process of one host (workers, gunicorn).

    The same sliding-window log as :class:`MemoryStore`, in a table: each hit
    is one write transaction (``BEGIN IMMEDIATE``: processes take turns), so
    the limit is exact across processes.  Times come from the host's clock.

    Args:
        path: the file (created when missing); not on a network file system.
        table: the table's name.
        timeout: seconds a hit waits for the file's writer lock before the store counts as failed.
        retry: seconds the store fails fast after a failure (see :mod:`restkit.storage`).
    """

    def __init__(self, path: str, *, table: str = "restkit_rate_hits", timeout: float = 1.0,
                 retry: float = 1.0) -> None:
        self.table = table = table_name(table)
        schema = (f"CREATE TABLE IF NOT EXISTS {table} (key TEXT NOT NULL, at REAL NOT NULL);"
                  f" CREATE INDEX IF NOT EXISTS {table}_key_at ON {table} (key, at);"
                  f" CREATE INDEX IF NOT EXISTS {table}_at ON {table} (at);")
        self.db = SQLiteDatabase(path, schema, timeout=timeout, retry=retry,
                                 name=f"the rate limit's SQLite store {path}")
        self._sweeps = _Sweeps()

    def hit(self, key: str, limit: int, window: float) -> Decision:
        key = _text(key)
        table = self.table
        sweep = self._sweeps.due(window)
        with self.db.write() as conn:
            now = time.time()
            conn.execute(f"DELETE FROM {table} WHERE key = ? AND at <= ?", (key, now - window))
            count, oldest = conn.execute(f"SELECT count(*), min(at) FROM {table} WHERE key = ?", (key,)).fetchone()
            if count >= limit:
                return Decision(False, 0, max(1, math.ceil(oldest + window - now)))
            conn.execute(f"INSERT INTO {table} (key, at) VALUES (?, ?)", (key, now))
            if sweep:
                conn.execute(f"DELETE FROM {table} WHERE at <= ?", (now - self._sweeps.longest,))
        return Decision(True, limit - count - 1, max(1, math.ceil((oldest if count else now) + window - now)))

    def close(self) -> None:
        """Close this process's connections."""
        self.db.close()


class PostgresStore(Store):
    """Counts in PostgreSQL, shared by every instance on every host.

    The same sliding-window log as :class:`MemoryStore`, in an unlogged table
    (a crash of the server forgets recent requests, nothing more).  Each hit is
    one transaction that takes an advisory lock on the client's key, drops its
    hits older than the window, counts the rest and records the new one if
    allowed: instances counting one client queue on the lock, so the limit is
    exact across them.  Times come from the database's clock, which every
    instance shares.  psycopg 3 is imported on the first hit.

    Args:
        url: a libpq connection string, ``postgresql://user@host:5432/dbname``.
        table: the table's name.
        timeout: seconds a statement may take before the store counts as failed.
        retry: seconds the store fails fast after a failure (see :mod:`restkit.storage`).
    """

    def __init__(self, url: str, *, table: str = "restkit_rate_hits", timeout: float = 0.5, retry: float = 1.0) -> None:
        self.table = table = table_name(table)
        schema = [
            f"CREATE UNLOGGED TABLE IF NOT EXISTS {table} (key TEXT NOT NULL, at TIMESTAMPTZ NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {table}_key_at ON {table} (key, at)",
            f"CREATE INDEX IF NOT EXISTS {table}_at ON {table} (at)",
        ]
        self.db = PostgresDatabase(url, schema, timeout=timeout, retry=retry, name="the rate limit's PostgreSQL store")
        self._sweeps = _Sweeps()

    def hit(self, key: str, limit: int, window: float) -> Decision:
        key = _text(key)
        table = self.table
        sweep = self._sweeps.due(window)
        span = f"{window} seconds"
        with self.db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
            conn.execute(f"DELETE FROM {table} WHERE key = %s AND at <= now() - %s::interval", (key, span))
            count, wait = conn.execute(
                f"SELECT count(*), EXTRACT(EPOCH FROM min(at) + %s::interval - now()) FROM {table} WHERE key = %s",
                (span, key),
            ).fetchone()
            if count >= limit:
                return Decision(False, 0, max(1, math.ceil(wait)))
            conn.execute(f"INSERT INTO {table} (key, at) VALUES (%s, now())", (key,))
            if sweep:
                conn.execute(f"DELETE FROM {table} WHERE at <= now() - %s::interval",
                             (f"{self._sweeps.longest} seconds",))
        return Decision(True, limit - count - 1, max(1, math.ceil(float(wait) if count else window)))

    def close(self) -> None:
        """Close this process's connections."""
        self.db.close()



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
        on_store_error: when a shared store fails, ``"allow"`` (default: the
            request passes, uncounted) or ``"refuse"`` (503 with ``Retry-After``).
    """

    option = "rate_limit"
    option_takes = "a RateLimit(...), or None"
    router_answers = True  # app-wide, every request counts: 404s, 405s and preflights too

    def __init__(
        self,
        limit: int,
        *,
        window: float = 60.0,
        key: str | Callable[[Request], str] = "address",
        store: Store | None = None,
        scope: str | None = None,
        on_store_error: str = "allow",
    ) -> None:
        if window <= 0:
            raise ValueError("the window must be positive")
        if on_store_error not in ("allow", "refuse"):
            raise ValueError(f"on_store_error must be 'allow' or 'refuse', not {on_store_error!r}")
        self.on_store_error = on_store_error
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
        try:
            decision = self.store.hit(f"{scope}\0{self.key(request)}", self.limit, self.window)
        except StoreUnavailable as exc:  # the store logged it, once per incident
            if self.on_store_error == "refuse":
                raise ServiceUnavailable(f"the rate limit cannot count requests now; retry in {exc.retry_after} s",
                                         retry_after=exc.retry_after) from None
            return Decision(True, self.limit, 0)  # uncounted: no rate-limit headers either
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
        self._app_wide = True  # its keys share the scope "app"

    def before(self, request: Request) -> None:
        self.check(request)

    def after(self, request: Request, response: Response) -> Response:
        decision = request.context.get(_COUNTED, {}).get(id(self))
        if decision is not None and self.limit > 0:
            for name, value in self.headers(decision):
                response.set_header(name, value)
        return response

    def document(self, operation: dict[str, Any], context: DocumentContext) -> None:
        if self.limit <= 0:
            return
        too_many = context.add_response(operation, 429)
        if self.on_store_error == "refuse":
            unavailable = context.add_response(operation, 503)
            context.add_header(unavailable, "Retry-After", "seconds until the rate limit's store may answer",
                               {"type": "integer"})
        context.add_header(too_many, "Retry-After", "seconds until a request is allowed again", {"type": "integer"})
        for response in [*context.success_responses(operation), too_many]:
            context.add_header(response, "X-RateLimit-Limit", "requests allowed per window", {"type": "integer"})
            context.add_header(response, "X-RateLimit-Remaining", "requests left in the window", {"type": "integer"})
            context.add_header(response, "X-RateLimit-Reset", "seconds until the window frees a request",
                               {"type": "integer"})
