"""examples/demo answers as the seed's Flask original does, in process and over real servers.

The same table of requests goes to the Flask original (tests/seed_flask_demo.py,
copied verbatim from the seed) and to the restkit port.  Success answers must
be identical JSON; error answers must have the same status, and restkit's
body is a JSON ``{"error": ...}``.  Then the port runs under restkit.serve,
gunicorn and waitress, and each must give the in-process answers.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from examples.demo.app import make_app
from tests.conftest import free_port, make_client, stop_process

ROOT = Path(__file__).resolve().parent.parent
UWSGI = Path(sys.executable).parent / "uwsgi"  # pip installs the binary beside python
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    #: the Flask original answers 500 here; restkit must answer this status instead
    flask_500_becomes: int | None = None


CASES = [
    # the requests in the docstrings
    Case("get-docstring", "GET", "/get_example/123?name=Alice", {"User-Agent": "Mozilla/5.0"}),
    Case("post-docstring", "POST", "/post_example", {"Content-Type": JSON, "Authorization": "Bearer token"},
         json.dumps({"title": "示例标题", "content": "示例内容"}).encode()),
    Case("put-docstring", "PUT", "/put_example/456", {"Content-Type": FORM, "X-Custom-Header": "custom"},
         "name=新名称&description=新描述".encode()),
    Case("delete-confirmed", "DELETE", "/delete_example?confirm=true", {"Authorization": "Bearer token"}),
    Case("delete-unconfirmed", "DELETE", "/delete_example"),
    Case("resource-get", "GET", "/api/resource/abc123?detail=full"),
    Case("resource-post", "POST", "/api/resource/abc123", {"Content-Type": JSON}, b'{"key": "value"}'),
    Case("resource-put", "PUT", "/api/resource/abc123", {"Content-Type": FORM}, b"field=new%20value"),
    Case("resource-delete", "DELETE", "/api/resource/abc123?confirm=true"),
    # missing headers and query parameters: the defaults
    Case("get-no-name-no-agent", "GET", "/get_example/7"),
    Case("get-percent-name", "GET", "/get_example/7?name=%E5%BC%A0%E4%B8%89"),
    Case("post-defaults", "POST", "/post_example", {"Content-Type": JSON}, b"{}"),
    Case("put-defaults-no-body", "PUT", "/put_example/1"),
    Case("put-json-not-form", "PUT", "/put_example/1", {"Content-Type": JSON}, b'{"name": "x"}'),
    Case("delete-confirm-false", "DELETE", "/delete_example?confirm=false"),
    Case("delete-confirm-upper", "DELETE", "/delete_example?confirm=TRUE"),
    Case("resource-get-default", "GET", "/api/resource/x"),
    Case("resource-delete-default", "DELETE", "/api/resource/x"),
    Case("resource-post-list", "POST", "/api/resource/x", {"Content-Type": JSON}, b"[1, 2]"),
    Case("resource-put-repeated", "PUT", "/api/resource/x", {"Content-Type": FORM}, b"a=1&a=2&b="),
    # bodies that are missing, malformed or of the wrong type
    Case("post-no-body", "POST", "/post_example"),
    Case("post-text-body", "POST", "/post_example", {"Content-Type": "text/plain"}, b"hello"),
    Case("post-malformed", "POST", "/post_example", {"Content-Type": JSON}, b'{"title": '),
    Case("post-empty-json", "POST", "/post_example", {"Content-Type": JSON}, b""),
    Case("post-not-utf8", "POST", "/post_example", {"Content-Type": JSON}, b'{"title": "\xff"}'),
    Case("post-json-list", "POST", "/post_example", {"Content-Type": JSON}, b"[1]", flask_500_becomes=400),
    Case("post-json-null", "POST", "/post_example", {"Content-Type": JSON}, b"null", flask_500_becomes=400),
    Case("resource-post-malformed", "POST", "/api/resource/x", {"Content-Type": JSON}, b"{oops"),
    Case("resource-post-form", "POST", "/api/resource/x", {"Content-Type": FORM}, b"a=1"),
    # wrong methods and ids
    Case("get-non-int", "GET", "/get_example/abc"),
    Case("get-negative", "GET", "/get_example/-1"),
    Case("put-non-int", "PUT", "/put_example/1.5"),
    Case("get-wrong-method", "POST", "/get_example/1"),
    Case("post-wrong-method", "GET", "/post_example"),
    Case("delete-wrong-method", "GET", "/delete_example"),
    Case("resource-patch", "PATCH", "/api/resource/x"),
    Case("unknown-path", "GET", "/nope"),
]


def _environ_args(case: Case) -> dict[str, Any]:
    headers = {k: v for k, v in case.headers.items() if k != "Content-Type"}
    args: dict[str, Any] = {"method": case.method, "headers": headers, "expect_errors": True}
    if case.body is not None:
        args["body"] = case.body
    if "Content-Type" in case.headers:
        args["content_type"] = case.headers["Content-Type"]
    return args


def _call(client: Any, case: Case) -> Any:
    import webtest

    request = webtest.TestRequest.blank(case.path, **{k: v for k, v in _environ_args(case).items() if k != "expect_errors"})
    if "User-Agent" not in case.headers:
        request.environ.pop("HTTP_USER_AGENT", None)
    return client.do_request(request, expect_errors=True)


def _json(response: Any) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        return None


@pytest.fixture(scope="module")
def flask_client() -> Any:
    flask = pytest.importorskip("flask", reason="Flask is the oracle: pip install '.[test]'")
    del flask
    import webtest

    from tests import seed_flask_demo

    return webtest.TestApp(seed_flask_demo.app)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_answers_like_flask(case: Case, flask_client: Any) -> None:
    ours = _call(make_client(make_app()), case)
    theirs = _call(flask_client, case)
    if theirs.status_int == 500:
        assert case.flask_500_becomes, "the Flask original fails here: note what restkit answers instead"
        assert ours.status_int == case.flask_500_becomes
        assert "error" in ours.json
        return
    assert case.flask_500_becomes is None
    assert ours.status_int == theirs.status_int
    if theirs.content_type == "application/json":
        assert ours.json == _json(theirs)
    else:  # Flask's HTML error pages; restkit says the same in JSON
        assert ours.content_type == "application/json"
        assert isinstance(ours.json["error"], str) and ours.json["error"]
    if theirs.status_int == 405:
        assert set(ours.headers["Allow"].split(", ")) == set(theirs.headers["Allow"].split(", "))


def test_keeps_serving_after_errors() -> None:
    client = make_client(make_app())
    for case in CASES:
        _call(client, case)
    assert client.get("/get_example/1?name=Bob", headers={"User-Agent": "t"}).json == {
        "user_id": 1, "name": "Bob", "user_agent": "t",
    }


# --- over real servers -----------------------------------------------------


def _http(port: int, case: Case) -> tuple[int, Any, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(case.method, case.path, skip_accept_encoding=True)
        for name, value in case.headers.items():
            conn.putheader(name, value.encode("utf-8"))
        body = case.body or b""
        if case.body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if case.body is not None else None)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None, response.getheader("Allow")
    finally:
        conn.close()


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            _http(port, Case("probe", "GET", "/api/resource/probe"))
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def _server_command(name: str, port: int) -> list[str]:
    if name == "restkit":
        return [sys.executable, "-m", "examples.demo", "--port", str(port)]
    if name == "restkit-cli":
        return [sys.executable, "-m", "restkit", "examples.demo.app:app", "--port", str(port)]
    if name == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "examples.demo.app:app"]
    if name == "uwsgi":
        return [str(UWSGI), "--http-socket", f"127.0.0.1:{port}", "--module", "examples.demo.app:app",
                "--need-app", "--disable-logging", "--chdir", str(ROOT)]
    return [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "examples.demo.app:app"]


@pytest.mark.parametrize("server", ["restkit", "restkit-cli", "gunicorn", "waitress", "uwsgi"])
def test_same_answers_over_a_socket(server: str) -> None:
    if server in ("gunicorn", "waitress"):
        pytest.importorskip(server, reason=f"{server} is a test dependency: pip install '.[test]'")
    if server == "uwsgi" and not UWSGI.exists():
        pytest.skip("uWSGI is a test dependency: pip install '.[test]' (it compiles; needs a C compiler)")
    client = make_client(make_app())
    expected = {}
    for case in CASES:
        response = _call(client, case)
        expected[case.id] = (response.status_int, response.json if response.body else None, response.headers.get("Allow"))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(_server_command(server, port), cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(port, process)
        for case in CASES:
            assert _http(port, case) == expected[case.id], case.id
    finally:
        stop_process(process)
