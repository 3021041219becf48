"""restkit.ratelimit: the sliding window, 429 with Retry-After, the headers, keys, stores, the document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from restkit import App
from restkit.auth import Bearer, Identity
from restkit.ratelimit import Decision, MemoryStore, RateLimit, Store
from tests.conftest import wsgi_call


class Clock:
    """A clock the test moves by hand: no test waits for real time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_app(limit: int = 3, clock: Clock | None = None, **options: Any) -> App:
    app = App(openapi=True)
    store = options.pop("store", None) or MemoryStore(clock=clock or Clock())
    app.use(RateLimit(limit, store=store, **options))

    @app.get("/items")
    def items(request: Any) -> list[int]:
        return [1, 2]

    @app.post("/items")
    def create(request: Any) -> tuple[dict[str, bool], int]:
        return {"ok": True}, 201

    return app


# (time step before the request, method, path, status, remaining, Retry-After)
SEQUENCE = [
    (0, "GET", "/items", 200, "2", None),
    (10, "POST", "/items", 201, "1", None),
    (10, "GET", "/nothing", 404, "0", None),  # errors count, even those the router answers
    (10, "GET", "/items", 429, "0", "30"),  # the first request leaves the window at 60
    (0, "DELETE", "/items", 429, "0", "30"),  # a 405 over the limit is a 429 too
    (29.5, "GET", "/items", 429, "0", "1"),
    (0.6, "GET", "/items", 200, "0", None),  # refused requests were not counted
]


def test_a_sliding_window_over_every_request() -> None:
    clock = Clock()
    app = make_app(3, clock)
    for step, method, path, status, remaining, retry_after in SEQUENCE:
        clock.now += step
        got, headers, body = wsgi_call(app, method, path)
        assert got == status, (method, path, body)
        assert headers["X-RateLimit-Limit"] == "3"
        assert headers["X-RateLimit-Remaining"] == remaining
        assert headers["RateLimit-Policy"] == '"default";q=3;w=60'
        assert headers["RateLimit"].startswith(f'"default";r={remaining};t=')
        if retry_after is not None:
            assert headers["Retry-After"] == retry_after == headers["X-RateLimit-Reset"]
            assert json.loads(body) == {"error": f"more than 3 requests a minute; retry in {retry_after} s"}
        else:
            assert "Retry-After" not in headers


def test_clients_count_apart_by_address() -> None:
    app = make_app(1)
    assert wsgi_call(app, "GET", "/items", REMOTE_ADDR="10.0.0.1")[0] == 200
    assert wsgi_call(app, "GET", "/items", REMOTE_ADDR="10.0.0.1")[0] == 429
    assert wsgi_call(app, "GET", "/items", REMOTE_ADDR="10.0.0.2")[0] == 200


def test_per_identity_and_custom_keys() -> None:
    bearer = Bearer({"a": Identity("ada"), "b": Identity("bob")})
    app = App()
    app.use(bearer)
    app.use(RateLimit(1, key="identity"))

    @app.get("/x")
    def x(request: Any) -> dict[str, bool]:
        return {"ok": True}

    ada, bob = {"Authorization": "Bearer a"}, {"Authorization": "Bearer b"}
    assert wsgi_call(app, "GET", "/x", ada)[0] == 200
    assert wsgi_call(app, "GET", "/x", ada)[0] == 429
    assert wsgi_call(app, "GET", "/x", bob)[0] == 200  # same address, another identity
    by_header = App()
    by_header.use(RateLimit(1, key=lambda request: request.headers.get("X-Client", "?")))

    @by_header.get("/y")
    def y(request: Any) -> dict[str, bool]:
        return {"ok": True}

    assert wsgi_call(by_header, "GET", "/y", {"X-Client": "1"})[0] == 200
    assert wsgi_call(by_header, "GET", "/y", {"X-Client": "2"})[0] == 200
    assert wsgi_call(by_header, "GET", "/y", {"X-Client": "1"})[0] == 429


def test_per_route_limits_count_apart_and_replace_the_app_wide_one() -> None:
    app = App()
    app.use(RateLimit(100))

    @app.post("/login", rate_limit=RateLimit(2, window=300))
    def login(request: Any) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/free", rate_limit=None)
    def free(request: Any) -> dict[str, bool]:
        return {"ok": True}

    assert wsgi_call(app, "POST", "/login")[2]
    status, headers, body = wsgi_call(app, "POST", "/login")
    assert status == 200 and headers["X-RateLimit-Limit"] == "2"
    status, headers, body = wsgi_call(app, "POST", "/login")
    assert status == 429 and "in 300 seconds" in json.loads(body)["error"]
    assert 1 <= int(headers["Retry-After"]) <= 300
    for _ in range(3):
        status, headers, _ = wsgi_call(app, "GET", "/free")
        assert status == 200 and "X-RateLimit-Limit" not in headers


def test_zero_turns_the_limit_off() -> None:
    app = make_app(0)
    for _ in range(5):
        status, headers, _ = wsgi_call(app, "GET", "/items")
        assert status == 200 and "X-RateLimit-Limit" not in headers
    assert "429" not in app.openapi()["paths"]["/items"]["get"]["responses"]


def test_a_store_of_your_own() -> None:
    class Shared(Store):
        def __init__(self) -> None:
            self.keys: list[str] = []

        def hit(self, key: str, limit: int, window: float) -> Decision:
            self.keys.append(key)
            return Decision(len(self.keys) <= limit, max(0, limit - len(self.keys)), 7)

    store = Shared()
    app = make_app(1, store=store)
    assert wsgi_call(app, "GET", "/items")[0] == 200
    status, headers, _ = wsgi_call(app, "GET", "/items")
    assert status == 429 and headers["Retry-After"] == "7"
    assert store.keys == ["app\x00127.0.0.1", "app\x00127.0.0.1"]


def test_the_memory_store_forgets_silent_clients() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    for n in range(50):
        store.hit(f"client{n}", 5, 60)
    clock.now += 61
    store.hit("late", 5, 60)
    assert list(store._hits) == ["late"]


def test_bad_settings_fail_at_setup() -> None:
    with pytest.raises(ValueError):
        RateLimit(5, window=0)
    with pytest.raises(ValueError):
        RateLimit(5, key="cookie")


def test_the_document_has_429_and_the_headers() -> None:
    document = make_app(5).openapi()
    responses = document["paths"]["/items"]["get"]["responses"]
    assert responses["429"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert set(responses["429"]["headers"]) >= {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"}
    assert "X-RateLimit-Remaining" in responses["200"]["headers"]
    assert "429" in document["paths"]["/items"]["post"]["responses"]
    pytest.importorskip("openapi_spec_validator").validate(document)
