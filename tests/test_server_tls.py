"""restkit.server over HTTPS: certificates from trustme, clients from ssl, http.client and curl.

The handshake is the event loop's job, so a client that never finishes it
must not hold a worker: with two worker threads, eight stalled handshakes
leave the server answering.  Plain HTTP sent to the HTTPS port is closed,
not left hanging.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import textwrap
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from restkit.server import make_server
from tests.conftest import free_port
from tests.wire import (
    TIMEOUT, connect, finish, get, ipv6_loopback, read_until_close, start_cli, wait_until_listening,
)

trustme = pytest.importorskip("trustme", reason="trustme is a test extra: pip install '.[test]'")

MEGABYTE = 1024 * 1024
BIG_BODY = bytes(range(256)) * (MEGABYTE // 256)


@dataclass
class Certificates:
    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    issued = authority.issue_cert("localhost", "127.0.0.1", "::1")
    paths = Certificates(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    authority.cert_pem.write_to_path(str(paths.ca))
    issued.private_key_pem.write_to_path(str(paths.key))
    for number, pem in enumerate(issued.cert_chain_pems):
        pem.write_to_path(str(paths.cert), append=number > 0)
    return paths


def tls_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """``/`` describes the request, ``/big`` is 1 MB, ``POST /echo`` sends the body back."""
    path = environ["PATH_INFO"]
    if path == "/big":
        body = BIG_BODY
    elif path == "/echo":
        body = environ["wsgi.input"].read()
    else:
        body = json.dumps({"scheme": environ["wsgi.url_scheme"], "path": path}).encode()
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def https_server(live_server: Any, certs: Certificates) -> Any:
    return live_server(tls_app, certfile=str(certs.cert), keyfile=str(certs.key), timeout=3.0)


def https(port: int, certs: Certificates, host: str = "127.0.0.1") -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=certs.client_context())


def client_hello() -> bytes:
    """The first flight of a real TLS client."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_https_end_to_end(https_server: Any, certs: Certificates) -> None:
    assert https_server.server.url == f"https://127.0.0.1:{https_server.port}"
    status, body = get(https_server.port, "/where", context=certs.client_context())
    assert (status, json.loads(body)) == (200, {"scheme": "https", "path": "/where"})
    status, body = get(https_server.port, "/", host="localhost", context=certs.client_context())
    assert status == 200


def test_keep_alive_over_tls(https_server: Any, certs: Certificates) -> None:
    conn = https(https_server.port, certs)
    try:
        conn.request("GET", "/first")
        resp = conn.getresponse()
        assert json.loads(resp.read())["path"] == "/first"
        first_socket = conn.sock
        assert isinstance(first_socket, ssl.SSLSocket) and first_socket.version() in ("TLSv1.2", "TLSv1.3")
        for number in range(5):
            conn.request("GET", f"/again/{number}")
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["path"] == f"/again/{number}"
        assert conn.sock is first_socket  # one connection, one handshake
    finally:
        conn.close()


def test_a_megabyte_each_way_over_tls(https_server: Any, certs: Certificates) -> None:
    conn = https(https_server.port, certs)
    try:
        upload = os.urandom(MEGABYTE)
        conn.request("POST", "/echo", body=upload, headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == upload
        conn.request("GET", "/big")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == BIG_BODY
    finally:
        conn.close()


def test_ssl_context_option(live_server: Any, certs: Certificates) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs.cert), str(certs.key))
    srv = live_server(tls_app, ssl_context=context)
    assert srv.server.url.startswith("https://")
    status, body = get(srv.port, "/ctx", context=certs.client_context())
    assert (status, json.loads(body)) == (200, {"scheme": "https", "path": "/ctx"})


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)")
def test_curl_as_a_real_client(https_server: Any, certs: Certificates, tmp_path: Path) -> None:
    port = https_server.port
    base = ["curl", "--silent", "--show-error", "--fail", "--max-time", "15", "--cacert", str(certs.ca),
            "--resolve", f"localhost:{port}:127.0.0.1"]
    done = subprocess.run([*base, f"https://localhost:{port}/from-curl"], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"scheme": "https", "path": "/from-curl"}
    # two transfers in one curl: the second reuses the connection (0 new connects)
    reused = subprocess.run(
        [*base, "--write-out", "%{http_code} %{num_connects}\n", "-o", os.devnull, "-o", os.devnull,
         f"https://localhost:{port}/a", f"https://localhost:{port}/big"],
        capture_output=True, text=True, timeout=30,
    )
    assert reused.returncode == 0, reused.stderr
    assert reused.stdout.split("\n")[:2] == ["200 1", "200 0"], reused.stdout
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(MEGABYTE))
    done = subprocess.run([*base, "--data-binary", f"@{upload}", "-H", "Content-Type: application/octet-stream",
                           f"https://localhost:{port}/echo"], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == upload.read_bytes()


def test_stalled_handshakes_do_not_block_others(live_server: Any, certs: Certificates) -> None:
    srv = live_server(tls_app, certfile=str(certs.cert), keyfile=str(certs.key), threads=2, timeout=3.0)
    hello = client_hello()
    silent = [connect(srv.port) for _ in range(4)]  # TCP only: never a ClientHello
    halfway = [connect(srv.port) for _ in range(4)]
    # and two that finish the handshake, then never send a request
    mute = [certs.client_context().wrap_socket(connect(srv.port), server_hostname="localhost") for _ in range(2)]
    try:
        for sock in halfway:
            sock.sendall(hello[: len(hello) // 2])
        for number in range(5):
            status, body = get(srv.port, f"/n{number}", timeout=5, context=certs.client_context())
            assert status == 200, f"HTTPS request {number + 1} while 8 handshakes stall"
        for sock in silent + halfway:
            read_until_close(sock)  # returns: the server gave up on the handshake
        for tls in mute:
            assert read_until_close(tls) == b""  # closed after the timeout, without an answer
    finally:
        for sock in silent + halfway + mute:
            sock.close()
    assert get(srv.port, "/after", context=certs.client_context())[0] == 200


def test_handshakes_reset_halfway_do_not_stop_others(https_server: Any, certs: Certificates) -> None:
    hello = client_hello()
    for _ in range(20):
        sock = connect(https_server.port)
        sock.sendall(hello[: len(hello) // 2])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # a reset in the middle of the handshake
    assert get(https_server.port, "/after", context=certs.client_context())[0] == 200


def test_idle_tls_keep_alive_connections_do_not_hold_workers(live_server: Any, certs: Certificates) -> None:
    """Between requests a TLS connection waits in the event loop, as a plain one does, not in a worker."""
    srv = live_server(tls_app, certfile=str(certs.cert), keyfile=str(certs.key), threads=2, keepalive_timeout=30.0,
                      grace=1.0)
    idle = [https(srv.port, certs) for _ in range(6)]  # three times the workers
    try:
        for number, conn in enumerate(idle):
            conn.timeout = 5
            try:
                conn.request("GET", f"/idle/{number}")
                resp = conn.getresponse()
            except TimeoutError:
                pytest.fail(f"TLS connection {number + 1} not answered: the idle ones before it hold the 2 workers")
            assert resp.status == 200 and resp.read(), f"idle connection {number + 1}"
        for number in range(5):
            try:
                status, _ = get(srv.port, f"/fresh/{number}", timeout=5, context=certs.client_context())
            except TimeoutError:
                pytest.fail(f"fresh HTTPS request {number + 1} not answered while 6 TLS connections sit idle")
            assert status == 200
        for number, conn in enumerate(idle):  # and the idle ones are still usable
            conn.request("GET", f"/again/{number}")
            assert conn.getresponse().status == 200
    finally:
        for conn in idle:
            conn.close()


@pytest.mark.parametrize("length, sent", [(1000, 10), (MEGABYTE, 300_000)], ids=["buffered-body", "streamed-body"])
def test_stalled_tls_request_body_is_timed_out(live_server: Any, certs: Certificates, length: int, sent: int) -> None:
    srv = live_server(tls_app, certfile=str(certs.cert), keyfile=str(certs.key), timeout=2.0, grace=1.0)
    raw = connect(srv.port, timeout=15)  # a guard: the server's deadline is 2 s
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % length + b"x" * sent)
        try:
            answer = read_until_close(tls)  # and then nothing: returns only once the server gave up
        except TimeoutError:
            pytest.fail("a TLS request whose body stalled was never timed out")
    assert answer == b"" or not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert get(srv.port, "/after", context=certs.client_context())[0] == 200


def test_tls_client_that_never_reads_is_closed_and_the_body_closed(live_server: Any, certs: Certificates) -> None:
    closed = threading.Event()
    pieces = [0]

    def huge(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] != "/huge":
            return tls_app(environ, start_response)
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(64 * MEGABYTE))])

        def body() -> Iterator[bytes]:
            try:
                for _ in range(1024):
                    pieces[0] += 1
                    yield b"\0" * 65536
            finally:
                closed.set()

        return body()

    srv = live_server(huge, certfile=str(certs.cert), keyfile=str(certs.key), timeout=2.0, grace=1.0)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(TIMEOUT)
    raw.connect(("127.0.0.1", srv.port))
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /huge HTTP/1.1\r\nHost: t\r\n\r\n")
        assert tls.recv(1024).startswith(b"HTTP/1.1 200 ")
        # ... and never read again, while others are served
        for number in range(3):
            assert get(srv.port, f"/n{number}", timeout=5, context=certs.client_context())[0] == 200
        assert closed.wait(15), "the server kept writing to a TLS client that does not read"
    assert pieces[0] < 1024


@pytest.mark.skipif(ipv6_loopback() is not None, reason=ipv6_loopback() or "")
def test_https_over_ipv6_loopback(live_server: Any, certs: Certificates) -> None:
    server = make_server("::1", 0, tls_app, certfile=str(certs.cert), keyfile=str(certs.key), access_log=False)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert server.url == f"https://[::1]:{port}"
        status, body = get(port, "/v6", host="::1", context=certs.client_context())
        assert (status, json.loads(body)) == (200, {"scheme": "https", "path": "/v6"})
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def test_plain_http_on_the_https_port_gets_a_400_that_says_so(
    live_server: Any, certs: Certificates, caplog: pytest.LogCaptureFixture
) -> None:
    import h11

    caplog.set_level(logging.INFO, logger="restkit.access")
    srv = live_server(tls_app, certfile=str(certs.cert), keyfile=str(certs.key), timeout=3.0, access_log=True)
    with connect(srv.port) as plain:
        plain.sendall(b"GET /where HTTP/1.1\r\nHost: t\r\n\r\n")
        raw = read_until_close(plain)  # returns only because the server closed the connection
    client = h11.Connection(h11.CLIENT)  # a strict client reads the answer
    client.send(h11.Request(method="GET", target="/where", headers=[("Host", "t")]))
    client.receive_data(raw)
    response = client.next_event()
    assert isinstance(response, h11.Response) and response.status_code == 400
    assert dict(response.headers)[b"content-type"] == b"text/plain; charset=utf-8"
    data = client.next_event()
    assert isinstance(data, h11.Data) and b"HTTPS" in data.data
    assert isinstance(client.next_event(), h11.EndOfMessage)
    lines = [r.getMessage() for r in caplog.records if r.name == "restkit.access"]
    assert len(lines) == 1 and '"GET /where HTTP/1.1" 400' in lines[0] and "plain HTTP on the HTTPS port" in lines[0]
    assert get(srv.port, "/after", context=certs.client_context())[0] == 200


def test_hsts_on_every_https_answer(live_server: Any, certs: Certificates) -> None:
    srv = live_server(tls_app, certfile=str(certs.cert), keyfile=str(certs.key), hsts=31536000)
    conn = https(srv.port, certs)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        assert response.getheader("Strict-Transport-Security") == "max-age=31536000"
    finally:
        conn.close()


def test_no_hsts_on_plain_http(live_server: Any) -> None:
    srv = live_server(tls_app, hsts=600)  # HSTS means nothing over plain HTTP (RFC 6797 section 7.2)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        assert response.getheader("Strict-Transport-Security") is None
    finally:
        conn.close()


def test_cli_redirect_http_answers_308_to_https(tmp_path: Path, certs: Certificates) -> None:
    (tmp_path / "tls_app.py").write_text(TLS_APP_MODULE)
    port, plain_port = free_port(), free_port()
    proc = start_cli(["tls_app:app", "--port", str(port), "--certfile", str(certs.cert), "--keyfile", str(certs.key),
                      "--redirect-http", str(plain_port), "--hsts", "600"], tmp_path)
    try:
        wait_until_listening(port, proc)
        wait_until_listening(plain_port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", plain_port, timeout=TIMEOUT)
        conn.request("POST", "/scheme?x=1", body=b"{}", headers={"Host": "example.test:" + str(plain_port)})
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 308
        assert response.getheader("Location") == f"https://example.test:{port}/scheme?x=1"
        conn = https(port, certs)
        conn.request("GET", "/scheme")
        secure = conn.getresponse()
        assert json.loads(secure.read()) == {"scheme": "https"}
        assert secure.getheader("Strict-Transport-Security") == "max-age=600"
        conn.close()
        proc.send_signal(signal.SIGINT)
        code, stderr = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, stderr
    assert f"serving on http://127.0.0.1:{plain_port}" in stderr


def test_server_side_url_and_address(live_server: Any, certs: Certificates) -> None:
    server = make_server("127.0.0.1", 0, tls_app, certfile=str(certs.cert), keyfile=str(certs.key), access_log=False)
    try:
        port = server.server_address[1]
        assert server.url == f"https://127.0.0.1:{port}"
    finally:
        server.server_close()


TLS_APP_MODULE = textwrap.dedent(
    """
    from restkit import App

    app = App()

    @app.get("/scheme")
    def scheme(request):
        return {"scheme": request.environ["wsgi.url_scheme"]}
    """
)


def test_cli_with_certfile_and_keyfile(tmp_path: Path, certs: Certificates) -> None:
    (tmp_path / "tls_app.py").write_text(TLS_APP_MODULE)
    port = free_port()
    proc = start_cli(["tls_app:app", "--port", str(port), "--certfile", str(certs.cert), "--keyfile", str(certs.key)],
                     tmp_path)
    try:
        wait_until_listening(port, proc)
        status, body = get(port, "/scheme", context=certs.client_context())
        assert (status, json.loads(body)) == (200, {"scheme": "https"})
        proc.send_signal(signal.SIGINT)
        code, stderr = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, stderr
    assert f"serving on https://127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr
