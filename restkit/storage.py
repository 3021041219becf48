"""Databases that stateful features share between processes: an SQLite file, a PostgreSQL server.

The rate limit's counts (:mod:`restkit.ratelimit`) and the idempotency keys
(:mod:`restkit.idempotency`) live in memory by default, which is per process.
Their SQL stores hand the state to a database all processes reach, through the
two classes here; the stores hold only the SQL.

Theory of operation
-------------------
* **Connections per process.**  Each process opens its own connections, on
  first use: a worker forked by gunicorn or ``python -m restkit --workers N``
  never uses its parent's (it drops them unclosed, since closing would end
  the parent's sessions).  Idle connections wait in a list; a thread takes
  one for a transaction and gives it back, so there are never more than
  the threads that ask at once.
* **Fail fast** (:class:`Breaker`).  A database that cannot answer must not
  make every request wait: statements have a short timeout (``timeout``,
  0.5 s by default), and after a failure the breaker opens for ``retry``
  seconds (1 s), during which every call fails at once with
  :class:`StoreUnavailable`, without touching the network.  Then one call
  tries again while the others still fail fast; its success closes the
  breaker.  So a stopped database costs a request a refused connection
  once per ``retry`` seconds, and microseconds otherwise.
* **One log line per incident**: the failure that opens the breaker from
  closed is logged (``restkit.storage``, ERROR), and so is the success that
  ends it (WARNING); the failures in between are not.
* **SQLite** runs in WAL mode with ``synchronous=NORMAL`` (a power cut may
  forget the last instants of counts or keys, never corrupt the file); a
  write transaction starts with ``BEGIN IMMEDIATE``, so processes queue for
  the file's one writer lock for at most ``timeout`` seconds.  One host only:
  SQLite's locks do not hold over network file systems.
* **PostgreSQL** is reached with psycopg 3, imported when the first
  connection is made (``pip install 'restkit[postgres]'``); connections are
  in autocommit mode, with ``statement_timeout`` and ``lock_timeout`` set to
  ``timeout`` and ``connect_timeout`` to 2 s (libpq's least).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

__all__ = ["Breaker", "PostgresDatabase", "SQLiteDatabase", "StoreUnavailable", "table_name"]

logger = logging.getLogger("restkit.storage")

C = TypeVar("C")



# Seconds a connection's setup (WAL mode, the schema) retries a locked file.
# Why: processes that start together (gunicorn's workers) all set up a new
# file at once, and switching it to WAL can answer "database is locked" at
# once, without SQLite's busy wait; once per connection, never per request.
SETUP_PATIENCE = 10.0


def _while_locked(action: Callable[[], Any], seconds: float) -> None:
    """Run ``action``, again and again while SQLite says the file is locked or busy, for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if ("locked" not in message and "busy" not in message) or time.monotonic() >= deadline:
                raise
        time.sleep(0.02)

class StoreUnavailable(Exception):
    """A shared store cannot be asked now: unreachable, too slow, or its breaker is open.

    ``retry_after`` is the whole number of seconds after which asking again may work.
    """

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Breaker:
    """A circuit breaker: after a failure, refuse calls for ``retry`` seconds, then let one call try.

    States, as data: ``closed`` (calls go through), ``open`` (calls fail
    at once until the retry time), ``probing`` (one call is trying; the
    others fail at once).  Use::

        import sqlite3

        from restkit.storage import Breaker

        breaker = Breaker("the orders database", retry=1.0)
        db = sqlite3.connect("orders.db")

        def count_orders() -> int:
            breaker.enter()        # raises StoreUnavailable while open
            try:
                (count,) = db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as exc:
                breaker.failed(exc)
                raise
            breaker.succeeded()
            return count
    """

    # (state, event) -> next state; what is not here keeps the state
    TRANSITIONS = {
        ("closed", "failed"): "open",
        ("open", "probe"): "probing",
        ("probing", "failed"): "open",
        ("probing", "succeeded"): "closed",
        ("open", "succeeded"): "closed",  # a call that began before the failure
    }

    def __init__(self, name: str, *, retry: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if retry <= 0:
            raise ValueError("retry must be positive")
        self.name = name
        self.retry = retry
        self._clock = clock
        self._lock = threading.Lock()
        self.state = "closed"
        self._until = 0.0  # while open: when a call may probe

    def _become(self, event: str) -> str:
        before = self.state
        self.state = self.TRANSITIONS.get((before, event), before)
        return before

    def enter(self) -> None:
        """Let a call through, or raise :class:`StoreUnavailable` at once."""
        if self.state == "closed":  # PERF: no lock on the path of a healthy store
            return
        with self._lock:
            if self.state == "open" and self._clock() >= self._until:
                self._become("probe")
                return
            if self.state == "closed":
                return
            wait = max(1, int(self._until - self._clock() + 0.999))
        raise StoreUnavailable(f"{self.name} is unavailable; try again", retry_after=wait)

    def failed(self, error: BaseException) -> None:
        """A call failed because of the store: open (and log, when an incident begins)."""
        with self._lock:
            before = self._become("failed")
            self._until = self._clock() + self.retry
        if before == "closed":
            logger.error("%s is unavailable (%s); failing fast, retrying every %g s", self.name,
                         " ".join(str(error).split()) or type(error).__name__, self.retry)

    def succeeded(self) -> None:
        """A call worked: close (and log the end of the incident)."""
        if self.state == "closed":
            return
        with self._lock:
            before = self._become("succeeded")
        if before != "closed":
            logger.warning("%s is available again", self.name)


class _Database(Generic[C]):
    """What both databases share: connections per process, the breaker, errors as :class:`StoreUnavailable`."""

    #: The driver's exceptions that mean "the database failed", set by subclasses.
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, name: str, *, retry: float) -> None:
        self.breaker = Breaker(name, retry=retry)
        self._idle: list[C] = []
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._ready = False  # the schema was made by this object

    def _connect(self) -> C:
        raise NotImplementedError

    def _close(self, conn: C) -> None:
        raise NotImplementedError

    def _prepare(self, conn: C) -> None:
        """Make the schema (once per object, with its first connection)."""

    def _take(self) -> C:
        with self._lock:
            if self._pid != os.getpid():  # a forked worker: the parent's connections are not ours
                self._idle, self._pid = [], os.getpid()
            if self._idle:
                return self._idle.pop()
        conn = self._connect()
        if not self._ready:
            self._prepare(conn)
            self._ready = True
        return conn

    def _give_back(self, conn: C) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._idle.append(conn)

    @contextmanager
    def connection(self) -> Iterator[C]:
        """A connection for one unit of work; a driver error becomes :class:`StoreUnavailable`."""
        self.breaker.enter()
        conn = None
        try:
            conn = self._take()
            yield conn
        except self.errors as exc:
            if conn is not None:
                self._discard(conn)
            self.close()  # the idle ones most likely share its fate (a restarted server): none is tried again
            self.breaker.failed(exc)
            raise StoreUnavailable(f"{self.breaker.name} is unavailable; try again",
                                   retry_after=max(1, round(self.breaker.retry))) from exc
        except BaseException:
            if conn is not None:
                self._discard(conn)
            raise
        self._give_back(conn)
        self.breaker.succeeded()

    def _discard(self, conn: C) -> None:
        try:
            self._close(conn)
        except Exception:  # a broken connection may fail to close; it is dropped either way
            pass

    def close(self) -> None:
        """Close this process's idle connections (when no request is running)."""
        with self._lock:
            idle, self._idle = self._idle, []
            ours = self._pid == os.getpid()
        for conn in idle if ours else ():
            self._discard(conn)


class SQLiteDatabase(_Database[sqlite3.Connection]):
    """An SQLite file shared by the processes of one host.

    Args:
        path: the database file (created when missing).
        schema: SQL run once (``CREATE TABLE IF NOT EXISTS ...``).
        timeout: seconds a transaction waits for the file's writer lock.
        retry: seconds the breaker stays open after a failure.
        name: what log lines and errors call it.
        create: make the file when it is missing; False (a file that another part of the
            app owns) makes a missing file a failure of the store instead.
    """

    errors = (sqlite3.Error,)

    def __init__(self, path: str, schema: str, *, timeout: float = 1.0, retry: float = 1.0,
                 name: str | None = None, create: bool = True) -> None:
        super().__init__(name or f"the SQLite store {path}", retry=retry)
        self.path = str(path)
        self.schema = schema
        self.timeout = timeout
        self.create = create

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are the explicit BEGIN IMMEDIATE of write()
        if self.create:
            target, uri = self.path, False
        else:
            from urllib.parse import quote  # PERF(lazy-import): once per connection of such a store

            target, uri = f"file:{quote(os.path.abspath(self.path))}?mode=rw", True
        conn = sqlite3.connect(target, timeout=self.timeout, isolation_level=None, check_same_thread=False, uri=uri)
        try:
            _while_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"), SETUP_PATIENCE)
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _close(self, conn: sqlite3.Connection) -> None:
        conn.close()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        _while_locked(lambda: conn.executescript(self.schema), SETUP_PATIENCE)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: it holds the file's writer lock from its start, so it sees the latest commit."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


class PostgresDatabase(_Database[Any]):
    """A PostgreSQL database shared by processes on any number of hosts.

    Args:
        url: a libpq connection string (``postgresql://user@host:5432/dbname``).
        schema: SQL statements run once, each (``CREATE ... IF NOT EXISTS``).
        timeout: seconds a statement (or a wait for a lock) may take.
        retry: seconds the breaker stays open after a failure.
        name: what log lines and errors call it (default: the host and database, never a password).
    """

    def __init__(self, url: str, schema: list[str], *, timeout: float = 0.5, retry: float = 1.0,
                 name: str | None = None) -> None:
        super().__init__(name or f"the PostgreSQL store {_safe(url)}", retry=retry)
        self.url = url
        self.schema = schema
        self.timeout = timeout

    def _connect(self) -> Any:
        import psycopg  # imported by connection() already

        ms = max(1, int(self.timeout * 1000))
        return psycopg.connect(self.url, autocommit=True, connect_timeout=2, application_name="restkit",
                               options=f"-c statement_timeout={ms} -c lock_timeout={ms}")

    def _close(self, conn: Any) -> None:
        conn.close()

    def _prepare(self, conn: Any) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('restkit.storage'))")  # instances start together
            for statement in self.schema:
                conn.execute(statement)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if not self.errors:  # the driver's errors are known once it is imported
            try:
                import psycopg  # optional: pip install 'restkit[postgres]'
            except ImportError as exc:
                raise RuntimeError("the PostgreSQL store needs psycopg 3: pip install 'restkit[postgres]'") from exc
            self.errors = (psycopg.Error,)
        with super().connection() as conn:
            yield conn


def table_name(name: str) -> str:
    """``name``, checked to be a plain SQL identifier: the stores write it into their SQL."""
    if not name or not name.isascii() or not name.replace("_", "a").isalnum() or name[0].isdigit():
        raise ValueError(f"a table name is letters, digits and underscores, not {name!r}")
    return name


def _safe(url: str) -> str:
    """``url`` without its password, fit for a log line."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.scheme:
        return "(a connection string)"
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
