"""``/v2``: the next version of the zoo API, served beside ``/v1`` from the same store.

What changes for a client (each would break a v1 client, so it waits for a new version):

* **Hypermedia in HAL form.**  Links are ``_links: {rel: {"href": ...}}``
  instead of v1's ``links: {rel: href}``, and a resource embeds what a client
  asks for next: an animal ``_embedded: {"zoo": {id, name, href},
  "animal_type": {...}}``, an employee their zoo while employed, so showing
  an animal with its zoo's name takes one request, not three.  ``GET /v2``
  is the version's root: ``_links`` to every collection.
* **Related lists are filters** of the top-level collection:
  ``/v2/animals?zoo_id=1`` where v1 has ``/v1/zoos/1/animals``,
  ``/v2/employees?zoo_id=1``, ``/v2/animals?sortby=created_at&order=desc&limit=10``
  for v1's ``recently_added``.  Hiring and firing keep their place:
  ``POST /v2/zoos/{zoo}/employees``, ``GET``/``DELETE /v2/zoos/{zoo}/employees/{employee}``.
* **Changes are PATCH**: no PUT (a replace that nulls what it does not name
  lost data more often than it helped).
* **Lists are objects**: ``{"items": [...], "total": N, "_links": {first,
  prev, next, last}}`` instead of a bare array (the ``X-Total-Count`` and
  ``Link`` headers stay).
* **Entity tags differ** from v1's for the same row (``"<hash>-v2"``): the
  representations differ, so must their strong tags; ``If-Match`` in v2
  takes v2 tags.

v2 covers every resource of v1 but the report jobs (``/v1/zoos/{zoo}/reports``,
``/v1/jobs``), which stay in v1.  v1 is unchanged: v1 clients see the same
answers, byte for byte, with v2 installed or not (tested).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any, TypedDict

from restkit import App, PreconditionFailed, Request, Response, Router

from .records import Check, Row, Store, etag, public
from .schemas import (
    AnimalIn,
    AnimalQuery,
    AnimalTypeQuery,
    EmployeeIn,
    EmployeeQuery,
    HireIn,
    Paging,
    ZooIn,
    ZooQuery,
)
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

__all__ = ["COLLECTIONS", "HalRoot", "install_v2", "successor"]

_LINK = re.compile(r'<([^>]*)>; rel="([a-z]+)"')

#: (rel, route name, query, title) of each collection in the roots
COLLECTIONS: Collections = [
    ("zoos", "v2_list_zoos", {}, "List of zoos"),
    ("animals", "v2_list_animals", {}, "List of animals"),
    ("recently_added_animals", "v2_list_animals", {"sortby": "created_at", "order": "desc", "limit": 10},
     "The animals added last"),
    ("animal_types", "v2_list_animal_types", {}, "List of animal types"),
    ("employees", "v2_list_employees", {}, "List of employees"),
]

#: v1 lists whose v2 equivalent is a filtered collection: (pattern of the path below /v1, v2 target)
_MOVED = [
    (re.compile(r"/zoos/(\d+)/animals"), "/v2/animals?zoo_id={0}"),
    (re.compile(r"/zoos/(\d+)/employees"), "/v2/employees?zoo_id={0}"),
    (re.compile(r"/animals/recently_added"), "/v2/animals?sortby=created_at&order=desc&limit=10"),
]

# --- the answers, for the API document ------------------------------------------------


class Href(TypedDict):
    href: str


class ZooLinksV2(TypedDict):
    self: Href
    animals: Href
    employees: Href


class AnimalLinksV2(TypedDict):
    self: Href
    zoo: Href
    animal_type: Href


class Summary(TypedDict):
    id: int
    name: str
    href: str


class AnimalEmbedded(TypedDict):
    zoo: Summary
    animal_type: Summary


class PageLinks(TypedDict, total=False):
    first: Href
    prev: Href
    next: Href
    last: Href


@dataclass
class ZooV2:
    """A zoo, v2: HAL links."""

    id: int
    name: str
    city: str
    opened: datetime.date | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    _links: ZooLinksV2


@dataclass
class AnimalV2:
    """An animal, v2: HAL links and its zoo and animal type embedded."""

    id: int
    name: str
    animal_type_id: int
    zoo_id: int
    born: datetime.date | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    _links: AnimalLinksV2
    _embedded: AnimalEmbedded


class HalLink(TypedDict, total=False):
    href: str
    title: str
    type: str


@dataclass
class HalRoot:
    """A HAL root: ``_links`` to the collections (``self`` and one per collection)."""

    _links: dict[str, HalLink]


class AnimalTypeLinksV2(TypedDict):
    self: Href
    animals: Href


@dataclass
class AnimalTypeV2:
    """An animal type, v2: HAL links (read-only)."""

    id: int
    name: str
    description: str
    _links: AnimalTypeLinksV2


class _EmployeeLinksV2(TypedDict):
    self: Href


class EmployeeLinksV2(_EmployeeLinksV2, total=False):
    zoo: Href  # while employed


class EmployeeEmbedded(TypedDict, total=False):
    zoo: Summary  # while employed


@dataclass
class EmployeeV2:
    """An employee, v2: HAL links and, while employed, their zoo embedded."""

    id: int
    name: str
    title: str | None
    zoo_id: int | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    _links: EmployeeLinksV2
    _embedded: EmployeeEmbedded


@dataclass
class ItemV2:
    id: int
    name: str
    _links: dict[str, Href]


@dataclass
class PageV2:
    """One page of a list, with the total and the links to the other pages."""

    items: list[ItemV2]
    total: int
    _links: PageLinks


# --- the handlers ---------------------------------------------------------------------


def etag_v2(kind: str, row: Row) -> str:
    """The v2 representation's strong tag: v1's with ``-v2``."""
    return etag(kind, row)[:-1] + '-v2"'


def _tag_in(header: str, tag: str, *, weak: bool) -> bool:
    if header.strip() == "*":
        return True
    return any(found[2] == tag and (weak or not found[1]) for found in re.finditer(r'(W/)?("[^"]*")', header))


# what each kind embeds: rel -> (kind, column); a null column embeds nothing
_EMBEDS = {
    "animal": {"zoo": ("zoo", "zoo_id"), "animal_type": ("animal_type", "animal_type_id")},
    "employee": {"zoo": ("zoo", "zoo_id")},
}


class ZooAPIv2:
    """The v2 handlers, over the same store as v1."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _href(self, request: Request, kind: str, id: int) -> str:
        params: dict[str, Any] = {kind: id}  # Any: mypy would otherwise match the int against _external
        return request.url_for(f"v2_show_{kind}", **params)

    def _links(self, request: Request, kind: str, row: Row) -> dict[str, dict[str, str]]:
        links = {"self": {"href": self._href(request, kind, row["id"])}}
        if kind == "zoo":
            links["animals"] = {"href": request.url_for("v2_list_animals", zoo_id=row["id"])}
            links["employees"] = {"href": request.url_for("v2_list_employees", zoo_id=row["id"])}
        elif kind == "animal_type":
            links["animals"] = {"href": request.url_for("v2_list_animals", animal_type_id=row["id"])}
        for rel, (target, column) in _EMBEDS.get(kind, {}).items():
            if row[column] is not None:
                links[rel] = {"href": self._href(request, target, row[column])}
        return links

    def _body(self, request: Request, kind: str, row: Row) -> dict[str, Any]:
        body = public(kind, row)
        body["_links"] = self._links(request, kind, row)
        if kind in _EMBEDS:
            embedded = {}
            for rel, (target, column) in _EMBEDS[kind].items():
                if row[column] is None:
                    continue
                other = self.store.get(target, row[column])
                embedded[rel] = {"id": other["id"], "name": other["name"],
                                 "href": self._href(request, target, other["id"])}
            body["_embedded"] = embedded
        return body

    def _detail(self, request: Request, kind: str, row: Row, status: int = 200,
                location: str | None = None) -> Response:
        headers = [("ETag", etag_v2(kind, row))]
        if status == 201:
            headers.append(("Location", location or request.url_for(f"v2_show_{kind}", _external=True,
                                                                    **{kind: row["id"]})))
        return Response.json(self._body(request, kind, row), status, headers)

    def _if_match(self, request: Request, kind: str) -> Check | None:
        header = request.headers.get("If-Match")
        if header is None:
            return None

        def check(row: Row) -> None:
            current = etag_v2(kind, row)
            if not _tag_in(header, current, weak=False):
                raise PreconditionFailed(f"If-Match does not match the current ETag {current}; GET it again")

        return check

    def _list(self, request: Request, kind: str, query: Paging) -> Response:
        page, rows, total = read_list(self.store, request, kind, query)
        headers = page.headers(request, total)
        link = dict(headers).get("Link", "")
        body = {
            "items": [{"id": row["id"], "name": row["name"],
                       "_links": {"self": {"href": self._href(request, kind, row["id"])}}} for row in rows],
            "total": total,
            "_links": {rel: {"href": href} for href, rel in _LINK.findall(link)},
        }
        return Response.json(body, 200, headers)

    def _show(self, request: Request, kind: str, id: int) -> Response:
        return self._answer(request, kind, self.store.get(kind, id))

    def _answer(self, request: Request, kind: str, row: Row) -> Response:
        """The row with its tag, or 304 when ``If-None-Match`` names it."""
        tag = etag_v2(kind, row)
        header = request.headers.get("If-None-Match")
        if header is not None and _tag_in(header, tag, weak=True):
            return Response(b"", 304, [("ETag", tag)])
        return self._detail(request, kind, row)

    def _create(self, request: Request, kind: str, body: Any) -> Response:
        return self._detail(request, kind, self.store.create(kind, values(body)), 201)

    def _update(self, request: Request, kind: str, id: int, body: Any) -> Response:
        row = self.store.update(kind, id, values(body), replace=False, check=self._if_match(request, kind))
        return self._detail(request, kind, row)

    def _delete(self, request: Request, kind: str, id: int) -> None:
        self.store.delete(kind, id, check=self._if_match(request, kind))

    # the root

    def root(self, request: Request) -> dict[str, Any]:
        """The root of v2: HAL `_links` to every collection."""
        return {"_links": {"self": {"href": request.url_for("v2_root")}, **collection_links(request, COLLECTIONS)}}

    # zoos

    def list_zoos(self, request: Request, query: ZooQuery) -> Response:
        """List the zoos (v2): a page object with `items`, `total` and `_links`."""
        return self._list(request, "zoo", query)

    def create_zoo(self, request: Request, body: ZooIn) -> Response:
        """Create a zoo (v2)."""
        return self._create(request, "zoo", body)

    def show_zoo(self, request: Request, zoo: int) -> Response:
        """Show a zoo (v2): HAL `_links`."""
        return self._show(request, "zoo", zoo)

    def update_zoo(self, request: Request, zoo: int, body: ZooIn) -> Response:
        """Change some fields of a zoo (v2); `If-Match` takes v2 entity tags."""
        return self._update(request, "zoo", zoo, body)

    def delete_zoo(self, request: Request, zoo: int) -> None:
        """Delete a zoo (v2)."""
        self._delete(request, "zoo", zoo)

    def hire_employee(self, request: Request, zoo: int, body: HireIn) -> Response:
        """Hire an employee (v2): 201 with `Location: /v2/zoos/{zoo}/employees/{employee}`."""
        row = self.store.hire(zoo, body.employee_id)
        location = request.url_for("v2_show_zoo_employee", _external=True, zoo=zoo, employee=row["id"])
        return self._detail(request, "employee", row, 201, location)

    def show_zoo_employee(self, request: Request, zoo: int, employee: int) -> Response:
        """Show an employee of a zoo (v2; 404 unless they work there)."""
        return self._answer(request, "employee", self.store.employed(zoo, employee))

    def fire_employee(self, request: Request, zoo: int, employee: int) -> None:
        """Fire an employee (v2): 204; 404 unless they work there; `If-Match` takes v2 entity tags."""
        self.store.fire(zoo, employee, check=self._if_match(request, "employee"))

    # animals

    def list_animals(self, request: Request, query: AnimalQuery) -> Response:
        """List the animals (v2): a page object with `items`, `total` and `_links`."""
        return self._list(request, "animal", query)

    def create_animal(self, request: Request, body: AnimalIn) -> Response:
        """Create an animal (v2)."""
        return self._create(request, "animal", body)

    def show_animal(self, request: Request, animal: int) -> Response:
        """Show an animal (v2): HAL `_links`, its zoo and animal type in `_embedded`."""
        return self._show(request, "animal", animal)

    def update_animal(self, request: Request, animal: int, body: AnimalIn) -> Response:
        """Change some fields of an animal (v2); `If-Match` takes v2 entity tags."""
        return self._update(request, "animal", animal, body)

    def delete_animal(self, request: Request, animal: int) -> None:
        """Delete an animal (v2)."""
        self._delete(request, "animal", animal)

    # animal types (read-only)

    def list_animal_types(self, request: Request, query: AnimalTypeQuery) -> Response:
        """List the animal types (v2): a page object."""
        return self._list(request, "animal_type", query)

    def show_animal_type(self, request: Request, animal_type: int) -> Response:
        """Show an animal type (v2): HAL `_links`, `animals` among them."""
        return self._show(request, "animal_type", animal_type)

    # employees

    def list_employees(self, request: Request, query: EmployeeQuery) -> Response:
        """List the employees (v2): a page object; `zoo_id=null` lists those not employed."""
        return self._list(request, "employee", query)

    def create_employee(self, request: Request, body: EmployeeIn) -> Response:
        """Create an employee (v2), not employed yet."""
        return self._create(request, "employee", body)

    def show_employee(self, request: Request, employee: int) -> Response:
        """Show an employee (v2): HAL `_links`, their zoo in `_embedded` while employed."""
        return self._show(request, "employee", employee)

    def update_employee(self, request: Request, employee: int, body: EmployeeIn) -> Response:
        """Change some fields of an employee (v2); the zoo changes only by hiring and firing."""
        return self._update(request, "employee", employee, body)

    def delete_employee(self, request: Request, employee: int) -> None:
        """Delete an employee (v2)."""
        self._delete(request, "employee", employee)


def install_v2(app: App, store: Store, writer: Any) -> Collections:
    """Mount ``/v2`` beside ``/v1``; return its :data:`COLLECTIONS`, for the API's root.

    ``writer`` is the auth v1's writes take (:func:`examples.zoo.app.write_auth`).
    """
    api = ZooAPIv2(store)
    r = Router(tags=["v2"])
    # If-Match and If-None-Match are compared here, with v2's tags
    change: dict[str, Any] = {"auth": writer, "header_params": ["If-Match"], "errors": [*CHANGE_ERRORS, 412]}
    show: dict[str, Any] = {"header_params": ["If-None-Match"], "errors": GONE_ERRORS}
    create: dict[str, Any] = {"methods": ["POST"], "auth": writer, "errors": WRITE_ERRORS}
    r.add_route("/", api.root, name="v2_root", responses={200: HalRoot})
    app.add_route("/v2/", api.root, name="v2_root_slash", include_in_schema=False)  # /v2/ too, not a redirect

    def resource(path: str, kind: str, answer: type[Any], query: type[Any], body: type[Any] | None,
                 **extra: Any) -> None:
        """The routes of one collection: list and show, and unless ``body`` is None create, PATCH and DELETE."""
        plural = f"{kind}s"
        more: dict[str, Any] = {"errors": [*CHANGE_ERRORS, 409, 412]} if kind == "zoo" else {}
        r.add_route(path, getattr(api, f"list_{plural}"), name=f"v2_list_{plural}", **list_route(query, PageV2))
        detail = f"{path}/<int:{kind}>"
        r.add_route(detail, getattr(api, f"show_{kind}"), name=f"v2_show_{kind}", responses={200: answer, 304: None},
                    **{**show, **extra})
        if body is None:
            return
        r.add_route(path, getattr(api, f"create_{kind}"), name=f"v2_create_{kind}", body=body,
                    responses={201: answer}, **{**create, **({"errors": [*WRITE_ERRORS, 409]} if more else {})})
        r.add_route(detail, getattr(api, f"update_{kind}"), name=f"v2_update_{kind}", methods=["PATCH"], body=body,
                    partial=True, responses={200: answer}, **{**change, **more})
        r.add_route(detail, getattr(api, f"delete_{kind}"), name=f"v2_delete_{kind}", methods=["DELETE"],
                    responses={204: None}, **{**change, **more})

    resource("/zoos", "zoo", ZooV2, ZooQuery, ZooIn)
    r.add_route("/zoos/<int:zoo>/employees", api.hire_employee, name="v2_hire_employee", body=HireIn,
                responses={201: EmployeeV2}, **{**create, "errors": [*WRITE_ERRORS, 409, 410]})
    r.add_route("/zoos/<int:zoo>/employees/<int:employee>", api.show_zoo_employee, name="v2_show_zoo_employee",
                responses={200: EmployeeV2, 304: None}, **show)
    r.add_route("/zoos/<int:zoo>/employees/<int:employee>", api.fire_employee, name="v2_fire_employee",
                methods=["DELETE"], responses={204: None}, **change)
    resource("/animals", "animal", AnimalV2, AnimalQuery, AnimalIn)
    resource("/animal_types", "animal_type", AnimalTypeV2, AnimalTypeQuery, None, errors=READ_ERRORS)
    resource("/employees", "employee", EmployeeV2, EmployeeQuery, EmployeeIn)
    app.mount("/v2", r)
    return COLLECTIONS


def successor(app: App, method: str, path: str) -> str:
    """The v2 equivalent of the v1 resource at ``path`` (``/v1...``, below the app's prefix), or ``/v2``.

    A v1 list that v2 serves as a filtered collection maps to that; any other
    path maps to the same path under ``/v2`` when v2 has it (for any method).
    """
    rest = path[len("/v1"):]
    if method in ("GET", "HEAD"):
        for pattern, target in _MOVED:
            found = pattern.fullmatch(rest)
            if found is not None:
                return target.format(*found.groups())
    candidate = "/v2" + rest
    match = app.router.match(method, candidate)
    return candidate if match.route is not None or match.allowed else "/v2"
