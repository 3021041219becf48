"""restkit.metrics in one process: the text, the labels, the buckets, the negotiation, the server's figures.

Every scrape is parsed by prometheus_client's own parsers (0.0.4 text and
OpenMetrics), the ones a Prometheus-compatible stack reads it with.  The
server's figures come from a real restkit server on 127.0.0.1, with real
malformed, slow and non-TLS clients.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from restkit import App, Request, Response
from restkit.health import Health
from restkit.metrics import UNMATCHED, Metrics
from restkit.metrics.exposition import render, wants_openmetrics
from restkit.testing import Client
from tests.conftest import LiveServer
from tests.wire import connect, read_until_close, wait_for

prometheus_client = pytest.importorskip("prometheus_client", reason="pip install prometheus_client (the test extra)")
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families as parse_text  # noqa: E402

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def make_app(**options: Any) -> tuple[App, Metrics]:
    app = App()
    metrics = app.use(Metrics(**options))
    app.use(Health())

    @app.get("/zoos/<int:zoo_id>")
    def show_zoo(request: Request, zoo_id: int) -> dict[str, int]:
        return {"id": zoo_id}

    @app.post("/zoos")
    def create_zoo(request: Request) -> tuple[dict[str, str], int]:
        return {"name": "x"}, 201

    @app.get("/stream")
    def stream(request: Request) -> Response:
        return Response(iter([b"a", b"b"]), content_type="text/plain")

    @app.get("/fail")
    def fail(request: Request) -> None:
        raise RuntimeError("boom")

    return app, metrics


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a 0.0.4 scrape, parsed by prometheus_client."""
    found = {}
    for family in parse_text(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def scrape(client: Client, accept: str | None = None) -> tuple[str, str]:
    answer = client.get("/metrics", headers={"Accept": accept} if accept else None)
    assert answer.status == 200
    return answer.headers["Content-Type"], answer.text


def test_requests_are_counted_by_route_template_method_and_status() -> None:
    app, _ = make_app()
    client = Client(app)
    for zoo in (1, 2, 3):
        client.get(f"/zoos/{zoo}")
    client.post("/zoos", json={})
    client.get("/nowhere", status=404)
    client.delete("/zoos/1", status=405)
    client.get("/fail", status=500)
    content_type, text = scrape(client)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    found = samples(text)
    total = "restkit_http_requests_total"
    assert value(found, total, method="GET", route="/zoos/<int:zoo_id>", status="200") == 3
    assert value(found, total, method="POST", route="/zoos", status="201") == 1
    assert value(found, total, method="GET", route=UNMATCHED, status="404") == 1
    assert value(found, total, method="DELETE", route=UNMATCHED, status="405") == 1
    assert value(found, total, method="GET", route="/fail", status="500") == 1
    assert not [key for key in found if any(label == ("route", "/zoos/1") for label in key[1])]  # never a raw path
    assert value(found, "restkit_http_requests_in_flight") == 1  # the scrape itself
    assert value(found, "restkit_processes") == 1
    assert value(found, "process_cpu_seconds_total") > 0  # type: ignore[operator]
    assert value(found, "process_open_fds") > 0  # type: ignore[operator]
    assert value(found, "process_start_time_seconds") <= time.time()  # type: ignore[operator]
    assert "# TYPE restkit_http_requests_total counter" in text


def test_an_odd_method_is_counted_as_other() -> None:
    app, _ = make_app()
    status: list[str] = []
    environ = {"REQUEST_METHOD": "FROB", "PATH_INFO": "/zoos/1", "SERVER_NAME": "t", "SERVER_PORT": "80",
               "wsgi.url_scheme": "http", "QUERY_STRING": ""}
    for _ in range(2):
        for _chunk in app(dict(environ), lambda line, headers, exc_info=None: status.append(line)):
            pass
    found = samples(scrape(Client(app))[1])
    assert value(found, "restkit_http_requests_total", method="other", route=UNMATCHED, status="405") == 2


def test_probes_and_the_scrape_are_counted_but_not_timed() -> None:
    app, _ = make_app()
    client = Client(app)
    client.get("/healthz")
    client.get("/readyz")
    client.get("/zoos/1")
    scrape(client)
    found = samples(scrape(client)[1])
    for route in ("/healthz", "/readyz", "/metrics"):
        assert value(found, "restkit_http_requests_total", method="GET", route=route, status="200") == 1  # not this one
        assert value(found, "restkit_http_request_duration_seconds_count", method="GET", route=route) is None
    assert value(found, "restkit_http_request_duration_seconds_count", method="GET", route="/zoos/<int:zoo_id>") == 1


def test_untimed_routes_can_be_named() -> None:
    app, _ = make_app(untimed=["/zoos/<int:zoo_id>"])
    client = Client(app)
    client.get("/zoos/1")
    found = samples(scrape(client)[1])
    assert value(found, "restkit_http_requests_total", method="GET", route="/zoos/<int:zoo_id>", status="200") == 1
    assert value(found, "restkit_http_request_duration_seconds_count", method="GET", route="/zoos/<int:zoo_id>") is None


def test_latency_buckets_are_cumulative_and_le_is_inclusive() -> None:
    """Observations of known length (the app's start moved back by that much) land in the right buckets."""
    app, metrics = make_app(buckets=[0.01, 0.1, 1.0])
    client = Client(app)
    route = app.router._lookup("GET", "/zoos/1")[0]
    from time import perf_counter

    for seconds in (0.0001, 0.02, 0.05, 0.5, 3.0):
        environ = {"REQUEST_METHOD": "GET"}
        request = Request(environ, path="/zoos/1")
        request.route = route
        metrics._observe(request, environ, "200 OK", [b"{}"], perf_counter() - seconds)
    found = samples(scrape(client)[1])
    buckets = {le: value(found, "restkit_http_request_duration_seconds_bucket", method="GET",
                         route="/zoos/<int:zoo_id>", le=le) for le in ("0.01", "0.1", "1.0", "+Inf")}
    assert buckets == {"0.01": 1, "0.1": 3, "1.0": 4, "+Inf": 5}
    labels = {"method": "GET", "route": "/zoos/<int:zoo_id>"}
    assert value(found, "restkit_http_request_duration_seconds_count", **labels) == 5
    assert 3.57 <= value(found, "restkit_http_request_duration_seconds_sum", **labels) < 3.6  # type: ignore[operator]
    family = next(f for f in parse_text(scrape(client)[1]) if f.name == "restkit_http_request_duration_seconds")
    assert family.type == "histogram"


def test_response_sizes_of_known_length_are_summed() -> None:
    app, _ = make_app()
    client = Client(app)
    client.get("/zoos/1")  # {"id":1}: 8 bytes
    client.get("/zoos/22")  # 9 bytes
    client.get("/stream")  # unknown length: not in the summary
    found = samples(scrape(client)[1])
    labels = {"method": "GET", "route": "/zoos/<int:zoo_id>"}
    assert value(found, "restkit_http_response_size_bytes_count", **labels) == 2
    assert value(found, "restkit_http_response_size_bytes_sum", **labels) == len(b'{"id":1}') + len(b'{"id":22}')
    assert value(found, "restkit_http_response_size_bytes_count", method="GET", route="/stream") is None
    assert value(found, "restkit_http_requests_total", method="GET", route="/stream", status="200") == 1


@pytest.mark.parametrize(("accept", "openmetrics"), [
    (PROMETHEUS_ACCEPT, True),
    ("application/openmetrics-text; version=1.0.0", True),
    ("application/openmetrics-text", True),
    ("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5", False),
    ("application/openmetrics-text;version=2.0.0", False),
    ("application/openmetrics-text;q=0", False),
    ("text/plain", False),
    ("*/*", False),
    ("", False),
], ids=["prometheus", "om-1.0.0", "om-any-version", "text-preferred", "om-2.0.0", "om-refused", "text", "any", "none"])
def test_openmetrics_is_chosen_from_accept(accept: str, openmetrics: bool) -> None:
    assert wants_openmetrics(accept) is openmetrics


def test_openmetrics_answer_parses_and_ends_with_eof() -> None:
    app, _ = make_app()
    client = Client(app)
    client.get("/zoos/1")
    client.get("/nowhere", status=404)
    content_type, text = scrape(client, PROMETHEUS_ACCEPT)
    assert content_type == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert text.endswith("# EOF\n")
    families = {family.name: family for family in parse_openmetrics(text)}  # strict: raises on any error
    assert families["restkit_http_requests"].type == "counter"
    assert families["restkit_http_request_duration_seconds"].type == "histogram"
    assert "# TYPE restkit_http_requests counter" in text
    counted = {(s.labels["route"], s.labels["status"]): s.value for s in families["restkit_http_requests"].samples}
    assert counted[("/zoos/<int:zoo_id>", "200")] == 1 and counted[(UNMATCHED, "404")] == 1


def test_label_values_and_help_are_escaped() -> None:
    text = render({("restkit_http_requests_total", (("method", "GET"), ("route", 'a"b\\c\nd'), ("status", "200"))): 1.0})
    assert 'route="a\\"b\\\\c\\nd"' in text
    (family,) = parse_text(text)
    assert family.samples[0].labels["route"] == 'a"b\\c\nd'


def test_the_scrape_is_quiet_and_needs_no_app_feature() -> None:
    """The route opts out of app-wide features (no auth, no rate limit) and of the access log."""
    from restkit.auth import Bearer, Identity

    app, _ = make_app()
    app.use(Bearer({"t": Identity("u", {"read"})}))
    client = Client(app)
    client.get("/zoos/1", status=401)
    answer = client.get("/metrics")
    assert answer.status == 200
    assert "/metrics" not in str(app.openapi()["paths"])


def serve(app: App, **options: Any) -> LiveServer:
    return LiveServer(app, **options)


def ask(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def get_text(port: int, path: str = "/metrics") -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def test_the_servers_figures_under_restkits_server() -> None:
    app, _ = make_app()
    release = threading.Event()

    @app.get("/wait")
    def wait(request: Request) -> dict[str, bool]:
        release.wait(10)
        return {"done": True}

    server = serve(app, timeout=0.5, threads=4)
    try:
        port = server.port
        assert ask(port, "/zoos/1") == 200
        with connect(port) as bad:  # a refusal by the parser: 400, the app never sees it
            bad.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            assert read_until_close(bad).startswith(b"HTTP/1.1 400")
        with connect(port) as slow:  # a request that never ends: 408
            slow.sendall(b"GET /zoos/1 HTTP/1.1\r\nHost: t\r\n")
            assert read_until_close(slow).startswith(b"HTTP/1.1 408")
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # kept alive after one request
        idle.request("GET", "/zoos/2")
        idle.getresponse().read()
        waiting = threading.Thread(target=ask, args=(port, "/wait"), daemon=True)
        waiting.start()
        assert wait_for(lambda: "restkit_http_requests_in_flight 2" in get_text(port), timeout=10)  # /wait, the scrape
        found = samples(get_text(port))
        release.set()
        waiting.join(10)
        idle.close()
    finally:
        release.set()
        server.close()
    assert value(found, "restkit_server_refused_requests_total", status="400") == 1
    assert value(found, "restkit_server_refused_requests_total", status="408") == 1
    assert value(found, "restkit_server_connections_accepted_total") >= 5  # type: ignore[operator]
    # /wait and the scrape (and perhaps the last scrape's worker, waiting a moment for a next request)
    assert 2 <= value(found, "restkit_server_connections", state="working") <= 3  # type: ignore[operator]
    assert value(found, "restkit_server_worker_threads_busy") == value(found, "restkit_server_connections", state="working")
    assert value(found, "restkit_server_worker_threads") == 4
    assert value(found, "restkit_server_connections", state="idle") == 1
    assert value(found, "restkit_server_accepting") == 1
    assert value(found, "restkit_server_tls_handshake_failures_total") == 0
    assert value(found, "restkit_http_requests_in_flight") == 2
    # the 400 and the 408 never reached the app: not in the app's counts
    assert value(found, "restkit_http_requests_total", method="GET", route="/zoos/<int:zoo_id>", status="200") == 2


def test_streams_and_tls_failures_are_counted(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme", reason="pip install trustme (the test extra)")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    app, _ = make_app()
    flowing, stop = threading.Event(), threading.Event()

    @app.get("/endless")
    def endless(request: Request) -> Response:
        def parts() -> Any:
            while not stop.is_set():
                flowing.set()
                yield b"x" * 10
                time.sleep(0.02)
        return Response(parts(), content_type="text/plain")

    server = serve(app, ssl_context=context)
    try:
        port = server.port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as hostile:  # a TLS record, then garbage
            hostile.sendall(b"\x16\x03\x01\x00\x05hello-not-tls" * 4)
            hostile.recv(100)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            stream = client_context.wrap_socket(raw, server_hostname="127.0.0.1")
            stream.sendall(b"GET /endless HTTP/1.1\r\nHost: t\r\n\r\n")
            assert flowing.wait(5)

            def figures() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
                conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=client_context)
                conn.request("GET", "/metrics")
                return samples(conn.getresponse().read().decode())

            found = figures()
            stop.set()
            stream.close()
    finally:
        stop.set()
        server.close()
    assert value(found, "restkit_server_tls_handshake_failures_total") == 1
    assert value(found, "restkit_server_streams_open") == 1


def test_several_processes_without_a_directory_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app()
    client = Client(app, environ={"wsgi.multiprocess": True})
    client.get("/metrics")
    client.get("/metrics")
    assert len([r for r in caplog.records if "several processes" in r.getMessage()]) == 1


def test_bad_buckets_are_refused() -> None:
    for bad in ([], [1.0, 0.5], [0.1, float("inf")], [0.1, 0.1]):
        with pytest.raises(ValueError, match="increasing"):
            Metrics(buckets=bad)
    with pytest.raises(ValueError, match="interval"):
        Metrics(interval=0)


def test_figures_shared_through_a_directory_add_up(tmp_path: Path) -> None:
    """Two apps in this process stand for two workers (flock locks differ per open file, as between processes)."""
    apps = [make_app(directory=tmp_path) for _ in range(2)]
    clients = [Client(app) for app, _ in apps]
    for count, client in zip((3, 4), clients):
        for _ in range(count):
            client.get("/zoos/1")
    for _, metrics in apps:
        metrics.flush()
    for client in clients:
        found = samples(scrape(client)[1])
        assert value(found, "restkit_http_requests_total", method="GET", route="/zoos/<int:zoo_id>", status="200") == 7
        assert value(found, "restkit_processes") == 2


def test_a_failing_response_observer_is_logged_and_the_answer_stands(caplog: pytest.LogCaptureFixture) -> None:
    """App.observe_responses, which Metrics counts through: it only looks, and what it raises is never sent."""
    app, _ = make_app()
    seen: list[tuple[str, str]] = []

    @app.observe_responses
    def broken(request: Request | None, environ: dict[str, Any], status: str, body: Any, started: float) -> None:
        seen.append((environ["PATH_INFO"], status))
        raise ZeroDivisionError("observer bug")

    client = Client(app)
    assert client.get("/zoos/3").json == {"id": 3}
    assert seen == [("/zoos/3", "200 OK")]
    assert any("response observer" in r.getMessage() for r in caplog.records)
    found = samples(scrape(client)[1])
    assert value(found, "restkit_http_requests_total", method="GET", route="/zoos/<int:zoo_id>", status="200") == 1


def test_a_dead_process_folds_into_the_archive_once(tmp_path: Path) -> None:
    """Its counters stay in every later total, its gauges go, its files go; a fold cut short counts nothing twice."""
    import json

    from restkit.metrics.shared import SharedDirectory

    key = ("restkit_http_requests_total", (("method", "GET"), ("route", "/a"), ("status", "200")))
    gauge = ("restkit_http_requests_in_flight", ())
    dead, live = SharedDirectory(tmp_path), SharedDirectory(tmp_path)
    dead.write({key: 5.0}, {gauge: 2.0})
    assert live.collect({key: 1.0}, {gauge: 1.0}) == ({key: 6.0}, {gauge: 3.0}, 2)
    dead.forget()  # its lock goes as when its process dies
    assert dead.token is None
    for _ in range(2):
        assert live.collect({key: 1.0}, {gauge: 1.0}) == ({key: 6.0}, {gauge: 1.0}, 1)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["archive.json", "merge.lock", f"{live.token}.lock"])
    # A scraper that died after writing the archive but before deleting the files: the archive names the token.
    ghost = SharedDirectory(tmp_path)
    ghost.write({key: 4.0}, {})
    token = ghost.token
    archive = json.loads((tmp_path / "archive.json").read_text())
    archive["counters"][0][2] += 4.0
    archive["folded"] = [token]
    (tmp_path / "archive.json").write_text(json.dumps(archive))
    ghost.forget()
    assert live.collect({}, {})[0] == {key: 9.0}  # 5 + 4 from the archive, the ghost's file not added again
    assert not list(tmp_path.glob(f"{token}*"))
