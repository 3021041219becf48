"""The zoo on PostgreSQL: every storage fault ends by itself, within the deadline, logged once.

Real faults: the server frozen with SIGSTOP (postmaster and backends), stopped
with ``pg_ctl stop`` and started again, and the database set read-only
(``default_transaction_read_only``) and back.  The first two run on a
cluster of their own (freezing the session's cluster would stall other
tests).  Each test checks the answers (503, ``Retry-After``, JSON), their
time against the deadline (a generous bound), one log line for the incident
(psycopg's pool's own warnings folded into it), and that the first request
after the fault succeeds, without a restart of the zoo.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer
from tests.pg import PgCluster
from tests.test_examples_zoo import new_app
from tests.test_examples_zoo_faults import fault_records
from tests.test_examples_zoo_spells import Answer, assert_fault, send, together
from tests.zoo_pg_fixtures import new_pg_cluster, pg_cluster, pg_database  # noqa: F401


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[PgCluster]:
    """A cluster these tests may freeze and stop."""
    yield from new_pg_cluster()


def server_processes(cluster: PgCluster) -> list[int]:
    """The postmaster and every process it started (backends, checkpointer, WAL writer...)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # the parent is the 2nd field after the command, which is in parentheses
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(entry.name))
    return [postmaster, *children]


@contextlib.contextmanager
def frozen(cluster: PgCluster) -> Iterator[None]:
    """The whole server stopped with SIGSTOP: it accepts TCP connections (the kernel does) and answers nothing."""
    pids = server_processes(cluster)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def start_again(cluster: PgCluster) -> None:
    options = (f"-c listen_addresses=127.0.0.1 -c port={cluster.port} -c unix_socket_directories={cluster.sockets}"
               " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
               " -c shared_buffers=32MB")
    cluster._run("pg_ctl", "-D", str(cluster.data), "-l", str(cluster.log), "-o", options, "-w", "-t", "60", "start")


def pool_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("psycopg") and r.levelno >= logging.WARNING]


def writes_and_reads(port: int, tag: str, each: int = 4) -> list[Callable[[], Answer]]:
    calls = [lambda i=i: send(port, "POST", "/v1/zoos", {"name": f"{tag} {i}", "city": "x"}) for i in range(each)]
    return calls + [lambda: send(port, "GET", "/v1/zoos/1", token=None)] * each


DEADLINE = 2.0  # the zoo's database deadline in the outage tests


def outage_then_recovery(
    cluster: PgCluster, live_server: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture,
    outage: Callable[[int], None], name: str,
) -> None:
    """The zoo on a database of its own: warm, ``outage(port)`` (which makes the fault, checks the
    answers during it, and ends it), then service comes back without a restart, with one fault
    line in the log and no warning from the pool."""
    url = cluster.create_database()
    app = new_app(url, deadline=DEADLINE, rate_limit=0)
    try:
        server = live_server(app)
        assert {a.status for a in together(writes_and_reads(server.port, "warm"))} <= {200, 201}
        with caplog.at_level(logging.INFO):
            outage(server.port)
            first = send(server.port, "POST", "/v1/zoos", {"name": name, "city": "x"})
            assert first.status == 201, first
            assert all(a.status in (200, 201) for a in together(writes_and_reads(server.port, "after")))
        assert len(fault_records(caplog)) == 1, [r.getMessage() for r in fault_records(caplog)]
        assert pool_warnings(caplog) == []
    finally:
        app.close()
        cluster.drop_database(url)


def test_a_frozen_server_is_503_at_the_deadline_never_a_hang_and_service_comes_back(
    own_cluster: PgCluster, live_server: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    def frozen_for_a_while(port: int) -> None:
        with frozen(own_cluster):
            for answer in together(writes_and_reads(port, "frozen")):
                assert_fault(answer, 503, "unreachable", DEADLINE)
            later = send(port, "POST", "/v1/zoos", {"name": "still frozen", "city": "x"})
            assert_fault(later, 503, "unreachable", DEADLINE)

    outage_then_recovery(own_cluster, live_server, caplog, frozen_for_a_while, "thawed")


def test_a_stopped_server_is_503_at_once_logged_once_and_service_comes_back_when_it_starts(
    own_cluster: PgCluster, live_server: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    def stopped_for_a_while(port: int) -> None:
        own_cluster._run("pg_ctl", "-D", str(own_cluster.data), "-m", "fast", "-w", "-t", "60", "stop")
        try:
            stopped_until = time.monotonic() + 10  # the pool tries to reconnect all along, and backs off
            rounds = 0
            while time.monotonic() < stopped_until:
                for answer in together(writes_and_reads(port, f"stopped {rounds}")):
                    assert_fault(answer, 503, "unreachable", DEADLINE)
                rounds += 1
                time.sleep(0.5)
        finally:
            start_again(own_cluster)

    outage_then_recovery(own_cluster, live_server, caplog, stopped_for_a_while, "started")


def test_a_read_only_spell_ends_by_itself(
    pg_cluster: PgCluster, pg_database: str, live_server: Callable[..., LiveServer],  # noqa: F811
    caplog: pytest.LogCaptureFixture
) -> None:
    import psycopg

    deadline = 2.0
    app = new_app(pg_database, deadline=deadline, rate_limit=0)
    name = pg_database.rsplit("/", 1)[1]

    def read_only(on: bool) -> None:
        with psycopg.connect(pg_cluster.url(), autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {"on" if on else "off"}')

    try:
        # requests at once, so that the pool grows new (read-only) sessions: every one to a worker thread
        server = live_server(app, inline=False)
        assert {a.status for a in together(writes_and_reads(server.port, "warm"))} <= {200, 201}
        with caplog.at_level(logging.INFO):
            read_only(True)
            try:
                # sessions opened before keep writing; the pool's new ones (16 at once: it grows) are
                # read-only, and once a write meets the setting every pooled connection is replaced
                refused = 0
                for rounds in range(3):
                    for answer in together(writes_and_reads(server.port, f"spell {rounds}", 8)):
                        if answer.status not in (200, 201):  # reads go on
                            assert_fault(answer, 503, "read-only", deadline)
                            refused += 1
                    assert send(server.port, "GET", "/v1/zoos", token=None).status == 200
                assert refused
            finally:
                read_only(False)
            first = send(server.port, "POST", "/v1/zoos", {"name": "writable", "city": "x"})
            assert first.status == 201, first
            assert all(a.status in (200, 201) for a in together(writes_and_reads(server.port, "after")))
        assert len(fault_records(caplog)) == 1, [r.getMessage() for r in fault_records(caplog)]
        assert pool_warnings(caplog) == []
    finally:
        app.close()
