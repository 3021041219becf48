"""The zoo's data in an SQLite file: :class:`Store`, the engine-specific half of :class:`examples.zoo.store_base.BaseStore`.

Nothing here knows about HTTP.  The web layer (``app.py``) validates input,
calls a :class:`Store` method and turns the store's exceptions
(:class:`Missing`, :class:`Deleted`, :class:`Conflicting`,
:class:`BadReference`, and the storage faults of :mod:`examples.zoo.faults`)
into status codes.  The rules both engines share (checks inside the
transaction, tombstones, versions, names) are :mod:`examples.zoo.store_base`'s;
what is SQLite's is here.

Theory of operation
-------------------
* **One connection per thread.**  ``sqlite3`` connections must not be shared
  between threads, so each thread opens its own the first time it asks
  (a ``threading.local`` held by the store, not by the module).  The
  database runs in WAL mode: readers never wait for the writer.
* **One writer at a time.**  Every write runs in ``BEGIN IMMEDIATE``, which
  takes SQLite's write lock at the start, so two writers never deadlock when
  both upgrade from reading; a lock in the store queues this process's
  writers without busy-waiting, and the busy timeout queues other processes.
* **One deadline per write.**  Waiting for the store's lock and then for
  SQLite's share one ``deadline`` (default 5 s): whatever its place in the
  queue, a write that cannot start by then raises :class:`Unavailable`
  (503 with ``Retry-After``), never a queue of timeouts one after another.
* **Storage faults are named.**  A read-only database (a file nobody may
  write, a read-only file system) refuses every write with
  :class:`Unavailable`, on every connection, before SQLite is asked (a
  connection opened earlier could still write); a full disk raises
  :class:`InsufficientStorage` and checkpoints the WAL, so space comes back
  when rows are deleted.  The WAL is checkpointed every 128 pages and cut
  back to 512 KiB, so it stays small.
* **Durability** is a choice: ``full`` (the default) syncs the WAL on every
  commit, so an acknowledged write survives a power loss; ``normal`` syncs at
  checkpoints only: faster, and a crash of the OS may lose the last commits
  (never corrupt the database).  A crash of the process loses nothing either way.
* **Ids** are ``AUTOINCREMENT``: never reused, even after the row with the
  largest id is deleted.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .faults import BUSY, DISK_FULL, READ_ONLY, Incidents, InsufficientStorage, StorageFault, Unavailable
# the store's vocabulary (examples.zoo.records), re-exported for callers that import it from here
from .records import KINDS, BadReference, Check, Conflicting, Deleted, Kind, Missing, NotEmployed, Row, StoreError
from .records import etag, public, utc_now
from .store_base import BaseStore
from .tables import JOBS_TABLE, TABLES_V1, rekey_zoos, run_script, seed

__all__ = [
    "Store",
    # and the vocabulary imported above
    "KINDS", "BadReference", "Check", "Conflicting", "Deleted", "Kind", "Missing", "NotEmployed", "Row", "StoreError",
    "etag", "public", "utc_now",
]

# --durability -> PRAGMA synchronous (WAL mode): FULL syncs the WAL at every commit
DURABILITY = {"full": "FULL", "normal": "NORMAL"}
WAL_CHECKPOINT_PAGES = 128  # checkpoint when the WAL holds this many pages (512 KiB of 4 KiB pages)
WAL_SIZE_LIMIT = 512 * 1024  # and cut the file back to this many bytes afterwards
# SQLite's primary result codes (sqlite3 names them from Python 3.11 on)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_FULL = 5, 6, 8, 13

# 1: the tables; 2: zoos.name_key is names.name_key() (NFKC, folded), no longer casefold(); 3: jobs;
# 4: zoos.name_key recomputed: names.name_key() adds the UTS #39 confusable skeleton
SCHEMA_VERSION = 4

# the holes of examples.zoo.tables in SQLite's words
TYPES = {
    "type_key": "INTEGER PRIMARY KEY",
    "key": "INTEGER PRIMARY KEY AUTOINCREMENT",  # AUTOINCREMENT: never reused, even the largest id once deleted
    "id": "INTEGER",
    "real": "REAL",
    "name_key": "name_key COLLATE NOCASE",
}
SCHEMA = TABLES_V1.format(**TYPES)
JOBS_SCHEMA = JOBS_TABLE.format(**TYPES)  # schema 3


# --- the store -----------------------------------------------------------------


class _Handle:
    """One thread's connection, in an object that weak references can point to."""

    __slots__ = ("conn", "pid", "__weakref__")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pid = os.getpid()


class Store(BaseStore[sqlite3.Connection]):
    """The zoo's data in an SQLite file.

    Args:
        path: the database file; created with its schema when new.
        empty: when creating the database, add only the animal types, no demo data.
        deadline: seconds a write may wait for the write lock (this process's and SQLite's together).
        durability: ``"full"`` (sync every commit) or ``"normal"`` (sync at checkpoints).
    """

    # BEGIN IMMEDIATE already holds the one write lock: no row locks to take
    FOR_UPDATE = FOR_KEY_SHARE = ""
    TEXT_EQUALS = "{column} = ? COLLATE NOCASE"
    TEXT_ORDER = "{column} COLLATE NOCASE"
    TIME_ORDER = "{column}"  # ISO-8601 text: BINARY order is time order
    DIRECTIONS = {"asc": "ASC", "desc": "DESC"}  # SQLite sorts nulls first when ascending
    SKIP_LOCKED = ""  # BEGIN IMMEDIATE: one claimer at a time

    def __init__(self, path: str, *, empty: bool = False, deadline: float = 5.0, durability: str = "full") -> None:
        self.path = str(path)
        if self.path in ("", ":memory:"):
            raise ValueError("the zoo needs a database file: every thread opens its own connection to it")
        if deadline <= 0:
            raise ValueError("the deadline must be > 0 seconds")
        if durability not in DURABILITY:
            raise ValueError(f"durability is one of {', '.join(DURABILITY)}, not {durability!r}")
        self.deadline = deadline
        self.durability = durability
        self.incidents = Incidents()  # storage faults going on, logged once each (the app answers through it)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        # weak: a thread that ends takes its connection with it (closed when collected)
        self._handles: weakref.WeakSet[_Handle] = weakref.WeakSet()
        self._handles_lock = threading.Lock()
        self._create(empty)
        self.close()  # hold no connection until a request needs one (safe to fork, e.g. gunicorn --preload)

    # -- connections and transactions -------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is None or handle.pid != os.getpid():  # a forked worker opens its own
            # isolation_level=None: no implicit transactions; we BEGIN ourselves.
            conn = sqlite3.connect(self.path, timeout=self.deadline, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA synchronous = {DURABILITY[self.durability]}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            handle = self._local.handle = _Handle(conn)
            with self._handles_lock:
                self._handles.add(handle)
        return handle.conn

    def gone(self) -> bool:
        """Whether the database file was deleted (connecting would create an empty one in its place)."""
        return not os.path.exists(self.path)

    def read_only(self) -> bool:
        """Whether the database file may not be written: by nobody (no write bit, which even
        root obeys here), by this process, or on a read-only file system."""
        try:
            mode = os.stat(self.path).st_mode
        except OSError:
            return False  # not there yet: SQLite creates it
        return not mode & 0o222 or not os.access(self.path, os.W_OK)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        started = time.monotonic()
        if self.read_only():
            raise Unavailable(READ_ONLY, retry_after=60)
        conn = self._connection()
        if not self._write_lock.acquire(timeout=self.deadline):
            raise Unavailable(BUSY)
        try:
            left = self.deadline - (time.monotonic() - started)
            conn.execute(f"PRAGMA busy_timeout = {max(1, int(left * 1000))}")
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                fault = self._fault(conn, exc)
                if fault is not None:
                    raise fault from exc
                raise
        finally:
            self._write_lock.release()
        self.incidents.end()

    def _fault(self, conn: sqlite3.Connection, exc: BaseException) -> StorageFault | None:
        """The storage fault an SQLite error means, if it means one."""
        if not isinstance(exc, sqlite3.Error):
            return None
        code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; the message before
        message = str(exc).lower()
        primary = code & 0xFF if code is not None else None
        if primary == _SQLITE_FULL or "disk is full" in message:
            try:  # give the WAL's pages back, so deleting rows frees space
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            return InsufficientStorage(DISK_FULL)
        if primary == _SQLITE_READONLY or "readonly" in message:
            return Unavailable(READ_ONLY, retry_after=60)
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in message or "busy" in message:
            return Unavailable(BUSY)
        return None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN")  # one snapshot for the count and the page
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection the store opened (call when no request is running)."""
        with self._handles_lock:
            handles, self._handles = list(self._handles), weakref.WeakSet()
            self._local = threading.local()
        for handle in handles:
            try:
                handle.conn.close()
            except sqlite3.Error:
                pass

    def _create(self, empty: bool) -> None:
        conn = self._connection()
        if self.read_only():  # serve what is there: reads work, writes answer 503
            if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return
            raise Unavailable(f"the database {self.path} is read-only and its schema needs creating or upgrading")
        conn.execute("PRAGMA journal_mode = WAL")
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:
                return
            if version >= 1:  # an older database: upgrade it, step by step
                if version < 2:
                    rekey_zoos(conn, "?")
                if version < 3:
                    run_script(conn, JOBS_SCHEMA)
                if version < 4:
                    rekey_zoos(conn, "?")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                return
            run_script(conn, SCHEMA)
            run_script(conn, JOBS_SCHEMA)
            seed(conn, "?", empty=empty)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- statements (BaseStore writes the SQL) ------------------------------------

    def _execute(self, conn: sqlite3.Connection, query: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        return conn.execute(query, args)

    def _inserted(self, conn: sqlite3.Connection, kind: str, statement: str, args: Sequence[Any]) -> Row:
        cursor = conn.execute(statement, args)
        return self._fetch(conn, kind, int(cursor.lastrowid or 0))

    def _updated(self, conn: sqlite3.Connection, kind: str, id: int, statement: str, args: Sequence[Any]) -> Row:
        conn.execute(statement, args)
        return self._fetch(conn, kind, id)
