"""restkit.cors: preflight tables (origins, methods, headers, credentials), simple requests, errors, Vary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from restkit import App, NotFound
from restkit.auth import Bearer
from restkit.cors import CORS
from restkit.ratelimit import RateLimit
from tests.conftest import wsgi_call

GOOD = "https://app.example"
EVIL = "https://evil.example"


def make_app(cors: CORS) -> App:
    app = App()
    app.use(cors)

    @app.get("/items")
    def items(request: Any) -> list[int]:
        return [1]

    @app.post("/items", auth=Bearer({"t": ["write"]}))
    def create(request: Any) -> tuple[dict[str, bool], int, dict[str, str]]:
        return {"ok": True}, 201, {"Location": "/items/2"}

    @app.delete("/items/<int:id>")
    def delete(request: Any, id: int) -> None:
        raise NotFound(f"item {id} does not exist")

    @app.get("/boom")
    def boom(request: Any) -> None:
        raise RuntimeError("bug")

    return app


LISTED = make_app(CORS([GOOD, "http://127.0.0.1:3000"], max_age=300))
ANY = make_app(CORS("*"))
CREDENTIALS = make_app(CORS([GOOD], credentials=True, headers=["Authorization", "Content-Type"]))
PREDICATE = make_app(CORS(lambda origin: origin.endswith(".example"), methods=["GET", "POST"]))
ANY_HEADER = make_app(CORS("*", headers="*"))
APPS = {"listed": LISTED, "any": ANY, "credentials": CREDENTIALS, "predicate": PREDICATE, "any-header": ANY_HEADER}

# (app, origin, method asked, headers asked, status, Allow-Origin, Allow-Methods, Allow-Headers, credentials, error)
PREFLIGHTS = [
    ("listed", GOOD, "POST", "content-type, authorization", 204, GOOD, "GET, HEAD, POST", "content-type, authorization", None, None),
    ("listed", "http://127.0.0.1:3000", "GET", "", 204, "http://127.0.0.1:3000", "GET, HEAD, POST", None, None, None),
    ("listed", "HTTPS://APP.EXAMPLE", "GET", "", 204, "HTTPS://APP.EXAMPLE", "GET, HEAD, POST", None, None, None),
    ("listed", EVIL, "POST", "", 403, None, None, None, None, "origin https://evil.example is not allowed"),
    ("listed", "null", "GET", "", 403, None, None, None, None, "origin null is not allowed"),
    ("listed", GOOD, "PUT", "", 403, None, None, None, None, "method PUT is not allowed for /items"),
    ("listed", GOOD, "POST", "X-Secret", 403, None, None, None, None, "request header(s) X-Secret not allowed"),
    ("any", EVIL, "POST", "if-match", 204, "*", "GET, HEAD, POST", "if-match", None, None),
    ("credentials", GOOD, "POST", "authorization", 204, GOOD, "GET, HEAD, POST", "authorization", "true", None),
    ("credentials", GOOD, "POST", "if-match", 403, None, None, None, None, "header(s) if-match not allowed"),
    ("credentials", EVIL, "POST", "", 403, None, None, None, None, "not allowed"),
    ("predicate", "https://b.example", "POST", "", 204, "https://b.example", "GET, POST", None, None, None),
    ("predicate", "https://b.example.com", "GET", "", 403, None, None, None, None, "not allowed"),
    ("any-header", GOOD, "DELETE", "x-anything, x-more", 204, "*", "DELETE", "x-anything, x-more", None, None),
]


@pytest.mark.parametrize(
    "app, origin, method, asked, status, allow_origin, allow_methods, allow_headers, credentials, error",
    PREFLIGHTS, ids=[f"{p[0]}-{p[1]}-{p[2]}-{p[3] or 'no-headers'}" for p in PREFLIGHTS],
)
def test_preflight(app: str, origin: str, method: str, asked: str, status: int, allow_origin: str | None,
                   allow_methods: str | None, allow_headers: str | None, credentials: str | None, error: str | None) -> None:
    path = "/items/1" if method == "DELETE" else "/items"
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if asked:
        headers["Access-Control-Request-Headers"] = asked
    got, response_headers, body = wsgi_call(APPS[app], "OPTIONS", path, headers)
    assert got == status, body
    assert response_headers.get("Access-Control-Allow-Origin") == allow_origin
    assert response_headers.get("Access-Control-Allow-Methods") == allow_methods
    assert response_headers.get("Access-Control-Allow-Headers") == allow_headers
    assert response_headers.get("Access-Control-Allow-Credentials") == credentials
    if status == 204:
        assert response_headers["Access-Control-Max-Age"] == ("300" if app == "listed" else "600")
        assert "Allow" in response_headers and body == b""
    else:
        assert error is not None and error in json.loads(body)["error"]
    if app != "any" and app != "any-header":
        assert "Origin" in response_headers["Vary"]


def test_options_without_a_preflight_is_the_plain_answer() -> None:
    got, headers, _ = wsgi_call(LISTED, "OPTIONS", "/items")
    assert got == 204 and headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    assert "Access-Control-Allow-Origin" not in headers
    got, _, body = wsgi_call(LISTED, "OPTIONS", "/nowhere", {"Origin": GOOD, "Access-Control-Request-Method": "GET"})
    assert got == 404 and json.loads(body)["error"]


# (app, method, path, request headers, status, Allow-Origin, credentials)
REQUESTS = [
    ("listed", "GET", "/items", {"Origin": GOOD}, 200, GOOD, None),
    ("listed", "GET", "/items", {"Origin": EVIL}, 200, None, None),  # answered, but the browser hides it
    ("listed", "GET", "/items", {}, 200, None, None),
    ("any", "GET", "/items", {"Origin": EVIL}, 200, "*", None),
    ("credentials", "GET", "/items", {"Origin": GOOD}, 200, GOOD, "true"),
    # errors carry the headers too, so the page can read them
    ("listed", "POST", "/items", {"Origin": GOOD}, 401, GOOD, None),
    ("listed", "DELETE", "/items/9", {"Origin": GOOD}, 404, GOOD, None),
    ("listed", "PUT", "/items", {"Origin": GOOD}, 405, GOOD, None),
    ("listed", "GET", "/nowhere", {"Origin": GOOD}, 404, GOOD, None),
    ("listed", "GET", "/boom", {"Origin": GOOD}, 500, GOOD, None),
    ("credentials", "POST", "/items", {"Origin": GOOD, "Authorization": "Bearer t"}, 201, GOOD, "true"),
]


@pytest.mark.parametrize("app, method, path, headers, status, allow_origin, credentials", REQUESTS,
                         ids=[f"{r[0]}-{r[1]}-{r[2]}-{r[4]}" for r in REQUESTS])
def test_requests_and_errors(app: str, method: str, path: str, headers: dict[str, str], status: int,
                             allow_origin: str | None, credentials: str | None) -> None:
    got, response_headers, body = wsgi_call(APPS[app], method, path, headers)
    assert got == status
    assert response_headers.get("Access-Control-Allow-Origin") == allow_origin
    assert response_headers.get("Access-Control-Allow-Credentials") == credentials
    if allow_origin is not None:
        exposed = response_headers["Access-Control-Expose-Headers"]
        assert {"ETag", "Link", "X-Total-Count", "Location", "Retry-After", "X-RateLimit-Remaining"} <= {
            h.strip() for h in exposed.split(",")}
    if status >= 400:
        assert json.loads(body)["error"]


def test_a_429_carries_the_cors_headers() -> None:
    app = App()
    app.use(RateLimit(1))
    app.use(CORS([GOOD]))

    @app.get("/x")
    def x(request: Any) -> dict[str, bool]:
        return {"ok": True}

    wsgi_call(app, "GET", "/x", {"Origin": GOOD})
    got, headers, _ = wsgi_call(app, "GET", "/x", {"Origin": GOOD})
    assert got == 429 and headers["Access-Control-Allow-Origin"] == GOOD and headers["Retry-After"]


def test_cors_installed_before_the_rate_limit_still_marks_the_429() -> None:
    app = App()
    app.use(CORS([GOOD]))
    app.use(RateLimit(1))
    wsgi_call(app, "GET", "/nowhere", {"Origin": GOOD})
    got, headers, body = wsgi_call(app, "GET", "/nowhere", {"Origin": GOOD})
    assert got == 429 and headers["Access-Control-Allow-Origin"] == GOOD and json.loads(body)["error"]


def test_a_single_origin_must_be_in_a_list() -> None:
    with pytest.raises(ValueError, match="in a list"):
        CORS(GOOD)


def test_the_document_names_the_cors_headers() -> None:
    app = App()
    app.use(CORS([GOOD]))

    @app.get("/x")
    def x(request: Any) -> dict[str, bool]:
        return {"ok": True}

    headers = app.openapi()["paths"]["/x"]["get"]["responses"]["200"]["headers"]
    assert {"Access-Control-Allow-Origin", "Access-Control-Expose-Headers"} <= set(headers)
