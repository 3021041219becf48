"""The zoo's PostgreSQL store (examples/zoo/store_pg.py) and the throwaway cluster the tests use.

The whole zoo suite runs against both engines (the ``zoo_db`` fixture);
here are the parts only PostgreSQL has: the cluster itself, the URL that
selects the engine, the versioned schema.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from examples.zoo.engine import is_postgres
from tests.conftest import free_port, make_client
from tests.pg import PgCluster
from tests.test_examples_zoo import AUTH, new_app, send_json
from tests.test_examples_zoo_server import ROOT
from tests.zoo_pg_fixtures import pg_cluster, pg_database, zoo_db, zoo_dbs  # noqa: F401


def test_the_cluster_listens_on_loopback_only_and_each_database_is_new(pg_cluster: PgCluster) -> None:
    psycopg = pytest.importorskip("psycopg")
    first, second = pg_cluster.create_database(), pg_cluster.create_database()
    assert first != second and first.startswith(f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/")
    with psycopg.connect(first, connect_timeout=10) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
    for url in (first, second):
        pg_cluster.drop_database(url)


# --- the schema is versioned: an old database is upgraded on start --------------------


def _v1_sqlite(path: str, names: list[str]) -> None:
    """An SQLite database as schema 1 left it: keys by casefold() alone."""
    import sqlite3

    from examples.zoo.store import SCHEMA

    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA)
        for name in names:
            conn.execute("INSERT INTO zoos (name, name_key, city, created_at, updated_at) VALUES (?, ?, 'x', 't', 't')",
                         (name, name.casefold()))
        conn.execute("PRAGMA user_version = 1")


def _v1_postgres(url: str, names: list[str]) -> None:
    import psycopg

    from examples.zoo.store_pg import migrate

    assert migrate(url, empty=True, target=1) == 0
    with psycopg.connect(url) as conn:
        for name in names:
            conn.execute("INSERT INTO zoos (name, name_key, city, created_at, updated_at) VALUES (%s, %s, 'x', 't', 't')",
                         (name, name.casefold()))


def test_an_old_database_is_upgraded_on_start(zoo_db: str) -> None:
    """Schema 1 keyed names by casefold(); schema 2 by NFKC + casefold: keys are redone on start,
    and of two names that become one, the older zoo keeps the name's key."""
    names = ["Caf\u00e9", "Cafe\u0301", "Zoo\u200b", "Other"]  # NFC and NFD; a zero-width space
    if is_postgres(zoo_db):
        _v1_postgres(zoo_db, names)
    else:
        _v1_sqlite(zoo_db, names)
    app = new_app(zoo_db)
    try:
        client = make_client(app)
        assert [zoo["name"] for zoo in client.get("/v1/zoos").json] == names  # no data lost
        assert [zoo["id"] for zoo in client.get("/v1/zoos", params={"name": "CAFÉ"}).json] == [1]
        assert [zoo["id"] for zoo in client.get("/v1/zoos", params={"name": "zoo"}).json] == [3]
        assert send_json(client, "POST", "/v1/zoos", {"name": "ZOO", "city": "y"}).status_int == 409
        assert send_json(client, "POST", "/v1/zoos", {"name": "Zoo 2", "city": "y"}).status_int == 201
    finally:
        app.close()
    if is_postgres(zoo_db):
        import psycopg

        with psycopg.connect(zoo_db) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        from examples.zoo.store_pg import SCHEMA_VERSION

        assert versions == list(range(1, SCHEMA_VERSION + 1))
    else:
        import sqlite3

        from examples.zoo.store import SCHEMA_VERSION as SQLITE_VERSION

        with sqlite3.connect(zoo_db) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SQLITE_VERSION,)
            assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)  # schema 3 added the queue
    again = new_app(zoo_db)  # a current database is left as it is
    assert make_client(again).get("/v1/zoos").headers["X-Total-Count"] == "5"
    again.close()


def test_instances_starting_together_create_the_schema_once(pg_database: str) -> None:
    from examples.zoo.store_pg import PgStore

    stores: list[Any] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(PgStore(pg_database))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(stores) == 4
    assert stores[0].count("zoo") == 2 and stores[0].count("animal_type") == 6  # seeded once
    for store in stores:
        store.close()


# --- a zoo name taken between the check and the write ------------------------------------


@pytest.mark.parametrize("write", ["create", "rename"])
def test_a_name_taken_while_the_write_waits_answers_409_naming_the_zoo_that_has_it(pg_database: str, write: str) -> None:
    """The check finds the name free; another transaction takes it and commits while our write waits on
    the unique index.  The write (ON CONFLICT for a create, a savepoint for a rename) raises Conflicting
    after checking again, and changes nothing.  Races of real requests reach this rarely; here it is forced."""
    import psycopg

    from examples.zoo.store import Conflicting
    from examples.zoo.store_pg import PgStore

    store = PgStore(pg_database)
    outcome: list[Any] = []

    def attempt() -> None:
        try:
            if write == "create":
                outcome.append(store.create("zoo", {"name": "TAKEN", "city": "y"}))
            else:
                outcome.append(store.update("zoo", 1, {"name": "TAKEN"}, replace=False))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            outcome.append(exc)

    try:
        with psycopg.connect(pg_database) as other, psycopg.connect(pg_database, autocommit=True) as admin:
            row = other.execute("INSERT INTO zoos (name, name_key, city, created_at, updated_at)"
                                " VALUES ('Taken', 'taken', 'x', 't', 't') RETURNING id").fetchone()
            assert row is not None
            thread = threading.Thread(target=attempt)
            thread.start()
            deadline = time.monotonic() + 10
            while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                " AND wait_event_type = 'Lock'").fetchone() != (1,):  # our write waits on other
                assert time.monotonic() < deadline and thread.is_alive(), outcome
                time.sleep(0.01)
            other.commit()
        thread.join(timeout=10)
        [error] = outcome
        assert isinstance(error, Conflicting) and str(error) == f"a zoo named 'Taken' already exists (zoo {row[0]})"
        assert store.get("zoo", 1)["name"] == "Zoo Berlin" and store.count("zoo") == 3
    finally:
        store.close()


# --- faults: PostgreSQL gone or connections cut ------------------------------------------


def test_connections_cut_by_the_server_answer_503_then_recover(pg_database: str) -> None:
    import psycopg

    app = new_app(pg_database)
    client = make_client(app)
    try:
        assert client.get("/v1/zoos/1").status_int == 200
        with psycopg.connect(pg_database, autocommit=True) as admin:  # what a failover or a restart does
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        answers = [send_json(client, "POST", "/v1/zoos", {"name": f"after {n}", "city": "x"}) for n in range(3)]
        statuses = [answer.status_int for answer in answers]
        for answer in answers:
            if answer.status_int == 503:
                assert int(answer.headers["Retry-After"]) >= 1 and "unreachable" in answer.json["error"]
        assert set(statuses) <= {201, 503} and statuses[-1] == 201, statuses  # the pool reconnects
        assert client.get("/v1/zoos/1").status_int == 200
    finally:
        app.close()


def test_a_read_only_database_serves_reads_and_answers_503_to_every_write(pg_database: str) -> None:
    import psycopg

    new_app(pg_database).close()  # the schema exists
    name = pg_database.rsplit("/", 1)[1]
    with psycopg.connect(pg_database, autocommit=True) as admin:  # as a hot standby, or a database set read-only
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    app = new_app(pg_database, rate_limit=100)  # the rate limit cannot count either: requests go through
    try:
        client = make_client(app)
        assert client.get("/v1/zoos/1").status_int == 200
        for method, url, body in (("POST", "/v1/zoos", {"name": "n", "city": "c"}),
                                  ("PATCH", "/v1/zoos/1", {"city": "x"}), ("DELETE", "/v1/animals/1", None)):
            answer = send_json(client, method, url, body) if body else client.delete(url, headers=AUTH,
                                                                                     expect_errors=True)
            assert answer.status_int == 503 and "read-only" in answer.json["error"], answer
            assert int(answer.headers["Retry-After"]) >= 1
    finally:
        app.close()


def test_an_unreachable_database_stops_the_cli_with_a_message(tmp_path: Any) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    done = subprocess.run([sys.executable, "-m", "examples.zoo", "--port", str(free_port()), "--db", url],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "cannot open the database" in done.stderr and "Traceback" not in done.stderr


def test_wsgi_create_app_reads_the_environment(pg_database: str) -> None:
    from examples.zoo.wsgi import create_app

    app = create_app({"ZOO_DB": pg_database, "ZOO_TOKEN": "t", "ZOO_RATE_LIMIT": "0", "ZOO_EMPTY": "1"})
    try:
        client = make_client(app)
        assert client.get("/v1/zoos").json == []
        created = client.post("/v1/zoos", json.dumps({"name": "n", "city": "c"}),
                              headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
        assert created.status_int == 201 and "X-RateLimit-Limit" not in created.headers
    finally:
        app.close()


# --- the rate limit is counted in the database ------------------------------------------------


def test_the_rate_limit_holds_across_apps_sharing_a_database(pg_database: str) -> None:
    apps = [new_app(pg_database, rate_limit=7) for _ in range(3)]
    try:
        clients = [make_client(app) for app in apps]
        answers = [clients[n % 3].get("/v1/zoos", expect_errors=True) for n in range(10)]
        assert [a.status_int for a in answers] == [200] * 7 + [429] * 3
        assert [a.headers["X-RateLimit-Remaining"] for a in answers[:7]] == [str(6 - n) for n in range(7)]
        assert all(1 <= int(a.headers["Retry-After"]) <= 60 for a in answers[7:])
        # another client has its own count, on every instance
        assert clients[1].get("/v1/zoos", extra_environ={"REMOTE_ADDR": "10.0.0.9"}).status_int == 200
    finally:
        for app in apps:
            app.close()


def test_the_rate_limit_lets_requests_through_when_the_database_cannot_count(pg_database: str) -> None:
    import psycopg

    app = new_app(pg_database, rate_limit=100)
    try:
        client = make_client(app)
        assert client.get("/v1/zoos").status_int == 200
        with psycopg.connect(pg_database, autocommit=True) as admin:
            admin.execute("DROP TABLE rate_hits")  # the counts are gone: a fault, not a reason to refuse
        assert client.get("/v1/zoos").status_int == 200
    finally:
        app.close()


def test_the_cli_never_prints_a_password() -> None:
    from examples.zoo.engine import describe

    assert describe("postgresql://zoo:s3cret@db.internal:5432/zoo") == "postgresql://zoo:***@db.internal:5432/zoo"
    assert describe("postgresql://zoo@db.internal/zoo") == "postgresql://zoo@db.internal/zoo"
    assert describe("zoo.db") == "zoo.db"
    url = f"postgresql://zoo:s3cret@127.0.0.1:{free_port()}/nothing"
    done = subprocess.run([sys.executable, "-m", "examples.zoo", "--port", str(free_port()), "--db", url],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "s3cret" not in done.stdout + done.stderr and "zoo:***@" in done.stderr
