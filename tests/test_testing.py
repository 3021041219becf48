"""restkit.testing (the in-process Client) and restkit.pytest_plugin (the live_server fixture)."""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
import urllib.request
import venv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import restkit.pytest_plugin
from restkit import App, Response
from restkit.compression import Compression
from restkit.testing import Client
from tests.conftest import copy_source_tree

ROOT = Path(__file__).resolve().parent.parent
StartResponse = Callable[..., Any]


def echo(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """A bare WSGI app that answers what it was sent, to see the environ the client builds."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    seen = {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "content_type": environ.get("CONTENT_TYPE"),
        "content_length": environ.get("CONTENT_LENGTH"),
        "body": environ["wsgi.input"].read(length).decode("latin-1"),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_") and k != "HTTP_HOST"},
        "remote_addr": environ["REMOTE_ADDR"],
        "scheme": environ["wsgi.url_scheme"],
    }
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def make_app() -> App:
    app = App()
    app.use(Compression(min_size=100))

    @app.route("/items/<int:item_id>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def item(request: Any, item_id: int) -> dict[str, Any]:
        return {"method": request.method, "id": item_id}

    @app.get("/big")
    def big(request: Any) -> list[int]:
        return list(range(500))

    @app.get("/headers")
    def headers(request: Any) -> Response:
        response = Response.json({"ok": True})
        response.add_header("X-Tag", "a")
        response.add_header("x-tag", "b")
        return response

    @app.post("/login")
    def login(request: Any) -> Response:
        response = Response.json({"logged_in": True})
        response.set_cookie("sid", "s3cret")
        response.set_cookie("theme", "dark")
        return response

    @app.get("/me")
    def me(request: Any) -> Any:
        return request.cookies

    @app.post("/logout")
    def logout(request: Any) -> Response:
        response = Response.json({"logged_in": False})
        response.delete_cookie("sid")
        return response

    @app.get("/page", produces="text/html")
    def page(request: Any) -> Response:
        return Response.html("<p>café</p>")

    @app.get("/url")
    def url(request: Any) -> dict[str, str]:
        return {"url": request.url, "address": request.remote_addr}

    return app


@pytest.fixture
def client() -> Client:
    return Client(make_app())


# -- requests -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_each_method_reaches_its_route(client: Client, method: str) -> None:
    assert getattr(client, method)("/items/3", status=200).json == {"method": method.upper(), "id": 3}


def test_options_and_the_general_form(client: Client) -> None:
    assert client.options("/items/3", status=204).headers["Allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    assert client.request("put", "/items/4").json == {"method": "PUT", "id": 4}


def test_head_has_headers_and_an_empty_body(client: Client) -> None:
    answer = client.head("/items/3", status=200)
    assert answer.body == b"" and answer.headers["Content-Type"].startswith("application/json")


def test_head_drops_a_body_the_app_sends_as_a_server_would() -> None:
    answer = Client(echo).head("/x")
    assert answer.status == 200 and answer.headers["Content-Length"] != "0" and answer.body == b""


def test_json_is_serialised_with_its_content_type() -> None:
    import datetime

    seen = Client(echo).post("/x", json={"when": datetime.date(2026, 1, 2), "n": [1]}).json
    assert seen["content_type"] == "application/json"
    assert json.loads(seen["body"]) == {"when": "2026-01-02", "n": [1]}
    assert seen["content_length"] == str(len(seen["body"]))


@pytest.mark.parametrize(
    ("data", "body", "content_type"),
    [
        (b"\x00\xff raw", "\x00\xff raw", None),
        ("caf\u00e9", "caf\u00c3\u00a9", None),  # a str is sent as UTF-8 (shown here byte by byte)
        ({"name": "lamp", "tag": ["a", "b"]}, "name=lamp&tag=a&tag=b", "application/x-www-form-urlencoded"),
    ],
    ids=["bytes", "str", "form"],
)
def test_data_is_sent_as_is_or_as_a_form(data: Any, body: str, content_type: str | None) -> None:
    seen = Client(echo).put("/x", data=data).json
    assert (seen["body"], seen["content_type"]) == (body, content_type)


def test_a_content_type_header_wins_and_json_with_data_is_refused() -> None:
    seen = Client(echo).post("/x", data="<a/>", headers={"content-type": "application/xml"}).json
    assert seen["content_type"] == "application/xml"
    with pytest.raises(TypeError, match="json= or data="):
        Client(echo).post("/x", json={}, data=b"")


def test_an_empty_post_says_content_length_0_and_a_get_says_nothing() -> None:
    assert Client(echo).post("/x").json["content_length"] == "0"
    assert Client(echo).get("/x").json["content_length"] is None


def test_query_path_and_repeated_request_headers() -> None:
    client = Client(echo)
    seen = client.get("/caf%C3%A9/x?a=1", query={"b": ["2", "3"]}, headers=[("X-A", "1"), ("x-a", "2")]).json
    assert seen["path"] == "/caf\u00c3\u00a9/x"  # PEP 3333: the bytes, one character each
    assert seen["query"] == "a=1&b=2&b=3"
    assert seen["headers"] == {"HTTP_X_A": "1, 2"}
    assert client.get("/x", query=[("q", "a b")]).json["query"] == "q=a+b"
    assert client.get("/x", query="raw=%20").json["query"] == "raw=%20"


def test_environ_extras_from_the_client_and_the_request() -> None:
    client = Client(make_app(), environ={"REMOTE_ADDR": "10.0.0.1"})
    assert client.get("/url").json == {"url": "http://127.0.0.1/url", "address": "10.0.0.1"}
    https = client.get("/url", environ={"wsgi.url_scheme": "https", "HTTP_HOST": "api.example"}).json
    assert https == {"url": "https://api.example/url", "address": "10.0.0.1"}


def test_an_unknown_keyword_is_a_type_error(client: Client) -> None:
    with pytest.raises(TypeError, match="stauts"):
        client.get("/items/1", stauts=200)  # type: ignore[call-arg]


def test_a_path_must_start_with_a_slash(client: Client) -> None:
    with pytest.raises(ValueError, match="starts with '/'"):
        client.get("items/1")


# -- status= --------------------------------------------------------------------------


def test_status_accepts_an_int_or_a_collection(client: Client) -> None:
    assert client.get("/items/1", status=200).status == 200
    assert client.get("/nowhere", status={404, 410}).status == 404
    assert client.get("/items/1", status=range(200, 300)).status_line == "200 OK"


def test_a_wrong_status_fails_with_the_status_and_the_body(client: Client) -> None:
    with pytest.raises(AssertionError) as failure:
        client.get("/nowhere", status=200)
    message = str(failure.value)
    assert "GET /nowhere: expected status 200, got 404 Not Found" in message
    assert '{"error":"no resource at /nowhere"}' in message
    with pytest.raises(AssertionError, match=r"expected a status in \{201, 202\}, got 200 OK"):
        client.post("/items/1", status={201, 202})


def test_a_long_body_is_cut_in_the_message() -> None:
    def long(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"x" * 10_000]

    with pytest.raises(AssertionError, match=r"x{2000}\.\.\. \(10000 bytes\)$"):
        Client(long).get("/", status=200)


# -- the response ---------------------------------------------------------------------


def test_headers_are_case_insensitive_and_repeats_are_kept(client: Client) -> None:
    answer = client.get("/headers")
    assert answer.headers["content-type"] == answer.headers["CONTENT-TYPE"] == "application/json; charset=utf-8"
    assert answer.headers.get_all("X-TAG") == ["a", "b"]
    assert answer.headers.get("x-missing") is None and answer.headers.get_all("x-missing") == []
    sent = answer.headers.multi_items()  # names as the app wrote them
    assert ("X-Tag", "a") in sent and ("x-tag", "b") in sent


def test_a_gzip_body_is_left_as_sent(client: Client) -> None:
    answer = client.get("/big", headers={"Accept-Encoding": "gzip"})
    assert answer.headers["Content-Encoding"] == "gzip"
    assert answer.body[:2] == b"\x1f\x8b"  # never decoded
    assert json.loads(gzip.decompress(answer.body)) == list(range(500))
    with pytest.raises(ValueError, match=r"GET /big answered 200 OK with a body that is not JSON"):
        answer.json
    assert client.get("/big").json == list(range(500))  # no Accept-Encoding: plain


def test_text_decodes_with_the_charset(client: Client) -> None:
    assert client.get("/page").text == "<p>caf\u00e9</p>"

    def latin1(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", 'text/plain; charset="latin-1"')])
        return ["caf\u00e9".encode("latin-1")]

    assert Client(latin1).get("/").text == "caf\u00e9"


def test_json_of_a_body_that_is_not_json_says_so(client: Client) -> None:
    with pytest.raises(ValueError, match=r"(?s)GET /page answered 200 OK with a body that is not JSON.*<p>caf"):
        client.get("/page").json


# -- cookies --------------------------------------------------------------------------


def test_cookies_are_kept_sent_back_and_deleted(client: Client) -> None:
    assert client.get("/me").json == {}
    client.post("/login", status=200)
    assert client.cookies == {"sid": "s3cret", "theme": "dark"}
    assert client.get("/me").json == {"sid": "s3cret", "theme": "dark"}
    assert client.get("/me", headers={"Cookie": "theme=light"}).json == {"sid": "s3cret", "theme": "light"}
    client.post("/logout")
    assert client.cookies == {"theme": "dark"}
    assert client.get("/me").json == {"theme": "dark"}


@pytest.mark.parametrize(
    ("set_cookie", "kept"),
    [
        ("a=1; Path=/", {"a": "1"}),
        ('a="q 1"', {"a": '"q 1"'}),
        ("a=; Max-Age=0", {}),
        ("a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", {}),
        ("a=1; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT", {"a": "1"}),  # Max-Age wins
        ("a=1; Expires=Fri, 01 Jan 2100 00:00:00 GMT", {"a": "1"}),
        ("a=1; Max-Age=soon", {"a": "1"}),
        ("novalue", {"old": "x"}),
    ],
)
def test_the_jar(set_cookie: str, kept: dict[str, str]) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("204 No Content", [("Set-Cookie", set_cookie)])
        return []

    client = Client(app)
    client.cookies.update({"a": "old"} if "novalue" not in set_cookie else {"old": "x"})
    client.get("/")
    assert client.cookies == kept


# -- streams --------------------------------------------------------------------------


class Parts:
    """A response iterable that records how far it was read and whether it was closed."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.given = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        while self.given < self.count:
            self.given += 1
            yield f"part {self.given};".encode()

    def close(self) -> None:
        self.closed = True


def streaming(parts: Parts) -> Callable[[dict[str, Any], StartResponse], Parts]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Parts:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return parts

    return app


def test_a_stream_is_read_part_by_part_and_closed() -> None:
    parts = Parts(1000)
    answer = Client(streaming(parts)).stream("GET", "/", status=200)
    assert (answer.status, parts.given) == (200, 0)
    taken = answer.iter_parts()
    assert next(taken) == b"part 1;" and parts.given == 1
    assert next(answer.iter_parts()) == b"part 2;" and parts.given == 2  # a new iterator goes on where the last stopped
    assert next(taken) == b"part 3;" and parts.given == 3
    assert not parts.closed
    answer.close()
    assert parts.closed and parts.given == 3
    assert list(answer.iter_parts()) == []


def test_a_stream_read_to_its_end_is_closed_and_body_is_all_of_it() -> None:
    parts = Parts(3)
    with Client(streaming(parts)).stream("GET", "/") as answer:
        assert next(answer.iter_parts()) == b"part 1;"
        assert answer.body == b"part 1;part 2;part 3;" and parts.closed
    parts = Parts(2)
    answer = Client(streaming(parts)).stream("GET", "/")
    assert list(answer.iter_parts()) == [b"part 1;", b"part 2;"] and parts.closed


def test_a_stream_that_fails_part_way_is_closed() -> None:
    class Failing(Parts):
        def __iter__(self) -> Iterator[bytes]:
            yield b"one"
            raise RuntimeError("the app broke")

    parts = Failing(2)
    answer = Client(streaming(parts)).stream("GET", "/")
    with pytest.raises(RuntimeError, match="the app broke"):
        list(answer.iter_parts())
    assert parts.closed and answer.body == b"one"


def test_a_restkit_generator_stream_is_closed_through_the_app() -> None:
    events: list[str] = []
    app = App()

    @app.get("/events")
    def events_stream(request: Any) -> Iterator[bytes]:
        try:
            for n in range(1000):
                events.append(f"sent {n}")
                yield b"event %d\n" % n
        finally:
            events.append("closed")

    with Client(app).stream("GET", "/events", status=200) as answer:
        assert next(answer.iter_parts()) == b"event 0\n"
    assert events == ["sent 0", "closed"]


def test_a_generator_may_call_start_response_on_its_first_part() -> None:
    def lazy(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        start_response("201 Created", [("Content-Type", "text/plain")])
        yield b"one"
        yield b"two"

    assert Client(lazy).post("/", status=201).body == b"onetwo"
    with Client(lazy).stream("GET", "/") as answer:
        assert answer.status == 201 and next(answer.iter_parts()) == b"one"


def test_a_stream_with_the_wrong_status_is_closed() -> None:
    parts = Parts(5)
    with pytest.raises(AssertionError, match="(a stream: its body was not read)"):
        Client(streaming(parts)).stream("GET", "/", status=404)
    assert parts.closed and parts.given == 0


def test_a_response_read_whole_gives_its_body_as_one_part(client: Client) -> None:
    answer = client.get("/items/1")
    assert list(answer.iter_parts()) == [answer.body]


# -- PEP 3333 -------------------------------------------------------------------------


def test_the_validator_catches_a_str_body_part() -> None:
    def bad(environ: dict[str, Any], start_response: StartResponse) -> list[Any]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["not bytes"]

    with pytest.raises(AssertionError, match="non-bytestring"):
        Client(bad).get("/")
    with pytest.raises(TypeError, match="not bytes"):  # without the validator, the client still refuses it
        Client(bad, validate=False).get("/")


def test_the_validator_catches_a_bad_status_and_header() -> None:
    def bad_status(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("20 OK", [("Content-Type", "text/plain")])
        return [b""]

    def bad_header(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Bad", "a\nb")])
        return [b""]

    with pytest.raises(AssertionError, match="three characters"):
        Client(bad_status).get("/")
    with pytest.raises(AssertionError, match="Bad header value"):
        Client(bad_header).get("/")
    assert Client(bad_status, validate=False).get("/").status_line == "20 OK"


def test_start_response_twice_without_exc_info_is_refused() -> None:
    def twice(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        start_response("500 Internal Server Error", [])
        return [b""]

    with pytest.raises(AssertionError, match="start_response called twice"):
        Client(twice, validate=False).get("/")


def test_importing_restkit_and_its_client_does_not_import_pytest() -> None:
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import restkit, restkit.testing\n"
            "assert 'pytest' not in sys.modules and '_pytest' not in sys.modules, 'pytest was imported'\n")
    subprocess.run([sys.executable, "-S", "-c", code], check=True, timeout=60)


# -- the pytest plugin ----------------------------------------------------------------


def test_live_server_serves_over_a_real_socket(live_server: Callable[..., restkit.pytest_plugin.LiveServer]) -> None:
    server = live_server(make_app())
    assert server.url == f"http://127.0.0.1:{server.port}" and server.server.server_address[1] == server.port
    with urllib.request.urlopen(server.url + "/items/7", timeout=10) as answer:
        assert answer.status == 200 and json.load(answer) == {"method": "GET", "id": 7}
    server.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url + "/items/7", timeout=2)


def test_the_plugin_is_registered_once(request: pytest.FixtureRequest) -> None:
    """Under its entry point's name when restkit is installed, else by tests/conftest.py."""
    installed = any(ep.value == "restkit.pytest_plugin" for ep in importlib.metadata.entry_points(group="pytest11"))
    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    names = [name for name, plugin in request.config.pluginmanager.list_name_plugin() if plugin is restkit.pytest_plugin]
    assert names == (["restkit"] if installed and autoload else ["restkit.pytest_plugin"])


LIVE_TEST = '''
import json
import urllib.request

import restkit.pytest_plugin
from restkit import App


def test_live_server_from_the_installed_plugin(live_server):
    assert "site-packages" in restkit.pytest_plugin.__file__
    app = App()

    @app.get("/ping")
    def ping(request):
        return {"pong": True}

    server = live_server(app)
    with urllib.request.urlopen(server.url + "/ping", timeout=10) as answer:
        assert json.load(answer) == {"pong": True}
'''


@pytest.mark.slow
def test_the_entry_point_gives_live_server_to_an_installed_project(tmp_path: Path) -> None:
    """pip-install restkit into a fresh venv: pytest finds live_server with no conftest, and the repo's conftest does not register it twice."""
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = str(target / "bin" / "python")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_PLUGINS")}

    def run(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([python, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)

    # What restkit's own install needs from an index (or a local mirror); without one, there is nothing to test.
    fetched = run("-m", "pip", "install", "-q", "pytest", "webtest", "setuptools>=61", "wheel")
    if fetched.returncode != 0:
        reason = f"pip cannot install pytest here (no index or mirror?): {fetched.stderr.strip()[-500:]}"
        if os.environ.get("RESTKIT_REQUIRE_ALL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    source = copy_source_tree(tmp_path / "src")
    installed = run("-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation", str(source))
    assert installed.returncode == 0, installed.stdout + installed.stderr

    project = tmp_path / "project"  # a user's project: no conftest, restkit installed
    project.mkdir()
    (project / "test_live.py").write_text(textwrap.dedent(LIVE_TEST))
    done = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "test_live.py", cwd=project)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]

    # restkit's own tests with restkit installed: the entry point registers the plugin, tests/conftest.py does not.
    selected = "tests/test_testing.py::test_the_plugin_is_registered_once"
    done = run("-m", "pytest", "-q", "-p", "no:cacheprovider", selected, cwd=source)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
