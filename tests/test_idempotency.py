"""restkit.idempotency in process: replays, 409, 422, 5xx released, key rules, scopes, stores, the document.

The processes, the hosts and the killed clients are in tests/test_idempotency_processes.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from restkit import App, Response
from restkit.auth import Bearer, Identity
from restkit.idempotency import (
    Answer,
    Idempotency,
    KeyStore,
    MemoryKeyStore,
    PostgresKeyStore,
    SQLiteKeyStore,
    parse_key,
)
from restkit.storage import StoreUnavailable
from tests.conftest import wsgi_call
from tests.pg import PgCluster
from tests.zoo_pg_fixtures import pg_cluster  # noqa: F401

JSON = {"Content-Type": "application/json"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_app(keys: Idempotency | None = None, **route: Any) -> tuple[App, list[Any]]:
    """An app whose POST /orders creates an order (a list the test reads) and answers 201 with it."""
    app = App(openapi=True)
    app.use(keys or Idempotency(MemoryKeyStore(clock=Clock())))
    orders: list[Any] = []

    @app.post("/orders", **route)
    def create(request: Any) -> Any:
        body = request.json
        if body.get("fail"):
            orders.append(None)
            return {"error": "the payment service is down"}, 503
        if body.get("crash"):
            orders.append(None)
            raise RuntimeError("a bug")
        if body.get("stream"):
            return Response(iter([b"a", b"b"]), 201)
        orders.append(body)
        return {"id": len(orders), **body}, 201, {"Location": f"/orders/{len(orders)}"}

    @app.patch("/orders/<int:order>")
    def change(request: Any, order: int) -> dict[str, Any]:
        orders.append(request.json)
        return {"id": order, "changes": len(orders)}

    @app.get("/orders")
    def listing(request: Any) -> list[Any]:
        return orders

    return app, orders


def post(app: App, body: Any, key: str | None = "k-1", path: str = "/orders", **headers: str) -> tuple[int, dict[str, str], Any]:
    sent = {**JSON, **headers}
    if key is not None:
        sent["Idempotency-Key"] = key
    status, answer, raw = wsgi_call(app, "POST", path, sent, json.dumps(body).encode())
    return status, answer, json.loads(raw) if raw and answer.get("Content-Type", "").startswith("application/json") else raw


def test_a_retry_gets_the_first_answer_replayed() -> None:
    app, orders = make_app()
    first = post(app, {"item": "tea"})
    again = post(app, {"item": "tea"})
    assert first[0] == again[0] == 201 and first[2] == again[2] == {"id": 1, "item": "tea"}
    assert again[1]["Location"] == first[1]["Location"] == "/orders/1"
    assert again[1]["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first[1]
    assert len(orders) == 1


def test_without_a_key_every_request_runs() -> None:
    app, orders = make_app()
    assert post(app, {"item": "tea"}, key=None)[0] == post(app, {"item": "tea"}, key=None)[0] == 201
    assert len(orders) == 2


def test_another_request_with_the_same_key_is_422() -> None:
    app, orders = make_app()
    assert post(app, {"item": "tea"})[0] == 201
    for body, path in (({"item": "coffee"}, "/orders"), ({"item": "tea"}, "/orders/1")):
        status, _, answer = (post(app, body, path=path) if path == "/orders" else
                             _patch(app, path, body, "k-1"))
        assert status == 422, answer
        assert answer == {"error": "this Idempotency-Key was used for another request (method, path or body);"
                                   " use a new key for a new request"}
    assert len(orders) == 1


def _patch(app: App, path: str, body: Any, key: str) -> tuple[int, dict[str, str], Any]:
    status, headers, raw = wsgi_call(app, "PATCH", path, {**JSON, "Idempotency-Key": key}, json.dumps(body).encode())
    return status, headers, json.loads(raw)


def test_patch_takes_keys_too() -> None:
    app, orders = make_app()
    first = _patch(app, "/orders/1", {"item": "tea"}, "p-1")
    again = _patch(app, "/orders/1", {"item": "tea"}, "p-1")
    assert first[2] == again[2] == {"id": 1, "changes": 1} and again[1]["Idempotent-Replayed"] == "true"


def test_a_retry_while_the_first_runs_is_409() -> None:
    started, finish = threading.Event(), threading.Event()
    app = App()
    app.use(Idempotency(MemoryKeyStore()))

    @app.post("/slow")
    def slow(request: Any) -> tuple[dict[str, str], int]:
        started.set()
        finish.wait(10)
        return {"done": "yes"}, 201

    first: list[Any] = []
    worker = threading.Thread(target=lambda: first.append(post(app, {}, path="/slow")))
    worker.start()
    try:
        assert started.wait(10)
        status, headers, answer = post(app, {}, path="/slow")
        assert status == 409 and headers["Retry-After"] == "1"
        assert answer == {"error": "a request with this Idempotency-Key is still being answered; retry in a moment"}
        assert post(app, {"other": 1}, path="/slow")[0] == 422  # another body: 422 even while it runs
    finally:
        finish.set()
        worker.join(10)
    assert first[0][0] == 201
    assert post(app, {}, path="/slow")[1]["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("body", [{"fail": True}, {"crash": True}], ids=["503", "500"])
def test_a_5xx_is_not_kept_the_retry_runs_again(body: dict[str, Any]) -> None:
    app, orders = make_app()
    assert post(app, body)[0] >= 500
    assert post(app, body)[0] >= 500
    assert len(orders) == 2  # both ran
    assert post(app, {"item": "tea"})[0] == 201  # the key is free: another request may take it


def test_a_4xx_is_kept() -> None:
    app, orders = make_app()
    status, _, raw = wsgi_call(app, "POST", "/orders", {**JSON, "Idempotency-Key": "bad"}, b"{not json")
    assert status == 400
    status, headers, _ = wsgi_call(app, "POST", "/orders", {**JSON, "Idempotency-Key": "bad"}, b"{not json")
    assert status == 400 and headers["Idempotent-Replayed"] == "true"


def test_a_stream_is_not_kept() -> None:
    app, _ = make_app()
    assert post(app, {"stream": True})[2] == b"ab"
    assert "Idempotent-Replayed" not in post(app, {"stream": True})[1]


def test_an_answer_is_kept_for_the_ttl_only() -> None:
    clock = Clock()
    app, orders = make_app(Idempotency(MemoryKeyStore(clock=clock), ttl=3600))
    post(app, {"item": "tea"})
    clock.now += 3599
    assert post(app, {"item": "tea"})[1].get("Idempotent-Replayed") == "true"
    clock.now += 2
    assert "Idempotent-Replayed" not in post(app, {"item": "tea"})[1] and len(orders) == 2


def test_a_claim_whose_process_died_is_taken_over_after_the_lease() -> None:
    clock = Clock()
    store = MemoryKeyStore(clock=clock)
    assert store.claim("k", "f", "dead", 60).outcome == "run"  # its process never answers
    app, orders = make_app(Idempotency(store, lease=60))
    assert store.claim("k", "f", "t", 60).outcome == "running"
    clock.now += 61
    assert store.claim("k", "f", "t", 60).outcome == "run"
    store.keep("k", "dead", Answer(201, (), b"late"), 3600)  # the dead claim's answer no longer counts
    assert store.claim("k", "f", "t2", 60).outcome == "running"


KEYS = [
    ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
    ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),  # the draft's sf-string
    ("a" * 255, "a" * 255),
    ("!~", "!~"),
]
BAD_KEYS = ["", '""', "a" * 256, "a b", "caf\u00e9", "tab\there", '"a"b"', '"a\\b"', "\x7f"]


@pytest.mark.parametrize("value, key", KEYS, ids=["uuid", "quoted", "255", "punctuation"])
def test_keys_that_are_taken(value: str, key: str) -> None:
    assert parse_key(value) == key


@pytest.mark.parametrize("value", BAD_KEYS, ids=["empty", "empty-quoted", "256", "space", "latin-1", "tab",
                                                 "inner-quote", "escape", "del"])
def test_keys_that_are_400(value: str) -> None:
    app, orders = make_app()
    status, _, raw = wsgi_call(app, "POST", "/orders", {**JSON, "Idempotency-Key": value}, b"{}")
    assert status == 400 and json.loads(raw) == {
        "error": "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID, say), bare or in quotes"}
    assert orders == []


def test_a_route_may_require_the_key_or_ignore_it() -> None:
    keys = Idempotency(MemoryKeyStore())
    app, orders = make_app(keys, idempotency=keys.require())
    status, _, answer = post(app, {}, key=None)
    assert status == 400 and answer == {"error": "POST /orders needs an Idempotency-Key header (a new UUID per operation)"}
    app, orders = make_app(keys, idempotency=None)
    post(app, {"item": "tea"})
    assert "Idempotent-Replayed" not in post(app, {"item": "tea"})[1] and len(orders) == 2


def test_keys_are_scoped_to_the_credential() -> None:
    bearer = Bearer({"ada-token": Identity("ada"), "ada-other": Identity("ada"), "bob-token": Identity("bob")})
    app, orders = make_app(auth=bearer)

    def as_(token: str) -> tuple[int, dict[str, str], Any]:
        return post(app, {"item": "tea"}, Authorization=f"Bearer {token}")

    assert as_("ada-token")[0] == 201
    assert as_("ada-other")[1].get("Idempotent-Replayed") == "true"  # the same identity, another token
    assert "Idempotent-Replayed" not in as_("bob-token")[1]  # bob's key is his own
    assert len(orders) == 2


def test_without_auth_the_authorization_header_scopes_the_keys() -> None:
    app, orders = make_app()
    post(app, {"item": "tea"}, Authorization="Basic YTpi")
    assert post(app, {"item": "tea"}, Authorization="Basic YTpi")[1].get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in post(app, {"item": "tea"}, Authorization="Basic Yzpk")[1]
    assert "Idempotent-Replayed" not in post(app, {"item": "tea"})[1]  # anonymous: a scope of its own
    assert len(orders) == 3


def test_gets_have_no_idempotency_step() -> None:
    app, _ = make_app()
    assert wsgi_call(app, "GET", "/orders", {"Idempotency-Key": "not checked here"})[0] == 200
    get, post_ = app.router._lookup("GET", "/orders")[0], app.router._lookup("POST", "/orders")[0]
    assert get is not None and post_ is not None
    assert not Idempotency().applies_to(get) and Idempotency().applies_to(post_)
    assert id(get) not in app._chains or app._chains[id(get)] == ()  # no chain: a GET costs nothing more


def test_the_document_has_the_header_and_the_statuses() -> None:
    app, _ = make_app()
    document = app.openapi()
    create = document["paths"]["/orders"]["post"]
    header = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and header["required"] is False and header["schema"]["type"] == "string"
    assert {"400", "409", "422", "503"} <= set(create["responses"])
    assert "Retry-After" in create["responses"]["409"]["headers"]
    assert "Idempotent-Replayed" in create["responses"]["200"]["headers"]
    assert "Idempotency-Key" not in {p["name"] for p in document["paths"]["/orders"]["get"].get("parameters", [])}
    assert "409" not in document["paths"]["/orders"]["get"]["responses"]


def test_bad_settings_fail_at_setup() -> None:
    with pytest.raises(ValueError):
        Idempotency(ttl=0)
    with pytest.raises(ValueError):
        Idempotency(on_store_error="maybe")
    with pytest.raises(ValueError):
        SQLiteKeyStore("x.db", table="keys; DROP TABLE x")


# --- the stores: one contract --------------------------------------------------------------------


def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    if request.param == "memory":
        yield MemoryKeyStore()
    elif request.param == "sqlite":
        sqlite = SQLiteKeyStore(str(tmp_path / "keys.db"))
        yield sqlite
        sqlite.close()
    else:
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        url = cluster.create_database("keys")
        pg = PostgresKeyStore(url)
        yield pg
        pg.close()
        cluster.drop_database(url)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    yield from open_store(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    yield from open_store(request, tmp_path)


def test_the_store_contract(store: KeyStore) -> None:
    answer = Answer(201, (("Location", "/orders/1"), ("Content-Type", "application/json")), b'{"id":1}')
    assert store.claim("k", "f1", "t1", 60).outcome == "run"
    assert store.claim("k", "f1", "t2", 60).outcome == "running"
    assert store.claim("k", "f2", "t2", 60).outcome == "mismatch"
    store.keep("k", "t2", Answer(500, (), b"not mine"), 60)  # another claim's token: nothing kept
    assert store.claim("k", "f1", "t2", 60).outcome == "running"
    store.keep("k", "t1", answer, 60)
    assert store.claim("k", "f1", "t3", 60) == ("replay", answer)
    assert store.claim("k", "f2", "t3", 60).outcome == "mismatch"
    assert store.claim("other", "f1", "t4", 60).outcome == "run"
    store.release("other", "t5")  # not the holder: still held
    assert store.claim("other", "f1", "t6", 60).outcome == "running"
    store.release("other", "t4")
    assert store.claim("other", "f9", "t7", 60).outcome == "run"


def test_the_store_contract_expiry(shared_store: KeyStore) -> None:
    """(The memory store's expiry is tested with a clock above.)"""
    store = shared_store
    assert store.claim("lease", "f", "t1", 0.05).outcome == "run"
    store.keep("kept", "none", Answer(201, (), b""), 0.05)
    time.sleep(0.2)
    assert store.claim("lease", "f", "t2", 60).outcome == "run"  # the dead claim's lease ran out


def test_claims_racing_on_one_key_have_one_winner(store: KeyStore) -> None:
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def claim(n: int) -> None:
        start.wait(10)
        outcomes.append(store.claim("race", "f", f"t{n}", 60).outcome)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["run"] + ["running"] * 7


# --- when the store fails -----------------------------------------------------------------------


def broken_store(tmp_path: Path) -> SQLiteKeyStore:
    """An SQLite store whose file cannot be opened (its path is a directory)."""
    (tmp_path / "keys.db").mkdir()
    return SQLiteKeyStore(str(tmp_path / "keys.db"))


def test_a_failed_store_refuses_keyed_requests_with_503(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app, orders = make_app(Idempotency(broken_store(tmp_path)))
    with caplog.at_level("ERROR", logger="restkit.storage"):
        answers = [post(app, {"item": "tea"}) for _ in range(5)]
    assert {(status, headers["Retry-After"]) for status, headers, _ in answers} == {(503, "1")}
    assert answers[0][2] == {"error": "idempotency keys cannot be checked now; retry in 1 s"}
    assert orders == []
    assert len([r for r in caplog.records if r.name == "restkit.storage"]) == 1  # one incident, one line
    assert post(app, {"item": "tea"}, key=None)[0] == 201  # no key: the store is not asked


def test_a_failed_store_may_let_keyed_requests_run(tmp_path: Path) -> None:
    app, orders = make_app(Idempotency(broken_store(tmp_path), on_store_error="allow"))
    assert post(app, {"item": "tea"})[0] == post(app, {"item": "tea"})[0] == 201
    assert len(orders) == 2



def test_the_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m benchmarks.idempotency --quick`` prints its table (no timing is checked)."""
    from benchmarks.idempotency import main

    assert main(["--quick"]) == 0
    table = capsys.readouterr().out
    for way in ("plain", "no key", "key, memory", "replay, memory", "key, sqlite", "replay, sqlite"):
        assert f"\n{way} " in table


def test_a_store_told_not_to_create_its_file_fails_instead(tmp_path: Path) -> None:
    store = SQLiteKeyStore(str(tmp_path / "app.db"), create=False)
    with pytest.raises(StoreUnavailable):
        store.claim("k", "f", "t", 60)
    assert not (tmp_path / "app.db").exists()
    (tmp_path / "app.db").touch()
    store.db.breaker.succeeded()  # as if its second had passed
    assert store.claim("k", "f", "t", 60).outcome == "run"
