"""The zoo REST API: the HTTP layer of v1 over the :class:`~examples.zoo.records.Store` protocol.

``make_app(db_path, token=...)`` builds the WSGI app; ``python -m
examples.zoo`` serves it.  v1 lives under ``/v1`` (``GET /v1`` lists its
collections as ``{rel, href, title, type}`` links), v2 under ``/v2``
(:mod:`examples.zoo.v2`); ``GET /`` links both in HAL form.  What both
versions share is :mod:`examples.zoo.web`'s; with a sunset date, v1's
answers announce its retirement (:mod:`examples.zoo.deprecation`).

Conventions followed (from the REST guides in ``shared/seeds``)
----------------------------------------------------------------
* Plural nouns for collections, ids below them (``/v1/zoos/1``), lower case
  with underscores, the version in the URL; nested collections where a
  relation reads naturally (``/v1/zoos/1/animals`` is ``/v1/animals?zoo_id=1``);
  a named shortcut for a frequent query (``/v1/animals/recently_added``).
* The method says what happens: GET reads, POST creates (201, ``Location``,
  the full object), PUT replaces (every required field), PATCH changes the
  fields given, DELETE removes (204, empty body).  PUT and PATCH answer 200
  with the full object.
* A list is a JSON array of short items ``{id, name, href}``; its paging
  metadata goes in headers: ``X-Total-Count`` and an RFC 8288 ``Link``
  header with ``first``, ``prev``, ``next`` and ``last``.
* A detail object carries ``links`` (``self``; a zoo also ``animals`` and
  ``employees``; an animal its ``zoo`` and ``animal_type``; an employee
  its ``zoo`` while employed).
* Every error is a status code with ``{"error": "..."}``; a failed validation
  adds ``"details": {field: message}``.  Never an error with 200, never a
  500 for anything a client sends.
* The API documents itself: bodies, query parameters and answers are typed
  models (:mod:`examples.zoo.schemas`) that restkit validates and turns into
  ``/openapi.json``; ``/docs`` shows it and tries requests out.

Choices where the issue is silent
---------------------------------
* **Auth** (:mod:`restkit.auth`).  Reads (GET, HEAD, OPTIONS) are public.
  Writes need ``Authorization: Bearer <token>`` with the scope ``write``: no
  or a wrong token is 401 with ``WWW-Authenticate``, the read-only token
  403.  Tokens are compared in constant time.  An app made without a token
  refuses every write.
* **Order of checks.**  Route (404/405), ``Accept`` (406), declared body size
  (413), rate limit (429), token (401/403), ``Idempotency-Key`` (400, 409,
  422, or the kept answer), the target exists (404/410, a
  before-request hook for routes with a query or body model), query
  parameters (400), body type and syntax (415/400), validation (422), what
  the models cannot say (422/400), conflicts and preconditions inside the
  write transaction (409/412).
* **410.**  Deleting leaves a tombstone; ids are never reused, so a deleted id
  answers 410 for ever and an id that never existed 404.
* **ETags** (:mod:`restkit.conditional`).  Strong and opaque: a hash of the
  resource's kind, id, version and ``updated_at``; every change makes a new
  one, a PUT or PATCH that changes nothing keeps it.  ``If-Match`` (PUT,
  PATCH, DELETE, firing) is checked inside the write transaction with
  :func:`~restkit.conditional.check_preconditions`: a mismatch is 412 and
  nothing changes.  ``If-None-Match`` on a detail GET answers 304 (the
  ``conditional=`` route option).  ``If-Match`` on a missing resource is
  404/410, not 412.
* **Bodies.**  Unknown fields are refused (422 ``"unknown field"``), and so
  are server-owned ones (``id``, ``created_at``, ``updated_at``, ``links``;
  an employee's ``zoo_id`` changes only by hiring and firing).  Text holds
  1-100 characters and no control characters, is stripped of surrounding
  blanks and must not be blank.  Dates are ``YYYY-MM-DD``; ``born``
  may not be in the future.  PUT sets optional fields it does not name to
  null.  Zoo names are unique case-insensitively and among look-alikes
  (:mod:`examples.zoo.names`: NFKC, case folding, the UTS #39 skeleton).
* **Lists** (:mod:`restkit.paging`).  ``limit`` 1-100 (default 20) & ``offset`` >= 0, or ``page`` >= 1
  & ``per_page`` 1-100 (both styles in one request must name the same page); ``sortby`` any
  field of the resource (ties broken by id; text sorts without regard to ASCII case; nulls first when ascending);
  ``order`` ``asc`` or ``desc``; filters compare for equality (text without
  regard to ASCII case; ``null`` matches a missing date or id).  Unknown or repeated
  parameters are 400 too, so a typo never silently returns everything
  (the query models refuse unknown ones, :class:`~restkit.paging.Paging` repeated ones).
  ``Link`` URLs are absolute and keep the filters.  ``recently_added`` takes
  the same parameters, with other defaults.
* **Rate limit** (:mod:`restkit.ratelimit`).  ``rate_limit`` requests per
  client address in any 60 seconds (a sliding window), counting every
  request, errors included; over it: 429 with ``Retry-After``.  While the
  limit is on, every response carries ``X-RateLimit-Limit`` and
  ``X-RateLimit-Remaining``.  Requests answered before the hooks run (404,
  405, 406...) are counted afterwards.
* **Idempotent retries** (:mod:`restkit.idempotency`).  Every POST and PATCH
  takes an ``Idempotency-Key``: a retry with the same key and body gets the
  first answer again (``Idempotent-Replayed: true``) for 24 hours; the same key
  with another body is 422, a retry while the first runs 409.  The keys live
  in the zoo's database, so they hold across workers and instances.
* **CORS** (:mod:`restkit.cors`).  Off unless ``cors_origins`` names the
  origins of browser pages that may call the API (``--cors-origin``).
* **Metrics** (:mod:`restkit.metrics`).  ``GET /metrics`` answers Prometheus
  (text 0.0.4, or OpenMetrics when asked), with no auth, rate limit or access
  line, like the health probes; ``RESTKIT_METRICS_DIR`` shares the counts
  of several worker processes.
* **Compression** (:mod:`restkit.compression`).  Answers of 1 KiB or more
  (long lists) are gzipped for clients that accept it.
* **Hiring.**  ``POST /v1/zoos/{zoo}/employees`` answers 201 with the employee
  and ``Location: /v1/zoos/{zoo}/employees/{employee}``, which answers GET
  (the employee, while employed there) and DELETE (fire).  An unknown
  ``employee_id`` is 422, like any unknown id in a body.
* **URLs.**  ``Location`` is an absolute URL; ``href`` and ``links`` in bodies
  are absolute paths (they survive proxies and mounting under a prefix).
* **Times** are UTC, ISO-8601 with microseconds and ``Z``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

from restkit import App, Request, Response, Router
from restkit.auth import Auth, Bearer, Identity
from restkit.compression import Compression
from restkit.conditional import Conditional, check_preconditions
from restkit.cors import CORS, DEFAULT_EXPOSED
from restkit.health import Health
from restkit.idempotency import Idempotency
from restkit.metrics import Metrics
from restkit.proxy import ProxyHeaders
from restkit.ratelimit import RateLimit

from .deprecation import Deprecation, parse_moment
from .engine import open_key_store, open_rate_store, open_store
from .faults import StorageFault, Unavailable
from .jobs import install_jobs
from .records import (
    BadReference,
    Check,
    Conflicting,
    Deleted,
    Missing,
    Row,
    Store,
    StoreError,
    etag,
    public,
)
from .schemas import (
    Animal,
    AnimalIn,
    AnimalQuery,
    AnimalType,
    AnimalTypeQuery,
    Employee,
    EmployeeIn,
    EmployeeQuery,
    HireIn,
    Item,
    Paging,
    RecentAnimalQuery,
    RootLink,
    Zoo,
    ZooAnimalQuery,
    ZooEmployeeQuery,
    ZooIn,
    ZooQuery,
)
from .v2 import HalRoot, install_v2, successor
from .web import (
    CHANGE_ERRORS,
    GONE_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    Collections,
    collection_links,
    list_route,
    read_list,
    values,
)

__all__ = ["ZooAPI", "ZooApp", "make_app"]

logger = logging.getLogger("examples.zoo")

JSON = "application/json"

# (rel, route name, title) of each collection in the hypermedia root
COLLECTIONS = [
    ("zoos", "list_zoos", "List of zoos"),
    ("animals", "list_animals", "List of animals"),
    ("recently_added_animals", "recently_added_animals", "The animals added last"),
    ("animal_types", "list_animal_types", "List of animal types"),
    ("employees", "list_employees", "List of employees"),
]

# The path parameters that name a resource, checked by target_checker()
PATH_KINDS = {"zoo": "zoo", "animal": "animal", "employee": "employee", "animal_type": "animal_type"}

# --- what the API document says about each route -----------------------------------

#: The security scheme of writes, in the document's components.
SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "Writes need `Authorization: Bearer <token>` (the token printed at start, or --token); "
        "the read-only token is refused with 403.",
    }
}
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "The zoo REST API: zoos, their animals and employees, on SQLite. "
    "Reads are public; writes need the Bearer token. Lists page with limit & offset or page & per_page "
    "(X-Total-Count and a Link header tell the rest), sort with sortby & order and filter by field. "
    "Detail objects carry an ETag: If-None-Match answers 304, a stale If-Match 412. "
    "Errors are JSON {\"error\": ...}; a failed validation adds \"details\" per field."
)
#: Detail GETs answer If-None-Match with 304; writes check If-Match themselves (412).
#: ETags only: the zoo sends no Last-Modified, so it documents no date preconditions.
CONDITIONAL = Conditional(dates=False)


class ZooAPI:
    """The handlers; each gets the request, its path parameters and its validated ``query``/``body``."""

    def __init__(self, store: Store, writer: Auth) -> None:
        self.store = store
        self.writer = writer  # the auth writes need

    # -- helpers ----------------------------------------------------------------

    def _links(self, request: Request, kind: str, row: Row) -> dict[str, str]:
        links = {"self": request.url_for(f"show_{kind}", **{kind: row["id"]})}
        if kind == "zoo":
            links["animals"] = request.url_for("list_zoo_animals", zoo=row["id"])
            links["employees"] = request.url_for("list_zoo_employees", zoo=row["id"])
        elif kind == "animal":
            links["zoo"] = request.url_for("show_zoo", zoo=row["zoo_id"])
            links["animal_type"] = request.url_for("show_animal_type", animal_type=row["animal_type_id"])
        elif kind == "animal_type":
            links["animals"] = request.url_for("list_animals", animal_type_id=row["id"])
        elif kind == "employee" and row["zoo_id"] is not None:
            links["zoo"] = request.url_for("show_zoo", zoo=row["zoo_id"])
        return links

    def _detail(self, request: Request, kind: str, row: Row, status: int = 200,
                location: str | None = None) -> Response:
        """The full object with its ``ETag`` (and ``Location`` for a 201)."""
        headers = [("ETag", etag(kind, row))]
        if location is not None:
            headers.append(("Location", location))
        return Response.json({**public(kind, row), "links": self._links(request, kind, row)}, status, headers)

    def _if_match(self, request: Request, kind: str) -> Check | None:
        """A check for the store to run on the current row, if ``If-Match`` was sent."""
        header = request.headers.get("If-Match")
        if header is None:
            return None

        def check(row: Row) -> None:
            current = etag(kind, row)
            check_preconditions(
                request, etag=current,
                message=f"If-Match does not match the current ETag {current}: {kind.replace('_', ' ')} {row['id']}"
                " was changed since you read it; GET it again",
            )

        return check

    def _show(self, request: Request, kind: str, id: int) -> Response:
        # If-None-Match is answered by the route's conditional= option, from the ETag set here
        return self._detail(request, kind, self.store.get(kind, id))

    def _list(self, request: Request, kind: str, query: Paging, *, fixed: dict[str, Any] | None = None) -> Response:
        page, rows, total = read_list(self.store, request, kind, query, fixed)
        items = [
            {"id": row["id"], "name": row["name"], "href": request.url_for(f"show_{kind}", **{kind: row["id"]})}
            for row in rows
        ]
        return page.response(request, items, total)

    def _create(self, request: Request, kind: str, body: Any) -> Response:
        row = self.store.create(kind, values(body))
        location = request.url_for(f"show_{kind}", _external=True, **{kind: row["id"]})
        return self._detail(request, kind, row, 201, location)

    def _update(self, request: Request, kind: str, id: int, body: Any, *, replace: bool) -> Response:
        row = self.store.update(kind, id, values(body), replace=replace, check=self._if_match(request, kind))
        return self._detail(request, kind, row)

    def _delete(self, request: Request, kind: str, id: int) -> None:
        self.store.delete(kind, id, check=self._if_match(request, kind))

    # -- the root -----------------------------------------------------------------

    def root(self, request: Request) -> list[dict[str, str]]:
        """The hypermedia root: a link to every collection."""
        return [
            {"rel": rel, "href": request.url_for(name), "title": title, "type": JSON}
            for rel, name, title in COLLECTIONS
        ]

    # -- zoos ---------------------------------------------------------------------

    def list_zoos(self, request: Request, query: ZooQuery) -> Response:
        """List the zoos.

        Short items `{id, name, href}`; `X-Total-Count` and a `Link` header
        (first, prev, next, last) tell the rest.  Filters compare for equality.
        """
        return self._list(request, "zoo", query)

    def create_zoo(self, request: Request, body: ZooIn) -> Response:
        """Create a zoo.

        201 with `Location` and the zoo; 409 when a zoo of that name (in any case) exists.
        """
        return self._create(request, "zoo", body)

    def show_zoo(self, request: Request, zoo: int) -> Response:
        """Show a zoo.

        The `ETag` answers `If-None-Match` with 304; 410 once the zoo was deleted.
        """
        return self._show(request, "zoo", zoo)

    def replace_zoo(self, request: Request, zoo: int, body: ZooIn) -> Response:
        """Replace a zoo.

        Every required field; optional ones not sent become null.  A stale
        `If-Match` is 412 and changes nothing.
        """
        return self._update(request, "zoo", zoo, body, replace=True)

    def update_zoo(self, request: Request, zoo: int, body: ZooIn) -> Response:
        """Change some fields of a zoo.

        Only the fields sent change.  A stale `If-Match` is 412 and changes nothing.
        """
        return self._update(request, "zoo", zoo, body, replace=False)

    def delete_zoo(self, request: Request, zoo: int) -> None:
        """Delete a zoo.

        204; 409 while it has animals or employees.  Its id answers 410 from now on.
        """
        self._delete(request, "zoo", zoo)

    def list_zoo_animals(self, request: Request, zoo: int, query: ZooAnimalQuery) -> Response:
        """List the animals of a zoo: `/animals?zoo_id={zoo}`."""
        self.store.require("zoo", zoo)
        return self._list(request, "animal", query, fixed={"zoo_id": zoo})

    def list_zoo_employees(self, request: Request, zoo: int, query: ZooEmployeeQuery) -> Response:
        """List the employees of a zoo: `/employees?zoo_id={zoo}`."""
        self.store.require("zoo", zoo)
        return self._list(request, "employee", query, fixed={"zoo_id": zoo})

    def hire_employee(self, request: Request, zoo: int, body: HireIn) -> Response:
        """Hire an employee.

        201 with the employee and `Location: /v1/zoos/{zoo}/employees/{employee}`;
        409 when they already work at a zoo; 422 when there is no such employee.
        """
        row = self.store.hire(zoo, body.employee_id)
        location = request.url_for("show_zoo_employee", _external=True, zoo=zoo, employee=row["id"])
        return self._detail(request, "employee", row, 201, location)

    def show_zoo_employee(self, request: Request, zoo: int, employee: int) -> Response:
        """Show an employee of a zoo (404 unless they work there)."""
        row = self.store.employed(zoo, employee)
        return self._detail(request, "employee", row)

    def fire_employee(self, request: Request, zoo: int, employee: int) -> None:
        """Fire an employee: 204; 404 unless they work there."""
        self.store.fire(zoo, employee, check=self._if_match(request, "employee"))

    # -- animals ------------------------------------------------------------------

    def list_animals(self, request: Request, query: AnimalQuery) -> Response:
        """List the animals.

        Short items `{id, name, href}`; `X-Total-Count` and a `Link` header
        (first, prev, next, last) tell the rest.  `null` filters for a missing date.
        """
        return self._list(request, "animal", query)

    def recently_added_animals(self, request: Request, query: RecentAnimalQuery) -> Response:
        """List the animals added last: `/animals?sortby=created_at&order=desc&limit=10`."""
        return self._list(request, "animal", query)

    def create_animal(self, request: Request, body: AnimalIn) -> Response:
        """Create an animal.

        201 with `Location` and the animal; 422 when the animal type or the zoo does not exist.
        """
        return self._create(request, "animal", body)

    def show_animal(self, request: Request, animal: int) -> Response:
        """Show an animal.

        The `ETag` answers `If-None-Match` with 304; 410 once the animal was deleted.
        """
        return self._show(request, "animal", animal)

    def replace_animal(self, request: Request, animal: int, body: AnimalIn) -> Response:
        """Replace an animal.

        Every required field; `born` becomes null unless sent.  A stale `If-Match` is 412.
        """
        return self._update(request, "animal", animal, body, replace=True)

    def update_animal(self, request: Request, animal: int, body: AnimalIn) -> Response:
        """Change some fields of an animal (moving it to another zoo, say)."""
        return self._update(request, "animal", animal, body, replace=False)

    def delete_animal(self, request: Request, animal: int) -> None:
        """Delete an animal: 204, then its id answers 410."""
        self._delete(request, "animal", animal)

    # -- animal types (read-only) -----------------------------------------------

    def list_animal_types(self, request: Request, query: AnimalTypeQuery) -> Response:
        """List the animal types (read-only: mammal, bird, reptile, amphibian, fish, insect)."""
        return self._list(request, "animal_type", query)

    def show_animal_type(self, request: Request, animal_type: int) -> Response:
        """Show an animal type, with a link to its animals."""
        return self._show(request, "animal_type", animal_type)

    # -- employees ----------------------------------------------------------------

    def list_employees(self, request: Request, query: EmployeeQuery) -> Response:
        """List the employees; `zoo_id=null` lists those not employed."""
        return self._list(request, "employee", query)

    def create_employee(self, request: Request, body: EmployeeIn) -> Response:
        """Create an employee, not employed yet (hire them at a zoo)."""
        return self._create(request, "employee", body)

    def show_employee(self, request: Request, employee: int) -> Response:
        """Show an employee; `zoo_id` is null while not employed."""
        return self._show(request, "employee", employee)

    def replace_employee(self, request: Request, employee: int, body: EmployeeIn) -> Response:
        """Replace an employee; `title` becomes null unless sent.  The zoo stays."""
        return self._update(request, "employee", employee, body, replace=True)

    def update_employee(self, request: Request, employee: int, body: EmployeeIn) -> Response:
        """Change some fields of an employee."""
        return self._update(request, "employee", employee, body, replace=False)

    def delete_employee(self, request: Request, employee: int) -> None:
        """Delete an employee: 204, then their id answers 410."""
        self._delete(request, "employee", employee)

    # -- the route table ------------------------------------------------------------

    def router(self, *, deprecated: bool = False) -> Router:
        """Every route of the API, to mount under ``/v1``, with what the API document says of it
        (``deprecated``: every operation is marked so, see :mod:`examples.zoo.deprecation`)."""
        r = Router(defaults={"deprecated": deprecated})
        nested: dict[str, Any] = {"errors": GONE_ERRORS}
        show: dict[str, Any] = {"conditional": CONDITIONAL, "errors": GONE_ERRORS}
        create: dict[str, Any] = {"auth": self.writer, "errors": WRITE_ERRORS}
        change: dict[str, Any] = {"auth": self.writer, "conditional": CONDITIONAL, "errors": CHANGE_ERRORS}
        zoo_change: dict[str, Any] = {**change, "errors": [*CHANGE_ERRORS, 409]}

        def lists(model: type[Any], **options: Any) -> dict[str, Any]:
            return list_route(model, list[Item], **options)

        r.add_route("/", self.root, name="v1_root", responses={200: list[RootLink]}, tags=["root"])

        tags = ["zoos"]
        r.add_route("/zoos", self.list_zoos, tags=tags, **lists(ZooQuery))
        r.add_route("/zoos", self.create_zoo, methods=["POST"], body=ZooIn, responses={201: Zoo}, tags=tags,
                    auth=self.writer, errors=[*WRITE_ERRORS, 409])
        r.add_route("/zoos/<int:zoo>", self.show_zoo, responses={200: Zoo, 304: None}, tags=tags, **show)
        r.add_route("/zoos/<int:zoo>", self.replace_zoo, methods=["PUT"], body=ZooIn, responses={200: Zoo},
                    tags=tags, **zoo_change)
        r.add_route("/zoos/<int:zoo>", self.update_zoo, methods=["PATCH"], body=ZooIn, partial=True,
                    responses={200: Zoo}, tags=tags, **zoo_change)
        r.add_route("/zoos/<int:zoo>", self.delete_zoo, methods=["DELETE"], responses={204: None}, tags=tags,
                    **zoo_change)
        r.add_route("/zoos/<int:zoo>/animals", self.list_zoo_animals, tags=tags, **lists(ZooAnimalQuery, **nested))
        r.add_route("/zoos/<int:zoo>/employees", self.list_zoo_employees, tags=tags,
                    **lists(ZooEmployeeQuery, **nested))
        r.add_route("/zoos/<int:zoo>/employees", self.hire_employee, methods=["POST"], body=HireIn,
                    responses={201: Employee}, tags=tags, auth=self.writer, errors=[*WRITE_ERRORS, 409, 410])
        r.add_route("/zoos/<int:zoo>/employees/<int:employee>", self.show_zoo_employee, responses={200: Employee},
                    tags=tags, **nested)
        r.add_route("/zoos/<int:zoo>/employees/<int:employee>", self.fire_employee, methods=["DELETE"],
                    responses={204: None}, tags=tags, **change)

        tags = ["animals"]
        r.add_route("/animals", self.list_animals, tags=tags, **lists(AnimalQuery))
        r.add_route("/animals", self.create_animal, methods=["POST"], body=AnimalIn, responses={201: Animal},
                    tags=tags, **create)
        # a static path: found before /animals/<int:animal> is tried
        r.add_route("/animals/recently_added", self.recently_added_animals, tags=tags, **lists(RecentAnimalQuery))
        r.add_route("/animals/<int:animal>", self.show_animal, responses={200: Animal, 304: None}, tags=tags, **show)
        r.add_route("/animals/<int:animal>", self.replace_animal, methods=["PUT"], body=AnimalIn,
                    responses={200: Animal}, tags=tags, **change)
        r.add_route("/animals/<int:animal>", self.update_animal, methods=["PATCH"], body=AnimalIn, partial=True,
                    responses={200: Animal}, tags=tags, **change)
        r.add_route("/animals/<int:animal>", self.delete_animal, methods=["DELETE"], responses={204: None},
                    tags=tags, **change)

        tags = ["animal types"]
        r.add_route("/animal_types", self.list_animal_types, tags=tags, **lists(AnimalTypeQuery))
        r.add_route("/animal_types/<int:animal_type>", self.show_animal_type,
                    responses={200: AnimalType, 304: None}, tags=tags, conditional=CONDITIONAL, errors=READ_ERRORS)

        tags = ["employees"]
        r.add_route("/employees", self.list_employees, tags=tags, **lists(EmployeeQuery))
        r.add_route("/employees", self.create_employee, methods=["POST"], body=EmployeeIn,
                    responses={201: Employee}, tags=tags, **create)
        r.add_route("/employees/<int:employee>", self.show_employee, responses={200: Employee, 304: None},
                    tags=tags, **show)
        r.add_route("/employees/<int:employee>", self.replace_employee, methods=["PUT"], body=EmployeeIn,
                    responses={200: Employee}, tags=tags, **change)
        r.add_route("/employees/<int:employee>", self.update_employee, methods=["PATCH"], body=EmployeeIn,
                    partial=True, responses={200: Employee}, tags=tags, **change)
        r.add_route("/employees/<int:employee>", self.delete_employee, methods=["DELETE"], responses={204: None},
                    tags=tags, **change)
        return r


# --- auth, the target check, store errors ------------------------------------------


def write_auth(token: str | None, readonly_token: str | None) -> Auth:
    """Writes need ``Authorization: Bearer <token>`` with the scope ``write``; the read-only token has none."""
    tokens: dict[str, Identity] = {}
    if token:
        tokens[token] = Identity("writer", {"write"})
    if readonly_token:
        tokens.setdefault(readonly_token, Identity("reader", ()))
    bearer = Bearer(tokens, realm="zoo")
    return bearer.require("write", message="this token may only read; writes need the write token")


def target_checker(store: Store) -> Callable[[Request], None]:
    """A before-request hook: the resources a path names must exist (404/410)
    before the query or body is looked at (400/415/422), as for any other request.

    Routes with a ``query=`` or ``body=`` model have them validated before the
    handler runs, so the handler alone could not keep this order.
    """

    def require_target(request: Request) -> None:
        route = request.route
        if route is None or (route.options.get("body") is None and route.options.get("query") is None):
            return
        for name, value in request.params.items():
            kind = PATH_KINDS.get(name)
            if kind is not None:
                store.require(kind, value)

    return require_target


# the status of each kind of store error (NotEmployed is a Missing: 404)
_STORE_STATUS: list[tuple[type[StoreError], int]] = [(Deleted, 410), (Missing, 404), (Conflicting, 409)]


def _store_error(request: Request, exc: BaseException) -> Response:
    """Answer an error the store raised with its status and ``{"error": ...}``."""
    if isinstance(exc, BadReference):
        return Response.json({"error": "validation failed", "details": exc.details}, 422)
    status = next((code for cls, code in _STORE_STATUS if isinstance(exc, cls)), 500)
    return Response.json({"error": str(exc)}, status)


def _database_error(request: Request, exc: BaseException) -> Response:
    logger.error("database error on %s %s", request.method, request.path, exc_info=exc)
    if "locked" in str(exc) or "busy" in str(exc):
        return Response.json({"error": "the database is busy; try again"}, 503, [("Retry-After", "1")])
    return Response.json({"error": "internal server error"}, 500)


def api_root(versions: dict[str, tuple[str, Collections]]) -> Callable[[Request], dict[str, Any]]:
    """The handler of ``GET /``: HAL ``_links`` to each version's root (``v1``, ``v2``) and to each
    version's collections (``v1:zoos``, ``v2:zoos``...).

    ``versions`` maps a version to the name of its root route and its collections.
    """

    def root(request: Request) -> dict[str, Any]:
        """The hypermedia root: a link to each version and to each version's collections."""
        links: dict[str, dict[str, str]] = {"self": {"href": request.url_for("root")}}
        for version, (root_name, _) in versions.items():
            links[version] = {"href": request.url_for(root_name), "title": f"API version {version[1:]}"}
        for version, (_, collections) in versions.items():
            links.update(collection_links(request, collections, f"{version}:"))
        return {"_links": links}

    return root


def storage_fault(store: Store) -> Callable[[Request, BaseException], Response]:
    """The error handler of :class:`StorageFault`: the fault's status, ``Retry-After`` and
    ``{"error": ...}``; the store's incidents log it once per incident."""

    def answer(request: Request, exc: BaseException) -> Response:
        fault = exc if isinstance(exc, StorageFault) else Unavailable(str(exc))
        store.incidents.note(fault, f"{request.method} {request.path}")
        return Response.json({"error": str(fault)}, fault.status, [("Retry-After", str(fault.retry_after))])

    return answer


class ZooApp(App):
    """The zoo's WSGI app, holding its store.

    :meth:`close` runs what :meth:`on_close` registered (the job runners), latest
    first, then closes the store.
    """

    def __init__(self, store: Store, **options: Any) -> None:
        super().__init__(**options)
        self.store = store
        self._closers: list[Callable[[], None]] = []
        #: v1's announced retirement, when a sunset date was given (``make_app(v1_sunset=...)``)
        self.deprecation: Deprecation | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        # the deadline counts from the request's arrival: restkit's server notes it when the head
        # is parsed; other servers (gunicorn...) do not, and then it is when the app first sees it
        received = environ.get("restkit.received")
        with self.store.deadline_from(received if isinstance(received, float) else time.monotonic()):
            return super().__call__(environ, start_response)

    def openapi(self) -> dict[str, Any]:
        """The API document; with a v1 sunset, v1's operations are ``deprecated``."""
        document = super().openapi()
        if self.deprecation is not None:
            self.deprecation.document(document)
        return document

    def on_close(self, closer: Callable[[], None]) -> Callable[[], None]:
        """Run ``closer()`` when the app closes, before the store does."""
        self._closers.append(closer)
        return closer

    def close(self) -> None:
        """Stop what uses the store, then close the database connections."""
        while self._closers:
            self._closers.pop()()
        self.store.close()


def make_app(
    db_path: str,
    *,
    token: str | None = None,
    readonly_token: str | None = None,
    rate_limit: int = 600,
    max_body: int = 1 << 20,
    empty: bool = False,
    create: bool = False,
    cors_origins: Iterable[str] = (),
    deadline: float = 5.0,
    durability: str = "full",
    trust_proxy: str | Iterable[str] = (),
    v1_sunset: str | None = None,
    v1_deprecated: str | None = None,
) -> ZooApp:
    """Build the zoo API on the database ``db_path`` (created and seeded when new).

    Args:
        db_path: an SQLite file, or a ``postgresql://`` URL (:func:`examples.zoo.engine.open_store`).
        token: the Bearer token writes need; None refuses every write.
        readonly_token: a token that is valid but may only read (403 on writes).
        rate_limit: requests per minute per client address; 0 turns it off.
        max_body: the largest request body, in bytes.
        empty: a new database gets the animal types only, no demo data.
        create: make the SQLite file when it does not exist (else :class:`FileNotFoundError`).
        cors_origins: origins of browser pages that may call the API (``*``: any).
        deadline: seconds a request may wait for the database, from its arrival, before it answers 503.
        durability: ``"full"`` (every commit synced) or ``"normal"`` (faster; an OS crash may lose the last commits).
        trust_proxy: addresses or networks of the balancers in front, whose ``X-Forwarded-For``,
            ``-Proto`` and ``-Host`` name the client (:class:`restkit.proxy.ProxyHeaders`); none by default.
        v1_sunset: ``YYYY-MM-DD`` or an ISO-8601 date and time: v1 is deprecated and every v1 answer says so
            (``Deprecation``, ``Sunset``, ``Link: <v2 equivalent>; rel="successor-version"``;
            :mod:`examples.zoo.deprecation`); None: nothing is announced.
        v1_deprecated: since when v1 is deprecated (the same forms); default: now.  Needs ``v1_sunset``.

    Raises:
        ValueError: a date that is not one, a sunset before the deprecation, ``v1_deprecated`` alone.
    """
    if v1_deprecated and not v1_sunset:
        raise ValueError("v1_deprecated needs v1_sunset")
    deprecation = None
    if v1_sunset:  # checked before the database is opened
        deprecation = Deprecation(parse_moment(v1_sunset), lambda method, path: successor(app, method, path),
                                  deprecated=parse_moment(v1_deprecated) if v1_deprecated else None)
    store = open_store(db_path, empty=empty, create=create, deadline=deadline, durability=durability)
    app = ZooApp(
        store,
        max_body_size=max_body,
        openapi=True,
        title="Zoo API",
        version=API_VERSION,
        description=API_DESCRIPTION,
        security_schemes=SECURITY_SCHEMES,
    )
    api = ZooAPI(store, write_auth(token, readonly_token))
    # /healthz and /readyz for the balancer.  Readiness checks no database on
    # purpose: every instance shares it, so a database outage would take them
    # all out at once and clients would get the balancer's page instead of the
    # zoo's JSON 503 with Retry-After.  /readyz turns 503 while an instance drains.
    app.use(Health())
    # GET /metrics for Prometheus: requests by route template and status, latency, the server's and the process's
    # figures.  Under several worker processes set RESTKIT_METRICS_DIR (a directory of their own) so that every
    # scrape adds them all up; each instance behind the balancer is scraped on its own.
    app.use(Metrics())
    if trust_proxy:
        app.use(ProxyHeaders(trust_proxy))  # before routing: the rate limit below counts per client, not per balancer
    if rate_limit > 0:
        # counted in PostgreSQL when the data is there: the limit holds across instances
        app.use(RateLimit(rate_limit, window=60, store=open_rate_store(store)))
    # every POST and PATCH takes an Idempotency-Key, scoped to the write token's identity
    app.use(Idempotency(open_key_store(store)))
    origins = list(cors_origins)
    if origins:
        exposed = [*DEFAULT_EXPOSED, "Deprecation", "Sunset"] if deprecation else DEFAULT_EXPOSED
        app.use(CORS("*" if "*" in origins else origins, expose=exposed))
    app.use(Compression(min_size=1024))  # long lists
    app.before_request(target_checker(store))
    app.add_error_handler(StoreError, _store_error)
    app.add_error_handler(sqlite3.Error, _database_error)
    app.add_error_handler(StorageFault, storage_fault(store))
    versions: dict[str, tuple[str, Collections]] = {"v1": ("v1_root", [(rel, name, {}, title)
                                                                      for rel, name, title in COLLECTIONS])}
    app.add_route("/", api_root(versions), name="root", responses={200: HalRoot}, tags=["root"])
    app.mount("/v1", api.router(deprecated=deprecation is not None))
    # POST /v1/zoos/{zoo}/reports -> 202, GET /v1/jobs/{job}
    jobs = install_jobs(app, store, api.writer, deprecated=deprecation is not None)
    app.on_close(jobs.close)
    v2 = install_v2(app, store, api.writer)  # /v2 beside /v1, from the same store
    if v2:
        versions["v2"] = ("v2_root", v2)
    if deprecation is not None:
        app.deprecation = deprecation
        app.after_request(deprecation.announce)
    return app
