"""Several processes, one total: each writes its figures to a file of its own in a shared directory.

Theory of operation
-------------------
A process that serves joins the directory once (:meth:`SharedDirectory.join`):
it picks a token (``<pid>-<random>``) and holds an exclusive ``flock`` on
``<token>.lock`` for as long as it lives.  The kernel drops that lock when
the process dies, however it dies (``kill -9`` included), so a lock that
another process can take is the sign of a dead owner, immune to pid reuse.
The lock file is made under a temporary name, locked, then renamed, so
nobody sees it unlocked.  A forked child closes its copy of the descriptor
(:meth:`forget`) and joins on its own.

Every ``interval`` seconds, and when it stops, a process writes its samples
to ``<token>.json`` (write to a temporary file, then ``os.replace``: a
reader sees the old file or the new, never half of one).

A scrape (:meth:`SharedDirectory.collect`), in whichever process gets it:

1. under ``merge.lock``, folds every dead process: adds its counters to
   ``archive.json`` (and notes its token there, so that a scraper that
   dies half-way never adds them twice), then deletes its two files.  Its
   gauges are dropped with it.  So sums of counters never go down when a
   worker dies, and its gauges vanish;
2. adds up the archive's counters, every live process's file, and its own
   samples (fresher than its file).  Gauges are summed over the live
   processes (or the smallest taken, see :data:`exposition.COMBINE`).

What a process counted since its last write is lost if it is killed: at
most ``interval`` seconds of it.  The directory must be on a local file
system (``flock``) and belong to one service on one machine; its archive
outlives the processes, so a restarted service goes on from its totals
(empty the directory at deploy time to start from zero).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from .exposition import COMBINE, Labels, Samples, merge_into

__all__ = ["SharedDirectory"]

ARCHIVE = "archive.json"
MERGE_LOCK = "merge.lock"


def _dump(samples: Samples) -> list[list[Any]]:
    return [[name, [list(pair) for pair in labels], value] for (name, labels), value in samples.items()]


def _load(rows: Any) -> Samples:
    loaded: Samples = {}
    for name, labels, value in rows:
        key: tuple[str, Labels] = (str(name), tuple((str(k), str(v)) for k, v in labels))
        loaded[key] = float(value)
    return loaded


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError):  # gone meanwhile, or not ours
        return None


def _write_json(path: Path, data: Any) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(data, file, separators=(",", ":"))
    os.replace(temporary, path)


class SharedDirectory:
    """This process's place in a directory that several processes of one service share."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import fcntl  # noqa: F401  (PERF(lazy-import); and fails early where there is no flock)

        self.path = Path(path)
        self.token: str | None = None
        self._lock_fd = -1
        # the writer thread, a scrape and (while stopping) request threads may join or write at once
        self._mutex = threading.Lock()

    # -- this process --------------------------------------------------------------------

    def join(self) -> None:
        """Make and lock this process's ``<token>.lock`` (idempotent)."""

        with self._mutex:
            if self.token is None:
                self._join()

    def _join(self) -> None:
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        temporary = self.path / f".{token}.lock.tmp"
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(temporary, self.path / f"{token}.lock")
        self._lock_fd, self.token = fd, token

    def forget(self) -> None:
        """In a forked child: drop the parent's lock descriptor (the parent keeps its lock) and token."""
        if self._lock_fd >= 0:
            try:
                os.close(self._lock_fd)
            except OSError:
                pass
        self._lock_fd, self.token = -1, None
        self._mutex = threading.Lock()  # the parent's may have been held by a thread the child does not have

    def write(self, counters: Samples, gauges: Samples) -> None:
        """Replace this process's file with these samples."""
        self.join()
        with self._mutex:
            _write_json(self.path / f"{self.token}.json",
                        {"pid": os.getpid(), "counters": _dump(counters), "gauges": _dump(gauges)})

    # -- a scrape ------------------------------------------------------------------------

    def collect(self, counters: Samples, gauges: Samples) -> tuple[Samples, Samples, int]:
        """The service's counters and gauges: this process's (given), the live others', the dead's counters.

        Returns the counters, the gauges and how many processes are live.
        """
        import fcntl

        self.join()
        total_counters: Samples = dict(counters)
        total_gauges: Samples = dict(gauges)
        live = 1
        # The whole read under the lock: another scraper's fold between our
        # fold and our reads would make a dead process's counts vanish from
        # this answer (in neither the archive we read nor the files).
        with open(self.path / MERGE_LOCK, "a") as merge_lock:
            fcntl.flock(merge_lock.fileno(), fcntl.LOCK_EX)
            merge_into(total_counters, self._fold_dead().items(), COMBINE)
            for token in self._tokens():
                data = _read_json(self.path / f"{token}.json")
                if not isinstance(data, dict):
                    continue  # a process that has not written yet
                try:
                    merge_into(total_counters, _load(data["counters"]).items(), COMBINE)
                    merge_into(total_gauges, _load(data["gauges"]).items(), COMBINE)
                except (KeyError, TypeError, ValueError):
                    continue
                live += 1
        return total_counters, total_gauges, live

    def _tokens(self) -> list[str]:
        """The tokens of the other processes that joined (and are not folded yet)."""
        tokens = []
        for lock in self.path.glob("*.lock"):
            if lock.name != MERGE_LOCK and lock.name[: -len(".lock")] != self.token:
                tokens.append(lock.name[: -len(".lock")])
        return tokens

    def _fold_dead(self) -> Samples:
        """Fold the files of dead processes into the archive; the archive's counters.

        The caller holds ``merge.lock``.
        """
        import fcntl

        archive_path = self.path / ARCHIVE
        stored = _read_json(archive_path)
        archived = _load(stored["counters"]) if isinstance(stored, dict) else {}
        folded = set(stored.get("folded", ())) if isinstance(stored, dict) else set()
        dead = []
        for token in self._tokens():
            try:
                fd = os.open(self.path / f"{token}.lock", os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its owner lives
            finally:
                os.close(fd)
            dead.append(token)
        if not dead:
            return archived
        for token in dead:
            if token in folded:
                continue  # added by an earlier fold that did not get to delete its files
            data = _read_json(self.path / f"{token}.json")
            if isinstance(data, dict):
                try:
                    merge_into(archived, _load(data["counters"]).items(), {})
                except (KeyError, TypeError, ValueError):
                    pass
            folded.add(token)
        # First the archive (naming what it holds), then the files: a crash between the two counts nothing twice.
        _write_json(archive_path, {"counters": _dump(archived), "folded": sorted(folded)})
        for token in dead:
            # its two files, and a half-written file of a process killed while writing
            for path in [self.path / f"{token}.json", self.path / f"{token}.lock",
                         *self.path.glob(f".{token}.json.*.tmp")]:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        _write_json(archive_path, {"counters": _dump(archived), "folded": []})  # their files are gone
        return archived
