"""``python -m restkit routes|openapi|check SPEC``: looking at an app without serving it."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import wsgi_call

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TIMEOUT = 60.0

SMALL_APP = textwrap.dedent(
    """
    import sys
    from dataclasses import dataclass

    from restkit import App
    from restkit.cors import CORS
    from restkit.ratelimit import RateLimit

    app = App(openapi=True, title="Small", version="2.0.0")
    app.use(CORS("*"))

    @app.on_startup
    def never_in_a_subcommand():
        print("STARTUP RAN", file=sys.stderr)

    @dataclass
    class Item:
        name: str

    @app.get("/items")
    def list_items(request):
        return []

    @app.post("/items", body=Item, responses={201: Item}, rate_limit=RateLimit(10))
    def create_item(request, body):
        return body, 201

    @app.route("/items/<int:item_id>", methods=["GET", "DELETE"], name="item")
    def item(request, item_id):
        return {"id": item_id}
    """
)

PLAIN_APP = "from restkit import App\napp = App()\n\n@app.get('/')\ndef index(request):\n    return {}\n"
DUPLICATE_NAME = PLAIN_APP + "\n@app.get('/other', name='index')\ndef other(request):\n    return {}\n"
# Only building the API document finds this out: without check, the first GET /openapi.json would be a 500.
UNDOCUMENTABLE = (PLAIN_APP.replace("App()", "App(openapi=True)")
                  + "\nclass Thing:\n    pass\n\n@app.get('/thing', responses={200: Thing})\ndef thing(request):\n    return {}\n")


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "small_app.py").write_text(SMALL_APP)
    (tmp_path / "plain_app.py").write_text(PLAIN_APP)
    (tmp_path / "duplicate_name.py").write_text(DUPLICATE_NAME)
    (tmp_path / "undocumentable.py").write_text(UNDOCUMENTABLE)
    (tmp_path / "raw_wsgi.py").write_text("def app(environ, start_response):\n    return []\n")
    (tmp_path / "routes.py").write_text(PLAIN_APP)  # a module named like a subcommand
    return tmp_path


def run(args: list[str], cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **variables}
    return subprocess.run([sys.executable, "-m", "restkit", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def test_routes_table(app_dir: Path) -> None:
    done = run(["routes", "small_app:app"], app_dir)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the startup hook did not run
    rows = [re.split(r"\s{2,}", line) for line in done.stdout.splitlines()]
    assert rows == [
        ["METHODS", "PATH", "NAME", "HANDLER", "FEATURES"],
        ["GET", "/openapi.json", "restkit.openapi", "restkit.app.App._add_doc_routes.<locals>.openapi_json", "CORS"],
        ["GET", "/docs", "restkit.docs", "restkit.app.App._add_doc_routes.<locals>.docs", "CORS"],
        ["GET", "/items", "list_items", "small_app.list_items", "CORS"],
        ["POST", "/items", "create_item", "small_app.create_item", "RateLimit, CORS"],
        ["DELETE,GET", "/items/<int:item_id>", "item", "small_app.item", "CORS"],
    ]


def test_routes_without_features_shows_a_dash(app_dir: Path) -> None:
    done = run(["routes", "plain_app:app"], app_dir)
    assert done.returncode == 0 and done.stdout.splitlines()[1].split() == ["GET", "/", "index", "plain_app.index", "-"]


def test_openapi_file_is_what_the_app_serves(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output = app_dir / "openapi.json"
    done = run(["openapi", "small_app:app", "-o", str(output)], app_dir)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr
    monkeypatch.syspath_prepend(str(app_dir))
    from small_app import app  # type: ignore[import-not-found]

    status, _, served = wsgi_call(app, "GET", "/openapi.json")
    assert status == 200 and output.read_bytes() == served
    assert json.loads(served)["info"] == {"title": "Small", "version": "2.0.0"}
    sys.modules.pop("small_app", None)


def test_openapi_to_standard_output_and_indented(app_dir: Path) -> None:
    compact, indented = run(["openapi", "small_app:app"], app_dir), run(["openapi", "small_app:app", "--indent", "2"], app_dir)
    assert compact.returncode == 0 and indented.returncode == 0
    assert json.loads(compact.stdout) == json.loads(indented.stdout)
    assert indented.stdout.startswith('{\n  "openapi": "3.1.0"')


def test_openapi_of_an_app_without_one_exits_1(app_dir: Path) -> None:
    done = run(["openapi", "plain_app:app"], app_dir)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "restkit: plain_app:app serves no OpenAPI document: create it with App(openapi=True)\n"


def test_check_ok(app_dir: Path) -> None:
    done = run(["check", "small_app:app"], app_dir)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok: 5 routes\n", "")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("duplicate_name:app", "restkit: cannot load duplicate_name:app: RouteError: "),
        ("undocumentable:app", "restkit: undocumentable:app: TypeError: restkit cannot describe values of type <class 'undocumentable.Thing'>"),
        ("no_such_module:app", "restkit: cannot load no_such_module:app: no module named 'no_such_module'"),
        ("raw_wsgi:app", "restkit: raw_wsgi:app is not a restkit App"),
    ],
    ids=["error-at-import", "error-in-the-api-document", "missing-module", "not-a-restkit-app"],
)
def test_check_fails_with_one_line(app_dir: Path, spec: str, message: str) -> None:
    done = run(["check", spec], app_dir)
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(message), done.stderr


def test_check_reports_a_syntax_error(app_dir: Path) -> None:
    (app_dir / "syntax_error.py").write_text("app = = 1\n")
    done = run(["check", "syntax_error:app"], app_dir)
    assert done.returncode == 1 and done.stderr.startswith("restkit: cannot import syntax_error:app: ")


@pytest.mark.parametrize("command", ["routes", "openapi", "check"])
def test_each_subcommand_has_help(app_dir: Path, command: str) -> None:
    done = run([command, "--help"], app_dir)
    assert done.returncode == 0 and done.stdout.startswith(f"usage: python -m restkit {command} ")


def test_a_usage_mistake_exits_2(app_dir: Path) -> None:
    done = run(["routes"], app_dir)
    assert done.returncode == 2 and "usage: python -m restkit routes" in done.stderr


def test_a_module_named_like_a_subcommand_is_served_by_its_full_spec(app_dir: Path) -> None:
    from restkit.cli import _parser

    assert _parser().parse_args(["routes:app"]).app == "routes:app"  # not a subcommand: served as today
    done = run(["check", "routes:app"], app_dir)
    assert (done.returncode, done.stdout) == (0, "ok: 1 route\n")


README_COMMANDS = re.findall(r"^python -m restkit (?:routes|openapi|check) .*$", README, re.M)


def test_the_readme_shows_each_subcommand() -> None:
    assert {shlex.split(line)[3] for line in README_COMMANDS} == {"routes", "openapi", "check"}


@pytest.mark.parametrize("line", README_COMMANDS)
def test_the_readme_commands_run(line: str, tmp_path: Path) -> None:
    """As shown, from a scratch directory, with ZOO_CREATE=1 as the README says (the zoo makes its zoo.db there)."""
    done = run(shlex.split(line)[3:], tmp_path, ZOO_CREATE="1")
    assert done.returncode == 0, done.stderr
    command = shlex.split(line)[3]
    if command == "routes":
        assert re.search(r"^GET +/v1/zoos +list_zoos +examples\.zoo\.app\.ZooAPI\.list_zoos +RateLimit, Paging", done.stdout, re.M)
    elif command == "openapi":
        document = json.loads((tmp_path / "openapi.json").read_text())
        assert document["info"]["title"] == "Zoo API" and "/v1/zoos" in document["paths"]
    else:
        assert re.fullmatch(r"ok: \d+ routes\n", done.stdout)
