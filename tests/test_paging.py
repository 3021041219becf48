"""restkit.paging: parameters, edge cases, X-Total-Count and the Link header, in-memory lists, the document."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from restkit import App, Field
from restkit.paging import Paging
from tests.conftest import wsgi_call

ITEMS = [{"id": n, "name": f"item {n:02}", "tag": "even" if n % 2 == 0 else "odd"} for n in range(1, 48)]
LIST = Paging(default_limit=10, max_limit=20, sort=["id", "name"], default_order="asc", filters=["tag"])


def make_app() -> App:
    app = App(openapi=True)

    @app.get("/items", paging=LIST)
    def list_items(request: Any) -> Any:
        page = LIST.read(request)
        items, total = page.apply(ITEMS)
        return page.response(request, items, total)

    return app


APP = make_app()


def links(headers: dict[str, str]) -> dict[str, dict[str, str]]:
    """The Link header as rel -> query parameters."""
    found = {}
    for url, rel in re.findall(r'<([^>]*)>; rel="([a-z]+)"', headers["Link"]):
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://127.0.0.1/items"
        found[rel] = dict(parse_qsl(parts.query))
    return found


# (query, ids on the page, {rel: the paging parameters of its link})
PAGES = [
    ("", list(range(1, 11)), {"first": "limit=10&offset=0", "next": "limit=10&offset=10", "last": "limit=10&offset=40"}),
    ("limit=5&offset=5", [6, 7, 8, 9, 10],
     {"first": "limit=5&offset=0", "prev": "limit=5&offset=0", "next": "limit=5&offset=10", "last": "limit=5&offset=45"}),
    ("limit=20&offset=40", list(range(41, 48)),
     {"first": "limit=20&offset=0", "prev": "limit=20&offset=20", "last": "limit=20&offset=40"}),
    ("offset=3", list(range(4, 14)),
     {"first": "limit=10&offset=0", "prev": "limit=10&offset=0", "next": "limit=10&offset=13", "last": "limit=10&offset=40"}),
    # past the end: an empty page whose prev is the last page
    ("offset=1000", [], {"first": "limit=10&offset=0", "prev": "limit=10&offset=40", "last": "limit=10&offset=40"}),
    ("offset=9223372036854775807", [], {"first": "limit=10&offset=0", "prev": "limit=10&offset=40", "last": "limit=10&offset=40"}),
    ("page=2&per_page=20", list(range(21, 41)),
     {"first": "page=1&per_page=20", "prev": "page=1&per_page=20", "next": "page=3&per_page=20", "last": "page=3&per_page=20"}),
    ("page=9", [], {"first": "page=1&per_page=10", "prev": "page=5&per_page=10", "last": "page=5&per_page=10"}),
    ("per_page=3", [1, 2, 3], {"first": "page=1&per_page=3", "next": "page=2&per_page=3", "last": "page=16&per_page=3"}),
    ("sortby=id&order=desc&limit=3", [47, 46, 45],
     {"first": "sortby=id&order=desc&limit=3&offset=0", "next": "sortby=id&order=desc&limit=3&offset=3",
      "last": "sortby=id&order=desc&limit=3&offset=45"}),
    ("tag=even&limit=20", list(range(2, 42, 2)),
     {"first": "tag=even&limit=20&offset=0", "next": "tag=even&limit=20&offset=20", "last": "tag=even&limit=20&offset=20"}),
    ("tag=none", [], {"first": "tag=none&limit=10&offset=0", "last": "tag=none&limit=10&offset=0"}),
    # both styles naming the same page, as clients generated from the document may send them: links use limit & offset
    ("limit=20&offset=20&page=2&per_page=20", list(range(21, 41)),
     {"first": "limit=20&offset=0", "prev": "limit=20&offset=0", "next": "limit=20&offset=40", "last": "limit=20&offset=40"}),
    ("limit=10&offset=0&page=1&per_page=10", list(range(1, 11)),
     {"first": "limit=10&offset=0", "next": "limit=10&offset=10", "last": "limit=10&offset=40"}),
    ("offset=10&page=2", list(range(11, 21)),  # each style with its defaults
     {"first": "limit=10&offset=0", "prev": "limit=10&offset=0", "next": "limit=10&offset=20", "last": "limit=10&offset=40"}),
    ("limit=5.0&offset=5.00", [6, 7, 8, 9, 10],  # a number with no fraction is an integer (JSON Schema 2020-12)
     {"first": "limit=5&offset=0", "prev": "limit=5&offset=0", "next": "limit=5&offset=10", "last": "limit=5&offset=45"}),
]


@pytest.mark.parametrize("query, ids, expected", PAGES, ids=[q or "defaults" for q, _, _ in PAGES])
def test_pages_and_their_links(query: str, ids: list[int], expected: dict[str, str]) -> None:
    status, headers, body = wsgi_call(APP, "GET", f"/items?{query}")
    assert status == 200, body
    assert [item["id"] for item in json.loads(body)] == ids
    total = len([i for i in ITEMS if "tag=" not in query or i["tag"] == dict(parse_qsl(query)).get("tag")])
    assert headers["X-Total-Count"] == str(total)
    assert links(headers) == {rel: dict(parse_qsl(q)) for rel, q in expected.items()}


# (query, status, the parameter the error names)
BAD = [
    ("limit=0", "limit"),
    ("limit=21", "limit"),
    ("limit=-1", "limit"),
    ("limit=abc", "limit"),
    ("limit=", "limit"),
    ("limit=1.5", "limit"),
    ("limit=%D9%A1", "limit"),  # an Arabic-Indic digit is not ASCII
    ("offset=-1", "offset"),
    ("offset=9223372036854775808", "offset"),
    ("offset=99999999999999999999999999999999", "offset"),
    ("page=0", "page"),
    ("page=922337203685477581", "page"),  # its offset would overflow an SQL integer
    ("page=461168601842738792&per_page=1", "page"),  # one bound for every page size: the document's maximum
    ("per_page=0", "per_page"),
    ("per_page=21", "per_page"),
    ("limit=5&page=2", "limit=5 and page=2 name different pages"),
    ("offset=5&per_page=5", "offset=5 and per_page=5 name different pages"),
    ("limit=20&offset=0&page=2&per_page=20", "limit=20&offset=0 and page=2&per_page=20 name different pages"),
    ("limit=10&offset=5&page=1&per_page=10", "limit=10&offset=5 and page=1&per_page=10"),
    ("limit=5&offset=0&page=1&per_page=10", "limit=5&offset=0 and page=1&per_page=10"),
    ("limit=5&page=0", "page"),  # each style is checked before they are compared
    ("limit=1.&offset=0", "limit"),
    ("limit=1&limit=2", "limit is given more than once"),
    ("page=1&page=1", "page is given more than once"),
    ("sortby=id&sortby=name", "sortby is given more than once"),
    ("tag=odd&tag=even", "tag is given more than once"),
    ("sortby=colour", "sortby must be one of id, name"),
    ("sortby=", "sortby"),
    ("order=ASC", "order must be asc or desc"),
    ("order=up", "order"),
]


@pytest.mark.parametrize("query, fragment", BAD, ids=[q for q, _ in BAD])
def test_bad_parameters_are_400_naming_them(query: str, fragment: str) -> None:
    status, headers, body = wsgi_call(APP, "GET", f"/items?{query}")
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert fragment in json.loads(body)["error"]


def test_other_parameters_are_left_to_the_handler_and_kept_in_links() -> None:
    status, headers, _ = wsgi_call(APP, "GET", "/items?q=x%20y&limit=40"[:-1])
    assert status == 200
    assert links(headers)["next"] == {"q": "x y", "limit": "4", "offset": "4"}


def test_a_repeated_parameter_the_paging_does_not_know_is_kept_once() -> None:
    """Repeats of other parameters are the handler's business; the links keep the first value."""
    page = LIST.read(_request("q=a&limit=4&q=b&offset=4"))
    assert (page.offset, page.limit, page.kept) == (4, 4, [("q", "a")])


def test_a_page_for_any_data_source() -> None:
    page = LIST.read(_request("sortby=name&order=desc&page=3&per_page=4&tag=odd"))
    assert (page.offset, page.limit, page.sort, page.order, page.filters, page.number) == (8, 4, "name", "desc", {"tag": "odd"}, 3)
    assert page.link_header("http://h/items", 0) == (
        '<http://h/items?sortby=name&order=desc&tag=odd&page=1&per_page=4>; rel="first", '
        '<http://h/items?sortby=name&order=desc&tag=odd&page=1&per_page=4>; rel="prev", '
        '<http://h/items?sortby=name&order=desc&tag=odd&page=1&per_page=4>; rel="last"'
    )


def test_sorting_puts_none_first_and_objects_work() -> None:
    class Row:
        def __init__(self, id: int, name: str | None) -> None:
            self.id, self.name = id, name

    rows = [Row(1, "b"), Row(2, None), Row(3, "a")]
    page = LIST.read(_request("sortby=name"))
    items, total = page.apply(rows)
    assert [r.id for r in items] == [2, 3, 1] and total == 3


def test_settings_are_checked_at_setup() -> None:
    with pytest.raises(ValueError):
        Paging(default_limit=0)
    with pytest.raises(ValueError):
        Paging(default_limit=50, max_limit=10)
    with pytest.raises(ValueError):
        Paging(sort=["id"], default_sort="name")
    with pytest.raises(ValueError):
        Paging(filters=["limit"])
    with pytest.raises(ValueError):
        Paging(default_order="up")


def test_the_document() -> None:
    document = APP.openapi()
    op = document["paths"]["/items"]["get"]
    parameters = {p["name"]: p for p in op["parameters"]}
    assert set(parameters) == {"limit", "offset", "page", "per_page", "sortby", "order", "tag"}
    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 20}
    for name in ("limit", "offset", "page", "per_page"):  # generated clients would send every default
        assert "default" not in parameters[name]["schema"]
        assert "limit & offset or with page & per_page" in parameters[name]["description"]
    assert "(default 10)" in parameters["per_page"]["description"]
    assert "(default 1)" in parameters["page"]["description"]
    assert op["x-restkit-paging"] == {"styles": [["limit", "offset"], ["page", "per_page"]], "default_limit": 10}
    assert parameters["sortby"]["schema"] == {"enum": ["id", "name"], "default": "id"}
    assert {"X-Total-Count", "Link"} <= set(op["responses"]["200"]["headers"])
    assert "400" in op["responses"]
    pytest.importorskip("openapi_spec_validator").validate(document)


def test_a_query_model_s_parameters_win_in_the_document() -> None:
    app = App()
    paging = Paging(max_limit=20, default_limit=10)

    @app.get("/things", query=Query, paging=paging, unknown_fields="ignore")
    def things(request: Any, query: Query) -> Any:
        page = paging.read(request)
        return page.response(request, [], 0)

    parameters = [p for p in app.openapi()["paths"]["/things"]["get"]["parameters"] if p["name"] == "limit"]
    assert len(parameters) == 1 and parameters[0]["schema"]["maximum"] == 20
    assert "default" not in parameters[0]["schema"] and parameters[0]["description"].startswith("ours (default 10). ")
    assert wsgi_call(app, "GET", "/things?limit=30")[0] == 400


def test_the_document_s_bounds_are_the_paging_s_even_where_a_query_model_allows_more() -> None:
    """A value the schema allows must not be a 400: schemathesis sends it as valid data."""
    app = App()
    paging = Paging(max_limit=20, default_limit=10, max_offset=1000)

    @app.get("/wide", query=WideQuery, paging=paging)
    def wide(request: Any, query: WideQuery) -> Any:
        return paging.read(request).response(request, [], 0)

    schemas = {p["name"]: p["schema"] for p in app.openapi()["paths"]["/wide"]["get"]["parameters"]}
    assert schemas["limit"] == schemas["per_page"] == {"type": "integer", "minimum": 1, "maximum": 20}
    assert schemas["offset"] == {"type": "integer", "minimum": 0, "maximum": 1000}
    assert schemas["page"] == {"type": "integer", "minimum": 1, "maximum": 1000 // 20 + 1} == {**schemas["page"], "maximum": paging.max_page}
    for name, schema in schemas.items():  # the largest documented value of each is accepted, alone or with the other
        if name in ("limit", "offset", "page", "per_page"):
            assert wsgi_call(app, "GET", f"/wide?{name}={schema['maximum']}")[0] == 200, name
    assert wsgi_call(app, "GET", f"/wide?page={paging.max_page}&per_page=20")[0] == 200
    assert wsgi_call(app, "GET", f"/wide?page={paging.max_page + 1}&per_page=1")[0] == 400


@dataclass
class WideQuery:
    limit: int = 10
    offset: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    page: Annotated[int, Field(ge=1, le=2**63 - 1)] = 1
    per_page: Annotated[int, Field(ge=1, le=500)] = 10


@dataclass
class Query:
    limit: Annotated[int, Field(ge=1, le=20, description="ours")] = 10


def _request(query: str) -> Any:
    from restkit import Request

    return Request({"REQUEST_METHOD": "GET", "PATH_INFO": "/items", "QUERY_STRING": query})
