"""The rate limit's shared stores (SQLite, PostgreSQL), the breaker, and what the limit does when a store fails.

In process, with real SQLite files and a real PostgreSQL; several processes
are in tests/test_ratelimit_stores_processes.py.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from restkit import App
from restkit.ratelimit import PostgresStore, RateLimit, SQLiteStore, Store
from restkit.storage import Breaker, PostgresDatabase, StoreUnavailable
from tests.conftest import free_port, wsgi_call
from tests.pg import PgCluster
from tests.zoo_pg_fixtures import pg_cluster  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        sqlite = SQLiteStore(str(tmp_path / "counts.db"))
        yield sqlite
        sqlite.close()
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database("counts")
    pg = PostgresStore(url)
    yield pg
    pg.close()
    cluster.drop_database(url)


def test_the_sliding_window(store: Store) -> None:
    decisions = [store.hit("client\0a", 3, 60) for _ in range(5)]
    assert [(d.allowed, d.remaining) for d in decisions] == [(True, 2), (True, 1), (True, 0), (False, 0), (False, 0)]
    assert all(1 <= d.reset <= 60 for d in decisions)
    assert store.hit("client\0b", 3, 60).allowed  # another key counts apart
    assert store.hit("client\\0a", 3, 60).allowed  # an escaped NUL is not a NUL


def test_a_short_window_lets_requests_back_in(store: Store) -> None:
    import time

    assert store.hit("k", 1, 0.2).allowed and not store.hit("k", 1, 0.2).allowed
    time.sleep(0.3)
    assert store.hit("k", 1, 0.2).allowed


def test_threads_racing_on_one_key_get_exactly_the_limit(store: Store) -> None:
    allowed: list[bool] = []
    start = threading.Barrier(8)

    def client() -> None:
        start.wait(10)
        for _ in range(10):
            allowed.append(store.hit("crowd", 25, 60).allowed)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(allowed) == 80 and allowed.count(True) == 25


def test_bad_table_names_fail_at_setup(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        SQLiteStore(str(tmp_path / "x.db"), table="hits; DROP TABLE users")
    with pytest.raises(ValueError):
        PostgresStore("postgresql://nobody@127.0.0.1/none", table="1st")
    with pytest.raises(ValueError):
        RateLimit(5, on_store_error="ignore")


# --- the breaker -------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_fails_fast_lets_one_probe_through_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    breaker = Breaker("the test store", retry=1.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="restkit.storage"):
        breaker.enter()
        breaker.failed(OSError("connection refused"))
        assert breaker.state == "open"
        for _ in range(3):
            with pytest.raises(StoreUnavailable) as refused:
                breaker.enter()
            assert refused.value.retry_after == 1
        clock.now += 1.0
        breaker.enter()  # the probe
        assert breaker.state == "probing"
        with pytest.raises(StoreUnavailable):
            breaker.enter()  # the others still fail fast while it probes
        breaker.failed(OSError("connection refused"))  # still down: open again, no new log line
        clock.now += 1.0
        breaker.enter()
        breaker.succeeded()
        assert breaker.state == "closed"
        breaker.enter()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [("ERROR", "the test store is unavailable (connection refused); failing fast, retrying every 1 s"),
                     ("WARNING", "the test store is available again")]


def test_a_database_that_is_down_is_not_asked_while_the_breaker_is_open() -> None:
    """PostgreSQL on a port where nothing listens: one connection attempt, then no more until the retry time."""
    pytest.importorskip("psycopg")
    attempts: list[int] = []

    class Counting(PostgresDatabase):
        def _connect(self) -> Any:
            attempts.append(1)
            return super()._connect()

    db = Counting(f"postgresql://nobody@127.0.0.1:{free_port()}/none", [], retry=60)
    for _ in range(50):
        with pytest.raises(StoreUnavailable), db.connection():
            pass
    assert len(attempts) == 1


# --- the policy: allow or refuse ------------------------------------------------------------------------


def broken(tmp_path: Path) -> SQLiteStore:
    """A store whose file cannot be opened (the path is a directory)."""
    (tmp_path / "counts.db").mkdir()
    return SQLiteStore(str(tmp_path / "counts.db"))


def make_app(limit: RateLimit) -> App:
    app = App(openapi=True)
    app.use(limit)

    @app.get("/items")
    def items(request: Any) -> list[int]:
        return [1]

    return app


def test_by_default_a_failed_store_lets_requests_through_logged_once(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(RateLimit(1, store=broken(tmp_path)))
    with caplog.at_level(logging.INFO, logger="restkit.storage"):
        answers = [wsgi_call(app, "GET", "/items") for _ in range(5)]
    assert [status for status, _, _ in answers] == [200] * 5  # over the limit of 1, but uncounted
    assert all("X-RateLimit-Remaining" not in headers for _, headers, _ in answers)
    assert len(caplog.records) == 1 and caplog.records[0].levelname == "ERROR"


def test_refuse_answers_503_json_with_retry_after(tmp_path: Path) -> None:
    app = make_app(RateLimit(1, store=broken(tmp_path), on_store_error="refuse"))
    status, headers, body = wsgi_call(app, "GET", "/items")
    assert status == 503 and headers["Retry-After"] == "1"
    assert json.loads(body) == {"error": "the rate limit cannot count requests now; retry in 1 s"}
    assert wsgi_call(app, "GET", "/nowhere")[0] == 503  # what the router answers counts too
    responses = app.openapi()["paths"]["/items"]["get"]["responses"]
    assert "Retry-After" in responses["503"]["headers"]


def test_psycopg_is_imported_by_the_first_connection_only() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys, restkit.ratelimit, restkit.idempotency, restkit.storage;"
            " restkit.ratelimit.PostgresStore('postgresql://nobody@127.0.0.1/none');"
            " print('psycopg' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.stdout.strip() == "False", done.stderr


def test_postgresql_stopped_fails_fast_and_comes_back_within_a_second_or_two(caplog: pytest.LogCaptureFixture) -> None:
    """Both PostgreSQL stores with the server stopped (``pg_ctl stop``) and started again.

    While it is down, calls fail with StoreUnavailable and the database is asked
    at most once a second (the breaker), whatever the number of calls; once it is
    back, the next probe finds it: within the breaker's second, plus one.
    """
    import time

    from restkit.idempotency import PostgresKeyStore
    from tests.pg import missing_postgres

    reason = missing_postgres()
    if reason:
        pytest.skip(reason)
    cluster = PgCluster()
    counts = keys = None
    try:
        url = cluster.create_database("outage")
        counts, keys = PostgresStore(url), PostgresKeyStore(url)
        assert counts.hit("k", 100, 60).allowed and keys.claim("k", "f", "t", 60).outcome == "run"
        attempts: list[int] = []
        connect = type(counts.db)._connect

        def counting(db: Any) -> Any:
            attempts.append(1)
            return connect(db)

        counts.db._connect = counting.__get__(counts.db)  # type: ignore[method-assign]
        cluster.stop()
        with caplog.at_level(logging.INFO, logger="restkit.storage"):
            refused, started = 0, time.monotonic()
            while time.monotonic() - started < 3:
                for store_call in (lambda: counts.hit("k", 100, 60), lambda: keys.claim("k2", "f", "t", 60)):
                    try:
                        store_call()
                    except StoreUnavailable as exc:
                        refused += 1
                        assert exc.retry_after == 1
                time.sleep(0.01)
            assert refused > 100 and len(attempts) <= 4  # a probe a second at most
            cluster.start()
            back = time.monotonic()
            while time.monotonic() - back < 10:  # a bound for the loop; the assertion is below
                try:
                    counts.hit("k", 100, 60)
                    keys.claim("k3", "f", "t", 60)
                    break
                except StoreUnavailable:
                    time.sleep(0.05)
            assert time.monotonic() - back <= 2.0
        messages = [r.getMessage() for r in caplog.records]
        assert sum("unavailable" in m for m in messages) == 2  # one line per store per incident...
        assert sum("available again" in m for m in messages) == 2  # ...and one for its end
    finally:
        for store in (counts, keys):
            if store is not None:
                store.close()
        cluster.close()
