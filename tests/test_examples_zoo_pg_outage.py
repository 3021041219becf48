"""The zoo behind haproxy while PostgreSQL is stopped for 10 s, then started again.

Two zoo instances share one PostgreSQL (a cluster of this test's own, so that
stopping it disturbs no other test); haproxy checks ``GET /readyz``, which does
not touch the database.  While the database is down:

* both instances stay UP in haproxy (``show servers state`` on its admin socket),
  since readiness is about the instance, not the database every instance shares;
* every client gets the zoo's own JSON 503 with ``Retry-After``, never haproxy's
  HTML page: reads, writes, and writes with an ``Idempotency-Key`` (whose store
  fails fast behind its circuit breaker); the rate limit, whose store fails too,
  lets requests through (``on_store_error="allow"``).

Once ``pg_ctl start`` returns, writes succeed again within 2 s: the stores'
breakers let a probe through every second, and the zoo's own store drains its
pool after a fault (examples/zoo/store_pg.py).
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.pg import PgCluster, missing_postgres
from tests.test_idempotency_processes import Answer, Balancer, Process, call, environment, start_balancer
from tests.test_examples_zoo_scaleout import stop_haproxy

TOKEN = "outage-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOWN_FOR = 10.0  # seconds PostgreSQL stays stopped
BACK_WITHIN = 2.0  # seconds after its return by which a write must succeed


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    reason = missing_postgres()
    if reason:
        pytest.skip(reason)
    own = PgCluster()
    try:
        yield own
    finally:
        own.close()


def zoo_command(port: int, url: str) -> list[str]:
    return [sys.executable, "-m", "examples.zoo", "--port", str(port), "--db", url, "--token", TOKEN,
            "--rate-limit", "100000", "--trust-proxy", "127.0.0.1", "--empty"]


def write(port: int, key: str | None = None) -> Answer:
    headers = dict(AUTH)
    if key is not None:
        headers["Idempotency-Key"] = key
    return call(port, "POST", "/v1/zoos", {"name": f"zoo {uuid.uuid4().hex[:12]}", "city": "Outage"}, headers)


def test_a_stopped_database_is_the_zoos_json_503_and_writes_come_back(cluster: PgCluster, tmp_path: Path) -> None:
    url = cluster.create_database("outage")
    ports = {"a": free_port(), "b": free_port()}
    env = environment(url)
    instances = [Process(zoo_command(port, url), port, env, tmp_path / f"{name}.log") for name, port in ports.items()]
    balancer: Balancer | None = None
    try:
        for instance in instances:
            instance.start()
        balancer = start_balancer(tmp_path, ports)
        assert write(balancer.port)[0] == 201 and write(balancer.port, str(uuid.uuid4()))[0] == 201

        answers: list[tuple[str, Answer]] = []
        states: list[dict[str, bool]] = []
        stop = threading.Event()

        def client(kind: str) -> None:
            while not stop.is_set():
                if kind == "read":
                    answer = call(balancer.port, "GET", "/v1/zoos")
                else:
                    answer = write(balancer.port, str(uuid.uuid4()) if kind == "keyed" else None)
                answers.append((kind, answer))
                time.sleep(0.05)

        cluster.stop()
        down_since = time.monotonic()
        clients = [threading.Thread(target=client, args=(kind,)) for kind in ("read", "write", "keyed")]
        for thread in clients:
            thread.start()
        try:
            while time.monotonic() - down_since < DOWN_FOR:
                states.append(balancer.servers_up())
                time.sleep(0.25)
        finally:
            stop.set()
            for thread in clients:
                thread.join(60)
        assert states and all(state == {"a": True, "b": True} for state in states), states
        kinds = {kind for kind, _ in answers}
        assert kinds == {"read", "write", "keyed"}, answers
        for kind, (status, headers, body) in answers:
            assert status == 503, (kind, status, body)
            assert headers["content-type"].startswith("application/json") and isinstance(body, dict), (kind, body)
            assert body["error"] and int(headers["retry-after"]) >= 1, (kind, body)
        assert sum(kind == "keyed" for kind, _ in answers) >= 20  # they failed fast: many in 10 s

        cluster.start()
        back = time.monotonic()
        done: dict[str, float] = {}
        for kind, key in (("write", None), ("keyed", "k")):
            while time.monotonic() - back < 30:  # a bound for the loop; the assertion is below
                if write(balancer.port, str(uuid.uuid4()) if key else None)[0] == 201:
                    done[kind] = time.monotonic() - back
                    break
                time.sleep(0.05)
        assert set(done) == {"write", "keyed"} and max(done.values()) <= BACK_WITHIN, done
        assert balancer.servers_up() == {"a": True, "b": True}
    finally:
        if balancer is not None:
            stop_haproxy(balancer.process)
        for instance in instances:
            instance.stop()
