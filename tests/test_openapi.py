"""restkit.openapi: the OpenAPI 3.1 document built from the route table, and the routes that serve it."""

from __future__ import annotations

import datetime
import enum
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional

import pytest

from restkit import App, Request, Router
from restkit.routing import RouteError
from restkit.openapi import json_schema
from restkit.validation import Field

from .conftest import make_client, wsgi_call

openapi_spec_validator = pytest.importorskip("openapi_spec_validator")

# --- a shop API that uses every feature -------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Label:
    name: Annotated[str, Field(min_length=1, max_length=20, pattern="[a-z-]+")]


@dataclass
class ItemIn:
    """An item to store."""

    name: Annotated[str, Field(min_length=1, max_length=50, description="display name", example="lamp")]
    price: Annotated[float, Field(gt=0, lt=1_000_000)]
    quantity: Annotated[int, Field(ge=0, le=1000)] = 1
    kind: Literal["tool", "toy"] = "tool"
    color: Color | None = None
    labels: Annotated[list[Label], Field(max_length=5)] = field(default_factory=list)
    note: Optional[str] = None
    attributes: dict[str, int] = field(default_factory=dict)
    released: datetime.date | None = None


@dataclass
class Item:
    id: int
    name: str
    price: float
    code: uuid.UUID
    updated: datetime.datetime


@dataclass
class Category:
    """A recursive model."""

    name: str
    children: list[Category] = field(default_factory=list)


@dataclass
class Error:
    """A user model that happens to be called like restkit's error schema."""

    code: int


@dataclass
class ListParams:
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    labels: list[str] = field(default_factory=list)
    q: str | None = None


class elsewhere:  # a namespace for a second model called "Item"
    @dataclass
    class Item:
        sku: str


def make_shop_app() -> App:
    app = App(openapi=True, title="Shop", version="2.0.0", description="Things for sale.")
    v1 = Router(tags=["items"])

    @v1.get("/items", query=ListParams, responses={200: list[Item]})
    def list_items(request: Request, query: ListParams) -> Any:
        """List the items.

        Newest first; at most `limit`.
        """
        return []

    @v1.post("/items", body=ItemIn, responses={201: Item}, errors=[409])
    def create_item(request: Request, body: ItemIn) -> Any:
        """Create an item."""
        return {}, 201

    @v1.get("/items/<int:item_id>", responses={200: Item})
    def show_item(request: Request, item_id: int) -> Any:
        return {}

    @v1.patch("/items/<int:item_id>", body=ItemIn, partial=True, responses={200: Item})
    def update_item(request: Request, item_id: int, body: ItemIn) -> Any:
        """Change some fields of an item."""
        return {}

    @v1.delete("/items/<int:item_id>", responses={204: None}, errors=[401, 403])
    def delete_item(request: Request, item_id: int) -> None:
        """Delete an item."""

    app.mount("/v1", v1)

    @app.get("/", responses={200: dict[str, str]})
    def index(request: Request) -> Any:
        return {}

    @app.get("/files/<path:file_path>", produces="text/plain", responses={200: str})
    def read_file(request: Request, file_path: str) -> str:
        return ""

    @app.get("/prices/<float:amount>")
    def price(request: Request, amount: float) -> Any:
        return {}

    @app.get("/orders/<uuid:order_id>", tags=["orders", "admin"])
    def show_order(request: Request, order_id: uuid.UUID) -> Any:
        return {}

    @app.get("/users/<name>")
    def show_user(request: Request, name: str) -> Any:
        return {}

    @app.route("/things", methods=["GET", "POST"])
    def things(request: Request) -> Any:
        return {}

    @app.get("/categories", responses={200: Category})
    def categories(request: Request) -> Any:
        return {}

    @app.get("/errors", responses={200: Error, 201: elsewhere.Item})
    def odd_names(request: Request) -> Any:
        return {}

    def ping(request: Request) -> Any:
        return {}

    app.add_route("/ping", ping)
    app.add_route("/health", ping)  # the same handler on a second path

    @app.get("/internal", include_in_schema=False)
    def internal(request: Request) -> Any:
        return {}

    return app


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return make_shop_app().openapi()


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for item in document["paths"].values() for op in item.values()}


# --- the document as a whole ---------------------------------------------------------


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    openapi_spec_validator.validate(json.loads(json.dumps(document)))
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Shop", "version": "2.0.0", "description": "Things for sale."}


def test_paths(document: dict[str, Any]) -> None:
    assert {path: sorted(item) for path, item in document["paths"].items()} == {
        "/v1/items": ["get", "post"],
        "/v1/items/{item_id}": ["delete", "get", "patch"],
        "/": ["get"],
        "/files/{file_path}": ["get"],
        "/prices/{amount}": ["get"],
        "/orders/{order_id}": ["get"],
        "/users/{name}": ["get"],
        "/things": ["get", "post"],
        "/categories": ["get"],
        "/errors": ["get"],
        "/ping": ["get"],
        "/health": ["get"],
    }


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert {"things_get", "things_post", "ping", "ping_2", "list_items", "update_item"} <= set(ids)


def test_an_explicit_head_does_not_change_the_operation_id() -> None:
    app = App()
    app.add_route("/status", lambda request: {}, methods=["GET", "HEAD"], name="status")
    assert app.openapi()["paths"]["/status"] == {"get": operations(app.openapi())["status"]}
    assert set(operations(app.openapi())) == {"status"}


def test_docs_routes_and_hidden_routes_are_absent(document: dict[str, Any]) -> None:
    assert not {"/internal", "/openapi.json", "/docs"} & document["paths"].keys()


def test_head_and_options_are_not_operations(document: dict[str, Any]) -> None:
    assert all(not {"head", "options"} & item.keys() for item in document["paths"].values())


@pytest.mark.parametrize(
    ("operation_id", "tags"),
    [
        pytest.param("list_items", ["items"], id="router-tags"),
        pytest.param("delete_item", ["items"], id="router-tags-mounted"),
        pytest.param("show_order", ["orders", "admin"], id="route-tags"),
        pytest.param("show_user", ["users"], id="path-fallback"),
        pytest.param("read_file", ["files"], id="path-fallback-path-param"),
        pytest.param("index", ["root"], id="root-path"),
    ],
)
def test_tags(document: dict[str, Any], operation_id: str, tags: list[str]) -> None:
    assert operations(document)[operation_id]["tags"] == tags


def test_document_tags_list_every_tag_once(document: dict[str, Any]) -> None:
    names = [tag["name"] for tag in document["tags"]]
    assert names == sorted(set(names))
    assert {"items", "users", "orders", "admin", "root"} <= set(names)


def test_summary_and_description_from_the_docstring(document: dict[str, Any]) -> None:
    ops = operations(document)
    assert ops["list_items"]["summary"] == "List the items."
    assert ops["list_items"]["description"] == "Newest first; at most `limit`."
    assert ops["create_item"]["summary"] == "Create an item."
    assert "description" not in ops["create_item"]
    assert "summary" not in ops["show_item"]


@pytest.mark.parametrize(
    ("operation_id", "name", "schema"),
    [
        pytest.param("show_item", "item_id", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}, id="int"),
        pytest.param("price", "amount", {"type": "number", "minimum": 0}, id="float"),
        pytest.param("show_order", "order_id", {"type": "string", "format": "uuid"}, id="uuid"),
        pytest.param("read_file", "file_path", {"type": "string"}, id="path"),
        pytest.param("show_user", "name", {"type": "string"}, id="str"),
    ],
)
def test_path_parameters(document: dict[str, Any], operation_id: str, name: str, schema: dict[str, Any]) -> None:
    (param,) = operations(document)[operation_id]["parameters"]
    assert param == {"name": name, "in": "path", "required": True, "schema": schema}


def test_query_parameters(document: dict[str, Any]) -> None:
    params = {p["name"]: p for p in operations(document)["list_items"]["parameters"]}
    assert params["limit"] == {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    }
    assert params["labels"]["schema"] == {"type": "array", "items": {"type": "string", "pattern": "^[^\\u0000]*$"}}
    assert params["labels"]["explode"] is True
    assert params["q"]["schema"] == {"anyOf": [{"type": "string", "pattern": "^[^\\u0000]*$"}, {"type": "null"}]}


def test_request_body(document: dict[str, Any]) -> None:
    body = operations(document)["create_item"]["requestBody"]
    assert body == {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ItemIn"}}}}
    schema = document["components"]["schemas"]["ItemIn"]
    assert schema["required"] == ["name", "price"]
    assert schema["additionalProperties"] is False
    assert schema["description"] == "An item to store."
    assert schema["properties"]["quantity"] == {"type": "integer", "minimum": 0, "maximum": 1000, "default": 1}
    assert schema["properties"]["kind"] == {"enum": ["tool", "toy"], "default": "tool"}
    assert schema["properties"]["labels"] == {"type": "array", "items": {"$ref": "#/components/schemas/Label"}, "maxItems": 5}
    assert schema["properties"]["color"] == {"anyOf": [{"enum": ["red", "green"]}, {"type": "null"}]}


def test_partial_body_requires_nothing(document: dict[str, Any]) -> None:
    schema = operations(document)["update_item"]["requestBody"]["content"]["application/json"]["schema"]
    assert "required" not in schema
    assert schema["type"] == "object"
    assert schema["properties"] == document["components"]["schemas"]["ItemIn"]["properties"]


def test_partial_with_a_list_body_is_the_list_schema() -> None:
    app = App()
    app.add_route("/labels", lambda request, body: {}, methods=["PATCH"], name="labels", body=list[Label], partial=True)
    body = operations(app.openapi())["labels"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"type": "array", "items": {"$ref": "#/components/schemas/Label"}}


def test_responses(document: dict[str, Any]) -> None:
    ops = operations(document)
    item_ref = {"$ref": "#/components/schemas/Item"}
    assert ops["list_items"]["responses"]["200"] == {
        "description": "OK",
        "content": {"application/json": {"schema": {"type": "array", "items": item_ref}}},
    }
    assert ops["create_item"]["responses"]["201"]["content"]["application/json"]["schema"] == item_ref
    assert ops["delete_item"]["responses"]["204"] == {"description": "No Content"}
    assert ops["read_file"]["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}
    assert ops["price"]["responses"]["200"] == {"description": "OK", "content": {"application/json": {"schema": {}}}}


@pytest.mark.parametrize(
    ("operation_id", "statuses"),
    [
        pytest.param("list_items", ["200", "400", "406"], id="query"),
        pytest.param("create_item", ["201", "400", "406", "409", "413", "415", "422"], id="body-and-errors"),
        pytest.param("show_item", ["200", "404", "406"], id="path-params"),
        pytest.param("delete_item", ["204", "401", "403", "404", "406"], id="declared-errors"),
        pytest.param("read_file", ["200", "404", "406"], id="text-route"),
    ],
)
def test_error_statuses(document: dict[str, Any], operation_id: str, statuses: list[str]) -> None:
    responses = operations(document)[operation_id]["responses"]
    assert sorted(responses) == statuses
    for status in statuses:
        if int(status) >= 400:
            assert responses[status]["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def test_components(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error"]
    assert schemas["Error"]["properties"]["details"]["additionalProperties"] == {"type": "string"}
    assert schemas["Item"]["properties"]["code"] == {"type": "string", "format": "uuid"}
    assert schemas["Item"]["properties"]["updated"] == {"type": "string", "format": "date-time"}
    assert schemas["ItemIn"]["properties"]["released"] == {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]}


def test_a_recursive_model_refers_to_itself(document: dict[str, Any]) -> None:
    category = document["components"]["schemas"]["Category"]
    assert category["properties"]["children"] == {"type": "array", "items": {"$ref": "#/components/schemas/Category"}}


def test_models_with_clashing_names_get_their_own_components(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    responses = operations(document)["odd_names"]["responses"]
    user_error = responses["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    other_item = responses["201"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert user_error != "Error" and schemas[user_error]["properties"] == {"code": {"type": "integer"}}
    assert other_item != "Item" and schemas[other_item]["properties"] == {"sku": {"type": "string"}}
    assert "error" in schemas["Error"]["properties"] and "price" in schemas["Item"]["properties"]


def test_documents_do_not_share_state() -> None:
    app = make_shop_app()
    first = app.openapi()
    first["components"]["schemas"]["Error"]["properties"].clear()
    assert app.openapi()["components"]["schemas"]["Error"]["properties"]


# --- JSON Schema of type hints ----------------------------------------------------------


@dataclass
class Point:
    x: int
    y: int = 0


SCHEMAS = [
    pytest.param(int, {"type": "integer"}, id="int"),
    pytest.param(float, {"type": "number"}, id="float"),
    pytest.param(str, {"type": "string"}, id="str"),
    pytest.param(bool, {"type": "boolean"}, id="bool"),
    pytest.param(datetime.date, {"type": "string", "format": "date"}, id="date"),
    pytest.param(datetime.datetime, {"type": "string", "format": "date-time"}, id="datetime"),
    pytest.param(uuid.UUID, {"type": "string", "format": "uuid"}, id="uuid"),
    pytest.param(Any, {}, id="any"),
    pytest.param(
        Annotated[str, Field(min_length=1, max_length=5, pattern="[a-z]+")],
        {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^(?:[a-z]+)$"},
        id="str-constraints-pattern-anchored",
    ),
    pytest.param(Annotated[int, Field(ge=0, le=10)], {"type": "integer", "minimum": 0, "maximum": 10}, id="int-range"),
    pytest.param(
        Annotated[float, Field(gt=0, lt=1)], {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, id="float-exclusive"
    ),
    pytest.param(
        Annotated[list[int], Field(min_length=1, max_length=3)],
        {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
        id="list-length",
    ),
    pytest.param(
        Annotated[str, Field(description="a name", example="Ann")],
        {"type": "string", "description": "a name", "examples": ["Ann"]},
        id="description-example",
    ),
    pytest.param(Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}, id="optional"),
    pytest.param(int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}, id="pipe-none"),
    pytest.param(
        Annotated[str | None, Field(max_length=3)],
        {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
        id="optional-constrained",
    ),
    pytest.param(
        Annotated[str, Field(max_length=3)] | None,
        {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
        id="constraint-inside-optional",
    ),
    pytest.param(int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}, id="union"),
    pytest.param(Literal["a", "b"], {"enum": ["a", "b"]}, id="literal"),
    pytest.param(Literal[Color.RED], {"enum": ["red"]}, id="literal-enum-member"),
    pytest.param(Color, {"enum": ["red", "green"]}, id="enum"),
    pytest.param(list[str], {"type": "array", "items": {"type": "string"}}, id="list"),
    pytest.param(dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}, id="dict"),
    pytest.param(Point, {"$ref": "#/components/schemas/Point"}, id="dataclass-ref"),
    pytest.param(
        list[Point] | None,
        {"anyOf": [{"type": "array", "items": {"$ref": "#/components/schemas/Point"}}, {"type": "null"}]},
        id="optional-list-of-models",
    ),
]


@pytest.mark.parametrize(("tp", "schema"), SCHEMAS)
def test_json_schema(tp: Any, schema: dict[str, Any]) -> None:
    assert json_schema(tp) == schema


def test_unsupported_types_cannot_be_described() -> None:
    with pytest.raises(TypeError):
        json_schema(set[int])


def test_pattern_in_the_document_matches_what_validation_accepts() -> None:
    pattern = json_schema(Annotated[str, Field(pattern="[a-z]+")])["pattern"]
    assert re.search(pattern, "abc") and not re.search(pattern, "abc1")


# --- the routes that serve it ------------------------------------------------------------


def test_openapi_json_is_served() -> None:
    app = make_shop_app()
    client = make_client(app)
    response = client.get("/openapi.json")
    assert response.content_type == "application/json"
    assert response.json == json.loads(json.dumps(app.openapi()))


def test_docs_page_is_served_and_self_contained() -> None:
    client = make_client(make_shop_app())
    response = client.get("/docs", headers={"Accept": "text/html"})
    assert response.content_type == "text/html"
    page = response.text
    assert "<title>Shop</title>" in page
    assert 'const SPEC_URL = "/openapi.json";' in page
    # The padlock is an inline SVG: its namespace name is an identifier, never fetched.
    fetchable = page.replace("xmlns='http://www.w3.org/2000/svg'", "")
    for external in ("http://", "https://", "//cdn"):
        assert external not in fetchable
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<link[^>]*\bhref\s*=", page, re.I)
    assert not re.search(r"""url\(\s*(?!['"]?data:)""", page), "a CSS url() fetches a resource"
    assert not re.search(r"""<(img|iframe|object|embed)\b""", page, re.I)
    assert not re.search(r"@import", page)


def test_docs_page_under_a_script_name() -> None:
    client = make_client(make_shop_app())
    page = client.get("/docs", extra_environ={"SCRIPT_NAME": "/shop"}).text
    assert 'const SPEC_URL = "/shop/openapi.json";' in page
    assert 'const BASE = "/shop";' in page


@pytest.mark.parametrize(
    ("title", "absent", "present"),
    [
        pytest.param("</script><script>alert(1)</script>", "<script>alert(1)", "&lt;/script&gt;", id="html-in-title"),
        pytest.param("__BASE__ & __SPEC_URL__", '<title>"" &amp;', "<title>__BASE__ &amp; __SPEC_URL__</title>", id="placeholders-in-title"),
    ],
)
def test_docs_page_title_is_text(title: str, absent: str, present: str) -> None:
    client = make_client(App(openapi=True, title=title))
    page = client.get("/docs").text
    assert absent not in page
    assert present in page


def test_no_document_routes_without_openapi() -> None:
    client = make_client(App())
    assert client.get("/openapi.json", status=404).json == {"error": "no resource at /openapi.json"}
    assert client.get("/docs", status=404).json == {"error": "no resource at /docs"}


def test_the_served_document_validates_for_a_minimal_app() -> None:
    app = App(openapi=True)
    document = make_client(app).get("/openapi.json").json
    openapi_spec_validator.validate(document)
    assert document["paths"] == {}
    assert set(document["components"]["schemas"]) == {"Error"}


def test_builtin_doc_routes_leave_user_names_free() -> None:
    app = App(openapi=True)

    @app.get("/my/docs")
    def docs(request: Any) -> dict[str, str]:
        return {"mine": "yes"}

    @app.get("/my/openapi")
    def openapi_json(request: Any) -> dict[str, str]:
        return {"mine": "too"}

    client = make_client(app)
    assert client.get("/my/docs").json == {"mine": "yes"}
    assert client.get("/docs").content_type == "text/html"
    assert app.url_for("docs") == "/my/docs"
    assert app.url_for("restkit.openapi") == "/openapi.json"


def test_security_schemes_and_requirements() -> None:
    openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
    bearer = {"type": "http", "scheme": "bearer"}
    app = App(openapi=True, security_schemes={"bearerAuth": bearer})

    @app.get("/things")
    def list_things(request: Request) -> Any:
        return []

    @app.post("/things", security=[{"bearerAuth": []}], errors=[401])
    def create_thing(request: Request) -> Any:
        return {}, 201

    document = app.openapi()
    openapi_spec_validator.validate(document)
    assert document["components"]["securitySchemes"] == {"bearerAuth": bearer}
    assert document["paths"]["/things"]["post"]["security"] == [{"bearerAuth": []}]
    assert "security" not in document["paths"]["/things"]["get"]
    assert "securitySchemes" not in App(openapi=True).openapi()["components"]


def test_a_security_requirement_documents_its_401() -> None:
    app = App(security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer"}})

    @app.post("/things", security=[{"bearerAuth": []}])
    def create(request: Any) -> None:
        return None

    assert "401" in app.openapi()["paths"]["/things"]["post"]["responses"]


def test_deprecated_routes_are_marked_in_the_document_and_still_answer() -> None:
    app = App(openapi=True)
    old = Router(defaults={"deprecated": True})

    @old.get("/items")
    def old_items(request: Request) -> Any:
        """The items, the old way."""
        return []

    @app.get("/v2/items")
    def items(request: Request) -> Any:
        """The items."""
        return []

    @app.get("/v2/legacy", deprecated=True)
    def legacy(request: Request) -> Any:
        """One old route."""
        return []

    app.mount("/v1", old)
    ops = operations(app.openapi())
    assert ops["old_items"]["deprecated"] is True and ops["legacy"]["deprecated"] is True
    assert "deprecated" not in ops["items"]
    pytest.importorskip("openapi_spec_validator").validate(app.openapi())
    assert wsgi_call(app, "GET", "/v1/items")[0] == 200
    with pytest.raises(RouteError, match="deprecated= for GET '/x' must be True or False"):
        app.add_route("/x", items, deprecated="yes")  # type: ignore[arg-type]
