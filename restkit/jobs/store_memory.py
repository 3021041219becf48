"""Jobs in this process's memory: for tests and for work that may be lost with the process."""

from __future__ import annotations

import threading
from collections.abc import Collection

from .model import QUEUED, RUNNING, JobRecord
from .store import Change, Store, settle_claim

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """A dict of records under one lock.

    Per process: under ``--workers N`` or gunicorn every worker has its own
    queue, and a job submitted to one is run and seen by that one alone; a
    restart loses them all.  Use :class:`~restkit.jobs.SQLiteStore` or
    :class:`~restkit.jobs.PostgresStore` to share jobs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._jobs: dict[str, JobRecord] = {}
        self._keys: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def add(self, job: JobRecord) -> tuple[JobRecord, bool]:
        with self._lock:
            if job.key is not None:
                existing = self._keys.get((job.kind, job.key))
                if existing is not None:
                    return self._jobs[existing], False
                self._keys[(job.kind, job.key)] = job.id
            self._jobs[job.id] = job
        self.notify()
        return job, True

    def get(self, id: str) -> JobRecord | None:
        return self._jobs.get(id)

    def claim(self, kinds: Collection[str], owner: str, lease: float, now: float) -> JobRecord | None:
        with self._lock:
            while True:
                due = [job for job in self._jobs.values() if job.kind in kinds and (
                    (job.status == QUEUED and job.run_after <= now)
                    or (job.status == RUNNING and job.lease_until is not None and job.lease_until < now))]
                if not due:
                    return None
                record, ours = settle_claim(min(due, key=lambda job: job.run_after), owner, lease, now)
                self._jobs[record.id] = record
                if ours:
                    return record

    def change(self, id: str, change: Change) -> JobRecord | None:
        with self._lock:
            job = self._jobs.get(id)
            record = None if job is None else change(job)
            if record is not None:
                self._jobs[id] = record
        if record is not None and record.status == QUEUED:
            self.notify()  # queued again (a retry, a release): a runner may take it
        return record
