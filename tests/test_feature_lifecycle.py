"""The feature lifecycle (restkit.feature): one order of steps, router-made answers, the options registry."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from restkit import App, Request, Response, Router
from restkit.cors import CORS
from restkit.errors import BadRequest
from restkit.feature import SHIPPED_FEATURES, Feature
from restkit.ratelimit import MemoryStore, RateLimit
from restkit.routing import RouteError
from tests.conftest import wsgi_call

ROOT = Path(__file__).resolve().parents[1]
PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"}
ORIGIN = {"Origin": "https://app.example"}


# -- rate limiting does not depend on the order of app.use -------------------------------------


def rate_limited_app(order: str) -> App:
    app = App()
    cors = CORS(origins=["https://app.example"], credentials=True)
    # a clock that stands still: the same Reset and t= in both apps
    limit = RateLimit(4, window=60, store=MemoryStore(clock=lambda: 1000.0))
    for feature in ([cors, limit] if order == "cors first" else [limit, cors]):
        app.use(feature)

    @app.route("/items", methods=["GET", "PUT"])
    def items(request: Request) -> dict[str, int]:
        return {"count": 3}

    return app


# routed 200, 404, preflight, routed 200 (the 4th, last allowed), then 429 on each kind
SEQUENCE = [
    ("GET", "/items", ORIGIN),
    ("GET", "/missing", ORIGIN),
    ("OPTIONS", "/items", PREFLIGHT),
    ("GET", "/items", ORIGIN),
    ("GET", "/items", ORIGIN),
    ("GET", "/missing", ORIGIN),
    ("OPTIONS", "/items", PREFLIGHT),
]


def answers(app: App) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    found = []
    for method, path, headers in SEQUENCE:
        status, sent, body = wsgi_call(app, method, path, headers)
        found.append((status, sorted(sent.items()), body))
    return found


def test_cors_and_rate_limit_answer_the_same_in_either_order() -> None:
    first, second = answers(rate_limited_app("cors first")), answers(rate_limited_app("rate limit first"))
    assert [status for status, _, _ in first] == [200, 404, 204, 200, 429, 429, 429]
    assert first == second


def test_a_429_of_every_kind_carries_cors_and_rate_limit_headers() -> None:
    for status, headers, body in answers(rate_limited_app("cors first"))[4:]:
        sent = dict(headers)
        assert status == 429 and "more than 4 requests" in json.loads(body)["error"]
        assert sent["Access-Control-Allow-Origin"] == "https://app.example"
        assert sent["X-RateLimit-Remaining"] == "0" and "Retry-After" in sent
        assert "Access-Control-Allow-Methods" not in sent  # a refused preflight is no preflight answer


def test_the_router_answers_are_counted_once() -> None:
    app = rate_limited_app("cors first")
    remaining = [dict(wsgi_call(app, "GET", path, ORIGIN)[1])["X-RateLimit-Remaining"]
                 for path in ("/missing", "/items", "/missing")]
    assert remaining == ["3", "2", "1"]


def test_route_check_refusals_are_counted_and_skip_the_before_hooks() -> None:
    app = rate_limited_app("cors first")
    app.max_body_size = 4
    hooks: list[str] = []
    app.before_request(lambda request: hooks.append(request.path))
    status, headers, _ = wsgi_call(app, "PUT", "/items", {**ORIGIN, "Content-Type": "application/json"},
                                   b'{"a": 1}')
    assert status == 413 and headers["X-RateLimit-Remaining"] == "3"
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    status, headers, _ = wsgi_call(app, "GET", "/items", {"Accept": "text/html"})
    assert status == 406 and headers["X-RateLimit-Remaining"] == "2"
    assert hooks == []


def test_a_route_that_leaves_app_features_out_is_not_counted() -> None:
    app = rate_limited_app("cors first")
    app.get("/ping", app_features=False)(lambda request: {"ok": True})
    for _ in range(6):
        status, headers, _ = wsgi_call(app, "GET", "/ping", ORIGIN)
        assert status == 200 and "X-RateLimit-Remaining" not in headers


# -- after-hooks always get a Request ------------------------------------------------------


def test_an_answer_made_before_routing_reaches_error_handlers_and_after_hooks_with_a_request() -> None:
    app = App()
    seen: list[Any] = []

    @app.before_routing
    def refuse(environ: dict[str, Any]) -> None:
        if "HTTP_X_BAD" in environ:
            raise BadRequest("X-Bad is not allowed")

    @app.errorhandler(400)
    def explain(request: Request, error: Exception) -> tuple[dict[str, str], int]:
        seen.append(("handler", type(request).__name__, request.path, request.route))
        return {"error": str(error), "path": request.path}, 400

    @app.after_request
    def mark(request: Request, response: Response) -> None:
        seen.append(("after", type(request).__name__, request.path, request.route))
        response.set_header("X-Seen", request.method)

    app.get("/x")(lambda request: {})
    status, headers, body = wsgi_call(app, "GET", "/x", {"X-Bad": "1"})
    assert status == 400 and json.loads(body) == {"error": "X-Bad is not allowed", "path": "/x"}
    assert headers["X-Seen"] == "GET"
    assert seen == [("handler", "Request", "/x", None), ("after", "Request", "/x", None)]


def test_no_type_ignore_hides_a_missing_request() -> None:
    assert "type: ignore[arg-type]" not in (ROOT / "restkit" / "app.py").read_text()


# -- the hooks run in the documented order -------------------------------------------------


class Recorder(Feature):
    """A feature with every step, recording the order they run in."""

    router_answers = True

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def before_routing(self, environ: dict[str, Any]) -> None:
        self.log.append("1 before_routing")

    def before(self, request: Request) -> None:
        self.log.append("2 before")

    def preempt(self, request: Request, result: Any) -> Any:
        self.log.append("4 preempt")
        return result

    def after(self, request: Request, response: Response) -> Response:
        self.log.append("5 after")
        return response

    def after_request(self, request: Request, response: Response) -> Response:
        self.log.append("6 after_request")
        return response


def recorded_app(log: list[str]) -> App:
    app = App()
    app.use(Recorder(log))
    app.before_request(lambda request: log.append("3 before_request"))

    @app.get("/x")
    def show(request: Request) -> dict[str, str]:
        log.append("handler")
        return {}

    app.observe_responses(lambda request, environ, status, body, started: log.append("7 observe " + status[:3]))
    return app


@pytest.mark.parametrize(("path", "method", "expected"), [
    ("/x", "GET", ["1 before_routing", "2 before", "3 before_request", "handler", "4 preempt", "5 after",
                   "6 after_request", "7 observe 200"]),
    ("/nowhere", "GET", ["1 before_routing", "2 before", "3 before_request", "5 after", "6 after_request",
                         "7 observe 404"]),
    ("/x", "DELETE", ["1 before_routing", "2 before", "3 before_request", "5 after", "6 after_request",
                      "7 observe 405"]),
    ("/x", "OPTIONS", ["1 before_routing", "2 before", "3 before_request", "5 after", "6 after_request",
                       "7 observe 204"]),
], ids=["routed", "404", "405", "OPTIONS"])
def test_the_steps_run_in_the_documented_order(path: str, method: str, expected: list[str]) -> None:
    log: list[str] = []
    wsgi_call(recorded_app(log), method, path)
    assert log == expected


def test_the_documented_table_names_every_step() -> None:
    from restkit import feature

    doc = feature.__doc__ or ""
    readme = (ROOT / "README.md").read_text()
    for step in ("before_routing(environ)", "before(request)", "before_request(request)", "preempt(request, result)",
                 "after(request, response)", "observe_responses("):
        assert step in doc, step
    for hook in ("Feature.before_routing(environ)", "Feature.before(request)", "@app.before_request",
                 "Feature.preempt(request, result)", "Feature.after(request, response)",
                 "Feature.after_request(request, response)", "app.observe_responses"):
        assert hook in readme, hook


def test_shipped_features_register_no_app_hooks_in_install() -> None:
    """Their request steps are Feature methods, so the documented order is the only order."""
    for name in ("cors", "compression", "ratelimit", "proxy", "requestid", "health"):
        source = (ROOT / "restkit" / f"{name}.py").read_text()
        assert not re.search(r"app\.(after_request|before_request|before_routing)\(", source), name


# -- one registry of route options ---------------------------------------------------------


def test_the_router_and_the_app_name_no_feature() -> None:
    for name in ("routing.py", "app.py"):
        tree = ast.parse((ROOT / "restkit" / name).read_text())
        type_checking = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                         and node.name == "RouteOptions"]
        hidden = {id(n) for block in type_checking for n in ast.walk(block)}
        literals = {node.value for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in hidden}
        assert not literals & set(SHIPPED_FEATURES), name


class Tenant(Feature):
    option = "tenant"
    option_takes = "a Tenant(...), or None"

    def before(self, request: Request) -> None:
        request.context["tenant"] = "acme"


def test_a_feature_of_ones_own_declares_its_route_option() -> None:
    app = App()

    @app.get("/mine", tenant=Tenant())  # type: ignore[call-arg]
    def mine(request: Request) -> dict[str, Any]:
        return {"tenant": request.context.get("tenant")}

    assert json.loads(wsgi_call(app, "GET", "/mine")[2]) == {"tenant": "acme"}
    with pytest.raises(RouteError, match=r"unknown route option tenant= .*route options are .*rate_limit"):
        Router().add_route("/x", lambda request: {}, tenant=None)  # type: ignore[call-arg]


def test_app_use_registers_the_option_of_the_feature_it_installs() -> None:
    app = App()
    app.use(Tenant())
    def show(request: Request) -> dict[str, Any]:
        return {"tenant": request.context.get("tenant")}

    app.add_route("/public", show, name="public", tenant=None)  # type: ignore[call-arg]
    app.add_route("/private", show, name="private")
    assert json.loads(wsgi_call(app, "GET", "/public")[2]) == {"tenant": None}
    assert json.loads(wsgi_call(app, "GET", "/private")[2]) == {"tenant": "acme"}
    with pytest.raises(RouteError, match=r"tenant= for GET '/bad' must be a Tenant\(\.\.\.\), or None, not 3"):
        app.add_route("/bad", show, name="bad", tenant=3)  # type: ignore[call-arg]
    assert "tenant" in app.router.feature_options.names()


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("rate_limit", 5, "a RateLimit(...), or None"),
    ("conditional", "yes", "True, a Conditional(...), or None"),
    ("auth", "secret", "an auth feature (e.g. Bearer(...)), or None"),
])
def test_shipped_options_are_checked_by_their_classes(option: str, value: Any, expected: str) -> None:
    with pytest.raises(RouteError, match=re.escape(f"must be {expected}, not {value!r}")):
        Router().add_route("/x", lambda request: {}, **{option: value})


def test_no_private_imports_across_restkit_modules() -> None:
    private = re.compile(r"from \.+[\w.]* import [^\n#]*\b_[a-z]")
    offenders = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path in sorted((ROOT / "restkit").rglob("*.py"))
                 for match in private.finditer(path.read_text())]
    assert offenders == []
