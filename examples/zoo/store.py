"""The zoo's data in an SQLite file: :class:`Store`.

It is the engine-specific half of :class:`examples.zoo.store_base.BaseStore`.

Nothing here knows about HTTP.  The web layer (``app.py``) validates input,
calls a :class:`Store` method and turns the store's exceptions
(:class:`Missing`, :class:`Deleted`, :class:`Conflicting`,
:class:`BadReference`, and the storage faults of :mod:`examples.zoo.faults`)
into status codes.  The rules both engines share (checks inside the
transaction, tombstones, versions, names) are :mod:`examples.zoo.store_base`'s;
what is SQLite's is here.

Theory of operation
-------------------
* **One connection per thread.**  ``sqlite3`` connections must not be used by
  two threads at once, so each thread opens its own the first time it asks
  (a ``threading.local`` held by the store, not by the module); another
  thread closes it only while it is idle (a renewal).  The
  database runs in WAL mode: readers never wait for the writer.
* **One writer at a time.**  Every write runs in ``BEGIN IMMEDIATE``, which
  takes SQLite's write lock at the start, so two writers never deadlock when
  both upgrade from reading; a lock in the store queues this process's
  writers without busy-waiting, and the busy timeout queues other processes.
* **One deadline per request, from its arrival.**  Waiting for the store's
  lock and then for SQLite's share what is left of ``deadline`` (default
  5 s) since the request arrived (:meth:`BaseStore.time_left`): whatever its
  place in the queue, a write that cannot start by then raises
  :class:`Unavailable` (503 with ``Retry-After``), never a queue of timeouts
  one after another.
* **Storage faults are named, and end by themselves.**  A read-only database
  (a file nobody may write, a read-only file system) refuses every write with
  :class:`Unavailable`, on every connection, before SQLite is asked (a
  connection opened earlier could still write).  When the file is writable
  again, its ``-wal`` and ``-shm`` get its mode back (SQLite made them
  read-only during the spell) and every thread reopens its connection
  (:meth:`Store._renew`): one opened during the spell stays read-only, and a
  process's connections share one wal-index.  A connection that met any
  other fault is closed.
* **The file is the one it opened.**  Connections never create the file
  (``mode=rw``), and every write checks the file's device and inode (a read
  trusts a check up to 50 ms old): a file removed or replaced is 503 until
  the same file is back (a different one is served only after a restart).  A missing file at start is an error
  unless ``create``.
* **A full disk can be recovered from through the API.**  256 KiB are kept
  aside in ``<db>-reserve``; a write that finds the disk full gives them
  back and checkpoints the WAL (:class:`InsufficientStorage`, 507), and from
  then on only deletes run (each followed by an incremental vacuum, a new
  database being ``auto_vacuum = INCREMENTAL``, and a checkpoint), until the
  reserve fits again.  The WAL is checkpointed every 128 pages and cut back
  to 512 KiB, so it stays small.
* **Durability** is a choice: ``full`` (the default) syncs the WAL on every
  commit, so an acknowledged write survives a power loss; ``normal`` syncs at
  checkpoints only: faster, and a crash of the OS may lose the last commits
  (never corrupt the database).  A crash of the process loses nothing either way.
* **Ids** are ``AUTOINCREMENT``: never reused, even after the row with the
  largest id is deleted.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .faults import (
    BUSY,
    CANNOT_OPEN,
    DISK_FULL,
    GONE,
    READ_ONLY,
    Incidents,
    InsufficientStorage,
    StorageFault,
    Unavailable,
)
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

RESERVE_BYTES = 256 * 1024  # kept beside the database, given back when its disk fills (see Store)
FILE_CHECK_INTERVAL = 0.05  # seconds a read trusts the last check that the file is the one opened


class _Handle:
    """One thread's connection, in an object that weak references can point to."""

    __slots__ = ("conn", "pid", "generation", "opened_read_only", "busy", "__weakref__")

    def __init__(self, conn: sqlite3.Connection, generation: int, opened_read_only: bool) -> None:
        self.conn = conn
        self.pid = os.getpid()
        self.generation = generation  # the store's generation when opened: older ones are reopened
        # opened while the file could not be written: SQLite then opens it read-only for good
        self.opened_read_only = opened_read_only
        self.busy = False  # its thread is using it: nobody else may close it


class Store(BaseStore[sqlite3.Connection]):
    """The zoo's data in an SQLite file.

    Args:
        path: the database file.
        empty: when creating the database, add only the animal types, no demo data.
        create: make the file (schema, animal types, demo data) when it does not exist;
            without it a missing file is an error, never a silent fresh database.
        deadline: seconds a request may wait for the database, counted from its arrival
            (:meth:`~examples.zoo.store_base.BaseStore.deadline_from`).
        durability: ``"full"`` (sync every commit) or ``"normal"`` (sync at checkpoints).

    Raises:
        FileNotFoundError: ``path`` does not exist and ``create`` is false.
    """

    # BEGIN IMMEDIATE already holds the one write lock: no row locks to take
    FOR_UPDATE = FOR_KEY_SHARE = ""
    TEXT_EQUALS = "{column} = ? COLLATE NOCASE"
    TEXT_ORDER = "{column} COLLATE NOCASE"
    TIME_ORDER = "{column}"  # ISO-8601 text: BINARY order is time order
    DIRECTIONS = {"asc": "ASC", "desc": "DESC"}  # SQLite sorts nulls first when ascending
    SKIP_LOCKED = ""  # BEGIN IMMEDIATE: one claimer at a time

    def __init__(self, path: str, *, empty: bool = False, create: bool = False, deadline: float = 5.0,
                 durability: str = "full") -> None:
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
        self._uri = "file:" + urllib.parse.quote(os.path.abspath(self.path))
        self._reserve_path = self.path + "-reserve"
        self._local = threading.local()
        self._requests = threading.local()
        self._write_lock = threading.Lock()
        # weak: a thread that ends takes its connection with it (closed when collected)
        self._handles: weakref.WeakSet[_Handle] = weakref.WeakSet()
        self._handles_lock = threading.Lock()
        self._generation = 0  # bumped when every thread must reopen (a renewal)
        self._spell = False  # a read-only spell was met: when the file is writable again, every thread reopens
        self._checked_at = -math.inf  # when the file was last found to be the one this store opened
        self._full = False  # the disk filled and the reserve was given back: only deletes until room is back
        if not os.path.exists(self.path) and not create:
            raise FileNotFoundError(f"the database {self.path} does not exist (--create makes a new one)")
        self._create(empty)
        self._identity = self._file_identity(os.stat(self.path))  # the file this store serves
        if not self.read_only():
            self._make_reserve()
        self.close()  # hold no connection until a request needs one (safe to fork, e.g. gunicorn --preload)

    # -- connections and transactions -------------------------------------------

    def _open(self, create: bool = False) -> sqlite3.Connection:
        # mode=rw: a connection never creates the file (one deleted under us stays missing)
        # isolation_level=None: no implicit transactions; we BEGIN ourselves.
        conn = sqlite3.connect(f"{self._uri}?mode={'rwc' if create else 'rw'}", uri=True, timeout=self.deadline,
                               isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {DURABILITY[self.durability]}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        return conn

    def _connection(self, writing: bool = False) -> sqlite3.Connection:
        """This thread's connection, marked busy (until :meth:`_release`) so that no other thread closes it."""
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is not None:
            with self._handles_lock:  # uncontended but during a renewal
                stale = (handle.pid != os.getpid() or handle.generation != self._generation
                         or (writing and handle.opened_read_only))
                handle.busy = not stale
            if stale:  # a forked worker's, from before a renewal, or one SQLite opened read-only
                self._drop()
                handle = None
        if handle is None:
            opened_read_only = self.read_only()
            try:
                conn = self._open()
            except sqlite3.Error as exc:  # removed since the check, a directory we may not write...
                if self.gone():
                    raise Unavailable(GONE, retry_after=60, incident="database file gone") from exc
                raise Unavailable(CANNOT_OPEN, incident="cannot open") from exc
            handle = self._local.handle = _Handle(conn, self._generation, opened_read_only)
            handle.busy = True
            with self._handles_lock:
                self._handles.add(handle)
        return handle.conn

    def _release(self) -> None:
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is not None:
            handle.busy = False

    def _renew(self) -> None:
        """Every thread reopens its connection: closed now if idle, at its next use if busy.

        SQLite shares one wal-index (``-shm``) between a process's connections to a file,
        mapped read-only if the first of them could not write it; only when they are all
        closed is it opened anew.
        """
        with self._handles_lock:
            self._generation += 1
            idle = [handle for handle in self._handles if not handle.busy and handle.pid == os.getpid()]
            for handle in idle:
                self._handles.discard(handle)
        for handle in idle:
            try:
                handle.conn.close()
            except sqlite3.Error:
                pass

    def _end_spell(self, st: os.stat_result) -> None:
        """The file is writable again after a read-only spell: so must its ``-wal`` and ``-shm`` be
        (SQLite made them with the file's mode, read-only during the spell); then every thread reopens."""
        self._spell = False
        for companion in (self.path + "-wal", self.path + "-shm"):
            if os.path.exists(companion) and not os.access(companion, os.W_OK):
                with contextlib.suppress(OSError):  # ours, made during the spell: we may change its mode
                    os.chmod(companion, stat.S_IMODE(st.st_mode))
        if not os.path.exists(self._reserve_path):  # read-only since the start: none was set aside
            self._make_reserve()
        self._renew()

    def _drop(self) -> None:
        """Close this thread's connection: the next use opens a new one (the thread's own, so not busy elsewhere)."""
        handle: _Handle | None = getattr(self._local, "handle", None)
        self._local.handle = None
        if handle is not None and handle.pid == os.getpid():
            with self._handles_lock:
                self._handles.discard(handle)
            try:
                handle.conn.close()
            except sqlite3.Error:
                pass

    @staticmethod
    def _file_identity(st: os.stat_result) -> tuple[int, int]:
        return st.st_dev, st.st_ino

    def _check_file(self) -> os.stat_result:
        """The database file's status, once it is known to be the file this store opened.

        A different file in its place (another database, a fresh demo one, a
        backup copied in) is never served silently: restart the zoo to serve it.

        Raises:
            Unavailable: the file was removed or replaced.
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is None or self._file_identity(st) != self._identity:
            self._checked_at = -math.inf  # until it is back, every read checks too
            raise Unavailable(GONE, retry_after=60, incident="database file gone")
        self._checked_at = time.monotonic()
        return st

    def _check_file_for_reading(self) -> None:
        """:meth:`_check_file`, at most every ``FILE_CHECK_INTERVAL`` seconds while the file is there.

        A write always checks (a write into a removed file would be lost); a read
        served from a file removed a moment ago loses nothing.
        """
        # PERF: os.stat() of the path costs 15 us in this repository's sandbox (about 1 us on bare
        # Linux), a third of a read by id; reads share one check per interval instead
        if time.monotonic() - self._checked_at >= FILE_CHECK_INTERVAL:
            self._check_file()

    def gone(self) -> bool:
        """Whether the database file was deleted (connecting would create an empty one in its place)."""
        return not os.path.exists(self.path)

    def read_only(self, st: os.stat_result | None = None) -> bool:
        """Whether the database file may not be written: by nobody (no write bit, which even
        root obeys here), by this process, or on a read-only file system."""
        if st is None:
            try:
                st = os.stat(self.path)
            except OSError:
                return False  # not there: the write meets that
        return not st.st_mode & 0o222 or not os.access(self.path, os.W_OK)

    def _make_reserve(self) -> bool:
        """Set ``RESERVE_BYTES`` of the disk aside in a file of their own; True when they are."""
        try:
            with open(self._reserve_path, "wb") as reserve:
                reserve.write(bytes(RESERVE_BYTES))  # written, not sparse: the blocks are really taken
            return True
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(self._reserve_path)
            return False

    def _room_again(self) -> bool:
        """While the disk is full: whether there is room again (the reserve could be set aside anew)."""
        try:
            stat = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        except OSError:
            return False
        if stat.f_bavail * stat.f_frsize < 2 * RESERVE_BYTES or not self._make_reserve():
            return False
        self._full = False
        return True

    @contextmanager
    def _write(self, *, frees: bool = False) -> Iterator[sqlite3.Connection]:
        self.time_left()  # a request that queued for a thread past its deadline: 503 now
        st = self._check_file()
        if self.read_only(st):
            self._spell = True
            raise Unavailable(READ_ONLY, retry_after=60, incident="read-only")
        if self._spell:
            self._end_spell(st)
        if self._full and not frees and not self._room_again():
            raise InsufficientStorage(DISK_FULL)  # what room there is stays for deletes
        conn = self._connection(writing=True)
        try:
            with self._locked():
                yield from self._transaction(conn)
        finally:
            self._release()
        self.incidents.end()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self._write_lock.acquire(timeout=self.time_left()):
            raise Unavailable(BUSY, incident="busy")
        try:
            yield
        finally:
            self._write_lock.release()

    def _transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE``, the caller's block (at the ``yield``), ``COMMIT``; SQLite's faults named."""
        conn.execute(f"PRAGMA busy_timeout = {max(1, int(self.time_left() * 1000))}")
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
        if self._full:  # a delete while the disk is full: give its pages back to the file system
            self._give_back(conn)

    def _give_back(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA incremental_vacuum").fetchall()  # free pages cut off the file's end...
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # ...once checkpointed
        except sqlite3.Error:
            pass

    def _fault(self, conn: sqlite3.Connection, exc: BaseException) -> StorageFault | None:
        """The storage fault an SQLite error means, if it means one."""
        if not isinstance(exc, sqlite3.Error):
            return None
        code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; the message before
        message = str(exc).lower()
        primary = code & 0xFF if code is not None else None
        if primary == _SQLITE_FULL or "disk is full" in message:
            # the database filled its own disk: give the reserve back, so that deletes and the
            # checkpoint that ends the WAL have room, and take only deletes until room is back
            self._full = True
            with contextlib.suppress(OSError):
                os.unlink(self._reserve_path)
            self._give_back(conn)
            return InsufficientStorage(DISK_FULL)
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in message or "busy" in message:
            return Unavailable(BUSY, incident="busy")
        self._drop()  # a connection that met any other fault is not used again
        if primary == _SQLITE_READONLY or "readonly" in message:
            self._spell = True  # whatever the file's mode says, a connection could not write
            return Unavailable(READ_ONLY, retry_after=60, incident="read-only")
        return None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        self.time_left()  # a request that queued for a thread past its deadline: 503 now
        self._check_file_for_reading()
        conn = self._connection()
        try:
            conn.execute("BEGIN")  # one snapshot for the count and the page
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        finally:
            self._release()

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
        new = not os.path.exists(self.path)
        handle = self._local.handle = _Handle(self._open(create=new), self._generation, False)
        with self._handles_lock:
            self._handles.add(handle)
        if new:  # before the first table: freed pages can be given back to the file system
            handle.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if self.read_only():  # serve what is there: reads work, writes answer 503
            if handle.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return
            raise Unavailable(f"the database {self.path} is read-only and its schema needs creating or upgrading")
        handle.conn.execute("PRAGMA journal_mode = WAL")
        self._identity = self._file_identity(os.stat(self.path))
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
