"""The benchmark suite still works, and every adapter answers every scenario alike.

Nothing here checks a timing: the benchmarks run in their quick modes and
must print their tables and ratios.  The cross-check runs each scenario on
every framework's adapter and compares status and JSON with bare WSGI, so
a benchmark never compares apps that do different work; restkit and bare
WSGI go through :func:`wsgiref.validate.validator`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.adapters import ADAPTERS, SCENARIOS, Scenario, apps_for, environ_for, load  # noqa: E402
from benchmarks.server import BIG_SIZE, PATH, make_bench_app, run_python_client  # noqa: E402

PEERS = ("bottle", "falcon", "flask")  # optional: pip install '.[bench]'


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def _call(app: Callable[..., Iterable[bytes]], scenario: Scenario) -> tuple[int, Any]:
    """Status code and decoded body (JSON, or text) of one scenario."""
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        got["status"], got["headers"] = status, headers
        return lambda data: None

    result = app(environ_for(scenario), start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    content_type = dict((k.lower(), v) for k, v in got["headers"]).get("content-type", "")
    value = json.loads(body) if content_type.startswith("application/json") else body.decode()
    return int(got["status"][:3]), value


@pytest.fixture(scope="module")
def expected() -> dict[str, tuple[int, Any]]:
    """What bare WSGI answers to each scenario (checked by wsgiref.validate)."""
    bare = load("bare")
    apps = {key: validator(app) for key, app in apps_for(bare).items()}
    return {s.key: _call(apps[s.app_key], s) for s in SCENARIOS}


@pytest.fixture(scope="module")
def adapter_apps() -> dict[str, dict[tuple[int, bool], Any]]:
    """The 10- and 1,000-route apps (and the compressed one) of every adapter whose framework is installed."""
    apps: dict[str, dict[tuple[int, bool], Any]] = {}
    for name in ADAPTERS:
        try:
            module = load(name)
        except ImportError:
            continue
        apps[name] = apps_for(module)
    return apps


def test_bare_answers_the_scenario_table(expected: dict[str, tuple[int, Any]]) -> None:
    assert expected["hello"] == (200, "Hello, World!")
    assert expected["params"] == (200, {"zoo_id": 123, "animal_id": 456})
    assert expected["query"] == (200, {"limit": 10, "offset": 20, "sortby": "name", "order": "asc"})
    status, created = expected["post_json"]
    assert status == 201 and created["id"] == 1 and created["city"] == "London"
    assert expected["put_form"] == (200, {"id": 7, "name": "widget", "color": "blue", "size": "10", "note": "hello world"})
    assert expected["missing"] == (404, {"error": "no resource at /missing"})
    assert expected["routes_10"] == (200, {"route": 9, "id": 42})
    assert expected["routes_1000"] == (200, {"route": 999, "id": 42})


@pytest.mark.parametrize("adapter", [a for a in ADAPTERS if a != "bare"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.key for s in SCENARIOS])
def test_adapter_answers_like_bare_wsgi(
    adapter: str, scenario: Scenario, expected: dict[str, tuple[int, Any]], adapter_apps: dict[str, Any]
) -> None:
    if adapter in PEERS:
        pytest.importorskip(adapter, reason=f"{adapter} is a benchmark extra: pip install '.[bench]'")
    app = adapter_apps[adapter][scenario.app_key]
    if adapter == "restkit":
        app = validator(app)
    assert _call(app, scenario) == expected[scenario.key]
    assert scenario.status == expected[scenario.key][0]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapters_send_the_paging_and_etag_headers(adapter: str, adapter_apps: dict[str, Any]) -> None:
    """The REST scenarios compare headers too: the same Link, X-Total-Count and ETag everywhere."""
    from benchmarks.adapters import HERD_GZIP_ETAG, PET_ETAG, page_links

    if adapter in PEERS:
        pytest.importorskip(adapter, reason=f"{adapter} is a benchmark extra: pip install '.[bench]'")
    for scenario in SCENARIOS:
        if scenario.key not in ("paged", "not_modified", "gzip_not_modified"):
            continue
        app = adapter_apps[adapter][scenario.app_key]
        sent: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            sent.update((name.lower(), value) for name, value in headers)
            return lambda data: None

        result = (validator(app) if adapter in ("bare", "restkit") else app)(environ_for(scenario), start_response)
        b"".join(result)
        getattr(result, "close", lambda: None)()
        if scenario.key == "paged":
            assert sent["x-total-count"] == "100"
            assert sent["link"] == page_links("http://127.0.0.1:8000/pets", 20, 40, 100)
        elif scenario.key == "not_modified":
            assert sent["etag"] == PET_ETAG
        else:  # the tag of the gzipped representation, told apart by Vary
            assert sent["etag"] == HERD_GZIP_ETAG and "accept-encoding" in sent["vary"].lower()


def test_falcon_is_measured_as_pure_python() -> None:
    pytest.importorskip("falcon", reason="falcon is a benchmark extra: pip install '.[bench]'")
    code = (
        "from benchmarks.adapters import load, falcon_is_pure_python\n"
        "load('falcon')\n"
        "import falcon.util.uri, falcon.util.misc\n"
        "assert falcon_is_pure_python()\n"
        "assert falcon.util.uri._cy_uri is None and falcon.util.misc._cy_encode_items_to_latin1 is None\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), check=True, timeout=60)


def test_inprocess_quick_prints_tables_and_ratios() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.inprocess", "--quick"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for scenario in SCENARIOS:
        assert scenario.title in out
    assert "| scenario | bare WSGI | restkit |" in out
    assert "restkit / bare WSGI" in out
    assert "route scaling restkit: 1,000 routes / 10 routes = " in out
    assert "import restkit: " in out and " ms " in out
    for peer in PEERS:
        assert f"restkit / {peer.capitalize()}" in out or f"(skipped {peer}:" in out


def test_inprocess_metrics_compares_restkit_with_and_without_metrics() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.inprocess", "--metrics", "--quick", "--only", "hello", "params"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "| scenario | restkit | restkit + Metrics |" in done.stdout
    assert "metrics on / off, hello: " in done.stdout and "metrics on / off, params: " in done.stdout
    assert "target: metrics on >= 0.9x off in every scenario: " in done.stdout


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (apt-get install valgrind)")
def test_instructions_counts_a_call_of_each_framework() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.instructions", "--only", "hello", "--calls", "200"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| GET /hello"))
    restkit, falcon, ratio = (cell.strip() for cell in row.strip("|").split("|")[1:])
    assert int(restkit.replace(",", "")) > 1000 and int(falcon.replace(",", "")) > 1000
    assert ratio.endswith("x")


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_server_quick_loads_every_server_and_keeps_streams_going() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.server", "--quick", "--streams", "2"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "| server (wrk -t1 -c8 -d2s) | req/s | p99 latency | restkit / this |" in out
    for server in ("restkit", "wsgiref", "wsgiref-threading", "waitress", "gunicorn", "cheroot", "granian"):
        assert f"| {server} | " in out or f"(skipped {server}:" in out
    assert "restkit: 2 streams open meanwhile, chunks received each: [" in out
    counts = json.loads(out.split("chunks received each: ")[1].split("]")[0] + "]")
    assert all(count > 0 for count in counts)
    assert "ratios in this run: restkit / waitress = " in out or "(skipped waitress:" in out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_server_quick_holds_idle_connections_and_reports_survivors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.server", "--quick", "--idle", "20", "--servers", "restkit", "waitress"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "| server (wrk -t1 -c8 -d2s, 20 idle connections) | req/s | p99 latency | restkit / this |" in out
    for server in ("restkit", "waitress"):
        assert f"{server}: idle connections: 20 of 20 opened; after the run " in out
    assert "ratios in this run: restkit / waitress = " in out


def test_bench_app_answers_the_big_route_and_the_upload() -> None:
    """``--stalled`` asks for 8 MiB, ``--slow-uploads`` posts a body: the bench app answers both."""
    import io

    app = validator(make_bench_app("restkit"))
    for method, path, body, expected in (
        ("GET", "/bench/big", b"", BIG_SIZE),
        ("POST", "/bench/upload", b"x" * 1000, len(b'{"length":1000}')),
    ):
        environ = environ_for(SCENARIOS[0])
        environ.update({
            "REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/octet-stream",
        })
        got: dict[str, Any] = {}
        result = app(environ, lambda status, headers, exc_info=None: got.update(status=status))
        try:
            answer = b"".join(result)
        finally:
            result.close()
        assert got["status"] == "200 OK" and len(answer) == expected
    assert answer == b'{"length":1000}'


def _quick_server(*options: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.server", "--quick", "--servers", "restkit", "waitress", *options],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_server_quick_holds_stalled_readers_and_reports_survivors() -> None:
    out = _quick_server("--stalled", "2")
    assert "| server (wrk -t1 -c8 -d2s, 2 stalled readers) | req/s | p99 latency | restkit / this |" in out
    for server in ("restkit", "waitress"):
        assert f"{server}: stalled readers (GET /bench/big, 8 MiB, never read): 2 of 2 opened; after the run " in out
    assert "workers: restkit --workers 1, granian --workers 1, gunicorn -w 1" in out
    assert "restkit >= 2x waitress (one process): " in out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_server_quick_compares_slow_uploads_with_a_quiet_run() -> None:
    out = _quick_server("--slow-uploads", "2", "--compare-quiet")
    for server in ("restkit", "waitress"):
        assert f"{server}: slow uploads (POST /bench/upload, 1 byte/s of 1,000,000): 2 of 2 opened; after the run " in out
    assert "| server (wrk -t1 -c8 -d2s, without 2 slow uploads) | req/s | p99 latency | restkit / this |" in out
    assert "| server | req/s without | req/s with 2 slow uploads | with / without |" in out
    assert "  restkit with 2 slow uploads within 10% of without (>= 0.9x): " in out


def test_server_pins_nothing_with_two_workers() -> None:
    """``--pin`` is for one worker: with two it says so (checked before anything is loaded)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.server", "--pin", "--workers", "2", "--servers", "--quick"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60,
    )
    assert "(--pin ignored: pinning one server to CPU 0 is only meaningful with one worker" in done.stdout


def test_server_refuses_compare_quiet_alone() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.server", "--compare-quiet"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and "--compare-quiet compares runs with and without" in done.stderr


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (apt-get install valgrind)")
def test_instructions_counts_a_request_through_the_server_path() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.instructions", "--server-path", "--calls", "20"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("server path, "))
    count = int(line.split(": ")[1].split()[0].replace(",", ""))
    assert 10_000 < count < 1_000_000  # about 120,000 in December 2026


def test_server_path_serves_requests_without_a_socket() -> None:
    """The harness itself, without valgrind: it raises unless every answer is a keep-alive 200."""
    from benchmarks.server_path import serve_requests

    serve_requests(50)


def test_server_path_loop_serves_requests_through_a_real_loop() -> None:
    """``--loop``'s harness without valgrind: 8 clients on loopback sockets, each answered before the next round."""
    from benchmarks.server_path import serve_loop

    serve_loop(40)  # it raises when a round's answers do not all come


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (Debian package xvfb)")
def test_screencast_quick_measures_both_designs() -> None:
    pytest.importorskip("mss", reason="mss is an examples extra: pip install '.[examples]'")
    pytest.importorskip("flask", reason="the seed's design runs on Flask: pip install '.[test]'")
    done = subprocess.run(
        [sys.executable, "benchmarks/screencast.py", "--quick"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout.split("| design |", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith(("| restkit |", "| seed |"))]
    assert len(rows) == 5, done.stdout[-3000:]
    for row in rows:
        assert row.rstrip().endswith("| 0 |"), row  # every viewer received frames
    parts = done.stdout.split("| --fps | viewers | latency | redraw |", 1)[1]  # the latency, part by part (X-Clock)
    assert "\n| 30 | 1 | " in parts, done.stdout[-3000:]


def test_python_client_fallback_loads_a_server(live_server: Callable[..., Any]) -> None:
    server = live_server(make_bench_app("restkit"))
    rate, p99, errors = run_python_client(server.port, 0.5, 2)
    assert rate > 0 and p99 > 0 and errors == ""
    assert PATH.startswith("/zoos/")


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs git and a checkout")
def test_baseline_compares_with_a_commit_in_one_run() -> None:
    pytest.importorskip("falcon", reason="falcon is a benchmark extra: pip install '.[bench]'")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.baseline", "HEAD", "--repeats", "1", "--seconds", "0.005", "--cpu-time"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "| scenario | restkit HEAD | restkit now | now / HEAD | Falcon (pure Python) |" in done.stdout
    for scenario in SCENARIOS:
        assert f"| {scenario.title} | " in done.stdout
