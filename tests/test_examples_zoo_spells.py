"""The zoo on SQLite: every storage fault ends by itself, within the deadline, logged once.

Real faults, no mocks: a file made read-only under a server run by an
unprivileged user, a write lock held by another connection while 16 writers
(more than the server's 8 threads) wait, the database file removed and put
back, the database filling its own small disk.  Each test checks the answer
(503/507, ``Retry-After``, a JSON error), its time against the deadline (a
generous bound: a correctness check, not a speed test), the one log line of
the incident, and that service comes back without a restart.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from examples.zoo.app import make_app
from examples.zoo.store import Store
from tests.conftest import LiveServer, free_port, make_client
from tests.test_examples_zoo import AUTH, JSON_TYPE, TOKEN, assert_error, new_app, send_json
from tests.test_examples_zoo_faults import fault_records, small_disk
from tests.test_examples_zoo_server import ROOT, wait_until_serving

SLACK = 1.5  # what an answer may take beyond the deadline (threads, a loaded machine): a bound, not a speed


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    elapsed: float


def send(port: int, method: str, path: str, body: Any = None, token: str | None = TOKEN) -> Answer:
    """One request on a new connection; the answer and how long it took."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = JSON_TYPE
    began = time.monotonic()
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        elapsed = time.monotonic() - began
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                      json.loads(raw) if raw else None, elapsed)
    finally:
        conn.close()


def together(calls: list[Callable[[], Answer]]) -> list[Answer]:
    """Run the calls at once, each on its own thread and connection; their answers in order."""
    answers: list[Answer | None] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait(timeout=30)
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(answer is not None for answer in answers), "a request did not come back"
    return [answer for answer in answers if answer is not None]


def assert_fault(answer: Answer, status: int, fragment: str, deadline: float) -> None:
    """A storage fault's answer: the status, ``Retry-After``, a JSON error naming it, by the deadline."""
    assert answer.status == status, answer
    assert int(answer.headers["retry-after"]) >= 1, answer
    assert answer.headers["content-type"].startswith(JSON_TYPE)
    assert isinstance(answer.body, dict) and fragment in answer.body["error"], answer
    assert answer.elapsed <= deadline + SLACK, answer


def storage_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "storage:" in line and "no more" not in line]


# --- a read-only spell, the server run by an unprivileged user ---------------------------------------


@contextlib.contextmanager
def nobodys_directory() -> Iterator[tuple[Path, list[str]]]:
    """A directory the unprivileged user may write, and the command prefix that runs as that user.

    As root: ``nobody`` through ``setpriv`` (root ignores file modes, so a read-only
    file would not be read-only to it); as anyone else: ourselves."""
    prefix: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="restkit-zoo-ro-"))  # not tmp_path: its 0700 parents lock nobody out
    os.chmod(base, 0o755)
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot run the zoo as an unprivileged user")
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        shutil.chown(base, "nobody", "nogroup")
    try:
        yield base, prefix
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_read_only_spell_ends_by_itself_for_every_thread_of_an_unprivileged_server() -> None:
    deadline = 2.0
    with nobodys_directory() as (directory, prefix):
        db = directory / "zoo.db"
        port = free_port()
        process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "examples.zoo", "--port", str(port), "--db", str(db), "--create",
             "--token", TOKEN, "--rate-limit", "0", "--deadline", str(deadline)],
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until_serving(process, port)
            os.chmod(db, 0o444)  # the spell starts before any worker thread has opened a connection
            # reads go on, on every worker thread, which opens its connection during the spell
            reads = together([lambda: send(port, "GET", "/v1/zoos/1", token=None)] * 24)
            assert [answer.status for answer in reads] == [200] * 24
            writes = together([lambda i=i: send(port, "POST", "/v1/zoos", {"name": f"spell {i}", "city": "x"})
                               for i in range(6)])
            for answer in writes:
                assert_fault(answer, 503, "read-only", deadline)
            os.chmod(db, 0o644)  # the spell ends: no restart
            first = send(port, "POST", "/v1/zoos", {"name": "first after", "city": "x"})
            assert first.status == 201, first
            creates = together([lambda i=i: send(port, "POST", "/v1/zoos", {"name": f"after {i}", "city": "x"})
                                for i in range(40)])
            assert [answer.status for answer in creates] == [201] * 40, [a for a in creates if a.status != 201]
        finally:
            os.chmod(db, 0o644)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert "Traceback" not in err, err
        assert len(storage_lines(err)) == 1 and "read-only" in storage_lines(err)[0], err
        assert TOKEN not in out  # given, not made up: not printed


# --- a held lock and more writers than threads -------------------------------------------------------------


def test_sixteen_writers_against_a_held_lock_get_503_by_the_deadline_counted_from_arrival(
    tmp_path: Path, live_server: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    deadline = 1.0
    app = new_app(tmp_path, deadline=deadline, rate_limit=0)
    server = live_server(app)  # 8 worker threads
    holder = sqlite3.connect(app.store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's writer, holding SQLite's write lock
    try:
        with caplog.at_level(logging.INFO, logger="examples.zoo"):
            calls = [lambda i=i: send(server.port, "POST", "/v1/zoos", {"name": f"queued {i}", "city": "x"})
                     for i in range(16)]
            calls += [lambda: send(server.port, "GET", "/v1/zoos", token=None)] * 8
            answers = together(calls)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for answer in answers[:16]:
        assert_fault(answer, 503, "busy", deadline)
    for answer in answers[16:]:  # a read is served, or 503 at once once its deadline passed queueing for a thread
        if answer.status != 200:
            assert_fault(answer, 503, "busy", deadline)
        assert answer.elapsed <= deadline + SLACK, answer
    assert len(fault_records(caplog)) == 1  # 16+ refusals, one incident, one line
    first = send(server.port, "POST", "/v1/zoos", {"name": "free again", "city": "x"})
    assert first.status == 201 and first.elapsed <= deadline + SLACK


# --- the file removed under a running zoo --------------------------------------------------------------


def test_a_database_file_removed_under_the_zoo_answers_503_not_201_and_serves_again_when_back(
    tmp_path: Path, live_server: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    deadline = 1.0
    app = new_app(tmp_path, deadline=deadline, rate_limit=0)
    server = live_server(app)
    warm = together([lambda i=i: send(server.port, "POST", "/v1/zoos", {"name": f"warm {i}", "city": "x"})
                     for i in range(8)])  # the worker threads hold open connections to the file
    assert [answer.status for answer in warm] == [201] * 8
    db = Path(app.store.path)
    aside = db.with_name("zoo.db.aside")
    total = send(server.port, "GET", "/v1/zoos", token=None).headers["x-total-count"]
    with caplog.at_level(logging.INFO, logger="examples.zoo"):
        os.rename(db, aside)  # removed from where the zoo serves it (rm would lose the data: this test keeps it)
        answers = together([lambda i=i: send(server.port, "POST", "/v1/zoos", {"name": f"gone {i}", "city": "x"})
                            for i in range(8)] + [lambda: send(server.port, "GET", "/v1/zoos", token=None)] * 4)
        for answer in answers[:8]:  # a write always checks the file
            assert_fault(answer, 503, "removed or replaced", deadline)
        for answer in answers[8:]:  # a read trusts a check up to 50 ms old: served from the moved file, or 503
            if answer.status != 200:
                assert_fault(answer, 503, "removed or replaced", deadline)
        # once noticed, every request checks until the file is back
        assert_fault(send(server.port, "GET", "/v1/zoos", token=None), 503, "removed or replaced", deadline)
        assert not db.exists()  # no connection made a new, empty file in its place
        # another database put in its place is not the zoo's: still 503
        sqlite3.connect(db).close()
        assert_fault(send(server.port, "POST", "/v1/zoos", {"name": "stranger", "city": "x"}), 503,
                     "removed or replaced", deadline)
        os.replace(aside, db)  # the file is back
        first = send(server.port, "POST", "/v1/zoos", {"name": "back", "city": "x"})
        assert first.status == 201, first
    assert len(fault_records(caplog)) == 1
    assert int(send(server.port, "GET", "/v1/zoos", token=None).headers["x-total-count"]) == int(total) + 1


def test_a_missing_database_file_is_an_error_at_start_unless_create_is_asked(tmp_path: Path) -> None:
    db = tmp_path / "zoo.db"
    with pytest.raises(FileNotFoundError, match="--create"):
        Store(str(db))
    with pytest.raises(FileNotFoundError):
        make_app(str(db), token=TOKEN)
    assert not db.exists()
    done = subprocess.run([sys.executable, "-m", "examples.zoo", "--port", str(free_port()), "--db", str(db)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "does not exist" in done.stderr and "--create" in done.stderr
    assert "Traceback" not in done.stderr and not db.exists()
    make_app(str(db), token=TOKEN, create=True).close()
    assert db.exists()
    make_app(str(db), token=TOKEN).close()  # there now: no --create needed


# --- the database fills its own disk ----------------------------------------------------------------


def test_the_database_filling_its_own_disk_lets_deletes_and_a_checkpoint_run_and_space_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with small_disk(tmp_path, "2m") as (disk, mounted):
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (needs root and mount): no disk for the database to fill")
        app = new_app(disk, rate_limit=0)
        client = make_client(app)
        db = Path(app.store.path)
        created: list[int] = []
        with caplog.at_level(logging.INFO, logger="examples.zoo"):
            in_a_row = 0
            for n in range(100_000):  # bounded: the disk fills long before
                response = send_json(client, "POST", "/v1/animals",
                                     {"name": f"{n:05d} " + "x" * 90, "animal_type_id": 1, "zoo_id": 1})
                if response.status_int == 201:  # room again after a checkpoint cut the WAL back
                    created.append(response.json["id"])
                    in_a_row = 0
                    continue
                assert_error(response, 507, "disk is full")
                assert int(response.headers["Retry-After"]) >= 1
                in_a_row += 1
                if in_a_row == 3:  # full for good: only deletes make room now
                    break
            assert in_a_row == 3 and created
            # what room there is now stays for deletes: creates are refused at once
            assert_error(send_json(client, "POST", "/v1/zoos", {"name": "no room", "city": "x"}), 507, "disk is full")
            assert client.get(f"/v1/animals/{created[-1]}").status_int == 200  # reads go on
            # an operator's checkpoint runs and the WAL is cut back
            with contextlib.closing(sqlite3.connect(db, timeout=5)) as outside:
                busy, _, _ = outside.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0
            # deletes succeed while the disk is full, and give space back until creates fit again
            monkeypatch.setattr(app.store.incidents, "quiet", 0.0)  # the incident ends with the next success
            deleted = 0
            again = None
            for id in reversed(created):
                assert client.delete(f"/v1/animals/{id}", headers=AUTH).status_int == 204
                deleted += 1
                if deleted % 100 == 0:
                    again = send_json(client, "POST", "/v1/animals", {"name": "After", "animal_type_id": 1,
                                                                      "zoo_id": 1})
                    if again.status_int == 201:
                        break
                    assert_error(again, 507, "disk is full")
            assert again is not None and again.status_int == 201, f"no room after {deleted} of {len(created)} deletes"
            assert deleted < len(created)
            assert len(fault_records(caplog)) == 1  # one incident, one line (and one when it ends)
            assert any("disk full no more" in r.getMessage() for r in fault_records(caplog, logging.WARNING))
        app.close()
