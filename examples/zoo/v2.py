"""``/v2``: the next version of the zoo API, served beside ``/v1`` from the same store.

What changes for a client (each would break a v1 client, so it waits for a new version):

* **Hypermedia in HAL form.**  Links are ``_links: {rel: {"href": ...}}``
  instead of v1's ``links: {rel: href}``, and an animal embeds what a client
  asks for next: ``_embedded: {"zoo": {id, name, href}, "animal_type": {...}}``,
  so showing an animal with its zoo's name takes one request, not three.
* **Lists are objects**: ``{"items": [...], "total": N, "_links": {first,
  prev, next, last}}`` instead of a bare array (the ``X-Total-Count`` and
  ``Link`` headers stay).
* **Entity tags differ** from v1's for the same row (``"<hash>-v2"``): the
  representations differ, so must their strong tags; ``If-Match`` in v2
  takes v2 tags.

v2 covers zoos and animals (list, show, create, change, delete); everything
else stays in v1, which is unchanged: v1 clients see the same answers,
byte for byte, with v2 installed or not (tested).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypedDict

from restkit import App, PreconditionFailed, Request, Response, Router

from .records import Check, Row, Store, etag, public
from .schemas import AnimalIn, AnimalQuery, Paging, ZooIn, ZooQuery
from .web import CHANGE_ERRORS, GONE_ERRORS, WRITE_ERRORS, list_route, read_list, values

__all__ = ["install_v2"]

_LINK = re.compile(r'<([^>]*)>; rel="([a-z]+)"')


# --- the answers, for the API document ------------------------------------------------


class Href(TypedDict):
    href: str


class ZooLinksV2(TypedDict):
    self: Href
    animals: Href


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
    opened: str | None
    created_at: str
    updated_at: str
    _links: ZooLinksV2


@dataclass
class AnimalV2:
    """An animal, v2: HAL links and its zoo and animal type embedded."""

    id: int
    name: str
    animal_type_id: int
    zoo_id: int
    born: str | None
    created_at: str
    updated_at: str
    _links: AnimalLinksV2
    _embedded: AnimalEmbedded


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


class ZooAPIv2:
    """The v2 handlers, over the same store as v1."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _href(self, request: Request, kind: str, id: int) -> str:
        params: dict[str, Any] = {kind: id}  # Any: mypy would otherwise match the int against _external
        return request.url_for(f"v2_show_{kind}" if kind in ("zoo", "animal") else f"show_{kind}", **params)

    def _body(self, request: Request, kind: str, row: Row) -> dict[str, Any]:
        body = public(kind, row)
        links = {"self": {"href": self._href(request, kind, row["id"])}}
        if kind == "zoo":
            links["animals"] = {"href": request.url_for("v2_list_animals", zoo_id=row["id"])}
        else:
            links["zoo"] = {"href": self._href(request, "zoo", row["zoo_id"])}
            links["animal_type"] = {"href": self._href(request, "animal_type", row["animal_type_id"])}
        body["_links"] = links
        if kind == "animal":
            embedded = {}
            for rel, target, column in (("zoo", "zoo", "zoo_id"), ("animal_type", "animal_type", "animal_type_id")):
                other = self.store.get(target, row[column])
                embedded[rel] = {"id": other["id"], "name": other["name"],
                                 "href": self._href(request, target, other["id"])}
            body["_embedded"] = embedded
        return body

    def _detail(self, request: Request, kind: str, row: Row, status: int = 200) -> Response:
        headers = [("ETag", etag_v2(kind, row))]
        if status == 201:
            headers.append(("Location", request.url_for(f"v2_show_{kind}", _external=True, **{kind: row["id"]})))
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
        row = self.store.get(kind, id)
        tag = etag_v2(kind, row)
        header = request.headers.get("If-None-Match")
        if header is not None and _tag_in(header, tag, weak=True):
            return Response(b"", 304, [("ETag", tag)])
        return self._detail(request, kind, row)

    # zoos

    def list_zoos(self, request: Request, query: ZooQuery) -> Response:
        """List the zoos (v2): a page object with `items`, `total` and `_links`."""
        return self._list(request, "zoo", query)

    def create_zoo(self, request: Request, body: ZooIn) -> Response:
        """Create a zoo (v2)."""
        return self._detail(request, "zoo", self.store.create("zoo", values(body)), 201)

    def show_zoo(self, request: Request, zoo: int) -> Response:
        """Show a zoo (v2): HAL `_links`."""
        return self._show(request, "zoo", zoo)

    def update_zoo(self, request: Request, zoo: int, body: ZooIn) -> Response:
        """Change some fields of a zoo (v2); `If-Match` takes v2 entity tags."""
        row = self.store.update("zoo", zoo, values(body), replace=False, check=self._if_match(request, "zoo"))
        return self._detail(request, "zoo", row)

    def delete_zoo(self, request: Request, zoo: int) -> None:
        """Delete a zoo (v2)."""
        self.store.delete("zoo", zoo, check=self._if_match(request, "zoo"))

    # animals

    def list_animals(self, request: Request, query: AnimalQuery) -> Response:
        """List the animals (v2): a page object with `items`, `total` and `_links`."""
        return self._list(request, "animal", query)

    def create_animal(self, request: Request, body: AnimalIn) -> Response:
        """Create an animal (v2)."""
        return self._detail(request, "animal", self.store.create("animal", values(body)), 201)

    def show_animal(self, request: Request, animal: int) -> Response:
        """Show an animal (v2): HAL `_links`, its zoo and animal type in `_embedded`."""
        return self._show(request, "animal", animal)

    def update_animal(self, request: Request, animal: int, body: AnimalIn) -> Response:
        """Change some fields of an animal (v2); `If-Match` takes v2 entity tags."""
        row = self.store.update("animal", animal, values(body), replace=False,
                                check=self._if_match(request, "animal"))
        return self._detail(request, "animal", row)

    def delete_animal(self, request: Request, animal: int) -> None:
        """Delete an animal (v2)."""
        self.store.delete("animal", animal, check=self._if_match(request, "animal"))


def install_v2(app: App, store: Store, writer: Any) -> None:
    """Mount ``/v2`` beside ``/v1`` (call after the v1 routes: v2 links to v1's animal types).

    ``writer`` is the auth v1's writes take (:func:`examples.zoo.app.write_auth`).
    """
    api = ZooAPIv2(store)
    r = Router(tags=["v2"])
    # If-Match and If-None-Match are compared here, with v2's tags
    change: dict[str, Any] = {"auth": writer, "header_params": ["If-Match"]}
    show: dict[str, Any] = {"header_params": ["If-None-Match"], "errors": GONE_ERRORS}
    r.add_route("/zoos", api.list_zoos, name="v2_list_zoos", **list_route(ZooQuery, PageV2))
    r.add_route("/zoos", api.create_zoo, name="v2_create_zoo", methods=["POST"], body=ZooIn,
                responses={201: ZooV2}, auth=writer, errors=[*WRITE_ERRORS, 409])
    r.add_route("/zoos/<int:zoo>", api.show_zoo, name="v2_show_zoo", responses={200: ZooV2, 304: None}, **show)
    r.add_route("/zoos/<int:zoo>", api.update_zoo, name="v2_update_zoo", methods=["PATCH"], body=ZooIn,
                partial=True, responses={200: ZooV2}, errors=[*CHANGE_ERRORS, 409, 412], **change)
    r.add_route("/zoos/<int:zoo>", api.delete_zoo, name="v2_delete_zoo", methods=["DELETE"],
                responses={204: None}, errors=[*CHANGE_ERRORS, 409, 412], **change)
    r.add_route("/animals", api.list_animals, name="v2_list_animals", **list_route(AnimalQuery, PageV2))
    r.add_route("/animals", api.create_animal, name="v2_create_animal", methods=["POST"], body=AnimalIn,
                responses={201: AnimalV2}, auth=writer, errors=WRITE_ERRORS)
    r.add_route("/animals/<int:animal>", api.show_animal, name="v2_show_animal",
                responses={200: AnimalV2, 304: None}, **show)
    r.add_route("/animals/<int:animal>", api.update_animal, name="v2_update_animal", methods=["PATCH"],
                body=AnimalIn, partial=True, responses={200: AnimalV2}, errors=[*CHANGE_ERRORS, 412], **change)
    r.add_route("/animals/<int:animal>", api.delete_animal, name="v2_delete_animal", methods=["DELETE"],
                responses={204: None}, errors=[*CHANGE_ERRORS, 412], **change)
    app.mount("/v2", r)
