"""A real Prometheus server scrapes a restkit app served by two workers, and its queries count every request.

``/usr/bin/prometheus`` (Debian's ``prometheus`` package) runs from a
temporary configuration with a 1 s scrape interval, on a free port of
127.0.0.1 and a temporary storage directory.  It negotiates OpenMetrics,
so this is also the check that a real scraper accepts restkit's text.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, stop_process
from tests.test_metrics_workers import APP, Tally
from tests.wire import cli_env, wait_for

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
QUERY = 'sum by (route, status) (restkit_http_requests_total{route!="/metrics"})'


def scrape_config(target: str) -> str:
    return (
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: app\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )


def query(port: int, expression: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=5) as answer:
        data = json.load(answer)
    assert data["status"] == "success", data
    return list(data["data"]["result"])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in reversed(started):
        stop_process(proc, signal.SIGTERM, timeout=20)


def test_prometheus_counts_what_two_workers_served(tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip("the Prometheus server is not installed (apt-get install prometheus)")
    (tmp_path / "metrics_app.py").write_text(APP)
    app_port, prometheus_port = free_port(), free_port()
    env = {**cli_env(), "RESTKIT_METRICS_DIR": str(tmp_path / "metrics")}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    with open(tmp_path / "app.log", "wb") as log:
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "restkit", "metrics_app:app", "--workers", "2", "--port", str(app_port),
             "--no-access-log"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT))
    tally = Tally()

    def app_answers() -> bool:
        try:
            return tally.get(app_port, "/pid", "/pid") == 200
        except OSError:
            return False

    assert wait_for(app_answers, timeout=20), (tmp_path / "app.log").read_text()
    (tmp_path / "prometheus.yml").write_text(scrape_config(f"127.0.0.1:{app_port}"))
    with open(tmp_path / "prometheus.log", "wb") as log:
        processes.append(subprocess.Popen(
            [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--web.listen-address=127.0.0.1:{prometheus_port}",
             f"--storage.tsdb.path={tmp_path / 'data'}"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT))
    tally.pids_answering(app_port)  # both workers serve
    tally.load(app_port)
    expected = {(route, status): count for (route, status), count in tally.counts.items()}
    seen: list[dict[tuple[str, str], float]] = [{}]

    def counted() -> bool:
        try:
            result = query(prometheus_port, QUERY)
        except OSError:  # Prometheus not up yet
            return False
        seen[0] = {(r["metric"]["route"], r["metric"]["status"]): float(r["value"][1]) for r in result}
        return seen[0] == expected

    assert wait_for(counted, timeout=30, interval=0.5), (seen[0], expected, (tmp_path / "prometheus.log").read_text()[-3000:])
    up = query(prometheus_port, "up")
    assert [float(r["value"][1]) for r in up] == [1.0]
    assert query(prometheus_port, "restkit_processes")[0]["value"][1] == "2"
    assert query(prometheus_port, 'restkit_http_request_duration_seconds_bucket{route="/zoos/<int:zoo_id>",le="+Inf"}')
