"""restkit.metrics across processes: ``python -m restkit --workers 2`` and ``gunicorn -w 2``, with ``kill -9``.

Real processes on 127.0.0.1 share a metrics directory (``RESTKIT_METRICS_DIR``).
Every request uses a fresh connection, so both workers take some.  A
scrape, whichever worker answers it, must count every request exactly
once the workers have written their files (``interval`` 0.2 s here); after
a worker is killed with SIGKILL its counts stay (folded into the archive)
and its gauges go (the process count and the summed thread count are those
of the live workers).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, stop_process
from tests.wire import cli_env, wait_for

pytest.importorskip("prometheus_client", reason="pip install prometheus_client (the test extra)")
from prometheus_client.parser import text_string_to_metric_families as parse_text  # noqa: E402

APP = textwrap.dedent(
    """
    import os

    from restkit import App
    from restkit.metrics import Metrics

    app = App()
    app.use(Metrics(interval=0.2))

    @app.get("/pid")
    def pid(request):
        return {"pid": os.getpid()}

    @app.get("/zoos/<int:zoo_id>")
    def show_zoo(request, zoo_id):
        return {"id": zoo_id}
    """
)
INTERVAL = 0.2
Figures = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Tally:
    """Every request this test made, by (route template, status): what the scrapes must count."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], float] = {}
        self.pids: set[int] = set()

    def get(self, port: int, path: str, route: str) -> int:
        status, body = get(port, path)
        key = (route, str(status))
        self.counts[key] = self.counts.get(key, 0) + 1
        if path == "/pid":
            self.pids.add(json.loads(body)["pid"])
        return status

    def load(self, port: int) -> None:
        """A known mix: 30 zoos, 7 unrouted paths, 12 pids."""
        for n in range(30):
            assert self.get(port, f"/zoos/{n}", "/zoos/<int:zoo_id>") == 200
        for _ in range(7):
            assert self.get(port, "/nowhere", "<unmatched>") == 404
        for _ in range(12):
            assert self.get(port, "/pid", "/pid") == 200

    def pids_answering(self, port: int, count: int = 2) -> set[int]:
        """Ask /pid until ``count`` workers answered; their pids."""
        seen: set[int] = set()

        def enough() -> bool:
            self.get(port, "/pid", "/pid")
            seen.update(self.pids)
            return len(seen) >= count

        self.pids.clear()
        assert wait_for(enough, timeout=15)
        return set(self.pids)


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def figures(port: int) -> Figures:
    status, body = get(port, "/metrics")
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value for f in parse_text(body.decode()) for s in f.samples}


def requests_by_route(found: Figures) -> dict[tuple[str, str], float]:
    """restkit_http_requests_total by (route, status), the scrapes left out."""
    counted: dict[tuple[str, str], float] = {}
    for (name, labels), value in found.items():
        if name == "restkit_http_requests_total":
            label = dict(labels)
            if label["route"] != "/metrics":
                key = (label["route"], label["status"])
                counted[key] = counted.get(key, 0) + value
    return counted


def settled(port: int, tally: Tally, processes: int) -> Figures:
    """Scrape until every worker's file counts what it served (a few intervals); then 4 scrapes agree."""
    last: list[Figures] = [{}]

    def exact() -> bool:
        last[0] = figures(port)
        return requests_by_route(last[0]) == tally.counts and last[0].get(("restkit_processes", frozenset())) == processes

    assert wait_for(exact, timeout=15, interval=INTERVAL), (requests_by_route(last[0]), tally.counts)
    for _ in range(4):  # whichever worker answers says the same
        assert requests_by_route(figures(port)) == tally.counts
    return last[0]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "metrics_app.py").write_text(APP)
    return tmp_path


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        stop_process(proc, signal.SIGINT, timeout=20)


def start(command: list[str], app_dir: Path, port: int, processes: list[subprocess.Popen[bytes]], tally: Tally) -> None:
    log_path = app_dir / f"log-{port}.txt"
    env = {**cli_env(), "RESTKIT_METRICS_DIR": str(app_dir / "metrics")}
    env["PYTHONPATH"] = f"{app_dir}{os.pathsep}{env['PYTHONPATH']}"
    with open(log_path, "wb") as log:
        processes.append(subprocess.Popen(command, cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT))

    def answers() -> bool:
        try:
            return tally.get(port, "/pid", "/pid") == 200
        except OSError:  # not listening yet: no request made
            return processes[-1].poll() is not None

    assert wait_for(answers, timeout=20), log_path.read_text()
    assert processes[-1].poll() is None, log_path.read_text()


def check_kill_9(port: int, app_dir: Path, tally: Tally, server_gauges: bool) -> None:
    """Load, settle, kill -9 a worker, load again: counts exact and monotonic, the dead worker's gauges gone."""
    victim = min(tally.pids_answering(port))
    tally.load(port)
    before = settled(port, tally, processes=2)
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: victim not in tally.pids_answering(port), timeout=20)  # a replacement serves
    tally.load(port)
    after = settled(port, tally, processes=2)
    for key, value in requests_by_route(before).items():
        assert requests_by_route(after)[key] >= value  # monotonic
    assert not list((app_dir / "metrics").glob(f"{victim}-*"))  # its files were folded and removed
    threads = ("restkit_server_worker_threads", frozenset())
    if server_gauges:
        assert before[threads] == after[threads] == 16  # 8 a worker, live workers only
    else:  # gunicorn: restkit's server figures are simply absent
        assert not [name for name, _ in after if name.startswith("restkit_server_")]
    cpu = ("process_cpu_seconds_total", frozenset())
    assert after[cpu] >= before[cpu]


def test_restkit_workers_count_every_request_once_and_survive_kill_9(app_dir: Path,
                                                                     processes: list[subprocess.Popen[bytes]]) -> None:
    tally, port = Tally(), free_port()
    start([sys.executable, "-m", "restkit", "metrics_app:app", "--workers", "2", "--port", str(port), "--no-access-log"],
          app_dir, port, processes, tally)
    check_kill_9(port, app_dir, tally, server_gauges=True)


def test_gunicorn_workers_count_every_request_once_and_survive_kill_9(app_dir: Path,
                                                                      processes: list[subprocess.Popen[bytes]]) -> None:
    if shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("gunicorn is not installed (pip install gunicorn)")
    tally, port = Tally(), free_port()
    start([sys.executable, "-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "2", "-b", f"127.0.0.1:{port}",
           "metrics_app:app"], app_dir, port, processes, tally)
    check_kill_9(port, app_dir, tally, server_gauges=False)
