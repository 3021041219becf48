"""Storage faults: the database cannot take a request now, and the API says so.

A store raises :class:`StorageFault` (never a driver's own exception) when
the storage, not the request, is the problem.  A fault is data: its
``status``, ``retry_after`` and message, which the HTTP layer renders
(``app.py``: the status, ``Retry-After`` and ``{"error": ...}``); nothing here
knows HTTP.  Each is logged once per incident (see :class:`Incidents`; each
store has its own), not once per request.

* :class:`Unavailable` (503): the database is unreachable, read-only, its
  file gone, or busy beyond the request's deadline (counted from the
  request's arrival, so a request that queued for a thread past it is one).
* :class:`InsufficientStorage` (507): the disk is full.  507 rather than
  503: the client learns that retrying soon will not help until space is
  freed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["BUSY", "CANNOT_OPEN", "DISK_FULL", "GONE", "LATE", "READ_ONLY", "UNREACHABLE", "Incidents",
           "InsufficientStorage", "StorageFault", "Unavailable"]

logger = logging.getLogger("examples.zoo")

# what both stores say, whatever their driver raised
READ_ONLY = "the database is read-only; writes are refused until it is writable"
BUSY = "the database is busy; try again"
UNREACHABLE = "the database is unreachable; try again"
LATE = "the server is busy: the request waited past its deadline before it reached the database; try again"
CANNOT_OPEN = "the database cannot be opened; try again"
GONE = "the database file was removed or replaced; the zoo serves nothing until the same file is back"
# not the driver's text: PostgreSQL's names the data file ("could not extend file
# pg_tblspc/..."), which is the log's business, not the client's
DISK_FULL = "the database's disk is full; writes are refused until space is freed"


class StorageFault(Exception):
    """The storage cannot serve the request now."""

    status = 503
    retry_after = 1
    incident = "unavailable"

    def __init__(self, message: str, *, retry_after: int | None = None, incident: str | None = None) -> None:
        super().__init__(message)
        if retry_after is not None:
            self.retry_after = retry_after
        if incident is not None:  # a kind of its own: logged as its own incident
            self.incident = incident


class Unavailable(StorageFault):
    """Unreachable, read-only or busy beyond the deadline: 503."""


class InsufficientStorage(StorageFault):
    """The disk is full: 507."""

    status = 507
    retry_after = 30
    incident = "disk full"


class Incidents:
    """Which kinds of fault are going on: log the first fault of each, and its end.

    An incident ends when a write succeeds ``quiet`` seconds after the last
    fault of its kind, so a disk that is nearly full (a write fits, the next
    does not) is one incident, not one per write.
    """

    def __init__(self, quiet: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self._clock = clock
        self._last: dict[str, float] = {}  # open incident -> time of its latest fault
        self._lock = threading.Lock()

    def begin(self, fault: StorageFault) -> bool:
        """Note a fault; True when it starts a new incident (log it)."""
        with self._lock:
            new = fault.incident not in self._last
            self._last[fault.incident] = self._clock()
            return new

    def going_on(self, kind: str) -> bool:
        """Whether an incident of ``kind`` is open."""
        return kind in self._last

    def end(self) -> None:
        """Note a successful write: close the incidents quiet for long enough."""
        if not self._last:  # PERF(faults): one dict read on the hot path, the lock only during a fault
            return
        now = self._clock()
        with self._lock:
            ended = [kind for kind, last in self._last.items() if now - last >= self.quiet]
            for kind in ended:
                del self._last[kind]
        for kind in sorted(ended):
            logger.warning("storage: %s no more", kind)

    def note(self, fault: StorageFault, where: str) -> None:
        """Note a fault met by ``where`` (``"GET /v1/zoos"``): the first of an incident is logged, with its cause."""
        if self.begin(fault):
            cause = f" ({fault.__cause__})" if fault.__cause__ is not None else ""
            logger.error("storage: %s (%s): %s%s; answering %d until it ends", fault.incident, where, fault, cause,
                         fault.status)
