"""The :class:`Metrics` feature: count every request by route template, and answer ``GET /metrics``.

Per request, a before-routing hook notes the time and one more request in
flight; an after-hook (which sees every response: 404s, errors, the
features' refusals) takes one lock and adds to three tables of this
process's :class:`Shard`: requests by (method, route, status), and two
histograms by (method, route), the seconds taken and the body size.  The
route label is the route's template (``/zoos/<int:zoo_id>``), looked up
once per route and kept; a request no route took (404, 405, a slash
redirect, the answer to an automatic ``OPTIONS``) is ``<unmatched>``.
Everything else (server and process figures, other processes' files,
the text) is done when a scrape asks, or by the writer thread.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..feature import Feature
from ..response import Response
from .exposition import COMBINE, OPENMETRICS_TYPE, TEXT_TYPE, Labels, Samples, format_bound, merge_into, render, wants_openmetrics
from .process import process_figures

if TYPE_CHECKING:
    from ..app import App
    from ..request import Request
    from .shared import SharedDirectory

__all__ = ["DEFAULT_BUCKETS", "SIZE_BUCKETS", "Metrics", "UNMATCHED"]

#: Seconds: from a millisecond (a cached answer) to ten seconds (a client's patience).
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Bytes: an empty answer, a small object, a page of a list, a large document.
SIZE_BUCKETS = (0.0, 100.0, 1000.0, 10_000.0, 100_000.0, 1_000_000.0, 10_000_000.0)
#: The route label of requests no route answered.
UNMATCHED = "<unmatched>"
#: Routes counted but not timed by default: probes and the scrape itself, whose latency says nothing of the API.
UNTIMED_NAMES = frozenset({"restkit.healthz", "restkit.readyz", "restkit.metrics"})
ENVIRONMENT_VARIABLE = "RESTKIT_METRICS_DIR"

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
_START = "restkit.metrics.start"
_log = logging.getLogger("restkit.metrics")


class Shard:
    """This process's counts since it started (or forked): what the after-hook adds to, under ``lock``."""

    __slots__ = ("lock", "requests", "durations", "sizes", "in_flight")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        # per (method, route): a count per bucket (the last one +Inf), then the sum
        self.durations: dict[tuple[str, str], list[float]] = {}
        self.sizes: dict[tuple[str, str], list[float]] = {}
        self.in_flight = 0


class Metrics(Feature):
    """Prometheus metrics of the app (install with ``app.use``); ``GET /metrics`` answers them.

    Args:
        path: where the scrape is answered.
        buckets: latency histogram bounds, in seconds.
        size_buckets: response size histogram bounds, in bytes.
        untimed: route templates counted but left out of the latency
            histogram (default: the routes of :class:`restkit.health.Health`
            and the scrape itself, by their names).
        directory: where the processes of one service on one machine share
            their figures (``--workers N``, gunicorn ``-w N``); default the
            ``RESTKIT_METRICS_DIR`` environment variable; None: this process
            alone.  See :mod:`restkit.metrics.shared`.
        interval: seconds between two writes of this process's file.
        log: write the server's access-log line for scrapes.

    Under several processes without a directory, each scrape reports only
    the process that answered it (and says so in a warning, once).
    """

    per_request = False

    def __init__(
        self,
        *,
        path: str = "/metrics",
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        size_buckets: Sequence[float] = SIZE_BUCKETS,
        untimed: Iterable[str] = (),
        directory: str | os.PathLike[str] | None = None,
        interval: float = 1.0,
        log: bool = False,
    ) -> None:
        self.path = path
        self.buckets = _bounds(buckets, "buckets")
        self.size_buckets = _bounds(size_buckets, "size_buckets")
        self.untimed = frozenset(untimed)
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, not {interval!r}")
        self.interval = float(interval)
        self.log = log
        if directory is None:
            directory = os.environ.get(ENVIRONMENT_VARIABLE) or None
        self.shared: SharedDirectory | None = None
        if directory is not None:
            from .shared import SharedDirectory  # PERF(lazy-import): only with several processes

            self.shared = SharedDirectory(directory)
        self._shard = Shard()
        self._routes: dict[int, tuple[str, bool]] = {}  # id(route) -> (label, timed)
        self._server: Any = None  # restkit's Server, from the first request's environ (None under another server)
        self._started = False  # this process's writer runs (or is not needed)
        self._closing = False  # a graceful stop began: write after every request
        self._warned = False
        ref = weakref.WeakMethod(self._forked)
        os.register_at_fork(after_in_child=lambda: _call(ref))

    # -- installing ------------------------------------------------------------------------

    def install(self, app: App) -> None:
        app.router.add_route(self.path, self.scrape, name="restkit.metrics", include_in_schema=False,
                             app_features=False, produces=None)
        app.before_routing(self._begin)
        app.after_request(self._observe)
        app.on_shutdown(self._stop)

    # -- per request -------------------------------------------------------------------------

    def _begin(self, environ: dict[str, Any]) -> None:
        environ[_START] = time.perf_counter()
        shard = self._shard
        with shard.lock:
            shard.in_flight += 1
        if not self._started:
            self._start(environ)

    def _observe(self, request: Request | None, response: Response) -> None:
        if request is None:
            return None  # a before-routing hook refused it before ours ran
        environ = request.environ
        started = environ.pop(_START, None)
        if started is None:
            return None
        elapsed = time.perf_counter() - started
        route = request.route
        if route is None:
            label, timed = UNMATCHED, True
        else:
            known = self._routes.get(id(route))
            if known is None:
                known = self._routes[id(route)] = (route.path, route.path not in self.untimed
                                                   and route.name not in UNTIMED_NAMES)
            label, timed = known
        method = request.method
        if method not in _METHODS:
            method = "other"  # a client must not make series up
        body = response.body
        size = len(body) if type(body) is bytes else -1
        key = (method, label)
        shard = self._shard
        with shard.lock:
            shard.in_flight -= 1
            counts = (method, label, response.status)
            shard.requests[counts] = shard.requests.get(counts, 0) + 1
            if timed:
                histogram = shard.durations.get(key)
                if histogram is None:
                    histogram = shard.durations[key] = [0.0] * (len(self.buckets) + 2)
                histogram[bisect_left(self.buckets, elapsed)] += 1
                histogram[-1] += elapsed
            if size >= 0:
                histogram = shard.sizes.get(key)
                if histogram is None:
                    histogram = shard.sizes[key] = [0.0] * (len(self.size_buckets) + 2)
                histogram[bisect_left(self.size_buckets, size)] += 1
                histogram[-1] += size
        if self._closing:
            self.flush()
        return None

    # -- the scrape ----------------------------------------------------------------------------

    def scrape(self, request: Request) -> Response:
        """``GET /metrics``: every series, as the 0.0.4 text or, when ``Accept`` prefers it, OpenMetrics 1.0.0."""
        environ = request.environ
        if not self.log:
            environ["restkit.quiet"] = True
        counters, gauges = self.samples(environ.get("restkit.server", self._server))
        if self.shared is not None:
            counters, gauges, live = self.shared.collect(counters, gauges)
        else:
            live = 1
            if environ.get("wsgi.multiprocess") and not self._warned:
                self._warned = True
                _log.warning("metrics: this app runs in several processes, and each /metrics answers for its own only; "
                             "give Metrics(directory=...) or set %s", ENVIRONMENT_VARIABLE)
        gauges[("restkit_processes", ())] = float(live)
        merge_into(counters, gauges.items(), COMBINE)
        openmetrics = wants_openmetrics(environ.get("HTTP_ACCEPT", ""))
        text = render(counters, openmetrics=openmetrics)
        return Response(text.encode("utf-8"), headers=[("Cache-Control", "no-store")],
                        content_type=OPENMETRICS_TYPE if openmetrics else TEXT_TYPE)

    def samples(self, server: Any = None) -> tuple[Samples, Samples]:
        """This process's counters and gauges now (with ``server``: restkit's server's figures too)."""
        counters: Samples = {}
        gauges: Samples = {}
        shard = self._shard
        with shard.lock:
            requests = list(shard.requests.items())
            durations = [(key, list(values)) for key, values in shard.durations.items()]
            sizes = [(key, list(values)) for key, values in shard.sizes.items()]
            in_flight = shard.in_flight
        for (method, route, status), count in requests:
            counters[("restkit_http_requests_total", (("method", method), ("route", route), ("status", str(status))))] = count
        _histogram(counters, "restkit_http_request_duration_seconds", durations, self.buckets)
        _histogram(counters, "restkit_http_response_size_bytes", sizes, self.size_buckets)
        gauges[("restkit_http_requests_in_flight", ())] = float(in_flight)
        if server is not None and hasattr(server, "stats"):
            _server_samples(counters, gauges, server)
        figures = process_figures()
        counters[("process_cpu_seconds_total", ())] = figures["cpu_seconds"]
        for name, sample in (("resident_bytes", "process_resident_memory_bytes"), ("open_fds", "process_open_fds"),
                             ("max_fds", "process_max_fds"), ("start_time", "process_start_time_seconds")):
            if name in figures:
                gauges[(sample, ())] = figures[name]
        return counters, gauges

    # -- this process's file ---------------------------------------------------------------------

    def flush(self) -> None:
        """Write this process's figures to its file in the shared directory now (no directory: nothing)."""
        if self.shared is None:
            return
        counters, gauges = self.samples(self._server)
        try:
            self.shared.write(counters, gauges)
        except OSError as exc:
            _log.error("metrics: cannot write to %s: %s", self.shared.path, exc)

    def _start(self, environ: dict[str, Any]) -> None:
        """On this process's first request: remember the server, start the writer (with a directory)."""
        self._started = True
        self._server = environ.get("restkit.server")
        if self.shared is None:
            return
        import atexit

        atexit.register(self.flush)  # a worker that exits normally (gunicorn's) writes its last figures
        self.flush()
        threading.Thread(target=self._write_every_interval, name="restkit-metrics", daemon=True).start()

    def _write_every_interval(self) -> None:
        pid = os.getpid()
        while not self._closing and os.getpid() == pid:
            time.sleep(self.interval)
            self.flush()

    def _stop(self) -> None:
        """A graceful stop began: write now, and after every request still answered."""
        self._closing = True
        self.flush()

    def _forked(self) -> None:
        """In a forked child: its own counts from zero, its own file, its own writer."""
        self._shard = Shard()
        self._started = False
        self._closing = False
        self._server = None
        if self.shared is not None:
            self.shared.forget()


def _call(ref: weakref.WeakMethod[Any]) -> None:
    method = ref()
    if method is not None:
        method()


def _bounds(values: Sequence[float], what: str) -> tuple[float, ...]:
    bounds = tuple(float(v) for v in values)
    if not bounds or list(bounds) != sorted(set(bounds)) or any(math.isnan(b) or math.isinf(b) for b in bounds):
        raise ValueError(f"{what} must be finite numbers in increasing order, not {values!r}")
    return bounds


def _histogram(counters: Samples, name: str, table: list[tuple[tuple[str, str], list[float]]],
               bounds: tuple[float, ...]) -> None:
    """The _bucket (cumulative), _count and _sum samples of one histogram table."""
    les = [format_bound(b) for b in bounds] + ["+Inf"]
    for (method, route), values in table:
        labels: Labels = (("method", method), ("route", route))
        running = 0.0
        for le, count in zip(les, values):
            running += count
            counters[(name + "_bucket", (*labels, ("le", le)))] = running
        counters[(name + "_count", labels)] = running
        counters[(name + "_sum", labels)] = values[-1]


def _server_samples(counters: Samples, gauges: Samples, server: Any) -> None:
    from ..server.stats import server_figures

    figures = server_figures(server)
    for state, count in figures.connections.items():
        gauges[("restkit_server_connections", (("state", state),))] = float(count)
    gauges[("restkit_server_worker_threads_busy", ())] = float(figures.workers_busy)
    gauges[("restkit_server_worker_threads", ())] = float(figures.threads)
    gauges[("restkit_server_streams_open", ())] = float(figures.streams)
    gauges[("restkit_server_accepting", ())] = float(figures.accepting)
    counters[("restkit_server_connections_accepted_total", ())] = float(figures.accepted)
    counters[("restkit_server_accept_pauses_total", ())] = float(figures.accept_pauses)
    counters[("restkit_server_tls_handshake_failures_total", ())] = float(figures.tls_failures)
    for status, count in figures.refused.items():
        counters[("restkit_server_refused_requests_total", (("status", str(status)),))] = float(count)
