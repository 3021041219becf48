"""The zoo scaled out: one PostgreSQL, three instances, haproxy in front, all on loopback.

Instance ``a`` and ``b`` are ``python -m examples.zoo``; instance ``c`` is
gunicorn with two worker processes (``examples.zoo.wsgi:create_app()``).
haproxy balances round-robin with health checks and says which instance
answered (``X-Served-By``); it sends the client's address in
``X-Forwarded-For``, which the instances believe from 127.0.0.1 alone
(``--trust-proxy``, ``ZOO_TRUST_PROXY``).  Loads are bounded, every socket has
a timeout, and no assertion is about time: only about what was answered and stored.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.pg import PgCluster
from tests.test_examples_zoo_server import ROOT
from tests.zoo_pg_fixtures import pg_cluster  # noqa: F401

TOKEN = "scaleout-token"
TIMEOUT = 30  # seconds, for every socket
GUNICORN = Path(sys.executable).parent / "gunicorn"

Answer = tuple[int, dict[str, str], Any]


def request(conn: http.client.HTTPConnection, method: str, path: str, body: Any = None,
            headers: dict[str, str] | None = None) -> Answer:
    """One request to the zoo on ``conn``, with its token: status, lower-cased headers, parsed JSON body."""
    return json_exchange(conn, method, path, body,
                         {"Accept": "application/json", "Authorization": f"Bearer {TOKEN}", **(headers or {})})


def json_exchange(conn: http.client.HTTPConnection, method: str, path: str, body: Any = None,
                  headers: dict[str, str] | None = None) -> Answer:
    """One request on ``conn``: status, lower-cased headers, parsed JSON body (None when empty, text when not JSON)."""
    sent = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=sent)
    response = conn.getresponse()
    raw = response.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:  # haproxy's own error pages are HTML
        parsed = raw.decode("latin-1")
    return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed


def connect(port: int, source: str | None = None) -> http.client.HTTPConnection:
    """A connection to 127.0.0.1:port, from the loopback address ``source`` (on Linux all of 127.0.0.0/8)."""
    return http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT,
                                      source_address=None if source is None else (source, 0))


def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         source: str | None = None) -> Answer:
    conn = connect(port, source)
    try:
        return request(conn, method, path, body, headers)
    finally:
        conn.close()


def wait_until(ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes] | None = None,
               limit: float = 60) -> None:
    """Poll ``ready`` until it holds; fail with ``what`` if it never does (a bound, not a measurement)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {process.returncode}")
        try:
            if ready():
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what}: not ready within {limit} s")


@dataclass
class Instance:
    name: str
    port: int
    command: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                            start_new_session=True)
        wait_until(lambda: call(self.port, "GET", "/v1")[0] == 200, f"instance {self.name}", self.process)

    def kill(self) -> None:
        """kill -9 the instance and every process of it (gunicorn's workers too)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=TIMEOUT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Farm:
    """The database, the instances and the balancer."""

    url: str
    balancer: int
    instances: dict[str, Instance] = field(default_factory=dict)
    haproxy: subprocess.Popen[bytes] | None = None

    def ids(self, collection: str) -> set[int]:
        """Every id in a collection, read page by page from instance a."""
        found: set[int] = set()
        offset = 0
        port = next(i.port for i in self.instances.values() if i.process and i.process.poll() is None)
        while True:
            status, headers, items = call(port, "GET", f"/v1/{collection}?limit=100&offset={offset}")
            assert status == 200, items
            found.update(item["id"] for item in items)
            offset += 100
            if offset >= int(headers["x-total-count"]):
                return found


HAPROXY_CONFIG = """\
global
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 2s
    retries 3
    option redispatch
    # a new server connection per request: after a kill, only the requests in flight fail; the
    # next ones meet a refused connection, which haproxy retries elsewhere (a POST sent on a
    # reused connection to a dead server could not be retried: it might have been received)
    option http-server-close

listen zoo
    bind 127.0.0.1:{port}
    balance roundrobin
    # the client's address, appended to any X-Forwarded-For the client sent (where the instances,
    # trusting 127.0.0.1 for one hop, do not look)
    option forwardfor
    default-server inter 300ms fall 2 rise 2
    http-response set-header X-Served-By %[srv_name]
{options}
{servers}
"""
HTTP_CHECKS = """\
    option httpchk GET /readyz
    http-check expect status 200"""
TRUST = "127.0.0.1"  # haproxy's address as the instances see it


def start_haproxy(root: Path, port: int, instances: list[Instance], options: str) -> subprocess.Popen[bytes]:
    """haproxy on 127.0.0.1:port in front of ``instances``, once it has seen each of them answer."""
    haproxy = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.access(p, os.X_OK)), None)
    if haproxy is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    servers = "\n".join(f"    server {i.name} 127.0.0.1:{i.port} check" for i in instances)
    config = root / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers, options=options))
    with (root / "haproxy.log").open("ab") as log:
        process = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=log, stderr=log)
    served: set[str] = set()

    def all_up() -> bool:
        status, headers, _ = call(port, "GET", "/v1")
        if status in (200, 429):  # an instance that refuses haproxy's own address (a rate limit) is up too
            served.add(headers.get("x-served-by", ""))
        return served >= {i.name for i in instances}

    try:
        wait_until(all_up, f"haproxy with all {len(instances)} instances", process)
    except BaseException:
        stop_haproxy(process)
        raise
    return process


def stop_haproxy(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def farm(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    if not GUNICORN.exists():
        pytest.skip("gunicorn is not installed (pip install gunicorn)")
    root = tmp_path_factory.mktemp("scaleout")
    url = pg_cluster.create_database("scaleout")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ZOO_DB": url, "ZOO_TOKEN": TOKEN, "ZOO_RATE_LIMIT": "0",
           "ZOO_EMPTY": "1"}
    farm = Farm(url, free_port())
    farm.instances = {i.name: i for i in three_instances(url, env, root, ["--rate-limit", "0", "--empty"])}
    try:
        for instance in farm.instances.values():
            instance.start()
        farm.haproxy = start_haproxy(root, farm.balancer, list(farm.instances.values()), HTTP_CHECKS)
        yield farm
    finally:
        if farm.haproxy is not None:
            stop_haproxy(farm.haproxy)
        for instance in farm.instances.values():
            instance.stop()
        pg_cluster.drop_database(url)


def three_instances(url: str, env: dict[str, str], root: Path, options: list[str]) -> list[Instance]:
    """a and b are ``python -m examples.zoo *options``, c gunicorn with two workers (options from ``env``);
    all believe haproxy's ``X-Forwarded-For``, a and b by ``--trust-proxy``, c by ``ZOO_TRUST_PROXY``."""
    instances = []
    for name in ("a", "b"):
        port = free_port()
        instances.append(Instance(
            name, port,
            [sys.executable, "-m", "examples.zoo", "--port", str(port), "--db", url, "--trust-proxy", TRUST, *options],
            env, root / f"{name}.log",
        ))
    port = free_port()
    instances.append(Instance(
        "c", port,
        [str(GUNICORN), "--workers", "2", "--threads", "8", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5",
         "examples.zoo.wsgi:create_app()"],
        {**env, "ZOO_TRUST_PROXY": TRUST}, root / "c.log",
    ))
    return instances


def new_zoo(farm: Farm, name: str) -> dict[str, Any]:
    status, _, zoo = call(farm.balancer, "POST", "/v1/zoos", {"name": name, "city": "Loopback"})
    assert status == 201, zoo
    return zoo  # type: ignore[no-any-return]


def run_clients(count: int, work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "clients hung"


# --- throughput through the balancer -----------------------------------------------------


def test_eight_clients_creating_200_animals_each_through_the_balancer(farm: Farm) -> None:
    zoo = new_zoo(farm, "Balanced")
    clients, each = 8, 200
    created: list[list[int]] = [[] for _ in range(clients)]
    failures: list[str] = []
    served: dict[str, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def work(index: int) -> None:
        conn = connect(farm.balancer)
        try:
            start.wait(timeout=TIMEOUT)
            for n in range(each):
                body = {"name": f"client {index} animal {n}", "animal_type_id": n % 6 + 1, "zoo_id": zoo["id"]}
                try:
                    status, headers, animal = request(conn, "POST", "/v1/animals", body)
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = connect(farm.balancer)
                    failures.append(f"client {index}: {exc!r}")
                    continue
                with lock:
                    served[headers.get("x-served-by", "?")] = served.get(headers.get("x-served-by", "?"), 0) + 1
                if status != 201:
                    failures.append(f"client {index}: {status} {animal}")
                else:
                    created[index].append(animal["id"])
        finally:
            conn.close()

    run_clients(clients, work)
    assert failures == []
    ids = [id for chunk in created for id in chunk]
    assert len(ids) == len(set(ids)) == clients * each == 1600
    assert set(served) == set(farm.instances), served  # every instance took a share
    status, headers, _ = call(farm.balancer, "GET", f"/v1/zoos/{zoo['id']}/animals?limit=1")
    assert status == 200 and headers["x-total-count"] == "1600"
    assert farm.ids("animals") >= set(ids)


# --- races whose contenders reach different instances ------------------------------------


def race(farm: Farm, attempts: list[tuple[str, str, str, Any, dict[str, str]]]) -> list[Answer]:
    """Send each ``(instance, method, path, body, headers)`` at once, each to its own instance."""
    conns = [connect(farm.instances[name].port) for name, *_ in attempts]
    for conn in conns:
        conn.connect()  # connected before the start, so the requests leave together
    start = threading.Barrier(len(attempts))
    answers: list[Answer | None] = [None] * len(attempts)

    def work(index: int) -> None:
        _, method, path, body, headers = attempts[index]
        start.wait(timeout=TIMEOUT)
        answers[index] = request(conns[index], method, path, body, headers)

    try:
        run_clients(len(attempts), work)
    finally:
        for conn in conns:
            conn.close()
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def test_same_name_races_across_instances_have_exactly_one_winner(farm: Farm) -> None:
    for round in range(15):
        spellings = [f"Race {round}", f"RACE {round}", f"race\u200b {round}"]  # one name after NFKC + folding
        answers = race(farm, [(name, "POST", "/v1/zoos", {"name": spelling, "city": "x"}, {})
                              for name, spelling in zip("abc", spellings)])
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [201, 409, 409], answers
        status, _, found = call(farm.balancer, "GET", f"/v1/zoos?name=race%20{round}")
        assert status == 200 and len(found) == 1


def test_if_match_races_across_instances_have_exactly_one_winner(farm: Farm) -> None:
    zoo = new_zoo(farm, "Contested")
    url = zoo["links"]["self"]
    for round in range(15):
        status, headers, current = call(farm.balancer, "GET", url)
        assert status == 200
        tag = headers["etag"]
        answers = race(farm, [(name, "PATCH", url, {"city": f"{name} {round}"}, {"If-Match": tag}) for name in "abc"])
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [200, 412, 412], answers
        winner = next(body for status, _, body in answers if status == 200)
        status, headers, now = call(farm.balancer, "GET", url)
        assert now == winner and headers["etag"] != tag


def test_deleting_a_zoo_while_another_instance_adds_an_animal_to_it(farm: Farm) -> None:
    """Either the zoo goes (and the animal is refused) or the animal comes (and the delete is refused)."""
    for round in range(10):
        zoo = new_zoo(farm, f"Doomed {round}")
        (deleted, _, _), (added, _, animal) = race(farm, [
            ("a", "DELETE", zoo["links"]["self"], None, {}),
            ("c", "POST", "/v1/animals", {"name": "Late", "animal_type_id": 1, "zoo_id": zoo["id"]}, {}),
        ])
        assert (deleted, added) in ((204, 422), (409, 201)), (deleted, added, animal)
        if added == 201:
            assert call(farm.balancer, "GET", animal["links"]["zoo"])[0] == 200


# --- an instance killed mid-load ------------------------------------------------------------


def test_kill_9_one_instance_mid_load_loses_no_acknowledged_write(farm: Farm) -> None:
    zoo = new_zoo(farm, "Survivors")
    victim = farm.instances["b"]
    clients, each, after_each, most = 8, 150, 20, 3000
    acknowledged: list[list[int]] = [[] for _ in range(clients)]
    refused: list[tuple[int, int, bool, str]] = []  # (client, n, after routing around?, what): not acknowledged
    late: list[tuple[int, Any]] = []  # answers after the balancer saw the victim down
    lock = threading.Lock()
    killed = threading.Event()
    routed_around = threading.Event()
    gave_up = threading.Event()  # the killer failed: stop the clients, the assertions say why
    start = threading.Barrier(clients)

    def work(index: int) -> None:
        conn = connect(farm.balancer)
        try:
            start.wait(timeout=TIMEOUT)
            n = mine_after = 0
            # at least `each` requests, and `after_each` once the balancer has routed around the victim
            while n < most and (n < each or mine_after < after_each) and not gave_up.is_set():
                n += 1
                after = routed_around.is_set()
                mine_after += after
                body = {"name": f"survivor {index}-{n}", "animal_type_id": 1, "zoo_id": zoo["id"]}
                try:
                    status, headers, animal = request(conn, "POST", "/v1/animals", body)
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = connect(farm.balancer)
                    with lock:
                        refused.append((index, n, after, repr(exc)))
                    continue
                with lock:
                    if status == 201:
                        acknowledged[index].append(animal["id"])
                        if sum(map(len, acknowledged)) >= 300 and not killed.is_set():
                            killed.set()
                    else:
                        refused.append((index, n, after, f"{status} {animal}"))
                    if after:
                        late.append((status, headers.get("x-served-by")))
        finally:
            conn.close()

    def killer() -> None:
        try:
            if killed.wait(timeout=120):
                victim.kill()
                # the balancer marks it down after two failed checks; requests meanwhile are redispatched
                wait_until(lambda: victim_down(farm), "haproxy marking the killed instance down")
                routed_around.set()
        finally:
            if not routed_around.is_set():
                gave_up.set()

    threads = [threading.Thread(target=killer, daemon=True)]
    threads[0].start()
    try:
        run_clients(clients, work)
        threads[0].join(timeout=120)
        assert killed.is_set() and routed_around.is_set() and victim.process is not None and victim.process.poll() is not None
        ids = [id for chunk in acknowledged for id in chunk]
        assert len(ids) == len(set(ids))
        stored = farm.ids("animals")
        assert set(ids) <= stored, f"{len(set(ids) - stored)} acknowledged writes lost"
        # only requests in flight on the victim as it died may fail: the one each client had
        # there, and one sent in the instant its listening socket was being torn down (accepted
        # by the kernel, then reset); none once the balancer had taken it out
        assert len(refused) <= 2 * clients and not any(after for _, _, after, _ in refused), refused
        assert len(late) >= clients * 20  # the load went on after the balancer routed around the victim
        assert all(status == 201 and served != "b" for status, served in late), late
    finally:
        victim.start()  # leave the farm as it was
        wait_until(lambda: not victim_down(farm), "haproxy taking the instance back")


def victim_down(farm: Farm) -> bool:
    """Whether haproxy's health checks have taken instance b out (it stops answering /v1 through it)."""
    seen = set()
    for _ in range(6):
        status, headers, _ = call(farm.balancer, "GET", "/v1")
        if status == 200:
            seen.add(headers.get("x-served-by"))
    return "b" not in seen and len(seen) == 2


# --- the rate limit across instances ----------------------------------------------------------


def test_the_rate_limit_holds_across_three_instances(pg_cluster: PgCluster, tmp_path: Path) -> None:
    """A client spread over three instances gets 429 at the configured total, not three times it."""
    url = pg_cluster.create_database("ratelimit")
    limit = 30
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    instances = []
    for name in "abc":
        port = free_port()
        instances.append(Instance(
            name, port,
            [sys.executable, "-m", "examples.zoo", "--port", str(port), "--db", url, "--token", TOKEN,
             "--rate-limit", str(limit)],
            env, tmp_path / f"{name}.log",
        ))
    try:
        for instance in instances:
            instance.start()  # its readiness probe counts: the start-up probes are part of the total
        statuses = []
        for n in range(limit + 6):
            status, headers, _ = call(instances[n % 3].port, "GET", "/v1/zoos")
            statuses.append((status, headers.get("x-ratelimit-remaining"), headers.get("retry-after")))
        allowed = [s for s in statuses if s[0] == 200]
        refused = [s for s in statuses if s[0] == 429]
        assert len(allowed) + len(refused) == len(statuses), statuses
        # the probes used some of the budget; what is left is shared: 429 from then on, on every instance
        assert 0 < len(allowed) <= limit and statuses[: len(allowed)] == allowed, statuses
        assert len(refused) >= 6 and all(int(retry) >= 1 for _, _, retry in refused), statuses
        assert {int(remaining) for _, remaining, _ in allowed[-1:]} == {0}, statuses
    finally:
        for instance in instances:
            instance.stop()
        pg_cluster.drop_database(url)


def test_clients_behind_the_balancer_have_separate_rate_limits(pg_cluster: PgCluster, tmp_path: Path) -> None:
    """Two clients (127.0.0.2 and 127.0.0.3) reach three instances through haproxy: each gets its own limit.

    The instances key the limit on the address haproxy puts in X-Forwarded-For, not on haproxy's
    own 127.0.0.1, and not on what a client writes in X-Forwarded-For itself.
    """
    if not GUNICORN.exists():
        pytest.skip("gunicorn is not installed (pip install gunicorn)")
    url = pg_cluster.create_database("proxied")
    limit = 12
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ZOO_DB": url, "ZOO_TOKEN": TOKEN, "ZOO_RATE_LIMIT": str(limit)}
    instances = three_instances(url, env, tmp_path, ["--token", TOKEN, "--rate-limit", str(limit)])
    balancer = free_port()
    haproxy = None
    try:
        for instance in instances:
            instance.start()
        # TCP health checks: HTTP ones would come from haproxy's own address and use up its budget (the
        # start-up probes and all_up above use it too); the scheme the client used is said by haproxy
        haproxy = start_haproxy(tmp_path, balancer, instances, "    http-request set-header X-Forwarded-Proto https")
        try:
            call(balancer, "GET", "/v1", source="127.0.0.2")
        except OSError as exc:
            pytest.skip(f"cannot send from 127.0.0.2 here: {exc}")

        def from_(source: str, headers: dict[str, str] | None = None) -> tuple[int, str | None, str | None]:
            status, answer, _ = call(balancer, "GET", "/v1/zoos?limit=1", headers=headers, source=source)
            return status, answer.get("x-ratelimit-remaining"), answer.get("x-served-by")

        first = [from_("127.0.0.2") for _ in range(limit + 3)]
        # 127.0.0.2 used one request above: limit - 1 more are allowed, from every instance, then 429
        assert [s for s, _, _ in first] == [200] * (limit - 1) + [429] * 4, first
        assert [r for _, r, _ in first[: limit - 1]] == [str(n) for n in range(limit - 2, -1, -1)], first
        assert {served for _, _, served in first} == {"a", "b", "c"}, first
        # another client has a budget of its own, whatever it writes in X-Forwarded-For itself
        second = [from_("127.0.0.3", {"X-Forwarded-For": "127.0.0.2"}), from_("127.0.0.3", {"X-Forwarded-For": "203.0.113.1"}),
                  from_("127.0.0.3")]
        assert [(s, r) for s, r, _ in second] == [(200, str(limit - 1)), (200, str(limit - 2)), (200, str(limit - 3))]
        assert from_("127.0.0.2")[0] == 429  # still
        # the URLs the instances build name the scheme the client used at the balancer
        status, answer, zoo = call(balancer, "POST", "/v1/zoos", {"name": "Proxied", "city": "Loopback"}, source="127.0.0.4")
        assert status == 201 and answer["location"] == f"https://127.0.0.1:{balancer}/v1/zoos/{zoo['id']}"
        status, answer, _ = call(balancer, "GET", "/v1/zoos?limit=1", source="127.0.0.4")
        assert status == 200 and answer["link"].startswith(f"<https://127.0.0.1:{balancer}/v1/zoos?")
    finally:
        if haproxy is not None:
            stop_haproxy(haproxy)
        for instance in instances:
            instance.stop()
        pg_cluster.drop_database(url)


# --- a job outlives the instance that took it ------------------------------------------------


def test_a_job_taken_by_a_killed_instance_is_finished_by_another(pg_cluster: PgCluster, tmp_path: Path) -> None:
    url = pg_cluster.create_database("jobs")
    # 2 s of pretend work per report, a 1 s lease renewed every third of it
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ZOO_JOB_DELAY": "2", "ZOO_JOB_LEASE": "1"}
    instances = {}
    for name in "ab":
        port = free_port()
        instances[name] = Instance(
            name, port,
            [sys.executable, "-m", "examples.zoo", "--port", str(port), "--db", url, "--token", TOKEN,
             "--rate-limit", "0"],
            env, tmp_path / f"{name}.log",
        )
    a, b = instances["a"], instances["b"]
    try:
        a.start()  # alone: its runner is the only one to take the job
        status, headers, job = call(a.port, "POST", "/v1/zoos/1/reports")
        assert status == 202 and headers["location"].endswith(f"/v1/jobs/{job['id']}")
        wait_until(lambda: call(a.port, "GET", job["links"]["self"])[2]["status"] == "running", "a taking the job")
        b.start()
        assert call(b.port, "GET", job["links"]["self"])[2]["status"] == "running"  # a's lease holds
        a.kill()
        wait_until(lambda: call(b.port, "GET", job["links"]["self"])[2]["status"] in ("succeeded", "failed"),
                   "b finishing the job")
        status, _, done = call(b.port, "GET", job["links"]["self"])
        assert done["status"] == "succeeded" and done["attempts"] == 2, done  # restkit.jobs' name for "done"
        status, _, report = call(b.port, "GET", done["links"]["result"])
        assert status == 200 and report["zoo_id"] == 1 and report["animals"] == 2
    finally:
        for instance in instances.values():
            instance.stop()
        pg_cluster.drop_database(url)
