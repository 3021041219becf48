"""Jobs in PostgreSQL: for several hosts.  Needs psycopg 3 (``pip install 'restkit[postgres]'``), imported on first use.

* **Claiming** selects the oldest due job ``FOR UPDATE SKIP LOCKED``: runners
  on every host take different jobs at once and never wait on each other.
* **Waking.**  Submitting a job (or queueing one again) sends ``NOTIFY`` on a
  channel named after the table, in the same transaction; each process has one
  listening connection (``LISTEN``) that wakes its runners, so a job starts
  within milliseconds on an idle host, and the ``poll`` interval is only the
  fallback (a retry's backoff ending, a lost notification).
* Each process opens its own connections (after a fork too): a small pool of
  at most ``pool_size`` idle connections, plus the listening one.
* The table is created when missing, as the store is made (one short-lived
  connection), under an advisory lock, so instances starting together create it once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .store import StoreUnavailable
from .store_sql import Execute, SQLStore, schema_script

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore"]

logger = logging.getLogger("restkit.jobs")

_SCHEMA_LOCK = 0x5245_4A4F  # pg_advisory_xact_lock key while the table is created ("REJO")


def _problem(exc: Exception) -> str:
    """What a client may read of a driver's error: the kind of fault, not the server's own words."""
    import psycopg  # the optional extra: imported where it is used (see PostgresStore._open)

    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return "the database is read-only"
    if isinstance(exc, psycopg.errors.DiskFull):
        return "the database's disk is full"
    return "the database cannot be reached"


class PostgresStore(SQLStore):
    """Jobs in the table ``table`` of the PostgreSQL database at ``url`` (a libpq connection string or URL).

    Args:
        url: ``postgresql://user@host:port/dbname`` or ``"host=... dbname=..."``.
        table: the table's name (also the ``LISTEN``/``NOTIFY`` channel).
        pool_size: idle connections kept per process.
        connect_timeout: seconds to wait for a connection.
    """

    claim_lock = " FOR UPDATE SKIP LOCKED"
    row_lock = " FOR UPDATE"

    def __init__(self, url: str, *, table: str = "restkit_jobs", pool_size: int = 10, connect_timeout: float = 10.0
                 ) -> None:
        super().__init__(table)
        self.url = url
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection[Any]] = []
        self._inherited: list[Any] = []
        self._pid = os.getpid()
        self._create_table()  # here, once: a database that cannot be reached fails the start, not the first job
        self._listener: threading.Thread | None = None
        self._closing = threading.Event()
        #: set while this process's listening connection is LISTENing (tests wait for it)
        self.listening = threading.Event()

    def _open(self) -> psycopg.Connection[Any]:
        import psycopg  # PERF(lazy-import): an optional extra, needed only by this store

        return psycopg.connect(self.url, connect_timeout=max(1, int(self.connect_timeout)), autocommit=True)

    def _create_table(self) -> None:
        with self._open() as conn:
            row = conn.execute("SELECT to_regclass(%s)", (self.table,)).fetchone()
            if row is not None and row[0] is not None:
                return  # there (a read-only database, a standby: nothing to write)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in schema_script(self.table, "DOUBLE PRECISION"):
                    conn.execute(statement)

    def _fork_check(self) -> None:
        if self._pid != os.getpid():  # forked: the parent's connections are never used (nor closed: that would
            # end the parent's session on the shared socket) here
            self._inherited.extend(self._idle)
            self._pid, self._idle, self._listener = os.getpid(), [], None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        import psycopg  # the optional extra, as in _open

        with self._lock:
            self._fork_check()
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = self._open()
            yield conn
        except (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction) as exc:
            raise StoreUnavailable(_problem(exc)) from exc
        finally:
            if conn is not None:
                with self._lock:
                    keep = (not conn.closed and not conn.broken and self._pid == os.getpid()
                            and len(self._idle) < self.pool_size)
                    if keep:
                        self._idle.append(conn)
                if not keep and self._pid == os.getpid():
                    conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[Execute]:
        with self._connection() as conn, conn.transaction():
            def execute(sql: str, params: Any = ()) -> Any:
                return conn.execute(sql.replace("?", "%s"), params)

            yield execute

    def _queued(self, execute: Execute) -> None:
        execute("SELECT pg_notify(?, '')", (self.table,))  # sent on commit, to every listening process

    def wait(self, timeout: float) -> None:
        with self._lock:
            self._fork_check()
            if self._listener is None and not self._closing.is_set():
                self._listener = threading.Thread(target=self._listen, name="restkit-jobs-listen", daemon=True)
                self._listener.start()
        super().wait(timeout)

    def _listen(self) -> None:
        """Wake this process's runners on every NOTIFY; reconnect after a failure."""
        me = threading.current_thread()
        failures = 0
        while not self._closing.is_set() and self._listener is me:
            try:
                with self._open() as conn:
                    conn.execute(f"LISTEN {self.table}")
                    failures = 0
                    self.notify()  # what was submitted while no one listened
                    self.listening.set()
                    while not self._closing.is_set() and self._listener is me:
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.notify()
            except Exception as exc:  # noqa: BLE001 - the database went away: runners poll meanwhile
                self.listening.clear()
                if self._closing.is_set():
                    return
                if not failures:
                    logger.warning("jobs: listening for new jobs failed: %s (polling meanwhile; reconnecting)", exc)
                failures += 1
                self._closing.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
