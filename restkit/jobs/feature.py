"""``Jobs``: durable background jobs for an app: kinds, submit, the job resource, runner threads.

::

    from restkit import App
    from restkit.jobs import Job, Jobs, SQLiteStore

    app = App()
    jobs = app.use(Jobs(SQLiteStore("jobs.db")))      # GET/DELETE /jobs/<id>; runners start with the app

    @jobs.kind("report", max_attempts=3, backoff=2.0)
    def make_report(job):
        job.progress(0.5, "counting")
        return {"rows": 12}                             # or job.created("/reports/7"): 303 to it

    @app.post("/reports", responses={202: Job})
    def submit_report(request):
        return jobs.accepted(request, jobs.submit("report", request.json, key=request.headers.get("Idempotency-Key")))

Where runners run: ``threads`` of them in every process that serves the app,
started by its startup hooks (so after the fork of each ``--workers`` process
and each gunicorn worker) and stopped by its shutdown hooks; with
``threads=0`` the servers run none and ``python -m restkit worker SPEC`` does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..feature import DocumentContext, Feature
from ..response import Response, json_dumps
from .model import JobRecord, new_job
from .routes import Job, LinkMaker, accepted, show_and_cancel
from .runner import JobContext, Kind, Runner
from .store import Store

if TYPE_CHECKING:
    from ..app import App
    from ..request import Request

__all__ = ["Jobs"]

F = TypeVar("F", bound=Callable[[JobContext], Any])


class Jobs(Feature):
    """Background jobs kept in ``store``, their resource at ``path``, runner threads in each process.

    Args:
        store: a :class:`~restkit.jobs.MemoryStore` (tests: per process), :class:`~restkit.jobs.SQLiteStore`
            (one host, any number of processes) or :class:`~restkit.jobs.PostgresStore` (several hosts).
        path: where the job resource is: ``GET``/``DELETE {path}/<job>`` (route names ``show_job``, ``cancel_job``).
        threads: runner threads per process; 0: none (run ``python -m restkit worker SPEC`` instead).
        lease: seconds a runner holds a job without renewing (renewed every third of it); a job whose
            process died is taken over after this.
        poll: seconds between looks for due jobs when nothing woke the runners.
        retry_after: the ``Retry-After`` of a job not yet ended, in seconds.
        grace: seconds a stopping process gives running jobs to stop before it leaves them to their leases.
        links: ``links(request, job)``: more entries for a job's ``links``.
        show_options, cancel_options: route options of the two routes (``auth=``, ``tags=``, ``errors=``...).
    """

    per_request = False

    def __init__(self, store: Store, *, path: str = "/jobs", threads: int = 2, lease: float = 30.0,
                 poll: float = 1.0, retry_after: int = 1, grace: float = 10.0, links: LinkMaker | None = None,
                 show_options: Mapping[str, Any] | None = None, cancel_options: Mapping[str, Any] | None = None
                 ) -> None:
        if threads < 0:
            raise ValueError(f"threads={threads}: use 0 or more")
        self.store = store
        self.path = path.rstrip("/")
        self.threads = threads
        self.lease = lease
        self.poll = poll
        self.retry_after = retry_after
        self.grace = grace
        self.links = links
        self.show_options = dict(show_options or {})
        self.cancel_options = dict(cancel_options or {})
        self.kinds: dict[str, Kind] = {}
        self._runner: Runner | None = None
        self._lock = threading.Lock()

    # -- setting up ------------------------------------------------------------------

    def kind(self, name: str, *, max_attempts: int = 3, backoff: float = 1.0, max_backoff: float = 300.0
             ) -> Callable[[F], F]:
        """Register ``function(job)`` as the work of jobs of kind ``name``.

        A job is run up to ``max_attempts`` times: after a failure (an exception) it is queued again
        after ``backoff`` seconds, doubled each time up to ``max_backoff``; the last failure's error is kept.
        """
        if name in self.kinds:
            raise ValueError(f"job kind {name!r} is already registered (by {self.kinds[name].function.__qualname__})")
        if max_attempts < 1 or backoff < 0 or max_backoff < 0:
            raise ValueError("max_attempts must be >= 1, backoff and max_backoff >= 0")

        def register(function: F) -> F:
            self.kinds[name] = Kind(name, function, max_attempts, backoff, max_backoff)
            return function

        return register

    def install(self, app: App) -> None:
        show, cancel = show_and_cancel(self.store, self.retry_after, self.links)
        app.add_route(f"{self.path}/<job>", show, name="show_job",
                      **{"responses": {200: Job, 303: Job}, "tags": ["jobs"], **self.show_options})
        app.add_route(f"{self.path}/<job>", cancel, methods=["DELETE"], name="cancel_job",
                      **{"responses": {200: Job, 202: Job}, "errors": [409], "tags": ["jobs"],
                         **self.cancel_options})
        app.on_startup(self.start)
        app.on_shutdown(self.stop)

    # -- using it --------------------------------------------------------------------

    def submit(self, kind: str, payload: Any = None, *, key: str | None = None) -> JobRecord:
        """Queue a job of ``kind`` with ``payload`` (JSON); with ``key``, the job of that kind and key if there is one.

        Raises:
            LookupError: no such kind (a mistake in the app: a 500).
            TypeError: a payload that is not JSON (dates, UUIDs and dataclasses are made JSON as in responses).
        """
        spec = self.kinds.get(kind)
        if spec is None:
            raise LookupError(f"no job kind {kind!r}: register it with @jobs.kind({kind!r})")
        payload = json.loads(json_dumps(payload))  # what every store keeps, and what the function will get
        record, _ = self.store.add(new_job(kind, payload, key=key, max_attempts=spec.max_attempts, now=time.time()))
        return record

    def accepted(self, request: Request, job: JobRecord) -> Response:
        """``202 Accepted`` for ``job``: ``Location`` of its resource, ``Retry-After``, the job as JSON."""
        return accepted(request, job, self.retry_after, self.links)

    def get(self, id: str) -> JobRecord | None:
        """The job ``id``, or None."""
        return self.store.get(id)

    # -- runners ---------------------------------------------------------------------

    def start(self, threads: int | None = None) -> None:
        """Start this process's runner threads (``threads``, default the constructor's); a startup hook."""
        count = self.threads if threads is None else threads
        with self._lock:
            if count == 0 or (self._runner is not None and self._runner.running):
                return
            self._runner = Runner(self.store, self.kinds, threads=count, lease=self.lease, poll=self.poll)
            self._runner.start()

    def stop(self) -> None:
        """Stop this process's runner threads (running jobs get ``grace`` seconds); a shutdown hook."""
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop(self.grace)

    def close(self) -> None:
        """Stop the runners and close the store (an app's own teardown, e.g. in tests)."""
        self.stop()
        self.store.close()

    def document(self, operation: dict[str, Any], context: DocumentContext) -> None:
        """A ``202`` with a :class:`Job` gets ``Location`` (but a cancel's) and ``Retry-After``; a 303 ``Location``."""
        responses = operation["responses"]
        retry = ("Retry-After", "seconds to wait before asking again (while the job is queued or running)",
                 {"type": "integer"})
        accepted = responses.get("202")
        if accepted is not None and accepted.get("content", {}).get("application/json", {}).get(
                "schema", {}).get("$ref", "").endswith("/Job"):
            if context.method != "DELETE":
                context.add_header(accepted, "Location", "the URL of the job")
            context.add_header(accepted, *retry)
        if context.route.name == "show_job" and "200" in responses:
            context.add_header(responses["200"], *retry)
            if "303" in responses:
                context.add_header(responses["303"], "Location", "the resource the job made")


def find_jobs(app: Any) -> list[Jobs]:
    """The :class:`Jobs` features installed on ``app`` (``app.use``): what ``python -m restkit worker`` runs."""
    features: Iterable[Any] = getattr(app, "_features", ())
    return [feature for feature in features if isinstance(feature, Jobs)]
