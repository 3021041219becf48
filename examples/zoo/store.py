"""All the SQL of the zoo: an SQLite database behind a small Python API.

Nothing here knows about HTTP.  The web layer (``app.py``) validates input,
calls a :class:`Store` method and turns the store's exceptions
(:class:`Missing`, :class:`Deleted`, :class:`Conflicting`,
:class:`BadReference`, and the storage faults of :mod:`examples.zoo.faults`)
into status codes.

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
* **Checks inside the transaction.**  Whatever a write depends on (the zoo
  of a new animal exists, a zoo name is free, an ``If-Match`` precondition)
  is checked inside the same transaction, so a concurrent request cannot
  slip in between the check and the write.  Any exception rolls the whole
  write back: invalid input changes nothing.
* **Tombstones.**  A deleted row leaves ``(kind, id, deleted_at)`` in the
  ``tombstones`` table, so the API can tell "deleted" (410) from "never
  existed" (404).  ``AUTOINCREMENT`` ids are never reused.
* **Versions.**  Every row has a ``version`` that each change increments; with
  ``updated_at`` it makes the resource's entity tag (:func:`etag`).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .faults import InsufficientStorage, StorageFault, Unavailable, incidents
from .names import name_key

__all__ = [
    "BadReference",
    "Conflicting",
    "Deleted",
    "KINDS",
    "Kind",
    "Missing",
    "Store",
    "StoreError",
    "etag",
    "utc_now",
]

Row = dict[str, Any]
Check = Callable[[Row], None]

MAX_ID = 2**63 - 1  # the largest SQLite integer

# --durability -> PRAGMA synchronous (WAL mode): FULL syncs the WAL at every commit
DURABILITY = {"full": "FULL", "normal": "NORMAL"}
WAL_CHECKPOINT_PAGES = 128  # checkpoint when the WAL holds this many pages (512 KiB of 4 KiB pages)
WAL_SIZE_LIMIT = 512 * 1024  # and cut the file back to this many bytes afterwards
READ_ONLY = "the database is read-only; writes are refused until it is writable"
BUSY = "the database is busy; try again"
# SQLite's primary result codes (sqlite3 names them from Python 3.11 on)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_FULL = 5, 6, 8, 13

# 1: the tables; 2: zoos.name_key is names.name_key() (NFKC, folded), no longer casefold(); 3: jobs
SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE animal_types (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE zoos (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    -- names.name_key(name): unique after NFKC and case folding, for every script
    name_key    TEXT NOT NULL,
    city        TEXT NOT NULL,
    opened      TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX zoos_name_key ON zoos (name_key COLLATE NOCASE);
CREATE TABLE animals (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL,
    animal_type_id INTEGER NOT NULL REFERENCES animal_types (id),
    zoo_id         INTEGER NOT NULL REFERENCES zoos (id),
    born           TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX animals_zoo_id ON animals (zoo_id);
CREATE INDEX animals_animal_type_id ON animals (animal_type_id);
CREATE INDEX animals_created_at ON animals (created_at);
CREATE TABLE employees (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    title       TEXT,
    zoo_id      INTEGER REFERENCES zoos (id),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX employees_zoo_id ON employees (zoo_id);
CREATE TABLE tombstones (
    kind        TEXT NOT NULL,
    id          INTEGER NOT NULL,
    deleted_at  TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
"""

# the queue of examples.zoo.jobs (schema 3)
JOBS_SCHEMA = """
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    params      TEXT NOT NULL,
    status      TEXT NOT NULL,
    owner       TEXT,
    lease_until REAL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    result      TEXT,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX jobs_status ON jobs (status, id)
"""


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements inside the caller's transaction (``executescript`` would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


ANIMAL_TYPES = [
    ("mammal", "Warm-blooded vertebrates with hair that feed their young on milk."),
    ("bird", "Feathered, winged, egg-laying vertebrates."),
    ("reptile", "Cold-blooded vertebrates with scales, such as snakes, lizards and turtles."),
    ("amphibian", "Cold-blooded vertebrates that live both in water and on land, such as frogs."),
    ("fish", "Cold-blooded vertebrates that live in water and breathe with gills."),
    ("insect", "Six-legged invertebrates with a three-part body."),
]

DEMO_ZOOS = [
    ("Zoo Berlin", "Berlin", "1844-08-01"),
    ("San Diego Zoo", "San Diego", "1916-10-02"),
]
# (name, animal type, zoo, born)
DEMO_ANIMALS = [
    ("Bao Bao", 1, 1, "2013-08-23"),
    ("Knut", 1, 1, None),
    ("Polly", 2, 2, "2019-05-04"),
    ("Speedy", 3, 2, "1990-01-01"),
]
# (name, title, zoo)
DEMO_EMPLOYEES = [
    ("Ada Keeper", "head keeper", 1),
    ("Ben Vet", "veterinarian", 2),
    ("Cleo Guide", None, None),
]


@dataclass(frozen=True)
class Kind:
    """What the store knows about one kind of resource (one table).

    ``filters`` maps a filterable column to its type: ``"id"`` (an
    integer id, or null where ``nullable``), ``"text"`` (compared without
    regard to case) or ``"date"``.
    """

    name: str
    table: str
    columns: tuple[str, ...]
    sortable: tuple[str, ...]
    filters: Mapping[str, str]
    nullable: frozenset[str] = field(default_factory=frozenset)
    # column -> referenced kind, checked inside write transactions
    references: Mapping[str, str] = field(default_factory=dict)


ZOO = Kind(
    "zoo",
    "zoos",
    ("name", "city", "opened"),
    ("id", "name", "city", "opened", "created_at", "updated_at"),
    {"name": "text", "city": "text", "opened": "date"},
    frozenset({"opened"}),
)
ANIMAL = Kind(
    "animal",
    "animals",
    ("name", "animal_type_id", "zoo_id", "born"),
    ("id", "name", "animal_type_id", "zoo_id", "born", "created_at", "updated_at"),
    {"name": "text", "animal_type_id": "id", "zoo_id": "id", "born": "date"},
    frozenset({"born"}),
    {"animal_type_id": "animal_type", "zoo_id": "zoo"},
)
ANIMAL_TYPE = Kind(
    "animal_type",
    "animal_types",
    ("name", "description"),
    ("id", "name"),
    {"name": "text"},
)
# An employee's zoo_id is not a writable column: only hire() and fire() change it.
EMPLOYEE = Kind(
    "employee",
    "employees",
    ("name", "title"),
    ("id", "name", "title", "zoo_id", "created_at", "updated_at"),
    {"name": "text", "title": "text", "zoo_id": "id"},
    frozenset({"title"}),
)
KINDS = {kind.name: kind for kind in (ZOO, ANIMAL, ANIMAL_TYPE, EMPLOYEE)}

_TEXT_COLUMNS = {"name", "city", "title", "description"}
_PUBLIC = {
    "zoo": ("id", "name", "city", "opened", "created_at", "updated_at"),
    "animal": ("id", "name", "animal_type_id", "zoo_id", "born", "created_at", "updated_at"),
    "animal_type": ("id", "name", "description"),
    "employee": ("id", "name", "title", "zoo_id", "created_at", "updated_at"),
}


# --- errors --------------------------------------------------------------------


class StoreError(Exception):
    """Something the caller asked for that the data does not allow."""


class Missing(StoreError):
    """No such row, and there never was."""

    def __init__(self, kind: str, id: int) -> None:
        self.kind, self.id = kind, id
        super().__init__(f"{kind.replace('_', ' ')} {id} does not exist")


class Deleted(StoreError):
    """The row existed and was deleted."""

    def __init__(self, kind: str, id: int, deleted_at: str) -> None:
        self.kind, self.id, self.deleted_at = kind, id, deleted_at
        super().__init__(f"{kind.replace('_', ' ')} {id} was deleted at {deleted_at}")


class Conflicting(StoreError):
    """The change conflicts with the current state (a duplicate, a dependent row)."""


class BadReference(StoreError):
    """Fields of the input name rows that do not exist: ``details`` maps field to message."""

    def __init__(self, details: dict[str, str]) -> None:
        self.details = details
        super().__init__("; ".join(f"{k}: {v}" for k, v in details.items()))


# --- helpers -------------------------------------------------------------------


def utc_now() -> str:
    """The current time as ISO-8601 UTC with microseconds: ``2026-11-21T10:48:00.123456Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def etag(kind: str, row: Row) -> str:
    """The strong entity tag of a row: opaque, new for every change of the row."""
    seed = f"{kind}:{row['id']}:{row['version']}:{row['updated_at']}".encode()
    return '"' + hashlib.sha256(seed).hexdigest()[:24] + '"'


def public(kind: str, row: Row) -> Row:
    """The row's public fields (no version, no name_key), in a stable order."""
    return {name: row[name] for name in _PUBLIC[kind]}


def _valid_id(value: int) -> bool:
    return 0 < value <= MAX_ID


# --- the store -----------------------------------------------------------------


class _Handle:
    """One thread's connection, in an object that weak references can point to."""

    __slots__ = ("conn", "pid", "__weakref__")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pid = os.getpid()


class Store:
    """The zoo's data in an SQLite file.

    Args:
        path: the database file; created with its schema when new.
        empty: when creating the database, add only the animal types, no demo data.
        deadline: seconds a write may wait for the write lock (this process's and SQLite's together).
        durability: ``"full"`` (sync every commit) or ``"normal"`` (sync at checkpoints).
    """

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
        incidents.end()

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
            return InsufficientStorage("the database's disk is full; writes are refused until space is freed")
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
                    _run_script(conn, JOBS_SCHEMA)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                return
            _run_script(conn, SCHEMA)
            _run_script(conn, JOBS_SCHEMA)
            now = utc_now()
            conn.executemany(
                "INSERT INTO animal_types (name, description, created_at, updated_at) VALUES (?, ?, ?, ?)",
                [(name, text, now, now) for name, text in ANIMAL_TYPES],
            )
            if not empty:
                conn.executemany(
                    "INSERT INTO zoos (name, name_key, city, opened, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(name, name_key(name), city, opened, now, now) for name, city, opened in DEMO_ZOOS],
                )
                conn.executemany(
                    "INSERT INTO animals (name, animal_type_id, zoo_id, born, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(*animal, now, now) for animal in DEMO_ANIMALS],
                )
                conn.executemany(
                    "INSERT INTO employees (name, title, zoo_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                    [(*employee, now, now) for employee in DEMO_EMPLOYEES],
                )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- reading ------------------------------------------------------------------

    def _fetch(self, conn: sqlite3.Connection, kind: str, id: int) -> Row:
        """The row, or :class:`Deleted` / :class:`Missing`."""
        if _valid_id(id):
            row = conn.execute(f"SELECT * FROM {KINDS[kind].table} WHERE id = ?", (id,)).fetchone()
            if row is not None:
                return dict(row)
            tomb = conn.execute("SELECT deleted_at FROM tombstones WHERE kind = ? AND id = ?", (kind, id)).fetchone()
            if tomb is not None:
                raise Deleted(kind, id, tomb[0])
        raise Missing(kind, id)

    def get(self, kind: str, id: int) -> Row:
        """One row with its ``version``.

        Raises:
            Missing: no such row.
            Deleted: it was deleted.
        """
        with self._read() as conn:
            return self._fetch(conn, kind, id)

    def list(
        self,
        kind: str,
        *,
        filters: Mapping[str, Any] | None = None,
        sortby: str = "id",
        order: str = "asc",
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[Row], int]:
        """One page of rows and the number of rows that match ``filters``.

        ``filters`` maps a column of ``KINDS[kind].filters`` to a value
        (None matches NULL).  Text compares without regard to (ASCII) case.
        Ties in ``sortby`` are broken by ``id`` in the same direction.

        Raises:
            ValueError: an unknown column or order (the web layer checks first).
        """
        spec = KINDS[kind]
        if sortby not in spec.sortable or order not in ("asc", "desc"):
            raise ValueError(f"cannot sort {kind} by {sortby} {order}")
        where, args = [], []
        for column, value in (filters or {}).items():
            if column not in spec.filters:
                raise ValueError(f"cannot filter {kind} by {column}")
            if value is None:
                where.append(f"{column} IS NULL")
            elif kind == "zoo" and column == "name":  # the rule that makes names unique
                where.append("name_key = ?")
                args.append(name_key(value))
            elif spec.filters[column] == "text":
                where.append(f"{column} = ? COLLATE NOCASE")
                args.append(value)
            else:
                where.append(f"{column} = ?")
                args.append(value)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        collate = " COLLATE NOCASE" if sortby in _TEXT_COLUMNS else ""
        direction = order.upper()
        sql = (
            f"SELECT * FROM {spec.table}{clause}"
            f" ORDER BY {sortby}{collate} {direction}, id {direction} LIMIT ? OFFSET ?"
        )
        with self._read() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM {spec.table}{clause}", args).fetchone()[0]
            rows = [dict(row) for row in conn.execute(sql, [*args, limit, offset])]
        return rows, int(total)

    def count(self, kind: str) -> int:
        """How many rows of ``kind`` exist."""
        with self._read() as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {KINDS[kind].table}").fetchone()[0])

    # -- writing ------------------------------------------------------------------

    def _check_references(self, conn: sqlite3.Connection, kind: str, values: Mapping[str, Any]) -> None:
        problems = {}
        for column, target in KINDS[kind].references.items():
            value = values.get(column)
            if value is None:
                continue
            try:
                self._fetch(conn, target, value)
            except StoreError as exc:
                problems[column] = str(exc)
        if problems:
            raise BadReference(problems)

    def _check_zoo_name(self, conn: sqlite3.Connection, name: str, id: int | None) -> None:
        found = conn.execute("SELECT id, name FROM zoos WHERE name_key = ?", (name_key(name),)).fetchone()
        if found is not None and found["id"] != id:
            raise Conflicting(f"a zoo named {found['name']!r} already exists (zoo {found['id']})")

    def create(self, kind: str, values: Mapping[str, Any]) -> Row:
        """Insert a row from ``values`` (validated columns) and return it.

        Raises:
            BadReference: a referenced row does not exist.
            Conflicting: a zoo of that name exists.
        """
        spec = KINDS[kind]
        data: dict[str, Any] = {column: values[column] for column in spec.columns if column in values}
        with self._write() as conn:
            self._check_references(conn, kind, data)
            if kind == "zoo":
                self._check_zoo_name(conn, data["name"], None)
                data["name_key"] = name_key(data["name"])
            now = utc_now()
            data["created_at"] = data["updated_at"] = now
            columns = ", ".join(data)
            marks = ", ".join("?" * len(data))
            cursor = conn.execute(f"INSERT INTO {spec.table} ({columns}) VALUES ({marks})", list(data.values()))
            return self._fetch(conn, kind, int(cursor.lastrowid or 0))

    def update(self, kind: str, id: int, values: Mapping[str, Any], *, replace: bool, check: Check | None = None) -> Row:
        """Change a row and return it; ``replace`` sets the columns missing from ``values`` to NULL.

        ``check(current_row)`` runs inside the transaction before the change
        (for ``If-Match``); whatever it raises aborts the change.  A change
        that changes nothing keeps the row's version and ``updated_at``.

        Raises:
            Missing, Deleted: no such row.
            BadReference: a referenced row does not exist.
            Conflicting: another zoo has that name.
        """
        spec = KINDS[kind]
        with self._write() as conn:
            current = self._fetch(conn, kind, id)
            if check is not None:
                check(current)
            data = {}
            for column in spec.columns:
                if column in values:
                    data[column] = values[column]
                elif replace and column in spec.nullable:
                    data[column] = None
            changes = {column: value for column, value in data.items() if current[column] != value}
            if not changes:
                return current
            self._check_references(conn, kind, changes)
            if kind == "zoo" and "name" in changes:
                self._check_zoo_name(conn, changes["name"], id)
                changes["name_key"] = name_key(changes["name"])
            return self._apply(conn, kind, id, changes)

    def _apply(self, conn: sqlite3.Connection, kind: str, id: int, changes: Mapping[str, Any]) -> Row:
        assignments = ", ".join(f"{column} = ?" for column in changes)
        conn.execute(
            f"UPDATE {KINDS[kind].table} SET {assignments}, updated_at = ?, version = version + 1 WHERE id = ?",
            [*changes.values(), utc_now(), id],
        )
        return self._fetch(conn, kind, id)

    def delete(self, kind: str, id: int, *, check: Check | None = None) -> None:
        """Delete a row and leave a tombstone.

        Raises:
            Missing, Deleted: no such row.
            Conflicting: a zoo that still has animals or employees.
        """
        with self._write() as conn:
            current = self._fetch(conn, kind, id)
            if check is not None:
                check(current)
            if kind == "zoo":
                animals = conn.execute("SELECT COUNT(*) FROM animals WHERE zoo_id = ?", (id,)).fetchone()[0]
                employees = conn.execute("SELECT COUNT(*) FROM employees WHERE zoo_id = ?", (id,)).fetchone()[0]
                if animals or employees:
                    raise Conflicting(
                        f"zoo {id} still has {animals} animal(s) and {employees} employee(s);"
                        " move or delete the animals and fire the employees first"
                    )
            conn.execute(f"DELETE FROM {KINDS[kind].table} WHERE id = ?", (id,))
            conn.execute("INSERT INTO tombstones (kind, id, deleted_at) VALUES (?, ?, ?)", (kind, id, utc_now()))

    def require(self, kind: str, id: int) -> None:
        """Raise :class:`Missing` or :class:`Deleted` unless the row exists."""
        self.get(kind, id)

    def hire(self, zoo_id: int, employee_id: int) -> Row:
        """Employ an unemployed employee at a zoo; return the employee.

        Raises:
            Missing, Deleted: the zoo does not exist.
            BadReference: the employee does not exist.
            Conflicting: the employee already works at a zoo.
        """
        with self._write() as conn:
            self._fetch(conn, "zoo", zoo_id)
            try:
                employee = self._fetch(conn, "employee", employee_id)
            except StoreError as exc:
                raise BadReference({"employee_id": str(exc)}) from None
            if employee["zoo_id"] is not None:
                where = "this zoo" if employee["zoo_id"] == zoo_id else f"zoo {employee['zoo_id']}"
                raise Conflicting(f"employee {employee_id} already works at {where}; fire them there first")
            return self._apply(conn, "employee", employee_id, {"zoo_id": zoo_id})

    def employed(self, zoo_id: int, employee_id: int) -> Row:
        """The employee, if they work at the zoo.

        Raises:
            Missing, Deleted: the zoo or the employee does not exist.
            Conflicting: never; an employee of another zoo raises :class:`Missing`.
        """
        with self._read() as conn:
            self._fetch(conn, "zoo", zoo_id)
            employee = self._fetch(conn, "employee", employee_id)
        if employee["zoo_id"] != zoo_id:
            raise NotEmployed(zoo_id, employee_id)
        return employee

    def fire(self, zoo_id: int, employee_id: int, *, check: Check | None = None) -> Row:
        """End an employment; return the employee, now with ``zoo_id`` NULL.

        Raises:
            Missing, Deleted: the zoo or the employee does not exist.
            NotEmployed: the employee does not work at that zoo.
        """
        with self._write() as conn:
            self._fetch(conn, "zoo", zoo_id)
            employee = self._fetch(conn, "employee", employee_id)
            if employee["zoo_id"] != zoo_id:
                raise NotEmployed(zoo_id, employee_id)
            if check is not None:
                check(employee)
            return self._apply(conn, "employee", employee_id, {"zoo_id": None})


def rekey_zoos(conn: Any, mark: str) -> None:
    """Recompute every zoo's ``name_key`` (schema 1 -> 2) with ``conn``, inside the caller's transaction.

    ``conn.execute`` must return rows that unpack as ``(id, name)``; ``mark``
    is the driver's parameter mark.  Names that were distinct under
    ``casefold()`` alone may now share a key: the zoo with the lowest id
    keeps it, the others get ``key + "\\x1f" + id`` (still unique; a name
    cannot hold a control character, so no real key collides with it).
    """
    rows = [(row[0], row[1]) for row in conn.execute("SELECT id, name FROM zoos ORDER BY id").fetchall()]
    # free every key first: the index is unique
    conn.execute(f"UPDATE zoos SET name_key = CAST({mark} AS TEXT) || CAST(id AS TEXT)", (KEY_SEPARATOR,))
    taken: set[str] = set()
    for id, name in rows:
        key = name_key(name)
        if key in taken:
            key = f"{key}{KEY_SEPARATOR}{id}"
        taken.add(key)
        conn.execute(f"UPDATE zoos SET name_key = {mark} WHERE id = {mark}", (key, id))


KEY_SEPARATOR = "\x1f"


class NotEmployed(Missing):
    """The employee exists but does not work at that zoo."""

    def __init__(self, zoo_id: int, employee_id: int) -> None:
        StoreError.__init__(self, f"employee {employee_id} does not work at zoo {zoo_id}")
        self.kind, self.id = "employee", employee_id
