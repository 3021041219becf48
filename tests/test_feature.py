"""restkit.feature: app.use, route options, the order of the steps, and what the API document gains."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from restkit import App, Response, RouteError, Router
from restkit.feature import Feature
from tests.conftest import wsgi_call

ROOT = Path(__file__).resolve().parent.parent


class Recorder(Feature):
    """Records the order its steps run in."""

    def __init__(self, name: str, stage: int, log: list[str], option: str | None = None) -> None:
        self.name, self.stage, self.log = name, stage, log
        self.option = option  # type: ignore[misc]

    def before(self, request: Any) -> None:
        self.log.append(f"before {self.name}")

    def after(self, request: Any, response: Response) -> Response:
        self.log.append(f"after {self.name} {response.status}")
        return response


def test_steps_run_by_stage_around_the_hooks_and_the_handler() -> None:
    log: list[str] = []
    app = App()
    app.use(Recorder("late", 40, log))
    app.use(Recorder("early", 10, log))
    app.before_request(lambda request: log.append("hook") and None)

    @app.get("/x")
    def x(request: Any) -> dict[str, bool]:
        log.append("handler")
        return {"ok": True}

    assert wsgi_call(app, "GET", "/x")[0] == 200
    assert log == ["before early", "before late", "hook", "handler", "after late 200", "after early 200"]


def test_errors_reach_the_after_steps_through_the_error_handlers() -> None:
    log: list[str] = []
    app = App()
    app.use(Recorder("f", 10, log))
    app.add_error_handler(KeyError, lambda request, exc: ({"error": "no such key"}, 404))

    @app.get("/x")
    def x(request: Any) -> None:
        raise KeyError("k")

    @app.get("/y")
    def y(request: Any) -> None:
        raise RuntimeError("bug")

    assert wsgi_call(app, "GET", "/x")[0] == 404
    assert log[-1] == "after f 404"
    assert wsgi_call(app, "GET", "/y")[0] == 500  # no handler: a logged 500, as without features


def test_a_route_option_replaces_the_app_wide_feature() -> None:
    log: list[str] = []
    app = App()
    app.use(Recorder("app", 10, log, option="auth"))

    @app.get("/open", auth=None)
    def open_(request: Any) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/own", auth=Recorder("route", 20, log, option="auth"))
    def own(request: Any) -> dict[str, bool]:
        return {"ok": True}

    wsgi_call(app, "GET", "/open")
    assert log == []
    wsgi_call(app, "GET", "/own")
    assert log == ["before route", "after route 200"]


def test_router_defaults_reach_every_route_and_mounts() -> None:
    log: list[str] = []
    guard = Recorder("guard", 20, log, option="auth")
    api = Router(defaults={"auth": guard})

    @api.get("/a")
    def a(request: Any) -> dict[str, bool]:
        return {"ok": True}

    @api.get("/b", auth=None)
    def b(request: Any) -> dict[str, bool]:
        return {"ok": True}

    app = App()
    app.mount("/v1", api)
    wsgi_call(app, "GET", "/v1/a")
    wsgi_call(app, "GET", "/v1/b")
    assert log == ["before guard", "after guard 200"]


def test_a_feature_option_must_hold_a_feature() -> None:
    app = App()
    with pytest.raises(RouteError, match=r"route option auth= for GET '/x' must be an auth feature \(e.g. Bearer\(...\)\), or None, not 's3cret'"):

        @app.get("/x", auth="s3cret")
        def x(request: Any) -> None:
            return None

    with pytest.raises(RouteError, match=r"route option paging= for Router\(defaults=...\) must be a paging feature"):
        Router(defaults={"paging": 20})
    assert app.router.routes == []


def test_routes_added_after_use_get_the_feature() -> None:
    log: list[str] = []
    app = App()

    @app.get("/before")
    def before(request: Any) -> dict[str, bool]:
        return {"ok": True}

    wsgi_call(app, "GET", "/before")
    app.use(Recorder("f", 10, log))
    wsgi_call(app, "GET", "/before")
    assert log == ["before f", "after f 200"]


# -- the API document ---------------------------------------------------------------------


@dataclass
class Inner:
    x: int


@dataclass
class Thing:
    name: str
    inner: Inner


def test_ignoring_unknown_fields_is_not_documented_as_refusing_them() -> None:
    app = App()

    @app.post("/strict", body=Thing, responses={201: Thing})
    def strict(request: Any, body: Thing) -> Any:
        return body, 201

    @app.post("/lenient", body=Thing, unknown_fields="ignore")
    def lenient(request: Any, body: Thing) -> Any:
        return body

    @app.patch("/lenient", body=Thing, unknown_fields="ignore", partial=True)
    def patch(request: Any, body: Thing) -> Any:
        return {}

    document = app.openapi()
    schemas = document["components"]["schemas"]
    assert schemas["Thing"]["additionalProperties"] is False and schemas["Inner"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["ThingLenient"]
    assert "additionalProperties" not in schemas["InnerLenient"]
    assert schemas["ThingLenient"]["properties"]["inner"] == {"$ref": "#/components/schemas/InnerLenient"}
    lenient = document["paths"]["/lenient"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert lenient == {"$ref": "#/components/schemas/ThingLenient"}
    patched = document["paths"]["/lenient"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert "additionalProperties" not in patched and "required" not in patched
    created = document["paths"]["/strict"]["post"]["responses"]["201"]
    assert created["headers"]["Location"]["schema"] == {"type": "string"}
    pytest.importorskip("openapi_spec_validator").validate(document)


def test_features_load_on_first_use() -> None:
    probe = (
        "import sys; import restkit\n"
        "from restkit import App\n"
        "app = App(); app.get('/x')(lambda request: {})\n"
        "loaded = {'restkit.feature', 'restkit.auth', 'restkit.paging', 'restkit.cors', 'restkit.ratelimit',"
        " 'restkit.conditional', 'restkit.compression', 'zlib', 'hmac', 'hashlib'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_typed_route_options_are_the_router_options_and_the_shipped_features() -> None:
    """RouteOptions (for type checkers) is written out by hand: it must list what the registries hold."""
    import importlib

    from restkit import routing
    from restkit.feature import SHIPPED_FEATURES

    typing_names = set(_typed_route_options())
    assert typing_names == set(routing.ROUTE_OPTIONS) | set(SHIPPED_FEATURES)
    for option, where in SHIPPED_FEATURES.items():
        module, _, name = where.partition(":")
        assert getattr(importlib.import_module(module, "restkit"), name).option == option


def _typed_route_options() -> list[str]:
    """The keys of routing.RouteOptions, read from its source (it exists for type checkers only)."""
    import ast
    import inspect

    from restkit import routing

    tree = ast.parse(inspect.getsource(routing))
    found = next(node for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and node.name == "RouteOptions")
    return [item.target.id for item in found.body
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)]


def test_after_steps_see_the_500_of_an_error_no_handler_takes() -> None:
    """An idempotency key must learn that its request failed, to release the key."""
    seen: list[int] = []

    class Watch(Feature):
        def after(self, request: Any, response: Any) -> Any:
            seen.append(response.status)
            return response

    app = App()
    app.use(Watch())

    @app.get("/boom")
    def boom(request: Any) -> None:
        raise RuntimeError("a bug")

    status, _, body = wsgi_call(app, "GET", "/boom")
    assert status == 500 and body == b'{"error":"internal server error"}' and seen == [500]
