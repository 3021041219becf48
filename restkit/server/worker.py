"""A pre-fork worker's side: its check-ins, its stop, its request budget, and its life from fork to exit.

:mod:`restkit.server.supervisor` forks the workers and watches them; what
runs in a worker after the fork is here, with the channel both sides share:
:class:`Heartbeats`, slots in anonymous shared memory where each worker's
loop writes its last check-in and whether it retires.  A worker loads the
app itself (``load()`` after the fork, so that pools are never shared
across it), runs its startup hooks, serves on the inherited listening
socket until stopped, and exits with :data:`BOOT_FAILED` and a line on the
boot pipe when it cannot start.
"""

from __future__ import annotations

import itertools
import logging
import mmap
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from .loop import Server, WSGIApp
from .serving import redirect_to_https, run_startup_hooks

__all__ = ["BOOT_FAILED", "BootError", "Heartbeats", "RequestBudget", "WorkerLife", "run_worker"]

log = logging.getLogger("restkit.server")

BOOT_FAILED = 3  # a worker's exit status when it cannot load the app or build its server
_SLOT = struct.Struct("dd")  # last check-in (time.monotonic()), and when the worker began to retire (0.0: not)


class BootError(Exception):
    """The app cannot be loaded; the message is one line for the operator."""


class Heartbeats:
    """Per slot, a worker's last check-in and whether it retires, in anonymous shared memory.

    Workers write, the supervisor reads.  An aligned 8-byte store is one
    instruction on the platforms Python runs on, so a read sees an old or a
    new stamp, never half of each.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._map = mmap.mmap(-1, slots * _SLOT.size)  # MAP_SHARED: forked workers write to the same pages

    def beat(self, slot: int) -> None:
        struct.pack_into("d", self._map, slot * _SLOT.size, time.monotonic())

    def retire(self, slot: int) -> None:
        """Say that this worker takes no new connections (its replacement may start)."""
        struct.pack_into("d", self._map, slot * _SLOT.size + 8, time.monotonic())

    def last(self, slot: int) -> float:
        """The slot's last check-in (0.0: none since :meth:`clear`)."""
        return float(_SLOT.unpack_from(self._map, slot * _SLOT.size)[0])

    def retiring(self, slot: int) -> bool:
        return bool(_SLOT.unpack_from(self._map, slot * _SLOT.size)[1])

    def clear(self, slot: int) -> None:
        _SLOT.pack_into(self._map, slot * _SLOT.size, 0.0, 0.0)

    def close(self) -> None:
        self._map.close()


class WorkerLife:
    """A worker's check-ins and stop, driven by its event loop's ticks.

    A stop has two steps so that no connection waiting in the shared queue
    is dropped: :meth:`retire` stops accepting at once (with
    ``max_connections`` 0 the loop unregisters the listener before its next
    accept); the next tick begins the graceful stop, which closes idle
    connections, by when any connection accepted before has been read.
    """

    def __init__(self, beats: Heartbeats, slot: int, supervisor: int) -> None:
        self.beats, self.slot, self.supervisor = beats, slot, supervisor
        self.server: Server | None = None
        self.retiring = False
        self.draining = False

    def retire(self) -> None:
        """Stop accepting now and drain from the next tick (safe from a signal handler or a thread)."""
        if self.server is not None:
            self.server.max_connections = 0
        if not self.retiring:
            self.retiring = True
            self.beats.retire(self.slot)

    def tick(self) -> None:
        self.beats.beat(self.slot)
        if os.getppid() != self.supervisor and not self.retiring:
            log.error("worker %d: the supervisor is gone; stopping", os.getpid())
            self.retire()
        if self.retiring and not self.draining and self.server is not None:
            self.draining = True
            self.server.begin_shutdown()

    def on_signal(self, signum: int, frame: Any) -> None:
        """SIGTERM: stop gracefully; SIGUSR1: drain, then stop gracefully; SIGQUIT: cut every connection now."""
        if signum == signal.SIGQUIT and self.server is not None:
            self.server.stop_now()
        elif signum == signal.SIGUSR1 and self.server is not None:
            self.server.begin_shutdown()  # the listener stays open for the server's `drain` seconds
        else:
            self.retire()


class RequestBudget:
    """The app, counting its requests: at ``limit`` the worker retires (``max_requests``)."""

    def __init__(self, app: WSGIApp, limit: int, spent: Callable[[], None]) -> None:
        self._app, self._limit, self._spent = app, limit, spent
        self._count = itertools.count(1)  # next() on it is atomic under the GIL: threads share it

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if next(self._count) == self._limit:
            self._spent()
        return self._app(environ, start_response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)  # what the server looks up on the app (shutdown_hooks)


def run_worker(load: Callable[[], WSGIApp], listener: socket.socket, options: dict[str, Any], life: WorkerLife,
                limit: int, boot_w: int, blocked: set[int | signal.Signals]) -> NoReturn:
    """The forked child: serve until stopped, then exit; never return into the supervisor's code."""
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        # The supervisor decides (Ctrl-C reaches the whole group); and
        # SIGQUIT's default would dump core in a worker still booting.
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        status = _serve_worker(load, listener, options, life, limit, boot_w)
    except BaseException:
        log.exception("worker %d failed", os.getpid())
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)


def _serve_worker(load: Callable[[], WSGIApp], listener: socket.socket, options: dict[str, Any], life: WorkerLife,
                  limit: int, boot_w: int) -> int:
    options = dict(options)
    redirect_listener = options.pop("redirect_listener", None)
    try:
        app = load()
        run_startup_hooks(app)  # once per worker, after the fork: pools are never shared across it
        if limit:
            app = RequestBudget(app, limit, life.retire)
        server = Server(listener.getsockname()[:2], app, listener=listener, on_tick=life.tick, **options)
    except SystemExit:
        return _report_boot_failure(boot_w, "a startup hook failed (see the line above)")
    except BootError as exc:
        return _report_boot_failure(boot_w, str(exc))
    except Exception as exc:
        log.exception("worker %d cannot start", os.getpid())
        return _report_boot_failure(boot_w, f"{type(exc).__name__}: {exc}")
    server.base_environ["wsgi.multiprocess"] = True
    life.server = server
    plain = None
    if redirect_listener is not None:
        plain = Server(redirect_listener.getsockname()[:2], redirect_to_https(int(listener.getsockname()[1])),
                       listener=redirect_listener, access_log=options.get("access_log", True))
        threading.Thread(target=plain.serve_forever, name="restkit-redirect", daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGQUIT):  # until here SIGTERM's default ends the booting worker
        signal.signal(sig, life.on_signal)
    try:
        server.serve_forever()
    finally:
        if plain is not None:
            plain.shutdown()
            plain.server_close()
        server.server_close()
    return 0


def _report_boot_failure(boot_w: int, reason: str) -> int:
    line = " ".join(reason.split())[:4000] + "\n"  # one write below PIPE_BUF: never interleaved
    try:
        os.write(boot_w, line.encode("utf-8", "replace"))
    except OSError:
        pass
    return BOOT_FAILED
