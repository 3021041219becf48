"""examples/zoo lists: paging, sorting, filtering, X-Total-Count and the Link header."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import webtest

from examples.zoo.app import ZooApp
from tests.conftest import make_client
from tests.test_examples_zoo import AUTH, JSON_TYPE, assert_error, new_app, refused, send_json
from tests.zoo_pg_fixtures import ENGINES, pg_cluster  # noqa: F401

ANIMALS = 45
TYPES = 6


@pytest.fixture(scope="module", params=ENGINES)
def zoo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooApp]:
    """An app with 3 zoos and 45 animals: animal n is of type n % 6 + 1, at zoo n % 3 + 1,
    named "animal NN" (odd ones in capitals), born on day n of 2020 when n is even.
    On each engine: SQLite, PostgreSQL."""
    if request.param == "postgresql":
        app = new_app(request.getfixturevalue("pg_cluster").create_database("lists"), empty=True)
    else:
        app = new_app(tmp_path_factory.mktemp("lists"), empty=True)
    for name, city in (("Zoo A", "Paris"), ("Zoo B", "berlin"), ("Zoo C", "Berlin")):
        app.store.create("zoo", {"name": name, "city": city})
    for n in range(1, ANIMALS + 1):
        name = f"animal {n:02d}"
        app.store.create(
            "animal",
            {
                "name": name.upper() if n % 2 else name,
                "animal_type_id": n % TYPES + 1,
                "zoo_id": n % 3 + 1,
                "born": f"2020-01-{n:02d}" if n % 2 == 0 and n <= 31 else None,
            },
        )
    for n, name in enumerate(("Kim", "Lee", "Max")):
        app.store.create("employee", {"name": name})
    app.store.hire(1, 1)
    yield app
    app.close()


@pytest.fixture
def client(zoo: ZooApp) -> webtest.TestApp:
    return make_client(zoo)


def ids(response: webtest.TestResponse) -> list[int]:
    return [item["id"] for item in response.json]


def links(response: webtest.TestResponse) -> dict[str, dict[str, str]]:
    """The Link header as rel -> query parameters (and the path under "")."""
    result = {}
    for url, rel in re.findall(r'<([^>]*)>; rel="([a-z]+)"', response.headers["Link"]):
        parts = urlsplit(url)
        assert parts.scheme == "http" and parts.netloc
        result[rel] = {"": parts.path, **dict(parse_qsl(parts.query))}
    assert response.headers["Link"].count("rel=") == len(result)
    return result


def test_default_page(client: webtest.TestApp) -> None:
    response = client.get("/v1/animals")
    assert ids(response) == list(range(1, 21))
    assert response.headers["X-Total-Count"] == str(ANIMALS)
    assert all(set(item) == {"id", "name", "href"} and item["href"] == f"/v1/animals/{item['id']}"
               for item in response.json)
    assert links(response) == {
        "first": {"": "/v1/animals", "limit": "20", "offset": "0"},
        "next": {"": "/v1/animals", "limit": "20", "offset": "20"},
        "last": {"": "/v1/animals", "limit": "20", "offset": "40"},
    }


PAGES: list[tuple[str, list[int], dict[str, str]]] = [
    ("limit=5", [1, 2, 3, 4, 5], {"first": "0", "next": "5", "last": "40"}),
    ("limit=5&offset=5", [6, 7, 8, 9, 10], {"first": "0", "prev": "0", "next": "10", "last": "40"}),
    ("offset=3&limit=5", [4, 5, 6, 7, 8], {"first": "0", "prev": "0", "next": "8", "last": "40"}),
    ("limit=10&offset=40", [41, 42, 43, 44, 45], {"first": "0", "prev": "30", "last": "40"}),
    ("limit=100", list(range(1, 46)), {"first": "0", "last": "0"}),
    ("offset=1000", [], {"first": "0", "prev": "40", "last": "40"}),
    ("page=2&per_page=10", list(range(11, 21)), {"first": "1", "prev": "1", "next": "3", "last": "5"}),
    ("page=5&per_page=10", list(range(41, 46)), {"first": "1", "prev": "4", "last": "5"}),
    ("per_page=15", list(range(1, 16)), {"first": "1", "next": "2", "last": "3"}),
    ("page=3", list(range(41, 46)), {"first": "1", "prev": "2", "last": "3"}),
    ("page=9&per_page=50", [], {"first": "1", "prev": "1", "last": "1"}),
]


@pytest.mark.parametrize("query, expected, pages", PAGES, ids=[q for q, _, _ in PAGES])
def test_paging(client: webtest.TestApp, query: str, expected: list[int], pages: dict[str, str]) -> None:
    response = client.get(f"/v1/animals?{query}")
    assert ids(response) == expected
    assert response.headers["X-Total-Count"] == str(ANIMALS)
    found = links(response)
    key = "page" if "page" in query else "offset"
    assert {rel: params[key] for rel, params in found.items()} == pages


@pytest.mark.parametrize("query", ["limit=7", "per_page=7", "limit=7&sortby=name&order=desc&zoo_id=2"])
def test_following_next_visits_every_item_once(client: webtest.TestApp, query: str) -> None:
    response = client.get(f"/v1/animals?{query}")
    total = int(response.headers["X-Total-Count"])
    seen = ids(response)
    while "next" in links(response):
        url = re.search(r'<([^>]*)>; rel="next"', response.headers["Link"])
        assert url is not None
        response = client.get(url.group(1).removeprefix("http://localhost:80"))
        assert response.headers["X-Total-Count"] == str(total)
        seen += ids(response)
    assert len(seen) == total == len(set(seen))
    last = re.search(r'<([^>]*)>; rel="last"', response.headers["Link"])
    assert last is not None and client.get(last.group(1).removeprefix("http://localhost:80")).json == response.json


def _names(response: webtest.TestResponse) -> list[str]:
    return [item["name"] for item in response.json]


SORTS: list[tuple[str, Callable[[list[dict[str, Any]]], bool]]] = [
    ("sortby=id&order=desc", lambda items: [i["id"] for i in items] == list(range(45, 25, -1))),
    ("sortby=name", lambda items: [i["name"].lower() for i in items] == [f"animal {n:02d}" for n in range(1, 21)]),
    ("sortby=name&order=desc&limit=3", lambda items: [i["name"] for i in items] == ["ANIMAL 45", "animal 44", "ANIMAL 43"]),
    ("sortby=created_at&order=desc&limit=3", lambda items: [i["id"] for i in items] == [45, 44, 43]),
    ("sortby=updated_at&limit=2", lambda items: [i["id"] for i in items] == [1, 2]),
    # nulls first when ascending; ties broken by id
    ("sortby=born&limit=31", lambda items: [i["id"] for i in items][:5] == [1, 3, 5, 7, 9]
     and [i["id"] for i in items][-1] == 2),
    ("sortby=born&order=desc&limit=3", lambda items: [i["id"] for i in items] == [30, 28, 26]),
    ("sortby=zoo_id&limit=3", lambda items: [i["id"] for i in items] == [3, 6, 9]),
    ("sortby=animal_type_id&order=desc&limit=2", lambda items: [i["id"] for i in items] == [41, 35]),
]


@pytest.mark.parametrize("query, check", SORTS, ids=[q for q, _ in SORTS])
def test_sorting(client: webtest.TestApp, query: str, check: Callable[[list[dict[str, Any]]], bool]) -> None:
    response = client.get(f"/v1/animals?{query}")
    assert response.status_int == 200
    assert check(response.json), response.json
    assert response.headers["X-Total-Count"] == str(ANIMALS)


FILTERS = [
    ("/v1/animals?zoo_id=2", [n for n in range(1, 46) if n % 3 + 1 == 2]),
    ("/v1/animals?animal_type_id=3&limit=100", [n for n in range(1, 46) if n % 6 + 1 == 3]),
    ("/v1/animals?zoo_id=1&animal_type_id=1", [n for n in range(1, 46) if n % 3 == 0 and n % 6 == 0]),
    ("/v1/animals?name=Animal%2007", [7]),
    ("/v1/animals?born=2020-01-10", [10]),
    ("/v1/animals?born=null&limit=100", [n for n in range(1, 46) if n % 2 or n > 31]),
    ("/v1/animals?name=nobody", []),
    ("/v1/animals?zoo_id=99", []),
    ("/v1/zoos?city=BERLIN", [2, 3]),
    ("/v1/zoos?city=berlin&sortby=name&order=desc", [3, 2]),
    ("/v1/zoos?name=zoo%20a", [1]),
    ("/v1/zoos?sortby=city&order=asc", [2, 3, 1]),
    ("/v1/employees?zoo_id=null", [2, 3]),
    ("/v1/employees?zoo_id=1", [1]),
    ("/v1/employees?name=max", [3]),
    ("/v1/animal_types?sortby=name", [4, 2, 5, 6, 1, 3]),
    ("/v1/animal_types?name=Fish", [5]),
    ("/v1/zoos/2/animals?sortby=id&order=desc&limit=3", [43, 40, 37]),
    ("/v1/zoos/1/employees", [1]),
    ("/v1/animals/recently_added", list(range(45, 35, -1))),
    ("/v1/animals/recently_added?zoo_id=3&limit=2", [44, 41]),
]


@pytest.mark.parametrize("url, expected", FILTERS, ids=[u for u, _ in FILTERS])
def test_filters(client: webtest.TestApp, url: str, expected: list[int]) -> None:
    response = client.get(url)
    assert ids(response) == expected
    if "recently_added" not in url and "limit" not in url:
        assert response.headers["X-Total-Count"] == str(len(expected))
    # the filters survive in every Link URL
    for params in links(response).values():
        for name, value in parse_qsl(urlsplit(url).query):
            if name not in ("limit", "offset", "page", "per_page"):
                assert params[name] == value


BAD_QUERIES = [
    ("limit=0", "limit"),
    ("limit=-1", "limit"),
    ("limit=101", "limit"),
    ("limit=abc", "limit"),
    ("limit=1.5", "limit"),
    ("limit=", "limit"),
    ("limit=%2B5", "limit"),
    ("limit=%D9%A1", "limit"),
    ("offset=-1", "offset"),
    ("offset=9223372036854775808", "offset"),
    ("offset=99999999999999999999999999", "offset"),
    ("page=0", "page"),
    ("page=-2", "page"),
    ("page=99999999999999999999", "page"),
    ("page=922337203685477581&per_page=10", "page"),
    ("per_page=0", "per_page"),
    ("per_page=101", "per_page"),
    ("page=2&limit=5", "limit"),
    ("offset=5&per_page=5", "offset"),
    ("limit=20&offset=0&page=2&per_page=20", "limit=20&offset=0 and page=2&per_page=20"),  # both styles, two pages
    ("limit=10&offset=0&page=1&per_page=20", "name different pages"),
    ("sortby=color", "sortby"),
    ("sortby=links", "sortby"),
    ("sortby=", "sortby"),
    ("sortby=name%3B%20DROP%20TABLE%20animals", "sortby"),
    ("order=up", "order"),
    ("order=ASC", "order"),
    ("colour=red", "colour"),
    ("limit=1&limit=2", "limit"),
    ("zoo_id=abc", "zoo_id"),
    ("zoo_id=0", "zoo_id"),
    ("zoo_id=9223372036854775808", "zoo_id"),
    ("animal_type_id=-1", "animal_type_id"),
    ("born=2020-13-01", "born"),
    ("born=yesterday", "born"),
    ("name=" + "x" * 101, "name"),
]


@pytest.mark.parametrize("query, parameter", BAD_QUERIES, ids=[q[:40] for q, _ in BAD_QUERIES])
def test_invalid_parameters_are_400_naming_the_parameter(client: webtest.TestApp, zoo: ZooApp, query: str,
                                                          parameter: str) -> None:
    refused(client, zoo, "GET", f"/v1/animals?{query}", 400, parameter)


LISTS = ["/v1/zoos", "/v1/animals", "/v1/animal_types", "/v1/employees", "/v1/zoos/1/animals", "/v1/zoos/1/employees",
         "/v1/animals/recently_added"]


@pytest.mark.parametrize("url", LISTS)
def test_both_paging_styles_naming_the_same_page_are_accepted(client: webtest.TestApp, url: str) -> None:
    """What a client generated from /openapi.json may send: all four paging parameters, agreeing."""
    alone = client.get(f"{url}?limit=2&offset=2")
    both = client.get(f"{url}?limit=2&offset=2&page=2&per_page=2")
    assert both.status_int == 200 and both.json == alone.json
    assert both.headers["X-Total-Count"] == alone.headers["X-Total-Count"]


def test_both_paging_styles_naming_different_pages_are_refused(client: webtest.TestApp) -> None:
    for url in LISTS:
        response = client.get(f"{url}?limit=20&offset=0&page=2&per_page=20", expect_errors=True)
        assert_error(response, 400, "limit=20&offset=0 and page=2&per_page=20 name different pages")


def test_a_number_with_no_fraction_is_an_integer(client: webtest.TestApp, tmp_path: Path) -> None:
    """JSON Schema 2020-12 counts 1.0 as an integer: in a query, and in a body (stored as 1)."""
    by_float, by_int = (client.get(f"/v1/animals?animal_type_id={n}&limit=100") for n in ("3.0", "3"))
    assert ids(by_float) == ids(by_int) and ids(by_int)
    app = new_app(tmp_path)
    try:
        writer = make_client(app)
        response = send_json(writer, "POST", "/v1/animals", {"name": "Rex", "animal_type_id": 1.0, "zoo_id": 1.0})
        assert response.status_int == 201, response.text
        assert b'"animal_type_id": 1.0' not in response.body
        created = response.json
        assert (created["animal_type_id"], created["zoo_id"]) == (1, 1) and type(created["animal_type_id"]) is int
        stored = app.store.get("animal", created["id"])
        assert (stored["animal_type_id"], stored["zoo_id"]) == (1, 1) and type(stored["animal_type_id"]) is int
        response = refused(writer, app, "POST", "/v1/animals", 422, "validation failed", content_type=JSON_TYPE,
                           headers=AUTH, body=b'{"name": "Rex", "animal_type_id": 1.5, "zoo_id": 1}')
        assert response.json["details"] == {"animal_type_id": "must be an integer"}
    finally:
        app.close()


@pytest.mark.parametrize("url", ["/v1/zoos?born=2020-01-01", "/v1/animal_types?sortby=born", "/v1/employees?city=x",
                                 "/v1/zoos/1/animals?zoo_id=1", "/v1/animals/recently_added?page=1&limit=3"])
def test_parameters_are_checked_per_collection(client: webtest.TestApp, zoo: ZooApp, url: str) -> None:
    refused(client, zoo, "GET", url, 400)
