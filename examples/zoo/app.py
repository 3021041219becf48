"""The zoo REST API: the HTTP layer over :mod:`examples.zoo.store`.

``make_app(db_path, token=...)`` builds the WSGI app; ``python -m
examples.zoo`` serves it.  Everything lives under ``/v1``; ``GET /`` and
``GET /v1`` list the collections as ``{rel, href, title, type}`` links.

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

Choices where the issue is silent
---------------------------------
* **Auth.**  Reads (GET, HEAD, OPTIONS) are public.  Writes need
  ``Authorization: Bearer <token>``: no or a wrong token is 401 with
  ``WWW-Authenticate``, the read-only token 403.  Tokens are compared in
  constant time.  An app made without a token refuses every write.
* **Order of checks.**  Route (404/405), ``Accept`` (406), declared body size
  (413), rate limit (429), token (401/403), the target exists (404/410),
  body type and syntax (415/400), validation (422), conflicts and
  preconditions inside the write transaction (409/412).
* **410.**  Deleting leaves a tombstone; ids are never reused, so a deleted id
  answers 410 for ever and an id that never existed 404.
* **ETags.**  Strong and opaque: a hash of the resource's kind, id, version and
  ``updated_at``; every change makes a new one, a PUT or PATCH that changes
  nothing keeps it.  ``If-Match`` (PUT, PATCH, DELETE, firing) is checked
  inside the write transaction: a mismatch is 412 and nothing changes.
  ``If-None-Match`` on a detail GET answers 304.  ``If-Match`` on a missing
  resource is 404/410, not 412.
* **Bodies.**  Unknown fields are refused (422 ``"unknown field"``), and so
  are server-owned ones (``id``, ``created_at``, ``updated_at``, ``links``;
  an employee's ``zoo_id`` changes only by hiring and firing).  Text is
  stripped of surrounding blanks, must not be empty, holds at most 100
  characters and no control characters.  Dates are ``YYYY-MM-DD``; ``born``
  may not be in the future.  PUT sets optional fields it does not name to
  null.  Zoo names are unique case-insensitively (Unicode case folding).
* **Lists.**  ``limit`` 1-100 (default 20) & ``offset`` >= 0, or ``page`` >= 1
  & ``per_page`` 1-100; ``sortby`` any field of the resource (ties broken by
  id; text sorts without regard to ASCII case; nulls first when ascending);
  ``order`` ``asc`` or ``desc``; filters compare for equality (text without
  regard to ASCII case; ``null`` matches a missing date or id).  Unknown or repeated
  parameters are 400 too, so a typo never silently returns everything.
  ``Link`` URLs are absolute and keep the filters.  ``recently_added`` takes
  the same parameters, with other defaults.
* **Rate limit.**  ``rate_limit`` requests per client address in any 60
  seconds (a sliding window), counting every request, errors included;
  over it: 429 with ``Retry-After``.  While the limit is on, every response
  carries ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``.  Requests
  answered before the hooks run (404, 405, 406...) are counted afterwards.
* **Hiring.**  ``POST /v1/zoos/{zoo}/employees`` answers 201 with the employee
  and ``Location: /v1/zoos/{zoo}/employees/{employee}``, which answers GET
  (the employee, while employed there) and DELETE (fire).  An unknown
  ``employee_id`` is 422, like any unknown id in a body.
* **URLs.**  ``Location`` is an absolute URL; ``href`` and ``links`` in bodies
  are absolute paths (they survive proxies and mounting under a prefix).
* **Times** are UTC, ISO-8601 with microseconds and ``Z``.
"""

from __future__ import annotations

import hmac
import logging
import re
import sqlite3
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from restkit import (
    App,
    Forbidden,
    PreconditionFailed,
    Request,
    Response,
    Router,
    TooManyRequests,
    Unauthorized,
)

from .listing import link_header, parse_list_query
from .ratelimit import RateLimiter
from .schemas import ANIMAL, EMPLOYEE, HIRE, READ_ONLY, ZOO, Schema, validate
from .store import (
    KINDS,
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

__all__ = ["ZooAPI", "ZooApp", "make_app"]

logger = logging.getLogger("examples.zoo")

JSON = "application/json"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# (rel, route name, title) of each collection in the hypermedia root
COLLECTIONS = [
    ("zoos", "list_zoos", "List of zoos"),
    ("animals", "list_animals", "List of animals"),
    ("recently_added_animals", "recently_added_animals", "The animals added last"),
    ("animal_types", "list_animal_types", "List of animal types"),
    ("employees", "list_employees", "List of employees"),
]

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE   (RFC 9110, section 8.8.3)
_ENTITY_TAG = re.compile(r'(W/)?("[^"]*")')

EMPLOYEE_READ_ONLY = {**READ_ONLY, "zoo_id": "read-only field; hire with POST /v1/zoos/{zoo}/employees"}


def _tag_matches(header: str, tag: str, *, weak: bool) -> bool:
    """Whether an ``If-Match``/``If-None-Match`` value names ``tag``.

    ``weak`` comparison (If-None-Match) ignores ``W/``; strong comparison
    (If-Match) never matches a weak tag.
    """
    if header.strip() == "*":
        return True
    for found in _ENTITY_TAG.finditer(header):
        if found.group(2) == tag and (weak or not found.group(1)):
            return True
    return False


class ZooAPI:
    """The handlers; each gets the request and its path parameters."""

    def __init__(self, store: Store) -> None:
        self.store = store

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

    def _detail(self, request: Request, kind: str, row: Row, status: int = 200, location: str | None = None) -> Response:
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
            if not _tag_matches(header, current, weak=False):
                raise PreconditionFailed(
                    f"If-Match does not match the current ETag {current}: {kind.replace('_', ' ')} {row['id']}"
                    " was changed since you read it; GET it again"
                )

        return check

    def _show(self, request: Request, kind: str, id: int) -> Response:
        row = self.store.get(kind, id)
        tag = etag(kind, row)
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and _tag_matches(if_none_match, tag, weak=True):
            return Response(b"", 304, [("ETag", tag)])
        return self._detail(request, kind, row)

    def _list(
        self,
        request: Request,
        kind: str,
        *,
        fixed: dict[str, Any] | None = None,
        defaults: dict[str, str] | None = None,
    ) -> Response:
        spec = KINDS[kind]
        filters = {name: type_ for name, type_ in spec.filters.items() if name not in (fixed or {})}
        query = parse_list_query(request.query, sortable=spec.sortable, filters=filters, defaults=defaults)
        rows, total = self.store.list(
            kind,
            filters={**query.filters, **(fixed or {})},
            sortby=query.sortby,
            order=query.order,
            limit=query.limit,
            offset=query.offset,
        )
        items = [
            {"id": row["id"], "name": row["name"], "href": request.url_for(f"show_{kind}", **{kind: row["id"]})}
            for row in rows
        ]
        url = request.base_url + quote(request.path)
        headers = [("X-Total-Count", str(total)), ("Link", link_header(url, query, total))]
        return Response.json(items, 200, headers)

    def _create(self, request: Request, kind: str, schema: Schema, **options: Any) -> Response:
        values = validate(schema, request.json, **options)
        row = self.store.create(kind, values)
        location = request.url_for(f"show_{kind}", _external=True, **{kind: row["id"]})
        return self._detail(request, kind, row, 201, location)

    def _update(self, request: Request, kind: str, id: int, schema: Schema, *, replace: bool, **options: Any) -> Response:
        self.store.require(kind, id)  # 404/410 before looking at the body
        values = validate(schema, request.json, partial=not replace, **options)
        row = self.store.update(kind, id, values, replace=replace, check=self._if_match(request, kind))
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

    def list_zoos(self, request: Request) -> Response:
        return self._list(request, "zoo")

    def create_zoo(self, request: Request) -> Response:
        return self._create(request, "zoo", ZOO)

    def show_zoo(self, request: Request, zoo: int) -> Response:
        return self._show(request, "zoo", zoo)

    def replace_zoo(self, request: Request, zoo: int) -> Response:
        return self._update(request, "zoo", zoo, ZOO, replace=True)

    def update_zoo(self, request: Request, zoo: int) -> Response:
        return self._update(request, "zoo", zoo, ZOO, replace=False)

    def delete_zoo(self, request: Request, zoo: int) -> None:
        self._delete(request, "zoo", zoo)

    def list_zoo_animals(self, request: Request, zoo: int) -> Response:
        self.store.require("zoo", zoo)
        return self._list(request, "animal", fixed={"zoo_id": zoo})

    def list_zoo_employees(self, request: Request, zoo: int) -> Response:
        self.store.require("zoo", zoo)
        return self._list(request, "employee", fixed={"zoo_id": zoo})

    def hire_employee(self, request: Request, zoo: int) -> Response:
        self.store.require("zoo", zoo)
        values = validate(HIRE, request.json)
        row = self.store.hire(zoo, values["employee_id"])
        location = request.url_for("show_zoo_employee", _external=True, zoo=zoo, employee=row["id"])
        return self._detail(request, "employee", row, 201, location)

    def show_zoo_employee(self, request: Request, zoo: int, employee: int) -> Response:
        row = self.store.employed(zoo, employee)
        return self._detail(request, "employee", row)

    def fire_employee(self, request: Request, zoo: int, employee: int) -> None:
        self.store.fire(zoo, employee, check=self._if_match(request, "employee"))

    # -- animals ------------------------------------------------------------------

    def list_animals(self, request: Request) -> Response:
        return self._list(request, "animal")

    def recently_added_animals(self, request: Request) -> Response:
        return self._list(request, "animal", defaults={"sortby": "created_at", "order": "desc", "limit": "10"})

    def create_animal(self, request: Request) -> Response:
        return self._create(request, "animal", ANIMAL)

    def show_animal(self, request: Request, animal: int) -> Response:
        return self._show(request, "animal", animal)

    def replace_animal(self, request: Request, animal: int) -> Response:
        return self._update(request, "animal", animal, ANIMAL, replace=True)

    def update_animal(self, request: Request, animal: int) -> Response:
        return self._update(request, "animal", animal, ANIMAL, replace=False)

    def delete_animal(self, request: Request, animal: int) -> None:
        self._delete(request, "animal", animal)

    # -- animal types (read-only) -----------------------------------------------

    def list_animal_types(self, request: Request) -> Response:
        return self._list(request, "animal_type")

    def show_animal_type(self, request: Request, animal_type: int) -> Response:
        return self._show(request, "animal_type", animal_type)

    # -- employees ----------------------------------------------------------------

    def list_employees(self, request: Request) -> Response:
        return self._list(request, "employee")

    def create_employee(self, request: Request) -> Response:
        return self._create(request, "employee", EMPLOYEE, read_only=EMPLOYEE_READ_ONLY)

    def show_employee(self, request: Request, employee: int) -> Response:
        return self._show(request, "employee", employee)

    def replace_employee(self, request: Request, employee: int) -> Response:
        return self._update(request, "employee", employee, EMPLOYEE, replace=True, read_only=EMPLOYEE_READ_ONLY)

    def update_employee(self, request: Request, employee: int) -> Response:
        return self._update(request, "employee", employee, EMPLOYEE, replace=False, read_only=EMPLOYEE_READ_ONLY)

    def delete_employee(self, request: Request, employee: int) -> None:
        self._delete(request, "employee", employee)

    # -- the route table ------------------------------------------------------------

    def router(self) -> Router:
        """Every route of the API, to mount under ``/v1``."""
        r = Router()
        r.add_route("/", self.root, name="v1_root")
        r.add_route("/zoos", self.list_zoos)
        r.add_route("/zoos", self.create_zoo, methods=["POST"])
        r.add_route("/zoos/<int:zoo>", self.show_zoo)
        r.add_route("/zoos/<int:zoo>", self.replace_zoo, methods=["PUT"])
        r.add_route("/zoos/<int:zoo>", self.update_zoo, methods=["PATCH"])
        r.add_route("/zoos/<int:zoo>", self.delete_zoo, methods=["DELETE"])
        r.add_route("/zoos/<int:zoo>/animals", self.list_zoo_animals)
        r.add_route("/zoos/<int:zoo>/employees", self.list_zoo_employees)
        r.add_route("/zoos/<int:zoo>/employees", self.hire_employee, methods=["POST"])
        r.add_route("/zoos/<int:zoo>/employees/<int:employee>", self.show_zoo_employee)
        r.add_route("/zoos/<int:zoo>/employees/<int:employee>", self.fire_employee, methods=["DELETE"])
        r.add_route("/animals", self.list_animals)
        r.add_route("/animals", self.create_animal, methods=["POST"])
        # a static path: found before /animals/<int:animal> is tried
        r.add_route("/animals/recently_added", self.recently_added_animals)
        r.add_route("/animals/<int:animal>", self.show_animal)
        r.add_route("/animals/<int:animal>", self.replace_animal, methods=["PUT"])
        r.add_route("/animals/<int:animal>", self.update_animal, methods=["PATCH"])
        r.add_route("/animals/<int:animal>", self.delete_animal, methods=["DELETE"])
        r.add_route("/animal_types", self.list_animal_types)
        r.add_route("/animal_types/<int:animal_type>", self.show_animal_type)
        r.add_route("/employees", self.list_employees)
        r.add_route("/employees", self.create_employee, methods=["POST"])
        r.add_route("/employees/<int:employee>", self.show_employee)
        r.add_route("/employees/<int:employee>", self.replace_employee, methods=["PUT"])
        r.add_route("/employees/<int:employee>", self.update_employee, methods=["PATCH"])
        r.add_route("/employees/<int:employee>", self.delete_employee, methods=["DELETE"])
        return r


# --- auth, rate limit, store errors ------------------------------------------------


def token_checker(token: str | None, readonly_token: str | None) -> Callable[[Request], None]:
    """A before-request hook: writes need the write token, reads need nothing."""
    write_key = token.encode("utf-8") if token else None
    read_key = readonly_token.encode("utf-8") if readonly_token else None

    def check_token(request: Request) -> None:
        if request.method not in WRITE_METHODS:
            return
        scheme, _, credentials = (request.headers.get("Authorization") or "").strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise Unauthorized(
                f"{request.method} needs an 'Authorization: Bearer <token>' header", www_authenticate='Bearer realm="zoo"'
            )
        # header values are Latin-1 text in WSGI: compare the bytes the client sent
        given = credentials.encode("latin-1", "replace")
        if write_key is not None and hmac.compare_digest(given, write_key):
            return
        if read_key is not None and hmac.compare_digest(given, read_key):
            raise Forbidden("this token may only read; writes need the write token")
        raise Unauthorized("invalid token", www_authenticate='Bearer realm="zoo", error="invalid_token"')

    return check_token


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


class ZooApp(App):
    """The zoo's WSGI app, holding its store and rate limiter."""

    def __init__(self, store: Store, limiter: RateLimiter, **options: Any) -> None:
        super().__init__(**options)
        self.store = store
        self.limiter = limiter

    def close(self) -> None:
        """Close the database connections."""
        self.store.close()


def make_app(
    db_path: str,
    *,
    token: str | None = None,
    readonly_token: str | None = None,
    rate_limit: int = 600,
    max_body: int = 1 << 20,
    empty: bool = False,
) -> ZooApp:
    """Build the zoo API on the SQLite file ``db_path`` (created and seeded when new).

    Args:
        db_path: the database file.
        token: the Bearer token writes need; None refuses every write.
        readonly_token: a token that is valid but may only read (403 on writes).
        rate_limit: requests per minute per client address; 0 turns it off.
        max_body: the largest request body, in bytes.
        empty: a new database gets the animal types only, no demo data.
    """
    store = Store(db_path, empty=empty)
    limiter = RateLimiter(rate_limit)
    app = ZooApp(store, limiter, max_body_size=max_body)
    api = ZooAPI(store)

    def limit_rate(request: Request) -> None:
        request.context["rate_limited"] = True
        allowed, remaining, retry_after = limiter.hit(request.remote_addr or "unknown")
        request.context["rate_remaining"] = remaining
        if not allowed:
            raise TooManyRequests(
                f"more than {limiter.limit} requests a minute; retry in {retry_after} s", retry_after=retry_after
            )

    def rate_headers(request: Request | None, response: Response) -> Response | None:
        if limiter.limit <= 0 or request is None:
            return None
        if "rate_limited" not in request.context:  # answered before the hooks (404, 405, 406...): count it now
            try:
                limit_rate(request)
            except TooManyRequests as exc:
                response = Response.json(exc.to_dict(), exc.status, exc.headers)
        response.set_header("X-RateLimit-Limit", str(limiter.limit))
        response.set_header("X-RateLimit-Remaining", str(request.context.get("rate_remaining", 0)))
        return response

    app.before_request(limit_rate)
    app.before_request(token_checker(token, readonly_token))
    app.after_request(rate_headers)
    app.add_error_handler(StoreError, _store_error)
    app.add_error_handler(sqlite3.Error, _database_error)
    app.add_route("/", api.root, name="root")
    app.mount("/v1", api.router())
    return app
