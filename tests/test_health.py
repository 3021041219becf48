"""restkit.health: liveness, readiness, exemptions from app-wide features, quiet probes, and draining on SIGTERM.

The last test restarts three instances behind a real haproxy, one at a
time, under a steady stream of requests, and counts the failures: with
``--drain`` there must be none.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from restkit import App, Request
from restkit.auth import Bearer
from restkit.cors import CORS
from restkit.health import Check, Health
from restkit.ratelimit import RateLimit
from restkit.testing import Client
from tests.conftest import LiveServer, free_port
from tests.wire import cli_env, finish, start_cli, wait_for, wait_until_listening


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], Any]:
    """One GET on a new connection: status, lower-cased headers, JSON body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, json.loads(body) if body else None
    finally:
        conn.close()


def status_of(port: int, path: str) -> int:
    """The status of a GET, or 0 when the connection fails."""
    try:
        return get(port, path, timeout=2.0)[0]
    except (OSError, http.client.HTTPException):
        return 0


def refused(port: int) -> bool:
    """Whether the port no longer serves (refused, or reset as the listener closed)."""
    return status_of(port, "/healthz") == 0


# -- liveness and readiness, in process --------------------------------------------------


def test_liveness_answers_ok_and_runs_no_check() -> None:
    ran: list[str] = []
    app = App()
    app.use(Health({"db": lambda: ran.append("db")}))
    response = Client(app).get("/healthz", status=200)
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert ran == []


def test_readiness_ok_lists_the_checks_with_their_durations() -> None:
    app = App()
    health = app.use(Health({"db": lambda: None}))

    @health.check("cache", timeout=0.5)
    def cache() -> bool:
        return True

    body = Client(app).get("/readyz", status=200).json
    assert body["status"] == "ok"
    assert [(c["name"], c["ok"]) for c in body["checks"]] == [("db", True), ("cache", True)]
    assert all(isinstance(c["seconds"], float) and 0 <= c["seconds"] < 0.5 for c in body["checks"])


@pytest.mark.parametrize(
    ("check", "error"),
    [
        (lambda: 1 / 0, "ZeroDivisionError: division by zero"),
        (lambda: False, "the check returned False"),
    ],
    ids=["raises", "returns-False"],
)
def test_a_failing_check_makes_readiness_503_with_retry_after(check: Callable[[], object], error: str) -> None:
    app = App()
    app.use(Health({"ok": lambda: None, "bad": check}, retry_after=7))
    response = Client(app).get("/readyz", status=503)
    assert response.headers["Retry-After"] == "7"
    assert response.json["error"] == "not ready"
    bad = response.json["checks"][1]
    assert bad["name"] == "bad" and bad["ok"] is False and bad["error"] == error
    assert isinstance(bad["seconds"], float)


def test_a_slow_check_fails_at_its_own_deadline_and_is_not_started_again_while_it_hangs() -> None:
    release = threading.Event()
    calls: list[int] = []

    def hangs() -> None:
        calls.append(1)
        release.wait(5)

    app = App()
    app.use(Health({"quick": lambda: None, "slow": Check("slow", hangs, timeout=0.2)}))
    client = Client(app)
    started = time.monotonic()
    body = client.get("/readyz", status=503).json
    assert time.monotonic() - started < 1.0
    slow = body["checks"][1]
    assert slow == {"name": "slow", "ok": False, "seconds": 0.2, "error": "timed out after 0.2 s"}
    assert body["checks"][0]["ok"] is True
    again = client.get("/readyz", status=503).json["checks"][1]
    assert again["error"] == "still running from an earlier probe"
    assert calls == [1]
    release.set()
    assert wait_for(lambda: client.get("/readyz").status == 200)
    assert len(calls) == 2


def test_checks_run_in_parallel() -> None:
    app = App()
    app.use(Health({"a": lambda: time.sleep(0.3), "b": lambda: time.sleep(0.3)}))
    started = time.monotonic()
    Client(app).get("/readyz", status=200)
    assert time.monotonic() - started < 0.5


def test_check_names_and_deadlines_are_checked_when_added() -> None:
    health = Health({"db": lambda: None})
    with pytest.raises(ValueError, match="'db' exists already"):
        health.add_check("db", lambda: None)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        health.add_check("cache", lambda: None, timeout=0)
    with pytest.raises(TypeError, match="not callable"):
        health.add_check("x", "not a function")  # type: ignore[arg-type]


# -- exemptions ------------------------------------------------------------------------------


def guarded_app() -> App:
    app = App(openapi=True)
    app.use(RateLimit(1, window=60))
    app.use(Bearer({"s3cret": ["read"]}))
    app.use(CORS(origins=["https://app.example"]))
    app.use(Health({"db": lambda: None}))

    @app.get("/items")
    def items(request: Request) -> list[int]:
        return [1]

    return app


def test_probes_pass_app_wide_auth_rate_limits_and_cors() -> None:
    client = Client(guarded_app())
    for _ in range(5):
        for path in ("/healthz", "/readyz"):
            response = client.get(path, headers={"Origin": "https://app.example"}, status=200)
            assert not [k for k in response.headers if k.lower().startswith(("access-control-", "x-ratelimit"))]
    # the other routes still have all three
    response = client.get("/items", headers={"Origin": "https://app.example"}, status=401)
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    client.get("/items", headers={"Authorization": "Bearer s3cret"}, status=429)


def test_probes_are_not_in_the_api_document() -> None:
    paths = Client(guarded_app()).get("/openapi.json", status=200).json["paths"]
    assert "/items" in paths
    assert "/healthz" not in paths and "/readyz" not in paths


# -- on a live server -------------------------------------------------------------------------


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "restkit.access"]


@pytest.mark.parametrize("log", [False, True], ids=["quiet", "log=True"])
def test_probes_write_no_access_line_unless_asked(live_server: Callable[..., LiveServer],
                                                  caplog: pytest.LogCaptureFixture, log: bool) -> None:
    caplog.set_level(logging.INFO, logger="restkit.access")
    app = App()
    app.use(Health(log=log))

    @app.get("/items")
    def items(request: Request) -> list[int]:
        return []

    server = live_server(app, access_log=True)
    for path in ("/healthz", "/readyz", "/healthz", "/items"):
        assert get(server.port, path)[0] == 200
    assert wait_for(lambda: any('"GET /items HTTP/1.1" 200' in line for line in access_lines(caplog)))
    probes = [line for line in access_lines(caplog) if "/healthz" in line or "/readyz" in line]
    assert len(probes) == (3 if log else 0), access_lines(caplog)


def test_drain_answers_readyz_503_and_serves_for_the_drain_period_then_stops(
        live_server: Callable[..., LiveServer]) -> None:
    app = App()
    app.use(Health({"db": lambda: None}))

    @app.get("/items")
    def items(request: Request) -> list[int]:
        return [1]

    server = live_server(app, drain=1.0)
    port = server.port
    assert get(port, "/readyz")[0] == 200
    started = time.monotonic()
    server.server.begin_shutdown()
    status, headers, body = get(port, "/readyz")
    assert (status, body) == (503, {"error": "draining"})
    assert headers["retry-after"] == "5"
    served = 0
    while time.monotonic() - started < 0.8:  # well inside the drain period: new connections are served
        assert get(port, "/items")[:3:2] == (200, [1])
        served += 1
        time.sleep(0.05)
    assert served >= 5
    assert wait_for(lambda: refused(port), timeout=5)
    assert time.monotonic() - started >= 1.0


APP_MODULE = textwrap.dedent(
    """
    import os
    from restkit import App
    from restkit.health import Health

    app = App()
    app.use(Health())

    @app.get("/work")
    def work(request):
        return {"pid": os.getpid(), "pad": "x" * 2000}
    """
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "health_app.py").write_text(APP_MODULE)
    return tmp_path


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-process", "two-workers"])
def test_sigterm_with_drain_answers_readyz_503_keeps_serving_then_exits_0(app_dir: Path, workers: list[str]) -> None:
    port = free_port()
    proc = start_cli(["health_app:app", "--port", str(port), "--drain", "1", "--no-access-log", *workers], app_dir)
    try:
        wait_until_listening(port, proc)
        assert wait_for(lambda: status_of(port, "/readyz") == 200)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # every worker hears of the stop: the probes say so, and the work is still done
        assert wait_for(lambda: all(status_of(port, "/readyz") == 503 for _ in range(4)), timeout=0.7)
        assert get(port, "/work")[0] == 200
        status, stderr = finish(proc)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert status == 0, stderr
    assert "draining for 1 s" in stderr
    assert "Traceback" not in stderr
    assert elapsed >= 1.0


# -- a rolling restart behind haproxy ---------------------------------------------------------------

HAPROXY_CONFIG = """\
global
    maxconn 256

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout check 1s
    # no retries, no redispatch: a request sent to a closed port would fail, so a pass means none was
    retries 0
    option http-server-close

listen api
    bind 127.0.0.1:{port}
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fall 1 rise 1
{servers}
"""


class Instance:
    """``python -m restkit health_app:app --drain 1`` on its own port, restartable."""

    def __init__(self, name: str, root: Path) -> None:
        self.name, self.root, self.port = name, root, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.root / f"{self.name}.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "restkit", "health_app:app", "--port", str(self.port), "--drain", "1",
                 "--grace", "5", "--no-access-log"],
                cwd=self.root, env=cli_env(), stdout=log, stderr=log,
            )

    def terminate_and_wait(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def balanced(app_dir: Path) -> Iterator[tuple[int, list[Instance]]]:
    haproxy = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.access(p, os.X_OK)), None)
    if haproxy is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    instances = [Instance(name, app_dir) for name in ("a", "b", "c")]
    port = free_port()
    servers = "\n".join(f"    server {i.name} 127.0.0.1:{i.port} check" for i in instances)
    (app_dir / "haproxy.cfg").write_text(HAPROXY_CONFIG.format(port=port, servers=servers))
    proxy: subprocess.Popen[bytes] | None = None
    try:
        for instance in instances:
            instance.start()
        with (app_dir / "haproxy.log").open("ab") as log:
            proxy = subprocess.Popen([haproxy, "-db", "-f", str(app_dir / "haproxy.cfg")], stdout=log, stderr=log)
        seen: set[int] = set()

        def all_up() -> bool:
            try:
                status, _, body = get(port, "/work", timeout=2)
            except (OSError, http.client.HTTPException, ValueError):
                return False
            if status == 200:
                seen.add(body["pid"])
            return len(seen) == 3

        assert wait_for(all_up, timeout=20), (app_dir / "haproxy.log").read_text()
        yield port, instances
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        for instance in instances:
            instance.kill()


def test_rolling_restart_behind_haproxy_with_drain_fails_no_request(balanced: tuple[int, list[Instance]]) -> None:
    port, instances = balanced
    failures: list[str] = []
    answered: list[int] = []
    done = threading.Event()

    def client() -> None:
        while not done.is_set():
            try:
                status, _, body = get(port, "/work", timeout=10)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if status == 200:
                answered.append(body["pid"])
            else:
                failures.append(f"status {status}: {body}")

    clients = [threading.Thread(target=client) for _ in range(2)]
    for thread in clients:
        thread.start()
    try:
        for instance in instances:
            time.sleep(0.5)
            old = instance.process.pid if instance.process else None
            assert instance.terminate_and_wait() == 0
            instance.start()
            # back in the pool (rise 1) before the next one goes
            assert wait_for(lambda: status_of(instance.port, "/readyz") == 200, timeout=20)
            time.sleep(0.5)
            assert instance.process is not None and instance.process.pid != old
    finally:
        done.set()
        for thread in clients:
            thread.join(timeout=20)
    assert failures == []
    assert len(answered) > 50
    assert len(set(answered)) == 6  # every old and every new instance served
