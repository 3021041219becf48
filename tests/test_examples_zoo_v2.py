"""/v2 beside /v1: the new representations, one store, and v1 clients see no change."""

from __future__ import annotations

import re

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
                                "animal_type": {"href": "/v2/animal_types/1"}}
    assert animal["_embedded"] == {"zoo": {"id": 1, "name": "Zoo Berlin", "href": "/v2/zoos/1"},
                                   "animal_type": {"id": 1, "name": "mammal", "href": "/v2/animal_types/1"}}
    assert client.get("/v2/zoos/1").json["_links"] == {"self": {"href": "/v2/zoos/1"},
                                                       "animals": {"href": "/v2/animals?zoo_id=1"},
                                                       "employees": {"href": "/v2/employees?zoo_id=1"}}


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
    "/v1", "/v1/zoos", "/v1/zoos?sortby=name&order=desc", "/v1/zoos/1", "/v1/zoos/2/animals",
    "/v1/animals", "/v1/animals?page=2&per_page=1", "/v1/animals/1", "/v1/animals/recently_added",
    "/v1/animal_types", "/v1/animal_types/3", "/v1/employees", "/v1/employees?zoo_id=null", "/v1/employees/1",
    "/v1/zoos/1/employees/1", "/v1/zoos/99", "/v1/animals?limit=0", "/v1/nothing",
]


def test_v1_clients_see_no_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same v1 requests on one database, with /v2 installed and without it: the same answers, byte for byte."""
    with_v2 = new_app(tmp_path)
    monkeypatch.setattr(zoo_app, "install_v2", lambda app, store, writer: [])
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
            "/v2", "/v2/zoos", "/v2/zoos/{zoo}", "/v2/zoos/{zoo}/employees", "/v2/zoos/{zoo}/employees/{employee}",
            "/v2/animals", "/v2/animals/{animal}", "/v2/animal_types", "/v2/animal_types/{animal_type}",
            "/v2/employees", "/v2/employees/{employee}"}
        # the root of the API links the versions it has: only v1 without /v2
        assert set(make_client(without_v2).get("/").json["_links"]) == {
            "self", "v1", *(f"v1:{link['rel']}" for link in make_client(without_v2).get("/v1").json)}
        assert {op["tags"][0] for path, item in new["paths"].items() if path.startswith("/v2")
                for op in item.values()} == {"v2"}
    finally:
        with_v2.close()
        without_v2.close()


# --- the rest of v1 in v2: its root, animal types, employees, hiring ---------------------------


def test_v2_has_a_root_linking_every_v2_collection(client: webtest.TestApp) -> None:
    root = client.get("/v2")
    assert root.status_int == 200 and root.content_type == "application/json"
    assert client.get("/v2/").body == root.body  # with the slash too: no redirect
    links = root.json["_links"]
    assert links["self"] == {"href": "/v2"}
    assert set(links) == {"self", "zoos", "animals", "recently_added_animals", "animal_types", "employees"}
    for rel, link in links.items():
        if rel == "self":
            continue
        assert link["href"].startswith("/v2/") and link["title"] and link["type"] == "application/json", rel
        page = client.get(link["href"]).json
        assert set(page) == {"items", "total", "_links"} and page["total"] > 0, rel
    recent = client.get(links["recently_added_animals"]["href"]).json
    assert [item["id"] for item in recent["items"]] == [4, 3, 2, 1]


def test_v2_animal_types_are_read_only_with_hal_links(client: webtest.TestApp) -> None:
    page = client.get("/v2/animal_types?sortby=name&limit=2").json
    assert page["total"] == 6 and [item["name"] for item in page["items"]] == ["amphibian", "bird"]
    shown = client.get("/v2/animal_types/1")
    assert shown.json["_links"] == {"self": {"href": "/v2/animal_types/1"},
                                    "animals": {"href": "/v2/animals?animal_type_id=1"}}
    assert "links" not in shown.json and shown.headers["ETag"].endswith('-v2"')
    assert client.get("/v2/animal_types/1", headers={"If-None-Match": shown.headers["ETag"]}).status_int == 304
    assert client.get("/v2/animals?animal_type_id=1").json["total"] == 2
    assert_error(send_json(client, "POST", "/v2/animal_types", {"name": "x"}), 405)
    assert_error(client.get("/v2/animal_types/99", expect_errors=True), 404)


def test_v2_employees_hired_and_fired_with_v2_tags(client: webtest.TestApp) -> None:
    created = send_json(client, "POST", "/v2/employees", {"name": "Dana Diver", "title": "aquarist"})
    assert created.status_int == 201 and created.headers["Location"].endswith(f"/v2/employees/{created.json['id']}")
    id = created.json["id"]
    assert created.json["zoo_id"] is None and created.json["_embedded"] == {}
    assert created.json["_links"] == {"self": {"href": f"/v2/employees/{id}"}}
    assert id in [item["id"] for item in client.get("/v2/employees?zoo_id=null").json["items"]]
    assert_error(send_json(client, "PUT", f"/v2/employees/{id}", {"name": "x"}), 405)  # v2 changes with PATCH
    changed = send_json(client, "PATCH", f"/v2/employees/{id}", {"title": "diver"},
                        headers={"If-Match": created.headers["ETag"]})
    assert changed.status_int == 200 and changed.json["title"] == "diver"

    hired = send_json(client, "POST", "/v2/zoos/2/employees", {"employee_id": id})
    assert hired.status_int == 201 and hired.headers["Location"].endswith(f"/v2/zoos/2/employees/{id}")
    assert hired.json["_links"]["zoo"] == {"href": "/v2/zoos/2"}
    assert hired.json["_embedded"] == {"zoo": {"id": 2, "name": "San Diego Zoo", "href": "/v2/zoos/2"}}
    assert_error(send_json(client, "POST", "/v2/zoos/1/employees", {"employee_id": id}), 409)
    assert_error(send_json(client, "POST", "/v2/zoos/1/employees", {"employee_id": 999}), 422)
    shown = client.get(f"/v2/zoos/2/employees/{id}")
    assert shown.json == hired.json and shown.headers["ETag"] == hired.headers["ETag"]
    assert_error(client.get(f"/v2/zoos/1/employees/{id}", expect_errors=True), 404)
    assert id in [item["id"] for item in client.get("/v2/employees?zoo_id=2").json["items"]]

    stale = {**AUTH, "If-Match": changed.headers["ETag"]}
    assert_error(client.delete(f"/v2/zoos/2/employees/{id}", headers=stale, expect_errors=True), 412)
    fired = client.delete(f"/v2/zoos/2/employees/{id}", headers={**AUTH, "If-Match": shown.headers["ETag"]})
    assert fired.status_int == 204 and fired.body == b""
    assert client.get(f"/v2/employees/{id}").json["zoo_id"] is None
    assert client.delete(f"/v2/employees/{id}", headers=AUTH).status_int == 204
    assert_error(client.get(f"/v2/employees/{id}", expect_errors=True), 410)
    assert_error(client.post("/v2/employees", "{}", headers={"Content-Type": "application/json"},
                             expect_errors=True), 401)


# --- v1's deprecation -----------------------------------------------------------------------------

SUNSET = "2027-06-30"
DEPRECATED = "2026-12-01"
DEPRECATED_AT = "@1796083200"  # 2026-12-01T00:00:00Z
SUNSET_DATE = "Wed, 30 Jun 2027 00:00:00 GMT"

# (method, v1 path, the successor it names)
SUCCESSORS = [
    ("GET", "/v1", "/v2"),
    ("GET", "/v1/zoos", "/v2/zoos"),
    ("GET", "/v1/zoos?sortby=name&limit=1", "/v2/zoos"),
    ("GET", "/v1/zoos/1", "/v2/zoos/1"),
    ("GET", "/v1/zoos/2/animals", "/v2/animals?zoo_id=2"),
    ("GET", "/v1/zoos/1/employees", "/v2/employees?zoo_id=1"),
    ("GET", "/v1/zoos/1/employees/1", "/v2/zoos/1/employees/1"),
    ("GET", "/v1/animals", "/v2/animals"),
    ("GET", "/v1/animals/recently_added", "/v2/animals?sortby=created_at&order=desc&limit=10"),
    ("GET", "/v1/animals/1", "/v2/animals/1"),
    ("GET", "/v1/animal_types", "/v2/animal_types"),
    ("GET", "/v1/animal_types/3", "/v2/animal_types/3"),
    ("GET", "/v1/employees?zoo_id=null", "/v2/employees"),
    ("GET", "/v1/employees/1", "/v2/employees/1"),
    ("GET", "/v1/jobs/1", "/v2"),  # no v2 equivalent
    ("GET", "/v1/zoos/99", "/v2/zoos/99"),  # a 404
    ("GET", "/v1/animals?limit=0", "/v2/animals"),  # a 400
    ("GET", "/v1/nothing", "/v2"),  # a 404
    ("POST", "/v1/zoos", "/v2/zoos"),  # a 401 without the token
    ("POST", "/v1/zoos/1/employees", "/v2/zoos/1/employees"),
    ("DELETE", "/v1/zoos/1", "/v2/zoos/1"),
    ("PUT", "/v1/animals/1", "/v2/animals/1"),  # v2 has no PUT there, but has the resource
]


@pytest.fixture
def sunset_app(tmp_path: Path) -> Any:
    zoo = new_app(tmp_path, v1_sunset=SUNSET, v1_deprecated=DEPRECATED)
    yield zoo
    zoo.close()


def successor_links(answer: webtest.TestResponse) -> list[str]:
    return [value for name, value in answer.headerlist if name == "Link" and 'rel="successor-version"' in value]


@pytest.mark.parametrize("method, url, target", SUCCESSORS, ids=[f"{m} {u}" for m, u, _ in SUCCESSORS])
def test_every_v1_answer_announces_the_deprecation_and_the_successor(sunset_app: ZooApp, method: str, url: str,
                                                                     target: str) -> None:
    answer = make_client(sunset_app).request(url, method=method, expect_errors=True)
    assert answer.headers["Deprecation"] == DEPRECATED_AT
    assert answer.headers["Sunset"] == SUNSET_DATE
    assert successor_links(answer) == [f'<{target}>; rel="successor-version"']


def untimed(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` without the reset time (``t=``) in RateLimit, which depends on when the app's window began."""
    return [(name, re.sub(r";t=\d+", "", value) if name == "RateLimit" else value) for name, value in headers]


def test_the_deprecation_changes_nothing_else_in_v1_answers(tmp_path: Path) -> None:
    """Status, body and every other header are those of the zoo without a sunset; the paging Link stays."""
    plain, sunset = new_app(tmp_path), new_app(tmp_path, v1_sunset=SUNSET, v1_deprecated=DEPRECATED)
    try:
        for url in V1_REQUESTS:
            a = make_client(plain).get(url, expect_errors=True)
            b = make_client(sunset).get(url, expect_errors=True)
            added = [("Deprecation", DEPRECATED_AT), ("Sunset", SUNSET_DATE), *(("Link", v) for v in successor_links(b))]
            assert (b.status, b.body) == (a.status, a.body), url
            # (RateLimit's t= counts seconds to each app's own window end: it may differ by one)
            assert sorted(untimed(b.headerlist)) == sorted(untimed(a.headerlist + added)), url
            assert not {"Deprecation", "Sunset"} & set(a.headers) and not successor_links(a), url
        answer = make_client(sunset).get("/v1/zoos?limit=1")
        assert [value for name, value in answer.headerlist if name == "Link"][0].count('rel="next"') == 1
        for url in ["/", "/v2", "/v2/zoos/1", "/v2/nothing", "/v10", "/openapi.json"]:  # not v1's
            other = make_client(sunset).get(url, expect_errors=True)
            assert not {"Deprecation", "Sunset"} & set(other.headers) and not successor_links(other), url
    finally:
        plain.close()
        sunset.close()


def test_the_document_marks_v1_deprecated_only_with_a_sunset(sunset_app: ZooApp, app: ZooApp) -> None:
    marked = make_client(sunset_app).get("/openapi.json").json
    for path, item in marked["paths"].items():
        for method, operation in item.items():
            if path == "/v1" or path.startswith("/v1/"):
                assert operation["deprecated"] is True, (method, path)
                assert {"Deprecation", "Sunset"} <= set(operation["responses"]["200" if "200" in operation["responses"]
                                                                            else min(operation["responses"])]["headers"])
            else:
                assert "deprecated" not in operation, (method, path)
    assert "sunsets on 2027-06-30" in marked["info"]["description"]
    plain = make_client(app).get("/openapi.json").json
    assert not any("deprecated" in op for item in plain["paths"].values() for op in item.values())
    openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
    openapi_spec_validator.validate(marked)


def test_the_deprecation_date_defaults_to_the_start(tmp_path: Path) -> None:
    import time

    before = int(time.time())
    zoo = new_app(tmp_path, v1_sunset="2099-01-01T12:00:00+02:00")
    try:
        answer = make_client(zoo).get("/v1/zoos/1")
        assert before <= int(answer.headers["Deprecation"][1:]) <= time.time()
        assert answer.headers["Sunset"] == "Thu, 01 Jan 2099 10:00:00 GMT"
    finally:
        zoo.close()


@pytest.mark.parametrize("options, fragment", [
    ({"v1_sunset": "next year"}, "not a date"),
    ({"v1_sunset": "2027-02-30"}, "not a date"),
    ({"v1_sunset": "2026-01-01", "v1_deprecated": "2026-06-01"}, "before the deprecation"),
    ({"v1_deprecated": "2026-06-01"}, "needs v1_sunset"),
])
def test_bad_deprecation_dates_are_refused_when_the_app_is_made(tmp_path: Path, options: dict[str, str],
                                                                 fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        new_app(tmp_path, **options)
    assert not (tmp_path / "zoo.db").exists()  # refused before the database is opened


def test_the_command_line_and_the_environment_set_the_sunset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from examples.zoo.__main__ import parse_args
    from examples.zoo.wsgi import create_app

    args = parse_args(["--v1-sunset", SUNSET, "--v1-deprecated", DEPRECATED])
    assert (args.v1_sunset, args.v1_deprecated) == (SUNSET, DEPRECATED)
    assert parse_args([]).v1_sunset is None
    for bad in (["--v1-sunset", "soon"], ["--v1-deprecated", DEPRECATED], ["--v1-sunset", "2026-01-01",
                                                                           "--v1-deprecated", DEPRECATED]):
        with pytest.raises(SystemExit):
            parse_args(bad)
        assert "--v1-" in capsys.readouterr().err
    monkeypatch.setenv("ZOO_V1_SUNSET", SUNSET)
    assert parse_args([]).v1_sunset == SUNSET
    zoo = create_app({"ZOO_DB": str(tmp_path / "zoo.db"), "ZOO_CREATE": "1", "ZOO_TOKEN": "t", "ZOO_V1_SUNSET": SUNSET,
                      "ZOO_V1_DEPRECATED": DEPRECATED})
    try:
        answer = make_client(zoo).get("/v1/zoos/1")
        assert (answer.headers["Deprecation"], answer.headers["Sunset"]) == (DEPRECATED_AT, SUNSET_DATE)
    finally:
        zoo.close()


# --- the README's examples, run as written ----------------------------------------------------------

README = (Path(__file__).resolve().parent.parent / "examples" / "zoo" / "README.md").read_text(encoding="utf-8")


def readme_section(heading: str) -> str:
    start = README.index(heading)
    end = README.find("\n### ", start + 1)
    return README[start:end if end > 0 else None]


def test_the_readme_versions_examples_run_as_written(tmp_path: Path) -> None:
    """``python -m examples.zoo ...`` and each ``curl``, on a free port and a new database: the answers shown."""
    import json
    import re
    import shlex
    import shutil
    import subprocess
    import sys

    from tests.conftest import free_port, stop_process
    from tests.test_examples_zoo_server import ROOT, wait_until_serving

    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    blocks = re.findall(r"```(\w+)\n(.*?)```", readme_section("### Versions: /v1, /v2"), re.S)
    commands = [line for lang, text in blocks if lang == "sh" for line in text.splitlines()]
    server = shlex.split(commands[0])
    assert server[:3] == ["python", "-m", "examples.zoo"], commands[0]
    port = free_port()
    db = str(tmp_path / "zoo.db")
    argv = [sys.executable, *[db if arg == "/tmp/zoo-versions.db" else arg for arg in server[1:]], "--port", str(port)]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(process, port)
        checked = 0
        for (lang, text), (expected_lang, expected) in zip(blocks[:-1], blocks[1:]):
            if lang != "sh":
                continue
            line = text.splitlines()[-1]
            assert line.startswith("curl "), line
            done = subprocess.run([curl, "-sS", *shlex.split(line.replace(":8000", f":{port}"))[1:]],
                                  capture_output=True, text=True, timeout=30, check=True)
            if expected_lang == "http":
                got = done.stdout.replace("\r\n", "\n")
                for wanted in expected.strip().splitlines():
                    assert wanted in got.splitlines(), (line, wanted, got)
            else:
                assert json.loads(done.stdout) == json.loads(expected), line
            checked += 1
        assert checked == 3
    finally:
        stop_process(process)
