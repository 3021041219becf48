"""restkit.auth: bearer tokens, API keys and HTTP Basic; scopes; per route, per router, app-wide; the document."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from restkit import App, Router
from restkit.auth import APIKey, Basic, Bearer, Identity
from tests.conftest import wsgi_call

TOKENS = {"w-token": Identity("ada", {"read", "write"}), "r-token": Identity("bob", {"read"})}
bearer = Bearer(TOKENS, realm="api")
writer = bearer.require("write")


def make_app() -> App:
    app = App(openapi=True)

    @app.get("/public")
    def public(request: Any) -> dict[str, Any]:
        return {"ok": True}

    @app.get("/me", auth=bearer)
    def me(request: Any) -> dict[str, Any]:
        who = request.context["identity"]
        return {"name": who.name, "scopes": sorted(who.scopes)}

    @app.post("/items", auth=writer)
    def create(request: Any) -> tuple[dict[str, Any], int]:
        return {"created": True}, 201

    return app


APP = make_app()

# (id, headers, status, error fragment, WWW-Authenticate fragment)
BEARER_VARIANTS = [
    ("valid", {"Authorization": "Bearer w-token"}, 201, None, None),
    ("lowercase-scheme", {"Authorization": "bearer w-token"}, 201, None, None),
    ("uppercase-scheme", {"Authorization": "BEARER w-token"}, 201, None, None),
    ("extra-spaces", {"Authorization": "Bearer    w-token  "}, 201, None, None),
    ("leading-space", {"Authorization": "  Bearer w-token"}, 201, None, None),
    ("none", {}, 401, "needs an 'Authorization: Bearer <token>' header", 'Bearer realm="api"'),
    ("empty", {"Authorization": ""}, 401, "needs an 'Authorization: Bearer", "Bearer"),
    ("scheme-only", {"Authorization": "Bearer"}, 401, "needs an 'Authorization: Bearer", "Bearer"),
    ("wrong-scheme", {"Authorization": "Basic w-token"}, 401, "needs an 'Authorization: Bearer", "Bearer"),
    ("token-scheme", {"Authorization": "Token w-token"}, 401, "needs an 'Authorization: Bearer", "Bearer"),
    ("wrong-token", {"Authorization": "Bearer nope"}, 401, "invalid token", 'error="invalid_token"'),
    ("prefix-of-token", {"Authorization": "Bearer w-toke"}, 401, "invalid token", "invalid_token"),
    ("longer-token", {"Authorization": "Bearer w-token2"}, 401, "invalid token", "invalid_token"),
    ("latin-1", {"Authorization": "Bearer caf\xe9"}, 401, "invalid token", "invalid_token"),
    ("two-headers", {"Authorization": "Bearer w-token, Bearer r-token"}, 400, "malformed Authorization header", None),
    ("two-tokens", {"Authorization": "Bearer w-token r-token"}, 400, "malformed Authorization header", None),
    ("read-only", {"Authorization": "Bearer r-token"}, 403, "lack the scope(s) write", None),
]


@pytest.mark.parametrize("name, headers, status, fragment, challenge", BEARER_VARIANTS,
                         ids=[v[0] for v in BEARER_VARIANTS])
def test_bearer_header_variants(name: str, headers: dict[str, str], status: int, fragment: str | None,
                                challenge: str | None) -> None:
    got, response_headers, body = wsgi_call(APP, "POST", "/items", headers)
    assert got == status, body
    data = json.loads(body)
    if status >= 400:
        assert fragment is not None and fragment in data["error"], data
        if challenge is not None:
            assert challenge in response_headers["WWW-Authenticate"]
        if status == 403:
            assert "WWW-Authenticate" not in response_headers
    else:
        assert data == {"created": True}


def test_identity_reaches_the_handler_and_public_routes_stay_public() -> None:
    status, _, body = wsgi_call(APP, "GET", "/me", {"Authorization": "Bearer r-token"})
    assert status == 200 and json.loads(body) == {"name": "bob", "scopes": ["read"]}
    assert wsgi_call(APP, "GET", "/public")[0] == 200
    assert wsgi_call(APP, "GET", "/me")[0] == 401


def test_auth_runs_before_validation_and_the_handler() -> None:
    from dataclasses import dataclass

    @dataclass
    class Body:
        name: str

    app = App()
    calls = []

    @app.post("/things", auth=writer, body=Body)
    def create(request: Any, body: Body) -> dict[str, str]:
        calls.append(body)
        return {"name": body.name}

    status, _, _ = wsgi_call(app, "POST", "/things", {"Content-Type": "application/json"}, b"{}")
    assert status == 401 and not calls  # 401 before the 422 of an invalid body
    headers = {"Content-Type": "application/json", "Authorization": "Bearer w-token"}
    assert wsgi_call(app, "POST", "/things", headers, b"{}")[0] == 422


# -- app-wide and per router ------------------------------------------------------------------


def test_app_wide_auth_with_a_public_route_and_public_docs() -> None:
    app = App(openapi=True)
    app.use(bearer)

    @app.get("/secret")
    def secret(request: Any) -> dict[str, str]:
        return {"s": "x"}

    @app.get("/health", auth=None)
    def health(request: Any) -> dict[str, str]:
        return {"ok": "yes"}

    assert wsgi_call(app, "GET", "/secret")[0] == 401
    assert wsgi_call(app, "GET", "/secret", {"Authorization": "Bearer r-token"})[0] == 200
    assert wsgi_call(app, "GET", "/health")[0] == 200
    assert wsgi_call(app, "GET", "/openapi.json")[0] == 200
    assert wsgi_call(app, "GET", "/docs", {"Accept": "text/html"})[0] == 200
    document = app.openapi()
    assert document["paths"]["/secret"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in document["paths"]["/health"]["get"]


def test_per_router_auth_with_defaults() -> None:
    admin = Router(defaults={"auth": writer})

    @admin.delete("/users/<int:user>")
    def remove(request: Any, user: int) -> None:
        return None

    @admin.get("/stats", auth=bearer)
    def stats(request: Any) -> dict[str, int]:
        return {"users": 1}

    app = App()
    app.mount("/admin", admin)
    assert wsgi_call(app, "DELETE", "/admin/users/1")[0] == 401
    assert wsgi_call(app, "DELETE", "/admin/users/1", {"Authorization": "Bearer r-token"})[0] == 403
    assert wsgi_call(app, "DELETE", "/admin/users/1", {"Authorization": "Bearer w-token"})[0] == 204
    assert wsgi_call(app, "GET", "/admin/stats", {"Authorization": "Bearer r-token"})[0] == 200


def test_a_verifier_function_and_empty_secrets() -> None:
    checker = Bearer(lambda token: Identity(token) if token.startswith("ok-") else None)
    app = App()

    @app.get("/x", auth=checker)
    def x(request: Any) -> dict[str, str]:
        return {"who": request.context["identity"].name}

    assert json.loads(wsgi_call(app, "GET", "/x", {"Authorization": "Bearer ok-1"})[2]) == {"who": "ok-1"}
    assert wsgi_call(app, "GET", "/x", {"Authorization": "Bearer no"})[0] == 401
    with pytest.raises(ValueError, match="empty secret"):
        Bearer({"": ["read"]})


# -- API keys -----------------------------------------------------------------------------------

API_KEY_VARIANTS = [
    ("header", "/k", {"X-API-Key": "key-1"}, 200, None),
    ("header-spaces", "/k", {"X-API-Key": "  key-1 "}, 200, None),
    ("none", "/k", {}, 401, "needs an API key in an X-API-Key header or the query parameter api_key"),
    ("wrong", "/k", {"X-API-Key": "key-2"}, 401, "invalid API key"),
    ("query", "/k?api_key=key-1", {}, 200, None),
    ("query-wrong", "/k?api_key=nope", {}, 401, "invalid API key"),
    ("query-twice", "/k?api_key=key-1&api_key=key-1", {}, 400, "given more than once"),
    ("bearer-is-not-a-key", "/k", {"Authorization": "Bearer key-1"}, 401, "needs an API key"),
]


@pytest.mark.parametrize("name, path, headers, status, fragment", API_KEY_VARIANTS, ids=[v[0] for v in API_KEY_VARIANTS])
def test_api_key_variants(name: str, path: str, headers: dict[str, str], status: int, fragment: str | None) -> None:
    keys = APIKey({"key-1": ["read"]}, query="api_key")
    app = App()

    @app.get("/k", auth=keys)
    def k(request: Any) -> dict[str, bool]:
        return {"ok": True}

    got, response_headers, body = wsgi_call(app, "GET", path, headers)
    assert got == status, body
    if fragment:
        assert fragment in json.loads(body)["error"]
    if status == 401:
        assert response_headers["WWW-Authenticate"].startswith("APIKey")


def test_api_key_in_the_query_is_opt_in() -> None:
    keys = APIKey({"key-1": ["read"]})
    app = App()

    @app.get("/k", auth=keys)
    def k(request: Any) -> dict[str, bool]:
        return {"ok": True}

    assert wsgi_call(app, "GET", "/k?X-API-Key=key-1&api_key=key-1")[0] == 401
    with pytest.raises(ValueError):
        APIKey({"k": []}, header=None)


# -- HTTP Basic -----------------------------------------------------------------------------------


def basic(text: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}


BASIC_VARIANTS = [
    ("valid", basic("ada:pw:with:colons"), 200, None),
    ("lowercase-scheme", {"Authorization": "basic " + base64.b64encode(b"ada:pw:with:colons").decode()}, 200, None),
    ("unicode-password", basic("émile:mot de passe é"), 200, None),
    ("wrong-password", basic("ada:nope"), 401, "invalid user name or password"),
    ("unknown-user", basic("eve:pw:with:colons"), 401, "invalid user name or password"),
    ("no-colon", basic("ada"), 400, "base64 of user:password"),
    ("not-base64", {"Authorization": "Basic !!!"}, 400, "base64 of user:password"),
    ("none", {}, 401, "needs an 'Authorization: Basic"),
    ("bearer", {"Authorization": "Bearer x"}, 401, "needs an 'Authorization: Basic"),
]


@pytest.mark.parametrize("name, headers, status, fragment", BASIC_VARIANTS, ids=[v[0] for v in BASIC_VARIANTS])
def test_basic_variants(name: str, headers: dict[str, str], status: int, fragment: str | None) -> None:
    users = Basic({"ada": "pw:with:colons", "émile": "mot de passe é"}, realm="zoo", scopes_of={"ada": ["admin"]})
    app = App()

    @app.get("/b", auth=users)
    def b(request: Any) -> dict[str, str]:
        return {"user": request.context["identity"].name}

    got, response_headers, body = wsgi_call(app, "GET", "/b", headers)
    assert got == status, body
    if fragment:
        assert fragment in json.loads(body)["error"]
    if status == 401:
        assert response_headers["WWW-Authenticate"] == 'Basic realm="zoo", charset="UTF-8"'


def test_basic_scopes_come_from_scopes_of() -> None:
    users = Basic({"ada": "a", "bob": "b"}, scopes_of={"ada": ["admin"]}).require("admin")
    app = App()

    @app.get("/admin", auth=users)
    def admin(request: Any) -> dict[str, bool]:
        return {"ok": True}

    assert wsgi_call(app, "GET", "/admin", basic("ada:a"))[0] == 200
    assert wsgi_call(app, "GET", "/admin", basic("bob:b"))[0] == 403


# -- the API document ---------------------------------------------------------------------------


def test_the_document_names_the_scheme_and_the_401_403() -> None:
    document = APP.openapi()
    assert document["components"]["securitySchemes"] == {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    create = document["paths"]["/items"]["post"]
    assert create["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(create["responses"])
    assert "write" in create["responses"]["403"]["description"]
    me = document["paths"]["/me"]["get"]
    assert "401" in me["responses"] and "403" not in me["responses"]  # no scopes: nothing to forbid
    assert "security" not in document["paths"]["/public"]["get"]
    pytest.importorskip("openapi_spec_validator").validate(document)


def test_the_app_s_own_scheme_description_wins() -> None:
    app = App(security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer", "description": "ours"}})

    @app.get("/x", auth=bearer)
    def x(request: Any) -> None:
        return None

    assert app.openapi()["components"]["securitySchemes"]["bearerAuth"]["description"] == "ours"


def test_docs_mark_operations_that_need_auth() -> None:
    from restkit.docs import docs_page

    page = docs_page("API", "/openapi.json", "")
    assert "op.security" in page and 'class: "lock"' in page
