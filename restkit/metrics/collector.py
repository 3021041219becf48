"""The :class:`Metrics` feature: count every request by route template, and answer ``GET /metrics``.

Theory of operation
-------------------
Per request, two things run.  First of the before-routing hooks,
``next(begun)``, in C, counts one request begun.  Then the app's response
observer (:meth:`restkit.App.observe_responses`: it sees every response,
404s, errors and the features' refusals included, without the app building
a :class:`Response` for it) adds to this *thread's* :class:`Shard`, under
(route, method, status line): one latency bucket and the latency sum, and
the body's size when its length is known.  Only the
thread writes its shard, so counting takes no lock (CPython's GIL makes a
copy of a dict or list by another thread see it whole).  The route label
is the route's template (``/zoos/<int:zoo_id>``); a request no route took
(404, 405, a slash redirect, an automatic ``OPTIONS``) is ``<unmatched>``.

Everything else waits for a scrape, or for the writer thread that puts this
process's figures in the shared directory (:mod:`restkit.metrics.shared`):
adding the shards up (those of threads that ended fold into one), the
requests in flight (begun less answered), the server's and the process's
figures, the other processes' files, the text.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ..feature import Feature
from ..response import Response
from .exposition import (
    COMBINE,
    OPENMETRICS_TYPE,
    TEXT_TYPE,
    Labels,
    Samples,
    format_bound,
    merge_into,
    render,
    wants_openmetrics,
)
from .process import process_figures

if TYPE_CHECKING:
    from ..app import App
    from ..request import Request
    from .shared import SharedDirectory

__all__ = ["DEFAULT_BUCKETS", "Metrics", "UNMATCHED"]

#: Seconds: from a millisecond (a cached answer) to ten seconds (a client's patience).
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The route label of requests no route answered.
UNMATCHED = "<unmatched>"
#: Routes counted but not timed by default: probes and the scrape itself, whose latency says nothing of the API.
UNTIMED_NAMES = frozenset({"restkit.healthz", "restkit.readyz", "restkit.metrics"})
ENVIRONMENT_VARIABLE = "RESTKIT_METRICS_DIR"

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
_log = logging.getLogger("restkit.metrics")


class Shard:
    """One thread's counts: only that thread writes them, so counting takes no lock.

    ``entries`` maps (route label, method, status line) to one list: a
    count per latency bucket (the last one +Inf, so their sum is the number
    of requests), the latency sum, and the count and sum of known body sizes.
    """

    __slots__ = ("thread", "entries")

    def __init__(self, thread: threading.Thread | None) -> None:
        self.thread = thread
        self.entries: dict[tuple[str, str, str], list[Any]] = {}

    def add(self, other: Shard) -> None:
        """Add ``other``'s counts (a thread that ended, or a copy) into these."""
        for key, entry in other.entries.items():
            into = self.entries.get(key)
            if into is None:
                self.entries[key] = list(entry)
            else:
                for index, value in enumerate(entry):
                    into[index] += value


class Metrics(Feature):
    """Prometheus metrics of the app (install with ``app.use``); ``GET /metrics`` answers them.

    Args:
        path: where the scrape is answered.
        buckets: latency histogram bounds, in seconds.
        untimed: route templates counted but left out of the latency
            histogram (besides the routes of :class:`restkit.health.Health`
            and the scrape itself, found by their names).
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
        untimed: Iterable[str] = (),
        directory: str | os.PathLike[str] | None = None,
        interval: float = 1.0,
        log: bool = False,
    ) -> None:
        self.path = path
        self.buckets = _bounds(buckets, "buckets")
        self.untimed = set(untimed)
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
        self._app: App | None = None
        self._lock = threading.Lock()  # for scrapes and writes, never taken by a request
        self._local = threading.local()  # .entries: this thread's Shard's
        self._shards: list[Shard] = []  # every live thread's
        self._retired = Shard(None)  # the counts of threads that ended
        self._begun = itertools.count()
        self._begun_before = 0  # _begun's value at this process's fork
        self._server: Any = None  # restkit's Server, from the environ (None under another server)
        self._started = False  # this process's writer runs (or none is needed)
        self._closing = False  # a graceful stop began: write after every request
        self._warned = False
        ref = weakref.WeakMethod(self._forked)
        os.register_at_fork(after_in_child=lambda: _call(ref))

    # -- installing ------------------------------------------------------------------------

    def install(self, app: App) -> None:
        self._app = app
        app.router.add_route(self.path, self.scrape, name="restkit.metrics", include_in_schema=False,
                             app_features=False, produces=None)
        # PERF: the in-flight count is requests begun less requests answered;
        # next(count, environ) counts one in C, where a Python hook would cost
        # a frame per request.  First, so that it runs for every request the
        # observer below sees.
        app._before_routing.insert(0, functools.partial(next, self._begun))
        app.observe_responses(self._observe)
        app.on_shutdown(self._stop)

    # -- per request (PERF: the only work a request pays; everything else waits for a scrape) -------

    def _observe(self, request: Request | None, environ: dict[str, Any], status: str, body: Any,
                 started: float) -> None:
        elapsed = perf_counter() - started
        try:
            entries = self._local.entries
        except AttributeError:
            entries = self._join(environ)
        # (not try/except AttributeError: a raise costs a 404 more than the whole count)
        route = request.route if request is not None else None  # None: a before-routing hook refused it
        label = UNMATCHED if route is None else route.path
        key = (label, environ["REQUEST_METHOD"], status)
        entry = entries.get(key)
        if entry is None:
            entry = self._entry(entries, key)
        entry[bisect_left(self.buckets, elapsed)] += 1
        entry[-3] += elapsed
        if type(body) is list:  # a length the app knew (not a stream)
            entry[-2] += 1
            if body:
                entry[-1] += len(body[0])
        if self._closing:
            self.flush()

    def _entry(self, entries: dict[tuple[str, str, str], list[Any]], key: tuple[str, str, str]) -> list[Any]:
        """The first request of its (route, method, status) on this thread: a list of counts for them."""
        label, method, status = key
        if method not in _METHODS:
            # a client must not make series up: odd methods share one entry, looked up again each time
            key = (label, "other", status)
            found = entries.get(key)
            if found is not None:
                return found
        entry: list[Any] = [*[0] * (len(self.buckets) + 1), 0.0, 0, 0]
        entries[key] = entry
        return entry

    def _join(self, environ: dict[str, Any]) -> dict[tuple[str, str, str], list[Any]]:
        """A thread's first request: its shard; the process's first: remember the server, start the writer."""
        shard = Shard(threading.current_thread())
        self._local.entries = shard.entries
        with self._lock:
            self._shards.append(shard)
            first, self._started = not self._started, True
        if first:
            self._server = environ.get("restkit.server")
            if self.shared is not None:
                import atexit

                atexit.register(self.flush)  # a worker that exits normally (gunicorn's) writes its last figures
                threading.Thread(target=self._write_every_interval, name="restkit-metrics", daemon=True).start()
        return shard.entries

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
        total = self._counts()
        counters: Samples = {}
        gauges: Samples = {}
        answered = 0
        untimed = self.untimed | self._untimed_by_name()
        timed: dict[Labels, list[Any]] = {}  # the latency histograms and sizes, by (method, route): statuses together
        for (route, method, status), entry in total.entries.items():
            count = sum(entry[:-3])
            key = ("restkit_http_requests_total", (("method", method), ("route", route), ("status", status[:3])))
            counters[key] = counters.get(key, 0) + count  # "200 OK" and "200 Fine" are one status
            answered += count
            labels: Labels = (("method", method), ("route", route))
            into = timed.get(labels)
            if into is None:
                timed[labels] = list(entry)
            else:
                for index, value in enumerate(entry):
                    into[index] += value
        for labels, entry in timed.items():
            if labels[1][1] not in untimed:
                _histogram(counters, "restkit_http_request_duration_seconds", labels, entry[:-2], self.buckets)
            if entry[-2]:
                counters[("restkit_http_response_size_bytes_count", labels)] = entry[-2]
                counters[("restkit_http_response_size_bytes_sum", labels)] = entry[-1]
        begun = int(repr(self._begun)[6:-1]) - self._begun_before  # "count(N)": N requests began
        gauges[("restkit_http_requests_in_flight", ())] = max(0.0, begun - answered)
        if server is not None and hasattr(server, "stats"):
            _server_samples(counters, gauges, server)
        figures = process_figures()
        counters[("process_cpu_seconds_total", ())] = figures["cpu_seconds"]
        for name, sample in (("resident_bytes", "process_resident_memory_bytes"), ("open_fds", "process_open_fds"),
                             ("max_fds", "process_max_fds"), ("start_time", "process_start_time_seconds")):
            if name in figures:
                gauges[(sample, ())] = figures[name]
        return counters, gauges

    def _counts(self) -> Shard:
        """Every thread's counts added up; the shards of threads that ended fold into ``_retired``."""
        total = Shard(None)
        with self._lock:
            for shard in list(self._shards):
                if shard.thread is not None and not shard.thread.is_alive():
                    self._shards.remove(shard)
                    self._retired.add(shard)
                else:
                    # dict() and list() copy in C, with no thread switch in between (the GIL);
                    # a count may land just after: it shows in the next scrape.
                    total.add(_copy(shard))
            total.add(self._retired)
        return total

    def _untimed_by_name(self) -> set[str]:
        if self._app is None:
            return set()
        return {route.path for route in self._app.router.routes if route.name in UNTIMED_NAMES}

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
        self._lock = threading.Lock()
        self._local = threading.local()
        self._shards = []
        self._retired = Shard(None)
        self._begun_before = int(repr(self._begun)[6:-1])
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


def _histogram(counters: Samples, name: str, labels: Labels, values: list[Any], bounds: tuple[float, ...]) -> None:
    """The _bucket (cumulative), _count and _sum samples of one histogram.

    ``values`` is a count per bucket, then the sum.
    """
    running = 0.0
    for bound, count in zip((*bounds, math.inf), values):
        running += count
        counters[(name + "_bucket", (*labels, ("le", format_bound(bound))))] = running
    counters[(name + "_count", labels)] = running
    counters[(name + "_sum", labels)] = values[-1]


def _copy(shard: Shard) -> Shard:
    copy = Shard(None)
    copy.entries = {key: list(entry) for key, entry in list(shard.entries.items())}
    return copy


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
