"""restkit.auth: bearer tokens, API keys, HTTP Basic and any of them; scopes; per route, per router, app-wide; the document."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from restkit import App, Router
from restkit.auth import APIKey, AnyOf, Basic, Bearer, Identity
from tests.browser import needs_chromium, run_chromium
from tests.conftest import wsgi_call

TOKENS = {"w-token": Identity("ada", {"read", "write"}), "r-token": Identity("bob", {"read"})}
bearer = Bearer(TOKENS, realm="api")
writer = bearer.require("write")
KEYS = {"k-ada": Identity("ada-script", {"read", "write"}), "k-bob": Identity("bob-script", {"read"})}
api_key = APIKey(KEYS)
token_or_key = AnyOf(bearer, api_key)
key_or_token = AnyOf(api_key, bearer)


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


@pytest.mark.parametrize("scheme, accepted, challenge, security", [
    (bearer, [{"Authorization": "Bearer r-token"}], 'Bearer realm="api"', [{"bearerAuth": []}]),
    (token_or_key, [{"Authorization": "Bearer r-token"}, {"X-API-Key": "k-bob"}], 'Bearer realm="api", APIKey',
     [{"bearerAuth": []}, {"apiKeyAuth": []}]),
], ids=["bearer", "any-of"])
def test_app_wide_auth_with_a_public_route_and_public_docs(scheme: Any, accepted: list[dict[str, str]], challenge: str,
                                                           security: list[dict[str, list[str]]]) -> None:
    app = App(openapi=True)
    app.use(scheme)

    @app.get("/secret")
    def secret(request: Any) -> dict[str, str]:
        return {"s": "x"}

    @app.get("/health", auth=None)
    def health(request: Any) -> dict[str, str]:
        return {"ok": "yes"}

    status, headers, _ = wsgi_call(app, "GET", "/secret")
    assert status == 401 and headers["WWW-Authenticate"] == challenge
    for credentials in accepted:
        assert wsgi_call(app, "GET", "/secret", credentials)[0] == 200
    assert wsgi_call(app, "GET", "/health")[0] == 200
    assert wsgi_call(app, "GET", "/openapi.json")[0] == 200
    assert wsgi_call(app, "GET", "/docs", {"Accept": "text/html"})[0] == 200
    document = app.openapi()
    assert document["paths"]["/secret"]["get"]["security"] == security
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
    assert create["security"] == [{"bearerAuth": ["write"]}]  # the scopes it needs (OpenAPI 3.1 allows them for any scheme)
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


# -- any of several schemes -----------------------------------------------------------------------

# RFC 9110, section 11.6.1 (token68 left out: no restkit scheme sends one):
#   WWW-Authenticate = #challenge
#   challenge        = auth-scheme [ 1*SP #auth-param ]
#   auth-param       = token BWS "=" BWS ( token / quoted-string )
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = rf'{_TOKEN}[ \t]*=[ \t]*(?:{_TOKEN}|"(?:[^"\\]|\\.)*")'
_ELEMENT = re.compile(rf"[ \t]*(?:(?P<param>{_PARAM})|(?P<scheme>{_TOKEN})(?: +(?P<first>{_PARAM}))?)[ \t]*(?:,|$)")


def challenges(value: str) -> list[tuple[str, dict[str, str]]]:
    """``WWW-Authenticate`` as ``[(scheme, {param: value})]``; AssertionError when it is not a challenge list."""
    found: list[tuple[str, dict[str, str]]] = []
    position = 0
    while position < len(value):
        element = _ELEMENT.match(value, position)
        assert element and element.end() > position, f"not a challenge list at {value[position:]!r}: {value!r}"
        position = element.end()
        if element["scheme"]:
            found.append((element["scheme"], {}))
        for param in (element["param"], element["first"]):
            if param:
                assert found, f"a parameter before any scheme: {value!r}"
                name, _, given = param.partition("=")
                found[-1][1][name.strip().lower()] = given.strip().strip('"')
    return found


def test_the_challenge_parser_reads_lists_and_refuses_junk() -> None:
    assert challenges('Bearer realm="a, b", error="invalid_token", APIKey, Basic realm="z", charset="UTF-8"') == [
        ("Bearer", {"realm": "a, b", "error": "invalid_token"}), ("APIKey", {}), ("Basic", {"realm": "z", "charset": "UTF-8"})]
    for junk in ('realm="x"', "Bearer realm", 'Bearer "x"', "Bearer;"):
        with pytest.raises(AssertionError):
            challenges(junk)


def make_any_app(scheme: AnyOf) -> App:
    app = App(openapi=True)

    @app.get("/who", auth=scheme)
    def who(request: Any) -> dict[str, str]:
        return {"name": request.context["identity"].name}

    @app.post("/items", auth=scheme.require("write"))
    def create(request: Any) -> tuple[dict[str, bool], int]:
        return {"created": True}, 201

    return app


TOKEN_FIRST, KEY_FIRST = make_any_app(token_or_key), make_any_app(key_or_token)
NEEDS_BOTH = "GET /who needs an 'Authorization: Bearer <token>' header or an API key in an X-API-Key header"
BOTH_CHALLENGES = [("Bearer", {"realm": "api"}), ("APIKey", {})]
BAD_TOKEN = [("Bearer", {"realm": "api", "error": "invalid_token"})]
BAD_KEY = [("APIKey", {"error": "invalid_token"})]

# (id, app, method, path, headers, status, body: the JSON sent, or a fragment of its error, challenges)
ANY_OF_VARIANTS: list[tuple[str, App, str, str, dict[str, str], int, Any, Any]] = [
    ("token", TOKEN_FIRST, "GET", "/who", {"Authorization": "Bearer r-token"}, 200, {"name": "bob"}, None),
    ("key", TOKEN_FIRST, "GET", "/who", {"X-API-Key": "k-bob"}, 200, {"name": "bob-script"}, None),
    ("lowercase-scheme", TOKEN_FIRST, "GET", "/who", {"Authorization": "bearer  r-token"}, 200, {"name": "bob"}, None),
    ("both-valid-token-first", TOKEN_FIRST, "GET", "/who", {"Authorization": "Bearer r-token", "X-API-Key": "k-ada"},
     200, {"name": "bob"}, None),
    ("both-valid-key-first", KEY_FIRST, "GET", "/who", {"Authorization": "Bearer r-token", "X-API-Key": "k-ada"},
     200, {"name": "ada-script"}, None),
    ("good-token-bad-key-token-first", TOKEN_FIRST, "GET", "/who", {"Authorization": "Bearer r-token", "X-API-Key": "nope"},
     200, {"name": "bob"}, None),
    ("bad-token-good-key-token-first", TOKEN_FIRST, "GET", "/who", {"Authorization": "Bearer nope", "X-API-Key": "k-bob"},
     401, "invalid token", BAD_TOKEN),
    ("good-token-bad-key-key-first", KEY_FIRST, "GET", "/who", {"Authorization": "Bearer r-token", "X-API-Key": "nope"},
     401, "invalid API key", BAD_KEY),
    ("bad-token-good-key-key-first", KEY_FIRST, "GET", "/who", {"Authorization": "Bearer nope", "X-API-Key": "k-bob"},
     200, {"name": "bob-script"}, None),
    ("bad-token", TOKEN_FIRST, "GET", "/who", {"Authorization": "Bearer nope"}, 401, "invalid token", BAD_TOKEN),
    ("bad-key", TOKEN_FIRST, "GET", "/who", {"X-API-Key": "nope"}, 401, "invalid API key", BAD_KEY),
    ("none", TOKEN_FIRST, "GET", "/who", {}, 401, NEEDS_BOTH, BOTH_CHALLENGES),
    ("none-key-first", KEY_FIRST, "GET", "/who", {}, 401,
     "GET /who needs an API key in an X-API-Key header or an 'Authorization: Bearer <token>' header",
     BOTH_CHALLENGES[::-1]),
    ("other-scheme-empty-key", TOKEN_FIRST, "GET", "/who", {"Authorization": "Token r-token", "X-API-Key": ""},
     401, NEEDS_BOTH, BOTH_CHALLENGES),
    ("malformed-token", TOKEN_FIRST, "GET", "/who", {"Authorization": "Bearer a b", "X-API-Key": "k-bob"},
     400, "malformed Authorization header", None),
    ("scope-by-token", TOKEN_FIRST, "POST", "/items", {"Authorization": "Bearer w-token"}, 201, {"created": True}, None),
    ("scope-by-key", TOKEN_FIRST, "POST", "/items", {"X-API-Key": "k-ada"}, 201, {"created": True}, None),
    ("scope-lacking-token", TOKEN_FIRST, "POST", "/items", {"Authorization": "Bearer r-token"}, 403,
     "these credentials lack the scope(s) write that POST /items needs", None),
    ("scope-lacking-key", TOKEN_FIRST, "POST", "/items", {"X-API-Key": "k-bob"}, 403, "lack the scope(s) write", None),
    ("scope-none", TOKEN_FIRST, "POST", "/items", {}, 401, "POST /items needs an 'Authorization: Bearer", BOTH_CHALLENGES),
]


def check_answer(status: int, headers: dict[str, str], body: bytes, expected_status: int, expected: Any,
                 expected_challenges: Any) -> None:
    """The status, the body (its JSON or a fragment of its error) and the parsed ``WWW-Authenticate``."""
    assert status == expected_status, body
    data = json.loads(body)
    if isinstance(expected, str):
        assert expected in data["error"], data
    else:
        assert data == expected
    if expected_challenges is None:
        assert "www-authenticate" not in {name.lower() for name in headers}
    else:
        value = next(v for name, v in headers.items() if name.lower() == "www-authenticate")
        assert challenges(value) == expected_challenges, value


@pytest.mark.parametrize("name, app, method, path, headers, status, expected, expected_challenges", ANY_OF_VARIANTS,
                         ids=[v[0] for v in ANY_OF_VARIANTS])
def test_any_of_variants(name: str, app: App, method: str, path: str, headers: dict[str, str], status: int,
                         expected: Any, expected_challenges: Any) -> None:
    check_answer(*wsgi_call(app, method, path, headers), status, expected, expected_challenges)
    # and the app goes on serving both schemes
    assert json.loads(wsgi_call(app, "GET", "/who", {"Authorization": "Bearer w-token"})[2]) == {"name": "ada"}
    assert wsgi_call(app, "GET", "/who", {"X-API-Key": "k-ada"})[0] == 200


def test_any_of_over_a_socket_read_by_h11(live_server: Any) -> None:
    """Every variant on one keep-alive connection: h11 accepts each answer and the challenges parse."""
    pytest.importorskip("h11")
    from tests.http_client import ResponseReader, connect, serialize_request

    server = live_server(TOKEN_FIRST)
    with connect(server.port) as sock:
        reader = ResponseReader(sock)
        for name, app, method, path, headers, status, expected, expected_challenges in ANY_OF_VARIANTS:
            if app is not TOKEN_FIRST:
                continue
            sock.sendall(serialize_request(method, path, [("Host", "t"), *headers.items()]))
            answer = reader.read(method)
            assert answer.complete and answer.error is None, f"{name}: {answer.describe()}"
            assert answer.status is not None
            check_answer(answer.status, dict(answer.headers), answer.body, status, expected, expected_challenges)


def test_any_of_with_inner_scopes_and_a_message() -> None:
    """The scopes of AnyOf and of the scheme that decides add up; AnyOf's message wins, then the scheme's."""
    either = AnyOf(bearer, api_key.require("write", message="scripts must have write keys")).require("read")
    app = App(openapi=True)

    @app.get("/r", auth=either)
    def r(request: Any) -> dict[str, bool]:
        return {"ok": True}

    assert wsgi_call(app, "GET", "/r", {"Authorization": "Bearer r-token"})[0] == 200
    assert wsgi_call(app, "GET", "/r", {"X-API-Key": "k-ada"})[0] == 200
    status, _, body = wsgi_call(app, "GET", "/r", {"X-API-Key": "k-bob"})
    assert status == 403 and json.loads(body) == {"error": "scripts must have write keys"}
    quiet = AnyOf(Bearer({"t": []}), api_key, message="no entry").require("read")
    app2 = App()

    @app2.get("/q", auth=quiet)
    def q(request: Any) -> dict[str, bool]:
        return {"ok": True}

    assert json.loads(wsgi_call(app2, "GET", "/q", {"Authorization": "Bearer t"})[2]) == {"error": "no entry"}
    described = app.openapi()["paths"]["/r"]["get"]["responses"]["403"]["description"]
    assert described == "Forbidden: needs the scope(s) read with bearerAuth; read, write with apiKeyAuth"


def test_any_of_per_router_with_defaults() -> None:
    admin = Router(defaults={"auth": token_or_key.require("write")})

    @admin.delete("/users/<int:user>")
    def remove(request: Any, user: int) -> None:
        return None

    app = App()
    app.mount("/admin", admin)
    status, headers, body = wsgi_call(app, "DELETE", "/admin/users/1")
    assert status == 401 and challenges(headers["WWW-Authenticate"]) == BOTH_CHALLENGES
    assert "DELETE /admin/users/1 needs an 'Authorization: Bearer <token>' header or an API key" in json.loads(body)["error"]
    assert wsgi_call(app, "DELETE", "/admin/users/1", {"X-API-Key": "k-bob"})[0] == 403
    assert wsgi_call(app, "DELETE", "/admin/users/1", {"Authorization": "Bearer r-token"})[0] == 403
    assert wsgi_call(app, "DELETE", "/admin/users/1", {"X-API-Key": "k-ada"})[0] == 204
    assert wsgi_call(app, "DELETE", "/admin/users/1", {"Authorization": "Bearer w-token"})[0] == 204


def test_any_of_three_schemes_and_basic_shares_the_authorization_header() -> None:
    users = Basic({"ada": "pw"}, realm="zoo", scopes_of={"ada": ["read"]})
    every = AnyOf(bearer, users, api_key)
    app = App()

    @app.get("/x", auth=every)
    def x(request: Any) -> dict[str, str]:
        return {"who": request.context["identity"].name}

    assert json.loads(wsgi_call(app, "GET", "/x", basic("ada:pw"))[2]) == {"who": "ada"}
    assert json.loads(wsgi_call(app, "GET", "/x", {"Authorization": "Bearer r-token"})[2]) == {"who": "bob"}
    assert wsgi_call(app, "GET", "/x", basic("ada:no"))[0] == 401
    status, headers, body = wsgi_call(app, "GET", "/x")
    assert status == 401
    assert json.loads(body)["error"] == ("GET /x needs an 'Authorization: Bearer <token>' header, an 'Authorization: Basic"
                                         " ...' header (user name and password) or an API key in an X-API-Key header")
    assert challenges(headers["WWW-Authenticate"]) == [
        ("Bearer", {"realm": "api"}), ("Basic", {"realm": "zoo", "charset": "UTF-8"}), ("APIKey", {})]


@pytest.mark.parametrize("schemes, error, fragment", [
    ((), ValueError, "at least one"),
    ((bearer, bearer.require("write")), ValueError, "bearerAuth"),
    ((bearer, token_or_key), TypeError, "AnyOf inside AnyOf"),
    ((bearer, "X-API-Key"), TypeError, "not 'X-API-Key'"),
], ids=["empty", "same-name", "nested", "not-a-scheme"])
def test_any_of_refuses_mistakes_when_made(schemes: tuple[Any, ...], error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=re.escape(fragment)):
        AnyOf(*schemes)


def test_the_document_lists_the_alternatives() -> None:
    document = TOKEN_FIRST.openapi()
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer"},
        "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    who, create = document["paths"]["/who"]["get"], document["paths"]["/items"]["post"]
    assert who["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]
    assert create["security"] == [{"bearerAuth": ["write"]}, {"apiKeyAuth": ["write"]}]  # each with the scopes it needs
    assert "401" in who["responses"] and "403" not in who["responses"]
    assert create["responses"]["403"]["description"] == "Forbidden: needs the scope(s) write"
    assert KEY_FIRST.openapi()["paths"]["/who"]["get"]["security"] == [{"apiKeyAuth": []}, {"bearerAuth": []}]
    openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
    openapi_spec_validator.validate(json.loads(json.dumps(document)))


@needs_chromium
def test_docs_mark_an_operation_with_either_scheme(live_server: Any, tmp_path: Any) -> None:
    server = live_server(TOKEN_FIRST)
    done = run_chromium("--dump-dom", f"{server.url}/docs", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count('<span class="lock" title="needs bearerAuth or apiKeyAuth">') == 1, done.stdout[-3000:]
    scoped = '<span class="lock" title="needs bearerAuth (write) or apiKeyAuth (write)">'
    assert done.stdout.count(scoped) == 1, done.stdout[-3000:]
