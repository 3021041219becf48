"""Long work answered ``202 Accepted``: a job queue in the zoo's database, run by any instance.

``POST /v1/zoos/{zoo}/reports`` queues a report on a zoo and answers 202 with
``Location: /v1/jobs/{job}``; ``GET /v1/jobs/{job}`` shows the job
(``pending``, ``running``, ``done`` or ``failed``; ``Retry-After`` until it
ends) and, once done, its result and ``links.result``
(``/v1/jobs/{job}/result``).

Theory of operation
-------------------
* **The queue is a table** (``jobs``, in the zoo's schema on both engines),
  so any worker process of any instance may run any job.
* **Leases.**  A runner thread in each process (started on the process's
  first request) claims the oldest job that is pending, or running with an
  expired lease, in one write transaction (on PostgreSQL ``FOR UPDATE SKIP
  LOCKED``, so runners do not queue on each other), and renews the lease
  while it works.  An instance killed mid-job stops renewing; once the lease
  expires another instance's runner takes the job over.  A result is stored
  only by the runner that still holds the lease, so a runner that stalled
  past its lease cannot overwrite its successor's work.  A job whose lease
  expired ``MAX_ATTEMPTS`` times is ``failed``.
* **Clocks.**  Leases are wall-clock times from the instances: keep their
  clocks in sync (NTP) and the lease well above the skew.

``ZOO_JOB_LEASE`` (seconds, default 30) and ``ZOO_JOB_DELAY`` (seconds of
pretend work per report, default 0: the tests use it to kill an instance
mid-job) tune it from the environment.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from restkit import App, NotFound, Request, Response, Router

from .faults import StorageFault
from .records import Row, Store, utc_now

__all__ = ["Job", "JobQueue", "JobRunner", "Jobs", "install_jobs"]

logger = logging.getLogger("examples.zoo")

MAX_ATTEMPTS = 3

# --- the answers, for the API document ------------------------------------------------


class _JobLinks(TypedDict):
    self: str
    zoo: str


class JobLinks(_JobLinks, total=False):
    result: str  # once done


@dataclass
class Job:
    """A queued piece of work; ``result`` once done, ``error`` once failed."""

    id: int
    kind: Literal["report"]
    status: Literal["pending", "running", "done", "failed"]
    attempts: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    links: JobLinks


@dataclass
class Report:
    """What a zoo holds, counted by a job."""

    zoo_id: int
    animals: int
    animals_by_type: dict[str, int]
    employees: int
    generated_at: datetime.datetime


# --- the queue ------------------------------------------------------------------------


class JobQueue:
    """The ``jobs`` table of a store, on either engine."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def submit(self, kind: str, params: dict[str, Any]) -> Row:
        """Queue a job; return its row."""
        now = utc_now()
        with self.store.writing() as execute:
            row = execute(
                "INSERT INTO jobs (kind, params, status, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?)"
                " RETURNING *",
                (kind, json.dumps(params), now, now),
            ).fetchone()
            return dict(row)

    def get(self, id: int) -> Row | None:
        if not 0 < id <= 2**63 - 1:
            return None
        with self.store.reading() as execute:
            row = execute("SELECT * FROM jobs WHERE id = ?", (id,)).fetchone()
            return dict(row) if row is not None else None

    def waiting(self) -> bool:
        """Whether a job may be claimed now (a cheap read before the write transaction)."""
        with self.store.reading() as execute:
            return execute(
                "SELECT 1 FROM jobs WHERE status = 'pending' OR (status = 'running' AND lease_until < ?) LIMIT 1",
                (time.time(),),
            ).fetchone() is not None

    def claim(self, owner: str, lease: float) -> Row | None:
        """Take the oldest claimable job for ``lease`` seconds; None when there is none."""
        skip = self.store.skip_locked  # PostgreSQL: runners do not queue on each other
        with self.store.writing() as execute:
            while True:
                now = time.time()
                row = execute(
                    "SELECT * FROM jobs WHERE status = 'pending' OR (status = 'running' AND lease_until < ?)"
                    f" ORDER BY id LIMIT 1{skip}",
                    (now,),
                ).fetchone()
                if row is None:
                    return None
                if row["attempts"] >= MAX_ATTEMPTS:  # taken and lost that many times: give up on it
                    execute("UPDATE jobs SET status = 'failed', owner = NULL, error = ?, updated_at = ? WHERE id = ?",
                            (f"abandoned by {MAX_ATTEMPTS} runners (their leases expired)", utc_now(), row["id"]))
                    continue
                claimed = execute(
                    "UPDATE jobs SET status = 'running', owner = ?, lease_until = ?, attempts = attempts + 1,"
                    " updated_at = ? WHERE id = ? RETURNING *",
                    (owner, now + lease, utc_now(), row["id"]),
                ).fetchone()
                return dict(claimed)

    def renew(self, id: int, owner: str, lease: float) -> bool:
        """Extend the lease; False when it is no longer ours."""
        with self.store.writing() as execute:
            row = execute("UPDATE jobs SET lease_until = ? WHERE id = ? AND owner = ? AND status = 'running'"
                          " RETURNING id", (time.time() + lease, id, owner)).fetchone()
            return row is not None

    def finish(self, id: int, owner: str, *, result: Any = None, error: str | None = None) -> bool:
        """Store the outcome if we still hold the lease; False when another runner took the job."""
        status = "failed" if error is not None else "done"
        with self.store.writing() as execute:
            row = execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, owner = NULL, lease_until = NULL, updated_at = ?"
                " WHERE id = ? AND owner = ? AND status = 'running' RETURNING id",
                (status, json.dumps(result) if result is not None else None, error, utc_now(), id, owner),
            ).fetchone()
            return row is not None


# --- the work -------------------------------------------------------------------------


def zoo_report(store: Store, zoo_id: int) -> dict[str, Any]:
    """Count what a zoo holds."""
    types = {row["id"]: row["name"] for row in store.list("animal_type", limit=100)[0]}
    by_type = {name: store.list("animal", filters={"zoo_id": zoo_id, "animal_type_id": id}, limit=1)[1]
               for id, name in types.items()}
    return {
        "zoo_id": zoo_id,
        "animals": store.list("animal", filters={"zoo_id": zoo_id}, limit=1)[1],
        "animals_by_type": {name: count for name, count in by_type.items() if count},
        "employees": store.list("employee", filters={"zoo_id": zoo_id}, limit=1)[1],
        "generated_at": utc_now(),
    }


class JobRunner:
    """A thread that claims jobs, renews their leases while working, and stores the outcome."""

    def __init__(self, queue: JobQueue, *, lease: float = 30.0, delay: float = 0.0, poll: float = 0.5) -> None:
        self.queue = queue
        self.lease = lease
        self.delay = delay
        self.poll = poll
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zoo-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if self.queue.store.gone():
                logger.warning("jobs: the database %s is gone; the runner stops", self.queue.store.path)
                return  # and connecting would create an empty file in its place
            try:
                job = self.queue.claim(self.owner, self.lease) if self.queue.waiting() else None
            except (StorageFault, Exception) as exc:  # noqa: BLE001 - the runner must outlive faults
                if not failures:
                    logger.warning("jobs: cannot claim a job: %s (trying again, less often)", exc)
                failures += 1
                self._stop.wait(min(30.0, self.poll * 2**min(failures, 6)))  # back off while it lasts
                continue
            if failures:
                logger.warning("jobs: claiming jobs again")
                failures = 0
            if job is None:
                self._stop.wait(self.poll)
                continue
            self._work(job)

    def _work(self, job: Row) -> None:
        try:
            params = json.loads(job["params"])
            # pretend work, in slices, renewing the lease as it goes
            end = time.monotonic() + self.delay
            while time.monotonic() < end and not self._stop.is_set():
                self._stop.wait(min(self.lease / 3, end - time.monotonic()))
                if not self.queue.renew(job["id"], self.owner, self.lease):
                    return  # lost the lease: another runner has the job
            if self._stop.is_set():
                return  # stopping: the lease expires and another runner takes over
            result = zoo_report(self.queue.store, int(params["zoo_id"]))
            self.queue.finish(job["id"], self.owner, result=result)
        except Exception as exc:  # noqa: BLE001 - a failed job is data, not a crash
            logger.warning("jobs: job %s failed: %s", job["id"], exc)
            try:
                self.queue.finish(job["id"], self.owner, error=str(exc))
            except Exception:  # noqa: BLE001
                pass


# --- the routes -----------------------------------------------------------------------


def _job(request: Request, row: Row) -> dict[str, Any]:
    params = json.loads(row["params"])
    links = {"self": request.url_for("show_job", job=row["id"]),
             "zoo": request.url_for("show_zoo", zoo=params["zoo_id"])}
    body: dict[str, Any] = {key: row[key] for key in ("id", "kind", "status", "attempts", "created_at", "updated_at")}
    if row["status"] == "done":
        links["result"] = request.url_for("show_job_result", job=row["id"])
    if row["status"] == "failed":
        body["error"] = row["error"]
    body["links"] = links
    return body


class Jobs:
    """The queue and this app's runners, one per process, started on the process's first request."""

    def __init__(self, queue: JobQueue, *, lease: float, delay: float) -> None:
        self.queue = queue
        self.lease = lease
        self.delay = delay
        self._runners: dict[int, JobRunner] = {}
        self._lock = threading.Lock()

    def ensure_runner(self, request: Request) -> None:
        """A before-request hook: start this process's runner unless it runs."""
        if os.getpid() in self._runners:  # PERF(jobs): one dict lookup per request once running
            return
        with self._lock:
            if os.getpid() not in self._runners:  # a forked worker starts its own
                runner = self._runners[os.getpid()] = JobRunner(self.queue, lease=self.lease, delay=self.delay)
                runner.start()

    def stop(self) -> None:
        """Stop this process's runner (a forked worker's parent has none of its own to stop)."""
        with self._lock:
            runner = self._runners.pop(os.getpid(), None)
            self._runners.clear()
        if runner is not None:
            runner.stop()


def install_jobs(app: App, store: Store, writer: Any, *, deprecated: bool = False) -> Jobs:
    """Add the report and job routes under ``/v1`` and a runner per process, started on its first request.

    ``writer`` is the auth v1's writes take (:func:`examples.zoo.app.write_auth`); ``deprecated``
    marks the routes so in the API document, like the rest of v1 (:mod:`examples.zoo.deprecation`).  Call
    :meth:`Jobs.stop` of what it returns before closing the store (``ZooApp.close`` does).
    """
    queue = JobQueue(store)
    jobs = Jobs(queue, lease=float(os.environ.get("ZOO_JOB_LEASE", "30")),
                delay=float(os.environ.get("ZOO_JOB_DELAY", "0")))

    def create_report(request: Request, zoo: int) -> Response:
        """Queue a report on a zoo: 202 with `Location` of the job; `GET` it until it is done."""
        store.require("zoo", zoo)
        row = queue.submit("report", {"zoo_id": zoo})
        location = request.url_for("show_job", _external=True, job=row["id"])
        return Response.json(_job(request, row), 202, [("Location", location), ("Retry-After", "1")])

    def show_job(request: Request, job: int) -> Response:
        """Show a job: `pending`, `running`, `done` (with `links.result`) or `failed` (with `error`)."""
        row = queue.get(job)
        if row is None:
            raise NotFound(f"job {job} does not exist")
        headers = [] if row["status"] in ("done", "failed") else [("Retry-After", "1")]
        return Response.json(_job(request, row), 200, headers)

    def show_job_result(request: Request, job: int) -> Response:
        """The result of a done job (404 until it is done)."""
        row = queue.get(job)
        if row is None or row["status"] != "done":
            raise NotFound(f"job {job} has no result" + ("" if row is None else f": it is {row['status']}"))
        return Response.json(json.loads(row["result"]), 200)

    router = Router(tags=["jobs"], defaults={"deprecated": deprecated})
    router.add_route("/zoos/<int:zoo>/reports", create_report, methods=["POST"], responses={202: Job},
                     auth=writer, errors=[410, 503, 507])
    router.add_route("/jobs/<int:job>", show_job, name="show_job", responses={200: Job}, errors=[503])
    router.add_route("/jobs/<int:job>/result", show_job_result, name="show_job_result", responses={200: Report},
                     errors=[503])
    app.mount("/v1", router)
    app.before_request(jobs.ensure_runner)
    return jobs
