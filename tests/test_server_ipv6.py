"""restkit.server over IPv6 loopback: ``::1``, ``::`` (dual-stack where the OS allows), ``localhost``, ``--host ::1``.

Skipped, with the reason, on a machine where ``::1`` cannot be bound.
"""

from __future__ import annotations

import json
import signal
import socket
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from restkit.server import Server, make_server
from tests.wire import (
    TIMEOUT, connect, finish, get_json, ipv6_loopback, read_response, start_cli, wait_until_listening,
)

NO_IPV6 = ipv6_loopback()
pytestmark = pytest.mark.skipif(NO_IPV6 is not None, reason=NO_IPV6 or "")


def where_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers with the client address and the Host the server saw."""
    body = json.dumps({"remote_addr": environ["REMOTE_ADDR"], "host": environ.get("HTTP_HOST")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@contextmanager
def serving(host: str, **options: Any) -> Iterator[Server]:
    options.setdefault("access_log", False)
    server = make_server(host, 0, where_app, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def free_ipv6_port() -> int:
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        return int(sock.getsockname()[1])


def test_ipv6_loopback() -> None:
    with serving("::1") as server:
        host, port = server.server_address[:2]
        assert host == "::1"
        assert server.url == f"http://[::1]:{port}"
        status, body = get_json(port, "/", host="::1")
        assert status == 200
        assert body == {"remote_addr": "::1", "host": f"[::1]:{port}"}


def test_keep_alive_and_bracketed_host_over_ipv6() -> None:
    with serving("::1") as server:
        port = server.server_address[1]
        with connect(port, host="::1") as sock:
            for host in (f"[::1]:{port}", "[::1]", "[2001:db8::1]:8080"):
                sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                answer = read_response(sock)
                assert answer.status == 200
                assert json.loads(answer.body) == {"remote_addr": "::1", "host": host}


def test_any_ipv6_address_answers_on_ipv6_loopback() -> None:
    with serving("::") as server:
        port = server.server_address[1]
        assert server.url.startswith("http://[")
        status, body = get_json(port, "/", host="::1")
        assert (status, body["remote_addr"]) == (200, "::1")


@pytest.mark.skipif(not socket.has_dualstack_ipv6(), reason="this OS has no dual-stack IPv6 sockets")
def test_any_ipv6_address_is_dual_stack_where_the_os_allows() -> None:
    with serving("::") as server:
        port = server.server_address[1]
        status, body = get_json(port, "/", host="127.0.0.1")
        assert status == 200
        assert body["remote_addr"] in ("127.0.0.1", "::ffff:127.0.0.1")


def test_localhost_answers_at_the_address_it_bound() -> None:
    with serving("localhost") as server:
        host, port = server.server_address[:2]
        assert host in ("127.0.0.1", "::1")
        status, body = get_json(port, "/", host=host)
        assert (status, body["remote_addr"]) == (200, host)
        assert server.url in (f"http://127.0.0.1:{port}", f"http://[::1]:{port}", f"http://localhost:{port}")


IPV6_APP_MODULE = textwrap.dedent(
    """
    from restkit import App

    app = App()

    @app.get("/where")
    def where(request):
        return {"remote_addr": request.remote_addr}
    """
)


def test_cli_host_ipv6_loopback(tmp_path: Path) -> None:
    (tmp_path / "ipv6_app.py").write_text(IPV6_APP_MODULE)
    port = free_ipv6_port()
    proc = start_cli(["ipv6_app:app", "--host", "::1", "--port", str(port)], tmp_path)
    try:
        wait_until_listening(port, proc, host="::1")
        assert get_json(port, "/where", host="::1") == (200, {"remote_addr": "::1"})
        proc.send_signal(signal.SIGINT)
        code, stderr = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, stderr
    assert f"serving on http://[::1]:{port}" in stderr
    assert "Traceback" not in stderr
