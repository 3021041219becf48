"""``python -m restkit SPEC --workers N``: real processes, real sockets on 127.0.0.1, no mocks.

The supervisor's log goes to a file the tests read while it runs (which
workers started, which exited and how).  Every client request uses a fresh
connection with ``Connection: close`` and is never retried, so a failure
counted here is a request a client would have seen fail.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port, stop_process
from tests.wire import ROOT, TIMEOUT, cli_env, connect, parse_response, read_until_close, wait_for, wait_until_listening

APP = textwrap.dedent(
    """
    import os
    import time

    if os.environ.get("CRASH_AT_IMPORT"):
        os._exit(1)

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        pid = str(os.getpid()).encode()
        if path in ("/stream", "/long"):  # ten (a hundred) chunks, one every 0.1 s
            start_response("200 OK", [("Content-Type", "text/plain")])
            return (time.sleep(0.1) or pid + b" %d\\n" % n for n in range(10 if path == "/stream" else 100))
        if path == "/slow":
            time.sleep(1.0)
        if path == "/multiprocess":
            pid = b"1" if environ["wsgi.multiprocess"] else b"0"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(pid)))])
        return [pid]
    """
)


@dataclass
class Supervisor:
    """A ``python -m restkit`` process and the file its standard error goes to."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def started(self) -> list[int]:
        """Worker pids in the order the supervisor started them."""
        return [int(pid) for pid in re.findall(r"started worker (\d+)", self.log())]

    def wait_log(self, pattern: str, count: int = 1, timeout: float = 20.0) -> bool:
        return wait_for(lambda: len(re.findall(pattern, self.log())) >= count, timeout=timeout, interval=0.05)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "pid_app.py").write_text(APP)
    return tmp_path


@pytest.fixture
def supervisors(app_dir: Path) -> Iterator[list[Supervisor]]:
    started: list[Supervisor] = []
    yield started
    for sup in started:
        stop_process(sup.proc, signal.SIGINT, timeout=20)


def start(app_dir: Path, supervisors: list[Supervisor], *args: str, spec: str = "pid_app:app",
          env: dict[str, str] | None = None, wait: bool = True) -> Supervisor:
    """Start a supervisor on a free port; with ``wait``, until it says all its workers serve."""
    port = free_port()
    log_path = app_dir / f"stderr-{port}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "restkit", spec, "--port", str(port), "--no-access-log", *args],
            cwd=app_dir, env={**cli_env(), **(env or {})}, stdout=subprocess.DEVNULL, stderr=log_file,
        )
    sup = Supervisor(proc, port, log_path)
    supervisors.append(sup)
    if wait:
        assert wait_for(lambda: "serving on" in sup.log() or proc.poll() is not None, timeout=20), sup.log()
        assert proc.poll() is None, sup.log()
    return sup


def ask(port: int, path: str = "/", context: ssl.SSLContext | None = None) -> int:
    """GET ``path`` on a fresh connection (``Connection: close``): the pid that answered."""
    if context is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=TIMEOUT, context=context)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body)
        return int(body)
    finally:
        conn.close()


@dataclass
class Load:
    """Clients asking in a loop on fresh connections until stopped; what they saw.

    Each client pauses between requests, so a few seconds make a few hundred.
    """

    port: int
    clients: int = 2
    pause: float = 0.01
    pids: list[tuple[float, int]] = field(default_factory=list)  # (when, pid) of each answer
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(TIMEOUT + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pid = ask(self.port)
            except (OSError, http.client.HTTPException, AssertionError, ValueError) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            else:
                self.pids.append((time.monotonic(), pid))
            self._stop.wait(self.pause)

    def seen_after(self, moment: float) -> set[int]:
        return {pid for when, pid in list(self.pids) if when > moment}


def pids_answering(port: int, tries: int = 60) -> set[int]:
    return {ask(port) for _ in range(tries)}


def test_two_workers_answer(app_dir: Path, supervisors: list[Supervisor]) -> None:
    sup = start(app_dir, supervisors, "--workers", "2")
    seen: set[int] = set()
    for _ in range(300):
        seen.add(ask(sup.port))
        if len(seen) == 2:
            break
    assert len(seen) == 2, seen
    assert sup.proc.pid not in seen
    assert seen == set(sup.started())
    assert ask(sup.port, "/multiprocess") == 1
    assert stop_process(sup.proc) == 0


def test_a_killed_worker_is_replaced_and_only_its_requests_in_flight_fail(app_dir: Path, supervisors: list[Supervisor]) -> None:
    sup = start(app_dir, supervisors, "--workers", "2")
    first = sup.started()
    with Load(sup.port, clients=2) as load:
        time.sleep(1.0)
        victim = first[0]
        os.kill(victim, signal.SIGKILL)
        assert sup.wait_log(rf"worker {victim} exited with signal SIGKILL; restarting in"), sup.log()
        assert wait_for(lambda: len(sup.started()) == 3, timeout=10), sup.log()
        time.sleep(2.0)
    replacement = sup.started()[2]
    # At most the requests in flight on the killed worker fail: one per client.
    assert len(load.failures) <= load.clients, load.failures
    assert len(load.pids) > 50
    if replacement not in {pid for _, pid in load.pids}:  # the kernel may favour the other worker for a while
        assert replacement in pids_answering(sup.port, tries=300)
    assert victim not in pids_answering(sup.port)
    assert stop_process(sup.proc) == 0


def test_sighup_replaces_every_worker_without_a_failed_request(app_dir: Path, supervisors: list[Supervisor]) -> None:
    sup = start(app_dir, supervisors, "--workers", "2")
    old = set(sup.started())
    with Load(sup.port, clients=2) as load:
        time.sleep(1.0)
        sup.proc.send_signal(signal.SIGHUP)
        assert sup.wait_log("reloaded: 2 new workers answer"), sup.log()
        reloaded = time.monotonic()
        assert all(sup.wait_log(rf"worker {pid} stopped \(status 0\)") for pid in old), sup.log()
        time.sleep(1.0)
    new = set(sup.started()) - old
    assert len(new) == 2
    assert load.failures == []  # no retries: each request is counted once
    assert load.seen_after(reloaded + 0.5) <= new
    assert pids_answering(sup.port, tries=20) <= new
    assert stop_process(sup.proc) == 0


def test_sigterm_lets_a_stream_and_a_slow_request_finish(app_dir: Path, supervisors: list[Supervisor]) -> None:
    sup = start(app_dir, supervisors, "--workers", "2", "--grace", "5")
    stream = connect(sup.port)
    stream.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert stream.recv(1)  # the head is on its way: the stream runs
    slow: dict[str, int] = {}
    slow_thread = threading.Thread(target=lambda: slow.setdefault("pid", ask(sup.port, "/slow")), daemon=True)
    slow_thread.start()
    time.sleep(0.3)  # the slow request has reached its worker
    sup.proc.send_signal(signal.SIGTERM)
    answer = parse_response(b"H" + read_until_close(stream))
    stream.close()
    slow_thread.join(TIMEOUT)
    assert answer.status == 200 and answer.complete, answer
    assert len(answer.body.splitlines()) == 10
    assert "pid" in slow
    sup.proc.wait(TIMEOUT)
    assert sup.proc.returncode == 0, sup.log()
    assert "restkit: stopped" in sup.log()


def test_sighup_loads_new_code_and_a_failed_reload_keeps_the_old_workers(app_dir: Path, supervisors: list[Supervisor]) -> None:
    module = app_dir / "versioned_app.py"
    template = "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'{}']\n"
    module.write_text(template.format(1))
    # No .pyc: versions 1 and 2 have the same size and may share a modification second.
    sup = start(app_dir, supervisors, "--workers", "2", spec="versioned_app:app", env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert ask(sup.port) == 1
    module.write_text("raise RuntimeError('a bad deploy')\n")
    sup.proc.send_signal(signal.SIGHUP)
    assert sup.wait_log("reload failed, the running workers stay: .*RuntimeError: a bad deploy"), sup.log()
    assert {ask(sup.port) for _ in range(10)} == {1}
    module.write_text(template.format(2))
    sup.proc.send_signal(signal.SIGHUP)
    assert sup.wait_log("reloaded: 2 new workers answer"), sup.log()
    assert {ask(sup.port) for _ in range(10)} == {2}
    assert stop_process(sup.proc) == 0


def test_a_second_sigterm_stops_at_once(app_dir: Path, supervisors: list[Supervisor]) -> None:
    sup = start(app_dir, supervisors, "--workers", "2", "--grace", "30")
    stream = connect(sup.port)
    stream.sendall(b"GET /long HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert stream.recv(1)
    sup.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    sup.proc.send_signal(signal.SIGTERM)
    answer = parse_response(b"H" + read_until_close(stream))
    stream.close()
    sup.proc.wait(8)  # the stream alone would take 10 s, the grace 30
    assert sup.proc.returncode == 0, sup.log()
    assert answer.status == 200 and not answer.complete  # cut: no last chunk


def test_a_crashing_app_is_restarted_with_backoff(app_dir: Path, supervisors: list[Supervisor]) -> None:
    sup = start(app_dir, supervisors, "--workers", "2", env={"CRASH_AT_IMPORT": "1"}, wait=False)
    time.sleep(3.0)
    exits = re.findall(r"worker \d+ exited with status 1; restarting in ([\d.]+) s", sup.log())
    # A tight loop would fork hundreds; the delays 0.1, 0.2, 0.4, 0.8, 1.6... leave about six.
    assert 2 <= len(exits) <= 12, sup.log()
    assert float(exits[-1]) > float(exits[0])
    assert sup.proc.poll() is None
    assert stop_process(sup.proc) == 0


def test_a_worker_that_cannot_load_the_app_stops_the_supervisor(app_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "restkit", "no_such_module_xyz:app", "--port", str(free_port()), "--workers", "2",
         "--log-level", "warning"],
        cwd=app_dir, env=cli_env(), capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "restkit: a worker failed to boot: no module named 'no_such_module_xyz' (run from the directory that contains it)"
    ]


def test_a_stuck_worker_is_killed_and_replaced(app_dir: Path, supervisors: list[Supervisor]) -> None:
    sup = start(app_dir, supervisors, "--workers", "2", "--worker-timeout", "1")
    stuck = sup.started()[0]
    os.kill(stuck, signal.SIGSTOP)
    assert sup.wait_log(rf"worker {stuck} has not checked in for [\d.]+ s \(worker timeout 1 s\); killing it",
                        timeout=10), sup.log()
    assert sup.wait_log(rf"worker {stuck} exited with signal SIGKILL; restarting in", timeout=10), sup.log()
    assert wait_for(lambda: len(sup.started()) == 3, timeout=10), sup.log()
    assert stuck not in pids_answering(sup.port, tries=20)
    assert stop_process(sup.proc) == 0


def test_max_requests_replaces_workers_without_a_failed_request(app_dir: Path, supervisors: list[Supervisor]) -> None:
    sup = start(app_dir, supervisors, "--workers", "2", "--max-requests", "20", "--max-requests-jitter", "2")
    answers = [ask(sup.port) for _ in range(60)]  # each would raise on a failure
    # Each worker serves at most 22, so 60 requests took at least three of them.
    assert len(set(answers)) >= 3, answers
    assert "reached its max requests; starting another" in sup.log()
    assert stop_process(sup.proc) == 0


def test_workers_serve_https(app_dir: Path, supervisors: list[Supervisor], tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme", reason="trustme is a test extra: pip install '.[test]'")
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.private_key_pem.write_to_path(str(key))
    for number, pem in enumerate(issued.cert_chain_pems):
        pem.write_to_path(str(cert), append=number > 0)
    context = ssl.create_default_context()
    authority.configure_trust(context)
    sup = start(app_dir, supervisors, "--workers", "2", "--certfile", str(cert), "--keyfile", str(key))
    assert f"serving on https://127.0.0.1:{sup.port} with 2 workers" in sup.log()
    assert {ask(sup.port, context=context) for _ in range(5)} <= set(sup.started())
    assert stop_process(sup.proc) == 0


def test_workers_redirect_plain_http_to_https(app_dir: Path, supervisors: list[Supervisor], tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme", reason="trustme is a test extra: pip install '.[test]'")
    issued = trustme.CA().issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.private_key_pem.write_to_path(str(key))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    plain_port = free_port()
    sup = start(app_dir, supervisors, "--workers", "2", "--certfile", str(cert), "--keyfile", str(key),
                "--redirect-http", str(plain_port))
    for _ in range(4):  # whichever worker takes it
        conn = http.client.HTTPConnection("127.0.0.1", plain_port, timeout=TIMEOUT)
        conn.request("GET", "/where?a=1", headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert (resp.status, resp.getheader("Location")) == (308, f"https://127.0.0.1:{sup.port}/where?a=1")
    assert stop_process(sup.proc) == 0


STARTUP_APP = textwrap.dedent(
    """
    import os
    from restkit import App

    app = App()
    pids = []

    @app.on_startup
    def remember():
        pids.append(os.getpid())
        if os.environ.get("FAIL_STARTUP"):
            raise RuntimeError("no database")

    @app.get("/pids")
    def answer(request):
        return {"pids": pids, "me": os.getpid()}
    """
)


def test_startup_hooks_run_in_each_worker_after_the_fork(app_dir: Path, supervisors: list[Supervisor]) -> None:
    (app_dir / "startup_app.py").write_text(STARTUP_APP)
    sup = start(app_dir, supervisors, "--workers", "2", spec="startup_app:app")
    seen = {}
    for _ in range(40):
        conn = http.client.HTTPConnection("127.0.0.1", sup.port, timeout=TIMEOUT)
        conn.request("GET", "/pids", headers={"Connection": "close"})
        body = json.loads(conn.getresponse().read())
        conn.close()
        seen[body["me"]] = body["pids"]
        if len(seen) == 2:
            break
    assert len(seen) == 2 and all(pids == [pid] for pid, pids in seen.items()), seen  # once each, in the worker
    assert stop_process(sup.proc) == 0


def test_a_failing_startup_hook_in_the_workers_stops_the_start(app_dir: Path) -> None:
    (app_dir / "startup_app.py").write_text(STARTUP_APP)
    proc = subprocess.run(
        [sys.executable, "-m", "restkit", "startup_app:app", "--port", str(free_port()), "--workers", "2"],
        cwd=app_dir, env={**cli_env(), "FAIL_STARTUP": "1"}, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert "startup failed" in proc.stderr and "no database" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_with_workers_shares_the_imported_app(app_dir: Path) -> None:
    port = free_port()
    script = f"from restkit import serve\nfrom pid_app import app\nserve(app, port={port}, workers=2, access_log=False)\n"
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=app_dir, env={**cli_env(), "PYTHONPATH": f"{ROOT}:{app_dir}"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_listening(port, proc)
        assert proc.pid not in pids_answering(port, tries=5)
    finally:
        status = stop_process(proc)
    assert status == 0


@pytest.mark.parametrize("args, message", [
    (["--reload", "--workers", "2"], "restkit: --reload runs one server process for development: drop --workers"),
    (["--workers", "-1"], "restkit: --workers must be 0 or more (0 or auto: one per core), not -1"),
    (["--worker-timeout", "0"], "restkit: --worker-timeout must be more than 0 seconds, not 0.0"),
    (["--max-requests", "-5"], "restkit: --max-requests must be 0 or more, not -5"),
], ids=["reload-with-workers", "negative-workers", "zero-worker-timeout", "negative-max-requests"])
def test_bad_worker_options_are_one_line(app_dir: Path, args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "restkit", "pid_app:app", *args], cwd=app_dir, env=cli_env(),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(message), result.stderr


def test_a_malformed_spec_is_a_usage_error_before_any_worker_starts(app_dir: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "restkit", "pid_app:app[0]", "--workers", "2"], cwd=app_dir,
                            env=cli_env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == "restkit: expected a name or a call such as create_app() after ':', got 'pid_app:app[0]'"


def test_workers_auto_means_one_per_core() -> None:
    from restkit.cli import _parser
    from restkit.server.supervisor import worker_count

    assert _parser().parse_args(["m:app", "--workers", "auto"]).workers == 0
    assert worker_count(0) == len(os.sched_getaffinity(0))
    assert worker_count(3) == 3

