"""Falcon: the scenarios as resources on a ``falcon.App``.

Load it through :func:`benchmarks.adapters.load`, which hides Falcon's
Cython helpers first, so Falcon runs as pure Python.
"""

from __future__ import annotations

import gzip

import falcon

from . import HELLO, HERD, HERD_ETAG, HERD_GZIP_ETAG, PET, PET_ETAG, PETS, not_found_message, page_links


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = HELLO


class Animal:
    def on_get(self, req: falcon.Request, resp: falcon.Response, zoo_id: int, animal_id: int) -> None:
        resp.media = {"zoo_id": zoo_id, "animal_id": animal_id}


class Animals:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {
            "limit": req.get_param_as_int("limit", default=20),
            "offset": req.get_param_as_int("offset", default=0),
            "sortby": req.get_param("sortby", default="id"),
            "order": req.get_param("order", default="asc"),
        }


class Zoos:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"id": 1, **req.get_media()}
        resp.status = falcon.HTTP_201


class Item:
    def on_put(self, req: falcon.Request, resp: falcon.Response, item_id: int) -> None:
        resp.media = {"id": item_id, **req.get_media()}


class Numbered:
    def __init__(self, number: int) -> None:
        self.number = number

    def on_get(self, req: falcon.Request, resp: falcon.Response, id: int) -> None:
        resp.media = {"route": self.number, "id": id}


class Pets:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = req.get_param_as_int("limit", default=20, min_value=1, max_value=100)
        offset = req.get_param_as_int("offset", default=0, min_value=0)
        resp.media = PETS[offset : offset + limit]
        resp.set_header("X-Total-Count", str(len(PETS)))
        resp.set_header("Link", page_links(req.prefix + req.path, limit, offset, len(PETS)))


class Pet:
    def on_get(self, req: falcon.Request, resp: falcon.Response, pet_id: int) -> None:
        etag = falcon.ETag.loads(PET_ETAG)
        resp.etag = etag
        if req.if_none_match and (req.if_none_match == "*" or etag in req.if_none_match):
            resp.status = falcon.HTTP_304
            return
        resp.media = PET


def accepts_gzip(req: falcon.Request) -> bool:
    """Whether ``Accept-Encoding`` names gzip (Falcon has no negotiation helper for it)."""
    return "gzip" in (req.get_header("Accept-Encoding") or "").lower()


class Herd:
    """A large answer: its tag names the representation sent, gzipped (by :class:`Gzip`) or not."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        gzipped = req.context.get("gzip", False)
        etag = falcon.ETag.loads(HERD_GZIP_ETAG if gzipped else HERD_ETAG)
        resp.etag = etag
        resp.vary = ("Accept-Encoding",)
        if req.if_none_match and (req.if_none_match == "*" or etag in req.if_none_match):
            resp.status = falcon.HTTP_304  # before the body is encoded or compressed
            return
        resp.media = HERD


class Gzip:
    """Middleware that gzips 200 answers of 1 kB or more when the client accepts gzip (what Falcon users write)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.gzip = accepts_gzip(req)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool) -> None:
        if not req.context.get("gzip") or resp.status not in (200, falcon.HTTP_200):
            return
        data = resp.render_body()
        if data is None or len(data) < 1024:
            return
        resp.data = gzip.compress(data, compresslevel=6)
        resp.set_header("Content-Encoding", "gzip")


def serialize_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """restkit's error body, ``{"error": ...}``."""
    resp.content_type = falcon.MEDIA_JSON
    message = not_found_message(req.path) if exc.status_code == 404 else exc.title
    resp.media = {"error": message}


def make_app(route_count: int = 10, compressed: bool = False) -> falcon.App:
    app = falcon.App(middleware=[Gzip()] if compressed else [])
    app.set_error_serializer(serialize_error)
    app.add_route("/hello", Hello())
    app.add_route("/zoos/{zoo_id:int}/animals/{animal_id:int}", Animal())
    app.add_route("/animals", Animals())
    app.add_route("/zoos", Zoos())
    app.add_route("/items/{item_id:int}", Item())
    app.add_route("/pets", Pets())
    app.add_route("/pets/{pet_id:int}", Pet())
    app.add_route("/herd", Herd())
    for i in range(route_count):
        app.add_route(f"/r{i}/{{id:int}}", Numbered(i))
    return app
