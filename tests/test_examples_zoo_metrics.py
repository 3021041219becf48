"""The zoo's ``GET /metrics``, and the Prometheus scrape configuration its README shows (``promtool check config``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from restkit.testing import Client
from tests.test_examples_zoo import new_app

prometheus_client = pytest.importorskip("prometheus_client", reason="pip install prometheus_client (the test extra)")
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics  # noqa: E402

README = (Path(__file__).resolve().parent.parent / "examples" / "zoo" / "README.md").read_text(encoding="utf-8")


def test_the_zoo_counts_by_route_template(tmp_path: Path) -> None:
    app = new_app(tmp_path)
    try:
        client = Client(app)
        for zoo in (1, 2):
            assert client.get(f"/v1/zoos/{zoo}").status == 200
        assert client.get("/v1/zoos/999").status == 404
        assert client.get("/v1/nothing").status == 404
        assert client.get("/healthz").status == 200
        answer = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        assert answer.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
        families = {family.name: family for family in parse_openmetrics(answer.text)}
    finally:
        app.close()
    counted = {(s.labels["route"], s.labels["status"]): s.value for s in families["restkit_http_requests"].samples}
    assert counted[("/v1/zoos/<int:zoo>", "200")] == 2
    assert counted[("/v1/zoos/<int:zoo>", "404")] == 1  # routed, then not found: the template, not <unmatched>
    assert counted[("<unmatched>", "404")] == 1
    assert counted[("/healthz", "200")] == 1
    timed = {s.labels["route"] for s in families["restkit_http_request_duration_seconds"].samples}
    assert "/healthz" not in timed and "/v1/zoos/<int:zoo>" in timed


def test_the_readmes_scrape_configuration_is_valid(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    section = README[README.index("### Deploying: metrics for Prometheus"):README.index("## The API")]
    (config,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    (tmp_path / "prometheus.yml").write_text(config)
    done = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
