"""What both stores do alike: the zoo's rules, written once over what the engines do differently.

:class:`BaseStore` holds every read and write of the zoo; :class:`examples.zoo.store.Store`
(SQLite) and :class:`examples.zoo.store_pg.PgStore` (PostgreSQL) subclass it
and supply only what truly differs:

* **transactions**: ``_read()`` (one snapshot) and ``_write()`` (one
  transaction: committed at the end of the block, rolled back by any
  exception, the driver's storage errors raised as :mod:`examples.zoo.faults`);
* **statements**: ``_execute()`` runs the SQL written here with ``?`` marks
  (psycopg wants ``%s``); ``_inserted()`` and ``_updated()`` return the row
  just written (``lastrowid`` and a read back, or ``RETURNING *``);
* **locks**: :attr:`~BaseStore.FOR_UPDATE` and :attr:`~BaseStore.FOR_KEY_SHARE` end the reads a
  write depends on: empty on SQLite, where ``BEGIN IMMEDIATE`` lets one writer in at a time;
  ``_apply_rename()`` catches a zoo name taken by a concurrent writer since the check;
* **text**: how a filter compares and a sort orders text without regard to
  ASCII case, and where nulls sort (first when ascending, as SQLite does).

One deadline from arrival
-------------------------
A request may wait for the database ``deadline`` seconds counted from its
arrival, not from when a worker thread picked it up: the app tells the store
when the request arrived (:meth:`BaseStore.deadline_from`, with
``environ["restkit.received"]`` under restkit's server), and every wait of
the engine (a lock, a pooled connection, a connect, a statement) is given
:meth:`BaseStore.time_left`.  A request that already spent its deadline
queueing for a thread gets 503 before the database is asked.  Work outside a
request (the job runner, start-up) gets a whole deadline for each unit.

Rules kept here
---------------
* **Checks inside the transaction.**  Whatever a write depends on (the zoo
  of a new animal exists, a zoo name is free, an ``If-Match`` precondition
  passed in as ``check``) is checked inside the write's transaction, so a
  concurrent request cannot slip in between the check and the write: of two
  racing requests exactly one wins.  Any exception rolls the whole write
  back: invalid input changes nothing.
* **Tombstones.**  A deleted row leaves ``(kind, id, deleted_at)`` in the
  ``tombstones`` table, so the API can tell "deleted" (410) from "never
  existed" (404).  Ids come from the engine's never-reused sequence
  (``AUTOINCREMENT``, ``GENERATED ALWAYS AS IDENTITY``), never from here.
* **Versions.**  Every row has a ``version`` that each change increments; with
  ``updated_at`` it makes the resource's entity tag (:func:`~examples.zoo.records.etag`).
  A change that changes nothing keeps both.
* **Names.**  Zoo names are unique by :func:`examples.zoo.names.name_key`,
  kept in ``zoos.name_key`` under a unique index; ``?name=`` compares keys too.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Generic, TypeVar

from .faults import LATE, Incidents, Unavailable
from .names import name_key
from .records import (
    KINDS,
    TEXT_COLUMNS,
    BadReference,
    Check,
    Conflicting,
    Deleted,
    Missing,
    NotEmployed,
    Row,
    SQL,
    Cursor,
    StoreError,
    utc_now,
    valid_id,
)

__all__ = ["BaseStore"]

Conn = TypeVar("Conn")


class BaseStore(ABC, Generic[Conn]):
    """The zoo's reads and writes over ``Conn``, what a subclass's ``_read()`` and ``_write()`` yield."""

    path: str  # what the zoo prints as its database
    deadline: float
    durability: str
    incidents: Incidents  # the storage faults going on; a successful write may end them

    # ends the SELECT of a row the write changes (another writer waits for our commit)
    FOR_UPDATE: ClassVar[str]
    # ends the SELECT of a row the write refers to (nobody deletes it until our commit)
    FOR_KEY_SHARE: ClassVar[str]
    # a filter on the text column {column} with one ? mark; sort keys of a text column and of a timestamp
    TEXT_EQUALS: ClassVar[str]
    TEXT_ORDER: ClassVar[str]
    TIME_ORDER: ClassVar[str]
    # "asc"/"desc" -> the sort key's direction, nulls first when ascending (ties: by id, plainly)
    DIRECTIONS: ClassVar[Mapping[str, str]]
    # ends a SELECT that claims a row of a queue (jobs.py): other claimers skip the rows locked
    SKIP_LOCKED: ClassVar[str]

    # -- what the engine supplies -------------------------------------------------

    @abstractmethod
    def _read(self) -> AbstractContextManager[Conn]:
        """One read-only snapshot: a count and its page agree."""

    @abstractmethod
    def _write(self, *, frees: bool = False) -> AbstractContextManager[Conn]:
        """One write transaction, committed when the block ends and rolled back by any exception.

        ``frees``: the write deletes rows, so it may run while the disk is full (it makes room)."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection the store opened (call when no request is running)."""

    # -- the request's deadline -----------------------------------------------------

    # per thread: when the request this thread serves must be answered (``due``); a
    # threading.local each store makes in its constructor, not the module's
    _requests: threading.local

    @contextmanager
    def deadline_from(self, received: float) -> Iterator[None]:
        """The block serves a request that arrived at ``received`` (``time.monotonic()``): its waits
        for the database end ``deadline`` seconds after that."""
        self._requests.due = received + self.deadline
        try:
            yield
        finally:
            self._requests.due = None

    def time_left(self) -> float:
        """Seconds the current request may still wait for the database (a whole deadline outside a request).

        Raises:
            Unavailable: none is left (the request queued for a thread beyond its deadline).
        """
        due = getattr(self._requests, "due", None)
        if due is None:
            return self.deadline
        left: float = due - time.monotonic()
        if left <= 0:
            raise Unavailable(LATE, incident="busy")
        return left

    def gone(self) -> bool:
        """Whether the database has disappeared (an SQLite file deleted): connecting would make a new one."""
        return False

    # -- SQL of a caller's own (the job queue's) -----------------------------------

    @property
    def skip_locked(self) -> str:
        """What ends a ``SELECT`` that claims a row of a queue: ``FOR UPDATE SKIP LOCKED`` where rows
        are locked (PostgreSQL), nothing where one writer runs at a time (SQLite)."""
        return self.SKIP_LOCKED

    @contextmanager
    def reading(self) -> Iterator[SQL]:
        """One read-only snapshot for SQL of the caller's own, with ``?`` marks on either engine."""
        with self._read() as conn:
            yield self._sql(conn)

    @contextmanager
    def writing(self) -> Iterator[SQL]:
        """One write transaction for SQL of the caller's own (``?`` marks), with the store's guarantees:
        committed at the end of the block, rolled back by any exception, storage errors raised as
        :mod:`examples.zoo.faults`, the request's deadline for locks."""
        with self._write() as conn:
            yield self._sql(conn)

    def _sql(self, conn: Conn) -> SQL:
        def execute(query: str, args: Sequence[Any] = ()) -> Cursor:
            result: Cursor = self._execute(conn, query, args)
            return result

        return execute

    @abstractmethod
    def _execute(self, conn: Conn, query: str, args: Sequence[Any] = ()) -> Any:
        """Run ``query`` (``?`` marks) and return the driver's cursor."""

    @abstractmethod
    def _inserted(self, conn: Conn, kind: str, statement: str, args: Sequence[Any]) -> Row | None:
        """Run the INSERT ``statement`` and return the new row; None when it is a zoo whose
        ``name_key`` a concurrent writer took after :meth:`_check_zoo_name`."""

    @abstractmethod
    def _updated(self, conn: Conn, kind: str, id: int, statement: str, args: Sequence[Any]) -> Row:
        """Run the UPDATE ``statement`` of row ``id`` and return the row as it is now."""

    def _apply_rename(self, conn: Conn, kind: str, id: int, changes: Mapping[str, Any]) -> Row | None:
        """:meth:`_apply` for changes that include a zoo's ``name_key``; None when a concurrent
        writer took that key after :meth:`_check_zoo_name`.

        Where one writer runs at a time nobody can have: this default just applies.
        """
        return self._apply(conn, kind, id, changes)

    # -- reading ------------------------------------------------------------------

    def _one(self, conn: Conn, query: str, args: Sequence[Any] = ()) -> Row | None:
        row = self._execute(conn, query, args).fetchone()
        return None if row is None else dict(row)  # a dict on both engines: an sqlite3.Row is not one

    def _fetch(self, conn: Conn, kind: str, id: int, lock: str = "") -> Row:
        """The row, or :class:`Deleted` / :class:`Missing`; ``lock``: :attr:`FOR_UPDATE`, :attr:`FOR_KEY_SHARE`."""
        if valid_id(id):
            row = self._one(conn, f"SELECT * FROM {KINDS[kind].table} WHERE id = ?{lock}", (id,))
            if row is not None:
                return row
            tomb = self._one(conn, "SELECT deleted_at FROM tombstones WHERE kind = ? AND id = ?", (kind, id))
            if tomb is not None:
                raise Deleted(kind, id, tomb["deleted_at"])
        raise Missing(kind, id)

    def get(self, kind: str, id: int) -> Row:
        """One row with its ``version``.

        Raises:
            Missing: no such row.
            Deleted: it was deleted.
        """
        with self._read() as conn:
            return self._fetch(conn, kind, id)

    def require(self, kind: str, id: int) -> None:
        """Raise :class:`Missing` or :class:`Deleted` unless the row exists."""
        self.get(kind, id)

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
        (None matches NULL).  Text compares without regard to (ASCII) case;
        a zoo's name by its key.  Ties in ``sortby`` are broken by ``id`` in
        the same direction.

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
                where.append(self.TEXT_EQUALS.format(column=column))
                args.append(value)
            else:
                where.append(f"{column} = ?")
                args.append(value)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        if sortby in TEXT_COLUMNS:
            key = self.TEXT_ORDER.format(column=sortby)
        elif sortby in ("created_at", "updated_at"):
            key = self.TIME_ORDER.format(column=sortby)
        else:
            key = sortby
        page = (
            f"SELECT * FROM {spec.table}{clause}"
            f" ORDER BY {key} {self.DIRECTIONS[order]}, id {order.upper()} LIMIT ? OFFSET ?"
        )
        with self._read() as conn:
            counted = self._one(conn, f"SELECT COUNT(*) AS n FROM {spec.table}{clause}", args)
            rows = [dict(row) for row in self._execute(conn, page, [*args, limit, offset])]
        return rows, int(counted["n"]) if counted else 0

    def count(self, kind: str) -> int:
        """How many rows of ``kind`` exist."""
        with self._read() as conn:
            counted = self._one(conn, f"SELECT COUNT(*) AS n FROM {KINDS[kind].table}")
            return int(counted["n"]) if counted else 0

    def employed(self, zoo_id: int, employee_id: int) -> Row:
        """The employee, if they work at the zoo.

        Raises:
            Missing, Deleted: the zoo or the employee does not exist.
            NotEmployed: (a :class:`Missing`) the employee works elsewhere or nowhere.
        """
        with self._read() as conn:
            self._fetch(conn, "zoo", zoo_id)
            employee = self._fetch(conn, "employee", employee_id)
        if employee["zoo_id"] != zoo_id:
            raise NotEmployed(zoo_id, employee_id)
        return employee

    # -- checks inside a write ------------------------------------------------------

    def _check_references(self, conn: Conn, kind: str, values: Mapping[str, Any]) -> None:
        problems = {}
        for column, target in KINDS[kind].references.items():
            value = values.get(column)
            if value is None:
                continue
            try:
                self._fetch(conn, target, value, self.FOR_KEY_SHARE)  # not deletable until we commit
            except StoreError as exc:
                problems[column] = str(exc)
        if problems:
            raise BadReference(problems)

    def _check_zoo_name(self, conn: Conn, name: str, id: int | None) -> None:
        found = self._one(conn, "SELECT id, name FROM zoos WHERE name_key = ?", (name_key(name),))
        if found is not None and found["id"] != id:
            raise Conflicting(f"a zoo named {found['name']!r} already exists (zoo {found['id']})")

    # -- writing ------------------------------------------------------------------

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
            data["created_at"] = data["updated_at"] = utc_now()
            marks = ", ".join("?" * len(data))
            statement = f"INSERT INTO {spec.table} ({', '.join(data)}) VALUES ({marks})"
            row = self._inserted(conn, kind, statement, list(data.values()))
            if row is None:  # a concurrent create took the name after our check, and committed
                self._check_zoo_name(conn, data["name"], None)
                raise Conflicting(f"a zoo named {data['name']!r} already exists")
            return row

    def update(self, kind: str, id: int, values: Mapping[str, Any], *, replace: bool,
               check: Check | None = None) -> Row:
        """Change a row and return it; ``replace`` sets the columns missing from ``values`` to NULL.

        ``check(current_row)`` runs inside the transaction before the change
        (for ``If-Match``), on the row locked against other writers; whatever
        it raises aborts the change.  A change that changes nothing keeps the
        row's version and ``updated_at``.

        Raises:
            Missing, Deleted: no such row.
            BadReference: a referenced row does not exist.
            Conflicting: another zoo has that name.
        """
        spec = KINDS[kind]
        with self._write() as conn:
            current = self._fetch(conn, kind, id, self.FOR_UPDATE)
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
                row = self._apply_rename(conn, kind, id, changes)
                if row is None:  # a concurrent write took the name after our check, and committed
                    self._check_zoo_name(conn, changes["name"], id)
                    raise Conflicting(f"a zoo named {changes['name']!r} already exists")
                return row
            return self._apply(conn, kind, id, changes)

    def _apply(self, conn: Conn, kind: str, id: int, changes: Mapping[str, Any]) -> Row:
        assignments = ", ".join(f"{column} = ?" for column in changes)
        statement = f"UPDATE {KINDS[kind].table} SET {assignments}, updated_at = ?, version = version + 1 WHERE id = ?"
        return self._updated(conn, kind, id, statement, [*changes.values(), utc_now(), id])

    def delete(self, kind: str, id: int, *, check: Check | None = None) -> None:
        """Delete a row and leave a tombstone.

        Raises:
            Missing, Deleted: no such row.
            Conflicting: a zoo that still has animals or employees.
        """
        with self._write(frees=True) as conn:
            current = self._fetch(conn, kind, id, self.FOR_UPDATE)
            if check is not None:
                check(current)
            if kind == "zoo":
                # FOR UPDATE waited for every transaction that had the zoo FOR KEY SHARE: their rows count
                counted = self._one(
                    conn,
                    "SELECT (SELECT COUNT(*) FROM animals WHERE zoo_id = ?) AS animals,"
                    " (SELECT COUNT(*) FROM employees WHERE zoo_id = ?) AS employees",
                    (id, id),
                )
                animals, employees = (counted["animals"], counted["employees"]) if counted else (0, 0)
                if animals or employees:
                    raise Conflicting(
                        f"zoo {id} still has {animals} animal(s) and {employees} employee(s);"
                        " move or delete the animals and fire the employees first"
                    )
            self._execute(conn, f"DELETE FROM {KINDS[kind].table} WHERE id = ?", (id,))
            self._execute(conn, "INSERT INTO tombstones (kind, id, deleted_at) VALUES (?, ?, ?)", (kind, id, utc_now()))

    def hire(self, zoo_id: int, employee_id: int) -> Row:
        """Employ an unemployed employee at a zoo; return the employee.

        Raises:
            Missing, Deleted: the zoo does not exist.
            BadReference: the employee does not exist.
            Conflicting: the employee already works at a zoo.
        """
        with self._write() as conn:
            self._fetch(conn, "zoo", zoo_id, self.FOR_KEY_SHARE)
            try:
                employee = self._fetch(conn, "employee", employee_id, self.FOR_UPDATE)
            except StoreError as exc:
                raise BadReference({"employee_id": str(exc)}) from None
            if employee["zoo_id"] is not None:
                where = "this zoo" if employee["zoo_id"] == zoo_id else f"zoo {employee['zoo_id']}"
                raise Conflicting(f"employee {employee_id} already works at {where}; fire them there first")
            return self._apply(conn, "employee", employee_id, {"zoo_id": zoo_id})

    def fire(self, zoo_id: int, employee_id: int, *, check: Check | None = None) -> Row:
        """End an employment; return the employee, now with ``zoo_id`` NULL.

        Raises:
            Missing, Deleted: the zoo or the employee does not exist.
            NotEmployed: the employee does not work at that zoo.
        """
        with self._write(frees=True) as conn:
            self._fetch(conn, "zoo", zoo_id)
            employee = self._fetch(conn, "employee", employee_id, self.FOR_UPDATE)
            if employee["zoo_id"] != zoo_id:
                raise NotEmployed(zoo_id, employee_id)
            if check is not None:
                check(employee)
            return self._apply(conn, "employee", employee_id, {"zoo_id": None})
