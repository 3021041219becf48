"""Storage faults: the database cannot take a request now, and the API says so.

A store raises :class:`StorageFault` (never a driver's own exception) when
the storage, not the request, is the problem; the app answers it with the
fault's status, ``Retry-After`` and ``{"error": ...}``, and logs it once
per incident (the first fault after a success), not once per request.

* :class:`Unavailable` (503): the database is unreachable, read-only, or
  busy beyond the request's deadline.
* :class:`InsufficientStorage` (507): the disk is full.  507 rather than
  503: the client learns that retrying soon will not help until space is
  freed.
"""

from __future__ import annotations

import logging
import threading

from restkit import Request, Response

__all__ = ["InsufficientStorage", "StorageFault", "Unavailable", "storage_fault"]

logger = logging.getLogger("examples.zoo")


class StorageFault(Exception):
    """The storage cannot serve the request now."""

    status = 503
    retry_after = 1
    incident = "unavailable"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        if retry_after is not None:
            self.retry_after = retry_after


class Unavailable(StorageFault):
    """Unreachable, read-only or busy beyond the deadline: 503."""


class InsufficientStorage(StorageFault):
    """The disk is full: 507."""

    status = 507
    retry_after = 30
    incident = "disk full"


class _Incidents:
    """Which kinds of fault are going on: log the first of each, and its end."""

    def __init__(self) -> None:
        self._open: set[str] = set()
        self._lock = threading.Lock()

    def begin(self, fault: StorageFault) -> bool:
        with self._lock:
            if fault.incident in self._open:
                return False
            self._open.add(fault.incident)
            return True

    def end(self) -> None:
        if self._open:  # PERF(faults): a set read on the hot path, the lock only after a fault
            with self._lock:
                ended, self._open = self._open, set()
            for incident in sorted(ended):
                logger.warning("storage: %s no more", incident)


incidents = _Incidents()


def storage_fault(request: Request, exc: BaseException) -> Response:
    """The error handler for :class:`StorageFault`: its status, ``Retry-After``, one log line per incident."""
    fault = exc if isinstance(exc, StorageFault) else Unavailable(str(exc))
    if incidents.begin(fault):
        logger.error("storage: %s (%s %s): %s; answering %d until it ends", fault.incident, request.method,
                     request.path, fault, fault.status)
    return Response.json({"error": str(fault)}, fault.status, [("Retry-After", str(fault.retry_after))])
