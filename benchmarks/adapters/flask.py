"""Flask: the scenarios on a ``flask.Flask`` app."""

from __future__ import annotations

import gzip
from typing import Any

import flask
from werkzeug.exceptions import NotFound

from . import HELLO, HERD, HERD_ETAG, HERD_GZIP_ETAG, PET, PET_ETAG, PETS, not_found_message, page_links


def make_app(route_count: int = 10, compressed: bool = False) -> flask.Flask:
    app = flask.Flask("bench")
    request = flask.request

    @app.get("/hello")
    def hello() -> tuple[str, int, dict[str, str]]:
        return HELLO, 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.get("/zoos/<int:zoo_id>/animals/<int:animal_id>")
    def show_animal(zoo_id: int, animal_id: int) -> dict[str, int]:
        return {"zoo_id": zoo_id, "animal_id": animal_id}

    @app.get("/animals")
    def list_animals() -> dict[str, Any]:
        args = request.args
        return {
            "limit": args.get("limit", 20, type=int), "offset": args.get("offset", 0, type=int),
            "sortby": args.get("sortby", "id"), "order": args.get("order", "asc"),
        }

    @app.post("/zoos")
    def create_zoo() -> tuple[dict[str, Any], int]:
        return {"id": 1, **request.get_json()}, 201

    @app.put("/items/<int:item_id>")
    def update_item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, **request.form.to_dict()}

    @app.get("/pets")
    def list_pets() -> flask.Response:
        limit = request.args.get("limit", 20, type=int)
        offset = request.args.get("offset", 0, type=int)
        response = flask.jsonify(PETS[offset : offset + limit])
        response.headers["X-Total-Count"] = str(len(PETS))
        response.headers["Link"] = page_links(request.base_url, limit, offset, len(PETS))
        return response

    @app.get("/pets/<int:pet_id>")
    def show_pet(pet_id: int) -> flask.Response:
        response = flask.jsonify(PET)
        response.set_etag(PET_ETAG.strip('"'))
        return response.make_conditional(request)

    @app.get("/herd")
    def show_herd() -> flask.Response:
        # Flask has no gzip of its own (Flask-Compress is an extension): the tag names the representation sent.
        gzipped = compressed and "gzip" in request.headers.get("Accept-Encoding", "").lower()
        response = flask.jsonify(HERD)
        response.set_etag((HERD_GZIP_ETAG if gzipped else HERD_ETAG).strip('"'))
        response.vary.add("Accept-Encoding")
        response = response.make_conditional(request)
        if gzipped and response.status_code == 200:
            response.set_data(gzip.compress(response.get_data(), compresslevel=6))
            response.headers["Content-Encoding"] = "gzip"
        return response

    @app.errorhandler(NotFound)
    def not_found(error: NotFound) -> tuple[dict[str, str], int]:
        return {"error": not_found_message(request.path)}, 404

    def numbered(number: int):  # type: ignore[no-untyped-def]
        def show(id: int) -> dict[str, int]:
            return {"route": number, "id": id}

        return show

    for i in range(route_count):
        app.add_url_rule(f"/r{i}/<int:id>", f"r{i}", numbered(i), methods=["GET"])
    return app
