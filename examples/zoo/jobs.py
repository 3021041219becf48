"""Long work answered ``202 Accepted``: reports on a zoo, run as :mod:`restkit.jobs` jobs.

``POST /v1/zoos/{zoo}/reports`` queues a report and answers 202 with
``Location: /v1/jobs/{job}``; ``GET /v1/jobs/{job}`` shows the job (``queued``,
``running``, ``succeeded``, ``failed`` or ``cancelled``; ``Retry-After`` until it
ends) and, once it succeeded, its result and ``links.result``
(``/v1/jobs/{job}/result``); ``DELETE /v1/jobs/{job}`` (with the write token)
cancels it.

The queue is restkit's (leases renewed by heartbeats, take-over after a kill,
retries): in the zoo's own database, table ``restkit_jobs``, with
:class:`restkit.jobs.SQLiteStore` on the SQLite file (every process on the
host) and :class:`restkit.jobs.PostgresStore` on PostgreSQL (every instance;
``NOTIFY`` wakes an idle one).  Two runner threads in each process start with
it.  ``ZOO_JOB_LEASE`` (seconds, default 30) and ``ZOO_JOB_DELAY`` (seconds of
pretend work per report, default 0: the tests use it to kill an instance
mid-job) tune it from the environment.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

from restkit import App, NotFound, Request, Response, Router
from restkit.jobs import SUCCEEDED, Job, JobContext, JobRecord, Jobs, PostgresStore, SQLiteStore
from restkit.jobs import Store as JobStore

from .engine import is_postgres
from .records import Store, utc_now

__all__ = ["Report", "install_jobs", "open_job_store", "zoo_report"]


@dataclass
class Report:
    """What a zoo holds, counted by a job."""

    zoo_id: int
    animals: int
    animals_by_type: dict[str, int]
    employees: int
    generated_at: datetime.datetime


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


def open_job_store(db: str) -> JobStore:
    """The job queue in the zoo's database ``db`` (what ``--db`` names)."""
    return PostgresStore(db) if is_postgres(db) else SQLiteStore(db)


def install_jobs(app: App, store: Store, writer: Any, *, deprecated: bool = False) -> Jobs:
    """Add the report routes under ``/v1``, the job resource at ``/v1/jobs/{job}`` and runners per process.

    ``writer`` is the auth v1's writes take (:func:`examples.zoo.app.write_auth`); ``deprecated``
    marks the routes so in the API document, like the rest of v1 (:mod:`examples.zoo.deprecation`).  Call
    :meth:`Jobs.close` of what it returns before closing the store (``ZooApp.close`` does).
    """
    delay = float(os.environ.get("ZOO_JOB_DELAY", "0"))

    def links(request: Request, job: JobRecord) -> dict[str, str]:
        found = {"zoo": request.url_for("show_zoo", zoo=job.payload["zoo_id"])}
        if job.status == SUCCEEDED:
            found["result"] = request.url_for("show_job_result", job=job.id)
        return found

    jobs = Jobs(open_job_store(store.path), path="/v1/jobs", lease=float(os.environ.get("ZOO_JOB_LEASE", "30")),
                poll=0.5, links=links, show_options={"errors": [503], "deprecated": deprecated},
                cancel_options={"auth": writer, "errors": [409, 503, 507], "deprecated": deprecated})
    app.use(jobs)

    @jobs.kind("report")
    def make_report(job: JobContext) -> dict[str, Any]:
        job.sleep(delay)  # pretend work; the lease is renewed meanwhile
        return zoo_report(store, int(job.payload["zoo_id"]))

    def create_report(request: Request, zoo: int) -> Response:
        """Queue a report on a zoo: 202 with `Location` of the job; `GET` it until it has succeeded."""
        store.require("zoo", zoo)
        return jobs.accepted(request, jobs.submit("report", {"zoo_id": zoo}))

    def show_job_result(request: Request, job: str) -> Response:
        """The result of a job that succeeded (404 until then)."""
        record = jobs.get(job) if len(job) <= 64 else None
        if record is None or record.status != SUCCEEDED:
            raise NotFound(f"job {job} has no result" + ("" if record is None else f": it is {record.status}"))
        return Response.json(record.result, 200)

    router = Router(tags=["jobs"], defaults={"deprecated": deprecated})
    router.add_route("/zoos/<int:zoo>/reports", create_report, methods=["POST"], responses={202: Job},
                     auth=writer, errors=[410, 503, 507])
    router.add_route("/jobs/<job>/result", show_job_result, name="show_job_result", responses={200: Report},
                     errors=[503])
    app.mount("/v1", router)
    return jobs
