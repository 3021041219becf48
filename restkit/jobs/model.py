"""What a job is and how it changes: the states, the transition table, and pure functions of a record.

Theory of operation
-------------------
A job is a row (:class:`JobRecord`) that every store keeps the same way.  It
changes only through :func:`become`, which looks the (state, event) pair up in
:data:`TRANSITIONS` and refuses any other, so the stores hold no rules of their
own: each reads a row under its lock, calls one of the functions below, and
writes back what it returns (None: nothing to write).

.. code-block:: text

    queued --claim--> running --succeed--> succeeded
      |                 |  |--fail-------> failed      (no attempts left)
      |                 |  |--retry------> queued      (after a backoff)
      |                 |  |--release----> queued      (its process stopped; tried again at once)
      |                 |  |--abandon----> failed      (its lease ran out max_attempts times)
      |                 |  '--claim------> running     (its lease ran out: another runner takes it over)
      '--cancel--> cancelled <--cancel--'              (a running job stops at its cancel flag)

A running job is held by one runner (``owner``) until ``lease_until``; the
runner renews the lease while the function works (heartbeats).  Every change a
runner asks for names its owner, and a job held by another owner (its lease
ran out and it was taken over) is left alone: the stalled runner's outcome is
dropped, never written over its successor's.  Functions therefore run at least
once; make their effects idempotent by the job's id (see the README).

Times are wall-clock seconds (``time.time()``) of the processes, so the hosts
sharing a store keep their clocks in sync (NTP) and the lease well above the skew.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "STATES",
    "SUCCEEDED",
    "TERMINAL",
    "TRANSITIONS",
    "Created",
    "InvalidTransition",
    "JobRecord",
    "abandon_message",
    "become",
    "cancelled",
    "claimed",
    "finished",
    "new_job",
    "released",
    "renewed",
    "retry_delay",
]

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
ACTIVE = frozenset({QUEUED, RUNNING})
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

#: (state, event) -> the next state; any other pair is a mistake (:class:`InvalidTransition`).
TRANSITIONS: Mapping[tuple[str, str], str] = {
    (QUEUED, "claim"): RUNNING,
    (QUEUED, "cancel"): CANCELLED,
    (RUNNING, "claim"): RUNNING,  # take-over once the lease ran out
    (RUNNING, "succeed"): SUCCEEDED,
    (RUNNING, "fail"): FAILED,
    (RUNNING, "retry"): QUEUED,
    (RUNNING, "release"): QUEUED,
    (RUNNING, "abandon"): FAILED,
    (RUNNING, "cancel"): CANCELLED,
}


class InvalidTransition(ValueError):
    """An event the job's state does not allow (a bug in the caller, never a client's mistake)."""


@dataclass(frozen=True)
class JobRecord:
    """One job as the stores keep it.  Times are ``time.time()`` seconds."""

    id: str
    kind: str
    payload: Any
    status: str
    key: str | None
    attempts: int
    max_attempts: int
    created_at: float
    run_after: float  # a queued job is claimable from then on
    progress: float | None = None
    message: str | None = None
    result: Any = None
    location: str | None = None  # a resource the job made: GET of the job answers 303 to it
    error: str | None = None
    cancel_requested: bool = False
    owner: str | None = None
    lease_until: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def done(self) -> bool:
        """Whether the job reached a final state."""
        return self.status in TERMINAL


@dataclass(frozen=True)
class Created:
    """What a job function returns when it made a resource: ``return job.created("/reports/7")``.

    The job then answers ``303 See Other`` with ``Location: url``; ``result`` is kept too.
    """

    url: str
    result: Any = None


def become(job: JobRecord, event: str, **changes: Any) -> JobRecord:
    """``job`` after ``event``, with ``changes``; raises :class:`InvalidTransition` if the table has no such move."""
    target = TRANSITIONS.get((job.status, event))
    if target is None:
        raise InvalidTransition(f"job {job.id} is {job.status}: it cannot {event}")
    return dataclasses.replace(job, status=target, **changes)


def new_job(kind: str, payload: Any, *, key: str | None, max_attempts: int, now: float) -> JobRecord:
    """A queued job with a fresh id (uuid4: 122 random bits, neither guessable nor sequential)."""
    return JobRecord(id=uuid.uuid4().hex, kind=kind, payload=payload, status=QUEUED, key=key, attempts=0,
                     max_attempts=max_attempts, created_at=now, run_after=now)


def abandon_message(attempts: int) -> str:
    return f"abandoned: its lease ran out {attempts} time(s) (the runner died or stalled)"


def claimed(job: JobRecord, owner: str, lease: float, now: float) -> JobRecord:
    """``job`` taken by ``owner``: running for ``lease`` seconds, or settled if its last holder left it for good.

    A running job (its lease ran out) with its cancel flag up is cancelled, and
    one whose holders all died ``max_attempts`` times is failed: the caller
    looks for another job then (the result is not running).
    """
    if job.status == RUNNING and job.cancel_requested:
        return become(job, "cancel", owner=None, lease_until=None, finished_at=now)
    if job.status == RUNNING and job.attempts >= job.max_attempts:
        return become(job, "abandon", owner=None, lease_until=None, finished_at=now,
                      error=abandon_message(job.attempts))
    return become(job, "claim", owner=owner, lease_until=now + lease, attempts=job.attempts + 1, started_at=now)


def renewed(job: JobRecord, owner: str, lease: float, now: float, progress: tuple[float | None, str | None] | None
            ) -> JobRecord | None:
    """The lease extended (and progress noted); None when ``owner`` no longer holds the job."""
    if job.status != RUNNING or job.owner != owner:
        return None
    changes: dict[str, Any] = {"lease_until": now + lease}
    if progress is not None:
        changes["progress"], changes["message"] = progress
    return dataclasses.replace(job, **changes)


def retry_delay(attempts: int, backoff: float, max_backoff: float) -> float:
    """Seconds before attempt ``attempts + 1``: ``backoff`` doubled after each failure, at most ``max_backoff``."""
    return float(min(max_backoff, backoff * 2 ** max(0, attempts - 1)))


def finished(job: JobRecord, owner: str, now: float, *, result: Any = None, location: str | None = None,
             error: str | None = None, stopped: bool = False, delay: float = 0.0) -> JobRecord | None:
    """The outcome of one attempt by ``owner``; None when the job is no longer its own (dropped).

    ``error``: failed if no attempt is left, else queued again after ``delay``.
    ``stopped``: the function stopped at its cancel flag.  Otherwise it succeeded.
    """
    if job.status != RUNNING or job.owner != owner:
        return None
    free: dict[str, Any] = {"owner": None, "lease_until": None}
    if stopped:
        return become(job, "cancel", finished_at=now, **free)
    if error is None:
        return become(job, "succeed", result=result, location=location, error=None, finished_at=now, progress=1.0,
                      **free)
    if job.attempts < job.max_attempts and not job.cancel_requested:
        return become(job, "retry", error=error, run_after=now + delay, **free)
    return become(job, "fail", error=error, finished_at=now, **free)


def released(job: JobRecord, owner: str, now: float) -> JobRecord | None:
    """Put back by a process that stops: queued again at once, the attempt not counted."""
    if job.status != RUNNING or job.owner != owner:
        return None
    return become(job, "release", owner=None, lease_until=None, run_after=now, attempts=max(0, job.attempts - 1))


def cancelled(job: JobRecord, now: float) -> JobRecord | None:
    """A cancel request: a queued job is cancelled, a running one gets its flag up; None for a finished job."""
    if job.status == QUEUED:
        return become(job, "cancel", finished_at=now, cancel_requested=True)
    if job.status == RUNNING:
        return job if job.cancel_requested else dataclasses.replace(job, cancel_requested=True)
    return None
