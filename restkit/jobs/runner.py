"""Runner threads: claim a job, run its function with a context, renew the lease meanwhile, store the outcome.

Theory of operation
-------------------
A :class:`Runner` is ``threads`` worker threads and one heartbeat thread in one
process.  A worker waits on the store (:meth:`Store.wait`: a local submit, a
PostgreSQL ``NOTIFY``, or the ``poll`` interval), claims the oldest due job of
the kinds it knows with a lease, and calls the kind's function with a
:class:`JobContext`.  The heartbeat thread renews the lease of every job in
progress here every third of the lease, and brings back each one's cancel
flag, so a function that never calls the context still keeps its job, and one
that does learns of a ``DELETE`` within a third of the lease.

The outcome (a result, an error, a stop) is written only if this runner still
holds the job (:func:`restkit.jobs.model.finished`).  A process killed with
``kill -9`` writes nothing: its leases run out and other runners take the jobs
over.  A graceful stop (SIGTERM: the app's shutdown hooks) asks the functions
to stop (:meth:`JobContext.check` raises), waits ``grace`` seconds, and puts
what stopped back in the queue at once, without counting the attempt.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..response import json_dumps
from .model import Created, JobRecord, finished, released, renewed, retry_delay
from .store import Store

__all__ = ["JobContext", "JobStopped", "Kind", "Runner"]

logger = logging.getLogger("restkit.jobs")

_PROGRESS_EVERY = 0.5  # seconds between progress writes of one job (the heartbeat writes the last)


@dataclass(frozen=True)
class Kind:
    """A kind of job: its function and how it is retried."""

    name: str
    function: Callable[[JobContext], Any]
    max_attempts: int = 3
    backoff: float = 1.0  # seconds before the 2nd attempt, doubled for each later one
    max_backoff: float = 300.0


class JobStopped(Exception):
    """Raised by :meth:`JobContext.check` when the job was cancelled or its process is stopping."""


class JobContext:
    """What a job function gets: its job, progress reports, the cancel flag.

    ``job.id``, ``job.kind``, ``job.payload`` and ``job.attempt`` (1 for the first run) describe it.
    """

    def __init__(self, runner: Runner, record: JobRecord) -> None:
        self._runner = runner
        self.record = record
        self.id = record.id
        self.kind = record.kind
        self.payload = record.payload
        self.attempt = record.attempts
        self.cancel_requested = record.cancel_requested
        self.lost = False  # another runner took the job over: what this one does is dropped
        self.pending: tuple[float | None, str | None] | None = None  # progress not written yet
        self._written = 0.0  # time.monotonic() of the last progress written

    @property
    def cancelled(self) -> bool:
        """Whether a client asked to cancel the job (``DELETE``) or the process is stopping: stop soon."""
        return self.cancel_requested or self.lost or self._runner.stopping.is_set()

    def check(self) -> None:
        """Raise :class:`JobStopped` if the job should stop (see :attr:`cancelled`); call it between steps."""
        if self.cancelled:
            raise JobStopped(f"job {self.id} stops")

    def progress(self, fraction: float | None, message: str | None = None) -> None:
        """Record how far the job is (0.0 to 1.0) and what it does; renews the lease and reads the cancel flag.

        Written at most every half second (the heartbeat writes the last one), so calling it in a tight loop is cheap.
        """
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress {fraction!r} is not between 0.0 and 1.0")
        self.pending = (fraction, message)
        if time.monotonic() - self._written >= _PROGRESS_EVERY:
            self._runner.renew(self)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the job should stop (then :class:`JobStopped`)."""
        end = time.monotonic() + seconds
        while not self.cancelled and (left := end - time.monotonic()) > 0:
            self._runner.stopping.wait(min(left, 0.05))
        self.check()

    @staticmethod
    def created(url: str, result: Any = None) -> Created:
        """What to return when the job made a resource at ``url``: the job then answers ``303 See Other``."""
        return Created(url, result)


class Runner:
    """``threads`` threads running jobs of ``kinds`` from ``store`` in this process."""

    def __init__(self, store: Store, kinds: Mapping[str, Kind], *, threads: int = 2, lease: float = 30.0,
                 poll: float = 1.0) -> None:
        if lease <= 0 or poll <= 0:
            raise ValueError("lease and poll must be > 0 seconds")
        self.store = store
        self.kinds = kinds
        self.threads = threads
        self.lease = lease
        self.poll = poll
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stopping = threading.Event()
        self._working: dict[str, JobContext] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the threads (in this process: call it after a fork, never before)."""
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._threads = [threading.Thread(target=self._work, name=f"restkit-jobs-{n}", daemon=True)
                         for n in range(self.threads)]
        self._threads.append(threading.Thread(target=self._beat, name="restkit-jobs-heartbeat", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, grace: float = 10.0) -> None:
        """Ask running jobs to stop, wait up to ``grace`` seconds for the threads, put back what stopped."""
        self.stopping.set()
        self.store.notify()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        if self._threads:
            logger.warning("jobs: %d runner thread(s) still busy after %.1f s; their leases will run out",
                           len(self._threads), grace)

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    # -- the threads -----------------------------------------------------------------

    def _work(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                record = self.store.claim(tuple(self.kinds), self.owner, self.lease, time.time())
            except Exception as exc:  # noqa: BLE001 - the runner outlives a database that is away
                if not failures:
                    logger.warning("jobs: cannot claim a job: %s (trying again, less often)", exc)
                failures += 1
                self.stopping.wait(min(30.0, self.poll * 2 ** min(failures, 6)))
                continue
            if failures:
                logger.warning("jobs: claiming jobs again")
                failures = 0
            if record is None:
                self.store.wait(self.poll)
                continue
            self._run(record)

    def _run(self, record: JobRecord) -> None:
        kind = self.kinds[record.kind]
        context = JobContext(self, record)
        with self._lock:
            self._working[record.id] = context
        try:
            outcome = self._call(kind, context)
        finally:
            with self._lock:
                self._working.pop(record.id, None)
        if context.lost:
            logger.warning("jobs: job %s was taken over by another runner; this run's outcome is dropped", record.id)
            return
        try:
            written = self.store.change(record.id, outcome)
        except Exception as exc:  # noqa: BLE001 - the lease runs out and another runner does it again
            logger.warning("jobs: the outcome of job %s could not be stored: %s", record.id, exc)
            return
        if written is None:
            logger.warning("jobs: job %s was taken over by another runner; this run's outcome is dropped", record.id)

    def _call(self, kind: Kind, context: JobContext) -> Callable[[JobRecord], JobRecord | None]:
        """Run the function; the transition that stores how it ended."""
        owner = self.owner
        try:
            value = kind.function(context)
        except JobStopped:
            if context.cancel_requested:
                return lambda job: finished(job, owner, time.time(), stopped=True)
            return lambda job: released(job, owner, time.time())
        except Exception as exc:  # noqa: BLE001 - a failed job is data, not a crash
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            logger.warning("jobs: job %s (%s), attempt %d, failed: %s", context.id, kind.name, context.attempt, error)
            delay = retry_delay(context.attempt, kind.backoff, kind.max_backoff)
            return lambda job: finished(job, owner, time.time(), error=error, delay=delay)
        created = value if isinstance(value, Created) else None
        result = created.result if created is not None else value
        try:
            json_dumps(result)  # every store keeps JSON: find out here, not in a store's transaction
        except (TypeError, ValueError) as exc:
            error = f"the result of {kind.name} is not JSON: {exc}"
            return lambda job: finished(job, owner, time.time(), error=error,
                                        delay=retry_delay(context.attempt, kind.backoff, kind.max_backoff))
        location = created.url if created is not None else None
        return lambda job: finished(job, owner, time.time(), result=result, location=location)

    def renew(self, context: JobContext) -> None:
        """Extend ``context``'s lease (writing its pending progress) and bring back its cancel flag."""
        owner, lease, progress = self.owner, self.lease, context.pending
        record = self.store.change(context.id, lambda job: renewed(job, owner, lease, time.time(), progress))
        context.pending, context._written = None, time.monotonic()
        if record is None:
            context.lost = True
        else:
            context.cancel_requested = record.cancel_requested

    def _beat(self) -> None:
        while not self.stopping.wait(self.lease / 3):
            with self._lock:
                working = list(self._working.values())
            for context in working:
                try:
                    self.renew(context)
                except Exception as exc:  # noqa: BLE001 - tried again on the next beat, within the lease
                    logger.warning("jobs: cannot renew the lease of job %s: %s", context.id, exc)
        # stopping: the workers' functions see it and stop; their leases need renewing until they do
        while any(thread.is_alive() for thread in self._threads if thread is not threading.current_thread()):
            with self._lock:
                working = list(self._working.values())
            for context in working:
                try:
                    self.renew(context)
                except Exception:  # noqa: BLE001
                    pass
            time.sleep(min(self.lease / 3, 0.5))
