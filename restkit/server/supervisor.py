"""Pre-fork workers: one listening socket, N processes accepting from it, and a supervisor that keeps N alive.

Theory of operation
-------------------
The supervisor binds the listening socket once and forks the workers, which
inherit it: every worker runs its own :class:`~restkit.server.Server` (event
loop, threads) on that one socket and ``accept()``s from its one queue.  The
supervisor itself serves nothing and imports nothing of the app.

Why not ``SO_REUSEPORT`` with a socket per worker: the kernel then splits
new connections between per-socket queues, and the queue of a worker that
dies dies with it, resetting the clients waiting there.  With one shared
socket a client waits in the queue until some worker takes it; a worker's
death loses only the connections it had accepted.

Each worker is loaded after the fork: ``load()`` runs in the worker, so the
command line's supervisor, which passes a loader that imports the app's
module, picks up new code when it starts new workers (SIGHUP).  ``serve(app,
workers=N)`` passes an app object that was imported before the fork: the
workers share it as it was then (copy on write), and a SIGHUP restarts them
with that same code.  Everything an app keeps in memory (caches, counters,
connection pools, rate limits) is per worker.

Liveness: each worker's event loop writes ``time.monotonic()`` (system-wide
on Linux) into its slot of an anonymous shared ``mmap`` at every sweep; the
supervisor SIGKILLs a worker whose slot is older than ``worker_timeout``.

Workers stop gracefully in two steps, so that no client that reached the
accept queue is dropped: on SIGTERM (or after ``max_requests``) a worker
stops accepting at once, and from its loop's next tick it drains like a
single server: requests and streams in flight get ``grace`` seconds.  A
worker that retires on its own says so in its slot, so that its
replacement starts while it drains.  When the supervisor itself stops
(SIGINT, SIGTERM) and the server has a ``drain`` period, it sends SIGUSR1
instead: the worker keeps accepting and serving for ``drain`` seconds with
``stopping`` set (readiness checks answer 503), then stops as above; its
kill deadline is ``drain`` seconds later.  Reloads and retirements do not
drain: the other workers stay ready.  SIGQUIT makes a worker cut its
connections at once (the supervisor's second SIGINT or SIGTERM).

What runs in a worker after the fork is :mod:`restkit.server.worker`.

The supervisor's loop: wait for a signal or a tick, take the exits of
workers (restart with backoff, or stop on a boot failure), kill workers that
stopped checking in or that outlive their stop, start the missing ones, and
finish a reload once every new worker has checked in.
"""

from __future__ import annotations

import logging
import os
import random
import select
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .loop import WSGIApp
from .sockets import listen, raise_descriptor_limit
from .worker import BOOT_FAILED, BootError, Heartbeats, WorkerLife, run_worker

__all__ = ["BootError", "WorkerPlan", "supervise", "worker_count"]

log = logging.getLogger("restkit.server")


FIRST_DELAY = 0.1  # seconds before restarting after a crash; doubles with each crash...
MAX_DELAY = 10.0  # ...up to this
STABLE_AFTER = 10.0  # a crash of a worker that lived this long starts the backoff over
STOP_MARGIN = 5.0  # seconds beyond `grace` a stopping worker gets before SIGKILL
TICK = 0.1  # the supervisor's loop wakes at least this often
# A reload runs the old and the new workers side by side, and a reload
# overtaken by another leaves workers still draining: room for all of them.
SLOTS_PER_WORKER = 4
_CAUGHT = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers, and when one is replaced.

    Args:
        workers: processes; 0 means one per core (see :func:`worker_count`).
        worker_timeout: seconds a worker's loop may go without checking in before it is killed.
        max_requests: a worker stops gracefully after about this many requests (0: never).
        max_requests_jitter: up to this many more, drawn per worker, so workers do not all stop at once.
    """

    workers: int = 1
    worker_timeout: float = 30.0
    max_requests: int = 0
    max_requests_jitter: int = 0

    def __post_init__(self) -> None:
        if self.workers < 0 or not self.worker_timeout > 0 or self.max_requests < 0 or self.max_requests_jitter < 0:
            raise ValueError("workers, max_requests and max_requests_jitter must be >= 0, worker_timeout > 0")


def worker_count(requested: int) -> int:
    """``requested``, or for 0 the cores this process may run on."""
    if requested > 0:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class Worker:
    """A forked worker as the supervisor sees it."""

    pid: int
    slot: int
    generation: int  # bumped by each SIGHUP
    born: float  # time.monotonic() at the fork
    deadline: float | None = None  # set once it stops (told to, or on its own): SIGKILL after it
    killed: bool = False  # SIGKILL sent


def supervise(load: Callable[[], WSGIApp], address: tuple[str, int], options: Mapping[str, Any],
              plan: WorkerPlan) -> int:
    """Bind ``address``, run ``plan.workers`` processes serving ``load()``; return when stopped.

    Runs until SIGINT or SIGTERM (graceful; a second one stops at once);
    SIGHUP replaces every worker without dropping a request.  Must run in
    the main thread (it handles signals).

    Args:
        load: called in each worker after the fork; raise :class:`BootError` (or
            anything) when the app cannot be loaded.
        address: ``(host, port)`` to listen on.
        options: keyword options of :class:`~restkit.server.Server`.
        plan: how many workers and when to replace them.

    Returns:
        0 after a stop; 1 when a worker could not load the app (one line on standard error says why).

    Raises:
        OSError: the address cannot be bound.
    """
    raise_descriptor_limit()
    options = dict(options)
    redirect_port = options.pop("redirect_http", None)
    listener = listen(address)
    if redirect_port is not None:  # the workers share the plain-HTTP redirect's socket too
        options["redirect_listener"] = listen((address[0], redirect_port))
    try:
        return _Supervisor(load, listener, options, plan).run()
    finally:
        listener.close()
        if redirect_port is not None:
            options["redirect_listener"].close()


class _Supervisor:
    """The supervisor's state; :meth:`run` is its loop."""

    def __init__(self, load: Callable[[], WSGIApp], listener: socket.socket, options: dict[str, Any],
                 plan: WorkerPlan) -> None:
        self.load, self.listener, self.options, self.plan = load, listener, options, plan
        self.count = worker_count(plan.workers)
        self.grace = float(options.get("grace", 10.0))
        self.drain = float(options.get("drain", 0.0))
        self.beats = Heartbeats(self.count * SLOTS_PER_WORKER)
        self.workers: dict[int, Worker] = {}
        self.generation = 1  # the generation being started (SIGHUP: a new one)
        self.serving = 1  # the last generation that was fully up
        self.delay = 0.0  # the current crash backoff
        self.next_start = 0.0  # no worker starts before this (monotonic)
        self.stopping = False
        self.announced = False
        self.failure: str | None = None  # why a worker could not boot, when that ends the supervisor
        self.pending: deque[int] = deque()  # signals caught, not yet handled
        self.random = random.Random()
        self.pid = os.getpid()
        self.wake_r, self.wake_w = os.pipe()
        self.boot_r, self.boot_w = os.pipe()  # a worker that cannot boot says why here (one short write)
        for fd in (self.wake_r, self.wake_w, self.boot_r):
            os.set_blocking(fd, False)

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        restore = self._catch_signals()
        try:
            while True:
                self._wait()
                while self.pending:  # popleft, not a copy and a clear: a signal may arrive between the two
                    self._on_signal(self.pending.popleft())
                now = time.monotonic()
                self._reap(now)
                if not self.stopping:
                    self._check_in(now)
                    self._start_missing(now)
                    self._finish_reload()
                self._kill_overdue(now)
                if self.stopping and not self.workers:
                    break
        finally:
            for worker in self.workers.values():
                _kill(worker.pid, signal.SIGKILL)
                _wait_for(worker.pid)
            restore()
            for fd in (self.wake_r, self.wake_w, self.boot_r, self.boot_w):
                os.close(fd)
            self.beats.close()
        if self.failure is not None:
            print(f"restkit: a worker failed to boot: {self.failure}", file=sys.stderr, flush=True)
            return 1
        print("restkit: stopped", file=sys.stderr, flush=True)
        return 0

    def _catch_signals(self) -> Callable[[], None]:
        def record(signum: int, frame: Any) -> None:
            self.pending.append(signum)  # handled by the loop; the wakeup fd wakes it

        previous = {sig: signal.signal(sig, record) for sig in _CAUGHT}
        previous_fd = signal.set_wakeup_fd(self.wake_w)

        def restore() -> None:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _wait(self) -> None:
        select.select([self.wake_r], [], [], TICK)
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP and not self.stopping:
            self._reload()
        elif signum in (signal.SIGINT, signal.SIGTERM):
            if self.stopping:
                self._stop_now()
            else:
                self._stop_all()

    # -- starting workers -------------------------------------------------------------

    def _start_missing(self, now: float) -> None:
        if now < self.next_start:
            return
        running = sum(1 for w in self.workers.values() if w.generation == self.generation and w.deadline is None)
        for _ in range(self.count - running):
            if not self._start(now):
                break
        if not self.announced and self.serving == self.generation and self._all_up(self.generation):
            self.announced = True
            print(f"restkit: serving on {self._url()} with {self.count} workers "
                  f"(supervisor pid {self.pid}; Ctrl-C to stop, SIGHUP to reload)", file=sys.stderr, flush=True)

    def _start(self, now: float) -> bool:
        """Fork one worker of the current generation; False when no heartbeat slot is free yet."""
        used = {w.slot for w in self.workers.values()}
        slot = next((s for s in range(self.beats.slots) if s not in used), None)
        if slot is None:
            return False  # workers still draining hold them; they exit by their deadline
        self.beats.clear(slot)
        limit = 0
        if self.plan.max_requests:
            limit = self.plan.max_requests + self.random.randint(0, self.plan.max_requests_jitter)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # else the worker would write the supervisor's buffered output again
        # Signals wait until the child has put its own handlers in place of
        # the supervisor's (which would only record them in its copy).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _CAUGHT)
        try:
            pid = os.fork()
            if pid == 0:
                os.close(self.wake_r)
                os.close(self.wake_w)
                os.close(self.boot_r)
                run_worker(self.load, self.listener, self.options, WorkerLife(self.beats, slot, self.pid), limit,
                            self.boot_w, blocked)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self.workers[pid] = Worker(pid, slot, self.generation, now)
        log.info("started worker %d", pid)
        return True

    def _all_up(self, generation: int) -> bool:
        """Every worker of ``generation`` is running and has checked in since it started."""
        current = [w for w in self.workers.values() if w.generation == generation and w.deadline is None]
        return len(current) >= self.count and all(self.beats.last(w.slot) >= w.born for w in current)

    # -- reload and stop --------------------------------------------------------------

    def _reload(self) -> None:
        self.generation += 1
        for worker in self.workers.values():
            if self.serving < worker.generation < self.generation:  # a reload this one overtakes
                self._stop(worker)
        log.info("reloading: starting %d new workers; the old ones stop once they all answer", self.count)

    def _finish_reload(self) -> None:
        if self.serving == self.generation or not self._all_up(self.generation):
            return
        for worker in self.workers.values():
            if worker.generation != self.generation:
                self._stop(worker)
        self.serving = self.generation
        log.info("reloaded: %d new workers answer; the old ones finish their requests", self.count)

    def _stop(self, worker: Worker, *, drain: float = 0.0) -> None:
        """Tell ``worker`` to stop gracefully (once), after serving ``drain`` seconds more (SIGUSR1)."""
        if worker.deadline is None:
            worker.deadline = time.monotonic() + drain + self.grace + STOP_MARGIN
            _kill(worker.pid, signal.SIGUSR1 if drain else signal.SIGTERM)

    def _stop_all(self) -> None:
        self.stopping = True
        draining = f"draining for {self.drain:g} s, then " if self.drain else ""
        print(f"restkit: stopping ({draining}up to {self.grace:g} s for requests in flight; again to stop now)",
              file=sys.stderr, flush=True)
        for worker in self.workers.values():
            self._stop(worker, drain=self.drain)

    def _stop_now(self) -> None:
        """A second SIGINT or SIGTERM: workers cut their connections (SIGQUIT), or are killed soon."""
        soon = time.monotonic() + 1.0
        for worker in self.workers.values():
            _kill(worker.pid, signal.SIGQUIT)
            worker.deadline = min(worker.deadline or soon, soon)

    # -- exits, timeouts --------------------------------------------------------------

    def _reap(self, now: float) -> None:
        for worker in list(self.workers.values()):
            status = _wait_for(worker.pid, block=False)
            if status is not None:
                del self.workers[worker.pid]
                self._exited(worker, status, now)

    def _exited(self, worker: Worker, code: int, now: float) -> None:
        how = _describe(code)
        if worker.deadline is not None:  # told to stop
            log.info("worker %d stopped (%s)", worker.pid, how)
            return
        if code == BOOT_FAILED:
            self._boot_failed(worker)
            return
        if code == 0:  # it stopped on its own (its max requests) before the supervisor saw it retire
            log.info("worker %d exited with status 0; starting another", worker.pid)
            return
        lived = now - worker.born
        self.delay = FIRST_DELAY if self.delay == 0 or lived >= STABLE_AFTER else min(self.delay * 2, MAX_DELAY)
        self.next_start = max(self.next_start, now + self.delay)
        log.error("worker %d exited with %s; restarting in %.1f s", worker.pid, how, self.next_start - now)

    def _boot_failed(self, worker: Worker) -> None:
        """A worker could not load the app: undo a reload if old workers still serve, else stop."""
        reason = _first_line(self.boot_r) or f"worker {worker.pid} exited with status {BOOT_FAILED}"
        serving = [w for w in self.workers.values() if w.generation == self.serving and w.deadline is None]
        if worker.generation > self.serving and serving:
            log.error("reload failed, the running workers stay: a new worker could not load the app: %s", reason)
            for other in self.workers.values():
                if other.generation > self.serving:
                    self._stop(other)
            self.generation = self.serving
            return
        self.failure = reason
        self.stopping = True
        for other in self.workers.values():
            self._stop(other)

    def _check_in(self, now: float) -> None:
        """Replace the workers that retire on their own; kill those silent for ``worker_timeout``."""
        for worker in self.workers.values():
            if worker.deadline is not None or worker.killed:
                continue
            if self.beats.retiring(worker.slot):  # its max requests: it drains, another starts now
                log.info("worker %d reached its max requests; starting another", worker.pid)
                worker.deadline = now + self.grace + STOP_MARGIN
                continue
            silent = now - max(self.beats.last(worker.slot), worker.born)
            if silent > self.plan.worker_timeout:
                log.error("worker %d has not checked in for %.1f s (worker timeout %g s); killing it",
                          worker.pid, silent, self.plan.worker_timeout)
                worker.killed = True
                _kill(worker.pid, signal.SIGKILL)

    def _kill_overdue(self, now: float) -> None:
        for worker in self.workers.values():
            if worker.deadline is not None and now >= worker.deadline and not worker.killed:
                log.error("worker %d did not stop in time; killing it", worker.pid)
                worker.killed = True
                _kill(worker.pid, signal.SIGKILL)

    def _url(self) -> str:
        host, port = self.listener.getsockname()[:2]
        tls = self.options.get("certfile") is not None or self.options.get("ssl_context") is not None
        return f"{'https' if tls else 'http'}://{f'[{host}]' if ':' in host else host}:{port}"


# -- helpers ------------------------------------------------------------------------------


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:  # exited meanwhile: reaped on the next pass
        pass


def _wait_for(pid: int, *, block: bool = True) -> int | None:
    """The exit code of child ``pid`` (negative: killed by that signal), or None while it runs."""
    try:
        reaped, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:  # reaped by someone else: nothing more to learn
        return 0
    return os.waitstatus_to_exitcode(status) if reaped else None


def _describe(code: int) -> str:
    """An exit code as ``status 1`` or ``signal SIGKILL``."""
    if code >= 0:
        return f"status {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


def _first_line(fd: int) -> str:
    """The first line waiting in the non-blocking pipe ``fd`` ("" if none)."""
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return ""
    return data.decode("utf-8", "replace").partition("\n")[0]
