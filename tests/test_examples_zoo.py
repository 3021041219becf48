"""examples/zoo through WebTest: every endpoint, every status code, every convention.

Each refused request is checked for its status, its JSON ``{"error": ...}``
body, an unchanged database and an app that still serves afterwards.
Lists are in test_examples_zoo_lists.py, the real server and concurrency in
test_examples_zoo_server.py.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import webtest

from examples.zoo.app import ZooApp, make_app
from examples.zoo.engine import is_postgres
from tests.conftest import make_client
from tests.zoo_pg_fixtures import pg_cluster, pg_database, zoo_db, zoo_dbs  # noqa: F401

TOKEN = "write-token"
READ_TOKEN = "read-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON_TYPE = "application/json"


# --- helpers (imported by the other zoo test files) --------------------------------


def new_app(db: Path | str, **options: Any) -> ZooApp:
    """A zoo app with a rate limit too high to matter, on ``db``: a directory
    (a new SQLite file in it) or what ``--db`` takes (a file or a PostgreSQL URL)."""
    options.setdefault("token", TOKEN)
    options.setdefault("readonly_token", READ_TOKEN)
    options.setdefault("rate_limit", 1_000_000)
    return make_app(str(db / "zoo.db") if isinstance(db, Path) else db, **options)


def db_state(app: ZooApp) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of data (not the rate limit's counts), read straight from the database."""
    if is_postgres(app.store.path):
        import psycopg

        with psycopg.connect(app.store.path, connect_timeout=10) as pg:
            tables = [row[0] for row in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                                                   " AND tablename <> 'rate_hits' ORDER BY tablename")]
            return {table: pg.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in tables}
    with sqlite3.connect(app.store.path) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall() for table in tables}


def assert_error(response: webtest.TestResponse, status: int, fragment: str = "") -> dict[str, Any]:
    """The response is ``status`` with a JSON ``{"error": ...}`` body (containing ``fragment``)."""
    assert response.status_int == status, response.text
    assert response.content_type == JSON_TYPE
    body = response.json
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
    assert fragment.lower() in body["error"].lower(), body
    return body


def refused(
    client: webtest.TestApp, app: ZooApp, method: str, url: str, status: int, fragment: str = "", **kwargs: Any
) -> webtest.TestResponse:
    """Send a request that must fail with ``status``, change nothing, and leave the app serving."""
    before = db_state(app)
    response = client.request(url, method=method, expect_errors=True, **kwargs)
    assert_error(response, status, fragment)
    assert db_state(app) == before, f"{method} {url} changed the database"
    assert client.get("/v1/zoos").status_int == 200
    return response


def send_json(client: webtest.TestApp, method: str, url: str, body: Any, *, headers: dict[str, str] | None = None,
              status: int | None = None) -> webtest.TestResponse:
    """Send ``body`` as JSON with the write token."""
    return client.request(
        url,
        method=method,
        body=json.dumps(body).encode(),
        headers={**AUTH, "Content-Type": JSON_TYPE, **(headers or {})},
        expect_errors=True,
        status=status,
    )


def create(client: webtest.TestApp, collection: str, body: dict[str, Any]) -> dict[str, Any]:
    response = send_json(client, "POST", f"/v1/{collection}", body)
    assert response.status_int == 201, response.text
    result: dict[str, Any] = response.json
    return result


@pytest.fixture
def app(zoo_db: str) -> Any:
    """The zoo on a new database, on each engine (SQLite, PostgreSQL)."""
    zoo = new_app(zoo_db)
    yield zoo
    zoo.close()


@pytest.fixture
def client(app: ZooApp) -> webtest.TestApp:
    return make_client(app)


# --- the hypermedia root ---------------------------------------------------------


def test_root_lists_every_collection(client: webtest.TestApp) -> None:
    root = client.get("/v1")
    assert root.status_int == 200 and root.content_type == JSON_TYPE
    rels = {link["rel"]: link for link in root.json}
    assert set(rels) == {"zoos", "animals", "recently_added_animals", "animal_types", "employees"}
    for link in root.json:
        assert set(link) == {"rel", "href", "title", "type"}
        assert link["type"] == JSON_TYPE and link["title"]
        answer = client.get(link["href"])
        assert answer.status_int == 200 and isinstance(answer.json, list)


def test_the_api_root_links_both_versions_and_their_collections(client: webtest.TestApp) -> None:
    root = client.get("/")
    assert root.status_int == 200 and root.content_type == JSON_TYPE
    links = root.json["_links"]
    assert links["self"] == {"href": "/"}
    assert links["v1"]["href"] == "/v1" and links["v2"]["href"] == "/v2"
    collections = {"zoos", "animals", "recently_added_animals", "animal_types", "employees"}
    assert set(links) == {"self", "v1", "v2", *(f"{v}:{rel}" for v in ("v1", "v2") for rel in collections)}
    for rel in collections:  # each version's root lists the same collections as /
        assert links[f"v1:{rel}"]["href"] == next(link["href"] for link in client.get("/v1").json if link["rel"] == rel)
        assert links[f"v2:{rel}"] == client.get("/v2").json["_links"][rel]
    for rel, link in links.items():
        answer = client.get(link["href"])
        assert answer.status_int == 200, rel
        if rel.startswith("v2:"):
            assert set(answer.json) == {"items", "total", "_links"}, rel
        elif rel.startswith("v1:"):
            assert isinstance(answer.json, list), rel


def test_new_database_holds_animal_types_and_demo_data(client: webtest.TestApp, zoo_dbs: Any) -> None:
    names = [item["name"] for item in client.get("/v1/animal_types").json]
    assert names == ["mammal", "bird", "reptile", "amphibian", "fish", "insect"]
    assert int(client.get("/v1/zoos").headers["X-Total-Count"]) >= 2
    assert int(client.get("/v1/animals").headers["X-Total-Count"]) >= 2
    empty_app = new_app(zoo_dbs(), empty=True)
    empty = make_client(empty_app)
    assert empty.get("/v1/zoos").json == []
    assert empty.get("/v1/animals").json == []
    assert empty.get("/v1/employees").json == []
    assert len(empty.get("/v1/animal_types").json) == 6
    empty_app.close()


# --- zoos ------------------------------------------------------------------------


def test_zoo_lifecycle(client: webtest.TestApp) -> None:
    created = send_json(client, "POST", "/v1/zoos", {"name": "Tierpark", "city": "Berlin", "opened": "1955-07-02"})
    assert created.status_int == 201
    zoo = created.json
    assert created.headers["Location"].endswith(f"/v1/zoos/{zoo['id']}")
    assert created.headers["ETag"]
    assert set(zoo) == {"id", "name", "city", "opened", "created_at", "updated_at", "links"}
    assert zoo["name"] == "Tierpark" and zoo["city"] == "Berlin" and zoo["opened"] == "1955-07-02"
    assert zoo["created_at"].endswith("Z") and zoo["created_at"] == zoo["updated_at"]
    assert zoo["links"] == {
        "self": f"/v1/zoos/{zoo['id']}",
        "animals": f"/v1/zoos/{zoo['id']}/animals",
        "employees": f"/v1/zoos/{zoo['id']}/employees",
    }
    url = zoo["links"]["self"]
    shown = client.get(url)
    assert shown.json == zoo and shown.headers["ETag"] == created.headers["ETag"]
    assert {"id": zoo["id"], "name": "Tierpark", "href": url} in client.get("/v1/zoos").json

    replaced = send_json(client, "PUT", url, {"name": "Tierpark Berlin", "city": "Berlin-Friedrichsfelde"})
    assert replaced.status_int == 200
    assert replaced.json["name"] == "Tierpark Berlin" and replaced.json["opened"] is None  # PUT replaces
    assert replaced.json["created_at"] == zoo["created_at"] and replaced.json["updated_at"] > zoo["updated_at"]
    assert replaced.headers["ETag"] != created.headers["ETag"]
    assert client.get(url).json == replaced.json

    patched = send_json(client, "PATCH", url, {"opened": "1955-07-02"})
    assert patched.status_int == 200
    assert patched.json["name"] == "Tierpark Berlin" and patched.json["opened"] == "1955-07-02"
    assert patched.headers["ETag"] == client.get(url).headers["ETag"]

    deleted = client.delete(url, headers=AUTH)
    assert deleted.status_int == 204 and deleted.body == b""
    assert_error(client.get(url, expect_errors=True), 410, "deleted")
    assert all(item["id"] != zoo["id"] for item in client.get("/v1/zoos").json)


def test_zoo_names_are_unique_case_insensitively(client: webtest.TestApp, app: ZooApp) -> None:
    create(client, "zoos", {"name": "Zoo Zürich", "city": "Zürich"})
    for name in ("zoo zürich", "ZOO ZÜRICH", "  Zoo Zürich  "):
        body = json.dumps({"name": name, "city": "x"}).encode()
        refused(client, app, "POST", "/v1/zoos", 409, "already exists", body=body,
                headers={**AUTH, "Content-Type": JSON_TYPE})
    other = create(client, "zoos", {"name": "Other", "city": "x"})
    refused(client, app, "PATCH", other["links"]["self"], 409, "already exists",
            body=b'{"name": "ZOO Z\\u00fcrich"}', headers={**AUTH, "Content-Type": JSON_TYPE})
    # renaming a zoo to its own name in another case is not a conflict
    assert send_json(client, "PATCH", other["links"]["self"], {"name": "OTHER"}).status_int == 200


@pytest.mark.parametrize(
    "first, second",
    [
        ("Caf\u00e9", "Cafe\u0301"),  # NFC and NFD
        ("Caf\u00e9", "CAF\u00c9"),
        ("Zoo", "\uff3a\uff4f\uff4f"),  # full-width letters
        ("Zoo", "Zo\u200bo"),  # a zero-width space
        ("Zoo", "Z\u00adoo"),  # a soft hyphen
        ("Stra\u00dfe", "STRASSE"),  # full case folding
        ("\u01c4ur", "D\u017eur"),  # compatibility ligature DZ-caron and its parts
    ],
    ids=["nfc-nfd", "case", "full-width", "zero-width-space", "soft-hyphen", "sharp-s", "ligature"],
)
def test_zoo_names_are_unique_after_nfkc_and_case_folding(
    client: webtest.TestApp, app: ZooApp, first: str, second: str
) -> None:
    zoo = create(client, "zoos", {"name": first, "city": "x"})
    refused(client, app, "POST", "/v1/zoos", 409, "already exists",
            body=json.dumps({"name": second, "city": "y"}).encode(), headers={**AUTH, "Content-Type": JSON_TYPE})
    # the name filter uses the same rule: either spelling finds the zoo
    for name in (first, second):
        found = client.get("/v1/zoos", params={"name": name})
        assert [item["id"] for item in found.json] == [zoo["id"]], name
    assert client.get("/v1/zoos", params={"name": first + "x"}).json == []


def test_put_and_patch_that_change_nothing_keep_the_etag(client: webtest.TestApp) -> None:
    zoo = create(client, "zoos", {"name": "Same", "city": "Here"})
    tag = client.get(zoo["links"]["self"]).headers["ETag"]
    again = send_json(client, "PUT", zoo["links"]["self"], {"name": "Same", "city": "Here"})
    assert again.status_int == 200 and again.headers["ETag"] == tag and again.json == zoo
    assert send_json(client, "PATCH", zoo["links"]["self"], {}).headers["ETag"] == tag


def test_deleting_a_zoo_with_animals_or_employees_conflicts(client: webtest.TestApp, app: ZooApp) -> None:
    zoo = create(client, "zoos", {"name": "Busy", "city": "x"})
    animal = create(client, "animals", {"name": "Rex", "animal_type_id": 3, "zoo_id": zoo["id"]})
    refused(client, app, "DELETE", zoo["links"]["self"], 409, "animal", headers=AUTH)
    assert client.delete(animal["links"]["self"], headers=AUTH).status_int == 204
    employee = create(client, "employees", {"name": "Kim"})
    assert send_json(client, "POST", zoo["links"]["employees"], {"employee_id": employee["id"]}).status_int == 201
    refused(client, app, "DELETE", zoo["links"]["self"], 409, "employee", headers=AUTH)
    fire = f"{zoo['links']['employees']}/{employee['id']}"
    assert client.delete(fire, headers=AUTH).status_int == 204
    assert client.delete(zoo["links"]["self"], headers=AUTH).status_int == 204


# --- animals and animal types --------------------------------------------------------


def test_animal_lifecycle(client: webtest.TestApp, app: ZooApp) -> None:
    zoo = create(client, "zoos", {"name": "Home", "city": "x"})
    created = send_json(client, "POST", "/v1/animals", {"name": "Nemo", "animal_type_id": 5, "zoo_id": zoo["id"]})
    assert created.status_int == 201
    animal = created.json
    assert created.headers["Location"].endswith(animal["links"]["self"])
    assert set(animal) == {"id", "name", "animal_type_id", "zoo_id", "born", "created_at", "updated_at", "links"}
    assert animal["born"] is None
    assert animal["links"] == {
        "self": f"/v1/animals/{animal['id']}",
        "zoo": f"/v1/zoos/{zoo['id']}",
        "animal_type": "/v1/animal_types/5",
    }
    url = animal["links"]["self"]
    assert client.get(url).json == animal
    put = send_json(client, "PUT", url, {"name": "Dory", "animal_type_id": 5, "zoo_id": zoo["id"], "born": "2003-05-30"})
    assert put.status_int == 200 and put.json["name"] == "Dory" and put.json["born"] == "2003-05-30"
    patched = send_json(client, "PATCH", url, {"born": None})
    assert patched.status_int == 200 and patched.json["born"] is None and patched.json["name"] == "Dory"
    moved = send_json(client, "PATCH", url, {"zoo_id": 1})
    assert moved.json["zoo_id"] == 1 and moved.json["links"]["zoo"] == "/v1/zoos/1"
    assert client.delete(url, headers=AUTH).status_int == 204
    assert_error(client.get(url, expect_errors=True), 410)
    refused(client, app, "PATCH", url, 410, body=b'{"name": "x"}', headers={**AUTH, "Content-Type": JSON_TYPE})
    refused(client, app, "DELETE", url, 410, headers=AUTH)


def test_recently_added_is_routed_before_the_id(client: webtest.TestApp) -> None:
    ids = [create(client, "animals", {"name": f"new {n}", "animal_type_id": 1, "zoo_id": 1})["id"] for n in range(12)]
    recent = client.get("/v1/animals/recently_added")
    assert recent.status_int == 200
    assert [item["id"] for item in recent.json] == ids[::-1][:10]
    assert recent.json == client.get("/v1/animals?sortby=created_at&order=desc&limit=10").json
    assert 'rel="next"' in recent.headers["Link"]


def test_animal_types_are_read_only(client: webtest.TestApp, app: ZooApp) -> None:
    mammal = client.get("/v1/animal_types/1")
    assert mammal.json["name"] == "mammal" and mammal.json["description"]
    assert mammal.json["links"]["self"] == "/v1/animal_types/1"
    assert mammal.headers["ETag"]
    animals = client.get(mammal.json["links"]["animals"]).json
    assert animals and all(client.get(a["href"]).json["animal_type_id"] == 1 for a in animals)
    response = refused(client, app, "POST", "/v1/animal_types", 405, body=b'{"name": "x"}',
                       headers={**AUTH, "Content-Type": JSON_TYPE})
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    response = refused(client, app, "DELETE", "/v1/animal_types/1", 405, headers=AUTH)
    assert "DELETE" not in response.headers["Allow"]


def test_zoo_animals_is_animals_filtered_by_zoo(client: webtest.TestApp, app: ZooApp) -> None:
    nested = client.get("/v1/zoos/1/animals")
    assert nested.json and nested.json == client.get("/v1/animals?zoo_id=1").json
    assert nested.headers["X-Total-Count"] == client.get("/v1/animals?zoo_id=1").headers["X-Total-Count"]
    assert client.get("/v1/zoos/1/animals?animal_type_id=2").json == client.get("/v1/animals?zoo_id=1&animal_type_id=2").json
    refused(client, app, "GET", "/v1/zoos/1/animals?zoo_id=2", 400, "zoo_id")
    refused(client, app, "GET", "/v1/zoos/999/animals", 404, "zoo 999")
    zoo = create(client, "zoos", {"name": "Short-lived", "city": "x"})
    client.delete(zoo["links"]["self"], headers=AUTH)
    refused(client, app, "GET", f"/v1/zoos/{zoo['id']}/animals", 410)
    refused(client, app, "GET", f"/v1/zoos/{zoo['id']}/employees", 410)


# --- employees, hiring and firing ----------------------------------------------------


def test_employee_lifecycle_hire_and_fire(client: webtest.TestApp, app: ZooApp) -> None:
    created = send_json(client, "POST", "/v1/employees", {"name": "Sam", "title": "keeper"})
    assert created.status_int == 201
    employee = created.json
    assert set(employee) == {"id", "name", "title", "zoo_id", "created_at", "updated_at", "links"}
    assert employee["zoo_id"] is None and employee["links"] == {"self": f"/v1/employees/{employee['id']}"}
    assert created.headers["Location"].endswith(employee["links"]["self"])

    hired = send_json(client, "POST", "/v1/zoos/2/employees", {"employee_id": employee["id"]})
    assert hired.status_int == 201
    assert hired.json["zoo_id"] == 2 and hired.json["links"]["zoo"] == "/v1/zoos/2"
    membership = f"/v1/zoos/2/employees/{employee['id']}"
    assert hired.headers["Location"].endswith(membership)
    assert client.get(membership).json == hired.json
    assert {"id": employee["id"], "name": "Sam", "href": employee["links"]["self"]} in client.get("/v1/zoos/2/employees").json
    assert client.get("/v1/zoos/2/employees").json == client.get("/v1/employees?zoo_id=2").json

    hire = {"body": json.dumps({"employee_id": employee["id"]}).encode(), "headers": {**AUTH, "Content-Type": JSON_TYPE}}
    refused(client, app, "POST", "/v1/zoos/2/employees", 409, "already works", **hire)
    refused(client, app, "POST", "/v1/zoos/1/employees", 409, "already works", **hire)
    refused(client, app, "DELETE", f"/v1/zoos/1/employees/{employee['id']}", 404, "does not work", headers=AUTH)
    refused(client, app, "GET", f"/v1/zoos/1/employees/{employee['id']}", 404)

    # an employee's zoo changes only by hiring and firing
    refused(client, app, "PATCH", employee["links"]["self"], 422, "validation", body=b'{"zoo_id": 1}',
            headers={**AUTH, "Content-Type": JSON_TYPE})

    put = send_json(client, "PUT", employee["links"]["self"], {"name": "Sam Smith"})
    assert put.status_int == 200 and put.json["title"] is None and put.json["zoo_id"] == 2

    fired = client.delete(membership, headers=AUTH)
    assert fired.status_int == 204 and fired.body == b""
    assert client.get(employee["links"]["self"]).json["zoo_id"] is None
    refused(client, app, "DELETE", membership, 404, "does not work", headers=AUTH)
    assert send_json(client, "POST", "/v1/zoos/1/employees", {"employee_id": employee["id"]}).status_int == 201

    assert client.delete(employee["links"]["self"], headers=AUTH).status_int == 204
    assert_error(client.get(employee["links"]["self"], expect_errors=True), 410)
    refused(client, app, "POST", "/v1/zoos/1/employees", 422, "validation", **hire)


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "employee_id"),
        ({"employee_id": "3"}, "employee_id"),
        ({"employee_id": 99999}, "employee_id"),
        ({"employee_id": 2**64}, "employee_id"),
        ({"employee_id": 3, "zoo_id": 1}, "zoo_id"),
    ],
    ids=["missing", "string", "unknown", "overflow", "extra-field"],
)
def test_hire_validation(client: webtest.TestApp, app: ZooApp, body: dict[str, Any], field: str) -> None:
    response = refused(client, app, "POST", "/v1/zoos/1/employees", 422, "validation failed",
                       body=json.dumps(body).encode(), headers={**AUTH, "Content-Type": JSON_TYPE})
    assert field in response.json["details"]


def test_hire_at_unknown_zoo_is_404(client: webtest.TestApp, app: ZooApp) -> None:
    refused(client, app, "POST", "/v1/zoos/999/employees", 404, "zoo 999", body=b'{"employee_id": 3}',
            headers={**AUTH, "Content-Type": JSON_TYPE})
    refused(client, app, "DELETE", "/v1/zoos/999/employees/1", 404, headers=AUTH)
    refused(client, app, "DELETE", "/v1/zoos/1/employees/999", 404, headers=AUTH)


# --- conditional requests -------------------------------------------------------------


@pytest.mark.parametrize("url", ["/v1/zoos/1", "/v1/animals/1", "/v1/employees/1", "/v1/animal_types/1"])
def test_if_none_match_gives_304(client: webtest.TestApp, url: str) -> None:
    tag = client.get(url).headers["ETag"]
    assert tag.startswith('"') and tag.endswith('"')
    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        response = client.get(url, headers={"If-None-Match": header})
        assert response.status_int == 304 and response.body == b""
        assert response.headers["ETag"] == tag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_int == 200


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_stale_if_match_is_412_and_changes_nothing(client: webtest.TestApp, app: ZooApp, method: str) -> None:
    zoo = create(client, "zoos", {"name": "Guarded", "city": "x"})
    url = zoo["links"]["self"]
    old = client.get(url).headers["ETag"]
    assert send_json(client, "PATCH", url, {"city": "y"}).status_int == 200  # someone else's update
    body = json.dumps({"name": "Lost update", "city": "z"}).encode()
    for stale in (old, f"W/{client.get(url).headers['ETag']}", '"nonsense"'):
        response = refused(client, app, method, url, 412, "GET it again", body=body,
                           headers={**AUTH, "Content-Type": JSON_TYPE, "If-Match": stale})
        assert "ETag" not in response.headers or response.headers["ETag"] != old
    current = client.get(url).headers["ETag"]
    ok = client.request(url, method=method, body=body,
                        headers={**AUTH, "Content-Type": JSON_TYPE, "If-Match": f'"other", {current}'})
    assert ok.status_int == (204 if method == "DELETE" else 200)
    if method != "DELETE":
        assert ok.headers["ETag"] != current and ok.headers["ETag"] == client.get(url).headers["ETag"]


def test_if_match_star_and_firing(client: webtest.TestApp, app: ZooApp) -> None:
    zoo = create(client, "zoos", {"name": "Star", "city": "x"})
    assert client.delete(zoo["links"]["self"], headers={**AUTH, "If-Match": "*"}).status_int == 204
    refused(client, app, "DELETE", "/v1/zoos/1/employees/1", 412, headers={**AUTH, "If-Match": '"stale"'})
    tag = client.get("/v1/employees/1").headers["ETag"]
    assert client.delete("/v1/zoos/1/employees/1", headers={**AUTH, "If-Match": tag}).status_int == 204


# --- authentication -----------------------------------------------------------------------

WRITES = [
    ("POST", "/v1/zoos", {"name": "N", "city": "C"}),
    ("PUT", "/v1/zoos/1", {"name": "N", "city": "C"}),
    ("PATCH", "/v1/zoos/1", {"city": "C"}),
    ("DELETE", "/v1/zoos/2", None),
    ("POST", "/v1/animals", {"name": "N", "animal_type_id": 1, "zoo_id": 1}),
    ("PUT", "/v1/animals/1", {"name": "N", "animal_type_id": 1, "zoo_id": 1}),
    ("PATCH", "/v1/animals/1", {"name": "N"}),
    ("DELETE", "/v1/animals/1", None),
    ("POST", "/v1/employees", {"name": "N"}),
    ("PUT", "/v1/employees/1", {"name": "N"}),
    ("PATCH", "/v1/employees/1", {"name": "N"}),
    ("DELETE", "/v1/employees/3", None),
    ("POST", "/v1/zoos/1/employees", {"employee_id": 3}),
    ("DELETE", "/v1/zoos/1/employees/1", None),
]
BAD_CREDENTIALS = {
    "none": {},
    "empty": {"Authorization": ""},
    "basic": {"Authorization": f"Basic {TOKEN}"},
    "bearer-only": {"Authorization": "Bearer"},
    "wrong": {"Authorization": "Bearer not-the-token"},
    "prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "latin1": {"Authorization": "Bearer caf\xe9"},
}


@pytest.mark.parametrize("method, url, body", WRITES, ids=[f"{m} {u}" for m, u, _ in WRITES])
def test_writes_need_the_write_token(client: webtest.TestApp, app: ZooApp, method: str, url: str, body: Any) -> None:
    data = json.dumps(body).encode() if body is not None else b""
    content = {"Content-Type": JSON_TYPE} if body is not None else {}
    for name, credentials in BAD_CREDENTIALS.items():
        response = refused(client, app, method, url, 401, body=data, headers={**content, **credentials})
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
    refused(client, app, method, url, 403, "only read", body=data,
            headers={**content, "Authorization": f"Bearer {READ_TOKEN}"})
    response = client.request(url, method=method, body=data, headers={**content, "Authorization": f"bearer {TOKEN}"},
                              expect_errors=True)
    assert response.status_int in (200, 201, 204, 409), response.text  # the token is enough (409: zoo 2 not empty)


def test_reads_need_no_token(client: webtest.TestApp) -> None:
    for url in ("/", "/v1", "/v1/zoos", "/v1/zoos/1", "/v1/zoos/1/animals", "/v1/zoos/1/employees",
                "/v1/zoos/1/employees/1", "/v1/animals", "/v1/animals/recently_added", "/v1/animals/1",
                "/v1/animal_types", "/v1/animal_types/1", "/v1/employees", "/v1/employees/1"):
        assert client.get(url).status_int == 200, url
        assert client.head(url).status_int == 200, url


def test_an_app_without_a_token_refuses_every_write(zoo_db: str) -> None:
    app = new_app(zoo_db, token=None, readonly_token=None)
    client = make_client(app)
    response = refused(client, app, "POST", "/v1/zoos", 401, body=b'{"name": "n", "city": "c"}',
                       headers={**AUTH, "Content-Type": JSON_TYPE})
    assert "invalid_token" in response.headers["WWW-Authenticate"]
    app.close()


# --- every other status code -------------------------------------------------------------


@pytest.mark.parametrize(
    "method, url",
    [
        ("GET", "/v3/zoos"),  # no such version (v1 and v2 exist)
        ("GET", "/v1/zoo"),
        ("GET", "/v1/zoos/999"),
        ("GET", "/v1/zoos/0"),
        ("GET", "/v1/zoos/-1"),
        ("GET", "/v1/zoos/abc"),
        ("GET", "/v1/zoos/1.5"),
        ("GET", "/v1/zoos/9223372036854775807"),
        ("GET", "/v1/zoos/9223372036854775808"),
        ("GET", "/v1/zoos/99999999999999999999999999999"),
        ("GET", "/v1/animals/999"),
        ("GET", "/v1/animals/recently"),
        ("GET", "/v1/animal_types/7"),
        ("GET", "/v1/employees/999"),
        ("GET", "/v1/zoos/1/employees/999"),
        ("GET", "/v1/zoos/1/animals/1"),
        ("PUT", "/v1/zoos/999"),
        ("PATCH", "/v1/animals/9223372036854775807"),
        ("DELETE", "/v1/employees/999"),
        ("DELETE", "/v1/zoos/99999999999999999999"),
    ],
)
def test_unknown_paths_and_ids_are_404(client: webtest.TestApp, app: ZooApp, method: str, url: str) -> None:
    refused(client, app, method, url, 404, body=b'{"name": "x"}', headers={**AUTH, "Content-Type": JSON_TYPE})


@pytest.mark.parametrize(
    "method, url, allowed",
    [
        ("DELETE", "/v1/zoos", "GET, HEAD, OPTIONS, POST"),
        ("PUT", "/v1/animals", "GET, HEAD, OPTIONS, POST"),
        ("POST", "/v1/zoos/1", "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"),
        ("POST", "/v1/animals/recently_added", "GET, HEAD, OPTIONS"),
        ("PATCH", "/v1/animal_types/1", "GET, HEAD, OPTIONS"),
        ("PUT", "/v1/zoos/1/employees", "GET, HEAD, OPTIONS, POST"),
        ("PATCH", "/v1/zoos/1/employees/1", "DELETE, GET, HEAD, OPTIONS"),
        ("DELETE", "/v1/zoos/1/animals", "GET, HEAD, OPTIONS"),
        ("POST", "/v1", "GET, HEAD, OPTIONS"),
    ],
)
def test_wrong_method_is_405_with_allow(client: webtest.TestApp, app: ZooApp, method: str, url: str, allowed: str) -> None:
    response = refused(client, app, method, url, 405, method, headers=AUTH)
    assert response.headers["Allow"] == allowed
    options = client.options(url)
    assert options.status_int == 204 and options.headers["Allow"] == allowed


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "text/*", "application/json;q=0, */*"])
def test_accept_excluding_json_is_406(client: webtest.TestApp, app: ZooApp, accept: str) -> None:
    for url in ("/v1/zoos", "/v1/zoos/1", "/v1"):
        refused(client, app, "GET", url, 406, headers={"Accept": accept})
    refused(client, app, "POST", "/v1/zoos", 406, body=b'{"name": "n", "city": "c"}',
            headers={**AUTH, "Content-Type": JSON_TYPE, "Accept": accept})
    for ok in ("application/json", "application/*", "*/*", "text/html, application/json;q=0.5"):
        assert client.get("/v1/zoos/1", headers={"Accept": ok}).status_int == 200


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"name": "n", "city": "c"}', "text/plain"),
        (b"name=n&city=c", "application/x-www-form-urlencoded"),
        (b'<zoo name="n"/>', "application/xml"),
        (b'{"name": "n", "city": "c"}', None),
    ],
    ids=["text", "form", "xml", "no-type"],
)
def test_body_that_is_not_json_is_415(client: webtest.TestApp, app: ZooApp, body: bytes, content_type: str | None) -> None:
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    for method, url in (("POST", "/v1/zoos"), ("PUT", "/v1/zoos/1"), ("PATCH", "/v1/zoos/1"),
                        ("POST", "/v1/zoos/1/employees")):
        refused(client, app, method, url, 415, "application/json", body=body, headers=headers)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"name": "n",}', b"{'name': 'n'}", b'{"name": NaN}', b"\xff\xfe", b"[" * 100_000,
     b'{"n": 1' + b"0" * 5000 + b"}"],
    ids=["empty", "truncated", "trailing-comma", "single-quotes", "nan", "not-utf8", "deep", "huge-int"],
)
def test_malformed_json_is_400(client: webtest.TestApp, app: ZooApp, body: bytes) -> None:
    refused(client, app, "POST", "/v1/zoos", 400, body=body, headers={**AUTH, "Content-Type": JSON_TYPE})
    refused(client, app, "PATCH", "/v1/animals/1", 400, body=body, headers={**AUTH, "Content-Type": JSON_TYPE})


def test_duplicate_keys_are_400_and_unknown_fields_are_listed_within_bounds(client: webtest.TestApp, app: ZooApp) -> None:
    refused(client, app, "POST", "/v1/zoos", 400, "duplicate key 'name'",
            body=b'{"name": "One", "city": "x", "name": "Two"}', headers={**AUTH, "Content-Type": JSON_TYPE})
    # a body of 989 KB of unknown fields gets a short answer, not all of them echoed back
    body = json.dumps({"name": "n", "city": "c", **{f"unknown_{n:06d}": n for n in range(39_000)}}).encode()
    assert len(body) > 900_000
    response = refused(client, app, "POST", "/v1/zoos", 422, "validation failed", body=body,
                       headers={**AUTH, "Content-Type": JSON_TYPE})
    assert len(response.body) < 2_000 and response.json["details"]["..."] == "and 38980 more unknown field(s)"


def test_body_over_the_limit_is_413(zoo_db: str) -> None:
    app = new_app(zoo_db, max_body=200)
    client = make_client(app)
    big = json.dumps({"name": "n" * 300, "city": "c"}).encode()
    refused(client, app, "POST", "/v1/zoos", 413, "limit", body=big, headers={**AUTH, "Content-Type": JSON_TYPE})
    refused(client, app, "PUT", "/v1/zoos/1", 413, body=big, headers={**AUTH, "Content-Type": JSON_TYPE})
    assert send_json(client, "POST", "/v1/zoos", {"name": "small", "city": "c"}).status_int == 201
    app.close()


def test_rate_limit_is_429_with_retry_after(zoo_db: str) -> None:
    app = new_app(zoo_db, rate_limit=5)
    client = make_client(app)
    first = client.get("/v1/zoos")
    assert first.headers["X-RateLimit-Limit"] == "5" and first.headers["X-RateLimit-Remaining"] == "4"
    for _ in range(3):
        client.get("/v1/zoos/1")
    client.get("/v1/nothing-here", status=404)  # errors count too
    before = db_state(app)
    for method, url in (("GET", "/v1/zoos"), ("POST", "/v1/zoos"), ("GET", "/v1/nothing-here"), ("DELETE", "/v1")):
        response = client.request(url, method=method, body=b'{"name": "n", "city": "c"}',
                                  headers={**AUTH, "Content-Type": JSON_TYPE}, expect_errors=True)
        body = assert_error(response, 429, "requests a minute")
        assert 1 <= int(response.headers["Retry-After"]) <= 60, body
    assert db_state(app) == before
    # another client is not limited
    other = client.get("/v1/zoos", extra_environ={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_int == 200
    app.close()


def test_behind_a_trusted_balancer_each_client_has_its_own_limit_and_urls(tmp_path: Path) -> None:
    from examples.zoo.__main__ import parse_args

    assert parse_args(["--trust-proxy", "10.0.0.0/8,127.0.0.1"]).trust_proxy == "10.0.0.0/8,127.0.0.1"
    with pytest.raises(SystemExit):
        parse_args(["--trust-proxy", "balancer.internal"])  # a typo fails at start, not per request
    app = new_app(tmp_path, rate_limit=2, trust_proxy=["10.0.0.0/8"])
    client = make_client(app)
    balancer = {"REMOTE_ADDR": "10.0.0.5"}

    def via(client_address: str, status: int = 200, **headers: str) -> webtest.TestResponse:
        return client.get("/v1/zoos", headers={"X-Forwarded-For": client_address, **headers}, extra_environ=balancer,
                          status=status)

    assert [via("198.51.100.7").status_int, via("198.51.100.7").status_int] == [200, 200]
    assert_error(via("198.51.100.7", 429), 429, "requests a minute")
    assert via("198.51.100.8").headers["X-RateLimit-Remaining"] == "1"  # another client behind the same balancer
    assert via("198.51.100.8, 198.51.100.9").headers["X-RateLimit-Remaining"] == "1"  # its own address, not what it claims
    created = client.post("/v1/zoos", json.dumps({"name": "Proxied", "city": "c"}), extra_environ=balancer,
                          headers={**AUTH, "Content-Type": JSON_TYPE, "X-Forwarded-For": "198.51.100.10",
                                   "X-Forwarded-Proto": "https", "X-Forwarded-Host": "zoo.example"}, status=201)
    assert created.headers["Location"] == f"https://zoo.example/v1/zoos/{created.json['id']}"
    app.close()


def test_rate_limiter_window_slides() -> None:
    """The zoo's limit is restkit.ratelimit's sliding window (its own tests: tests/test_ratelimit.py)."""
    from restkit.ratelimit import MemoryStore

    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    assert store.hit("a", 2, 60).allowed and store.hit("a", 2, 60).allowed
    allowed, remaining, retry = store.hit("a", 2, 60)
    assert not allowed and remaining == 0 and retry == 60
    now[0] += 30
    assert store.hit("a", 2, 60).reset == 30 and store.hit("b", 2, 60).allowed
    now[0] += 30.5
    assert store.hit("a", 2, 60)[:2] == (True, 1)  # refused requests were not recorded


# --- validation: 422 with details ------------------------------------------------------------

LONG = "x" * 101
INVALID = [
    ("POST", "/v1/zoos", {}, {"name": "required", "city": "required"}),
    ("POST", "/v1/zoos", {"name": "n"}, {"city": "required"}),
    ("POST", "/v1/zoos", {"name": "", "city": "c"}, {"name": "at least 1 character"}),
    ("POST", "/v1/zoos", {"name": "   ", "city": "c"}, {"name": "pattern"}),
    ("POST", "/v1/zoos", {"name": "\u3000", "city": "c"}, {"name": "pattern"}),  # blank: what str.strip() removes
    ("POST", "/v1/zoos", {"name": LONG, "city": "c"}, {"name": "100"}),
    ("POST", "/v1/zoos", {"name": "x" * 100_000, "city": "c"}, {"name": "100"}),
    ("POST", "/v1/zoos", {"name": 5, "city": "c"}, {"name": "string"}),
    ("POST", "/v1/zoos", {"name": None, "city": "c"}, {"name": "null"}),
    ("POST", "/v1/zoos", {"name": ["n"], "city": {"c": 1}}, {"name": "string", "city": "string"}),
    ("POST", "/v1/zoos", {"name": "a\x00b", "city": "c"}, {"name": "NUL"}),
    ("POST", "/v1/zoos", {"name": "a\nb", "city": "c"}, {"name": "pattern"}),
    ("POST", "/v1/zoos", {"name": "a\x7fb", "city": "c"}, {"name": "pattern"}),
    ("POST", "/v1/zoos", {"name": "n", "city": "c", "opened": "2020-02-30"}, {"opened": "date"}),
    ("POST", "/v1/zoos", {"name": "n", "city": "c", "opened": "20200101"}, {"opened": "date"}),
    ("POST", "/v1/zoos", {"name": "n", "city": "c", "opened": "２０２０-01-01"}, {"opened": "date"}),
    ("POST", "/v1/zoos", {"name": "n", "city": "c", "opened": 2020}, {"opened": "date"}),
    ("POST", "/v1/zoos", {"name": "n", "city": "c", "size": 3}, {"size": "unknown"}),
    ("POST", "/v1/zoos", {"name": "n", "city": "c", "id": 3}, {"id": "unknown field"}),
    ("POST", "/v1/zoos", {"name": "n", "city": "c", "created_at": "x"}, {"created_at": "unknown field"}),
    ("POST", "/v1/zoos", [{"name": "n", "city": "c"}], {"(body)": "object"}),
    ("POST", "/v1/zoos", "zoo", {"(body)": "object"}),
    ("POST", "/v1/zoos", None, {"(body)": "object"}),
    ("PUT", "/v1/zoos/1", {"name": "n"}, {"city": "required"}),
    ("PATCH", "/v1/zoos/1", {"city": ""}, {"city": "at least 1 character"}),
    ("PATCH", "/v1/zoos/1", {"links": {}}, {"links": "unknown field"}),
    ("POST", "/v1/animals", {"name": "n"}, {"animal_type_id": "required", "zoo_id": "required"}),
    ("POST", "/v1/animals", {"name": "n", "animal_type_id": 99, "zoo_id": 1}, {"animal_type_id": "does not exist"}),
    ("POST", "/v1/animals", {"name": "n", "animal_type_id": 1, "zoo_id": 99}, {"zoo_id": "does not exist"}),
    ("POST", "/v1/animals", {"name": "n", "animal_type_id": 99, "zoo_id": 99},
     {"animal_type_id": "does not exist", "zoo_id": "does not exist"}),
    ("POST", "/v1/animals", {"name": "n", "animal_type_id": 2**63, "zoo_id": 1}, {"animal_type_id": "out of range"}),
    ("POST", "/v1/animals", {"name": "n", "animal_type_id": 10**30, "zoo_id": -1},
     {"animal_type_id": "out of range", "zoo_id": "at least 1"}),
    ("POST", "/v1/animals", {"name": "n", "animal_type_id": 0, "zoo_id": 1}, {"animal_type_id": "at least 1"}),
    ("POST", "/v1/animals", {"name": "n", "animal_type_id": 1.5, "zoo_id": 1}, {"animal_type_id": "integer"}),
    ("POST", "/v1/animals", {"name": "n", "animal_type_id": True, "zoo_id": 1}, {"animal_type_id": "integer"}),
    ("POST", "/v1/animals", {"name": "n", "animal_type_id": "1", "zoo_id": 1}, {"animal_type_id": "integer"}),
    ("POST", "/v1/animals", {"name": "n", "animal_type_id": 1, "zoo_id": 1, "born": "2999-01-01"}, {"born": "future"}),
    ("POST", "/v1/animals", {"name": "n", "animal_type_id": 1, "zoo_id": 1, "born": "yesterday"}, {"born": "date"}),
    ("PUT", "/v1/animals/1", {"name": "n", "animal_type_id": 1}, {"zoo_id": "required"}),
    ("PATCH", "/v1/animals/1", {"zoo_id": 99}, {"zoo_id": "does not exist"}),
    ("PATCH", "/v1/animals/1", {"zoo_id": None}, {"zoo_id": "null"}),
    ("POST", "/v1/employees", {"title": "boss"}, {"name": "required"}),
    ("POST", "/v1/employees", {"name": "n", "zoo_id": 1}, {"zoo_id": "unknown field"}),
    ("POST", "/v1/employees", {"name": "n", "title": LONG}, {"title": "100"}),
    ("PUT", "/v1/employees/1", {"title": "t"}, {"name": "required"}),
    ("PATCH", "/v1/employees/1", {"name": 1}, {"name": "string"}),
]


@pytest.mark.parametrize("method, url, body, details", INVALID, ids=[f"{m} {u} {i}" for i, (m, u, _, _) in enumerate(INVALID)])
def test_invalid_bodies_are_422_with_details(
    client: webtest.TestApp, app: ZooApp, method: str, url: str, body: Any, details: dict[str, str]
) -> None:
    response = refused(client, app, method, url, 422, "validation failed", body=json.dumps(body).encode(),
                       headers={**AUTH, "Content-Type": JSON_TYPE})
    got = response.json["details"]
    assert set(got) == set(details), got
    for field, fragment in details.items():
        assert fragment in got[field], got


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\\ud800", "city": "c"}',
        b'{"\\udfff": 1, "name": "n", "city": "c"}',
        b'{"name": "n", "city": "c", "opened": "\\u0000"}',
        b'{"name": "n", "city": "c", "' + b"k" * 100_000 + b'": 1}',
        b'{"name": "n", "city": "c", "opened": 1e999}',
    ],
    ids=["lone-surrogate-value", "lone-surrogate-key", "nul-date", "huge-key", "float-overflow"],
)
def test_hostile_bodies_are_422_never_500(client: webtest.TestApp, app: ZooApp, raw: bytes) -> None:
    refused(client, app, "POST", "/v1/zoos", 422, "validation failed", body=raw,
            headers={**AUTH, "Content-Type": JSON_TYPE})


def test_media_type_parameters_and_json_suffix_are_accepted(client: webtest.TestApp) -> None:
    for content_type in ("application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"):
        response = client.patch("/v1/zoos/1", b'{"city": "Berlin"}', headers={**AUTH, "Content-Type": content_type})
        assert response.status_int == 200, content_type


def test_text_is_stripped_and_unicode_is_kept(client: webtest.TestApp) -> None:
    zoo = create(client, "zoos", {"name": "  Zoo Ürümqi 動物園  ", "city": "\tÜrümqi "})
    assert zoo["name"] == "Zoo Ürümqi 動物園" and zoo["city"] == "Ürümqi"
    assert client.get(zoo["links"]["self"]).json["name"] == "Zoo Ürümqi 動物園"


def test_head_and_options(client: webtest.TestApp) -> None:
    head = client.head("/v1/zoos/1")
    assert head.status_int == 200 and head.body == b"" and head.headers["ETag"]
    assert client.head("/v1/zoos").headers["X-Total-Count"]
    options = client.options("/v1/zoos/1/employees/1")
    assert options.status_int == 204 and options.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS"


def test_trailing_slash_redirects(client: webtest.TestApp) -> None:
    response = client.get("/v1/zoos/", status=308)
    assert response.headers["Location"] == "/v1/zoos"
