"""Which thread runs the event loop: the loop runs quick requests itself, and moves when one holds it.

Why: the server is CPU-bound Python, and every hand-off of a request from
the loop to a worker thread, and back, is a contended GIL and a futex
wake-up on each side.  Measured with a JSON handler at 64 connections,
about half of the process's CPU time went to switching threads, not to
serving.  So the loop's thread calls the app itself (``run_inline``), the
way a single-threaded event-loop server does, and no thread is switched
for a request that finishes at once.

A request that does not finish at once (a slow database, a stream that
waits for its next item) must not hold every other connection, so a
*watchdog* thread looks every ``patience / 2`` seconds: when the app has
held the loop's thread for ``patience`` seconds, it starts a new thread
that takes the loop over, and the old one finishes its request as a plain
worker and then ends.  A stream says so at once (``hand_over``: no wait).
After a take-over by the watchdog the next ``cooldown`` requests go to the worker pool as
before, so an app whose requests are all slow costs the others a stall of
at most ``patience`` once in ``cooldown`` requests, not at each one.

Ownership stays single: the loop's state is only ever touched by the
thread that currently runs the loop.  The hand-over is decided under one
lock, which the inline thread also takes when its request ends, so exactly
one of them wins: either the request ended first (the loop stays), or the
watchdog moved the loop (the old thread then leaves the loop's code at
once, by :class:`LoopMoved`, without touching its state again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["LoopMoved", "Relay"]

error_logger = logging.getLogger("restkit.server")

PATIENCE = 0.01  # seconds an app may hold the loop's thread before the loop moves
COOLDOWN = 128  # requests that go to the worker pool after a take-over


class LoopMoved(BaseException):
    """Raised in the thread that ran a request inline while the loop moved to another thread.

    A BaseException, so that no ``except Exception`` on the way out catches it:
    the thread must leave the loop's code untouched.
    """


class Relay:
    """Runs jobs in the loop's thread and moves the loop to a new thread when one takes too long.

    Args:
        run_loop: the loop's body, run in each new loop thread until the loop
            ends or moves again.
        patience: seconds a job may hold the loop before the loop moves.
        cooldown: jobs after a take-over that the caller should send to the pool.
    """

    def __init__(self, run_loop: Callable[[], None], *, patience: float = PATIENCE, cooldown: int = COOLDOWN) -> None:
        self._run_loop = run_loop
        self.patience = patience
        self._cooldown = cooldown
        self.pool_turns = 0  # jobs the loop should still send to the pool (after a take-over)
        self._lock = threading.Lock()
        # The job running inline: (when it began, its thread's ident); None when
        # none runs, or when the loop moved away from it (the job then ends as a worker).
        self._job: tuple[float, int] | None = None
        self._serial = 0
        self._threads: set[threading.Thread] = set()
        self.takeovers = 0  # how often the loop moved (for tests and metrics)

    def run_inline(self, job: Callable[[], None]) -> bool:
        """Run ``job`` in this (the loop's) thread; False when the loop moved to another thread meanwhile."""
        token = self._job = (time.monotonic(), threading.get_ident())
        try:
            job()
        except Exception:  # a job must never kill the loop's thread
            error_logger.exception("unexpected error serving a request")
        with self._lock:
            stayed = self._job is token
            if stayed:
                self._job = None
        return stayed

    def inline_here(self) -> bool:
        """True in the loop's thread while it runs a job inline."""
        job = self._job
        return job is not None and job[1] == threading.get_ident()

    def hand_over(self) -> None:
        """The job running inline will be long (a stream): move the loop now, without waiting for the watchdog."""
        with self._lock:
            job = self._job
            if job is None or job[1] != threading.get_ident():
                return
            self._job = None
            self.takeovers += 1
        self._start_loop_thread()

    def watch(self, finished: threading.Event) -> None:
        """The watchdog: move the loop when a job has held it ``patience`` seconds (runs until ``finished``)."""
        tick = self.patience / 2
        while not finished.is_set():
            time.sleep(tick)
            job = self._job
            if job is None or time.monotonic() - job[0] < self.patience:
                continue  # PERF: the usual tick decides without the lock
            with self._lock:
                if self._job is not job:
                    continue  # it ended (or another began) meanwhile
                self._job = None
                # set before the new loop thread starts, which reads it; the old one no longer does
                self.pool_turns = self._cooldown
                self.takeovers += 1
            if not finished.is_set():
                self._start_loop_thread()

    def start(self) -> None:
        """Start the loop in a thread of its own."""
        self._start_loop_thread()

    def _start_loop_thread(self) -> None:
        self._serial += 1
        thread = threading.Thread(target=self._loop_thread, name=f"restkit-loop-{self._serial}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _loop_thread(self) -> None:
        try:
            self._run_loop()
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the threads the loop moved to (and their last jobs)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
