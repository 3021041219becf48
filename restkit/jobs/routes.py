"""The job resource over HTTP: its JSON, ``GET`` (200, or 303 to what it made) and ``DELETE`` (cancel).

.. code-block:: text

    POST /reports          -> 202 Accepted, Location: /jobs/{id}, Retry-After: 1, the job
    GET /jobs/{id}         -> 200 the job (Retry-After while queued or running)
                              303 See Other, Location: the resource it made (once succeeded with one)
    DELETE /jobs/{id}      -> 200 the job, cancelled (it was queued, or already cancelled)
                              202 Accepted, the job with cancel_requested (it is running: asked to stop)
                              409 it has already succeeded or failed
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import Conflict, NotFound
from ..response import Response
from .model import QUEUED, RUNNING, SUCCEEDED, JobRecord, cancelled

if TYPE_CHECKING:
    from ..request import Request
    from .store import Store

__all__ = ["Job", "LinkMaker", "accepted", "job_view", "show_and_cancel"]

#: ``links(request, job)``: more links for a job's ``links`` (the app's own, e.g. to what the job is about).
LinkMaker = Callable[["Request", JobRecord], dict[str, str]]


@dataclass
class Job:
    """A background job: where it is, and its result or error once it has ended."""

    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    attempts: int  # runs started so far (a run whose runner died counts)
    max_attempts: int
    progress: float | None  # 0.0 to 1.0, as the job reported it
    message: str | None  # what the job last said it was doing
    result: Any  # once succeeded
    location: str | None  # the resource the job made, once succeeded (GET of the job: 303 to it)
    error: str | None  # once failed (the last attempt's error while it is retried)
    cancel_requested: bool
    # date-times (ISO 8601, UTC, "Z"), so that a client generated from the document parses them
    created_at: datetime.datetime
    started_at: datetime.datetime | None  # the start of the latest attempt
    finished_at: datetime.datetime | None
    links: dict[str, str]


def _time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_view(request: Request, job: JobRecord, links: LinkMaker | None = None) -> dict[str, Any]:
    """The JSON of ``job`` (a :class:`Job`)."""
    all_links = {"self": request.url_for("show_job", job=job.id)}
    if links is not None:
        all_links.update(links(request, job))
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "attempts": job.attempts,
        "max_attempts": job.max_attempts, "progress": job.progress, "message": job.message, "result": job.result,
        "location": job.location, "error": job.error, "cancel_requested": job.cancel_requested,
        "created_at": _time(job.created_at), "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at), "links": all_links,
    }


def show_and_cancel(store: Store, retry_after: int, links: LinkMaker | None
                    ) -> tuple[Callable[..., Response], Callable[..., Response]]:
    """The ``GET`` and ``DELETE`` handlers of ``/jobs/<job>``."""

    def find(job: str) -> JobRecord:
        record = store.get(job) if len(job) <= 64 else None
        if record is None:
            raise NotFound(f"job {job} does not exist")
        return record

    def show_job(request: Request, job: str) -> Response:
        """Show a job: queued or running (with `Retry-After`), succeeded (303 to what it made, if anything),
        failed or cancelled."""
        record = find(job)
        body = job_view(request, record, links)
        if record.status == SUCCEEDED and record.location is not None:
            return Response.json(body, 303, [("Location", record.location)])
        waiting = [("Retry-After", str(retry_after))] if record.status in (QUEUED, RUNNING) else []
        return Response.json(body, 200, waiting)

    def cancel_job(request: Request, job: str) -> Response:
        """Cancel a job: a queued one at once (200); a running one is asked to stop (202); 409 once it has ended."""
        record = find(job)
        changed = store.change(job, lambda current: cancelled(current, time.time()))
        if changed is None:
            record = find(job)
            if record.status != "cancelled":
                raise Conflict(f"job {job} has already {record.status}: there is nothing to cancel")
            changed = record
        if changed.status == RUNNING:
            return Response.json(job_view(request, changed, links), 202, [("Retry-After", str(retry_after))])
        return Response.json(job_view(request, changed, links), 200)

    return show_job, cancel_job


def accepted(request: Request, job: JobRecord, retry_after: int, links: LinkMaker | None) -> Response:
    """``202 Accepted`` for a submitted job: ``Location`` of the job resource, ``Retry-After``, the job."""
    location = request.url_for("show_job", _external=True, job=job.id)
    return Response.json(job_view(request, job, links), 202, [("Location", location),
                                                              ("Retry-After", str(retry_after))])
