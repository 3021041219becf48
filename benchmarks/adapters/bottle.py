"""Bottle: the scenarios on a ``bottle.Bottle`` app."""

from __future__ import annotations

import gzip
import json
from typing import Any

import bottle

from . import HELLO, HERD, HERD_ETAG, HERD_GZIP_ETAG, PET, PET_ETAG, PETS, not_found_message, page_links


def make_app(route_count: int = 10, compressed: bool = False) -> bottle.Bottle:
    app = bottle.Bottle()
    request, response = bottle.request, bottle.response

    @app.get("/hello")
    def hello() -> str:
        response.content_type = "text/plain; charset=utf-8"
        return HELLO

    @app.get("/zoos/<zoo_id:int>/animals/<animal_id:int>")
    def show_animal(zoo_id: int, animal_id: int) -> dict[str, int]:
        return {"zoo_id": zoo_id, "animal_id": animal_id}

    @app.get("/animals")
    def list_animals() -> dict[str, Any]:
        query = request.query
        return {
            "limit": int(query.get("limit", 20)), "offset": int(query.get("offset", 0)),
            "sortby": query.get("sortby", "id"), "order": query.get("order", "asc"),
        }

    @app.post("/zoos")
    def create_zoo() -> dict[str, Any]:
        response.status = 201
        return {"id": 1, **request.json}

    @app.put("/items/<item_id:int>")
    def update_item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, **request.forms.decode()}

    @app.get("/pets")
    def list_pets() -> str:
        limit, offset = int(request.query.get("limit", 20)), int(request.query.get("offset", 0))
        response.content_type = "application/json"
        response.set_header("X-Total-Count", str(len(PETS)))
        response.set_header("Link", page_links(request.url.split("?")[0], limit, offset, len(PETS)))
        return json.dumps(PETS[offset : offset + limit], separators=(",", ":"))

    @app.get("/pets/<pet_id:int>")
    def show_pet(pet_id: int) -> Any:
        response.set_header("ETag", PET_ETAG)
        if PET_ETAG in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            return bottle.HTTPResponse(status=304, headers={"ETag": PET_ETAG})
        return PET

    @app.get("/herd")
    def show_herd() -> Any:
        gzipped = compressed and "gzip" in request.headers.get("Accept-Encoding", "").lower()
        tag = HERD_GZIP_ETAG if gzipped else HERD_ETAG
        response.set_header("ETag", tag)
        response.set_header("Vary", "Accept-Encoding")
        if tag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            return bottle.HTTPResponse(status=304, headers={"ETag": tag, "Vary": "Accept-Encoding"})
        body = json.dumps(HERD, separators=(",", ":")).encode()
        response.content_type = "application/json"
        if gzipped:
            response.set_header("Content-Encoding", "gzip")
            return gzip.compress(body, compresslevel=6)
        return body

    @app.error(404)
    def not_found(error: bottle.HTTPError) -> str:
        response.content_type = "application/json; charset=utf-8"
        return json.dumps({"error": not_found_message(request.path)}, separators=(",", ":"))

    def numbered(number: int):  # type: ignore[no-untyped-def]
        def show(id: int) -> dict[str, int]:
            return {"route": number, "id": id}

        return show

    for i in range(route_count):
        app.route(f"/r{i}/<id:int>", "GET", numbered(i))
    return app
