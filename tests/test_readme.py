"""The README's code samples run as written (the serve() call aside)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, make_client
from tests.docblocks import NOT_PYTHON, PYTHON, Block, isolated, markdown_blocks, new_namespace, run_block

README = (ROOT / "README.md").read_text(encoding="utf-8")
SAMPLES = re.findall(r"```python\n(.*?)```", README, re.S)


def _run(sample: str) -> dict[str, Any]:
    """Run a sample as a module of its own, as a user's file would be (the rules: tests/docblocks.py)."""
    namespace = new_namespace("readme_sample")
    run_block(Block("README.md", 1, "python", sample), namespace, leave_out=("serve(",))
    return namespace


MARKDOWN = [ROOT / "README.md", *sorted(ROOT.glob("examples/*/README.md"))]
BLOCKS = [block for path in MARKDOWN for block in markdown_blocks(path)]


@pytest.mark.parametrize("block", [block for block in BLOCKS if block.is_python], ids=lambda block: block.where)
def test_every_python_block_runs(block: Block, tmp_path: Path) -> None:
    """Each Python block of README.md and examples/*/README.md runs alone (a ``# fragment`` is only compiled)."""
    with isolated(tmp_path, "readme_sample") as namespace:
        run_block(block, namespace, leave_out=("serve(",))


def test_every_block_names_its_language() -> None:
    """Python or not is told by the fence's label; the blocks that are not Python say what they are."""
    assert {block.language for block in BLOCKS} <= PYTHON | NOT_PYTHON
    assert sum(block.is_python for block in BLOCKS) >= 20


def test_the_ten_line_example() -> None:
    sample = next(s for s in SAMPLES if "show_zoo" in s)
    client = make_client(_run(sample)["app"])
    assert client.get("/zoos/1").json == {"id": 1, "name": "Beijing Zoo"}
    assert client.get("/zoos/9", status=404).json == {"error": "zoo 9 does not exist"}


def test_the_typed_validation_example() -> None:
    sample = next(s for s in SAMPLES if "ZooIn" in s)
    client = make_client(_run(sample)["app"])
    created = client.post_json("/zoos", {"name": "Tierpark", "city": "Berlin", "opened": "1955-07-02"}, status=201)
    assert created.json == {"name": "Tierpark", "city": "Berlin", "opened": "1955-07-02"}
    refused = client.post_json("/zoos", {"name": "", "city": 3, "size": 1}, status=422).json
    assert refused["error"] == "validation failed"
    assert set(refused["details"]) == {"name", "city", "size"}
    assert client.get("/zoos?limit=5&order=desc").json == {"limit": 5, "order": "desc"}
    patched = client.patch_json("/zoos/3", {"city": "Berlin"})
    assert patched.json == {"id": 3, "changed": {"city": "Berlin"}} and patched.headers["Cache-Control"] == "no-store"
    assert "limit" in client.get("/zoos?limit=500", status=400).json["error"]
    assert client.get("/openapi.json").json["paths"]["/zoos"]["post"]["summary"] == "Create a zoo."
    assert client.get("/docs").content_type == "text/html"


def _sample(marker: str) -> Any:
    return _run(next(s for s in SAMPLES if marker in s))


def test_the_paging_example() -> None:
    client = make_client(_sample("BOOKMARKS")["app"])
    page = client.get("/bookmarks?tag=blog&sortby=title&order=desc&limit=5")
    assert page.headers["X-Total-Count"] == "16" and len(page.json) == 5
    assert 'rel="next"' in page.headers["Link"] and "tag=blog" in page.headers["Link"]
    assert "name different pages" in client.get("/bookmarks?limit=5&page=2", status=400).json["error"]
    assert len(client.get("/bookmarks?limit=5&offset=5&page=2&per_page=5").json) == 5  # both styles, one page


def test_the_conditional_example() -> None:
    client = make_client(_sample("check_preconditions")["app"])
    tag = client.get("/notes/1").headers["ETag"]
    assert client.get("/notes/1", headers={"If-None-Match": tag}, status=304).body == b""
    assert client.put_json("/notes/1", {"text": "x"}, status=428).json["error"]
    # GET -> ETag -> PUT with If-Match: the tag the GET gave is the one the write compares
    changed = client.put_json("/notes/1", {"text": "x"}, headers={"If-Match": tag}).json
    assert changed["version"] == 2 and changed["text"] == "x"
    # the old tag is stale now: 412, naming If-Match
    refused = client.put_json("/notes/1", {"text": "y"}, headers={"If-Match": tag}, status=412).json["error"]
    assert refused.startswith("If-Match does not match the current ETag")
    fresh = client.get("/notes/1").headers["ETag"]
    assert fresh != tag and client.put_json("/notes/1", {"text": "y"}, headers={"If-Match": fresh}).json["version"] == 3


def test_the_cors_example() -> None:
    client = make_client(_sample("CORS(")["app"])
    answer = client.get("/ping", headers={"Origin": "https://app.example"})
    assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    preflight = client.options("/ping", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
                               status=403)
    assert "evil.example" in preflight.json["error"]


def test_the_auth_example() -> None:
    client = make_client(_sample("Bearer(")["app"])
    assert client.get("/me", headers={"Authorization": "Bearer r3ad"}).json == {"name": "bob"}
    assert client.get("/me", status=401).headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/posts", headers={"Authorization": "Bearer r3ad"}, status=403).json["error"]
    assert client.post("/posts", headers={"Authorization": "bearer  s3cret"}, status=201).json == {"created": True}
    assert client.get("/openapi.json").json["paths"]["/posts"]["post"]["security"] == [{"bearerAuth": ["write"]}]


def test_the_any_of_auth_example() -> None:
    client = make_client(_sample("AnyOf(")["app"])
    assert client.get("/reports", headers={"Authorization": "Bearer s3cret"}).json == {"for": "ada"}
    assert client.get("/reports", headers={"X-API-Key": "k-123"}).json == {"for": "nightly-export"}
    missing = client.get("/reports", status=401)
    assert missing.headers["WWW-Authenticate"] == "Bearer, APIKey"
    assert "'Authorization: Bearer <token>' header or an API key in an X-API-Key header" in missing.json["error"]
    stale = {"Authorization": "Bearer old", "X-API-Key": "k-123"}
    assert client.get("/reports", headers=stale, status=401).json["error"] == "invalid token"
    assert client.post("/reports", headers={"X-API-Key": "k-123"}, status=403).json["error"]
    assert client.post("/reports", headers={"Authorization": "Bearer s3cret"}, status=201).json == {"created": True}
    security = client.get("/openapi.json").json["paths"]["/reports"]["get"]["security"]
    assert security == [{"bearerAuth": []}, {"apiKeyAuth": []}]


def test_the_rate_limit_example() -> None:
    client = make_client(_sample("rate_limit=RateLimit(")["app"])
    for remaining in (4, 3, 2, 1, 0):
        assert client.post("/login").headers["X-RateLimit-Remaining"] == str(remaining)
    refused = client.post("/login", status=429)
    assert refused.headers["Retry-After"] and "requests in 300 seconds" in refused.json["error"]


def test_the_proxy_example() -> None:
    from tests.conftest import wsgi_call

    app = _sample("ProxyHeaders(")["app"]
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example"}
    status, answer, body = wsgi_call(app, "GET", "/whoami", headers, REMOTE_ADDR="10.1.2.3")
    assert status == 200 and json.loads(body) == {"address": "198.51.100.7", "url": "https://api.example"}
    assert answer["X-RateLimit-Remaining"] == "599"
    status, _, body = wsgi_call(app, "GET", "/whoami", headers, REMOTE_ADDR="203.0.113.9")  # not a proxy of ours
    assert json.loads(body)["address"] == "203.0.113.9"


def test_the_compression_example() -> None:
    from tests.conftest import wsgi_call

    status, headers, body = wsgi_call(_sample("Compression(")["app"], "GET", "/animals", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and body[:2] == b"\x1f\x8b"


def test_the_metrics_example() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    client = make_client(_sample("Metrics(")["app"])
    client.get("/zoos/7")
    client.get("/zoos/seven", status=404)
    scrape = client.get("/metrics")
    assert scrape.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    counted = {(s.labels["route"], s.labels["status"]): s.value for family in text_string_to_metric_families(scrape.text)
               for s in family.samples if s.name == "restkit_http_requests_total"}
    assert counted == {("/zoos/<int:zoo_id>", "200"): 1, ("<unmatched>", "404"): 1}


def test_the_testing_examples_pass_under_pytest(tmp_path: Path) -> None:
    """The Client example and the live_server example, as a user runs them (the plugin given by -p: not installed)."""
    import os
    import subprocess

    (tmp_path / "test_items.py").write_text(next(s for s in SAMPLES if "restkit.testing import Client" in s))
    (tmp_path / "test_live.py").write_text(next(s for s in SAMPLES if "def test_ping_over_http(live_server)" in s))
    # No entry points: the same run whether restkit is installed here (its pytest11 entry point) or not.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "restkit.pytest_plugin",
                           "test_items.py", "test_live.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "6 passed" in done.stdout


def test_the_route_options_table_lists_every_option() -> None:
    from restkit.feature import SHIPPED_FEATURES
    from restkit.routing import ROUTE_OPTIONS

    table = README.split("| option | what it is | default |", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^\s*\| `(\w+)` \|", table, re.M)
    assert listed == [*ROUTE_OPTIONS, *SHIPPED_FEATURES]


def test_the_settings_and_startup_example() -> None:
    from tests.conftest import wsgi_call

    sample = _sample("load_settings(")
    settings = sample["settings"]
    assert settings.port == 8000 and settings.token.reveal() == "s3cret" and "s3cret" not in repr(settings)
    assert settings.origins == ["https://a.example", "https://b.example"]
    comment = README.split("problems = str(error)", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    shown = [line.strip().removeprefix("#").strip() for line in comment]
    assert [line.strip() for line in sample["problems"].splitlines()] == shown  # the README shows the real message
    assert "ZOO_ORIGINS       list[str]" in sample["help_text"] and "CORS origins" in sample["help_text"]
    status, _, body = wsgi_call(sample["app"], "GET", "/status")  # the first request runs the startup hook
    assert status == 200 and json.loads(body) == {"mode": "dev", "connections": 1}
    wsgi_call(sample["app"], "GET", "/status")
    assert sample["connections"] == ["sqlite:///zoo.db"]


def test_the_health_example() -> None:
    module = _sample("DATABASE_UP")
    client = make_client(module["app"])
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz").json
    assert ready["status"] == "ok" and [c["name"] for c in ready["checks"]] == ["database", "cache"]
    module["DATABASE_UP"] = False
    refused = client.get("/readyz", status=503)
    assert refused.headers["Retry-After"] == "5"
    assert refused.json["checks"][0]["error"] == "ConnectionError: database unreachable"


def test_the_request_id_example(caplog: Any) -> None:
    import logging

    root = logging.getLogger()
    before = list(root.handlers)
    try:
        module = _sample("log_request_ids()")
        response = make_client(module["app"]).get("/orders", headers={"X-Request-ID": "r-1"})
        assert response.headers["X-Request-ID"] == "r-1"
        assert [r.request_id for r in caplog.records if r.name == "orders"] == ["r-1"]
    finally:
        for handler in root.handlers:
            for log_filter in list(handler.filters):
                if type(log_filter).__name__ == "RequestIdFilter":
                    handler.removeFilter(log_filter)
        root.handlers[:] = before


def test_the_shared_rate_limit_example(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)  # the sample's ratelimit.db goes there
    module = _sample('SQLiteStore("ratelimit.db")')
    client = make_client(module["app"])
    assert client.get("/quota").headers["X-RateLimit-Remaining"] == "99"
    again = make_client(_sample('SQLiteStore("ratelimit.db")')["app"])  # another process would share the file too
    assert again.get("/quota").headers["X-RateLimit-Remaining"] == "98"
    assert (tmp_path / "ratelimit.db").exists()


def test_the_idempotency_example(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    module = _sample("SQLiteKeyStore(")
    client = make_client(module["app"])
    key = {"Idempotency-Key": "8e03978e-40d5-43e8-bc93-6894a57f9324"}
    first = client.post_json("/payments", {"amount": 10}, headers=key, status=201)
    again = client.post_json("/payments", {"amount": 10}, headers=key, status=201)
    assert again.json == first.json == {"id": 1, "amount": 10} and again.headers["Idempotent-Replayed"] == "true"
    assert module["PAYMENTS"] == [{"amount": 10}]
    assert "another request" in client.post_json("/payments", {"amount": 11}, headers=key, status=422).json["error"]
    assert "needs an Idempotency-Key" in client.post_json("/refunds", {}, status=400).json["error"]
    assert client.post_json("/payments", {"amount": 10}, status=201).json["id"] == 2  # no key: runs every time


def test_the_jobs_example(tmp_path: Path, monkeypatch: Any) -> None:
    import time

    monkeypatch.chdir(tmp_path)  # its SQLiteStore("jobs.db")
    sample = _sample("jobs.kind(")
    app, jobs = sample["app"], sample["jobs"]
    try:
        client = make_client(app)
        answer = client.post_json("/reports", {"month": "2026-11"}, headers={"Idempotency-Key": "k-1"}, status=202)
        job = answer.json
        assert answer.headers["Location"] == f"http://localhost:80/jobs/{job['id']}" and answer.headers["Retry-After"] == "1"
        again = client.post_json("/reports", {"month": "2026-11"}, headers={"Idempotency-Key": "k-1"}, status=202)
        assert again.json["id"] == job["id"]
        deadline = time.monotonic() + 30
        while (done := client.get(f"/jobs/{job['id']}")).status_int != 303 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert done.status_int == 303 and done.json["status"] == "succeeded" and done.json["progress"] == 1.0
        assert client.get(done.headers["Location"]).json == {"month": "2026-11", "total": 1234}
        assert client.delete(f"/jobs/{job['id']}", status=409).json["error"].endswith("nothing to cancel")
        document = client.get("/openapi.json").json
        assert set(document["paths"]["/reports"]["post"]["responses"]["202"]["headers"]) == {"Location", "Retry-After"}
    finally:
        jobs.close()
