"""The interface every job store has, and the one rule of claiming they share.

A store keeps :class:`~restkit.jobs.model.JobRecord` rows and offers five
operations; the transitions themselves are the pure functions of
:mod:`restkit.jobs.model`, applied by :meth:`Store.change` under the row's lock,
so the memory, SQLite and PostgreSQL stores behave alike by construction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection

from ..errors import ServiceUnavailable
from .model import RUNNING, JobRecord, claimed

__all__ = ["Change", "Store", "StoreUnavailable", "settle_claim"]

#: A transition of one record: the record to write, or None to leave it as it is.
Change = Callable[[JobRecord], "JobRecord | None"]


class StoreUnavailable(ServiceUnavailable):
    """The job store cannot be reached or written now (down, read-only, locked, its disk full).

    An HTTP error on purpose: raised in a request (``jobs.submit``, the job routes) it is a
    **503** ``{"error": ...}`` with ``Retry-After``, never a 500; runners log it and try again.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(f"the job store is unavailable: {problem}; try again", retry_after=5)


class Store:
    """Where jobs live: implement :meth:`add`, :meth:`get`, :meth:`claim` and :meth:`change`."""

    def __init__(self) -> None:
        self._wake = threading.Condition()

    def add(self, job: JobRecord) -> tuple[JobRecord, bool]:
        """Keep a new job; with a ``key`` already used by a job of its kind, that job instead.

        Returns the job kept and whether it is the new one.
        """
        raise NotImplementedError

    def get(self, id: str) -> JobRecord | None:
        """The job ``id``, or None."""
        raise NotImplementedError

    def claim(self, kinds: Collection[str], owner: str, lease: float, now: float) -> JobRecord | None:
        """Take the oldest claimable job of ``kinds`` (queued and due, or running with its lease run out)."""
        raise NotImplementedError

    def change(self, id: str, change: Change) -> JobRecord | None:
        """Apply ``change`` to the job under its lock; the record written, or None when nothing was."""
        raise NotImplementedError

    def wait(self, timeout: float) -> None:
        """Sleep until a job may be claimable (one was submitted here) or ``timeout`` seconds pass."""
        with self._wake:
            self._wake.wait(timeout)

    def notify(self) -> None:
        """Wake this process's runners waiting in :meth:`wait`."""
        with self._wake:
            self._wake.notify_all()

    def close(self) -> None:
        """Let go of connections; the store may not be used afterwards."""


def settle_claim(candidate: JobRecord, owner: str, lease: float, now: float) -> tuple[JobRecord, bool]:
    """The claimed record and whether ``owner`` now runs it (False: it was settled as cancelled or abandoned)."""
    record = claimed(candidate, owner, lease, now)
    return record, record.status == RUNNING and record.owner == owner
