"""Idempotency keys across real processes and hosts: no mocks, real sockets, real databases.

Two services run :mod:`tests.stores_app`, whose orders and keys share one database:

* ``sqlite``: ``python -m restkit 'tests.stores_app:create_app()' --workers 2`` on an SQLite file
  (two processes of one host, one port);
* ``postgresql``: two instances (each ``python -m restkit``, as two hosts would run
  it) on one PostgreSQL database, haproxy in front, round-robin.

Clients retry a 409 after a short pause, as the ``Retry-After`` tells them to.
Every socket has a timeout and every loop a bound; nothing asserts a duration.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, free_port
from tests.pg import PgCluster
from tests.test_examples_zoo_scaleout import Answer, json_exchange, stop_haproxy
from tests.zoo_pg_fixtures import pg_cluster  # noqa: F401

SPEC = "tests.stores_app:create_app()"
TIMEOUT = 30
def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    """One request on a new connection: status, lower-cased headers, JSON body (text when not JSON)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        return json_exchange(conn, method, path, body, headers)
    finally:
        conn.close()


def wait_until(ready: Callable[[], bool], what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    problem: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, http.client.HTTPException) as exc:
            problem = exc
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {limit} s (last error: {problem!r})")


def restkit_command(port: int, *options: str) -> list[str]:
    return [sys.executable, "-m", "restkit", SPEC, "--port", str(port), "--no-access-log", *options]


def gunicorn_command(port: int, workers: int = 2) -> list[str]:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed (pip install gunicorn)")
    return [str(gunicorn), "-w", str(workers), "-b", f"127.0.0.1:{port}", SPEC]


@dataclass
class Process:
    """A server process (and its children: workers), started in its own session."""

    command: list[str]
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                         start_new_session=True)
        wait_until(lambda: self.alive() and call(self.port, "GET", "/readyz")[0] == 200, f"{self.command[:4]}")
        return self

    def alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"the server exited: {self.log.read_text(errors='replace')[-2000:]}")
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def environment(db: str, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "STORES_DB": db, **extra}


HAPROXY = """\
global
    maxconn 512
    stats socket {socket} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 2s
    retries 3
    option redispatch
    option http-server-close

listen shop
    bind 127.0.0.1:{port}
    balance roundrobin
    option forwardfor
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
    http-response set-header X-Served-By %[srv_name]
{servers}
"""


@dataclass
class Balancer:
    """haproxy on 127.0.0.1:port, with its admin socket (``show servers state``)."""

    port: int
    socket: Path
    process: subprocess.Popen[bytes]

    def servers_up(self) -> dict[str, bool]:
        """Each server's name, and whether haproxy has it UP (operational state 2)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(str(self.socket))
            sock.sendall(b"show servers state shop\n")
            text = b""
            while chunk := sock.recv(65536):
                text += chunk
        rows = [line.split() for line in text.decode().splitlines()[1:] if line and not line.startswith("#")]
        return {row[3]: row[5] == "2" for row in rows}  # be_id be_name srv_id srv_name srv_addr srv_op_state


def start_balancer(root: Path, ports: dict[str, int]) -> Balancer:
    """haproxy in front of ``ports`` (name -> port), once it has every server UP."""
    import shutil

    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if haproxy is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    servers = "\n".join(f"    server {name} 127.0.0.1:{port} check" for name, port in ports.items())
    config = root / "haproxy.cfg"
    balancer = Balancer(free_port(), root / "haproxy.sock", None)  # type: ignore[arg-type]
    config.write_text(HAPROXY.format(socket=balancer.socket, port=balancer.port, servers=servers))
    with (root / "haproxy.log").open("ab") as log:
        balancer.process = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=log, stderr=log)
    try:
        wait_until(lambda: balancer.servers_up() == {name: True for name in ports}, "haproxy with every server UP")
    except BaseException:
        stop_haproxy(balancer.process)
        raise
    return balancer


@dataclass
class Service:
    """Where clients send requests (``port``), and the ports of its processes or instances (``entries``)."""

    name: str
    port: int
    entries: list[int]
    processes: list[Process] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        status, _, counts = call(self.port, "GET", "/orders")
        assert status == 200, counts
        return dict(counts)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp(f"idempotency-{request.param}")
    if request.param == "sqlite":
        port = free_port()
        env = environment(str(root / "shop.db"))
        server = Process(restkit_command(port, "--workers", "2"), port, env, root / "server.log")
        try:
            yield Service("sqlite", port, [port, port], [server.start()])
        finally:
            server.stop()
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database("idempotency")
    env = environment(url)
    ports = [free_port(), free_port()]
    processes = [Process(restkit_command(port), port, env, root / f"{name}.log") for name, port in zip("ab", ports)]
    balancer = None
    try:
        for process in processes:
            process.start()
        balancer = start_balancer(root, dict(zip("ab", ports)))
        yield Service("postgresql", balancer.port, ports, processes)
    finally:
        if balancer is not None:
            stop_haproxy(balancer.process)
        for process in processes:
            process.stop()
        cluster.drop_database(url)


def until_answered(port: int, body: Any, key: str, seen: list[int] | None = None, attempts: int = 400) -> Answer:
    """POST /orders with ``key`` until the answer is not a 409, as a client told to retry would."""
    for _ in range(attempts):
        answer = call(port, "POST", "/orders", body, {"Idempotency-Key": key})
        if seen is not None:
            seen.append(answer[0])
        if answer[0] != 409:
            return answer
        assert answer[1]["retry-after"] == "1" and answer[1]["content-type"].startswith("application/json"), answer
        time.sleep(0.05)
    raise AssertionError(f"still 409 after {attempts} attempts")


def test_twenty_concurrent_retries_create_one_order_and_all_get_its_answer(service: Service) -> None:
    before = service.counts()
    key = str(uuid.uuid4())
    body = {"item": "tea", "delay": 0.5}
    start = threading.Barrier(20)
    answers: list[Answer | None] = [None] * 20
    statuses: list[int] = []

    def client(index: int) -> None:
        start.wait(TIMEOUT)
        answers[index] = until_answered(service.port, body, key, statuses)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 4)
    done = [answer for answer in answers if answer is not None]
    assert len(done) == 20
    assert {status for status, _, _ in done} == {201}
    assert len({json.dumps(answer) for _, _, answer in done}) == 1  # the same body, byte for byte
    assert sum(headers.get("idempotent-replayed") == "true" for _, headers, _ in done) == 19
    assert 409 in statuses  # the retries met the first one running
    assert service.counts()["orders"] == before["orders"] + 1


def test_a_client_that_hung_up_before_the_answer_gets_it_on_retry(service: Service) -> None:
    before = service.counts()
    key = str(uuid.uuid4())
    body = json.dumps({"item": "coffee", "delay": 0.3}).encode()
    with socket.create_connection(("127.0.0.1", service.entries[0]), timeout=TIMEOUT) as sock:
        sock.sendall(b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
                     b"Idempotency-Key: " + key.encode() + b"\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\n\r\n" + body)
    # closed at once: the answer is never read.  The retry goes to the other process or instance.
    wait_until(lambda: service.counts()["orders"] == before["orders"] + 1, "the first request's order")
    status, headers, answer = until_answered(service.entries[1], {"item": "coffee", "delay": 0.3}, key)
    assert status == 201 and headers["idempotent-replayed"] == "true" and answer["item"] == "coffee"
    assert service.counts()["orders"] == before["orders"] + 1


def test_a_running_key_is_409_and_another_body_422(service: Service) -> None:
    before = service.counts()
    key = str(uuid.uuid4())
    first: list[Answer] = []
    worker = threading.Thread(target=lambda: first.append(call(service.entries[0], "POST", "/orders",
                                                              {"item": "cake", "delay": 2}, {"Idempotency-Key": key})))
    worker.start()
    try:
        time.sleep(0.5)  # for the first request to claim the key: an order of events, not a measurement
        status, headers, answer = call(service.entries[1], "POST", "/orders", {"item": "cake", "delay": 2},
                                       {"Idempotency-Key": key})
        assert (status, headers["retry-after"]) == (409, "1"), answer
        assert answer == {"error": "a request with this Idempotency-Key is still being answered; retry in a moment"}
        status, headers, answer = call(service.entries[1], "POST", "/orders", {"item": "pie"}, {"Idempotency-Key": key})
        assert status == 422 and answer["error"].startswith("this Idempotency-Key was used for another request")
        status, headers, answer = call(service.port, "POST", "/orders", {"item": "cake", "delay": 2},
                                       {"Idempotency-Key": key})
        assert (status, headers["retry-after"]) == (409, "1") or headers.get("idempotent-replayed") == "true"
    finally:
        worker.join(TIMEOUT)
    assert first and first[0][0] == 201
    status, headers, answer = call(service.port, "POST", "/orders", {"item": "cake", "delay": 2}, {"Idempotency-Key": key})
    assert status == 201 and headers["idempotent-replayed"] == "true" and answer == first[0][2]
    assert service.counts()["orders"] == before["orders"] + 1


def test_a_5xx_is_not_kept_and_the_retry_runs_again(service: Service) -> None:
    before = service.counts()
    key = str(uuid.uuid4())
    for entry in service.entries:
        status, headers, answer = call(entry, "POST", "/orders", {"item": "soup", "fail": True}, {"Idempotency-Key": key})
        assert status == 503 and "idempotent-replayed" not in headers, answer
    after = service.counts()
    assert after["failed"] == before["failed"] + 2 and after["orders"] == before["orders"]
    # released: the key may now be used for the request that works
    status, _, answer = call(service.port, "POST", "/orders", {"item": "soup"}, {"Idempotency-Key": key})
    assert status == 201 and answer["item"] == "soup"


def test_every_process_answers(service: Service) -> None:
    """The SQLite service has two processes on one port, the PostgreSQL one two instances."""
    seen: set[int] = set()
    for _ in range(200):
        for entry in service.entries:
            seen.add(call(entry, "GET", "/pid")[2]["pid"])
        if len(seen) >= 2:
            break
    assert len(seen) >= 2
