"""What the zoo takes and gives, as typed models: restkit validates and documents them.

* **Bodies** (``ZooIn``, ``AnimalIn``, ``EmployeeIn``, ``HireIn``): a route
  declares ``body=ZooIn`` and its handler receives a validated ``ZooIn``; a
  body that fails is ``422 {"error": "validation failed", "details":
  {field: message}}`` naming every bad field.  Unknown fields are refused,
  and so are the fields the server owns (``id``, ``created_at``, ``links``...).
* **Query parameters** (``ZooQuery``, ``AnimalQuery``...): ``query=ZooQuery``;
  a bad parameter is ``400`` naming it.  Filters that are not given are
  :data:`restkit.validation.UNSET`; ``null`` filters for a missing id or date.
* **Answers** (``Zoo``, ``Animal``, ``Item``...): ``responses={200: Zoo}``
  puts their JSON Schema into ``/openapi.json``.

What a type cannot say is checked in ``app.py`` and by :mod:`restkit.paging` with the
same statuses: ``born`` not in the future (blank text the pattern refuses),
ids in a body that must exist (inside the store's write transaction), paging
with ``limit``/``offset`` *or* ``page``/``per_page`` (both only if they agree), repeated parameters.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Annotated, Literal, TypedDict

from restkit.validation import UNSET, Field

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_ID",
    "MAX_LIMIT",
    "Animal",
    "AnimalIn",
    "AnimalQuery",
    "AnimalType",
    "AnimalTypeQuery",
    "Employee",
    "EmployeeIn",
    "EmployeeQuery",
    "HireIn",
    "Item",
    "Paging",
    "RecentAnimalQuery",
    "RootLink",
    "Zoo",
    "ZooAnimalQuery",
    "ZooEmployeeQuery",
    "ZooIn",
    "ZooQuery",
]

MAX_ID = 2**63 - 1  # the largest SQLite integer
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

# Text: 1-100 characters, no control characters, not blank.  Blanks around it
# are allowed (and stripped before storing).  The pattern is unambiguous, so
# matching it takes linear time even on a megabyte of hostile text.  "Blank" is
# what str.strip() removes, spelled out (not \s, which differs between Python and
# the ECMA-262 regexes of JSON Schema): text the document allows is never refused.
_BLANKS = r" \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN = (rf"[\t\n\r{_BLANKS}]*[^\x00-\x1f\x7f{_BLANKS}]"
                rf"(?:[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f{_BLANKS}])?[\t\n\r{_BLANKS}]*")
Text = Annotated[
    str,
    Field(min_length=1, max_length=100, pattern=TEXT_PATTERN, description="1-100 characters, no control characters"),
]
OptionalText = Annotated[
    str | None,
    Field(min_length=1, max_length=100, pattern=TEXT_PATTERN, description="1-100 characters, or null"),
]
Id = Annotated[int, Field(ge=1, le=MAX_ID, description="the id of an existing resource")]


# --- request bodies ------------------------------------------------------------------


@dataclass
class ZooIn:
    """A zoo as a client sends it: POST and PUT need name and city; PATCH sends any fields."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT_PATTERN,
                               description="unique, case-insensitively", example="Tierpark")]
    city: Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT_PATTERN, example="Berlin")]
    opened: datetime.date | None = None


@dataclass
class AnimalIn:
    """An animal as a client sends it; ``animal_type_id`` and ``zoo_id`` must exist."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT_PATTERN, example="Knut")]
    animal_type_id: Id
    zoo_id: Id
    born: Annotated[datetime.date | None, Field(description="not in the future")] = None


@dataclass
class EmployeeIn:
    """An employee as a client sends it; the zoo changes only by hiring and firing."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT_PATTERN, example="Ada Keeper")]
    title: OptionalText = None


@dataclass
class HireIn:
    """Whom to hire: an employee who works at no zoo yet."""

    employee_id: Id


# --- query parameters ------------------------------------------------------------------

# Filters: absent (UNSET) unless given.  Ids and dates also take "null": the
# resources whose id or date is missing.
IdFilter = Annotated[int, Field(ge=1, le=MAX_ID)] | Literal["null"]
DateFilter = datetime.date | Literal["null"]
TextFilter = Annotated[str, Field(max_length=100, description="equal, without regard to ASCII case")]
Order = Literal["asc", "desc"]


@dataclass
class Paging:
    """``limit`` & ``offset``, or ``page`` & ``per_page``: both in one request must name the same page.

    ``paging_for`` takes the paging's defaults from here; the document states them in words, not
    as ``default``, so that clients generated from it do not send all four.
    """

    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="items per page, with offset")] = DEFAULT_LIMIT
    offset: Annotated[int, Field(ge=0, le=MAX_ID, description="items to skip, with limit")] = 0
    page: Annotated[int, Field(ge=1, le=MAX_ID, description="page number, with per_page")] = 1
    per_page: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="items per page, with page")] = DEFAULT_LIMIT


@dataclass
class ZooQuery(Paging):
    sortby: Literal["id", "name", "city", "opened", "created_at", "updated_at"] = "id"
    order: Order = "asc"
    name: TextFilter = UNSET
    city: TextFilter = UNSET
    opened: DateFilter = UNSET


@dataclass
class ZooAnimalQuery(Paging):
    """The animals of one zoo: the filters of /animals but zoo_id."""

    sortby: Literal["id", "name", "animal_type_id", "zoo_id", "born", "created_at", "updated_at"] = "id"
    order: Order = "asc"
    name: TextFilter = UNSET
    animal_type_id: IdFilter = UNSET
    born: DateFilter = UNSET


@dataclass
class AnimalQuery(ZooAnimalQuery):
    zoo_id: IdFilter = UNSET


@dataclass
class RecentAnimalQuery(AnimalQuery):
    """``/animals`` with other defaults: the 10 animals added last."""

    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="items per page, with offset")] = 10
    sortby: Literal["id", "name", "animal_type_id", "zoo_id", "born", "created_at", "updated_at"] = "created_at"
    order: Order = "desc"


@dataclass
class AnimalTypeQuery(Paging):
    sortby: Literal["id", "name"] = "id"
    order: Order = "asc"
    name: TextFilter = UNSET


@dataclass
class ZooEmployeeQuery(Paging):
    """The employees of one zoo: the filters of /employees but zoo_id."""

    sortby: Literal["id", "name", "title", "zoo_id", "created_at", "updated_at"] = "id"
    order: Order = "asc"
    name: TextFilter = UNSET
    title: TextFilter = UNSET


@dataclass
class EmployeeQuery(ZooEmployeeQuery):
    zoo_id: IdFilter = UNSET


# --- answers -------------------------------------------------------------------------------


class RootLink(TypedDict):
    """A link of the hypermedia root."""

    rel: str
    href: str
    title: str
    type: str


class Item(TypedDict):
    """A list item: the short form of a resource."""

    id: int
    name: str
    href: str


class ZooLinks(TypedDict):
    self: str
    animals: str
    employees: str


class AnimalLinks(TypedDict):
    self: str
    zoo: str
    animal_type: str


class AnimalTypeLinks(TypedDict):
    self: str
    animals: str


class _EmployeeLinks(TypedDict):
    self: str


class EmployeeLinks(_EmployeeLinks, total=False):
    zoo: str  # while employed


@dataclass
class Zoo:
    """A zoo."""

    id: int
    name: str
    city: str
    opened: datetime.date | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    links: ZooLinks


@dataclass
class Animal:
    """An animal, living at a zoo."""

    id: int
    name: str
    animal_type_id: int
    zoo_id: int
    born: datetime.date | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    links: AnimalLinks


@dataclass
class AnimalType:
    """A kind of animal (read-only)."""

    id: int
    name: str
    description: str
    links: AnimalTypeLinks


@dataclass
class Employee:
    """An employee; ``zoo_id`` is null while not employed."""

    id: int
    name: str
    title: str | None
    zoo_id: int | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    links: EmployeeLinks
