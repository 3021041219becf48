"""Jobs in an SQLite file: the embedded default, safe for any number of processes on one host.

Every process opens its own connections (after a fork too), in WAL mode, and
takes the write lock with ``BEGIN IMMEDIATE`` before it reads what it changes,
so two runners never claim one job: one waits (up to ``busy_timeout``) while
the other commits, then sees the job taken.  Runners find new jobs by polling
(``Jobs(poll=...)``); a job submitted in the same process wakes them at once.

Several hosts must not share the file (SQLite's locks do not work over network
file systems): use :class:`~restkit.jobs.PostgresStore` there.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from .store import StoreUnavailable
from .store_sql import Execute, SQLStore, schema_script

__all__ = ["SQLiteStore"]


class SQLiteStore(SQLStore):
    """Jobs in the table ``table`` of the SQLite file ``path`` (created when missing).

    Args:
        path: the database file; it may be your app's own database (the jobs get a table of their own).
        table: the table's name.
        busy_timeout: seconds a write waits for another process's write lock before it fails.
        synchronous: SQLite's ``PRAGMA synchronous``: ``"FULL"`` (every commit on disk: a power cut loses
            nothing) or ``"NORMAL"`` (faster; a power cut may lose the last commits, a crashed process never).
    """

    def __init__(self, path: str | os.PathLike[str], *, table: str = "restkit_jobs", busy_timeout: float = 10.0,
                 synchronous: str = "FULL") -> None:
        super().__init__(table)
        if synchronous.upper() not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous={synchronous!r}: use 'FULL' or 'NORMAL'")
        self.path = str(Path(path))
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous.upper()
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._write_lock = threading.Lock()
        self._writer_pid = os.getpid()
        with closing(sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)) as conn:
            # the table when missing (a read-only file with the table already there is fine: reads go on)
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is None:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("BEGIN IMMEDIATE")
                for statement in schema_script(table, "REAL"):
                    conn.execute(statement)
                conn.execute("COMMIT")
        # later connections never create the file: one deleted under a running app stays deleted
        self._uri = f"file:{urllib.parse.quote(os.path.abspath(self.path))}?mode=rw"

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._uri, uri=True, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's connections stay the parent's, never
                # closed here (closing one may checkpoint the parent's WAL): kept, unused, until exit
                self._inherited.extend(self._idle)
                self._pid, self._idle = os.getpid(), []
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = self._open()
            yield conn
        except sqlite3.OperationalError as exc:  # locked past busy_timeout, read-only, disk full, file gone
            raise StoreUnavailable(str(exc)) from exc
        finally:
            if conn is not None:
                if conn.in_transaction:
                    conn.rollback()
                with self._lock:
                    if self._pid == os.getpid():
                        self._idle.append(conn)

    @contextmanager
    def _transaction(self) -> Iterator[Execute]:
        # PERF(jobs-sqlite): this process's writers queue on a Python lock, woken the moment it is
        # free, instead of on SQLite's busy handler, which sleeps 1-100 ms between tries: with two
        # runner threads claiming back to back, request threads submitting through the handler were
        # starved (22 submissions/s; see benchmarks/jobs.py).  Other processes still meet the busy handler.
        with self._writer(), self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")  # the write lock first: what is read is what is changed
            yield conn.execute
            conn.execute("COMMIT")

    def _writer(self) -> threading.Lock:
        with self._lock:
            if self._writer_pid != os.getpid():  # a lock held by a thread of the parent is never released here
                self._writer_pid, self._write_lock = os.getpid(), threading.Lock()
            return self._write_lock

    @contextmanager
    def _read(self) -> Iterator[Execute]:
        with self._connection() as conn:
            yield conn.execute

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
