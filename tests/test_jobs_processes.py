"""restkit.jobs across real processes: SQLite with two server processes on one file, PostgreSQL with two
instances behind haproxy.  One runner holding a job is killed with ``kill -9``.

Each scenario submits 50 ``count`` jobs (tests/jobs_app.py: the function adds one to a counter in the
database, keyed by the job's id) and checks that every job succeeds, the counter is exactly 50, the job
the killed process held was taken over (a second attempt), and every process answers the same for every
job.  Then a queued and a running job are cancelled, a job that raises is retried and failed with its
error, and a job that made a resource answers 303.  Every answer is read by h11 as a strict client.
Loads are bounded, every wait has a limit, and nothing is asserted about time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.http_client import Response, raw_exchange, serialize_request
from tests.jobs_app import create_tables
from tests.pg import PgCluster
from tests.zoo_pg_fixtures import pg_cluster  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SPEC = "tests.jobs_app:create_app()"
JOBS = 50


def call(port: int, method: str, path: str, body: Any = None, headers: list[tuple[str, str]] | None = None
         ) -> Response:
    """One request on a new connection, its answer read by h11 (which refuses bad framing)."""
    data = b"" if body is None else json.dumps(body).encode()
    sent = [("Host", f"127.0.0.1:{port}"), ("Connection", "close"), *(headers or [])]
    if body is not None:
        sent.append(("Content-Type", "application/json"))
    answer = raw_exchange(port, serialize_request(method, path, sent, data), method_for_h11=method)
    assert answer.complete and answer.error is None, answer.describe()
    return answer


def wait_until(check: Callable[[], Any], what: str, limit: float = 120.0) -> Any:
    """Poll ``check`` until it is truthy (a bound, not a measurement)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {limit} s")


@dataclass
class Server:
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "restkit", SPEC, "--port", str(self.port),
                                             "--no-access-log"], cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                            start_new_session=True)
        wait_until(lambda: call(self.port, "GET", "/pid").status == 200, f"the server on {self.port}", 60)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    """The servers of one scenario and the port clients use (a server's own, or haproxy's)."""

    db: str
    servers: list[Server]
    front: int
    read: Callable[[str], Any]  # SQL -> the first column of the first row
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)


def start_servers(db: str, tmp_path: Path) -> list[Server]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "JOBS_DB": db, "JOBS_LEASE": "1",
           "JOBS_DELAY": "0.2", "JOBS_THREADS": "2"}
    env.pop("PYTHONWARNINGS", None)
    servers = [Server(free_port(), env, tmp_path / f"server{n}.log") for n in range(2)]
    for server in servers:
        server.start()
    return servers


@pytest.fixture
def sqlite_cluster(tmp_path: Path) -> Iterator[Cluster]:
    db = str(tmp_path / "jobs.db")
    create_tables(db)

    def read(sql: str) -> Any:
        with closing(sqlite3.connect(db, timeout=30)) as conn:
            return conn.execute(sql).fetchone()[0]

    servers: list[Server] = []
    try:
        servers = start_servers(db, tmp_path)
        yield Cluster(db, servers, servers[0].port, read)
    finally:
        for server in servers:
            server.stop()


HAPROXY = """\
global
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
    option http-server-close
listen jobs
    bind 127.0.0.1:{port}
    balance roundrobin
    default-server inter 300ms fall 2 rise 2
{servers}
"""


@pytest.fixture
def postgresql_cluster(pg_cluster: PgCluster, tmp_path: Path) -> Iterator[Cluster]:
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if haproxy is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    import psycopg

    db = pg_cluster.create_database("jobs")
    create_tables(db)

    def read(sql: str) -> Any:
        with psycopg.connect(db) as conn:
            row = conn.execute(sql).fetchone()  # type: ignore[call-overload]
            return None if row is None else row[0]

    servers: list[Server] = []
    balancer: subprocess.Popen[bytes] | None = None
    try:
        servers = start_servers(db, tmp_path)
        port = free_port()
        lines = "\n".join(f"    server s{n} 127.0.0.1:{s.port} check" for n, s in enumerate(servers))
        (tmp_path / "haproxy.cfg").write_text(HAPROXY.format(port=port, servers=lines))
        with (tmp_path / "haproxy.log").open("ab") as log:
            balancer = subprocess.Popen([haproxy, "-db", "-f", str(tmp_path / "haproxy.cfg")], stdout=log, stderr=log)
        seen: set[int] = set()
        wait_until(lambda: seen.add(call(port, "GET", "/pid").json()["pid"]) or len(seen) == 2, "haproxy", 60)
        yield Cluster(db, servers, port, read, [balancer])
    finally:
        if balancer is not None:
            balancer.terminate()
            balancer.wait(timeout=10)
        for server in servers:
            server.stop()
        pg_cluster.drop_database(db)


def show(port: int, job_id: str) -> dict[str, Any]:
    answer = call(port, "GET", f"/jobs/{job_id}")
    assert answer.status in (200, 303), answer.describe()
    result: dict[str, Any] = answer.json()
    return result


def submit(port: int, kind: str, payload: Any = None) -> dict[str, Any]:
    answer = call(port, "POST", f"/jobs/{kind}", payload if payload is not None else {})
    assert answer.status == 202, answer.describe()
    job: dict[str, Any] = answer.json()
    assert answer.header("location") == f"http://127.0.0.1:{port}/jobs/{job['id']}"
    assert answer.header("retry-after") == "1" and job["status"] in ("queued", "running")
    return job


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_fifty_jobs_survive_a_killed_runner_and_finish_exactly_once(engine: str, request: pytest.FixtureRequest
                                                                     ) -> None:
    cluster: Cluster = request.getfixturevalue(f"{engine}_cluster")
    front = cluster.front
    ids = [submit(front, "count", {"n": n})["id"] for n in range(JOBS)]
    assert len(set(ids)) == JOBS
    pids = {server.pid: server for server in cluster.servers}

    def held_by_a_server() -> tuple[str, int] | None:  # a running job and the pid of its holder
        for job_id in ids:
            if show(front, job_id)["status"] != "running":
                continue
            owner = cluster.read(f"SELECT owner FROM restkit_jobs WHERE id = '{job_id}'") or "host:0:x"
            if int(owner.split(":")[1]) in pids:
                return job_id, int(owner.split(":")[1])
        return None

    victim_job, victim_pid = wait_until(held_by_a_server, "a job running")
    pids[victim_pid].kill()  # kill -9, mid-job: its leases are not renewed any more
    survivor = next(server for server in cluster.servers if server.pid != victim_pid)
    port = front if front != pids[victim_pid].port else survivor.port

    def all_ended() -> bool:
        return all(show(port, job_id)["status"] in ("succeeded", "failed", "cancelled") for job_id in ids)

    wait_until(all_ended, f"{JOBS} jobs ending")
    jobs = {job_id: show(port, job_id) for job_id in ids}
    assert {job["status"] for job in jobs.values()} == {"succeeded"}, [j for j in jobs.values()
                                                                       if j["status"] != "succeeded"]
    assert cluster.read("SELECT n FROM counter WHERE id = 1") == JOBS  # each job's effect exactly once
    assert cluster.read("SELECT COUNT(DISTINCT job_id) FROM effects") == JOBS
    assert jobs[victim_job]["attempts"] >= 2  # taken over once the killed runner's lease ran out
    assert cluster.read("SELECT COUNT(*) FROM runs") >= JOBS + 1  # the killed run, and its redo
    # a new process answers the same as the one that ran the jobs
    pids[victim_pid].start()
    for job_id, job in jobs.items():
        for server in cluster.servers:
            assert show(server.port, job_id) == job

    # cancel: four slow jobs fill the four runner threads; a fifth job stays queued
    slow = [submit(front, "slow")["id"] for _ in range(4)]
    wait_until(lambda: all(show(front, job_id)["status"] == "running" for job_id in slow), "the slow jobs running")
    queued = submit(front, "count", {"n": -1})["id"]
    assert show(front, queued)["status"] == "queued"
    answer = call(front, "DELETE", f"/jobs/{queued}")
    assert answer.status == 200 and answer.json()["status"] == "cancelled", answer.describe()
    for job_id in slow:
        answer = call(front, "DELETE", f"/jobs/{job_id}")
        assert answer.status == 202 and answer.json()["cancel_requested"] is True, answer.describe()
        assert answer.header("retry-after") == "1"
    wait_until(lambda: all(show(front, job_id)["status"] == "cancelled" for job_id in slow), "the slow jobs stopping")
    assert call(front, "DELETE", f"/jobs/{ids[0]}").status == 409  # it succeeded: nothing to cancel
    assert show(front, queued)["attempts"] == 0 and cluster.read("SELECT n FROM counter WHERE id = 1") == JOBS

    # a job that raises: retried with backoff, then failed with the last error
    boom = submit(front, "boom")["id"]
    failed = wait_until(lambda: (job := show(front, boom))["status"] == "failed" and job, "the failing job")
    assert failed["attempts"] == 3 and failed["error"] == "ValueError: boom on attempt 3"

    # a job that made a resource: 303 See Other to it, with the job as the body
    made = submit(front, "made", {"thing": 42})["id"]
    answer = wait_until(lambda: (a := call(front, "GET", f"/jobs/{made}")).status == 303 and a, "the made job")
    assert answer.header("location") == "/things/42" and answer.json()["result"] == {"thing": 42}
    assert call(front, "GET", "/jobs/not-a-job").status == 404


def test_a_worker_process_runs_the_jobs_a_server_without_runners_queued(tmp_path: Path) -> None:
    """``python -m restkit worker SPEC``: runners only; SIGTERM puts a running job back in the queue, exit 0."""
    db = str(tmp_path / "jobs.db")
    create_tables(db)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "JOBS_DB": db, "JOBS_THREADS": "0",
           "JOBS_LEASE": "30"}
    env.pop("PYTHONWARNINGS", None)
    server = Server(free_port(), env, tmp_path / "server.log")
    worker: subprocess.Popen[str] | None = None
    try:
        server.start()
        job = submit(server.port, "count", {"n": 1})["id"]
        slow = submit(server.port, "slow")["id"]
        assert show(server.port, job)["status"] == "queued"  # the server runs no jobs (threads=0)
        worker = subprocess.Popen([sys.executable, "-m", "restkit", "worker", SPEC, "--threads", "2"], cwd=ROOT,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: show(server.port, job)["status"] == "succeeded", "the worker running the job", 60)
        wait_until(lambda: show(server.port, slow)["status"] == "running", "the worker taking the slow job", 60)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
        assert worker.returncode == 0, stderr
        assert "restkit: worker running jobs of boom, count, made, noop, slow" in stderr
        put_back = show(server.port, slow)
        assert put_back["status"] == "queued" and put_back["attempts"] == 0, put_back  # released, not failed
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.communicate(timeout=30)
        server.stop()


def test_the_worker_subcommand_refuses_an_app_without_jobs() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "restkit", "worker", "examples.demo.app:app"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().endswith("uses no restkit.jobs.Jobs (app.use(Jobs(...))): nothing to run")
    usage = subprocess.run([sys.executable, "-m", "restkit", "worker", "--help"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0 and "--threads" in usage.stdout


def test_every_worker_of_workers_2_runs_jobs_from_one_sqlite_file(tmp_path: Path) -> None:
    """``--workers 2``: the startup hooks run in each worker after the fork, so each has its runners."""
    db = str(tmp_path / "jobs.db")
    create_tables(db)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "JOBS_DB": db, "JOBS_DELAY": "0.3",
           "JOBS_THREADS": "1"}
    env.pop("PYTHONWARNINGS", None)
    port = free_port()
    with (tmp_path / "server.log").open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "restkit", SPEC, "--port", str(port), "--workers", "2",
                                    "--no-access-log"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        wait_until(lambda: call(port, "GET", "/pid").status == 200, "the workers", 60)
        ids = [submit(port, "count", {"n": n})["id"] for n in range(10)]
        wait_until(lambda: all(show(port, job_id)["status"] == "succeeded" for job_id in ids), "10 jobs")
        with closing(sqlite3.connect(db, timeout=30)) as conn:
            assert conn.execute("SELECT n FROM counter").fetchone()[0] == 10
            ran_in = {pid for (pid,) in conn.execute("SELECT DISTINCT pid FROM runs")}
        assert len(ran_in) == 2 and process.pid not in ran_in  # both workers, never the supervisor
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
