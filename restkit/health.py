"""Health probes: ``/healthz`` (liveness) and ``/readyz`` (readiness) for load balancers and orchestrators.

::

    import socket
    import sqlite3

    from restkit import App
    from restkit.health import Health

    db = sqlite3.connect("app.db", check_same_thread=False)

    def database() -> None:
        db.execute("SELECT 1")                      # raises when the database cannot answer

    app = App()
    health = app.use(Health(checks={"database": database}, timeout=1.0))

    @health.check("cache", timeout=0.2)
    def cache() -> None:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.2).close()   # a cache server listens

``GET /healthz`` answers **200** ``{"status": "ok"}`` while the process
serves; it runs nothing, so it only fails when the process cannot answer at
all (restart it).  ``GET /readyz`` runs every check at once, each in a
thread of its own with its own deadline, and answers **200**
``{"status": "ok", "checks": [...]}`` with each check's ``name``, ``ok``
and ``seconds``; or **503** ``{"error": "not ready", "checks": [...]}``
with ``Retry-After`` when one raised, returned False or passed its
deadline (its entry then says why in ``error``).  A check still running
from an earlier probe (it hangs past its deadline) is not started again:
it fails with ``still running from an earlier probe`` until it returns,
so a stuck dependency costs one thread, not one per probe.

Draining: once restkit's server begins a graceful stop
(``environ["restkit.shutdown"]`` is set, see ``drain`` on
:class:`restkit.server.Server` and ``--drain``), ``/readyz`` answers
**503** ``{"error": "draining"}`` without running the checks, while the
server keeps serving for the drain period: the balancer takes the
instance out before its listener closes.

The two routes take ``app_features=False`` (see :mod:`restkit.feature`):
app-wide auth, rate limits, CORS, preconditions and paging leave them
alone; a probe must not need a token, nor use up a client's quota.  They
are left out of the OpenAPI document (``include_in_schema=False``): they
are for operators, not API clients, and named ``restkit.healthz`` and
``restkit.readyz``.  The server writes no access-log line for them
(``environ["restkit.quiet"]``) unless ``log=True``: a balancer probing
every 200 ms would drown the log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .feature import Feature
from .response import Response

if TYPE_CHECKING:
    from .app import App
    from .request import Request

__all__ = ["Check", "Health"]

CheckFunction = Callable[[], object]
_NO_STORE = ("Cache-Control", "no-store")  # a probe's answer is about now


class Check:
    """One readiness check: ``function()`` passes unless it raises or returns False within ``timeout`` seconds."""

    __slots__ = ("name", "function", "timeout", "_running")

    def __init__(self, name: str, function: CheckFunction, timeout: float) -> None:
        if not callable(function):
            raise TypeError(f"readiness check {name!r} is not callable: {function!r}")
        if not timeout > 0:
            raise ValueError(f"readiness check {name!r}: timeout must be > 0 seconds, not {timeout!r}")
        self.name, self.function, self.timeout = name, function, float(timeout)
        self._running: threading.Thread | None = None  # the last run's thread, while it has not returned

    def start(self) -> _Run:
        """Run the check in a daemon thread (not if its last run still hangs)."""
        run = _Run(self)
        if self._running is not None and self._running.is_alive():
            run.finish("still running from an earlier probe")
            return run
        thread = threading.Thread(target=run.execute, name=f"restkit-readyz-{self.name}", daemon=True)
        self._running = thread
        thread.start()
        return run


class _Run:
    """One run of a check: its outcome once ``done`` is set."""

    __slots__ = ("check", "started", "done", "error", "seconds")

    def __init__(self, check: Check) -> None:
        self.check = check
        self.started = time.monotonic()
        self.done = threading.Event()
        self.error: str | None = None
        self.seconds = 0.0

    def execute(self) -> None:
        try:
            result = self.check.function()
        except Exception as exc:
            problem = " ".join(str(exc).split())
            self.finish(f"{type(exc).__name__}: {problem}" if problem else type(exc).__name__)
        else:
            self.finish("the check returned False" if result is False else None)

    def finish(self, error: str | None) -> None:
        if not self.done.is_set():
            self.error, self.seconds = error, time.monotonic() - self.started
            self.done.set()

    def outcome(self) -> dict[str, Any]:
        """Wait for the run until its deadline; its entry in the answer."""
        check = self.check
        finished = self.done.wait(max(0.0, self.started + check.timeout - time.monotonic()))
        if finished and self.seconds <= check.timeout:
            error, seconds = self.error, self.seconds
        else:  # the thread goes on; the check is not started again until it returns (see Check.start)
            error, seconds = f"timed out after {check.timeout:g} s", check.timeout
        entry: dict[str, Any] = {"name": check.name, "ok": error is None, "seconds": round(seconds, 4)}
        if error is not None:
            entry["error"] = error
        return entry


class Health(Feature):
    """Liveness and readiness routes (install with ``app.use``).

    Args:
        checks: readiness checks by name: a function, or a :class:`Check`
            for a deadline of its own.
        timeout: the deadline, in seconds, of checks given without one.
        retry_after: seconds a 503 asks to wait (``Retry-After``).
        log: write the server's access-log line for probes too.
        liveness, readiness: the paths of the two routes.
    """

    per_request = False

    def __init__(
        self,
        checks: Mapping[str, CheckFunction | Check] | None = None,
        *,
        timeout: float = 2.0,
        retry_after: int = 5,
        log: bool = False,
        liveness: str = "/healthz",
        readiness: str = "/readyz",
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {timeout!r}")
        self.timeout = float(timeout)
        self.retry_after = int(retry_after)
        self.log = log
        self.paths = (liveness, readiness)
        self.checks: dict[str, Check] = {}
        for name, check in (checks or {}).items():
            self.add_check(name, check)

    def add_check(self, name: str, check: CheckFunction | Check, *, timeout: float | None = None) -> Check:
        """Add a readiness check; a name may be used once."""
        if name in self.checks:
            raise ValueError(f"a readiness check named {name!r} exists already")
        if not isinstance(check, Check):
            check = Check(name, check, self.timeout if timeout is None else timeout)
        self.checks[name] = check
        return check

    def check(self, name: str, *, timeout: float | None = None) -> Callable[[CheckFunction], CheckFunction]:
        """Decorator form of :meth:`add_check`."""

        def register(function: CheckFunction) -> CheckFunction:
            self.add_check(name, function, timeout=timeout)
            return function

        return register

    def install(self, app: App) -> None:
        liveness, readiness = self.paths
        app.router.add_route(liveness, self.live, name="restkit.healthz", include_in_schema=False, app_features=False)
        app.router.add_route(readiness, self.ready, name="restkit.readyz", include_in_schema=False, app_features=False)

    # -- the routes ------------------------------------------------------------------

    def live(self, request: Request) -> Response:
        """Liveness: the process answers."""
        self._quiet(request)
        return Response.json({"status": "ok"}, headers=[_NO_STORE])

    def ready(self, request: Request) -> Response:
        """Readiness: not draining, and every check passes within its deadline."""
        self._quiet(request)
        shutdown = request.environ.get("restkit.shutdown")
        if shutdown is not None and shutdown.is_set():
            return self._unavailable({"error": "draining"})
        runs = [check.start() for check in self.checks.values()]  # all at once...
        results = [run.outcome() for run in runs]  # ...so the slowest deadline bounds the wait
        if all(entry["ok"] for entry in results):
            return Response.json({"status": "ok", "checks": results}, headers=[_NO_STORE])
        return self._unavailable({"error": "not ready", "checks": results})

    def _unavailable(self, body: dict[str, Any]) -> Response:
        return Response.json(body, 503, headers=[_NO_STORE, ("Retry-After", str(self.retry_after))])

    def _quiet(self, request: Request) -> None:
        if not self.log:
            request.environ["restkit.quiet"] = True
