"""examples/zoo documents itself: /openapi.json checked by a validator and by schemathesis, /docs in Chromium.

* The document is a valid OpenAPI 3.1 document and says what the zoo does:
  its models, the statuses of every route, the bearer token of writes.
* schemathesis runs against the real ``python -m examples.zoo`` server and
  finds no 5xx, no undocumented status, no answer that breaks its schema.
* Headless Chromium opens ``/docs``, expands ``list_zoos``, sends it and shows
  the real 200 answer in the green result box.

``python -m tests.test_examples_zoo_openapi docs/zoo-docs.png`` takes the
README's screenshot.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import webtest

from examples.zoo.app import ZooApp
from tests.browser import needs_chromium, run_chromium
from tests.conftest import free_port, make_client, stop_process
from tests.test_examples_zoo import AUTH, TOKEN, new_app
from tests.test_examples_zoo_server import ROOT, call, wait_until_serving

SCHEMATHESIS = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")


@pytest.fixture
def app(tmp_path: Path) -> Any:
    zoo = new_app(tmp_path)
    yield zoo
    zoo.close()


@pytest.fixture
def client(app: ZooApp) -> webtest.TestApp:
    return make_client(app)


# --- the document --------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(client: webtest.TestApp, app: ZooApp) -> None:
    openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
    response = client.get("/openapi.json")
    assert response.status_int == 200 and response.content_type == "application/json"
    document = response.json
    openapi_spec_validator.validate(document)
    assert document == json.loads(json.dumps(app.openapi()))
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Zoo API" and document["info"]["description"]


def test_every_route_is_documented_with_its_models(app: ZooApp) -> None:
    document = app.openapi()
    paths = document["paths"]
    assert sorted(paths) == [
        "/",
        "/v1",
        "/v1/animal_types",
        "/v1/animal_types/{animal_type}",
        "/v1/animals",
        "/v1/animals/recently_added",
        "/v1/animals/{animal}",
        "/v1/employees",
        "/v1/employees/{employee}",
        "/v1/jobs/{job}",
        "/v1/jobs/{job}/result",
        "/v1/zoos",
        "/v1/zoos/{zoo}",
        "/v1/zoos/{zoo}/animals",
        "/v1/zoos/{zoo}/employees",
        "/v1/zoos/{zoo}/employees/{employee}",
        "/v1/zoos/{zoo}/reports",
        "/v2",
        "/v2/animal_types",
        "/v2/animal_types/{animal_type}",
        "/v2/animals",
        "/v2/animals/{animal}",
        "/v2/employees",
        "/v2/employees/{employee}",
        "/v2/zoos",
        "/v2/zoos/{zoo}",
        "/v2/zoos/{zoo}/employees",
        "/v2/zoos/{zoo}/employees/{employee}",
    ]
    operations = {op["operationId"]: op for item in paths.values() for op in item.values()}
    assert len(operations) == 53  # 52 + DELETE /v1/jobs/{job} (cancel), since the zoo's jobs are restkit.jobs
    for op_id, op in operations.items():
        assert op.get("summary"), f"{op_id} has no summary (docstring)"
        assert op["tags"][0] in {"root", "zoos", "animals", "animal types", "employees", "jobs", "v2"}, op_id
    schemas = document["components"]["schemas"]
    assert {"Zoo", "ZooIn", "Animal", "AnimalIn", "AnimalType", "Employee", "EmployeeIn", "HireIn", "Item",
            "RootLink", "Error"} <= set(schemas)
    assert schemas["ZooIn"]["required"] == ["name", "city"]
    assert schemas["ZooIn"]["additionalProperties"] is False
    assert schemas["ZooIn"]["properties"]["name"]["maxLength"] == 100

    create = operations["create_zoo"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ZooIn"}
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Zoo"}
    patch = operations["update_zoo"]["requestBody"]["content"]["application/json"]["schema"]
    assert "required" not in patch and set(patch["properties"]) == {"name", "city", "opened"}
    listed = operations["list_zoos"]
    assert listed["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/Item"},
    }
    parameters = {p["name"]: p for p in listed["parameters"]}
    assert set(parameters) == {"limit", "offset", "page", "per_page", "sortby", "order", "name", "city", "opened"}
    assert parameters["limit"]["schema"]["maximum"] == 100 and "(default 20)" in parameters["limit"]["description"]
    recent = {p["name"]: p for p in operations["recently_added_animals"]["parameters"]}
    assert "(default 10)" in recent["limit"]["description"] and recent["sortby"]["schema"]["default"] == "created_at"
    assert "zoo_id" not in {p["name"] for p in operations["list_zoo_animals"]["parameters"]}


def test_paging_parameters_have_no_defaults_and_are_alternatives(app: ZooApp) -> None:
    """Issue 18: a client generated from the document sends every parameter with a default; paging has none."""
    paged = [op for item in app.openapi()["paths"].values() for op in item.values() if "x-restkit-paging" in op]
    expected = {"list_zoos", "list_animals", "recently_added_animals", "list_zoo_animals", "list_animal_types"}
    assert expected <= {op["operationId"] for op in paged}
    for op in paged:
        assert op["x-restkit-paging"]["styles"] == [["limit", "offset"], ["page", "per_page"]]
        parameters = {p["name"]: p for p in op["parameters"]}
        for name in ("limit", "offset", "page", "per_page"):
            assert "default" not in parameters[name]["schema"], (op["operationId"], name)
            assert "limit & offset or with page & per_page" in parameters[name]["description"]


STATUSES = {
    "root": {200, 406, 429},
    "list_zoos": {200, 400, 406, 429, 503},
    "create_zoo": {201, 400, 401, 403, 406, 409, 413, 415, 422, 429, 503, 507},
    "show_zoo": {200, 304, 404, 406, 410, 429, 503},
    "replace_zoo": {200, 400, 401, 403, 404, 406, 409, 410, 412, 413, 415, 422, 429, 503, 507},
    "update_zoo": {200, 400, 401, 403, 404, 406, 409, 410, 412, 413, 415, 422, 429, 503, 507},
    "delete_zoo": {204, 401, 403, 404, 406, 409, 410, 412, 429, 503, 507},
    "list_zoo_animals": {200, 400, 404, 406, 410, 429, 503},
    "hire_employee": {201, 400, 401, 403, 404, 406, 409, 410, 413, 415, 422, 429, 503, 507},
    "show_zoo_employee": {200, 404, 406, 410, 429, 503},
    "fire_employee": {204, 401, 403, 404, 406, 410, 412, 429, 503, 507},
    "create_animal": {201, 400, 401, 403, 406, 409, 413, 415, 422, 429, 503, 507},  # 409: Idempotency-Key in use
    "update_animal": {200, 400, 401, 403, 404, 406, 409, 410, 412, 413, 415, 422, 429, 503, 507},
    "delete_employee": {204, 401, 403, 404, 406, 410, 412, 429, 503, 507},
    "show_animal_type": {200, 304, 404, 406, 429, 503},
    "create_report": {202, 400, 401, 403, 404, 406, 409, 410, 422, 429, 503, 507},  # 400/409/422: Idempotency-Key
    "show_job": {200, 303, 404, 406, 429, 503},  # 303: restkit.jobs' answer for a job that made a resource
    "cancel_job": {200, 202, 401, 403, 404, 406, 409, 429, 503, 507},
}


@pytest.mark.parametrize("operation_id, statuses", STATUSES.items(), ids=list(STATUSES))
def test_every_status_a_route_answers_is_documented(app: ZooApp, operation_id: str, statuses: set[int]) -> None:
    operations = {op["operationId"]: op for item in app.openapi()["paths"].values() for op in item.values()}
    responses = operations[operation_id]["responses"]
    assert {int(status) for status in responses} == statuses
    for status, response in responses.items():
        if int(status) >= 400:
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        elif status in ("204", "304"):
            assert "content" not in response


def test_posts_and_patches_document_the_idempotency_key(app: ZooApp) -> None:
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            keys = [p for p in op.get("parameters", []) if p["name"] == "Idempotency-Key"]
            if method in ("post", "patch"):
                assert keys and keys[0]["in"] == "header" and keys[0]["required"] is False, (method, path)
                assert {"409", "422"} <= set(op["responses"]), (method, path)
                success = next(r for status, r in op["responses"].items() if status.startswith("2"))
                assert "Idempotent-Replayed" in success["headers"], (method, path)
            else:
                assert not keys, (method, path)


def test_writes_document_the_bearer_token(app: ZooApp) -> None:
    document = app.openapi()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method == "get":
                assert "security" not in op, f"{method} {path}"
            else:
                assert op["security"] == [{"bearerAuth": ["write"]}], f"{method} {path}"  # with its scope
                assert {"401", "403"} <= set(op["responses"]), f"{method} {path}"


def test_conditional_headers_are_documented(app: ZooApp) -> None:
    paths = app.openapi()["paths"]
    for path in ("/v1/zoos/{zoo}", "/v1/animals/{animal}", "/v1/employees/{employee}"):
        assert {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}} in paths[path]["get"]["parameters"]
        for method in ("put", "patch", "delete"):
            assert "If-Match" in {p["name"] for p in paths[path][method]["parameters"]}, f"{method} {path}"


def test_docs_page_is_served(client: webtest.TestApp) -> None:
    page = client.get("/docs", headers={"Accept": "text/html"})
    assert page.status_int == 200 and page.content_type == "text/html"
    assert "<title>Zoo API</title>" in page.text and "/openapi.json" in page.text
    assert "http://" not in page.text.replace("http://www.w3.org", "")  # no CDN: works offline


def test_handlers_receive_typed_models(client: webtest.TestApp) -> None:
    """The declared models really are what validates: a date string becomes a date and back."""
    created = client.post("/v1/zoos", json.dumps({"name": "Typed", "city": "Bern", "opened": "1937-05-01"}),
                          headers={**AUTH, "Content-Type": "application/json"})
    assert created.status_int == 201 and created.json["opened"] == "1937-05-01"
    page = client.get("/v1/zoos?opened=1937-05-01")
    assert [item["name"] for item in page.json] == ["Typed"]
    bad = client.get("/v1/zoos?opened=1937-13-01", expect_errors=True)
    assert bad.status_int == 400 and bad.json["error"].startswith("invalid query parameter(s): opened:")
    assert set(bad.json["details"]) == {"opened"}
    assert client.get("/v1/zoos").status_int == 200


@pytest.mark.parametrize("name, accepted", [
    ("\u3000", False), (" \u00a0\u2003 ", False), ("\u2028", False), ("\u0085", False),  # blank: what strip() removes
    ("\u3000Ueno\u3000", True), ("Zoo\u00a0Z\u00fcrich", True), ("\tTama\n", True),
], ids=["ideographic-space", "no-break-spaces", "line-separator", "next-line", "padded", "inner-nbsp", "ascii-blanks"])
def test_text_the_document_allows_is_accepted_and_blank_text_is_not_allowed(
    client: webtest.TestApp, app: ZooApp, name: str, accepted: bool
) -> None:
    """The name's pattern in the document and the server agree on blanks (schemathesis' positive data)."""
    pattern = app.openapi()["components"]["schemas"]["ZooIn"]["properties"]["name"]["pattern"]
    assert bool(re.search(pattern, name)) is accepted
    response = client.post("/v1/zoos", json.dumps({"name": name, "city": "Tokyo"}),
                           headers={**AUTH, "Content-Type": "application/json"}, expect_errors=True)
    assert response.status_int == (201 if accepted else 422), response.text
    if accepted:
        assert response.json["name"] == name.strip()
    else:
        assert "must match the pattern" in response.json["details"]["name"]


# --- schemathesis against the live server --------------------------------------------------------


# What schemathesis may not count against the zoo, and why.
#
# negative_data_rejection (invalid data must be refused): a request whose path names a deleted resource
# is refused with 410 before its body is looked at (the zoo's order of checks), which the stateful
# phase meets once v2 deletes too.
#
# positive_data_acceptance (valid data must be accepted, "schema-valid request rejected"): the
# refusals below depend on the server's state, which no schema can describe:
# * 404 and 410: the path names a resource that does not exist or was deleted;
# * 409: a name another zoo holds (unique after folding and confusables), a zoo that still has animals;
# * 412: an If-Match that is not the resource's current ETag (schemathesis makes tags up);
# * 422 on the operations whose body names other resources (zoo_id, animal_type_id, employee_id):
#   an id that does not exist or was deleted, and (animals) a `born` after today, a bound that moves.
#   Only there: a 422 anywhere else is a failure.
# A paged list's two styles that name different pages (a 400) are kept out by tests/schemathesis_hooks.py:
# OpenAPI has no way to relate two parameters.
SCHEMATHESIS_CONFIG = """\
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 410, 415, 422, 428, 429, "5XX"]

[checks.positive_data_acceptance]
expected-statuses = ["2XX", "3XX", 401, 403, 404, 409, 410, 412, 429, "5XX"]

[[operations]]
include-operation-id-regex = "^(v2_)?(hire_employee|create_animal|replace_animal|update_animal)$"
[operations.checks.positive_data_acceptance]
expected-statuses = ["2XX", "3XX", 401, 403, 404, 409, 410, 412, 422, 429, "5XX"]
"""


@pytest.mark.parametrize("query, disagree", [
    ({"limit": 5, "page": 3}, True),
    ({"limit": 20, "offset": 40, "page": 3}, False),  # per_page defaults to 20: page 3 starts at 40
    ({"offset": 10, "per_page": 10, "page": 2}, True),  # limit defaults to 20: another page size
    ({"limit": 10, "per_page": 10}, False),
    ({"limit": "10", "offset": "10.0", "page": 2, "per_page": 10}, False),
    ({"limit": 5}, False),
    ({"page": 2, "per_page": 5}, False),
    ({"limit": "x", "page": 2}, False),  # not a number: its own 400, not this rule's
], ids=["limit-page", "agree-by-default", "default-limit", "first-page", "as-text", "offset-style", "page-style", "not-a-number"])
def test_the_hook_keeps_out_only_pages_that_disagree(query: dict[str, Any], disagree: bool) -> None:
    pytest.importorskip("schemathesis")
    from tests.schemathesis_hooks import pages_disagree

    assert pages_disagree(query, 20) is disagree


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    """Property-based tests generated from /openapi.json, against ``python -m examples.zoo``.

    Every phase (examples, coverage, fuzzing, stateful), 30 examples per
    operation, deterministic generation so a failure reproduces; valid data
    must be accepted (``positive_data_acceptance``) and invalid data refused.
    """
    if SCHEMATHESIS is None:
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    port = free_port()
    # The access log goes to a file: thousands of requests would fill a pipe nobody reads and stall the server.
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.zoo", "--port", str(port), "--db", str(tmp_path / "zoo.db"),
         "--create", "--token", TOKEN, "--rate-limit", "0"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_until_serving(process, port)
        config = tmp_path / "schemathesis.toml"
        config.write_text(SCHEMATHESIS_CONFIG)
        command = [
            SCHEMATHESIS, "--config-file", str(config), "run", f"http://127.0.0.1:{port}/openapi.json",
            "--header", f"Authorization: Bearer {TOKEN}",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                        "response_schema_conformance,negative_data_rejection,positive_data_acceptance,"
                        "use_after_free",
            "--max-examples", "30",
            "--generation-deterministic",
            "--workers", "1",
            "--request-timeout", "10",
            "--no-color",
        ]
        hooks = {"SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, **hooks})
        report = done.stdout[-6000:] + done.stderr[-2000:]
        assert done.returncode == 0, report
        assert "53 selected / 53 total" in done.stdout, report
        assert re.search(r"\b0 failures?\b|\bpassed\b", done.stdout), report
        # the server survived it all and still serves
        assert call(port, "GET", "/v1/zoos", token=None)[0] == 200
    finally:
        stop_process(process)
        log.close()
    assert process.returncode == 0
    output = (tmp_path / "server.log").read_text()
    assert "Traceback" not in output, output[-3000:]
    assert not re.search(r'" 5\d\d ', output), "a 5xx in the access log"


# --- /docs in headless Chromium ---------------------------------------------------------------------


def operation_html(dom: str, operation_id: str) -> str:
    """The HTML of one operation's <details> element."""
    found = re.search(
        rf'<details class="op"[^>]*data-operation="{re.escape(operation_id)}".*?</details>\s*(?=<details class="op"|</section>)',
        dom,
        re.S,
    )
    assert found, f"operation {operation_id} not in the page"
    return found[0]


@needs_chromium
def test_docs_try_it_out_shows_the_real_list_of_zoos(app: ZooApp, live_server: Any, tmp_path: Path) -> None:
    server = live_server(app)
    done = run_chromium("--dump-dom", f"{server.url}/docs#op=list_zoos&send=1", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert re.findall(r'<section data-tag="([^"]+)"', dom) == ["root", "zoos", "animals", "animal types", "employees", "jobs", "v2"]
    op = operation_html(dom, "list_zoos")
    assert re.match(r'<details class="op"[^>]* open', op), "list_zoos is not expanded"
    assert 'data-status="200"' in op and "result ok" in op
    body = re.search(r'<pre class="response-body">(.*?)</pre>', op, re.S)
    assert body is not None, "no response body shown"
    shown = json.loads(html.unescape(body[1]))
    assert {"id": 1, "name": "Zoo Berlin", "href": "/v1/zoos/1"} in shown  # the demo data, from the real server
    assert "x-total-count: 2" in html.unescape(op).lower()


@needs_chromium
def test_docs_screenshot_shows_the_green_result(app: ZooApp, live_server: Any, tmp_path: Path) -> None:
    Image = pytest.importorskip("PIL.Image")
    server = live_server(app)
    png = tmp_path / "docs.png"
    done = run_chromium(f"--screenshot={png}", f"{server.url}/docs#op=list_zoos&send=1", tmp_path=tmp_path)
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    image = Image.open(io.BytesIO(png.read_bytes())).convert("RGB")
    assert image.size == (1100, 900)
    counts = {colour: count for count, colour in image.getcolors(maxcolors=1 << 20)}
    background, border = (0xE3, 0xF6, 0xEA), (0x1E, 0x9E, 0x5A)
    assert counts.get(background, 0) > 20_000, "the green result box is not on screen"
    assert counts.get(border, 0) > 1_000, "the result box's border is not on screen"
    assert image.getpixel((5, 5)) == (0x1D, 0x23, 0x30)  # the dark header band, painted from the top


def write_readme_screenshot(path: Path) -> None:
    """Take the README's screenshot of the zoo's /docs (1100x800): delete_zoo, which needs the
    bearer token, expanded and sent with it (a 409: the zoo still has animals)."""
    from tests.conftest import LiveServer

    with tempfile.TemporaryDirectory() as tmp:
        app = new_app(Path(tmp))
        server = LiveServer(app)
        try:
            done = run_chromium(f"--screenshot={path.resolve()}", f"{server.url}/docs#op=delete_zoo&p.zoo=1&auth=Bearer%20{TOKEN}&send=1",
                            tmp_path=Path(tmp), size="1100,800")
        finally:
            server.close()
            app.close()
    if done.returncode != 0:
        raise SystemExit(done.stderr)


if __name__ == "__main__":
    write_readme_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docs" / "zoo-docs.png")))
