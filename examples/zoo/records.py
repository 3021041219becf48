"""What the zoo's data is made of, whichever engine holds it.

Kinds of resource, rows, the errors about them, and what a store offers.

The stores (:mod:`examples.zoo.store`, :mod:`examples.zoo.store_pg`) build
their SQL from :data:`KINDS`, raise the errors below and offer the
:class:`Store` protocol; the HTTP layer only knows that protocol, turns the
errors into statuses and rows into answers with :func:`public` and
:func:`etag`.  Nothing here touches a database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from .faults import Incidents

__all__ = [
    "BadReference",
    "Check",
    "Cursor",
    "Conflicting",
    "Deleted",
    "KINDS",
    "Kind",
    "MAX_ID",
    "Missing",
    "NotEmployed",
    "Row",
    "SQL",
    "Store",
    "StoreError",
    "TEXT_COLUMNS",
    "etag",
    "public",
    "utc_now",
    "valid_id",
]

Row = dict[str, Any]
Check = Callable[[Row], None]

MAX_ID = 2**63 - 1  # the largest SQLite integer, and PostgreSQL's BIGINT


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

# columns that sort and compare without regard to (ASCII) case
TEXT_COLUMNS = frozenset({"name", "city", "title", "description"})
_PUBLIC = {
    "zoo": ("id", "name", "city", "opened", "created_at", "updated_at"),
    "animal": ("id", "name", "animal_type_id", "zoo_id", "born", "created_at", "updated_at"),
    "animal_type": ("id", "name", "description"),
    "employee": ("id", "name", "title", "zoo_id", "created_at", "updated_at"),
}


# --- what a store offers ----------------------------------------------------------


class Cursor(Protocol):
    """What :class:`SQL` returns: the driver's cursor (rows are mappings on both engines)."""

    def fetchone(self) -> Any: ...


class SQL(Protocol):
    """Runs one statement of SQL with ``?`` marks, whichever the engine, inside a transaction."""

    def __call__(self, query: str, args: Sequence[Any] = ()) -> Cursor: ...


class Store(Protocol):
    """The zoo's data, on SQLite (:class:`examples.zoo.store.Store`) or PostgreSQL
    (:class:`examples.zoo.store_pg.PgStore`): the one interface the HTTP layer, the
    jobs and the engine selection know.  The methods are documented in
    :class:`examples.zoo.store_base.BaseStore`, which both engines subclass.
    """

    path: str  # the database, as the zoo prints it
    incidents: Incidents  # the storage faults going on (the HTTP layer reports them)

    @property
    def skip_locked(self) -> str:
        """What ends a ``SELECT`` that claims a row of a queue, so that other claimers skip it."""

    def get(self, kind: str, id: int) -> Row: ...
    def require(self, kind: str, id: int) -> None: ...
    def list(self, kind: str, *, filters: Mapping[str, Any] | None = None, sortby: str = "id", order: str = "asc",
             limit: int = 20, offset: int = 0) -> tuple[list[Row], int]: ...
    def count(self, kind: str) -> int: ...
    def employed(self, zoo_id: int, employee_id: int) -> Row: ...
    def create(self, kind: str, values: Mapping[str, Any]) -> Row: ...
    def update(self, kind: str, id: int, values: Mapping[str, Any], *, replace: bool,
               check: Check | None = None) -> Row: ...
    def delete(self, kind: str, id: int, *, check: Check | None = None) -> None: ...
    def hire(self, zoo_id: int, employee_id: int) -> Row: ...
    def fire(self, zoo_id: int, employee_id: int, *, check: Check | None = None) -> Row: ...
    def reading(self) -> AbstractContextManager[SQL]: ...
    def writing(self) -> AbstractContextManager[SQL]: ...
    def gone(self) -> bool: ...
    def deadline_from(self, received: float) -> AbstractContextManager[None]: ...  # a request's deadline, from arrival
    def close(self) -> None: ...


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


class NotEmployed(Missing):
    """The employee exists but does not work at that zoo."""

    def __init__(self, zoo_id: int, employee_id: int) -> None:
        StoreError.__init__(self, f"employee {employee_id} does not work at zoo {zoo_id}")
        self.kind, self.id = "employee", employee_id


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


def valid_id(value: int) -> bool:
    """Whether ``value`` can be a row's id (an id out of range is simply not found)."""
    return 0 < value <= MAX_ID
