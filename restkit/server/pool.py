"""Worker threads that run apps, started on demand and reused."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Pool"]

error_logger = logging.getLogger("restkit.server")


class Pool:
    """Worker threads, started on demand up to ``size`` and reused.

    A job that becomes a long stream calls :meth:`detach`: its thread stops
    counting against ``size`` and ends with the job, and another thread
    may start, so streams never starve short requests.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: deque[Callable[[], None] | None] = deque()
        self._ready = threading.Semaphore(0)  # one permit per queued job
        self._idle = threading.Semaphore(0)  # one permit per idle worker
        self._lock = threading.Lock()
        self._pooled = 0
        self._serial = 0
        self._threads: set[threading.Thread] = set()
        self._detached: set[int] = set()

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.append(job)
        self._ready.release()
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._pooled < self._size:
                    self._start()

    @property
    def busy(self) -> int:
        """Non-zero when jobs are waiting for a worker."""
        return len(self._jobs)

    def detach(self) -> None:
        """Take the calling worker out of the pool for the rest of its job."""
        with self._lock:
            ident = threading.get_ident()
            if ident in self._detached:
                return
            self._detached.add(ident)
            self._pooled -= 1
            if self._jobs:
                self._start()

    def _start(self) -> None:
        self._pooled += 1
        self._serial += 1
        thread = threading.Thread(target=self._work, name=f"restkit-worker-{self._serial}", daemon=True)
        self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        ident = threading.get_ident()
        while True:
            self._ready.acquire()
            job = self._jobs.popleft()
            if job is None:
                break
            try:
                job()
            except Exception:  # a job must never kill its worker
                error_logger.exception("unexpected error in a worker thread")
            del job
            if ident in self._detached:
                break
            self._idle.release()
        with self._lock:
            self._detached.discard(ident)
            self._threads.discard(threading.current_thread())

    def close(self, timeout: float) -> None:
        """Stop the pooled workers and wait up to ``timeout`` for every thread."""
        with self._lock:
            threads, count = list(self._threads), self._pooled
        for _ in range(count):
            self._jobs.append(None)
            self._ready.release()
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
