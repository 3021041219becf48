"""restkit.app: the request cycle: 404/405/OPTIONS/HEAD, 406, slashes, hooks, error handlers, 500s."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import Callable, Iterable
from typing import Any

from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from restkit import (
    App,
    BadRequest,
    Conflict,
    HTTPError,
    NotFound,
    Request,
    Response,
    Router,
    UnprocessableEntity,
)

from tests.conftest import make_client


def zoo_app(**options: Any) -> App:
    app = App(**options)

    @app.get("/zoos")
    def list_zoos(request: Request) -> list[dict[str, Any]]:
        return [{"id": 1}]

    @app.post("/zoos")
    def create_zoo(request: Request) -> tuple[dict[str, Any], int]:
        return request.json, 201

    @app.get("/zoos/<int:zoo_id>")
    def show_zoo(request: Request, zoo_id: int) -> dict[str, Any]:
        if zoo_id > 100:
            raise NotFound(f"zoo {zoo_id} does not exist")
        return {"id": zoo_id}

    @app.delete("/zoos/<int:zoo_id>")
    def delete_zoo(request: Request, zoo_id: int) -> None:
        return None

    @app.get("/animals/")
    def animals(request: Request) -> list[Any]:
        return []

    @app.get("/page", produces="text/html")
    def page(request: Request) -> Response:
        return Response.html("<h1>Zoo</h1>")

    @app.get("/raw", produces=None)
    def raw(request: Request) -> bytes:
        return b"raw"

    @app.get("/boom")
    def boom(request: Request) -> None:
        raise RuntimeError("secret database password in this message")

    @app.get("/ok")
    def ok(request: Request) -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.fixture
def client() -> Any:
    return make_client(zoo_app())


def still_serves(client: Any) -> None:
    assert client.get("/ok").json == {"ok": True}


# -- 404 / 405 / OPTIONS / HEAD -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nothing", "/zoos/abc", "/zoos/1/extra", "/", "/zoos/-1"],
                         ids=["unknown", "unconvertible", "too-deep", "root", "negative"])
def test_404_is_json(client: Any, path: str) -> None:
    resp = client.get(path, status=404)
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.json == {"error": f"no resource at {path}"}
    still_serves(client)


def test_404_raised_by_handler(client: Any) -> None:
    assert client.get("/zoos/101", status=404).json == {"error": "zoo 101 does not exist"}


@pytest.mark.parametrize(
    "method, path, allow",
    [("put", "/zoos", "GET, HEAD, OPTIONS, POST"), ("post", "/zoos/1", "DELETE, GET, HEAD, OPTIONS"),
     ("delete", "/ok", "GET, HEAD, OPTIONS"), ("patch", "/zoos/3", "DELETE, GET, HEAD, OPTIONS")],
    ids=["put-collection", "post-item", "delete-static", "patch-item"],
)
def test_405_with_allow(client: Any, method: str, path: str, allow: str) -> None:
    resp = getattr(client, method)(path, status=405)
    assert resp.headers["Allow"] == allow
    assert resp.json == {"error": f"method {method.upper()} is not allowed for {path}; allowed: {allow}"}
    still_serves(client)


@pytest.mark.parametrize(
    "path, allow",
    [("/zoos", "GET, HEAD, OPTIONS, POST"), ("/zoos/7", "DELETE, GET, HEAD, OPTIONS"), ("/ok", "GET, HEAD, OPTIONS")],
    ids=["collection", "item", "static"],
)
def test_options_204_with_allow(client: Any, path: str, allow: str) -> None:
    resp = client.options(path, status=204)
    assert resp.headers["Allow"] == allow
    assert resp.body == b""


def test_options_on_unknown_path_is_404(client: Any) -> None:
    assert client.options("/nothing", status=404).json == {"error": "no resource at /nothing"}


def test_explicit_options_route_wins() -> None:
    app = App()

    @app.route("/cors", methods=["OPTIONS"])
    def preflight(request: Request) -> Response:
        return Response(b"", 200, {"Access-Control-Allow-Origin": "*"})

    resp = make_client(app).options("/cors")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_head_has_no_body_but_content_length(client: Any) -> None:
    get = client.get("/zoos/5")
    head = client.head("/zoos/5")
    assert head.status_int == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"] == str(len(get.body))
    assert head.headers["Content-Type"] == "application/json; charset=utf-8"


def test_head_of_errors_has_no_body(client: Any) -> None:
    resp = client.head("/nothing", status=404)
    assert resp.body == b""
    resp = client.head("/boom", status=500)
    assert resp.body == b""
    still_serves(client)


# -- 406 -----------------------------------------------------------------------------------------

NEGOTIATION = [
    ("/zoos", "text/html", 406),
    ("/zoos", "image/png, text/*", 406),
    ("/zoos", "application/json;q=0, text/html", 406),
    ("/zoos", "application/json", 200),
    ("/zoos", "*/*", 200),
    ("/zoos", "application/*", 200),
    ("/zoos", "text/html;q=0.9, application/json;q=0.1", 200),
    ("/zoos", "text/html, */*;q=0.01", 200),
    ("/zoos", "", 200),
    ("/page", "text/html", 200),
    ("/page", "application/json", 406),
    ("/page", "text/*", 200),
    ("/raw", "image/png", 200),
]


@pytest.mark.parametrize("path, accept, code", NEGOTIATION,
                         ids=[f"{p}-{a or 'empty'}-{c}" for p, a, c in NEGOTIATION])
def test_content_negotiation(client: Any, path: str, accept: str, code: int) -> None:
    resp = client.get(path, headers={"Accept": accept}, status=code)
    if code == 406:
        assert resp.json["error"].startswith("this resource is only available as ")
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    still_serves(client)


def test_no_accept_header_is_fine(client: Any) -> None:
    assert client.get("/zoos").json == [{"id": 1}]
    assert client.get("/page").text == "<h1>Zoo</h1>"


def test_406_before_the_handler_runs() -> None:
    app = App()
    calls = []

    @app.post("/things")
    def create(request: Request) -> dict[str, Any]:
        calls.append(1)
        return {}

    client = make_client(app)
    client.post("/things", b"", headers={"Accept": "text/html"}, status=406)
    assert calls == []


# -- trailing slashes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, location",
    [("/zoos/", "/zoos"), ("/zoos/?page=2&sort=name", "/zoos?page=2&sort=name"), ("/animals", "/animals/"),
     ("/animals?x=%20", "/animals/?x=%20"), ("/zoos/5/", "/zoos/5")],
    ids=["strip", "strip-keeps-query", "add", "add-keeps-query", "strip-param-route"],
)
def test_trailing_slash_redirects_308(client: Any, url: str, location: str) -> None:
    resp = client.get(url, status=308)
    assert resp.headers["Location"].endswith(location)
    still_serves(client)


def test_redirect_keeps_method_and_script_name(client: Any) -> None:
    resp = client.post("/zoos/", b"{}", headers={"Content-Type": "application/json"}, status=308)
    assert resp.headers["Location"].endswith("/zoos")
    resp = client.get("/zoos/", extra_environ={"SCRIPT_NAME": "/api"}, status=308)
    assert resp.headers["Location"].endswith("/api/zoos")


@pytest.mark.parametrize(
    "query, location",
    [("a=1&b=%20x", "/zoos?a=1&b=%20x"), ("a\rb", "/zoos?a%0Db"), ("q=caf\xc3\xa9", "/zoos?q=caf%C3%A9"),
     ("x=<y>", "/zoos?x=%3Cy%3E")],
    ids=["escapes-kept", "cr-escaped", "raw-utf8", "angle-brackets"],
)
def test_redirect_query_is_safe_in_a_header(query: str, location: str) -> None:
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/zoos/", "QUERY_STRING": query}
    setup_testing_defaults(environ)
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured.update(status=status, headers=dict(headers))

    body = validator(zoo_app())(environ, start_response)
    body.close()
    assert captured["status"] == "308 Permanent Redirect"
    assert captured["headers"]["Location"] == location


def test_redirect_to_a_utf8_path_is_encoded() -> None:
    app = App()
    app.add_route("/café", lambda request: {"ok": True}, name="cafe")
    resp = make_client(app).get("/caf%C3%A9/", status=308)
    assert resp.headers["Location"].endswith("/caf%C3%A9")


def test_no_redirect_when_other_form_is_missing_too(client: Any) -> None:
    assert client.get("/nothing/", status=404).json == {"error": "no resource at /nothing/"}


def test_redirect_slashes_false_gives_404() -> None:
    client = make_client(zoo_app(redirect_slashes=False))
    assert client.get("/zoos/", status=404).json == {"error": "no resource at /zoos/"}
    assert client.get("/animals", status=404).json == {"error": "no resource at /animals"}
    assert client.get("/zoos").json == [{"id": 1}]


# -- hooks ---------------------------------------------------------------------------------------------


def test_before_hook_runs_with_route_and_can_share_context() -> None:
    app = App()
    seen: list[Any] = []

    @app.before_request
    def load_user(request: Request) -> None:
        seen.append((request.route.name if request.route else None, dict(request.params)))
        request.context["user"] = "alice"

    @app.get("/me/<int:n>")
    def me(request: Request, n: int) -> dict[str, Any]:
        return {"user": request.context["user"], "n": n}

    client = make_client(app)
    assert client.get("/me/3").json == {"user": "alice", "n": 3}
    assert seen == [("me", {"n": 3})]
    client.get("/nothing", status=404)
    assert seen[1:] == [(None, {})]  # before-hooks run for unrouted requests too, with route None


def test_before_routing_hooks_change_the_environ_for_everything_after_them() -> None:
    app = App()

    @app.before_routing
    def tenant_prefix(environ: dict[str, Any]) -> None:
        if environ.get("HTTP_X_REFUSE"):
            raise BadRequest("refused before routing")
        environ["PATH_INFO"] = environ["PATH_INFO"].removeprefix("/acme")  # routing sees the rewritten path

    @app.get("/me")
    def me(request: Request) -> dict[str, str]:
        return {"path": request.path}

    client = make_client(app)
    assert client.get("/acme/me").json == {"path": "/me"}
    assert client.get("/acme/nothing", status=404).json == {"error": "no resource at /nothing"}
    assert client.get("/acme/me", headers={"X-Refuse": "1"}, status=400).json == {"error": "refused before routing"}


@pytest.mark.parametrize(
    "early, code, body",
    [({"error": "maintenance"}, 200, {"error": "maintenance"}), (({"error": "slow down"}, 429), 429, {"error": "slow down"}),
     (Response.json({"cached": True}, 203), 203, {"cached": True})],
    ids=["dict", "tuple", "response"],
)
def test_before_hook_short_circuits(early: Any, code: int, body: Any) -> None:
    app = App()
    called = []

    @app.before_request
    def gate(request: Request) -> Any:
        return early if request.path == "/gated" else None

    @app.get("/gated")
    def gated(request: Request) -> dict[str, Any]:
        called.append(1)
        return {"handler": True}

    @app.get("/open")
    def open_(request: Request) -> dict[str, Any]:
        return {"open": True}

    client = make_client(app)
    assert client.get("/gated", status=code).json == body
    assert called == []
    assert client.get("/open").json == {"open": True}


def test_after_hooks_run_in_order_and_on_errors() -> None:
    app = App()
    log: list[tuple[str, int]] = []

    @app.after_request
    def first(request: Request | None, response: Response) -> None:
        log.append(("first", response.status))
        response.set_header("X-First", "1")

    @app.after_request
    def second(request: Request | None, response: Response) -> Response:
        log.append(("second", response.status))
        response.set_header("X-Second", response.get_header("X-First") or "missing")
        return response

    @app.get("/ok")
    def ok(request: Request) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/conflict")
    def conflict(request: Request) -> None:
        raise Conflict("taken")

    client = make_client(app)
    for path, code in [("/ok", 200), ("/conflict", 409), ("/nothing", 404)]:
        resp = client.get(path, status=code)
        assert resp.headers["X-First"] == "1"
        assert resp.headers["X-Second"] == "1"
    assert log == [("first", 200), ("second", 200), ("first", 409), ("second", 409), ("first", 404), ("second", 404)]
    resp = client.put("/ok", status=405)
    assert resp.headers["X-Second"] == "1" and resp.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_after_hook_may_replace_the_response() -> None:
    app = App()
    app.add_route("/ok", lambda request: {"ok": True}, name="ok")
    app.after_request(lambda request, response: Response.text("replaced", 202))
    resp = make_client(app).get("/ok", status=202)
    assert resp.text == "replaced"


def test_after_hook_sees_uncaught_exceptions_as_500() -> None:
    app = App()
    statuses = []
    app.add_route("/boom", lambda request: 1 / 0, name="boom")

    @app.after_request
    def record(request: Request, response: Response) -> None:
        statuses.append(response.status)

    @app.after_request
    def cors(request: Request, response: Response) -> None:
        response.set_header("Access-Control-Allow-Origin", "*")

    resp = make_client(app).get("/boom", status=500)
    assert resp.json == {"error": "internal server error"}
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert statuses == [500]


def test_hooks_and_handlers_get_a_request_for_a_non_utf8_path() -> None:
    app = App()
    app.add_route("/ok", lambda request: {"ok": True}, name="ok")
    seen = []

    @app.errorhandler(400)
    def bad(request: Request, exc: BaseException) -> tuple[dict[str, Any], int]:
        return {"error": str(exc), "method": request.method}, 400

    @app.after_request
    def record(request: Request, response: Response) -> None:
        seen.append((request.method, response.status))

    client = make_client(app)
    resp = client.get("/caf%E9", status=400)
    assert resp.json == {"error": "request path is not valid UTF-8", "method": "GET"}
    assert seen == [("GET", 400)]
    assert client.get("/ok").json == {"ok": True}


def test_after_hook_that_raises_gives_500(caplog: pytest.LogCaptureFixture) -> None:
    app = App()
    app.add_route("/ok", lambda request: {"ok": True}, name="ok")

    @app.after_request
    def broken(request: Request, response: Response) -> None:
        raise RuntimeError("hook bug")

    resp = make_client(app).get("/ok", status=500)
    assert resp.json == {"error": "internal server error"}
    assert "hook bug" in caplog.text


def test_before_hook_that_raises_gives_500(caplog: pytest.LogCaptureFixture) -> None:
    app = App()
    app.add_route("/ok", lambda request: {"ok": True}, name="ok")
    app.before_request(lambda request: 1 / 0)
    resp = make_client(app).get("/ok", status=500)
    assert resp.json == {"error": "internal server error"}
    assert "ZeroDivisionError" in caplog.text


def test_hooks_return_the_function() -> None:
    app = App()

    def hook(request: Request) -> None:
        return None

    assert app.before_request(hook) is hook


# -- error handlers ---------------------------------------------------------------------------------


class ZooError(Exception):
    pass


class ClosedZoo(ZooError):
    pass


def handlers_app() -> App:
    app = App()

    @app.get("/missing")
    def missing(request: Request) -> None:
        raise NotFound("no zoo")

    @app.get("/closed")
    def closed(request: Request) -> None:
        raise ClosedZoo("closed today")

    @app.get("/zoo-error")
    def zoo_error(request: Request) -> None:
        raise ZooError("generic")

    @app.get("/invalid")
    def invalid(request: Request) -> None:
        raise UnprocessableEntity("bad", details={"a": "b"})

    @app.get("/bad")
    def bad(request: Request) -> None:
        raise BadRequest("plain")

    @app.get("/ok")
    def ok(request: Request) -> dict[str, bool]:
        return {"ok": True}

    @app.errorhandler(404)
    def not_found(request: Request, exc: BaseException) -> tuple[dict[str, Any], int]:
        return {"message": str(exc), "path": request.path}, 404

    @app.errorhandler(ZooError)
    def zoo(request: Request, exc: BaseException) -> tuple[dict[str, Any], int]:
        return {"zoo": type(exc).__name__, "message": str(exc)}, 503

    @app.errorhandler(UnprocessableEntity)
    def unprocessable(request: Request, exc: BaseException) -> Response:
        assert isinstance(exc, HTTPError)
        return Response.json({"problems": exc.fields["details"]}, 400)

    return app


HANDLED = [
    ("/missing", 404, {"message": "no zoo", "path": "/missing"}),
    ("/nothing", 404, {"message": "no resource at /nothing", "path": "/nothing"}),
    ("/closed", 503, {"zoo": "ClosedZoo", "message": "closed today"}),
    ("/zoo-error", 503, {"zoo": "ZooError", "message": "generic"}),
    ("/invalid", 400, {"problems": {"a": "b"}}),
    ("/bad", 400, {"error": "plain"}),
]


@pytest.mark.parametrize("path, code, body", HANDLED,
                         ids=["status-raised", "status-router", "class-via-mro", "class-exact", "http-error-class",
                              "unhandled-http-error"])
def test_error_handlers(path: str, code: int, body: Any) -> None:
    client = make_client(handlers_app())
    assert client.get(path, status=code).json == body
    assert client.get("/ok").json == {"ok": True}


def test_class_handler_beats_status_handler() -> None:
    app = App()

    @app.get("/x")
    def x(request: Request) -> None:
        raise NotFound("x")

    app.add_error_handler(404, lambda request, exc: ({"by": "status"}, 404))
    app.add_error_handler(NotFound, lambda request, exc: ({"by": "class"}, 404))
    assert make_client(app).get("/x", status=404).json == {"by": "class"}


def test_handler_for_exception_catches_everything() -> None:
    app = App()
    app.add_route("/boom", lambda request: 1 / 0, name="boom")
    app.add_error_handler(Exception, lambda request, exc: ({"caught": type(exc).__name__}, 500))
    client = make_client(app)
    assert client.get("/boom", status=500).json == {"caught": "ZeroDivisionError"}
    assert client.get("/nothing", status=500).json == {"caught": "NotFound"}  # HTTPError is an Exception too


def test_error_handler_that_raises_gives_500(caplog: pytest.LogCaptureFixture) -> None:
    app = App()
    app.add_route("/x", lambda request: 1 / 0, name="x")
    app.add_error_handler(ZeroDivisionError, lambda request, exc: {}["missing"])
    resp = make_client(app).get("/x", status=500)
    assert resp.json == {"error": "internal server error"}


def test_error_handler_registration_is_checked() -> None:
    with pytest.raises(TypeError):
        App().add_error_handler("404", lambda request, exc: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        App().add_error_handler(str, lambda request, exc: None)  # type: ignore[arg-type]


# -- uncaught exceptions ---------------------------------------------------------------------------------


def test_uncaught_exception_is_500_without_traceback(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="restkit"):
        resp = client.get("/boom", status=500)
    assert resp.json == {"error": "internal server error"}
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert b"Traceback" not in resp.body and b"secret" not in resp.body
    records = [r for r in caplog.records if r.name == "restkit" and r.levelno == logging.ERROR]
    assert len(records) == 1
    assert records[0].exc_info is not None and records[0].exc_info[0] is RuntimeError
    assert "Traceback" in caplog.text and "secret database password" in caplog.text
    still_serves(client)


def test_debug_includes_traceback() -> None:
    client = make_client(zoo_app(debug=True))
    resp = client.get("/boom", status=500)
    assert resp.json["error"] == "internal server error"
    trace = "".join(resp.json["traceback"])
    assert "Traceback" in trace and "RuntimeError: secret database password" in trace
    still_serves(client)


# -- WSGI middleware ------------------------------------------------------------------------------------------


def header_middleware(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Plain PEP 3333 middleware: adds a header and rewrites a path prefix."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"].startswith("/legacy/"):
            environ["PATH_INFO"] = environ["PATH_INFO"][len("/legacy"):]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, headers + [("X-Middleware", "yes")], *([exc_info] if exc_info else []))

        return app(environ, start)

    return middleware


def test_wsgi_middleware_wraps_the_app() -> None:
    client = make_client(header_middleware(zoo_app()))
    resp = client.get("/zoos/4")
    assert resp.json == {"id": 4} and resp.headers["X-Middleware"] == "yes"
    assert client.get("/legacy/zoos/4").json == {"id": 4}
    resp = client.get("/nothing", status=404)
    assert resp.headers["X-Middleware"] == "yes"
    assert client.get("/boom", status=500).json == {"error": "internal server error"}
    assert client.head("/zoos/4").body == b""


def test_app_serves_under_a_script_name_via_request_url_for() -> None:
    app = App()
    v1 = Router()
    app.mount("/v1", v1)

    @v1.get("/zoos/<int:zoo_id>")
    def show_zoo(request: Request, zoo_id: int) -> dict[str, str]:
        return {"self": request.url_for("show_zoo", zoo_id=zoo_id, _external=True)}

    resp = make_client(app).get("/v1/zoos/3", extra_environ={"SCRIPT_NAME": "/api", "HTTP_HOST": "zoo.test"})
    assert resp.json == {"self": "http://zoo.test/api/v1/zoos/3"}


# -- keeps serving --------------------------------------------------------------------------------------------


def test_app_keeps_serving_after_every_kind_of_error(client: Any) -> None:
    for _ in range(3):
        client.get("/boom", status=500)
        client.get("/nothing", status=404)
        client.put("/zoos", status=405)
        client.get("/zoos", headers={"Accept": "text/html"}, status=406)
        client.post("/zoos", b"{bad", headers={"Content-Type": "application/json"}, status=400)
        client.post("/zoos", b"{}", headers={"Content-Type": "text/plain"}, status=415)
        client.get("/zoos/", status=308)
        still_serves(client)
    assert client.post("/zoos", b'{"name": "x"}', headers={"Content-Type": "application/json"}, status=201).json == {
        "name": "x"}


def test_413_from_content_length_before_handler() -> None:
    app = App(max_body_size=4)
    called = []

    @app.post("/upload")
    def upload(request: Request) -> dict[str, int]:
        called.append(1)
        return {"n": len(request.body)}

    client = make_client(app)
    resp = client.post("/upload", b"12345", status=413)
    assert resp.json == {"error": "request body is 5 bytes; the limit is 4"}
    assert called == []
    assert client.post("/upload", b"1234").json == {"n": 4}


# -- every 500 log line says what was being served ------------------------------------------------


@pytest.mark.parametrize(
    "path, where",
    [
        ("/boom", "GET /boom (handler tests.test_app.zoo_app.<locals>.boom)"),
        ("/zoos/1/fail-in-hook", "GET /zoos/1/fail-in-hook (no handler)"),
    ],
    ids=["in-a-handler", "in-a-hook-before-routing-found-nothing"],
)
def test_500_log_line_names_method_path_and_handler(path: str, where: str, caplog: pytest.LogCaptureFixture) -> None:
    app = zoo_app()

    @app.before_request
    def fail_on_unrouted(request: Request) -> None:
        if request.route is None:
            raise KeyError("no route")

    make_client(app).get(path, status=500)
    (record,) = [r for r in caplog.records if r.name == "restkit"]
    assert record.getMessage().startswith(f"500 on {where}: ")


# -- with debug=True, answers are checked against responses= ---------------------------------------


@dataclass
class Zoo:
    id: int
    name: str


def declared_app(result: Any, **options: Any) -> App:
    app = App(**options)

    @app.post("/zoos", responses={201: Zoo, 204: None})
    def create_zoo(request: Request) -> Any:
        return result

    return app


MISMATCHES = [
    ("undeclared-status", ({"id": 1, "name": "x"}, 200), "answered 200, but its responses= declares only 201, 204"),
    ("wrong-field-type", ({"id": "one", "name": "x"}, 201), "answered 201 with a body that is not a Zoo: id: must be an integer"),
    ("missing-field", ({"id": 1}, 201), "answered 201 with a body that is not a Zoo: name: required"),
    ("extra-field", ({"id": 1, "name": "x", "age": 3}, 201), "answered 201 with a body that is not a Zoo: age: unknown field"),
    ("body-for-204", ("text", 204), "answered 204 with a body, but responses= declares none for 204"),
    ("text-for-a-model", ("text", 201), "answered 201 with str, but responses= declares Zoo"),
]


@pytest.mark.parametrize("result, message", [c[1:] for c in MISMATCHES], ids=[c[0] for c in MISMATCHES])
def test_debug_checks_answers_against_responses(result: Any, message: str) -> None:
    body = make_client(declared_app(result, debug=True)).post("/zoos", status=500).json
    assert body["detail"] == (
        f"ResponseMismatch: handler tests.test_app.declared_app.<locals>.create_zoo for '/zoos' {message}"
    )


@pytest.mark.parametrize(
    "result, status",
    [(({"id": 1, "name": "x"}, 201), 201), ((Zoo(2, "y"), 201), 201), (None, 204), ((Response(b"", 201)), 201)],
    ids=["dict", "dataclass", "none", "response-object"],
)
def test_debug_accepts_declared_answers(result: Any, status: int) -> None:
    make_client(declared_app(result, debug=True)).post("/zoos", status=status)


def test_without_debug_responses_are_documentation_only() -> None:
    make_client(declared_app(({"id": "one"}, 200))).post("/zoos", status=200)


# -- hooks: the order, and before-hooks on answers no handler gives ------------------------------


def test_hook_order_for_every_kind_of_answer() -> None:
    app = App()
    seen: list[str] = []

    @app.before_request
    def before(request: Request) -> None:
        seen.append(f"before {request.method} {request.route.name if request.route else None}")

    @app.after_request
    def after(request: Request, response: Response) -> None:
        seen.append(f"after {response.status}")

    @app.errorhandler(404)
    def not_found(request: Request, error: BaseException) -> Any:
        seen.append("errorhandler 404")
        return {"error": "nothing"}, 404

    @app.get("/zoos")
    def list_zoos(request: Request) -> Any:
        seen.append("handler")
        return []

    client = make_client(app)
    client.get("/zoos")
    client.delete("/zoos", status=405)
    client.options("/zoos", status=204)
    client.get("/nothing", status=404)
    client.get("/zoos/", status=308)
    assert seen == [
        "before GET list_zoos", "handler", "after 200",
        "before DELETE None", "after 405",
        "before OPTIONS None", "after 204",
        "before GET None", "errorhandler 404", "after 404",
        "before GET None", "after 308",
    ]


def test_before_hook_can_answer_an_automatic_options() -> None:
    app = App()

    @app.before_request
    def preflight(request: Request) -> Any:
        if request.method == "OPTIONS":
            return Response(b"", 204, {"Access-Control-Allow-Origin": "*"})
        return None

    @app.get("/zoos")
    def list_zoos(request: Request) -> Any:
        return []

    assert make_client(app).options("/zoos", status=204).headers["Access-Control-Allow-Origin"] == "*"
