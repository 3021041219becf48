"""/v2 beside /v1: the new representations, one store, and v1 clients see no change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import webtest

import examples.zoo.app as zoo_app
from examples.zoo.app import ZooApp
from tests.conftest import make_client
from tests.test_examples_zoo import AUTH, assert_error, new_app, send_json
from tests.zoo_pg_fixtures import pg_cluster, pg_database, zoo_db, zoo_dbs  # noqa: F401


@pytest.fixture
def app(zoo_db: str) -> Any:
    zoo = new_app(zoo_db)
    yield zoo
    zoo.close()


@pytest.fixture
def client(app: ZooApp) -> webtest.TestApp:
    return make_client(app)


def test_v2_animals_carry_hal_links_and_embed_their_zoo_and_type(client: webtest.TestApp) -> None:
    animal = client.get("/v2/animals/1").json
    assert "links" not in animal
    assert animal["_links"] == {"self": {"href": "/v2/animals/1"}, "zoo": {"href": "/v2/zoos/1"},
                                "animal_type": {"href": "/v1/animal_types/1"}}
    assert animal["_embedded"] == {"zoo": {"id": 1, "name": "Zoo Berlin", "href": "/v2/zoos/1"},
                                   "animal_type": {"id": 1, "name": "mammal", "href": "/v1/animal_types/1"}}
    assert client.get("/v2/zoos/1").json["_links"]["animals"] == {"href": "/v2/animals?zoo_id=1"}


def test_v2_lists_are_page_objects(client: webtest.TestApp) -> None:
    page = client.get("/v2/animals?limit=2&sortby=name")
    body = page.json
    assert set(body) == {"items", "total", "_links"} and body["total"] == int(page.headers["X-Total-Count"]) == 4
    assert [item["name"] for item in body["items"]] == ["Bao Bao", "Knut"]
    assert body["items"][0]["_links"] == {"self": {"href": "/v2/animals/1"}}
    assert set(body["_links"]) == {"first", "next", "last"}
    assert body["_links"]["next"]["href"].endswith("/v2/animals?sortby=name&limit=2&offset=2")
    assert_error(client.get("/v2/animals?limit=0", expect_errors=True), 400, "limit")


def test_v2_writes_use_v2_entity_tags_and_v1_sees_them_in_v1_shape(client: webtest.TestApp) -> None:
    created = send_json(client, "POST", "/v2/animals", {"name": "Nova", "animal_type_id": 2, "zoo_id": 2})
    assert created.status_int == 201 and created.headers["Location"].endswith(f"/v2/animals/{created.json['id']}")
    url = created.json["_links"]["self"]["href"]
    v1 = client.get(f"/v1/animals/{created.json['id']}")
    assert v1.json["name"] == "Nova" and v1.json["links"]["self"] == f"/v1/animals/{created.json['id']}"
    tag = created.headers["ETag"]
    assert tag.endswith('-v2"') and tag != v1.headers["ETag"]  # two representations, two strong tags
    assert_error(send_json(client, "PATCH", url, {"name": "Old tag"}, headers={"If-Match": v1.headers["ETag"]}), 412)
    renamed = send_json(client, "PATCH", url, {"name": "Nova II"}, headers={"If-Match": tag})
    assert renamed.status_int == 200 and renamed.json["_embedded"]["zoo"]["name"] == "San Diego Zoo"
    assert client.get(url, headers={"If-None-Match": renamed.headers["ETag"]}).status_int == 304
    assert client.delete(url, headers=AUTH).status_int == 204
    assert_error(client.get(url, expect_errors=True), 410)
    assert_error(client.get(f"/v1/animals/{created.json['id']}", expect_errors=True), 410)
    assert_error(send_json(client, "POST", "/v2/zoos", {"name": "zoo berlin", "city": "x"}), 409)
    assert_error(client.post("/v2/zoos", "{}", headers={"Content-Type": "application/json"}, expect_errors=True), 401)


V1_REQUESTS = [
    "/", "/v1", "/v1/zoos", "/v1/zoos?sortby=name&order=desc", "/v1/zoos/1", "/v1/zoos/2/animals",
    "/v1/animals", "/v1/animals?page=2&per_page=1", "/v1/animals/1", "/v1/animals/recently_added",
    "/v1/animal_types", "/v1/animal_types/3", "/v1/employees", "/v1/employees?zoo_id=null", "/v1/employees/1",
    "/v1/zoos/1/employees/1", "/v1/zoos/99", "/v1/animals?limit=0", "/v1/nothing",
]


def test_v1_clients_see_no_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same v1 requests on one database, with /v2 installed and without it: the same answers, byte for byte."""
    with_v2 = new_app(tmp_path)
    monkeypatch.setattr(zoo_app, "install_v2", lambda app, store, writer: None)
    without_v2 = new_app(tmp_path)
    try:
        assert make_client(with_v2).get("/v2/zoos").status_int == 200
        assert make_client(without_v2).get("/v2/zoos", expect_errors=True).status_int == 404
        for url in V1_REQUESTS:
            a = make_client(with_v2).get(url, expect_errors=True)
            b = make_client(without_v2).get(url, expect_errors=True)
            assert (a.status, a.headerlist, a.body) == (b.status, b.headerlist, b.body), url
        # and the document says the same of every v1 operation
        new, old = with_v2.openapi(), without_v2.openapi()
        for path, item in old["paths"].items():
            assert new["paths"][path] == item, path
        for name, schema in old["components"]["schemas"].items():
            assert new["components"]["schemas"][name] == schema, name
        assert {path for path in new["paths"] if path.startswith("/v2")} == {
            "/v2/zoos", "/v2/zoos/{zoo}", "/v2/animals", "/v2/animals/{animal}"}
        assert {op["tags"][0] for path, item in new["paths"].items() if path.startswith("/v2")
                for op in item.values()} == {"v2"}
    finally:
        with_v2.close()
        without_v2.close()
