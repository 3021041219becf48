"""restkit: the scenarios as a restkit user writes them."""

from __future__ import annotations

from restkit import App, Request, Response
from restkit.compression import Compression
from restkit.paging import Paging

from . import HELLO, HERD, HERD_ETAG, PET, PET_ETAG, PETS

PAGING = Paging(default_limit=20, max_limit=100)


def make_app(route_count: int = 10, compressed: bool = False) -> App:
    app = App()
    if compressed:
        app.use(Compression())

    @app.get("/hello", produces="text/plain")
    def hello(request: Request) -> str:
        return HELLO

    @app.get("/zoos/<int:zoo_id>/animals/<int:animal_id>")
    def show_animal(request: Request, zoo_id: int, animal_id: int) -> dict[str, int]:
        return {"zoo_id": zoo_id, "animal_id": animal_id}

    @app.get("/animals")
    def list_animals(request: Request) -> dict[str, object]:
        query = request.query
        return {
            "limit": int(query.get("limit", 20)), "offset": int(query.get("offset", 0)),
            "sortby": query.get("sortby", "id"), "order": query.get("order", "asc"),
        }

    @app.post("/zoos")
    def create_zoo(request: Request) -> tuple[dict[str, object], int]:
        return {"id": 1, **request.json}, 201

    @app.put("/items/<int:item_id>")
    def update_item(request: Request, item_id: int) -> dict[str, object]:
        return {"id": item_id, **request.form.to_dict()}

    def numbered(number: int):  # type: ignore[no-untyped-def]
        def show(request: Request, id: int) -> dict[str, int]:
            return {"route": number, "id": id}

        return show

    @app.get("/pets", paging=PAGING)
    def list_pets(request: Request) -> Response:
        page = PAGING.read(request)
        return page.response(request, PETS[page.offset : page.offset + page.limit], len(PETS))

    @app.get("/pets/<int:pet_id>", conditional=True)
    def show_pet(request: Request, pet_id: int) -> tuple[dict[str, object], int, dict[str, str]]:
        return PET, 200, {"ETag": PET_ETAG}

    @app.get("/herd", conditional=True)
    def show_herd(request: Request) -> tuple[list[dict[str, object]], int, dict[str, str]]:
        return HERD, 200, {"ETag": HERD_ETAG}

    for i in range(route_count):
        app.add_route(f"/r{i}/<int:id>", numbered(i), name=f"r{i}")
    return app
