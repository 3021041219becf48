"""examples/zoo over real sockets: ``python -m examples.zoo`` as users run it, and 8 clients at once."""

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from examples.zoo.app import make_app
from tests.conftest import LiveServer, free_port, stop_process
from tests.zoo_pg_fixtures import pg_cluster, pg_database, zoo_db, zoo_dbs  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "server-test-token"


def call(port: int, method: str, path: str, body: Any = None, token: str | None = TOKEN,
         conn: http.client.HTTPConnection | None = None) -> tuple[int, dict[str, str], Any]:
    """One request; returns status, headers and the parsed JSON body (None when empty)."""
    own = conn is None
    connection = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(raw) if raw else None
    finally:
        if own:
            connection.close()


def wait_until_serving(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the zoo exited early with {process.returncode}: {process.communicate()}")
        try:
            if call(port, "GET", "/v1", token=None)[0] == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the zoo did not answer within 15 s")


def start_zoo(db: Path | str, port: int, *extra: str, token_env: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("ZOO_TOKEN", None)
    if token_env is not None:
        env["ZOO_TOKEN"] = token_env
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.zoo", "--port", str(port), "--db", str(db), "--create", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(process, port)
    except BaseException:
        process.kill()
        process.communicate(timeout=10)
        raise
    return process


def stop_zoo(process: subprocess.Popen[str], signum: int = signal.SIGINT) -> tuple[str, str]:
    process.send_signal(signum)
    try:
        out, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=10)
        raise AssertionError("the zoo did not stop on SIGINT") from None
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    return out, err


def test_python_m_examples_zoo_keeps_its_data_across_restarts(zoo_db: str) -> None:
    db = zoo_db  # a file, or a postgresql:// URL
    port = free_port()
    process = start_zoo(db, port, "--token", TOKEN, "--readonly-token", "reader")
    try:
        status, headers, zoo = call(port, "POST", "/v1/zoos", {"name": "Persistent Zoo", "city": "Disk"})
        assert status == 201 and headers["location"].endswith(f"/v1/zoos/{zoo['id']}")
        status, _, animal = call(port, "POST", "/v1/animals", {"name": "Durable", "animal_type_id": 1, "zoo_id": zoo["id"]})
        assert status == 201
        assert call(port, "POST", "/v1/zoos", {"name": "x", "city": "y"}, token=None)[0] == 401
        assert call(port, "POST", "/v1/zoos", {"name": "x", "city": "y"}, token="reader")[0] == 403
        assert call(port, "GET", "/v1/zoos/1", token=None)[0] == 200  # demo data
    finally:
        out, _ = stop_zoo(process)
    assert f"http://127.0.0.1:{port}/v1" in out and TOKEN not in out  # a token given is not printed

    process = start_zoo(db, port, "--token", TOKEN)
    try:
        status, _, again = call(port, "GET", f"/v1/zoos/{zoo['id']}", token=None)
        assert status == 200 and again == zoo
        assert call(port, "GET", f"/v1/animals/{animal['id']}", token=None)[2] == animal
        assert call(port, "POST", "/v1/zoos", {"name": "persistent zoo", "city": "x"})[0] == 409
        assert call(port, "DELETE", f"/v1/animals/{animal['id']}")[0] == 204
    finally:
        stop_zoo(process)

    process = start_zoo(db, port, "--token", TOKEN)
    try:
        assert call(port, "GET", f"/v1/animals/{animal['id']}", token=None)[0] == 410
    finally:
        stop_zoo(process)


def test_a_generated_token_is_printed_and_works_and_sigterm_stops(tmp_path: Path) -> None:
    port = free_port()
    process = start_zoo(tmp_path / "zoo.db", port, "--empty")
    try:
        assert call(port, "GET", "/v1/zoos", token=None)[2] == []
        assert call(port, "POST", "/v1/zoos", {"name": "n", "city": "c"}, token="guess")[0] == 401
    finally:
        out, _ = stop_zoo(process, signal.SIGTERM)
    token = out.split("token:")[1].split()[0]
    assert len(token) >= 20
    process = start_zoo(tmp_path / "zoo.db", port, token_env=token)  # ZOO_TOKEN
    try:
        assert call(port, "POST", "/v1/zoos", {"name": "n", "city": "c"}, token=token)[0] == 201
    finally:
        out, _ = stop_zoo(process)
    assert token not in out  # given (ZOO_TOKEN): not printed


def test_eight_clients_creating_200_animals_each(zoo_db: str, live_server: Callable[..., LiveServer]) -> None:
    app = make_app(zoo_db, token=TOKEN, rate_limit=0, empty=True, create=True)
    server = live_server(app)
    status, _, zoo = call(server.port, "POST", "/v1/zoos", {"name": "Crowded", "city": "x"})
    assert status == 201
    clients, each = 8, 200
    created: list[list[int]] = [[] for _ in range(clients)]
    failures: list[str] = []
    start = threading.Barrier(clients)

    def work(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            start.wait(timeout=10)
            for n in range(each):
                body = {"name": f"client {index} animal {n}", "animal_type_id": n % 6 + 1, "zoo_id": zoo["id"]}
                try:
                    status, _, animal = call(server.port, "POST", "/v1/animals", body, conn=conn)
                except (OSError, http.client.HTTPException) as exc:  # reconnect once, then give up
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                    failures.append(f"client {index}: {exc!r}")
                    continue
                if status != 201:
                    failures.append(f"client {index}: {status} {animal}")
                else:
                    created[index].append(animal["id"])
        finally:
            conn.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "clients hung"
    assert failures == []
    all_ids = [id for ids in created for id in ids]
    assert len(all_ids) == clients * each == len(set(all_ids))
    status, headers, _ = call(server.port, "GET", "/v1/animals?limit=1", token=None)
    assert status == 200 and headers["x-total-count"] == str(clients * each)
    assert app.store.count("animal") == clients * each
    status, headers, _ = call(server.port, "GET", f"/v1/zoos/{zoo['id']}/animals?limit=1", token=None)
    assert headers["x-total-count"] == str(clients * each)
    app.close()


def test_gunicorn_workers_share_the_database(tmp_path: Path) -> None:
    """Two worker processes write one SQLite file: BEGIN IMMEDIATE and the busy timeout serialise them."""
    if shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("gunicorn is not installed (pip install gunicorn)")
    port = free_port()
    db = tmp_path / "zoo.db"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--workers", "2", "--threads", "4", "--preload",
         "--bind", f"127.0.0.1:{port}", f"examples.zoo.app:make_app({str(db)!r}, token={TOKEN!r}, rate_limit=0, create=True)"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until_serving(process, port)
        results: list[int] = []
        lock = threading.Lock()

        def work(index: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                for n in range(50):
                    status, _, body = call(port, "POST", "/v1/animals",
                                           {"name": f"g{index}-{n}", "animal_type_id": 1, "zoo_id": 1}, conn=conn)
                    with lock:
                        results.append(body["id"] if status == 201 else -status)
            finally:
                conn.close()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(results) == 200 and min(results) > 0 and len(set(results)) == 200
        status, headers, _ = call(port, "GET", "/v1/animals?limit=1", token=None)
        assert status == 200 and int(headers["x-total-count"]) == 200 + 4  # and the demo animals
    finally:
        stop_process(process, signal.SIGTERM)


@pytest.mark.parametrize("server", ["restkit", "gunicorn"])
def test_the_rate_limit_is_the_same_under_restkit_and_gunicorn(tmp_path: Path, server: str) -> None:
    """restkit.ratelimit counts per process: one server process, the same answers from either server."""
    port = free_port()
    db = tmp_path / "zoo.db"
    if server == "restkit":
        process = start_zoo(db, port, "--token", TOKEN, "--rate-limit", "5")
    else:
        if shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None:
            pytest.skip("gunicorn is not installed (pip install gunicorn)")
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--workers", "1", "--threads", "4",
             "--bind", f"127.0.0.1:{port}", f"examples.zoo.app:make_app({str(db)!r}, token={TOKEN!r}, rate_limit=5, create=True)"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    try:
        if server == "gunicorn":
            wait_until_serving(process, port)  # one request of the five
        answers = [call(port, "GET", "/v1/zoos", token=None) for _ in range(6)]
        statuses = [status for status, _, _ in answers]
        assert statuses == [200, 200, 200, 200, 429, 429], statuses
        assert [headers["x-ratelimit-remaining"] for _, headers, _ in answers] == ["3", "2", "1", "0", "0", "0"]
        for status, headers, body in answers[4:]:
            assert headers["x-ratelimit-limit"] == "5" and 1 <= int(headers["retry-after"]) <= 60
            assert "more than 5 requests a minute" in body["error"]
    finally:
        if server == "restkit":
            stop_zoo(process)
        else:
            stop_process(process, signal.SIGTERM)
