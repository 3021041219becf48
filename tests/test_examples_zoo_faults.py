"""The zoo on SQLite when storage fails: read-only, disk full, a lock held elsewhere; and --durability.

Every fault is answered as such (503 or 507 with ``Retry-After``, a JSON
error), logged once per incident, changes nothing, and the app serves
normally again once the fault is gone.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest

from examples.zoo.app import ZooApp
from examples.zoo.store import Store
from tests.conftest import LiveServer, make_client
from tests.test_examples_zoo import AUTH, JSON_TYPE, assert_error, db_state, new_app, send_json

WRITES = [
    ("POST", "/v1/zoos", {"name": "New", "city": "x"}),
    ("PUT", "/v1/zoos/1", {"name": "Zoo Berlin", "city": "Berlin-Tiergarten"}),
    ("PATCH", "/v1/animals/1", {"name": "Bao"}),
    ("DELETE", "/v1/animals/2", None),
    ("POST", "/v1/zoos/1/employees", {"employee_id": 3}),
]


def fault_records(caplog: pytest.LogCaptureFixture, level: int = logging.ERROR) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "examples.zoo" and r.levelno >= level and "storage" in r.getMessage()]


def every_write_refused(client: webtest.TestApp, app: ZooApp, status: int, fragment: str) -> None:
    before = db_state(app)
    for method, url, body in WRITES:
        response = send_json(client, method, url, body) if body is not None else client.request(
            url, method=method, headers=AUTH, expect_errors=True)
        assert_error(response, status, fragment)
        assert int(response.headers["Retry-After"]) >= 1
    assert db_state(app) == before
    assert client.get("/v1/zoos/1").status_int == 200 and client.get("/v1/animals").status_int == 200  # reads go on


# --- a read-only database --------------------------------------------------------------


def test_a_database_made_read_only_while_running_refuses_writes_on_every_connection(
    tmp_path: Path, live_server: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    app = new_app(tmp_path)
    server = live_server(app)
    clients = 6
    conns = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=30) for _ in range(clients)]
    answers: list[list[int]] = [[] for _ in range(clients)]
    phase = threading.Barrier(clients + 1)

    def work(index: int) -> None:
        # a write in each phase, on one keep-alive connection (one server thread with its own SQLite connection)
        for round in range(3):
            phase.wait(timeout=30)
            body = json.dumps({"name": f"z{index}-{round}", "city": "x"}).encode()
            conns[index].request("POST", "/v1/zoos", body=body, headers={**AUTH, "Content-Type": JSON_TYPE})
            response = conns[index].getresponse()
            response.read()
            answers[index].append(response.status)
            phase.wait(timeout=30)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    db = Path(app.store.path)
    try:
        phase.wait(timeout=30), phase.wait(timeout=30)  # round 0: writable, every thread opens its connection
        os.chmod(db, 0o444)
        with caplog.at_level(logging.INFO, logger="examples.zoo"):  # 6 refused writes, one line
            phase.wait(timeout=30), phase.wait(timeout=30)  # round 1: read-only
        os.chmod(db, 0o644)
        phase.wait(timeout=30), phase.wait(timeout=30)  # round 2: writable again
    finally:
        os.chmod(db, 0o644)
        for thread in threads:
            thread.join(timeout=30)
        for conn in conns:
            conn.close()
    assert [a for a in answers] == [[201, 503, 201]] * clients
    assert len(fault_records(caplog)) == 1  # one incident, one line, no tracebacks
    assert not any(r.exc_info for r in caplog.records)


def test_a_read_only_database_at_start_serves_reads_and_refuses_every_write(tmp_path: Path) -> None:
    new_app(tmp_path).close()
    db = tmp_path / "zoo.db"
    os.chmod(db, 0o444)
    try:
        app = new_app(tmp_path)
        client = make_client(app)
        every_write_refused(client, app, 503, "read-only")
        app.close()
    finally:
        os.chmod(db, 0o644)


# --- a full disk ----------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(tmp_path: Path, size: str = "2m") -> Iterator[tuple[Path, bool]]:
    """A small tmpfs (True), or, where none can be mounted, a plain directory (False:
    the test then caps the database file's size with max_page_count)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True, timeout=30) if os.geteuid() == 0 else None
    if done is None or done.returncode != 0:
        yield mount, False
        return
    try:
        yield mount, True
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def fill(directory: Path, leave: int) -> Path:
    """Fill the file system of ``directory`` up to ``leave`` bytes free; return the filler file."""
    filler = directory / "filler"
    stat = os.statvfs(directory)
    free = stat.f_bavail * stat.f_frsize
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_answers_507_logged_once_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with small_disk(tmp_path) as (disk, mounted):
        if not mounted:  # no tmpfs here: a size-limited database file instead
            connect = Store._connection

            def capped(self: Store) -> sqlite3.Connection:
                conn = connect(self)
                conn.execute("PRAGMA max_page_count = 64")  # 256 KiB
                return conn

            monkeypatch.setattr(Store, "_connection", capped)
            filler = None
        app = new_app(disk, rate_limit=0)
        if mounted:
            filler = fill(disk, 96 * 1024)
        client = make_client(app)
        created, refused = [], []
        with caplog.at_level(logging.INFO, logger="examples.zoo"):
            for n in range(20_000):  # bounded: the disk fills long before
                response = send_json(client, "POST", "/v1/animals",
                                     {"name": f"{n:05d} " + "x" * 90, "animal_type_id": 1, "zoo_id": 1})
                if response.status_int == 201:
                    created.append(response.json["id"])
                    continue
                assert_error(response, 507, "disk is full")
                assert int(response.headers["Retry-After"]) >= 1
                refused.append(n)
                if len(refused) == 20:
                    break
            assert len(refused) == 20 and created
            assert client.get(f"/v1/animals/{created[-1]}").status_int == 200  # reads go on
            assert len(fault_records(caplog)) == 1  # one incident, one line
            assert not any(r.exc_info for r in caplog.records)
            # space comes back: deleting rows (or the filler) lets writes in again
            monkeypatch.setattr(app.store.incidents, "quiet", 0.0)  # the incident ends with the next success
            if filler is not None:
                filler.unlink()
            for id in created[-50:]:
                assert client.delete(f"/v1/animals/{id}", headers=AUTH).status_int == 204
            again = send_json(client, "POST", "/v1/animals", {"name": "After", "animal_type_id": 1, "zoo_id": 1})
            assert again.status_int == 201
            assert any("no more" in r.getMessage() for r in fault_records(caplog, logging.WARNING))
        app.close()


# --- a lock held by another connection -----------------------------------------------------


def test_a_lock_held_elsewhere_answers_503_within_the_deadline_whatever_the_place_in_the_queue(
    tmp_path: Path, live_server: Callable[..., LiveServer]
) -> None:
    deadline, writers = 1.0, 8
    app = new_app(tmp_path, deadline=deadline)
    server = live_server(app)
    holder = sqlite3.connect(app.store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's writer, holding SQLite's write lock
    answers: list[tuple[int, str | None, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(writers)

    def work(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.connect()
            start.wait(timeout=30)
            began = time.monotonic()
            body = json.dumps({"name": f"queued {index}", "city": "x"}).encode()
            conn.request("POST", "/v1/zoos", body=body, headers={**AUTH, "Content-Type": JSON_TYPE})
            response = conn.getresponse()
            response.read()
            with lock:
                answers.append((response.status, response.getheader("Retry-After"), time.monotonic() - began))
        finally:
            conn.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(writers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(answers) == writers
    assert all(status == 503 and retry for status, retry, _ in answers), answers
    # one deadline for each, not one after another: the last in the queue is not 8 deadlines late
    assert max(elapsed for _, _, elapsed in answers) < 4 * deadline, answers
    client = make_client(app)
    assert send_json(client, "POST", "/v1/zoos", {"name": "free again", "city": "x"}).status_int == 201


# --- durability --------------------------------------------------------------------------------


@pytest.mark.parametrize("durability, synchronous", [(None, 2), ("full", 2), ("normal", 1)])
def test_durability_sets_how_commits_are_synced(tmp_path: Path, durability: str | None, synchronous: int) -> None:
    options: dict[str, Any] = {} if durability is None else {"durability": durability}
    app = new_app(tmp_path, **options)
    assert app.store._connection().execute("PRAGMA synchronous").fetchone()[0] == synchronous
    assert app.store._connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    app.close()


def test_bad_durability_and_deadline_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        new_app(tmp_path, durability="sometimes")
    with pytest.raises(ValueError, match="deadline"):
        new_app(tmp_path, deadline=0)
